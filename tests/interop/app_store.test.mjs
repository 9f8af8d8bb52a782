// The store under the application, on whichever backend the run uses (SQLite by default,
// PostgreSQL with HERALD_STORE=postgres): retention pruning (old rows aged with direct SQL, then
// pruned in the background and counted in /metrics), chat assignment exactly once when automatic
// assignments race (admins coming online while sessions start, on one node and on two), and two
// nodes on one store agreeing on notifications and read state (and, with HERALD_TEST_REDIS_URL, live:
// a notification sent through one node reaches the admin's socket on the other). PostgreSQL only:
// nodes starting together on an empty database migrate it once; a connection the server drops.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { startHerald, storeArgs, storeSql, STORE } from './lib/server.mjs';
import { seedAdmins } from './lib/app.mjs';

const WAIT = 5000;
const SECRET = 'store-interop-secret-0123456789abcdef';
const API_KEY = 'store-interop-api-key-0123';
const ARGS = ['--jwt-secret', SECRET, '--api-key', API_KEY, '--demo-users', 'false'];
const DAY = 24 * 3600 * 1000;
const SESSIONS = '/api/v4/customer-service/sessions';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function token(sub, role) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(sub), role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

/** fetch with a JSON body, answering {status, body}; as: a token, or 'api' for the API key. */
async function call(srv, method, path, { as, body } = {}) {
  const headers = {};
  if (as === 'api') headers['x-api-key'] = API_KEY;
  else if (as) headers.authorization = `Bearer ${as}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(srv.url(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

/** Polls check() every 50 ms until it is truthy (its value) or ms pass (throws). */
async function until(what, check, ms = WAIT) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) {
    const v = await check();
    if (v) return v;
  }
  throw new Error(`timed out: ${what}`);
}

const sockets = new Set();
afterEach(() => { for (const s of sockets) s.close(); sockets.clear(); });

/** A connected Socket.IO client recording every event in s.got. */
async function connect(srv, tok) {
  const s = io(srv.url('/'), { auth: { token: tok }, transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT });
  sockets.add(s);
  s.got = [];
  s.onAny((event, ...args) => s.got.push({ event, data: args[0] }));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timed out')), WAIT);
    s.once('connect', () => { clearTimeout(t); resolve(); });
    s.once('connect_error', (e) => { clearTimeout(t); reject(e); });
  });
  return s;
}

/** A Prometheus series' value from /metrics. */
async function metric(srv, series) {
  const text = (await call(srv, 'GET', '/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : undefined;
}

test('retention: old notifications and long-closed chat sessions are pruned in the background and counted', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-retention-'));
  let srv;
  try {
    srv = await startHerald([...ARGS, '--retention-notifications-days', '30', '--retention-chat-days', '7',
      '--retention-interval', '200'], { dataDir });
    seedAdmins(dataDir, [9001]); // a notification's target must be an admin of the database
    const admin = token(9001, 'admin'), user = token(9002, 'user');
    const ids = [];
    for (let i = 0; i < 6; i++) {
      const r = await call(srv, 'POST', '/api/v4/notifications/send', { as: 'api', body: { type: 'info', title: `n${i}`, content: 'c', target_user_id: 9001 } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids.push(r.body.notification.id);
    }
    await call(srv, 'POST', `/api/v4/notifications/${ids[0]}/read`, { as: admin });
    // three sessions: closed 10 days ago (pruned), closed 3 days ago (kept), open and old (kept)
    const sid = [];
    for (let i = 0; i < 3; i++) sid.push((await call(srv, 'POST', SESSIONS, { as: user, body: { content: `s${i}` } })).body.session.id);
    for (const id of sid.slice(0, 2)) assert.equal((await call(srv, 'POST', `${SESSIONS}/${id}/close`, { as: user })).status, 200);
    const now = Date.now();
    storeSql(dataDir, `UPDATE notifications SET created_at = ${now - 31 * DAY} WHERE id IN (${ids.slice(0, 4).join(', ')})`);
    storeSql(dataDir, `UPDATE chat_sessions SET closed_at = ${now - 10 * DAY} WHERE id = ${sid[0]}`);
    storeSql(dataDir, `UPDATE chat_sessions SET closed_at = ${now - 3 * DAY} WHERE id = ${sid[1]}`);
    storeSql(dataDir, `UPDATE chat_sessions SET created_at = ${now - 100 * DAY}, updated_at = ${now - 100 * DAY} WHERE id = ${sid[2]}`);

    await until('notifications pruned', async () => (await metric(srv, 'herald_retention_pruned_total{kind="notifications"}')) === 4);
    await until('chat pruned', async () => (await metric(srv, 'herald_retention_pruned_total{kind="chat_sessions"}')) === 1);
    assert.equal(await metric(srv, 'herald_retention_pruned_total{kind="chat_messages"}'), 1);
    assert.equal(await metric(srv, 'herald_retention_failures_total'), 0);
    const list = (await call(srv, 'GET', '/api/v4/notifications?limit=100', { as: admin })).body.items.map((n) => n.id);
    assert.deepEqual(list.sort(), ids.slice(4).sort());
    assert.equal((await call(srv, 'GET', '/api/v4/notifications/unread-count', { as: admin })).body.count, 2);
    const mine = (await call(srv, 'GET', SESSIONS, { as: user })).body.items.map((s) => s.session_id);
    assert.deepEqual(mine.sort(), sid.slice(1).sort());
    assert.equal((await call(srv, 'GET', `${SESSIONS}/${sid[0]}/messages`, { as: user })).status, 404);
    // a second round finds nothing more
    const rounds = await metric(srv, 'herald_retention_rounds_total');
    await until('another round', async () => (await metric(srv, 'herald_retention_rounds_total')) > rounds);
    assert.equal(await metric(srv, 'herald_retention_pruned_total{kind="notifications"}'), 4);
  } finally {
    await srv?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('retention off (the default): nothing is pruned and no round runs', async () => {
  const srv = await startHerald(ARGS);
  try {
    assert.equal(await metric(srv, 'herald_retention_rounds_total'), 0);
    assert.equal(await metric(srv, 'herald_retention_pruned_total{kind="notifications"}'), 0);
  } finally {
    await srv.stop();
  }
});

/** Every chat:session_assigned the sockets got, as session_id -> [admin ids]. */
function assignments(sockets) {
  const by = new Map();
  for (const s of sockets) {
    for (const { event, data } of s.got) {
      if (event !== 'chat:session_assigned') continue;
      by.set(data.session_id, [...(by.get(data.session_id) || []), s.adminId]);
    }
  }
  return by;
}

/** Starts `count` sessions at once while the admins come online; checks each is assigned once. */
async function raceAssignments(nodes, count) {
  const users = Array.from({ length: count }, (_, i) => token(7000 + i, 'user'));
  // some sessions wait before any admin is online, the rest start while admins connect
  const early = await Promise.all(users.slice(0, count / 2).map((u, i) =>
    call(nodes[i % nodes.length], 'POST', SESSIONS, { as: u, body: { content: `early ${i}` } })));
  const admins = nodes.map((n, i) => ({ node: n, id: 8000 + i }));
  const [late, sockets] = await Promise.all([
    Promise.all(users.slice(count / 2).map((u, i) =>
      call(nodes[i % nodes.length], 'POST', SESSIONS, { as: u, body: { content: `late ${i}` } }))),
    Promise.all(admins.map(async (a) => { const s = await connect(a.node, token(a.id, 'admin')); s.adminId = a.id; return s; })),
  ]);
  const ids = [...early, ...late].map((r) => { assert.equal(r.status, 201, JSON.stringify(r.body)); return r.body.session.id; });
  await until('every session assigned', () => ids.every((id) => assignments(sockets).has(id)));
  await sleep(300); // a duplicate would come now
  const by = assignments(sockets);
  for (const id of ids) assert.equal(by.get(id).length, 1, `session ${id} assigned ${by.get(id).length} times: ${by.get(id)}`);
  // and the store agrees with what was announced
  for (const id of ids) {
    const s = (await call(nodes[0], 'GET', `${SESSIONS}/${id}/messages`, { as: token(by.get(id)[0], 'admin') }));
    assert.equal(s.status, 200);
  }
  const listed = new Map();
  for (const a of admins) {
    for (const s of (await call(nodes[0], 'GET', `${SESSIONS}?status=active&limit=100`, { as: token(a.id, 'admin') })).body.items) {
      listed.set(s.session_id, s.admin_id);
    }
  }
  for (const id of ids) assert.equal(listed.get(id), by.get(id)[0], `session ${id}: stored admin = announced admin`);
}

test('chat assignment happens exactly once when admins come online while sessions start (one node)', async () => {
  const srv = await startHerald(ARGS);
  try {
    await raceAssignments([srv], 40);
  } finally {
    await srv.stop();
  }
});

test('two nodes on one store: notifications, read state and unread counts agree; chat assigned once across nodes', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-two-nodes-'));
  let a, b;
  try {
    a = await startHerald(ARGS, { dataDir });
    b = await startHerald(ARGS, { dataDir });
    seedAdmins(dataDir, [9100]);
    const admin = token(9100, 'admin');
    const sent = await call(b, 'POST', '/api/v4/notifications/send', { as: 'api', body: { type: 'info', title: 'via B', content: 'c', target_user_id: 9100 } });
    assert.equal(sent.status, 201);
    const id = sent.body.notification.id;
    const onA = (await call(a, 'GET', '/api/v4/notifications?limit=10', { as: admin })).body.items;
    assert.deepEqual(onA.map((n) => [n.id, n.title, n.is_read]), [[id, 'via B', false]]);
    assert.equal((await call(a, 'GET', '/api/v4/notifications/unread-count', { as: admin })).body.count, 1);
    assert.equal((await call(a, 'POST', `/api/v4/notifications/${id}/read`, { as: admin })).status, 200);
    assert.equal((await call(b, 'GET', '/api/v4/notifications/unread-count', { as: admin })).body.count, 0);
    assert.equal((await call(b, 'GET', '/api/v4/notifications?limit=10', { as: admin })).body.items[0].is_read, true);
    // a broadcast from A, read-all on B
    await call(a, 'POST', '/api/v4/notifications/send', { as: 'api', body: { type: 'info', title: 'all', content: 'c' } });
    assert.equal((await call(b, 'GET', '/api/v4/notifications/unread-count', { as: admin })).body.count, 1);
    assert.equal((await call(b, 'POST', '/api/v4/notifications/read-all', { as: admin })).status, 200);
    assert.equal((await call(a, 'GET', '/api/v4/notifications/unread-count', { as: admin })).body.count, 0);
    await raceAssignments([a, b], 40);
  } finally {
    await a?.stop();
    await b?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('two nodes on one store and one Redis: a notification sent through node B reaches the admin on node A, read state syncs',
  { skip: !process.env.HERALD_TEST_REDIS_URL && 'HERALD_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server)' }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-two-nodes-redis-'));
  const cluster = ['--redis-url', process.env.HERALD_TEST_REDIS_URL, '--redis-prefix', `store-test-${process.pid}-${Date.now()}`];
  let a, b;
  try {
    a = await startHerald([...ARGS, ...cluster], { dataDir });
    b = await startHerald([...ARGS, ...cluster], { dataDir });
    seedAdmins(dataDir, [9200]);
    const admin = token(9200, 'admin');
    const onA = await connect(a, admin), onB = await connect(b, admin);
    await until('both nodes see each other', async () => (await call(a, 'GET', '/health')).body.cluster?.nodes >= 2);
    const sent = await call(b, 'POST', '/api/v4/notifications/send', { as: 'api', body: { type: 'info', title: 'B to A', content: 'c', target_user_id: 9200 } });
    assert.equal(sent.status, 201);
    const id = sent.body.notification.id;
    const got = await until('notification:new on node A', () => onA.got.find((e) => e.event === 'notification:new'));
    assert.equal(got.data.id, id);
    assert.equal(got.data.title, 'B to A');
    // read on node A (socket): node B's tab hears notification:update, and both nodes count 0 unread
    const ack = await onA.timeout(WAIT).emitWithAck('notification:mark_read', { notification_id: id });
    assert.equal(ack.success, true, JSON.stringify(ack));
    await until('notification:update on node B', () => onB.got.find((e) => e.event === 'notification:update' && e.data.notification_id === id));
    for (const n of [a, b]) assert.equal((await call(n, 'GET', '/api/v4/notifications/unread-count', { as: admin })).body.count, 0);
  } finally {
    await a?.stop();
    await b?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('two nodes starting together on an empty PostgreSQL database migrate it once', { skip: STORE !== 'postgres' && 'PostgreSQL only' }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-migrate-'));
  let nodes = [];
  try {
    // a password in the URL (the test server trusts loopback, so any will do): it must not be logged
    const url = storeArgs(dataDir)[1].replace('://herald@', '://herald:pw-secret-1@');
    nodes = await Promise.all([0, 1, 2].map(() => startHerald([...ARGS, '--postgres-url', url], { dataDir })));
    await sleep(100);
    const applied = nodes.map((n) => /msg="migrations applied" count=(\d+)/.exec(n.log)?.[1] ?? '0').map(Number);
    for (const n of nodes) assert.doesNotMatch(n.log, /pw-secret-1/, 'no password in the log');
    assert.match(nodes.map((n) => n.log).join(''), /msg="migrations applied" count=4 path=postgresql:\/\/herald:\*\*\*@/);
    assert.deepEqual(applied.sort(), [0, 0, 4], nodes.map((n) => n.log).join('\n'));
    assert.equal(storeSql(dataDir, 'SELECT count(*) FROM schema_migrations').trim(), '4');
    for (const n of nodes) assert.equal((await call(n, 'GET', '/health')).body.store.status, 'ok');
  } finally {
    for (const n of nodes) await n.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a --postgres-url that cannot be reached or parsed: herald exits at start with a clear error, no password shown', async () => {
  for (const [url, re] of [
    ['postgresql://herald:s3cret-pw@127.0.0.1:1/herald', /cannot connect to postgresql:\/\/herald:\*\*\*@127\.0\.0\.1:1\/herald/],
    ['postgresql://herald:s3cret-pw@[::1/herald', /cannot connect to postgresql:\/\/herald:\*\*\*@/],
  ]) {
    await assert.rejects(startHerald([...ARGS, '--postgres-url', url]), (err) => {
      assert.match(err.message, /herald exited \(\d+\)/);
      assert.match(err.message, /cannot open the store/);
      assert.match(err.message, re);
      assert.doesNotMatch(err.message, /s3cret-pw/);
      return true;
    });
  }
});

test('PostgreSQL connection lost: the request that finds it gone gets 503 and /health says failing, the next ones reconnect', { skip: STORE !== 'postgres' && 'PostgreSQL only' }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-pg-outage-'));
  let srv;
  try {
    srv = await startHerald(ARGS, { dataDir });
    const send = (title) => call(srv, 'POST', '/api/v4/notifications/send', { as: 'api', body: { type: 'info', title, content: 'c' } });
    assert.equal((await send('before')).status, 201);
    // the server drops Herald's connection (a restart or failover would)
    const killed = storeSql(dataDir, 'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity ' +
      "WHERE datname = current_database() AND application_name = 'herald'").trim();
    assert.equal(killed, '1');
    await sleep(100);
    const during = await send('during');
    assert.equal(during.status, 503, JSON.stringify(during.body));
    assert.equal(during.body.code, 503);
    const health = await call(srv, 'GET', '/health');
    assert.equal(health.status, 503);
    assert.equal(health.body.store.status, 'failing');
    assert.equal((await send('after')).status, 201);
    assert.equal((await call(srv, 'GET', '/health')).body.store.status, 'ok');
    const titles = (await call(srv, 'GET', '/api/v4/notifications?limit=10', { as: token(1, 'admin') })).body.items.map((n) => n.title);
    assert.deepEqual(titles, ['after', 'before']);
    assert.match(srv.log, /postgres connection lost/);
    assert.match(srv.log, /postgres connection restored/);
  } finally {
    await srv?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
