// Notifications (docs/app.md): POST /api/v4/notifications/send, GET /notifications, GET
// /notifications/unread-count, POST /notifications/:id/read, POST /notifications/read-all and the
// Socket.IO events notification:new / :broadcast / :update / :mark_read, against a real herald and
// the stock socket.io-client 4.7.2.
//
// Tokens are minted here with the server's --jwt-secret (admins and users are just ids in a token);
// one test signs in as a user created with `herald user add`. Every refusal is checked for its
// status and its JSON {code, message} body, and for having written nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WAIT, assertError, closeSockets, connect, next, seedAdmins } from './lib/app.mjs';
import { startHerald, storeArgs, HERALD_BIN } from './lib/server.mjs';

const SECRET = 'app-notifications-secret-0123456789';
const API_KEY = 'app-notifications-api-key-0123';
const ARGS = ['--jwt-secret', SECRET, '--api-key', API_KEY, '--demo-users', 'false', '--link-hosts', 'example.com'];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$/;

// ---- helpers ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');

/** An HS256 token for sub/role (exp in an hour unless given). */
function mint(sub, role, { secret = SECRET, exp = Math.floor(Date.now() / 1000) + 3600 } = {}) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: String(sub), role, exp })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
const admin = (id) => mint(id, 'admin');
const user = (id) => mint(id, 'user');

