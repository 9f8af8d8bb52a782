// Limits and reference-server behaviour under hostile or careless clients (issue 11, "Behave as the
// reference servers do" and "Abuse must stay bounded"): each test does what such a client would and
// asserts the bounded, clearly answered outcome, against a real herald. Every wait has a timeout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { spawnSync } from 'node:child_process';
import { startHerald, rssBytes, storeArgs, HERALD_BIN } from './lib/server.mjs';
import { seedAdmins } from './lib/app.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });
async function herald(args, opts) {
  const s = await startHerald(args, opts);
  servers.push(s);
  return s;
}

test('Socket.IO CONNECT answer over polling: the GET carrying it carries nothing else, the event comes with the next GET', async () => {
  const srv = await herald(['--test-handlers', '--recovery-window', '0', '--ws-deflate', 'false']);
  const base = srv.url('/socket.io/?EIO=4&transport=polling');
  const open = await (await fetch(base)).text();
  const sid = JSON.parse(open.slice(1)).sid;
  const post = await fetch(`${base}&sid=${sid}`, { method: 'POST', body: '40' });
  assert.equal(await post.text(), 'ok');
  assert.match(await (await fetch(`${base}&sid=${sid}`)).text(), /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
  assert.equal(await (await fetch(`${base}&sid=${sid}`)).text(), '42["auth",{}]');
});

/** A GET on a connection of its own (no keep-alive pool): {status, body}. */
function getAlone(srv, path) {
  return new Promise((resolve, reject) => {
    const req = http.get(srv.url(path), { agent: false, headers: { Connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('no answer in time')));
  });
}

/** n idle TCP connections to srv (connected, sending nothing). */
async function idleSockets(srv, n) {
  const socks = [];
  for (let i = 0; i < n; i++) {
    socks.push(await new Promise((resolve, reject) => {
      const s = net.connect(srv.port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    }));
  }
  for (const s of socks) s.on('error', () => {});
  return socks;
}

/** Opens a WebSocket; resolves {code} when it closes, or {error} when the connection failed. */
function wsOutcome(url, ms = 5000) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => { ws.terminate(); resolve({ error: 'timeout' }); }, ms);
    ws.on('close', (code) => { clearTimeout(timer); resolve({ code }); });
    ws.on('error', (e) => { clearTimeout(timer); resolve({ error: e.message }); });
  });
}

