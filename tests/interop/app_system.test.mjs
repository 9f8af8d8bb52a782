// System events (docs/app.md): POST /api/v4/system/alerts, /maintenance and /status (admin or API
// key) push system:alert, system:maintenance and system:status_change to the online admins (room
// `admins`), or with `all_users: true` (alerts, maintenance) to every socket, and answer {delivered}.
// Every payload carries `at` (ISO 8601 in the configured offset). Refusals are checked for status and
// JSON {code, message} and for pushing nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { WAIT, assertError, connect, next } from './lib/app.mjs';
import { startHerald } from './lib/server.mjs';

const SECRET = 'app-system-secret-0123456789abcdef';
const API_KEY = 'app-system-api-key-0123';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$/;

// ---- helpers ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');

function mint(sub, role, { secret = SECRET, exp = Math.floor(Date.now() / 1000) + 3600 } = {}) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: String(sub), role, exp })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
const admin = (id) => mint(id, 'admin');
const user = (id) => mint(id, 'user');

async function api(srv, method, path, { token, apiKey, body, raw } = {}) {
  const h = {};
  if (token) h.Authorization = `Bearer ${token}`;
  if (apiKey) h['X-API-Key'] = apiKey;
  if (body !== undefined || raw !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(srv.url(path), { method, headers: h, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}





const EVENTS = ['system:alert', 'system:maintenance', 'system:status_change'];
function record(socket) {
  const got = [];
  for (const e of EVENTS) socket.on(e, (data) => got.push({ event: e, data }));
  return got;
}

/** Asserts `at` is an ISO time in +08:00 close to now, and returns the payload without it. */
function withoutAt(payload) {
  assert.match(payload.at, ISO);
  assert.ok(Math.abs(Date.parse(payload.at) - Date.now()) < 60000, 'at is now');
  const { at, ...rest } = payload;
  return rest;
}

// ---- server and audience ----

let srv;
before(async () => { srv = await startHerald(['--jwt-secret', SECRET, '--api-key', API_KEY, '--demo-users', 'false']); });
after(async () => { await srv?.stop(); });

/** Waits until the sockets of earlier tests are gone (delivered counts every socket online). */
async function quiet() {
  const deadline = Date.now() + WAIT;
  while ((await api(srv, 'GET', '/health')).body.socketio.sockets !== 0) {
    if (Date.now() > deadline) throw new Error('sockets of earlier tests still connected');
    await sleep(20);
  }
}

/** Two tabs of admin 1, one of admin 2, two users (and no other socket). */
async function audience() {
  await quiet();
  const admins = await Promise.all([connect(srv, admin(1)), connect(srv, admin(1)), connect(srv, admin(2))]);
  const users = await Promise.all([connect(srv, user(1)), connect(srv, user(3))]);
  return { admins, users, all: [...admins, ...users] };
}

// ---- alerts ----

test('alert: system:alert {level, title, message, at} to every admin tab, not users; {delivered}', async () => {
  const { admins, users } = await audience();
  const userGot = users.map(record);
  const waits = admins.map((s) => next(s, 'system:alert'));
  const res = await api(srv, 'POST', '/api/v4/system/alerts', { token: admin(1), body: { level: 'warning', title: 'Disk', message: '90% full' } });
  assert.deepEqual([res.status, res.body], [200, { delivered: 3 }]);
  const got = await Promise.all(waits);
  for (const p of got) assert.deepEqual(withoutAt(p), { level: 'warning', title: 'Disk', message: '90% full' });
  assert.deepEqual(Object.keys(got[0]), ['level', 'title', 'message', 'at']);
  await sleep(200);
  assert.deepEqual(userGot, [[], []], 'users get nothing');
});

test('alert with all_users: every socket, users included; all_users false: admins only', async () => {
  const { all, admins } = await audience();
  const waits = all.map((s) => next(s, 'system:alert'));
  const res = await api(srv, 'POST', '/api/v4/system/alerts', { apiKey: API_KEY, body: { level: 'critical', title: 'Outage', message: 'payments down', all_users: true } });
  assert.deepEqual([res.status, res.body], [200, { delivered: 5 }]);
  for (const p of await Promise.all(waits)) assert.deepEqual(withoutAt(p), { level: 'critical', title: 'Outage', message: 'payments down' });

  const userGot = all.slice(3).map(record);
  const adminWaits = admins.map((s) => next(s, 'system:alert'));
  const res2 = await api(srv, 'POST', '/api/v4/system/alerts', { apiKey: API_KEY, body: { level: 'info', title: 'x', message: '', all_users: false } });
  assert.deepEqual(res2.body, { delivered: 3 });
  await Promise.all(adminWaits);
  await sleep(200);
  assert.deepEqual(userGot, [[], []]);
});

test('alert: every level is accepted; nobody online is delivered 0', async () => {
  await quiet();
  for (const level of ['info', 'success', 'warning', 'error', 'critical']) {
    const res = await api(srv, 'POST', '/api/v4/system/alerts', { apiKey: API_KEY, body: { level, title: 't', message: 'm' } });
    assert.deepEqual([res.status, res.body], [200, { delivered: 0 }], level);
  }
});

test('alert refusals: 401, 403, 400 per field, 413 — and nothing is pushed', async () => {
  const { all } = await audience();
  const got = all.map(record);
  const path = '/api/v4/system/alerts';
  const good = { level: 'info', title: 't', message: 'm' };
  assertError(await api(srv, 'POST', path, { body: good }), 401, 'no credentials');
  assertError(await api(srv, 'POST', path, { token: 'a.b.c', body: good }), 401, 'bad token');
  assertError(await api(srv, 'POST', path, { token: mint(1, 'admin', { secret: 'other-secret-0123456789' }), body: good }), 401, 'wrong key');
  assertError(await api(srv, 'POST', path, { apiKey: 'wrong', body: good }), 401, 'bad API key');
  assertError(await api(srv, 'POST', path, { token: user(1), body: good }), 403, 'user role');
  const bad = [
    [{ title: 't', message: 'm' }, 'level missing'],
    [{ ...good, level: 'panic' }, 'level unknown'],
    [{ ...good, level: 3 }, 'level not a string'],
    [{ level: 'info', message: 'm' }, 'title missing'],
    [{ ...good, title: '' }, 'title empty'],
    [{ ...good, title: 'x'.repeat(201) }, 'title 201 chars'],
    [{ level: 'info', title: 't' }, 'message missing'],
    [{ ...good, message: 5 }, 'message not a string'],
    [{ ...good, message: 'x'.repeat(10001) }, 'message 10001 chars'],
    [{ ...good, all_users: 'yes' }, 'all_users not a boolean'],
    [{ ...good, all_users: 1 }, 'all_users a number'],
  ];
  for (const [body, what] of bad) assertError(await api(srv, 'POST', path, { apiKey: API_KEY, body }), 400, what);
  for (const raw of ['', '{', '[]', 'null']) assertError(await api(srv, 'POST', path, { apiKey: API_KEY, raw }), 400, `body ${raw}`);
  assertError(await api(srv, 'POST', path, { apiKey: API_KEY, body: { ...good, message: 'x'.repeat(300 * 1024) } }), 413, 'oversize');
  await sleep(200);
  assert.deepEqual(got, [[], [], [], [], []], 'no refused request pushed anything');
});

// ---- maintenance ----

test('maintenance: {title, message, start_at, end_at, at} in +08:00 to admins; all_users to everyone', async () => {
  const { admins, users, all } = await audience();
  const userGot = users.map(record);
  let waits = admins.map((s) => next(s, 'system:maintenance'));
  const res = await api(srv, 'POST', '/api/v4/system/maintenance', {
    token: admin(2),
    body: { title: 'Upgrade', message: 'db upgrade', start_at: '2025-11-23T12:00:00Z', end_at: '2025-11-23T22:30:00.250+08:00' },
  });
  assert.deepEqual([res.status, res.body], [200, { delivered: 3 }]);
  for (const p of await Promise.all(waits)) {
    assert.deepEqual(Object.keys(p), ['title', 'message', 'start_at', 'end_at', 'at']);
    assert.deepEqual(withoutAt(p), {
      title: 'Upgrade', message: 'db upgrade', start_at: '2025-11-23T20:00:00.000+08:00', end_at: '2025-11-23T22:30:00.250+08:00',
    });
  }
  await sleep(200);
  assert.deepEqual(userGot, [[], []]);

  // times optional (null), milliseconds accepted, a time without offset is in the configured one
  waits = all.map((s) => next(s, 'system:maintenance'));
  const res2 = await api(srv, 'POST', '/api/v4/system/maintenance', {
    apiKey: API_KEY, body: { title: 'Soon', message: '', start_at: Date.UTC(2025, 10, 23, 12), all_users: true },
  });
  assert.deepEqual(res2.body, { delivered: 5 });
  for (const p of await Promise.all(waits)) {
    assert.deepEqual(withoutAt(p), { title: 'Soon', message: '', start_at: '2025-11-23T20:00:00.000+08:00', end_at: null });
  }
  waits = admins.map((s) => next(s, 'system:maintenance'));
  await api(srv, 'POST', '/api/v4/system/maintenance', { apiKey: API_KEY, body: { title: 'Local', message: 'm', end_at: '2025-11-24T08:15' } });
  for (const p of await Promise.all(waits)) assert.equal(p.end_at, '2025-11-24T08:15:00.000+08:00');
});

test('maintenance refusals: 401, 403, 400 (fields, bad times, end before start), 413', async () => {
  const { all } = await audience();
  const got = all.map(record);
  const path = '/api/v4/system/maintenance';
  const good = { title: 't', message: 'm' };
  assertError(await api(srv, 'POST', path, { body: good }), 401, 'no credentials');
  assertError(await api(srv, 'POST', path, { token: user(4), body: good }), 403, 'user');
  const bad = [
    [{ message: 'm' }, 'title missing'],
    [{ ...good, title: 'x'.repeat(201) }, 'title too long'],
    [{ title: 't' }, 'message missing'],
    [{ ...good, start_at: 'tomorrow' }, 'start_at text'],
    [{ ...good, start_at: '2025-13-01T00:00:00Z' }, 'month 13'],
    [{ ...good, start_at: '2025-02-30T00:00:00Z' }, 'Feb 30'],
    [{ ...good, end_at: '2025-11-23T25:00:00Z' }, 'hour 25'],
    [{ ...good, end_at: '2025-11-23T10:00:00+0800' }, 'offset without colon'],
    [{ ...good, end_at: '2025-11-23' }, 'date only'],
    [{ ...good, start_at: -5 }, 'negative ms'],
    [{ ...good, start_at: 1.5 }, 'fractional ms'],
    [{ ...good, start_at: true }, 'boolean'],
    [{ ...good, start_at: '2025-11-23T12:00:00Z', end_at: '2025-11-23T11:59:59Z' }, 'end before start'],
    [{ ...good, all_users: 'true' }, 'all_users a string'],
  ];
  for (const [body, what] of bad) assertError(await api(srv, 'POST', path, { apiKey: API_KEY, body }), 400, what);
  assertError(await api(srv, 'POST', path, { apiKey: API_KEY, body: { ...good, message: 'x'.repeat(300 * 1024) } }), 413, 'oversize');
  await sleep(200);
  assert.deepEqual(got, [[], [], [], [], []]);
});

// ---- status ----

test('status: system:status_change {status, message, at} to admins only (message null when absent)', async () => {
  const { admins, users } = await audience();
  const userGot = users.map(record);
  let waits = admins.map((s) => next(s, 'system:status_change'));
  const res = await api(srv, 'POST', '/api/v4/system/status', { apiKey: API_KEY, body: { status: 'degraded', message: 'slow store' } });
  assert.deepEqual([res.status, res.body], [200, { delivered: 3 }]);
  for (const p of await Promise.all(waits)) {
    assert.deepEqual(Object.keys(p), ['status', 'message', 'at']);
    assert.deepEqual(withoutAt(p), { status: 'degraded', message: 'slow store' });
  }
  waits = admins.map((s) => next(s, 'system:status_change'));
  const res2 = await api(srv, 'POST', '/api/v4/system/status', { token: admin(1), body: { status: 'ok', all_users: true } });
  assert.deepEqual(res2.body, { delivered: 3 }, 'status changes are for admins, all_users or not');
  for (const p of await Promise.all(waits)) assert.deepEqual(withoutAt(p), { status: 'ok', message: null });
  await sleep(200);
  assert.deepEqual(userGot, [[], []]);
});

test('status refusals: 401, 403, 400, 413', async () => {
  const path = '/api/v4/system/status';
  assertError(await api(srv, 'POST', path, { body: { status: 'ok' } }), 401, 'no credentials');
  assertError(await api(srv, 'POST', path, { token: 'x', body: { status: 'ok' } }), 401, 'bad token');
  assertError(await api(srv, 'POST', path, { token: user(1), body: { status: 'ok' } }), 403, 'user');
  for (const [body, what] of [[{}, 'status missing'], [{ status: '' }, 'status empty'], [{ status: 'x'.repeat(33) }, 'status 33 chars'],
    [{ status: 1 }, 'status a number'], [{ status: 'ok', message: 7 }, 'message a number']]) {
    assertError(await api(srv, 'POST', path, { apiKey: API_KEY, body }), 400, what);
  }
  assertError(await api(srv, 'POST', path, { apiKey: API_KEY, raw: JSON.stringify({ status: 'ok', message: 'x'.repeat(300 * 1024) }) }), 413, 'oversize');
});

test('a socket that left gets nothing and is not counted', async () => {
  await quiet();
  const a = await connect(srv, admin(9));
  const b = await connect(srv, admin(9));
  b.disconnect();
  for (let t = Date.now(); (await api(srv, 'GET', '/health')).body.socketio.sockets !== 1;) {
    assert.ok(Date.now() - t < WAIT, 'the server notices the disconnect');
    await sleep(20);
  }
  const got = next(a, 'system:alert');
  const res = await api(srv, 'POST', '/api/v4/system/alerts', { apiKey: API_KEY, body: { level: 'info', title: 't', message: 'm' } });
  assert.deepEqual(res.body, { delivered: 1 });
  await got;
});

test('/metrics counts system events and their deliveries', async (t) => {
  const metrics = async () => Object.fromEntries((await (await fetch(srv.url('/metrics'))).text()).split('\n')
    .filter((l) => l && !l.startsWith('#')).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
  const m0 = await metrics();
  if (!('herald_system_events_total{event="alert"}' in m0)) return t.skip('hd_system_events_metrics() is not part of /metrics yet');
  const { all } = await audience();
  const waits = all.map((s) => next(s, 'system:alert'));
  await api(srv, 'POST', '/api/v4/system/alerts', { apiKey: API_KEY, body: { level: 'info', title: 't', message: 'm', all_users: true } });
  await Promise.all(waits);
  await api(srv, 'POST', '/api/v4/system/status', { apiKey: API_KEY, body: { status: 'ok' } });
  const m1 = await metrics();
  const delta = (k) => m1[k] - m0[k];
  assert.equal(delta('herald_system_events_total{event="alert"}'), 1);
  assert.equal(delta('herald_system_events_total{event="status_change"}'), 1);
  assert.equal(delta('herald_system_events_total{event="maintenance"}'), 0);
  assert.equal(delta('herald_system_event_deliveries_total'), 5 + 3);
});