/** A REST call: {status, body} (body parsed as JSON). */
async function api(srv, method, path, { token, apiKey, body, raw, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (apiKey) h['X-API-Key'] = apiKey;
  if (body !== undefined || raw !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(srv.url(path), { method, headers: h, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

/** Asserts an error answer: status and a JSON {code, message} body. */

const send = (srv, body, auth = { apiKey: API_KEY }) => api(srv, 'POST', '/api/v4/notifications/send', { ...auth, body });
const list = (srv, id, query = '') => api(srv, 'GET', `/api/v4/notifications${query}`, { token: admin(id) });
const unreadCount = async (srv, id) => (await api(srv, 'GET', '/api/v4/notifications/unread-count', { token: admin(id) })).body.count;




/** Records every `event` on the socket into an array. */
function record(socket, ...events) {
  const got = [];
  for (const e of events) socket.on(e, (data) => got.push({ event: e, data }));
  return got;
}

/** The NotificationData of the product contract (APP.md): notification_id, type, title, content, link?,
 * created_at, is_read, target_user_id? with their types; `id` (= notification_id) and sender_id are
 * the extras the server adds. */
const NOTIFICATION_KEYS = ['content', 'created_at', 'id', 'is_read', 'link', 'notification_id', 'sender_id', 'target_user_id', 'title', 'type'];
function assertNotification(n, what = 'NotificationData') {
  assert.equal(typeof n, 'object', what);
  assert.deepEqual(Object.keys(n).sort(), NOTIFICATION_KEYS, `${what}: fields`);
  assert.ok(Number.isInteger(n.notification_id) && n.notification_id > 0, `${what}: integer notification_id`);
  assert.equal(n.id, n.notification_id, `${what}: id is notification_id`);
  for (const k of ['type', 'title', 'content']) assert.equal(typeof n[k], 'string', `${what}: ${k}`);
  assert.ok(n.link === null || typeof n.link === 'string', `${what}: link string or null`);
  assert.match(n.created_at, ISO, `${what}: created_at`);
  assert.equal(typeof n.is_read, 'boolean', `${what}: is_read`);
  assert.ok(n.target_user_id === null || (Number.isInteger(n.target_user_id) && n.target_user_id > 0), `${what}: target_user_id`);
  assert.ok(n.sender_id === null || Number.isInteger(n.sender_id), `${what}: sender_id`);
}

// ---- server ----

let srv;
before(async () => { srv = await startHerald(ARGS); seedAdmins(srv.dataDir); });
after(async () => { await srv?.stop(); });

// ---- send ----

test('send: 201 with the stored notification (admin token: to one admin; API key: broadcast)', async () => {
  const direct = await send(srv, { type: 'info', title: 'Order #1', content: 'paid', link: '/orders/1', target_user_id: 2 },
    { token: admin(1) });
  assert.equal(direct.status, 201, JSON.stringify(direct.body));
  const n = direct.body.notification;
  assertNotification(n);
  assert.deepEqual({ ...n, notification_id: 0, id: 0, created_at: '' }, {
    notification_id: 0, id: 0, type: 'info', title: 'Order #1', content: 'paid', link: '/orders/1', sender_id: 1, target_user_id: 2,
    is_read: false, created_at: '',
  });
  const t = Date.parse(n.created_at);
  assert.ok(Math.abs(t - Date.now()) < 60000, 'created now');

  const broad = await send(srv, { type: 'warning', title: 'Disk', content: '', link: 'https://example.com/d' });
  assert.equal(broad.status, 201);
  assertNotification(broad.body.notification);
  assert.equal(broad.body.notification.sender_id, null, 'the API key has no user id');
  assert.equal(broad.body.notification.target_user_id, null, 'broadcast');
  assert.ok(broad.body.notification.id > n.id);

  // optional fields: link absent, null or "" all mean no link; target null means broadcast
  for (const extra of [{}, { link: null }, { link: '' }, { target_user_id: null }]) {
    const r = await send(srv, { type: 'system', title: 't', content: 'c', ...extra });
    assert.equal(r.status, 201, JSON.stringify(extra));
    assert.equal(r.body.notification.link, null);
  }
  // the stored notification is what the target lists
  const mine = await list(srv, 2, '?limit=100');
  assert.deepEqual(mine.body.items.find((x) => x.id === n.id), n);
});

test('send: limits count characters, not bytes', async () => {
  const ok = await send(srv, { type: '通'.repeat(32), title: '標'.repeat(200), content: '内'.repeat(10000), target_user_id: 7 });
  assert.equal(ok.status, 201);
  assert.equal(ok.body.notification.title.length, 200);
  assertError(await send(srv, { type: 'info', title: '標'.repeat(201), content: '' }), 400, 'title 201 CJK');
  const emoji = await send(srv, { type: 'info', title: '🎉'.repeat(200), content: '', target_user_id: 7 });
  assert.equal(emoji.status, 201, '200 astral characters are 200 characters');
});

test('send: refusals (401, 403, 400 per field, 413) write nothing', async () => {
  // ids are consecutive: a probe before and after shows whether anything was stored in between
  const good = { type: 'info', title: 't', content: 'c' };
  const probe = async () => (await send(srv, { ...good, target_user_id: 98 })).body.notification.id;
  const before = await probe();
  const path = '/api/v4/notifications/send';

  assertError(await api(srv, 'POST', path, { body: good }), 401, 'no credentials');
  assertError(await api(srv, 'POST', path, { token: 'not.a.token', body: good }), 401, 'garbage token');
  assertError(await api(srv, 'POST', path, { token: mint(1, 'admin', { secret: 'another-secret-0123456789' }), body: good }), 401, 'wrong key');
  assertError(await api(srv, 'POST', path, { token: mint(1, 'admin', { exp: 1000 }), body: good }), 401, 'expired');
  assertError(await api(srv, 'POST', path, { apiKey: 'wrong-key', body: good }), 401, 'bad API key');
  assertError(await api(srv, 'POST', path, { headers: { Authorization: 'Basic abc' }, body: good }), 401, 'not Bearer');
  assertError(await api(srv, 'POST', path, { token: user(5), body: good }), 403, 'user role');

  const bad = [
    [{ title: 't', content: 'c' }, 'type missing'],
    [{ ...good, type: '' }, 'type empty'],
    [{ ...good, type: 'x'.repeat(33) }, 'type 33 chars'],
    [{ ...good, type: 7 }, 'type not a string'],
    [{ type: 'info', content: 'c' }, 'title missing'],
    [{ ...good, title: '' }, 'title empty'],
    [{ ...good, title: 'x'.repeat(201) }, 'title 201 chars'],
    [{ ...good, title: ['t'] }, 'title not a string'],
    [{ type: 'info', title: 't' }, 'content missing'],
    [{ ...good, content: 'x'.repeat(10001) }, 'content 10001 chars'],
    [{ ...good, content: { a: 1 } }, 'content not a string'],
    [{ ...good, link: 42 }, 'link not a string'],
    [{ ...good, link: '/' + 'x'.repeat(2048) }, 'link 2049 chars'],
    [{ ...good, link: 'javascript:alert(1)' }, 'link javascript:'],
    [{ ...good, link: 'ftp://example.com/' }, 'link ftp:'],
    [{ ...good, link: '/a\nb' }, 'link with a control character'],
    [{ ...good, target_user_id: 0 }, 'target 0'],
    [{ ...good, target_user_id: -3 }, 'target negative'],
    [{ ...good, target_user_id: 1.5 }, 'target fractional'],
    [{ ...good, target_user_id: '2' }, 'target a string'],
    [{ ...good, target_user_id: true }, 'target boolean'],
  ];
  for (const [body, what] of bad) {
    const r = await send(srv, body);
    assertError(r, 400, what);
  }
  for (const raw of ['', 'not json', '[1,2]', '"text"', '{"type":"info","type":"x","title":"t","content":"c"}']) {
    assertError(await api(srv, 'POST', path, { apiKey: API_KEY, raw }), 400, `body ${JSON.stringify(raw)}`);
  }
  // a body past the limit (256 KiB) is 413 before it is parsed
  assertError(await send(srv, { ...good, content: 'x'.repeat(300 * 1024) }), 413, 'oversize body');

  assert.equal(await probe(), before + 1, 'nothing was stored');
});

// ---- pushes ----

test('push: notification:new reaches every tab of the target admin, and nobody else', async () => {
  const [tab1, tab2, other, customer] = await Promise.all([
    connect(srv, admin(21)), connect(srv, admin(21)), connect(srv, admin(22)), connect(srv, user(21))]);
  const otherGot = record(other, 'notification:new', 'notification:broadcast');
  const customerGot = record(customer, 'notification:new', 'notification:broadcast');
  const p1 = next(tab1, 'notification:new');
  const p2 = next(tab2, 'notification:new');
  const r = await send(srv, { type: 'info', title: 'for 21', content: 'hello', target_user_id: 21 }, { token: admin(1) });
  assert.equal(r.status, 201);
  const [a, b] = await Promise.all([p1, p2]);
  assert.deepEqual(a, r.body.notification, 'tab 1 gets the NotificationData');
  assert.deepEqual(b, r.body.notification, 'tab 2 gets the NotificationData');
  await sleep(200);
  assert.deepEqual(otherGot, [], 'another admin gets nothing');
  assert.deepEqual(customerGot, [], 'user 21 (same id, role user) gets nothing');
});

test('push: notification:broadcast reaches every online admin (all tabs), not users', async () => {
  const admins = await Promise.all([connect(srv, admin(31)), connect(srv, admin(31)), connect(srv, admin(32))]);
  const users = await Promise.all([connect(srv, user(31)), connect(srv, user(33))]);
  const userGot = users.map((u) => record(u, 'notification:new', 'notification:broadcast'));
  const waits = admins.map((s) => next(s, 'notification:broadcast'));
  const r = await send(srv, { type: 'system', title: 'to all admins', content: 'x' });
  assert.equal(r.status, 201);
  for (const got of await Promise.all(waits)) assert.deepEqual(got, r.body.notification);
  await sleep(200);
  assert.deepEqual(userGot, [[], []], 'users get no notification events');
  // and every admin sees it in their list
  for (const id of [31, 32, 40]) {
    const l = await list(srv, id, '?limit=5');
    assert.ok(l.body.items.some((x) => x.id === r.body.notification.id), `admin ${id} lists it`);
  }
});

test('contract: notification:new, notification:broadcast, the send answer and GET items are NotificationData', async () => {
  const [target, other] = await Promise.all([connect(srv, admin(35)), connect(srv, admin(36))]);
  const direct = next(target, 'notification:new');
  const broad = next(other, 'notification:broadcast');
  const d = await send(srv, { type: 'success', title: 'Order #35 paid', content: 'total 12.50', link: 'https://example.com/o/35', target_user_id: 35 },
    { token: admin(1) });
  const b = await send(srv, { type: 'warning', title: 'Disk 90%', content: 'node a' });
  assert.deepEqual([d.status, b.status], [201, 201]);
  assertNotification(d.body.notification, 'send answer (direct)');
  assertNotification(b.body.notification, 'send answer (broadcast)');

  const pushed = await direct;
  assertNotification(pushed, 'notification:new');
  assert.deepEqual(
    { notification_id: pushed.notification_id, type: pushed.type, title: pushed.title, content: pushed.content, link: pushed.link, is_read: pushed.is_read, target_user_id: pushed.target_user_id },
    { notification_id: d.body.notification.notification_id, type: 'success', title: 'Order #35 paid', content: 'total 12.50', link: 'https://example.com/o/35', is_read: false, target_user_id: 35 });
  const everyone = await broad;
  assertNotification(everyone, 'notification:broadcast');
  assert.equal(everyone.notification_id, b.body.notification.notification_id);
  assert.deepEqual([everyone.target_user_id, everyone.link, everyone.is_read], [null, null, false]);

  const items = (await list(srv, 35, '?limit=100')).body.items;
  items.forEach((n, i) => assertNotification(n, `GET /notifications item ${i}`));
  const listed = items.find((n) => n.notification_id === d.body.notification.notification_id);
  assert.deepEqual(listed, d.body.notification, 'listed as sent');
  assert.ok(items.some((n) => n.notification_id === b.body.notification.notification_id), 'the broadcast is listed');
  // the id a client marks read with is the notification_id it was given
  const read = await api(srv, 'POST', `/api/v4/notifications/${pushed.notification_id}/read`, { token: admin(35) });
  assert.deepEqual(read.body, { notification_id: pushed.notification_id, is_read: true });
  const unread = (await list(srv, 35, '?unread=true&limit=100')).body.items;
  unread.forEach((n, i) => assertNotification(n, `GET /notifications?unread=true item ${i}`));
  assert.ok(!unread.some((n) => n.notification_id === pushed.notification_id), 'read: no longer unread');
});

test('the answer comes after the commit: a notification pushed to a socket is already listed', async () => {
  const s = await connect(srv, admin(41));
  const got = next(s, 'notification:new');
  await send(srv, { type: 'info', title: 'durable', content: '', target_user_id: 41 });
  const n = await got;
  const l = await list(srv, 41, '?limit=1');
  assert.equal(l.body.items[0].id, n.id);
});

// ---- mark read ----

test('POST :id/read: 200, notification:update to every tab of that admin; idempotent; unread count drops', async () => {
  const r = await send(srv, { type: 'info', title: 'read me', content: '', target_user_id: 51 });
  const id = r.body.notification.id;
  const [tab1, tab2, other] = await Promise.all([connect(srv, admin(51)), connect(srv, admin(51)), connect(srv, admin(52))]);
  const otherGot = record(other, 'notification:update');
  const before = await unreadCount(srv, 51);
  const u1 = next(tab1, 'notification:update');
  const u2 = next(tab2, 'notification:update');
  const res = await api(srv, 'POST', `/api/v4/notifications/${id}/read`, { token: admin(51) });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { notification_id: id, is_read: true });
  assert.deepEqual(await u1, { notification_id: id, is_read: true });
  assert.deepEqual(await u2, { notification_id: id, is_read: true });
  assert.equal(await unreadCount(srv, 51), before - 1);
  const item = (await list(srv, 51, '?limit=100')).body.items.find((x) => x.id === id);
  assert.equal(item.is_read, true);

  // again: same answer, nothing changes, no second update
  const tabGot = record(tab1, 'notification:update');
  const again = await api(srv, 'POST', `/api/v4/notifications/${id}/read`, { token: admin(51) });
  assert.deepEqual([again.status, again.body], [200, { notification_id: id, is_read: true }]);
  assert.equal(await unreadCount(srv, 51), before - 1);
  await sleep(200);
  assert.deepEqual(tabGot, [], 'no update when nothing changed');
  assert.deepEqual(otherGot, [], 'another admin gets no update');
});

test('read state is per admin: a broadcast read by one admin stays unread for another', async () => {
  const r = await send(srv, { type: 'info', title: 'shared', content: '' });
  const id = r.body.notification.id;
  assert.equal((await api(srv, 'POST', `/api/v4/notifications/${id}/read`, { token: admin(61) })).status, 200);
  const a = (await list(srv, 61, '?limit=5')).body.items.find((x) => x.id === id);
  const b = (await list(srv, 62, '?limit=5')).body.items.find((x) => x.id === id);
  assert.equal(a.is_read, true);
  assert.equal(b.is_read, false);
});

test('POST :id/read refusals: 401, 403 (user, API key), 400 bad id, 404 unknown or not visible', async () => {
  const r = await send(srv, { type: 'info', title: 'private', content: '', target_user_id: 71 });
  const id = r.body.notification.id;
  const path = `/api/v4/notifications/${id}/read`;
  assertError(await api(srv, 'POST', path), 401, 'no token');
  assertError(await api(srv, 'POST', path, { token: 'x.y.z' }), 401, 'bad token');
  assertError(await api(srv, 'POST', path, { token: user(71) }), 403, 'user role');
  assertError(await api(srv, 'POST', path, { apiKey: API_KEY }), 403, 'API key: no inbox');
  assertError(await api(srv, 'POST', path, { token: mint('alice', 'admin') }), 403, 'non-numeric admin id');
  assertError(await api(srv, 'POST', '/api/v4/notifications/abc/read', { token: admin(71) }), 400, 'id abc');
  assertError(await api(srv, 'POST', '/api/v4/notifications/0/read', { token: admin(71) }), 400, 'id 0');
  assertError(await api(srv, 'POST', '/api/v4/notifications/99999999/read', { token: admin(71) }), 404, 'unknown id');
  assertError(await api(srv, 'POST', path, { token: admin(72) }), 404, "another admin's notification");
  const item = (await list(srv, 71, '?limit=100')).body.items.find((x) => x.id === id);
  assert.equal(item.is_read, false, 'still unread');
});

test('notification:mark_read: ack {success, data}, notification:update to every tab; errors ack {success:false, error}', async () => {
  const r = await send(srv, { type: 'info', title: 'via socket', content: '', target_user_id: 81 });
  const id = r.body.notification.id;
  const [tab1, tab2] = await Promise.all([connect(srv, admin(81)), connect(srv, admin(81))]);
  const u1 = next(tab1, 'notification:update');
  const u2 = next(tab2, 'notification:update');
  const ack = await tab1.timeout(WAIT).emitWithAck('notification:mark_read', { notification_id: id });
  assert.deepEqual(ack, { success: true, data: { notification_id: id, is_read: true } });
  assert.deepEqual(await u1, { notification_id: id, is_read: true });
  assert.deepEqual(await u2, { notification_id: id, is_read: true });
  const item = (await list(srv, 81, '?limit=100')).body.items.find((x) => x.id === id);
  assert.equal(item.is_read, true, 'stored');

  for (const [payload, what] of [[{ notification_id: 99999999 }, 'unknown'], [{}, 'missing id'],
    [{ notification_id: 'abc' }, 'not a number'], [{ notification_id: -1 }, 'negative'], [null, 'no object']]) {
    const a = await tab1.timeout(WAIT).emitWithAck('notification:mark_read', payload);
    assert.equal(a.success, false, what);
    assert.equal(typeof a.error, 'string', what);
  }
  // another admin's notification is not visible to them
  const other = await connect(srv, admin(82));
  const a = await other.timeout(WAIT).emitWithAck('notification:mark_read', { notification_id: id });
  assert.deepEqual(a.success, false);
  // a user socket has no notifications
  const customer = await connect(srv, user(81));
  const b = await customer.timeout(WAIT).emitWithAck('notification:mark_read', { notification_id: id });
  assert.equal(b.success, false);
  assert.match(b.error, /admin/);
});

test('notification:mark_read without an ack still marks and pushes; a socket closing before the answer is harmless', async () => {
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await send(srv, { type: 'info', title: `q${i}`, content: '', target_user_id: 83 })).body.notification.id);
  const tab = await connect(srv, admin(83));
  const update = next(tab, 'notification:update');
  tab.emit('notification:mark_read', { notification_id: ids[0] });
  assert.deepEqual(await update, { notification_id: ids[0], is_read: true });
  // ask, then vanish at once: the store answers after the socket is gone
  const gone = await connect(srv, admin(83));
  gone.emit('notification:mark_read', { notification_id: ids[1] }, () => {});
  gone.emit('notification:mark_read', { notification_id: ids[2] }, () => {});
  gone.disconnect();
  await sleep(300);
  const items = (await list(srv, 83, '?limit=10')).body.items;
  assert.ok(ids.every((id) => items.find((x) => x.id === id).is_read), 'all three read');
  assert.equal((await api(srv, 'GET', '/health')).status, 200, 'server alive');
});

test('POST read-all: {count}, notification:update {all, is_read, count} to every tab, then 0', async () => {
  for (let i = 0; i < 3; i++) await send(srv, { type: 'info', title: `all ${i}`, content: '', target_user_id: 91 });
  const [tab1, tab2] = await Promise.all([connect(srv, admin(91)), connect(srv, admin(91))]);
  const unread = await unreadCount(srv, 91);
  assert.ok(unread >= 3);
  const u1 = next(tab1, 'notification:update');
  const u2 = next(tab2, 'notification:update');
  const res = await api(srv, 'POST', '/api/v4/notifications/read-all', { token: admin(91) });
  assert.deepEqual([res.status, res.body], [200, { count: unread }]);
  assert.deepEqual(await u1, { all: true, is_read: true, count: unread });
  assert.deepEqual(await u2, { all: true, is_read: true, count: unread });
  assert.equal(await unreadCount(srv, 91), 0);
  const again = await api(srv, 'POST', '/api/v4/notifications/read-all', { token: admin(91) });
  assert.deepEqual([again.status, again.body], [200, { count: 0 }]);
  const path = '/api/v4/notifications/read-all';
  assertError(await api(srv, 'POST', path), 401, 'no token');
  assertError(await api(srv, 'POST', path, { token: user(91) }), 403, 'user');
  assertError(await api(srv, 'POST', path, { apiKey: API_KEY }), 403, 'API key');
});

test('GET list / unread-count refusals: 401, 403, 400 bad query', async () => {
  for (const path of ['/api/v4/notifications', '/api/v4/notifications/unread-count']) {
    assertError(await api(srv, 'GET', path), 401, `${path} no token`);
    assertError(await api(srv, 'GET', path, { token: 'abc' }), 401, `${path} bad token`);
    assertError(await api(srv, 'GET', path, { apiKey: 'nope' }), 401, `${path} bad API key`);
    assertError(await api(srv, 'GET', path, { token: user(1) }), 403, `${path} user`);
    assertError(await api(srv, 'GET', path, { apiKey: API_KEY }), 403, `${path} API key`);
  }
  for (const q of ['?limit=0', '?limit=101', '?limit=abc', '?before=-1', '?before=x', '?unread=maybe']) {
    assertError(await list(srv, 1, q), 400, q);
  }
});

test('sign in as a user made with `herald user add`, then use the token', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-notif-login-'));
  execFileSync(HERALD_BIN, ['user', 'add', 'ops', '--role', 'admin', '--password', 'ops-password', '--data-dir', dataDir, ...storeArgs(dataDir)], { stdio: 'pipe' });
  execFileSync(HERALD_BIN, ['user', 'add', 'alice', '--role', 'user', '--password', 'alice-password', '--data-dir', dataDir, ...storeArgs(dataDir)], { stdio: 'pipe' });
  const s2 = await startHerald(ARGS, { dataDir });
  try {
    const login = async (username, password) => api(s2, 'POST', '/api/v4/auth/login', { body: { username, password } });
    const ops = await login('ops', 'ops-password');
    assert.equal(ops.status, 200);
    const alice = await login('alice', 'alice-password');
    assert.equal(alice.status, 200);
    const tab = await connect(s2, ops.body.token);
    const got = next(tab, 'notification:new');
    const sent = await send(s2, { type: 'info', title: 'to ops', content: 'hi', target_user_id: ops.body.user.id },
      { token: ops.body.token });
    assert.equal(sent.status, 201);
    assert.equal(sent.body.notification.sender_id, ops.body.user.id);
    assert.deepEqual(await got, sent.body.notification);
    const l = await api(s2, 'GET', '/api/v4/notifications', { token: ops.body.token });
    assert.deepEqual(l.body, { items: [sent.body.notification], has_more: false });
    assertError(await send(s2, { type: 'info', title: 't', content: '' }, { token: alice.body.token }), 403, 'a user cannot send');
    assertError(await api(s2, 'GET', '/api/v4/notifications', { token: alice.body.token }), 403, 'a user has no list');
  } finally {
    closeSockets();
    await s2.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** The samples of /metrics as {name{labels}: value}. */
async function metrics(server) {
  const text = await (await fetch(server.url('/metrics'))).text();
  return Object.fromEntries(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => {
    const at = l.lastIndexOf(' ');
    return [l.slice(0, at), Number(l.slice(at + 1))];
  }));
}

test('/metrics counts sends by target, reads, pushes', async (t) => {
  const m0 = await metrics(srv);
  if (!('herald_notifications_sent_total{target="admin"}' in m0)) {
    return t.skip('hd_notifications_metrics() is not part of /metrics yet');
  }
  const [tab1, tab2] = await Promise.all([connect(srv, admin(95)), connect(srv, admin(95))]);
  const got = Promise.all([next(tab1, 'notification:new'), next(tab2, 'notification:new')]);
  const r = await send(srv, { type: 'info', title: 'm', content: '', target_user_id: 95 });
  await got;
  const updated = Promise.all([next(tab1, 'notification:update'), next(tab2, 'notification:update')]);
  await api(srv, 'POST', `/api/v4/notifications/${r.body.notification.id}/read`, { token: admin(95) });
  await updated;
  // the pushes are counted when every shard has reported its deliveries, which may be just after the
  // tabs got them: wait (bounded) for the count to settle
  let m1 = await metrics(srv);
  for (let i = 0; i < 50 && m1['herald_notifications_pushes_total'] - m0['herald_notifications_pushes_total'] < 4; i++) {
    await new Promise((r) => setTimeout(r, 20));
    m1 = await metrics(srv);
  }
  const delta = (k) => m1[k] - m0[k];
  assert.equal(delta('herald_notifications_sent_total{target="admin"}'), 1);
  assert.equal(delta('herald_notifications_sent_total{target="broadcast"}'), 0);
  assert.equal(delta('herald_notifications_read_total'), 1);
  assert.equal(delta('herald_notifications_pushes_total'), 4, 'new and update, to two tabs');
  assert.equal(delta('herald_notifications_store_errors_total'), 0);
});

// ---- list (own server: exact contents) ----

test('GET list: newest first, limit, before, has_more (also at limit 100), unread filter, visibility', async () => {
  const s2 = await startHerald(ARGS);
  seedAdmins(s2.dataDir);
  try {
    const mk = (body) => send(s2, { type: 'info', content: '', ...body });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await mk({ title: `a${i}`, target_user_id: 1 })).body.notification.id);
    ids.push((await mk({ title: 'b' })).body.notification.id); // broadcast: visible to 1 and 2
    await mk({ title: 'for 2', target_user_id: 2 });            // not visible to 1
    const all = await list(s2, 1);
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.items.map((x) => x.id), [...ids].reverse(), 'newest first, only visible ones');
    assert.equal(all.body.has_more, false);
    all.body.items.forEach(assertNotification);

    const page1 = await list(s2, 1, '?limit=4');
    assert.deepEqual(page1.body.items.map((x) => x.id), ids.slice(2).reverse());
    assert.equal(page1.body.has_more, true);
    const page2 = await list(s2, 1, `?limit=4&before=${page1.body.items.at(-1).id}`);
    assert.deepEqual(page2.body.items.map((x) => x.id), ids.slice(0, 2).reverse());
    assert.equal(page2.body.has_more, false);
    const exact = await list(s2, 1, '?limit=6');
    assert.equal(exact.body.items.length, 6);
    assert.equal(exact.body.has_more, false, 'exactly limit items: no more');

    await api(s2, 'POST', `/api/v4/notifications/${ids[1]}/read`, { token: admin(1) });
    await api(s2, 'POST', `/api/v4/notifications/${ids[5]}/read`, { token: admin(1) });
    const unread = await list(s2, 1, '?unread=true');
    assert.deepEqual(unread.body.items.map((x) => x.id), [ids[4], ids[3], ids[2], ids[0]]);
    assert.ok(unread.body.items.every((x) => x.is_read === false));
    const unread2 = await list(s2, 1, '?unread=true&limit=2');
    assert.deepEqual([unread2.body.items.length, unread2.body.has_more], [2, true]);
    assert.equal((await list(s2, 1, '?unread=false')).body.items.length, 6);
    assert.equal(await unreadCount(s2, 1), 4);
    assert.equal(await unreadCount(s2, 2), 2, 'admin 2: the broadcast and their own');
    assert.equal(await unreadCount(s2, 3), 1, 'admin 3: the broadcast');

    // has_more at the store's maximum page (100): 101 visible to admin 9
    for (let i = 0; i < 100; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => mk({ title: `m${i + j}`, target_user_id: 9 })));
    }
    const full = await list(s2, 9, '?limit=100');
    assert.equal(full.body.items.length, 100);
    assert.equal(full.body.has_more, true, 'the broadcast b is older than all 100');
    const rest = await list(s2, 9, `?limit=100&before=${full.body.items.at(-1).id}`);
    assert.deepEqual(rest.body.items.map((x) => x.title), ['b']);
    assert.equal(rest.body.has_more, false);
    const ids9 = full.body.items.map((x) => x.id);
    assert.deepEqual(ids9, [...ids9].sort((a, b) => b - a), 'sorted newest first');
  } finally {
    await s2.stop();
  }
});