test('over --max-connections /health still answers 200; other requests get 503', async () => {
  const srv = await herald(['--max-connections', '2']);
  const socks = await idleSockets(srv, 2);
  let health; // until both idle sockets are accepted (a shard's thread may start late on a busy machine)
  for (let i = 0; i < 40; i++) {
    health = await getAlone(srv, '/health');
    if (health.status !== 200 || JSON.parse(health.body).connections.total >= 3) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(health.status, 200, health.body);
  assert.equal(JSON.parse(health.body).status, 'ok');
  assert.ok(JSON.parse(health.body).connections.total >= 3, health.body);
  const page = await getAlone(srv, '/index.html');
  assert.equal(page.status, 503);
  assert.match(JSON.parse(page.body).message, /server full/);
  for (const s of socks) s.destroy();
});

test('past the refusal budget a connection waits in the listen queue (no reset) and gets close 1013 once there is room', async () => {
  // one shard: its listen queue is the one that fills (the budget is per node; the queues per shard)
  const srv = await herald(['--max-connections', '1', '--echo-endpoint', '--shards', '1']);
  const socks = await idleSockets(srv, 1 + 64 + 4); // the limit, the refusal budget, and some waiting
  await new Promise((r) => setTimeout(r, 200));
  const pending = wsOutcome(srv.wsUrl('/ws/echo'), 8000);
  await new Promise((r) => setTimeout(r, 300));
  for (const s of socks) s.destroy(); // room comes back: the waiting ones are accepted and refused politely
  assert.deepEqual(await pending, { code: 1013 });
});

test('a low open-file limit is named at start; running out of descriptors sheds new connections, keeps established ones, no busy loop', async () => {
  const srv = await herald(['--max-connections', '1000', '--echo-endpoint'], { openFiles: 128 });
  assert.match(srv.log, /open-file limit is below what --max-connections needs.*nofile=128 .*shortfall=\d+ connections_accepted_at_most=\d+/);
  const ws = new WebSocket(srv.wsUrl('/ws/echo'));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const echo = async (text) => {
    const got = new Promise((resolve) => ws.once('message', (m) => resolve(m.toString())));
    ws.send(text);
    return got;
  };
  assert.equal(await echo('before'), 'before');
  const flood = [];
  for (let i = 0; i < 160; i++) { // past the 128 descriptors
    const s = net.connect(srv.port, '127.0.0.1');
    s.on('error', () => {});
    flood.push(s);
  }
  await new Promise((r) => setTimeout(r, 500));
  const cpu = () => readFileSync(`/proc/${srv.child.pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0);
  const c0 = cpu();
  await new Promise((r) => setTimeout(r, 1000));
  const ticks = cpu() - c0; // clock ticks (100 per second): a spinning accept would take ~100
  assert.ok(ticks < 30, `${ticks} ticks of CPU in 1 s while out of descriptors`);
  assert.equal(await echo('during'), 'during', 'an established connection still works');
  for (const s of flood) s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await getAlone(srv, '/health')).status, 200);
  assert.equal(await echo('after'), 'after');
  ws.close();
});

// --- customer-service chat -------------------------------------------------------------------

const SECRET = 'hostile-limits-secret-0123456789abcdef';
const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
/** An HS256 token for sub with role. */
function mint(sub, role) {
  const t = Math.floor(Date.now() / 1000);
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: String(sub), role, iat: t, exp: t + 600 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}
const CS = '/api/v4/customer-service/sessions';
async function call(srv, method, path, token, body) {
  const res = await fetch(srv.url(path), {
    method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

test('chat: a customer has at most --chat-max-open-sessions open sessions (429 JSON beyond; room again after a close)', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--chat-max-open-sessions', '2', '--chat-rate', '0']);
  const u = mint(501, 'user');
  const opened = [];
  for (let i = 0; i < 2; i++) {
    const r = await call(srv, 'POST', CS, u, { content: `help ${i}` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    opened.push(r.body.session.session_id);
  }
  const third = await call(srv, 'POST', CS, u, { content: 'and again' });
  assert.equal(third.status, 429);
  assert.match(third.body.message, /too many open sessions/);
  assert.equal((await call(srv, 'POST', CS, mint(502, 'user'), { content: 'another customer' })).status, 201);
  assert.equal((await call(srv, 'POST', `${CS}/${opened[0]}/close`, u)).status, 200);
  assert.equal((await call(srv, 'POST', CS, u, { content: 'now it fits' })).status, 201);
});

test('chat: a customer\'s message rate is limited (--chat-rate/--chat-burst): REST 429 JSON, Socket.IO ack {success:false, code:429}', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--chat-rate', '1', '--chat-burst', '3']);
  const u = mint(601, 'user');
  const s = await call(srv, 'POST', CS, u, { content: 'first' }); // takes a token too
  assert.equal(s.status, 201);
  const id = s.body.session.session_id;
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await call(srv, 'POST', `${CS}/${id}/messages`, u, { content: `m${i}` })).status);
  assert.equal(statuses.filter((x) => x === 429).length >= 2, true, statuses.join(','));
  const limited = await call(srv, 'POST', `${CS}/${id}/messages`, u, { content: 'again' });
  assert.equal(limited.status, 429);
  assert.match(limited.body.message, /too fast/);
  const { io } = await import('socket.io-client');
  const socket = io(srv.url('/'), { auth: { token: u }, transports: ['websocket'], reconnection: false });
  try {
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
    const ack = await socket.timeout(3000).emitWithAck('chat:send_message', { session_id: id, content: 'over socket' });
    assert.equal(ack.success, false);
    assert.equal(ack.code, 429);
    // admins are not limited
    const a = mint(1, 'admin');
    for (let i = 0; i < 5; i++) assert.ok((await call(srv, 'POST', `${CS}/${id}/messages`, a, { content: `a${i}` })).status < 300);
  } finally {
    socket.close();
  }
});

test('the store queue is bounded in bytes (--store-queue-bytes): a burst of writes past it is refused at once (ack code 503), what was acknowledged is stored', async () => {
  // the per-socket bound is lifted so only the byte bound can refuse (a store thread that keeps up
  // would otherwise leave more than 32 answers waiting for the loop: 429, the other limit)
  const srv = await herald(['--jwt-secret', SECRET, '--chat-rate', '0', '--store-queue-bytes', '65536', '--max-socket-store-requests', '1000']);
  const u = mint(701, 'user');
  const s = await call(srv, 'POST', CS, u, { content: 'first' });
  assert.equal(s.status, 201);
  const id = s.body.session.session_id;
  const socket = io(srv.url('/'), { auth: { token: u }, transports: ['websocket'], reconnection: false });
  try {
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
    const acks = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      socket.timeout(10000).emitWithAck('chat:send_message', { session_id: id, content: `${i} ${'x'.repeat(9000)}` })));
    const ok = acks.filter((a) => a.success), refused = acks.filter((a) => !a.success);
    assert.ok(ok.length >= 1 && refused.length >= 1, `kept ${ok.length}, refused ${refused.length}`);
    for (const a of refused) {
      assert.equal(a.code, 503, JSON.stringify(a));
      assert.match(a.error ?? a.message ?? '', /busy/);
    }
    // read once the queue has room again (what the accepted writes pushed may still be queued)
    let listed;
    for (let i = 0; i < 50 && (listed = await call(srv, 'GET', `${CS}/${id}/messages?limit=100`, u)).status === 503; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(listed.status, 200);
    assert.equal(listed.body.items.length, 1 + ok.length, 'stored: the first message and every acknowledged one');
  } finally {
    socket.close();
  }
});

/** A connected Socket.IO client (WebSocket only) with token. */
async function sioConnect(srv, token) {
  const socket = io(srv.url('/'), { auth: { token }, transports: ['websocket'], reconnection: false });
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
  return socket;
}

test('chat:send_message: at most --max-socket-store-requests wait for the store per socket (admins too): past it ack {success:false, code:429}, nothing stored; another socket of the same admin is unaffected', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--chat-rate', '0', '--max-socket-store-requests', '4']);
  const s = await call(srv, 'POST', CS, mint(801, 'user'), { content: 'first' });
  assert.equal(s.status, 201);
  const id = s.body.session.session_id;
  const a = mint(1, 'admin');
  const [flooder, calm] = [await sioConnect(srv, a), await sioConnect(srv, a)];
  try {
    // one burst: the events arrive together, the store answers later
    const burst = Array.from({ length: 60 }, (_, i) =>
      flooder.timeout(10000).emitWithAck('chat:send_message', { session_id: id, content: `burst ${i}` }));
    const calmAcks = [];
    for (let i = 0; i < 3; i++) calmAcks.push(await calm.timeout(10000).emitWithAck('chat:send_message', { session_id: id, content: `calm ${i}` }));
    const acks = await Promise.all(burst);
    const ok = acks.filter((x) => x.success), refused = acks.filter((x) => !x.success);
    assert.ok(ok.length >= 4 && refused.length >= 1, `kept ${ok.length}, refused ${refused.length}`);
    for (const x of refused) {
      assert.equal(x.code, 429, JSON.stringify(x));
      assert.match(x.error, /too many requests in flight on this connection/);
    }
    for (const x of calmAcks) assert.equal(x.success, true, JSON.stringify(x));
    const listed = await call(srv, 'GET', `${CS}/${id}/messages?limit=100`, a);
    assert.equal(listed.status, 200);
    const stored = listed.body.items.map((m) => m.message_content).filter((c) => c !== 'first').sort();
    const acked = [...ok, ...calmAcks].map((x) => x.data.message_content).sort();
    assert.deepEqual(stored, acked, 'stored: exactly what was acknowledged as success');
    // the slots come back: the flooder sends again
    const again = await flooder.timeout(5000).emitWithAck('chat:send_message', { session_id: id, content: 'later' });
    assert.equal(again.success, true, JSON.stringify(again));
  } finally {
    flooder.close();
    calm.close();
  }
});

test('notification:mark_read: at most --max-socket-store-requests wait for the store per socket: past it ack code 429, nothing marked; what was acknowledged is read', async () => {
  const KEY = 'hostile-limits-api-key-0123';
  const srv = await herald(['--jwt-secret', SECRET, '--api-key', KEY, '--demo-users', 'false', '--max-socket-store-requests', '3']);
  seedAdmins(srv.dataDir, [91]);
  const ids = [];
  for (let i = 0; i < 30; i++) {
    const res = await fetch(srv.url('/api/v4/notifications/send'), {
      method: 'POST', headers: { 'X-API-Key': KEY, 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'info', title: `n${i}`, content: '', target_user_id: 91 }),
    });
    const text = await res.text();
    assert.equal(res.status, 201, text);
    ids.push(JSON.parse(text).notification.notification_id);
  }
  const a = mint(91, 'admin');
  const [flooder, calm] = [await sioConnect(srv, a), await sioConnect(srv, a)];
  try {
    const burst = ids.slice(0, 28).map((nid) => flooder.timeout(10000).emitWithAck('notification:mark_read', { notification_id: nid }));
    const calmAck = await calm.timeout(10000).emitWithAck('notification:mark_read', { notification_id: ids[29] });
    assert.equal(calmAck.success, true, JSON.stringify(calmAck));
    const acks = await Promise.all(burst);
    const refused = acks.filter((x) => !x.success);
    assert.ok(refused.length >= 1 && acks.length - refused.length >= 3, `refused ${refused.length} of ${acks.length}`);
    for (const x of refused) {
      assert.equal(x.code, 429, JSON.stringify(x));
      assert.match(x.error, /too many requests in flight on this connection/);
    }
    const read = new Set([...acks.filter((x) => x.success).map((x) => x.data.notification_id), ids[29]]);
    const list = await call(srv, 'GET', '/api/v4/notifications?limit=100', a);
    assert.equal(list.status, 200);
    for (const item of list.body.items) assert.equal(item.is_read, read.has(item.notification_id), `notification ${item.notification_id}`);
    assert.equal(list.body.items.length, 30);
  } finally {
    flooder.close();
    calm.close();
  }
});

test('chat: assign gives a session only to an admin (an admin account, or an admin online), else 400', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--chat-rate', '0']); // demo users: admin is id 1, user id 2
  for (let i = 0; i < 100 && !/demo user created.*name=user/.test(srv.log); i++) await new Promise((r) => setTimeout(r, 50));
  const s = await call(srv, 'POST', CS, mint(701, 'user'), { content: 'who takes this?' });
  const id = s.body.session.session_id;
  const a = mint(1, 'admin');
  for (const target of [2, 701, 99999]) { // a customer account, a customer, nobody
    const r = await call(srv, 'POST', `${CS}/${id}/assign`, a, { admin_id: target });
    assert.equal(r.status, 400, `admin_id ${target}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.message, /admin_id/);
  }
  // an admin account that is disabled is not given sessions either
  const cli = (args) => spawnSync(HERALD_BIN, [...args, '--data-dir', srv.dataDir, ...storeArgs(srv.dataDir)], { encoding: 'utf8', timeout: 20000 });
  assert.equal(cli(['user', 'add', 'boss', '--role', 'admin', '--password', 'boss-pass-1']).status, 0);
  assert.equal(cli(['user', 'disable', 'boss']).status, 0);
  const boss = Number(/^(\d+)\s+boss\b/m.exec(cli(['user', 'list']).stdout)[1]);
  const off = await call(srv, 'POST', `${CS}/${id}/assign`, a, { admin_id: boss });
  assert.equal(off.status, 400, JSON.stringify(off.body));
  assert.match(off.body.message, /disabled/);
  const ok = await call(srv, 'POST', `${CS}/${id}/assign`, mint(42, 'admin'), { admin_id: 1 });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.session.admin_id, 1);
});

