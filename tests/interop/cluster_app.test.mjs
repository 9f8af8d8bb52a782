// Presence and the application across nodes (issue 9): two Herald nodes on one Redis
// (HERALD_TEST_REDIS_URL, their own --redis-prefix) sharing --jwt-secret, --api-key and ONE SQLite
// store (--db: the same file; SQLite in WAL mode with a busy timeout serves several processes on
// one machine, so users, notifications and chat sessions are the same on both nodes — across
// machines use PostgreSQL). Clients are the stock socket.io-client 4.7.2 and the REST API.
// Contract tested:
//   - GET /api/v4/presence (admin or API key) lists who is online on every node, with the node's
//     tag and URL, connections and online users; 401 without credentials, 403 for a customer;
//   - notification:new (and :broadcast) reach an admin connected to the other node;
//   - chat: a customer on node A and an admin on node B — assignment, chat:new_message both ways;
//   - assignment picks the least-loaded online admin cluster-wide (admins on both nodes, sessions
//     started on either node, ties to the lowest id);
//   - a node killed with kill -9: its node and its users leave the others' presence within 15 s;
//   - without --redis-url the same endpoint answers for the node alone (scope "node").
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';
import { sleep, until } from './lib/wait.mjs';

const REDIS = process.env.HERALD_TEST_REDIS_URL;
const WAIT = 5000;
const SECRET = 'cluster-app-secret-0123456789abcdef';
const API_KEY = 'cluster-app-api-key-0123456789';
const ARGS = ['--jwt-secret', SECRET, '--api-key', API_KEY, '--demo-users', 'false'];

function token(sub, role) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(sub), role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${crypto.createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

/** Puts admin `id` into the shared SQLite store (the nodes take identities from tokens; a
 * notification's target must exist there). */
function seedAdmin(db, id) {
  const script = 'import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\n' +
    'db.execute("INSERT OR IGNORE INTO users (id, name, role, password_hash, display_name, created_at) VALUES (?, ?, \'admin\', \'$seeded\', \'\', 0)", (int(sys.argv[2]), "admin" + sys.argv[2]))\ndb.commit()\n';
  execFileSync('python3', ['-c', script, db, String(id)]);
}

let nextId = 1000;
/** A fresh identity {id, role, token}; later ones have higher ids. */
function who(role) {
  const id = nextId++;
  return { id, role, token: token(id, role) };
}

/** fetch as an identity (or the API key with as = 'key'), answering {status, body}. */
async function call(srv, method, path, { as, body } = {}) {
  const headers = {};
  if (as === 'key') headers['x-api-key'] = API_KEY;
  else if (as) headers.authorization = `Bearer ${as.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(srv.url(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

const presence = async (srv) => (await call(srv, 'GET', '/api/v4/presence', { as: 'key' })).body;

/** Polls fn until it returns a truthy value or ms pass; returns the value. */
const open = new Set();
afterEach(async () => {
  for (const s of open) s.close();
  open.clear();
});

/** A connected socket on srv for identity w, recording every event in s.got. */
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

/** The first event of that name on s whose data passes match (already received or coming). */
function received(s, event, match = () => true, ms = WAIT) {
  return until(() => s.got.find((g) => g.event === event && match(g.data))?.data, ms, `${event} on socket`);
}

/** An open JSON-protocol connection (/api/v1/ws) of identity w, every frame in c.frames. */
async function jsonClient(srv, w) {
  const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?token=${encodeURIComponent(w.token)}&protocol=1.0`));
  const c = { ws, frames: [], n: 0 };
  ws.on('message', (d) => c.frames.push(JSON.parse(d.toString())));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return c;
}

/** Sends a frame of type with data on JSON connection c and answers its ack or error frame. */
function jsonRequest(c, type, data) {
  const messageId = `r${++c.n}`;
  c.ws.send(JSON.stringify({ type, data, timestamp: Date.now(), messageId }));
  const mine = (f) => (f.type === 'ack' || f.type === 'error') && (f.data?.messageId === messageId || f.data?.details?.messageId === messageId);
  return until(() => c.frames.find(mine), WAIT, `the answer to ${type}`);
}

/** Waits until srv's presence lists exactly the admins `ids` online (any node). */
function adminsOnline(srv, ids) {
  const want = [...ids].sort((a, b) => a - b).join(',');
  return until(async () => {
    const p = await presence(srv);
    return p.admins.map((a) => a.id).sort((a, b) => a - b).join(',') === want && p;
  }, WAIT, `admins ${want} online as seen by ${srv.port}`);
}

