// Customer-service chat (docs/app.md): the REST endpoints under /api/v4/customer-service/sessions
// and the Socket.IO events chat:new_message, chat:session_update, chat:session_assigned,
// chat:send_message and chat:typing, with the stock socket.io-client 4.7.2 and tokens minted here
// (HS256 with the server's --jwt-secret).
//
// One server serves the endpoint tests: each test uses its own user and admin ids, and assigns
// sessions explicitly, so what another test left online or waiting does not change the outcome.
// The assignment tests (least-loaded, waiting queue) each start their own server, since they depend
// on exactly which admins are online.
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { startHerald, storeArgs, storeSql, HERALD_BIN } from './lib/server.mjs';

const WAIT = 5000;
const SECRET = 'chat-interop-secret-0123456789abcdef';
// the chat's abuse limits are off here (they are tested in hostile_limits.test.mjs): these tests open many sessions fast
const ARGS = ['--jwt-secret', SECRET, '--demo-users', 'false', '--chat-rate', '0', '--chat-max-open-sessions', '0'];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$/;
const BASE = '/api/v4/customer-service/sessions';

// ---- helpers ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function token(sub, role, { exp = Math.floor(Date.now() / 1000) + 3600, secret = SECRET } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(sub), role, exp })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

let nextId = 100;
/** A fresh identity: {id, role, token}. */
function who(role) {
  const id = nextId++;
  return { id, role, token: token(id, role) };
}