// --- Socket.IO recovery state -----------------------------------------------------------------

/** A Socket.IO client on WebSocket that reconnects by itself after 300 ms, connected. */
async function sioClient(srv) {
  const { io } = await import('socket.io-client');
  const s = io(srv.url('/'), { transports: ['websocket'], forceNew: true, reconnectionDelay: 300, reconnectionDelayMax: 300, randomizationFactor: 0 });
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
  return s;
}
/** Drops c's TCP connection abruptly, runs meanwhile, then reconnects: true when recovered. */
async function dropAndReconnect(c, meanwhile = async () => {}) {
  c.io.reconnection(false); // it comes back when told, not while meanwhile runs
  const gone = new Promise((resolve) => c.once('disconnect', resolve));
  c.io.engine.transport.ws._socket.destroy();
  await gone;
  await meanwhile();
  const back = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reconnect')), 5000);
    c.once('connect', () => { clearTimeout(t); resolve(); });
  });
  c.connect();
  await back;
  return c.recovered;
}

test('recovery: at most --recovery-max-sessions dropped sockets are kept; past it a socket comes back as new', async () => {
  const srv = await herald(['--test-handlers', '--recovery-max-sessions', '2']);
  const clients = [await sioClient(srv), await sioClient(srv), await sioClient(srv)];
  try {
    const recovered = await Promise.all(clients.map((c) => dropAndReconnect(c)));
    assert.equal(recovered.filter(Boolean).length, 2, JSON.stringify(recovered));
  } finally {
    for (const c of clients) c.close();
  }
});