describe('presence and the application across two nodes', { skip: !REDIS && 'HERALD_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server and sets it)' }, () => {
  const prefix = `herald-app-${crypto.randomBytes(4).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'herald-cluster-app-'));
  const args = [...ARGS, '--redis-url', REDIS, '--redis-prefix', prefix, '--db', join(dir, 'shared.db')];
  let a, b;

  before(async () => {
    a = await startHerald(args); // one after the other: the first one creates the schema
    b = await startHerald(args);
    for (const n of [a, b]) {
      const h = await until(async () => {
        const j = await (await fetch(n.url('/health'))).json();
        return j.cluster.registry?.length === 2 && j;
      }, WAIT, 'both nodes registered');
      n.tag = h.cluster.registry.find((e) => e.self).tag;
    }
  });

  after(async () => {
    for (const s of open) s.close();
    await Promise.all([a?.stop(), b?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('GET /api/v4/presence: who is online on which node, the nodes with URL, connections and users', async () => {
    const admin = who('admin'), user = who('user');
    await connect(a, admin);
    await connect(a, admin); // two tabs
    await connect(b, user);
    for (const [srv, other] of [[a, b], [b, a]]) {
      const p = await until(async () => {
        const j = await presence(srv);
        return j.admins.some((x) => x.id === admin.id && x.sockets === 2) && j.users.some((x) => x.id === user.id) && j;
      }, WAIT, `both identities seen from ${srv.tag}`);
      assert.equal(p.scope, 'cluster');
      assert.equal(p.self, srv.tag);
      assert.deepEqual(p.nodes.map((n) => n.tag).sort(), [a.tag, b.tag].sort());
      const self = p.nodes.find((n) => n.self), peer = p.nodes.find((n) => !n.self);
      assert.equal(self.tag, srv.tag);
      assert.equal(peer.tag, other.tag);
      assert.equal(peer.url, other.url('').replace(/\/$/, ''), 'the node URL comes from the registry');
      assert.equal(self.url, srv.url('').replace(/\/$/, ''));
      for (const n of p.nodes) {
        assert.ok(Number.isInteger(n.connections) && n.connections >= 0, 'connections');
        assert.ok(Number.isInteger(n.age_ms) && n.age_ms < 15000, 'age_ms');
      }
      assert.ok(p.nodes.find((n) => n.tag === a.tag).connections >= 2, 'node A counts its two sockets');
      assert.ok(p.nodes.find((n) => n.tag === b.tag).users >= 1, 'node B has an online user');
      const ad = p.admins.find((x) => x.id === admin.id);
      assert.deepEqual(ad, { id: admin.id, sub: String(admin.id), sockets: 2, nodes: [a.tag] });
      assert.deepEqual(p.users.find((x) => x.id === user.id), { id: user.id, sub: String(user.id), sockets: 1, nodes: [b.tag] });
      assert.equal(p.admins_online, p.admins.length);
      assert.equal(p.users_truncated, false);
    }
    // an admin online on both nodes: one entry, sockets summed, both nodes named
    await connect(b, admin);
    const p = await until(async () => {
      const j = await presence(a);
      const x = j.admins.find((y) => y.id === admin.id);
      return x?.nodes.length === 2 && j;
    }, WAIT, 'the admin on both nodes');
    const x = p.admins.find((y) => y.id === admin.id);
    assert.equal(x.sockets, 3);
    assert.deepEqual(x.nodes.sort(), [a.tag, b.tag].sort());
    // credentials: none -> 401, a customer -> 403, an admin token -> 200
    assert.equal((await call(a, 'GET', '/api/v4/presence')).status, 401);
    assert.equal((await call(a, 'GET', '/api/v4/presence', { as: user })).status, 403);
    assert.equal((await call(b, 'GET', '/api/v4/presence', { as: admin })).status, 200);
    // gone when they disconnect, on both nodes
    for (const s of open) s.close();
    open.clear();
    for (const srv of [a, b])
      await until(async () => {
        const j = await presence(srv);
        return !j.admins.some((y) => y.id === admin.id) && !j.users.some((y) => y.id === user.id);
      }, WAIT, 'gone after disconnect');
  });

  test('notification:new and notification:broadcast reach an admin connected to the other node', async () => {
    const admin = who('admin');
    seedAdmin(join(dir, 'shared.db'), admin.id); // a notification's target must be an admin of the store
    const s = await connect(b, admin);
    await sleep(100); // the room join is local; nothing to wait for in Redis
    const sent = await call(a, 'POST', '/api/v4/notifications/send', { as: 'key', body: { type: 'info', title: 'cross-node', content: 'from A', target_user_id: admin.id } });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    const n = await received(s, 'notification:new', (d) => d.title === 'cross-node');
    assert.equal(n.target_user_id, admin.id);
    assert.equal(n.content, 'from A');
    const all = await call(a, 'POST', '/api/v4/notifications/send', { as: 'key', body: { type: 'warning', title: 'to every admin', content: 'x' } });
    assert.equal(all.status, 201);
    await received(s, 'notification:broadcast', (d) => d.title === 'to every admin');
    // the admin reads it through node B: the store is shared
    const list = await call(b, 'GET', '/api/v4/notifications?limit=10', { as: admin });
    assert.equal(list.status, 200);
    assert.ok(JSON.stringify(list.body).includes('cross-node'), 'the notification is in the shared store');
  });

  test('chat: a customer on node A and an admin on node B, messages both ways', async () => {
    const admin = who('admin'), user = who('user');
    const sa = await connect(b, admin);
    await adminsOnline(a, [admin.id]);
    const su = await connect(a, user);
    const started = await call(a, 'POST', '/api/v4/customer-service/sessions', { as: user, body: { content: 'hello from A' } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const sid = started.body.session.session_id;
    assert.equal(started.body.session.admin_id, admin.id, 'assigned to the admin on the other node');
    assert.equal(started.body.session.status, 'active');
    const assigned = await received(sa, 'chat:session_assigned', (d) => d.session_id === sid);
    assert.equal(assigned.user_id, user.id);
    await received(sa, 'chat:new_message', (d) => d.session_id === sid && d.message_content === 'hello from A');
    // admin (node B) -> customer (node A)
    const ack = await sa.timeout(WAIT).emitWithAck('chat:send_message', { session_id: sid, content: 'hi, how can I help?' });
    assert.equal(ack.success, true, JSON.stringify(ack));
    const m1 = await received(su, 'chat:new_message', (d) => d.message_content === 'hi, how can I help?');
    assert.equal(m1.sender_type, 'admin');
    assert.equal(m1.sender_id, admin.id);
    // customer (node A) -> admin (node B), and the typing relay
    su.emit('chat:typing', { session_id: sid });
    await received(sa, 'chat:typing', (d) => d.session_id === sid && d.role === 'user');
    const ack2 = await su.timeout(WAIT).emitWithAck('chat:send_message', { session_id: sid, content: 'my order is late' });
    assert.equal(ack2.success, true, JSON.stringify(ack2));
    const m2 = await received(sa, 'chat:new_message', (d) => d.message_content === 'my order is late');
    assert.equal(m2.sender_type, 'user');
    assert.equal(m2.sender_id, user.id);
  });

  test('app pushes are topic publishes: one cluster-wide sequence, replay on any node, Socket.IO recovery across nodes', async () => {
    const admin = who('admin');
    seedAdmin(join(dir, 'shared.db'), admin.id);
    const topic = `admin:${admin.id}`;
    const j = await jsonClient(b, admin); // a JSON subscriber of the admin's topic on node B
    const ack = await jsonRequest(j, 'subscribe', { topic });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    const s = await connect(a, admin); // and a Socket.IO tab on node A
    const titles = ['p1', 'p2', 'p3', 'p4'];
    const notify = async (srv, title) => {
      const r = await call(srv, 'POST', '/api/v4/notifications/send', { as: 'key', body: { type: 'info', title, content: 'x', target_user_id: admin.id } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    };
    for (const [i, title] of titles.entries()) await notify(i % 2 ? b : a, title); // through both nodes
    const pushes = (c) => c.frames.filter((f) => f.topic === topic && f.type === 'notification:new');
    const got = await until(() => pushes(j).length >= 4 && pushes(j), WAIT, 'four pushes at the JSON subscriber');
    assert.deepEqual(got.map((f) => f.data.title), titles, 'in the order sent');
    const seqs = got.map((f) => f.sequence);
    assert.ok(seqs.every((q, i) => Number.isInteger(q) && q > 0 && (i === 0 || q === seqs[i - 1] + 1)), `gap-free sequences: ${seqs}`);
    // replayed from Redis on the other node
    const k = await jsonClient(a, admin);
    const again = await jsonRequest(k, 'subscribe', { topic, lastSequence: seqs[0] - 1 });
    assert.deepEqual([again.type, again.data.recovered, again.data.sequence], ['ack', true, seqs[3]], JSON.stringify(again));
    const replayed = await until(() => pushes(k).length >= 4 && pushes(k), WAIT, 'the replay on node A');
    assert.deepEqual(replayed.map((f) => [f.sequence, f.data.title]), got.map((f) => [f.sequence, f.data.title]));
    // the Socket.IO tab dropped from A comes back on B: recovered, with the push it missed
    await until(() => s.got.filter((g) => g.event === 'notification:new').length >= 4, WAIT, 'the four pushes on the tab');
    const gone = new Promise((r) => s.once('disconnect', r));
    s.io.engine.close();
    await gone;
    await sleep(300); // its session reaches Redis
    await notify(b, 'p5');
    const p5 = await until(() => pushes(j).find((f) => f.data.title === 'p5'), WAIT, 'p5 at the JSON subscriber');
    assert.equal(p5.sequence, seqs[3] + 1);
    s.io.uri = b.url('');
    const back = new Promise((r) => s.once('connect', r));
    s.connect();
    await back;
    assert.equal(s.recovered, true, 'socket.recovered on the other node');
    await received(s, 'notification:new', (d) => d.title === 'p5');
    await sleep(200);
    assert.deepEqual(s.got.filter((g) => g.event === 'notification:new').map((g) => g.data.title), [...titles, 'p5'], 'each once');
    j.ws.close();
    k.ws.close();
  });

  test('assignment picks the least-loaded online admin of the cluster, sessions started on either node', async () => {
    const x = who('admin'), y = who('admin'); // x.id < y.id: ties go to x
    const sx = await connect(a, x), sy = await connect(b, y);
    await adminsOnline(a, [x.id, y.id]);
    await adminsOnline(b, [x.id, y.id]);
    const got = [];
    for (const [i, srv] of [b, a, b, a, a].entries()) {
      const user = who('user');
      const r = await call(srv, 'POST', '/api/v4/customer-service/sessions', { as: user, body: { content: `session ${i}` } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      got.push(r.body.session.admin_id);
      const sock = r.body.session.admin_id === x.id ? sx : sy;
      await received(sock, 'chat:session_assigned', (d) => d.session_id === r.body.session.session_id);
    }
    // loads 0/0 -> x (B's session to A's admin), 1/0 -> y, 1/1 -> x, 2/1 -> y, 2/2 -> x
    assert.deepEqual(got, [x.id, y.id, x.id, y.id, x.id]);
  });

  test('kill -9 of a node: its node and its users leave the others\' presence within 15 s', async () => {
    const c = await startHerald(args);
    const admin = who('admin'), user = who('user');
    try {
      await connect(c, admin);
      await connect(c, user);
      const p = await until(async () => {
        const j = await presence(a);
        return j.nodes.length === 3 && j.admins.some((z) => z.id === admin.id) && j;
      }, WAIT, 'the third node and its admin seen from A');
      const tag = p.nodes.find((n) => !n.self && n.tag !== b.tag).tag;
      assert.deepEqual(p.admins.find((z) => z.id === admin.id).nodes, [tag]);
      c.child.kill('SIGKILL');
      const killed = Date.now();
      await until(async () => {
        const j = await presence(a);
        return !j.nodes.some((n) => n.tag === tag) && !j.admins.some((z) => z.id === admin.id) &&
          !j.users.some((z) => z.id === user.id) && j;
      }, 15000, 'the killed node gone from A\'s presence');
      const secs = (Date.now() - killed) / 1000;
      assert.ok(secs <= 15, `gone after ${secs} s`);
      // a new session no longer goes to the dead node's admin
      const alive = who('admin');
      await connect(b, alive);
      await adminsOnline(a, [alive.id]);
      const r = await call(a, 'POST', '/api/v4/customer-service/sessions', { as: who('user'), body: { content: 'after the kill' } });
      assert.equal(r.body.session.admin_id, alive.id);
    } finally {
      for (const s of open) s.close();
      open.clear();
      await c.stop().catch(() => {});
    }
  });
});

test('without --redis-url, GET /api/v4/presence answers for the node alone', async () => {
  const srv = await startHerald(ARGS);
  try {
    const admin = who('admin'), user = who('user');
    await connect(srv, admin);
    await connect(srv, user);
    const p = await presence(srv);
    assert.equal(p.scope, 'node');
    assert.equal(p.nodes.length, 1);
    assert.equal(p.nodes[0].self, true);
    assert.equal(p.nodes[0].url, null);
    assert.equal(p.nodes[0].users, 1);
    assert.equal(p.nodes[0].admins, 1);
    assert.ok(p.nodes[0].connections >= 2);
    assert.deepEqual(p.admins, [{ id: admin.id, sub: String(admin.id), sockets: 1, nodes: [p.self] }]);
    assert.deepEqual(p.users, [{ id: user.id, sub: String(user.id), sockets: 1, nodes: [p.self] }]);
    assert.equal(p.users_online, 1);
    const h = await (await fetch(srv.url('/health'))).json();
    assert.equal(h.cluster.status, 'disabled');
  } finally {
    for (const s of open) s.close();
    open.clear();
    await srv.stop();
  }
});