/** fetch with a JSON body (object, or a raw string), answering {status, body}. */
async function call(srv, method, path, { as, body, headers = {} } = {}) {
  const h = { ...headers };
  if (as) h.authorization = `Bearer ${as.token ?? as}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(srv.url(path), {
    method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

/** Asserts an error answer {code, message} with that status. */
function refused(res, status, re) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.code, status);
  assert.equal(typeof res.body.message, 'string');
  assert.ok(res.body.message.length > 0);
  if (re) assert.match(res.body.message, re);
}

const open = new Set();
afterEach(async () => {
  for (const s of open) s.close();
  open.clear();
  await sleep(30); // let the server see the disconnects
});

/** A connected socket for identity w, recording every event (first argument) in s.got. */
async function connect(srv, w) {
  const s = io(srv.url('/'), { auth: { token: w.token }, transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT });
  open.add(s);
  s.got = [];
  s.onAny((event, ...args) => s.got.push({ event, data: args[0] }));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timed out')), WAIT);
    s.once('connect', () => { clearTimeout(t); resolve(); });
    s.once('connect_error', (e) => { clearTimeout(t); reject(e); });
  });
  return s;
}

/** Waits until socket s recorded an `event` whose data satisfies pred; returns that data. */
async function received(s, event, pred = () => true, ms = WAIT) {
  const end = Date.now() + ms;
  for (;;) {
    const hit = s.got.find((e) => e.event === event && pred(e.data));
    if (hit) return hit.data;
    if (Date.now() > end) throw new Error(`timed out waiting for ${event}; got ${JSON.stringify(s.got.map((e) => e.event))}`);
    await sleep(10);
  }
}

const count = (s, event, pred = () => true) => s.got.filter((e) => e.event === event && pred(e.data)).length;

/** Emits with an ack; resolves with the ack's first argument. */
function emitAck(s, event, data) {
  return s.timeout(WAIT).emitWithAck(event, data);
}

/** The SessionData of the product contract (APP.md): session_id, user_id, admin_id, status, priority
 * (1..5), unread_count, last_message, created_at, updated_at; the extras are id (= session_id),
 * last_message_at, user_unread, admin_unread and closed_at. */
function assertSession(s, what = 'SessionData') {
  assert.deepEqual(Object.keys(s).sort(), ['admin_id', 'admin_unread', 'closed_at', 'created_at', 'id', 'last_message',
    'last_message_at', 'priority', 'session_id', 'status', 'unread_count', 'updated_at', 'user_id', 'user_unread'], `${what}: fields`);
  assert.ok(Number.isInteger(s.session_id) && s.session_id > 0, `${what}: integer session_id`);
  assert.equal(s.id, s.session_id, `${what}: id is session_id`);
  assert.ok(Number.isInteger(s.user_id) && s.user_id > 0, `${what}: user_id`);
  assert.ok(s.admin_id === null || (Number.isInteger(s.admin_id) && s.admin_id > 0), `${what}: admin_id`);
  assert.ok(['waiting', 'active', 'closed'].includes(s.status), `${what}: status`);
  assert.ok(Number.isInteger(s.priority) && s.priority >= 1 && s.priority <= 5, `${what}: priority ${s.priority} in 1..5`);
  for (const k of ['unread_count', 'user_unread', 'admin_unread']) assert.ok(Number.isInteger(s[k]) && s[k] >= 0, `${what}: ${k}`);
  assert.ok(s.last_message === null || typeof s.last_message === 'string', `${what}: last_message`);
  for (const k of ['created_at', 'updated_at']) assert.match(s[k], ISO, `${what}: ${k}`);
  assert.ok(s.last_message_at === null || ISO.test(s.last_message_at), `${what}: last_message_at`);
  assert.ok(s.closed_at === null || ISO.test(s.closed_at), `${what}: closed_at`);
}

/** The ChatMessageData of the product contract (APP.md): message_id, session_id, sender_type ("user" |
 * "admin"), sender_id, message_content, message_type, created_at; the one extra is id (= message_id). */
function assertMessage(m, what = 'ChatMessageData') {
  assert.deepEqual(Object.keys(m).sort(), ['created_at', 'id', 'message_content', 'message_id', 'message_type', 'sender_id',
    'sender_type', 'session_id'], `${what}: fields`);
  assert.ok(Number.isInteger(m.message_id) && m.message_id > 0, `${what}: integer message_id`);
  assert.equal(m.id, m.message_id, `${what}: id is message_id`);
  for (const k of ['session_id', 'sender_id']) assert.ok(Number.isInteger(m[k]) && m[k] > 0, `${what}: ${k}`);
  assert.ok(['user', 'admin'].includes(m.sender_type), `${what}: sender_type`);
  assert.equal(typeof m.message_content, 'string', `${what}: message_content`);
  assert.ok(['text', 'image', 'file', 'system'].includes(m.message_type), `${what}: message_type`);
  assert.match(m.created_at, ISO, `${what}: created_at`);
}

/** A session of user u, assigned to admin a (when given) through the REST API. */
async function session(srv, u, a, content = 'hello') {
  const res = await call(srv, 'POST', BASE, { as: u, body: { content } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  if (!a) return res.body.session;
  const got = await call(srv, 'POST', `${BASE}/${res.body.session.id}/assign`, { as: a, body: {} });
  assert.equal(got.status, 200, JSON.stringify(got.body));
  return got.body.session;
}

// ---- the endpoints, on one server ----

describe('customer service endpoints', () => {
  let srv;
  before(async () => { srv = await startHerald(ARGS); });
  after(async () => { await srv?.stop(); });

  test('every endpoint answers 401 without a valid token', async () => {
    const expired = token(1, 'user', { exp: Math.floor(Date.now() / 1000) - 3600 });
    const forged = token(1, 'admin', { secret: 'another-secret-0123456789' });
    const endpoints = [['POST', BASE], ['GET', BASE], ['GET', `${BASE}/1/messages`], ['POST', `${BASE}/1/messages`],
      ['POST', `${BASE}/1/read`], ['POST', `${BASE}/1/assign`], ['POST', `${BASE}/1/close`]];
    for (const [method, path] of endpoints) {
      for (const as of [undefined, expired, forged, 'not-a-jwt']) {
        refused(await call(srv, method, path, { as, body: method === 'POST' ? { content: 'x' } : undefined }), 401);
      }
    }
  });

  test('tokens without a numeric subject or a known role are refused with 403', async () => {
    refused(await call(srv, 'GET', BASE, { as: token('alice', 'user') }), 403, /numeric/);
    refused(await call(srv, 'GET', BASE, { as: token(5, 'guest') }), 403, /role/);
  });

  test('a user starts a session: 201 {session, message}, the first message stored', async () => {
    const u = who('user');
    const res = await call(srv, 'POST', BASE, { as: u, body: { content: 'my order is late' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const { session: s, message: m } = res.body;
    assertSession(s);
    assertMessage(m);
    assert.equal(s.user_id, u.id);
    assert.equal(s.priority, 3, 'normal until an admin says otherwise');
    assert.equal(s.last_message, 'my order is late');
    assert.equal(s.unread_count, 0, 'the user has read their own message');
    assert.equal(s.admin_unread, 1);
    assert.deepEqual([m.session_id, m.sender_id, m.sender_type, m.message_content, m.message_type], [s.id, u.id, 'user', 'my order is late', 'text']);
    const list = await call(srv, 'GET', `${BASE}/${s.id}/messages`, { as: u });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.items, [m]);
  });

  test('priority is 1..5 as the contract says, set by admins only: a customer\'s is refused (403 JSON), an admin sets it (POST :id/priority), 0 and 6 refused (400)', async () => {
    const u = who('user'), a = who('admin');
    const [ut, at] = [await connect(srv, u), await connect(srv, a)];
    for (const priority of [1, 5]) // a customer cannot make their own session urgent
      refused(await call(srv, 'POST', BASE, { as: u, body: { content: `p${priority}`, priority } }), 403, /priority.*staff/);
    for (const priority of [1, 2, 3, 4, 5]) {
      const res = await call(srv, 'POST', BASE, { as: u, body: { content: `p${priority}`, priority: null } }); // null: left out
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const sid = res.body.session.session_id;
      assert.equal(res.body.session.priority, 3, 'the default, "normal"');
      refused(await call(srv, 'POST', `${BASE}/${sid}/priority`, { as: u, body: { priority } }), 403, /admins/);
      const set = await call(srv, 'POST', `${BASE}/${sid}/priority`, { as: a, body: { priority } });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      assertSession(set.body.session);
      assert.equal(set.body.session.priority, priority);
      assert.equal((await received(ut, 'chat:session_update', (x) => x.session_id === sid && x.priority === priority)).priority, priority,
        'the customer sees it');
      assert.equal((await received(at, 'chat:session_update', (x) => x.session_id === sid && x.priority === priority)).priority, priority,
        'and the admin');
      const got = await call(srv, 'POST', `${BASE}/${sid}/assign`, { as: a, body: {} });
      assert.equal(got.body.session.priority, priority, 'kept when assigned');
    }
    const sid = (await call(srv, 'GET', BASE, { as: u })).body.items[0].session_id;
    for (const priority of [0, 6, 2.5, '3', null, true])
      refused(await call(srv, 'POST', `${BASE}/${sid}/priority`, { as: a, body: { priority } }), 400, /priority.*1.*5/);
    refused(await call(srv, 'POST', `${BASE}/999999/priority`, { as: a, body: { priority: 2 } }), 404);
    const listed = (await call(srv, 'GET', BASE, { as: u })).body.items;
    assert.deepEqual(listed.map((x) => x.priority).sort(), [1, 2, 3, 4, 5], 'what was refused was not stored');
  });

  test('contract: chat:new_message is ChatMessageData, chat:session_update and GET sessions are SessionData', async () => {
    const u = who('user'), a = who('admin');
    const [ut, at] = [await connect(srv, u), await connect(srv, a)];
    const start = await call(srv, 'POST', BASE, { as: u, body: { content: 'my parcel is lost' } });
    assert.equal(start.status, 201, JSON.stringify(start.body));
    assert.equal((await call(srv, 'POST', `${BASE}/${start.body.session.session_id}/priority`, { as: a, body: { priority: 2 } })).status, 200);
    assertSession(start.body.session, 'POST sessions: session');
    assertMessage(start.body.message, 'POST sessions: message');
    const sid = start.body.session.session_id;
    assert.deepEqual([start.body.message.message_content, start.body.message.sender_type, start.body.message.sender_id,
      start.body.message.session_id], ['my parcel is lost', 'user', u.id, sid]);
    const taken = await call(srv, 'POST', `${BASE}/${sid}/assign`, { as: a, body: {} });
    assertSession(taken.body.session, 'assign: session');

    // REST post by the admin, socket post by the user: both parties get ChatMessageData
    const byAdmin = await call(srv, 'POST', `${BASE}/${sid}/messages`, { as: a, body: { content: 'we are looking', message_type: 'text' } });
    assert.equal(byAdmin.status, 201);
    assertMessage(byAdmin.body.message, 'POST messages: message');
    for (const [t, side] of [[ut, 'user'], [at, 'admin']]) {
      const m = await received(t, 'chat:new_message', (x) => x.message_id === byAdmin.body.message.message_id);
      assertMessage(m, `chat:new_message to the ${side}`);
      assert.deepEqual([m.message_content, m.sender_type, m.sender_id, m.session_id, m.message_type],
        ['we are looking', 'admin', a.id, sid, 'text']);
    }
    const ack = await emitAck(ut, 'chat:send_message', { session_id: sid, content: 'thanks' });
    assert.equal(ack.success, true, JSON.stringify(ack));
    assertMessage(ack.data, 'chat:send_message ack');
    const pushed = await received(at, 'chat:new_message', (x) => x.message_id === ack.data.message_id);
    assert.deepEqual(pushed, ack.data);
    assert.deepEqual([pushed.message_content, pushed.sender_type], ['thanks', 'user']);

    // chat:session_update on both sides, with that side's unread count
    const us = await received(ut, 'chat:session_update', (x) => x.session_id === sid && x.last_message === 'thanks');
    const as = await received(at, 'chat:session_update', (x) => x.session_id === sid && x.last_message === 'thanks');
    assertSession(us, 'chat:session_update to the user');
    assertSession(as, 'chat:session_update to the admin');
    for (const x of [us, as]) {
      assert.deepEqual([x.session_id, x.user_id, x.admin_id, x.status, x.priority], [sid, u.id, a.id, 'active', 2]);
    }
    assert.equal(us.unread_count, us.user_unread);
    assert.equal(as.unread_count, as.admin_unread);

    // the lists
    for (const [w, side] of [[u, 'user'], [a, 'admin']]) {
      const items = (await call(srv, 'GET', BASE, { as: w })).body.items;
      items.forEach((x, i) => assertSession(x, `GET sessions (${side}) item ${i}`));
      const mine = items.find((x) => x.session_id === sid);
      assert.ok(mine, `${side} lists the session`);
      assert.deepEqual([mine.last_message, mine.priority, mine.status], ['thanks', 2, 'active']);
    }
    const history = (await call(srv, 'GET', `${BASE}/${sid}/messages`, { as: a })).body.items;
    history.forEach((m, i) => assertMessage(m, `GET messages item ${i}`));
    assert.deepEqual(history.map((m) => m.message_content), ['thanks', 'we are looking', 'my parcel is lost']);
    const closed = await call(srv, 'POST', `${BASE}/${sid}/close`, { as: u });
    assertSession(closed.body.session, 'close: session');
    assertSession(await received(at, 'chat:session_update', (x) => x.session_id === sid && x.status === 'closed'), 'chat:session_update (closed)');
  });

  test('starting a session: 403 for admins, 400 per field, 413 past the body limit', async () => {
    const u = who('user');
    refused(await call(srv, 'POST', BASE, { as: who('admin'), body: { content: 'x' } }), 403);
    refused(await call(srv, 'POST', BASE, { as: u, body: {} }), 400, /content/);
    refused(await call(srv, 'POST', BASE, { as: u, body: { content: 42 } }), 400, /content/);
    refused(await call(srv, 'POST', BASE, { as: u, body: { content: '' } }), 400, /content/);
    refused(await call(srv, 'POST', BASE, { as: u, body: { content: '   \n' } }), 400, /content/);
    refused(await call(srv, 'POST', BASE, { as: u, body: { content: 'a\u0000b' } }), 400);
    refused(await call(srv, 'POST', BASE, { as: u, body: { content: 'x'.repeat(10001) } }), 400, /10000/);
    refused(await call(srv, 'POST', BASE, { as: u, body: { content: 'x', message_type: 'video' } }), 400, /message_type/);
    refused(await call(srv, 'POST', BASE, { as: u, body: { content: 'x', message_type: 'system' } }), 400, /system/);
    for (const priority of [0, 6, 101, -1, 2.5, 'high', '3', true, 3]) { // the staff's to set, not the customer's
      refused(await call(srv, 'POST', BASE, { as: u, body: { content: 'x', priority } }), 403, /priority/);
    }
    refused(await call(srv, 'POST', BASE, { as: u, body: 'not json' }), 400);
    refused(await call(srv, 'POST', BASE, { as: u, body: '[1]' }), 400);
    refused(await call(srv, 'POST', BASE, { as: u, body: { content: 'x'.repeat(200 * 1024) } }), 413);
    assert.deepEqual((await call(srv, 'GET', BASE, { as: u })).body.items, [], 'nothing was written');
    // the limits themselves are accepted: 10000 characters (multi-byte ones too), each message type
    const long = await call(srv, 'POST', BASE, { as: u, body: { content: '字'.repeat(10000), message_type: 'image' } });
    assert.equal(long.status, 201, JSON.stringify(long.body).slice(0, 200));
    assert.equal(long.body.message.message_content.length, 10000);
    assert.equal(long.body.message.message_type, 'image');
    assert.equal(long.body.session.last_message.length, 200, 'the preview is cut');
  });

  test('listing: a user sees only their own sessions; admins see theirs and the waiting ones', async () => {
    const u1 = who('user'), u2 = who('user'), a = who('admin');
    const s1 = await session(srv, u1, a, 'first');
    const s2 = await session(srv, u1, null, 'second');
    const s3 = await session(srv, u2, null, 'other user');
    await call(srv, 'POST', `${BASE}/${s1.id}/close`, { as: u1 });
    const mine = await call(srv, 'GET', BASE, { as: u1 });
    assert.equal(mine.status, 200);
    mine.body.items.forEach(assertSession);
    assert.deepEqual(mine.body.items.map((s) => s.id).sort(), [s1.id, s2.id].sort());
    assert.ok(mine.body.items.every((s) => s.user_id === u1.id));
    const closed = await call(srv, 'GET', `${BASE}?status=closed`, { as: u1 });
    assert.deepEqual(closed.body.items.map((s) => s.id), [s1.id]);
    const one = await call(srv, 'GET', `${BASE}?limit=1`, { as: u1 });
    assert.equal(one.body.items.length, 1);
    const theirs = await call(srv, 'GET', BASE, { as: u2 });
    assert.deepEqual(theirs.body.items.map((s) => s.id), [s3.id]);
    const admin = await call(srv, 'GET', `${BASE}?limit=100`, { as: a });
    const ids = admin.body.items.map((s) => s.id);
    assert.ok(ids.includes(s1.id) && ids.includes(s2.id) && ids.includes(s3.id), 'assigned to them, and waiting');
    assert.ok(admin.body.items.every((s) => s.admin_id === a.id || s.status === 'waiting'));
    assert.equal(admin.body.items.find((s) => s.id === s2.id).unread_count, 1, "the admin side's unread count");
    refused(await call(srv, 'GET', `${BASE}?status=open`, { as: u1 }), 400, /status/);
    refused(await call(srv, 'GET', `${BASE}?limit=0`, { as: u1 }), 400, /limit/);
    refused(await call(srv, 'GET', `${BASE}?limit=101`, { as: u1 }), 400, /limit/);
  });

  test('history: newest first, paged with before; another user gets 404, like a missing session', async () => {
    const u = who('user'), a = who('admin'), other = who('user');
    const s = await session(srv, u, a, 'm0');
    for (let i = 1; i < 5; i++) {
      const as = i % 2 ? a : u;
      assert.equal((await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as, body: { content: `m${i}` } })).status, 201);
    }
    const all = await call(srv, 'GET', `${BASE}/${s.id}/messages`, { as: u });
    assert.deepEqual(all.body.items.map((m) => m.message_content), ['m4', 'm3', 'm2', 'm1', 'm0']);
    assert.deepEqual(all.body.items.map((m) => m.sender_type), ['user', 'admin', 'user', 'admin', 'user']);
    const page = await call(srv, 'GET', `${BASE}/${s.id}/messages?before=${all.body.items[1].id}&limit=2`, { as: a });
    assert.deepEqual(page.body.items.map((m) => m.message_content), ['m2', 'm1']);
    const byOther = await call(srv, 'GET', `${BASE}/${s.id}/messages`, { as: other });
    const missing = await call(srv, 'GET', `${BASE}/99999999/messages`, { as: other });
    refused(byOther, 404);
    refused(missing, 404);
    assert.deepEqual(byOther.body, missing.body, 'no difference between hidden and missing');
    refused(await call(srv, 'GET', `${BASE}/abc/messages`, { as: u }), 400);
    refused(await call(srv, 'GET', `${BASE}/0/messages`, { as: u }), 400);
    refused(await call(srv, 'GET', `${BASE}/${s.id}/messages?limit=500`, { as: u }), 400, /limit/);
    refused(await call(srv, 'GET', `${BASE}/${s.id}/messages?before=-1`, { as: u }), 400, /before/);
  });

  test('posting over REST: both parties get chat:new_message (every tab) and chat:session_update', async () => {
    const u = who('user'), a = who('admin'), other = who('user');
    const s = await session(srv, u, a);
    const [ut, at1, at2, ot] = [await connect(srv, u), await connect(srv, a), await connect(srv, a), await connect(srv, other)];
    const res = await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: u, body: { content: 'where is my parcel?' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assertMessage(res.body.message);
    assert.deepEqual(Object.keys(res.body), ['message']);
    for (const t of [ut, at1, at2]) {
      const m = await received(t, 'chat:new_message', (m) => m.id === res.body.message.id);
      assert.deepEqual(m, res.body.message);
    }
    const us = await received(ut, 'chat:session_update', (x) => x.id === s.id && x.last_message === 'where is my parcel?');
    const as = await received(at1, 'chat:session_update', (x) => x.id === s.id && x.last_message === 'where is my parcel?');
    assertSession(us);
    assert.equal(us.unread_count, us.user_unread, "the user's side");
    assert.equal(as.unread_count, as.admin_unread, "the admin's side");
    assert.ok(as.admin_unread >= 2);
    // the admin answers: the user's tab gets it, and the user's unread count rises
    const reply = await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: a, body: { content: 'on its way', message_type: 'text' } });
    assert.equal(reply.status, 201);
    assert.equal(reply.body.message.sender_type, 'admin');
    await received(ut, 'chat:new_message', (m) => m.id === reply.body.message.id);
    const after = await received(ut, 'chat:session_update', (x) => x.id === s.id && x.last_message === 'on its way');
    assert.equal(after.unread_count, 1);
    await sleep(100);
    assert.equal(ot.got.length, 0, `another user got ${JSON.stringify(ot.got)}`);
  });

  test('posting: 404 for another user, 400 per field, 413, and admins may write any session', async () => {
    const u = who('user'), a = who('admin'), a2 = who('admin'), other = who('user');
    const s = await session(srv, u, a);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: other, body: { content: 'hi' } }), 404);
    refused(await call(srv, 'POST', `${BASE}/99999999/messages`, { as: u, body: { content: 'hi' } }), 404);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: u, body: {} }), 400, /content/);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: u, body: { content: 'x'.repeat(10001) } }), 400);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: u, body: { content: 'x', message_type: 'system' } }), 400, /system/);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: u, body: { content: 'x', message_type: 3 } }), 400);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: u, body: { content: 'x'.repeat(200 * 1024) } }), 413);
    const sys = await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: a, body: { content: 'transferred', message_type: 'system' } });
    assert.equal(sys.status, 201);
    assert.equal(sys.body.message.message_type, 'system');
    const byA2 = await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: a2, body: { content: 'a colleague helps' } });
    assert.equal(byA2.status, 201);
    assert.equal(byA2.body.message.sender_id, a2.id);
    const items = (await call(srv, 'GET', `${BASE}/${s.id}/messages`, { as: u })).body.items;
    assert.deepEqual(items.map((m) => m.message_content), ['a colleague helps', 'transferred', 'hello'], 'refused posts wrote nothing');
    const still = (await call(srv, 'GET', BASE, { as: u })).body.items.find((x) => x.id === s.id);
    assert.equal(still.admin_id, a.id, 'writing does not take a session already assigned');
  });

  test('an admin writing into a waiting session takes it', async () => {
    const u = who('user'), a = who('admin');
    const ut = await connect(srv, u);
    const s = await session(srv, u, null);
    assert.equal(s.status, 'waiting');
    const res = await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: a, body: { content: 'hello, I am Ann' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const upd = await received(ut, 'chat:session_update', (x) => x.id === s.id && x.status === 'active');
    assert.equal(upd.admin_id, a.id);
    await received(ut, 'chat:new_message', (m) => m.id === res.body.message.id);
    const listed = (await call(srv, 'GET', BASE, { as: a })).body.items.find((x) => x.id === s.id);
    assert.deepEqual([listed.status, listed.admin_id, listed.last_message], ['active', a.id, 'hello, I am Ann']);
    // no longer waiting: the admin coming online is not assigned it a second time
    const at = await connect(srv, a);
    await sleep(200);
    assert.equal(count(at, 'chat:session_assigned', (x) => x.session_id === s.id), 0);
  });

  test('assign: admins only; default the caller; a new admin gets chat:session_assigned, the previous one an update', async () => {
    const u = who('user'), a1 = who('admin'), a2 = who('admin');
    const s = await session(srv, u, null);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/assign`, { as: u, body: {} }), 403);
    const mine = await call(srv, 'POST', `${BASE}/${s.id}/assign`, { as: a1 }); // no body: the caller
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    assertSession(mine.body.session);
    assert.deepEqual([mine.body.session.admin_id, mine.body.session.status], [a1.id, 'active']);
    const [ut, t1, t2] = [await connect(srv, u), await connect(srv, a1), await connect(srv, a2)];
    const moved = await call(srv, 'POST', `${BASE}/${s.id}/assign`, { as: a1, body: { admin_id: a2.id } });
    assert.equal(moved.status, 200);
    assert.equal(moved.body.session.admin_id, a2.id);
    assert.deepEqual(await received(t2, 'chat:session_assigned', (x) => x.session_id === s.id), { session_id: s.id, user_id: u.id, priority: 3 });
    assert.equal((await received(t1, 'chat:session_update', (x) => x.id === s.id)).admin_id, a2.id, 'the previous admin learns it moved');
    assert.equal((await received(t2, 'chat:session_update', (x) => x.id === s.id)).admin_id, a2.id);
    assert.equal((await received(ut, 'chat:session_update', (x) => x.id === s.id)).admin_id, a2.id);
    assert.equal(count(t1, 'chat:session_assigned', (x) => x.session_id === s.id), 0);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/assign`, { as: a1, body: { admin_id: 'bob' } }), 400, /admin_id/);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/assign`, { as: a1, body: { admin_id: 0 } }), 400, /admin_id/);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/assign`, { as: a1, body: 'nope' }), 400);
    refused(await call(srv, 'POST', `${BASE}/99999999/assign`, { as: a1, body: {} }), 404);
    refused(await call(srv, 'POST', `${BASE}/abc/assign`, { as: a1, body: {} }), 400);
    await call(srv, 'POST', `${BASE}/${s.id}/close`, { as: a2 });
    refused(await call(srv, 'POST', `${BASE}/${s.id}/assign`, { as: a1, body: {} }), 409, /closed/);
  });

  test('close: participants only; pushes chat:session_update; a closed session refuses messages with 409', async () => {
    const u = who('user'), a = who('admin'), other = who('user');
    const s = await session(srv, u, a);
    const [ut, at] = [await connect(srv, u), await connect(srv, a)];
    refused(await call(srv, 'POST', `${BASE}/${s.id}/close`, { as: other }), 404);
    refused(await call(srv, 'POST', `${BASE}/99999999/close`, { as: u }), 404);
    const res = await call(srv, 'POST', `${BASE}/${s.id}/close`, { as: u });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertSession(res.body.session);
    assert.equal(res.body.session.status, 'closed');
    assert.match(res.body.session.closed_at, ISO);
    await received(ut, 'chat:session_update', (x) => x.id === s.id && x.status === 'closed');
    await received(at, 'chat:session_update', (x) => x.id === s.id && x.status === 'closed');
    const again = await call(srv, 'POST', `${BASE}/${s.id}/close`, { as: a });
    assert.equal(again.status, 200);
    assert.equal(again.body.session.closed_at, res.body.session.closed_at, 'closing twice changes nothing');
    refused(await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: u, body: { content: 'one more thing' } }), 409, /closed/);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: a, body: { content: 'one more thing' } }), 409, /closed/);
    const ack = await emitAck(ut, 'chat:send_message', { session_id: s.id, content: 'hello?' });
    assert.equal(ack.success, false);
    assert.match(ack.error, /closed/);
    assert.equal((await call(srv, 'GET', `${BASE}/${s.id}/messages`, { as: u })).body.items.length, 1);
  });

  test('read: resets the caller side unread count; another user gets 404', async () => {
    const u = who('user'), a = who('admin'), other = who('user');
    const s = await session(srv, u, a);
    await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: a, body: { content: 'reply 1' } });
    await call(srv, 'POST', `${BASE}/${s.id}/messages`, { as: a, body: { content: 'reply 2' } });
    const before = (await call(srv, 'GET', BASE, { as: u })).body.items.find((x) => x.id === s.id);
    assert.equal(before.unread_count, 2);
    const ut2 = await connect(srv, u);
    refused(await call(srv, 'POST', `${BASE}/${s.id}/read`, { as: other }), 404);
    const res = await call(srv, 'POST', `${BASE}/${s.id}/read`, { as: u });
    assert.equal(res.status, 200);
    assert.equal(res.body.session.unread_count, 0);
    assert.equal(res.body.session.user_unread, 0);
    assert.equal(res.body.session.admin_unread, 1, "the other side's count is kept");
    assert.equal((await received(ut2, 'chat:session_update', (x) => x.id === s.id)).unread_count, 0, 'other tabs sync');
    const byAdmin = await call(srv, 'POST', `${BASE}/${s.id}/read`, { as: a });
    assert.equal(byAdmin.body.session.unread_count, 0);
    assert.equal(byAdmin.body.session.admin_unread, 0);
  });

  test('chat:send_message: acked with the stored message, delivered to both parties and every tab', async () => {
    const u = who('user'), a = who('admin'), other = who('user');
    const s = await session(srv, u, a);
    const [ut1, ut2, at1, at2, ot] = [await connect(srv, u), await connect(srv, u), await connect(srv, a), await connect(srv, a), await connect(srv, other)];
    const ack = await emitAck(ut1, 'chat:send_message', { session_id: s.id, content: 'sent over the socket' });
    assert.equal(ack.success, true, JSON.stringify(ack));
    assertMessage(ack.data);
    assert.deepEqual([ack.data.session_id, ack.data.sender_id, ack.data.sender_type, ack.data.message_content], [s.id, u.id, 'user', 'sent over the socket']);
    for (const t of [ut1, ut2, at1, at2]) assert.deepEqual(await received(t, 'chat:new_message', (m) => m.id === ack.data.id), ack.data);
    const back = await emitAck(at2, 'chat:send_message', { session_id: s.id, content: 'answer from tab 2', message_type: 'file' });
    assert.equal(back.success, true);
    assert.deepEqual([back.data.sender_type, back.data.sender_id, back.data.message_type], ['admin', a.id, 'file']);
    for (const t of [ut1, ut2, at1, at2]) await received(t, 'chat:new_message', (m) => m.id === back.data.id);
    await received(ut1, 'chat:session_update', (x) => x.id === s.id && x.last_message === 'answer from tab 2');
    const stored = (await call(srv, 'GET', `${BASE}/${s.id}/messages?limit=2`, { as: u })).body.items;
    assert.deepEqual(stored, [back.data, ack.data], 'acked means stored');
    await sleep(100);
    assert.equal(ot.got.length, 0, `another user got ${JSON.stringify(ot.got)}`);
  });

  test('chat:send_message refusals are acked {success:false, error}', async () => {
    const u = who('user'), a = who('admin'), other = who('user');
    const s = await session(srv, u, a);
    const ut = await connect(srv, u);
    const ot = await connect(srv, other);
    const cases = [
      [ot, { session_id: s.id, content: 'hi' }, /not found/],
      [ut, { session_id: 99999999, content: 'hi' }, /not found/],
      [ut, { session_id: 'abc', content: 'hi' }, /session_id/],
      [ut, { content: 'hi' }, /session_id/],
      [ut, 'just a string', /session_id|argument/],
      [ut, { session_id: s.id }, /content/],
      [ut, { session_id: s.id, content: '' }, /content/],
      [ut, { session_id: s.id, content: 'x'.repeat(10001) }, /10000/],
      [ut, { session_id: s.id, content: 'x', message_type: 'system' }, /system/],
      [ut, { session_id: s.id, content: 'x', message_type: 'gif' }, /message_type/],
    ];
    for (const [sock, data, re] of cases) {
      const ack = await emitAck(sock, 'chat:send_message', data);
      assert.equal(ack.success, false, JSON.stringify(data));
      assert.match(ack.error, re);
    }
    assert.equal((await call(srv, 'GET', `${BASE}/${s.id}/messages`, { as: u })).body.items.length, 1, 'nothing stored');
    // without an ack callback the message is still stored and pushed
    ut.emit('chat:send_message', { session_id: s.id, content: 'no ack wanted' });
    await received(ut, 'chat:new_message', (m) => m.message_content === 'no ack wanted');
  });

  test('chat:typing is relayed to the other party only, and rate limited', async () => {
    const u = who('user'), a = who('admin'), other = who('user');
    const s = await session(srv, u, a);
    const [ut1, ut2, at1, at2, ot] = [await connect(srv, u), await connect(srv, u), await connect(srv, a), await connect(srv, a), await connect(srv, other)];
    ut1.emit('chat:typing', { session_id: s.id });
    assert.deepEqual(await received(at1, 'chat:typing'), { session_id: s.id, user_id: u.id, role: 'user' });
    await received(at2, 'chat:typing');
    at1.emit('chat:typing', { session_id: s.id });
    assert.deepEqual(await received(ut1, 'chat:typing'), { session_id: s.id, user_id: a.id, role: 'admin' });
    await received(ut2, 'chat:typing');
    // another user naming this session relays nothing
    ot.emit('chat:typing', { session_id: s.id });
    await sleep(200);
    assert.equal(count(ut2, 'chat:typing'), 1, "not echoed to the typer's own tabs");
    assert.equal(count(at2, 'chat:typing'), 1, "not echoed to the typer's own tabs");
    assert.equal(count(at1, 'chat:typing'), 1, 'the outsider relayed nothing');
    assert.equal(ot.got.length, 0);
    // a burst: at most 5 per second per socket get through
    for (let i = 0; i < 30; i++) ut2.emit('chat:typing', { session_id: s.id });
    await sleep(300);
    const relayed = count(at1, 'chat:typing') - 1;
    assert.ok(relayed >= 1 && relayed <= 10, `relayed ${relayed} of a burst of 30`);
  });

  test('a user never receives another user\'s chat events', async () => {
    const u1 = who('user'), u2 = who('user'), a = who('admin');
    const s1 = await session(srv, u1, a);
    const s2 = await session(srv, u2, a);
    const [t1, t2, at] = [await connect(srv, u1), await connect(srv, u2), await connect(srv, a)];
    await emitAck(t1, 'chat:send_message', { session_id: s1.id, content: 'from user 1' });
    await emitAck(at, 'chat:send_message', { session_id: s2.id, content: 'to user 2' });
    t1.emit('chat:typing', { session_id: s1.id });
    await call(srv, 'POST', `${BASE}/${s1.id}/close`, { as: u1 });
    await received(t2, 'chat:new_message', (m) => m.message_content === 'to user 2');
    await received(at, 'chat:session_update', (x) => x.id === s1.id && x.status === 'closed');
    await sleep(100);
    for (const e of t2.got) {
      const sid = e.data.session_id ?? e.data.id;
      assert.equal(sid, s2.id, `user 2 got ${JSON.stringify(e)}`);
    }
    for (const e of t1.got) assert.equal(e.data.session_id ?? e.data.id, s1.id, `user 1 got ${JSON.stringify(e)}`);
  });
});

// ---- assignment, each on its own server ----

describe('assignment', () => {
  let srv;
  afterEach(async () => { await srv?.stop(); srv = null; });

  test('a new session goes to the least-loaded online admin (ties: lowest id)', async () => {
    srv = await startHerald(ARGS);
    const a1 = who('admin'), a2 = who('admin'), u = who('user');
    const t1 = await connect(srv, a1);
    // a1 alone takes two sessions
    for (const c of ['one', 'two']) {
      const res = await call(srv, 'POST', BASE, { as: u, body: { content: c } });
      assert.equal(res.status, 201);
      assert.deepEqual([res.body.session.status, res.body.session.admin_id], ['active', a1.id]);
      await received(t1, 'chat:session_assigned', (x) => x.session_id === res.body.session.id);
    }
    const t2 = await connect(srv, a2);
    const ids = [];
    for (const c of ['three', 'four', 'five']) {
      const res = await call(srv, 'POST', BASE, { as: u, body: { content: c } });
      assert.equal(res.status, 201);
      ids.push([res.body.session.id, res.body.session.admin_id]);
    }
    // loads 2/0 -> a2 (least loaded, higher id); 2/1 -> a2; 2/2 -> a1 (tie: lowest id)
    assert.deepEqual(ids.map(([, admin]) => admin), [a2.id, a2.id, a1.id]);
    assert.deepEqual(await received(t2, 'chat:session_assigned', (x) => x.session_id === ids[0][0]), { session_id: ids[0][0], user_id: u.id, priority: 3 });
    await received(t2, 'chat:session_assigned', (x) => x.session_id === ids[1][0]);
    await received(t1, 'chat:session_assigned', (x) => x.session_id === ids[2][0]);
    assert.equal(count(t1, 'chat:session_assigned', (x) => x.session_id === ids[0][0]), 0);
    // the first message reaches the assigned admin
    await received(t2, 'chat:new_message', (m) => m.session_id === ids[0][0] && m.message_content === 'three');
  });

  test('with no admin online a session waits; an admin coming online gets the waiting queue', async () => {
    srv = await startHerald(ARGS);
    const u = who('user'), a = who('admin');
    const ut = await connect(srv, u);
    const created = [];
    for (const c of ['anyone there?', 'hello?', 'third']) {
      const res = await call(srv, 'POST', BASE, { as: u, body: { content: c } });
      assert.equal(res.status, 201);
      assert.deepEqual([res.body.session.status, res.body.session.admin_id], ['waiting', null]);
      created.push(res.body.session.id);
    }
    await received(ut, 'chat:session_update', (x) => x.id === created[0] && x.status === 'waiting');
    await received(ut, 'chat:new_message', (m) => m.session_id === created[0]);
    const at = await connect(srv, a);
    for (const id of created) assert.deepEqual(await received(at, 'chat:session_assigned', (x) => x.session_id === id), { session_id: id, user_id: u.id, priority: 3 });
    assert.deepEqual(at.got.filter((e) => e.event === 'chat:session_assigned').map((e) => e.data.session_id), created, 'oldest first');
    for (const id of created) {
      const upd = await received(ut, 'chat:session_update', (x) => x.id === id && x.status === 'active');
      assert.equal(upd.admin_id, a.id);
    }
    const list = (await call(srv, 'GET', BASE, { as: a })).body.items;
    assert.deepEqual(list.map((s) => s.admin_id), [a.id, a.id, a.id]);
    // a second admin coming online takes nothing (none waiting); new sessions now go to them
    const a2 = who('admin');
    const t2 = await connect(srv, a2);
    const next = await call(srv, 'POST', BASE, { as: u, body: { content: 'new one' } });
    assert.equal(next.body.session.admin_id, a2.id);
    await received(t2, 'chat:session_assigned', (x) => x.session_id === next.body.session.id);
  });

  test('waiting sessions survive a restart and go to the first admin online', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-chat-'));
    try {
      srv = await startHerald(ARGS, { dataDir });
      const u = who('user'), a = who('admin');
      const created = [];
      for (let i = 0; i < 3; i++) created.push((await call(srv, 'POST', BASE, { as: u, body: { content: `q${i}` } })).body.session.id);
      await srv.stop();
      srv = await startHerald(ARGS, { dataDir });
      const waiting = (await call(srv, 'GET', `${BASE}?status=waiting`, { as: u })).body.items;
      assert.deepEqual(waiting.map((s) => s.id).sort(), [...created].sort());
      const at = await connect(srv, a);
      for (const id of created) await received(at, 'chat:session_assigned', (x) => x.session_id === id);
      const mine = (await call(srv, 'GET', BASE, { as: u })).body.items;
      assert.ok(mine.every((s) => s.status === 'active' && s.admin_id === a.id));
      assert.equal((await call(srv, 'GET', `${BASE}/${created[0]}/messages`, { as: a })).body.items[0].message_content, 'q0');
    } finally {
      await srv?.stop();
      srv = null;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

// ---- sessions stored before priority was 1..5 ----

test('a database from before the 1..5 range: priority 0 (the old default) reads as 3, above 5 as 5', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-chat-legacy-'));
  let srv2;
  try {
    execFileSync(HERALD_BIN, ['migrate', '--data-dir', dataDir, ...storeArgs(dataDir)], { stdio: 'pipe' });
    const u = who('user'), a = who('admin');
    // rows as the 0..100 range wrote them: waiting sessions with priority 0 and 50, an active one with 4
    const now = Date.now();
    const rows = [['NULL', 'waiting', 0], ['NULL', 'waiting', 50], [a.id, 'active', 4]]
      .map(([admin, status, prio]) => `(${u.id}, ${admin}, '${status}', ${prio}, 'old', ${now}, ${now}, ${now})`);
    storeSql(dataDir, 'INSERT INTO chat_sessions (user_id, admin_id, status, priority, last_message, last_message_at, ' +
      `created_at, updated_at) VALUES ${rows.join(', ')}`);
    srv2 = await startHerald(ARGS, { dataDir });
    const items = (await call(srv2, 'GET', BASE, { as: u })).body.items;
    items.forEach((x, i) => assertSession(x, `legacy item ${i}`));
    assert.deepEqual(items.map((x) => x.priority).sort(), [3, 4, 5]);
    // the waiting ones go to the admin coming online, and chat:session_assigned says 3 and 5 too
    const at = await connect(srv2, a);
    const ids = items.filter((x) => x.status === 'waiting').map((x) => x.session_id);
    const assigned = [];
    for (const id of ids) assigned.push((await received(at, 'chat:session_assigned', (x) => x.session_id === id)).priority);
    assert.deepEqual(assigned.sort(), [3, 5]);
  } finally {
    await srv2?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