test('recovery: recorded packets are bounded in bytes (--recovery-max-bytes): past it the oldest go, and a socket that missed them is not recovered', async () => {
  const API_KEY = 'hostile-limits-api-key';
  const srv = await herald(['--test-handlers', '--api-key', API_KEY, '--recovery-max-bytes', '1048576', '--json-max-message', '200000']);
  const c = await sioClient(srv);
  try {
    const got = new Promise((resolve) => c.once('msg', resolve));
    c.emit('broadcast', 'hello'); // c's last delivery: the point it must recover from
    await got;
    const publishMiB = async () => {
      for (let i = 0; i < 12; i++) { // 12 x 100 kB recorded in namespace "/" while c is away
        const r = await fetch(srv.url('/api/v1/publish'), {
          method: 'POST', headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
          body: JSON.stringify({ topic: 'big', type: 'x', data: 'x'.repeat(100000) }),
        });
        assert.equal(r.status, 200);
      }
    };
    assert.equal(await dropAndReconnect(c, publishMiB), false, 'the packets it missed were dropped: it must not claim a full recovery');
    const rss = await rssBytes(srv.child.pid);
    assert.ok(rss < 200 * 1024 * 1024, `RSS ${rss}`);
  } finally {
    c.close();
  }
});

// --- topics ------------------------------------------------------------------------------------

