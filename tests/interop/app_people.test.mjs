// People, not numbers (issue 12): the users API (search for admins, display names for the pages,
// the online admins with names, renaming), notification recipients that must exist and be admins
// (404 / 400 JSON otherwise), and a broadcast that is not unread for the admin who sent it. Users
// are made with `herald user add` on the server's database; clients are plain fetch and the stock
// socket.io-client 4.7.2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertError, connect } from './lib/app.mjs';
import { startHerald, storeArgs, HERALD_BIN } from './lib/server.mjs';

const SECRET = 'app-people-secret-0123456789abcdef';
let srv, dir;
const tokens = {}, ids = {};

function addUser(name, role, display, password) {
  const args = ['user', 'add', name, '--role', role, '--data-dir', dir, ...storeArgs(dir)];
  if (display) args.push('--display-name', display);
  const r = spawnSync(HERALD_BIN, args, { input: `${password}\n`, encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
}

async function api(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(srv.url(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'herald-people-'));
  addUser('fang', 'admin', '王芳', 'fang-secret');
  addUser('na', 'admin', '李娜', 'na-secret');
  addUser('lei', 'user', '李雷', 'lei-secret');
  addUser('mei', 'user', '韩梅梅', 'mei-secret');
  srv = await startHerald(['--jwt-secret', SECRET, '--demo-users', 'false'], { dataDir: dir });
  for (const [name, pw] of [['fang', 'fang-secret'], ['na', 'na-secret'], ['lei', 'lei-secret'], ['mei', 'mei-secret']]) {
    const r = await api('POST', '/api/v4/auth/login', { body: { username: name, password: pw } });
    assert.equal(r.status, 200);
    tokens[name] = r.body.token;
    ids[name] = r.body.user.id;
  }
});
after(async () => {
  await srv?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('users search: admins only, by name or display name, role filter, bad input refused', async () => {
  let r = await api('GET', `/api/v4/users?q=${encodeURIComponent('李')}`, { token: tokens.fang });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.users.map((u) => u.display_name).sort(), ['李娜', '李雷'].sort());
  r = await api('GET', `/api/v4/users?q=${encodeURIComponent('李')}&role=admin`, { token: tokens.fang });
  assert.deepEqual(r.body.users, [{ id: ids.na, name: 'na', display_name: '李娜', role: 'admin', disabled: false }]);
  r = await api('GET', '/api/v4/users?q=FAN', { token: tokens.fang });
  assert.deepEqual(r.body.users.map((u) => u.name), ['fang']);
  r = await api('GET', '/api/v4/users?role=admin&limit=1', { token: tokens.fang });
  assert.equal(r.body.users.length, 1);
  assertError(await api('GET', '/api/v4/users', { token: tokens.lei }), 403, 'a customer');
  assertError(await api('GET', '/api/v4/users'), 401, 'no token');
  assertError(await api('GET', '/api/v4/users?role=root', { token: tokens.fang }), 400, 'bad role');
  assertError(await api('GET', `/api/v4/users?q=${'x'.repeat(300)}`, { token: tokens.fang }), 400, 'long q');
  assertError(await api('GET', '/api/v4/users?limit=0', { token: tokens.fang }), 400, 'limit');
});

test('display names for the pages: customers see agents and themselves only', async () => {
  const all = `${ids.fang},${ids.na},${ids.lei},${ids.mei},9999`;
  let r = await api('GET', `/api/v4/users/names?ids=${all}`, { token: tokens.fang });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.users.map((u) => u.display_name), ['王芳', '李娜', '李雷', '韩梅梅']);
  r = await api('GET', `/api/v4/users/names?ids=${all}`, { token: tokens.lei });
  assert.deepEqual(r.body.users, [
    { id: ids.fang, display_name: '王芳', role: 'admin' }, { id: ids.na, display_name: '李娜', role: 'admin' },
    { id: ids.lei, display_name: '李雷', role: 'user' }]);
  for (const bad of ['', 'x', '1,,2', '-1', '1;2', Array.from({ length: 101 }, (_, i) => i + 1).join(',')])
    assertError(await api('GET', `/api/v4/users/names?ids=${encodeURIComponent(bad)}`, { token: tokens.fang }), 400, bad);
  assertError(await api('GET', `/api/v4/users/names?ids=1`), 401, 'no token');
});

test('renaming: admins only; shown at once', async () => {
  let r = await api('PATCH', `/api/v4/users/${ids.mei}`, { token: tokens.fang, body: { display_name: '韩 梅' } });
  assert.equal(r.status, 200);
  assert.equal(r.body.user.display_name, '韩 梅');
  r = await api('GET', `/api/v4/users/names?ids=${ids.mei}`, { token: tokens.mei });
  assert.equal(r.body.users[0].display_name, '韩 梅');
  assertError(await api('PATCH', `/api/v4/users/${ids.mei}`, { token: tokens.mei, body: { display_name: 'me' } }), 403, 'customer');
  assertError(await api('PATCH', '/api/v4/users/9999', { token: tokens.fang, body: { display_name: 'x' } }), 404, 'nobody');
  assertError(await api('PATCH', `/api/v4/users/${ids.mei}`, { token: tokens.fang, body: { display_name: '' } }), 400, 'empty');
  assertError(await api('PATCH', `/api/v4/users/${ids.mei}`, { token: tokens.fang, body: { display_name: 'a\u0001' } }), 400, 'control');
  assertError(await api('PATCH', `/api/v4/users/${ids.mei}`, { token: tokens.fang, body: { display_name: 'x'.repeat(65) } }), 400, 'long');
});

test('online admins with their names', async () => {
  let r = await api('GET', '/api/v4/users/online-admins', { token: tokens.fang });
  assert.deepEqual(r.body.users, []);
  await connect(srv, tokens.na);
  await connect(srv, tokens.lei); // a customer is not an admin online
  r = await api('GET', '/api/v4/users/online-admins', { token: tokens.fang });
  assert.deepEqual(r.body.users.map((u) => [u.id, u.display_name]), [[ids.na, '李娜']]);
  assertError(await api('GET', '/api/v4/users/online-admins', { token: tokens.lei }), 403, 'customer');
});

test('notification recipients must exist and be admins; own broadcasts are read', async () => {
  const send = (body) => api('POST', '/api/v4/notifications/send', { token: tokens.fang, body: { type: 'info', title: 't', content: 'c', ...body } });
  assertError(await send({ target_user_id: 9999 }), 404, 'nobody');
  assertError(await send({ target_user_id: ids.lei }), 400, 'a customer');
  const unread = async (who) => (await api('GET', '/api/v4/notifications/unread-count', { token: tokens[who] })).body.count;
  const [f0, n0] = [await unread('fang'), await unread('na')];
  let r = await send({ target_user_id: ids.na });
  assert.equal(r.status, 201);
  r = await send({});
  assert.equal(r.status, 201);
  const id = r.body.notification.notification_id;
  assert.equal(await unread('fang'), f0, 'the sender\'s own broadcast is not unread for them');
  assert.equal(await unread('na'), n0 + 2);
  const mine = (await api('GET', '/api/v4/notifications', { token: tokens.fang })).body;
  const row = (mine.notifications ?? mine.items ?? mine.data ?? []).find((n) => n.notification_id === id);
  assert.equal(row?.is_read, true, JSON.stringify(mine));
});