/** herald_topics from /metrics. */
async function topics(srv) {
  const text = await (await fetch(srv.url('/metrics'))).text();
  return Number(/^herald_topics (\d+)$/m.exec(text)?.[1]);
}

/** A JSON-protocol connection with token: {send(obj), acks(n): the next n ack/error frames, close()}. */
async function jsonClient(srv, token) {
  const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?token=${token}&protocol=1.0`), { perMessageDeflate: false });
  const frames = [];
  const waiting = [];
  ws.on('message', (m) => {
    const f = JSON.parse(m.toString());
    if (f.type === 'ack' || f.type === 'error') frames.push(f);
    while (waiting.length && frames.length >= waiting[0].n) waiting.shift().resolve();
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return {
    send: (o) => ws.send(JSON.stringify(o)),
    acks: (n) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${frames.length} of ${n} answers`)), 5000);
      const done = () => { clearTimeout(t); resolve(frames.slice(0, n)); };
      if (frames.length >= n) done(); else waiting.push({ n, resolve: done });
    }),
    close: () => new Promise((resolve) => { ws.once('close', resolve); ws.close(); }),
  };
}

test('topics: a topic nobody subscribes to any more and with nothing to replay is freed; its sequence goes on increasing', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--max-subscriptions', '300', '--api-key', 'k-topics', '--json-burst', '1000']);
  const base = await topics(srv);
  const c = await jsonClient(srv, mint(9, 'admin'));
  for (let i = 0; i < 200; i++) c.send({ type: 'subscribe', data: { topic: `public:t${i}`, ...(i % 2 ? { params: { p: i } } : {}) }, messageId: `s${i}` });
  const acks = await c.acks(200);
  assert.ok(acks.every((f) => f.type === 'ack'), JSON.stringify(acks.find((f) => f.type !== 'ack')));
  assert.equal(await topics(srv) - base, 200);
  const first = await fetch(srv.url('/api/v1/publish'), { // public:t0 gets a replayable message
    method: 'POST', headers: { 'X-API-Key': 'k-topics', 'Content-Type': 'application/json' },
    body: JSON.stringify({ topic: 'public:t0', type: 'x', data: 1 }),
  });
  const seq0 = (await first.json()).sequence;
  c.send({ type: 'unsubscribe', data: { topic: 'public:t1', params: { p: 1 } }, messageId: 'u1' });
  await c.acks(201);
  assert.equal(await topics(srv) - base, 199, 'unsubscribed, nothing kept: freed');
  await c.close();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await topics(srv) - base, 1, 'only the topic with history to replay is left');
  // subscribing again makes the topic again; sequences only go up
  const d = await jsonClient(srv, mint(9, 'admin'));
  d.send({ type: 'subscribe', data: { topic: 'public:t0', lastSequence: 0 }, messageId: 'again0' });
  d.send({ type: 'subscribe', data: { topic: 'public:t5', lastSequence: 0 }, messageId: 'again5' });
  const [a0, a5] = await d.acks(2);
  assert.equal(a0.data.sequence, seq0);
  const had5 = acks.find((f) => f.data.messageId === 's5').data.sequence;
  assert.ok(a5.data.sequence >= had5, `made again above what it had: ${a5.data.sequence} >= ${had5}`);
  await d.close();
});

// --- inbox replay ------------------------------------------------------------------------------

test('inbox: a large unacknowledged inbox is replayed a page at a time (--inbox-page), the next page once the last is acknowledged', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--api-key', 'k-inbox', '--inbox-page', '40', '--ack-timeout', '60000']);
  const token = mint(77, 'user');
  const open = async () => {
    const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?clientId=tab1&token=${token}`), { perMessageDeflate: false });
    const notes = [];
    ws.on('message', (m) => { const f = JSON.parse(m.toString()); if (f.type === 'notification') notes.push(f); });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    return { ws, notes };
  };
  const until = async (check, what) => {
    for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) if (check()) return;
    throw new Error(`timed out: ${what}`);
  };
  // 100 notifications delivered and left unacknowledged: they wait in the inbox
  const a = await open();
  a.ws.send(JSON.stringify({ type: 'subscribe', messageId: 's', data: { topic: 'user:77' } }));
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 100; i++) {
    const r = await fetch(srv.url('/api/v1/publish'), {
      method: 'POST', headers: { 'X-API-Key': 'k-inbox' },
      body: JSON.stringify({ topic: 'user:77', type: 'notification', data: { i } }),
    });
    assert.equal(r.status, 200);
  }
  await until(() => a.notes.length === 100, 'the live deliveries');
  a.ws.terminate();
  await new Promise((r) => setTimeout(r, 200));
  // the next connection gets 40, nothing more while they are unacknowledged, then the next 40
  const b = await open();
  await until(() => b.notes.length >= 40, 'the first page');
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(b.notes.length, 40, 'one page only while unacknowledged');
  assert.deepEqual(b.notes.map((n) => n.data.i), [...Array(40).keys()]);
  for (const n of b.notes) b.ws.send(JSON.stringify({ type: 'ack', data: { messageId: n.messageId } }));
  await until(() => b.notes.length >= 80, 'the second page');
  assert.deepEqual(b.notes.slice(40).map((n) => n.data.i), [...Array(40).keys()].map((i) => i + 40));
  for (const n of b.notes.slice(40)) b.ws.send(JSON.stringify({ type: 'ack', data: { messageId: n.messageId } }));
  await until(() => b.notes.length >= 100, 'the last page');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(b.notes.length, 100);
  b.ws.close();
});

test('JSON protocol: a user has at most --max-connections-per-user clients connected (error 1000, close 1008 beyond); the same clientId replaces', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--max-connections-per-user', '3']);
  /** Opens a connection: {ws, first: its first frame, closed: promise of the close code}. */
  const open = async (sub, clientId) => {
    const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?clientId=${clientId}&token=${mint(sub, 'user')}`), { perMessageDeflate: false });
    const closed = new Promise((resolve) => ws.once('close', resolve));
    const first = await new Promise((resolve, reject) => {
      ws.once('message', (m) => resolve(JSON.parse(m.toString())));
      ws.once('error', reject);
    });
    return { ws, first, closed };
  };
  const tabs = [await open(88, 'a'), await open(88, 'b'), await open(88, 'c')];
  assert.ok(tabs.every((t) => t.first.type === 'connect'));
  const fourth = await open(88, 'd');
  assert.equal(fourth.first.type, 'error');
  assert.equal(fourth.first.data.code, 1000);
  assert.match(fourth.first.data.message, /too many connections/);
  assert.equal(await fourth.closed, 1008);
  const again = await open(88, 'b'); // the same client: replaces its old connection
  assert.equal(again.first.type, 'connect');
  assert.equal((await open(89, 'a')).first.type, 'connect', 'another user');
  tabs[0].ws.close();
  await tabs[0].closed;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await open(88, 'd')).first.type, 'connect', 'room again after a close');
});

test('Socket.IO: a user has at most --max-connections-per-user sockets over the node (connect_error, data.code 429 beyond)', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--max-connections-per-user', '2']);
  /** Connects a socket of sub: resolves with it, or with {error} for a connect_error. */
  const open = (sub) => new Promise((resolve) => {
    const socket = io(srv.url('/'), { auth: { token: mint(sub, 'user') }, transports: ['websocket'], forceNew: true, reconnection: false });
    socket.once('connect', () => resolve({ socket }));
    socket.once('connect_error', (error) => { socket.close(); resolve({ error }); });
  });
  const tabs = [await open(91), await open(91)];
  assert.ok(tabs.every((t) => t.socket), 'two are accepted');
  const third = await open(91);
  assert.ok(third.error, 'the third is refused');
  assert.match(third.error.message, /too many connections/);
  assert.equal(third.error.data?.code, 429);
  const other = await open(92);
  assert.ok(other.socket, 'another user is not affected');
  other.socket.close();
  tabs[0].socket.close();
  await new Promise((r) => setTimeout(r, 150));
  const again = await open(91);
  assert.ok(again.socket, 'room again after a close');
  again.socket.close();
  tabs[1].socket.close();
});

test('a notification published to user:{sub} while that user is offline is kept in their inbox and delivered on their next connection', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--api-key', 'k-offline']);
  const publish = async (topic, type, data) => {
    const r = await fetch(srv.url('/api/v1/publish'), {
      method: 'POST', headers: { 'X-API-Key': 'k-offline' }, body: JSON.stringify({ topic, type, data }),
    });
    return { status: r.status, body: await r.json() };
  };
  const kept = await publish('user:55', 'notification', { title: 'while you were away' });
  assert.equal(kept.status, 200);
  assert.deepEqual([kept.body.delivered, kept.body.stored], [0, true]);
  const plain = await publish('user:55', 'data', { x: 1 }); // not a notification: not kept
  assert.equal(plain.body.stored, undefined);
  const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?clientId=t&token=${mint(55, 'user')}`), { perMessageDeflate: false });
  const note = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('nothing came')), 5000);
    ws.on('message', (m) => { const f = JSON.parse(m.toString()); if (f.type === 'notification') { clearTimeout(t); resolve(f); } });
  });
  assert.equal(note.messageId, kept.body.messageId);
  assert.deepEqual(note.data, { title: 'while you were away' });
  ws.close();
});

test('inbox: a user keeps at most --inbox-max notifications; the oldest are dropped and counted in /metrics', async () => {
  const srv = await herald(['--jwt-secret', SECRET, '--api-key', 'k-cap', '--inbox-max', '3']);
  const metric = async () => Number(/^herald_inbox_dropped_total (\d+)$/m.exec(await (await fetch(srv.url('/metrics'))).text())[1]);
  assert.equal(await metric(), 0);
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const r = await fetch(srv.url('/api/v1/publish'), {
      method: 'POST', headers: { 'X-API-Key': 'k-cap' }, body: JSON.stringify({ topic: 'user:56', type: 'notification', data: { i } }),
    });
    const body = await r.json();
    assert.deepEqual([r.status, body.stored], [200, true]);
    ids.push(body.messageId);
  }
  assert.equal(await metric(), 2);
  const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?clientId=t&token=${mint(56, 'user')}`), { perMessageDeflate: false });
  const got = [];
  ws.on('message', (m) => { const f = JSON.parse(m.toString()); if (f.type === 'notification') got.push(f.messageId); });
  for (let i = 0; i < 100 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(got, ids.slice(2), 'the newest three, oldest first');
  ws.close();
});
