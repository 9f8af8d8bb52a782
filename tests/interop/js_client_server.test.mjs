// clients/js/herald-client.js against the REAL Herald server (HERALD_BIN, default build/herald),
// loaded in Node with createRequire and using the `ws` package: connect and states (auth failure),
// subscriptions (user topic, public topic with params), sequences and unsubscribe, heartbeats,
// notification auto-ack (no redelivery), duplicate suppression of a real redelivery, the inbox,
// replay with an explicit lastSequence, automatic reconnect + resubscribe with lastSequence after the
// TCP connection is dropped (through a proxy, the server stays up), bare + params subscriptions of
// one topic across a reconnect, a sendWithAck frame resent after a reconnect and processed once,
// permission refusals, rate limiting (also of the resubscriptions after a reconnect), `replaced`,
// token expiry with getToken.
// The mock-server tests of the same client are in js_client.test.mjs; this file checks that the
// client and the server agree. Every test starts its own server(s) and stops them, and closes its
// clients: the process must exit by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';

const require = createRequire(import.meta.url);
const HeraldClient = require(fileURLToPath(new URL('../../clients/js/herald-client.js', import.meta.url)));

const SECRET = 'js-client-server-secret-0123456789';
const API_KEY = 'js-client-server-api-key';
const BASE = ['--jwt-secret', SECRET, '--api-key', API_KEY];
const T = { timeout: 20000 }; // per test (generous for ASan builds)
const FAST = { initialDelay: 50, maxDelay: 300, factor: 2, jitter: 0 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowS = () => Math.floor(Date.now() / 1000);

// ---- tokens, servers, publishing ----

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** An HS256 JWT for SECRET: {sub, role, exp} (exp one hour from now unless given). */
function mint(sub, role = 'user', exp = nowS() + 3600) {
  const signing = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, role, iat: nowS(), exp })}`;
  return `${signing}.${crypto.createHmac('sha256', SECRET).update(signing).digest('base64url')}`;
}

/** Rejects when p takes longer than ms. */
function within(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

/** Runs fn after the test, in reverse order of registration (clients, then proxies, then servers),
 * each bounded, so a stuck cleanup fails the test instead of keeping the process alive. */
const cleanups = new WeakMap();
function defer(t, what, fn) {
  let list = cleanups.get(t);
  if (!list) {
    cleanups.set(t, (list = []));
    t.after(async () => {
      let first = null;
      while (list.length) {
        const [name, f] = list.pop();
        try { await within(Promise.resolve().then(f), 15000, `cleanup (${name})`); } catch (err) { first ??= err; }
      }
      if (first) throw first;
    });
  }
  list.push([what, fn]);
}

/** A herald (BASE + args) stopped after the test; its exit must be clean. */
async function server(t, args = []) {
  const srv = await startHerald([...BASE, ...args]);
  defer(t, 'herald', async () => {
    const r = await within(srv.stop(), 12000, 'herald stop').catch(async (err) => {
      srv.child.kill('SIGKILL');
      await srv.exited;
      throw err;
    });
    assert.deepEqual(r, { code: 0, signal: null }, `herald did not exit cleanly:\n${srv.log.slice(-3000)}`);
  });
  return srv;
}

/** POST /api/v1/publish; returns the JSON answer ({messageId, sequence, delivered}). */
async function publish(srv, body) {
  const res = await fetch(srv.url('/api/v1/publish'), {
    method: 'POST', headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json', Connection: 'close' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `publish ${JSON.stringify(body)}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// ---- clients ----

/** A `ws` WebSocket class that records every frame received (rec.in) and sent (rec.out), parsed. */
function recorder() {
  const rec = { in: [], out: [], sockets: [] };
  rec.WS = class RecordingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      rec.sockets.push(this);
      // Registered before the client's onmessage, so rec.in is filled before the client handles a frame.
      this.addEventListener('message', (ev) => { try { rec.in.push(JSON.parse(String(ev.data))); } catch { rec.in.push({ raw: String(ev.data) }); } });
    }
    send(data, ...rest) {
      try { rec.out.push(JSON.parse(data)); } catch { rec.out.push({ raw: String(data) }); }
      return super.send(data, ...rest);
    }
  };
  return rec;
}

/**
 * A HeraldClient for srv (or for url), closed after the test. Records what it emits:
 * c.log.states, c.log.errors, c.log.messages (business envelopes), c.log.duplicates, c.log.disconnects,
 * c.log.resubscribes; raw frames in c.rec.
 */
function client(t, target, opts = {}) {
  const rec = recorder();
  const url = typeof target === 'string' ? target : target.wsUrl('/api/v1/ws');
  const c = new HeraldClient({
    url, reconnect: FAST, heartbeatInterval: 0, requestTimeout: 8000, connectTimeout: 8000, WebSocket: rec.WS, ...opts,
  });
  const log = { states: [], errors: [], messages: [], duplicates: [], disconnects: [], resubscribes: [], connects: [] };
  c.on('state', (s, info) => log.states.push([s, info]));
  c.on('error', (e) => log.errors.push(e));
  c.on('duplicate', (env) => log.duplicates.push(env));
  c.on('disconnect', (info) => log.disconnects.push(info));
  c.on('resubscribe', (ack, sub) => log.resubscribes.push([ack, sub]));
  c.on('connect', (data) => log.connects.push(data));
  for (const type of ['notification', 'data', 'status']) c.on(type, (data, env) => log.messages.push(env));
  c.rec = rec;
  c.log = log;
  defer(t, 'client', () => c.close());
  return c;
}

/** Resolves with cond()'s value once truthy (polled every 10 ms); fails after ms. */
async function until(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** The arguments of the next `event` of c. */
function next(c, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { c.off(event, h); reject(new Error(`timed out waiting for '${event}'`)); }, ms);
    const h = (...args) => { clearTimeout(timer); c.off(event, h); resolve(args); };
    c.on(event, h);
  });
}

async function connected(c) {
  if (c.connected) return;
  await next(c, 'connect');
}

const byTopic = (c, topic) => c.log.messages.filter((e) => e.topic === topic);
const seqs = (envs) => envs.map((e) => e.sequence);
function assertIncreasing(list, what) {
  for (let i = 1; i < list.length; i++) assert.ok(list[i] > list[i - 1], `${what}: not strictly increasing: ${list}`);
}

/**
 * A TCP proxy to 127.0.0.1:port, to drop the client's connection while the server stays up.
 * p.refuse: new connections are closed at once; p.holdDown: bytes from the server are discarded;
 * p.dropAll(): destroys every proxied connection.
 */
async function proxy(t, port) {
  const pairs = new Set();
  const p = { refuse: false, holdDown: false, accepted: 0 };
  const srv = net.createServer((down) => {
    if (p.refuse) return down.destroy();
    p.accepted++;
    const up = net.connect(port, '127.0.0.1');
    const pair = { down, up };
    pairs.add(pair);
    const end = () => { pairs.delete(pair); down.destroy(); up.destroy(); };
    down.on('data', (d) => up.write(d));
    up.on('data', (d) => { if (!p.holdDown) down.write(d); });
    for (const s of [down, up]) { s.on('close', end); s.on('error', end); }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  p.url = `ws://127.0.0.1:${srv.address().port}/api/v1/ws`;
  p.dropAll = () => { for (const { down, up } of [...pairs]) { down.destroy(); up.destroy(); } pairs.clear(); };
  defer(t, 'proxy', () => { p.refuse = true; p.dropAll(); return new Promise((r) => srv.close(r)); });
  return p;
}

// ---- tests ----

test('connects: states connecting -> connected, connect frame with the clientId, generated ids accepted', T, async (t) => {
  const srv = await server(t);
  const c = client(t, srv, { token: mint('alice'), clientId: 'node-alice-1' });
  const [data, env] = await next(c, 'connect');
  assert.deepEqual(c.log.states.map((s) => s[0]), ['connecting', 'connected']);
  assert.equal(data.clientId, 'node-alice-1');
  assert.equal(c.clientId, 'node-alice-1');
  assert.ok(Math.abs(data.serverTime - Date.now()) < 5000, `serverTime ${data.serverTime}`);
  assert.equal(env.type, 'connect');
  assert.equal(typeof env.messageId, 'string');
  assert.equal(c.connected, true);
  const url = new URL(c.rec.sockets[0].url);
  assert.equal(url.searchParams.get('protocol'), '1.0');
  assert.equal(url.searchParams.get('clientId'), 'node-alice-1');

  // No clientId: the generated js-XXXXXXXXXXXX is accepted as it is by the server.
  const c2 = client(t, srv, { token: mint('alice') });
  const generated = c2.clientId;
  assert.match(generated, /^js-[0-9a-z]{12}$/);
  const [data2] = await next(c2, 'connect');
  assert.equal(data2.clientId, generated);

  // A bad token: 'failed' with AUTH_FAILED, no retry.
  const bad = client(t, srv, { token: mint('alice').slice(0, -4) + 'AAAA' });
  await until(() => bad.state === 'failed', 5000, "state 'failed'");
  assert.equal(bad.log.states.at(-1)[1].error.code, 1001);
  assert.equal(bad.log.errors[0]?.code, 1001);
  await sleep(300);
  assert.equal(bad.rec.sockets.length, 1, 'no reconnect after an auth failure');
});

test('subscribes to user:<sub> and a public topic with params; publishes arrive in order with increasing sequences', T, async (t) => {
  const srv = await server(t);
  const c = client(t, srv, { token: mint('bob'), clientId: 'node-bob' });
  await connected(c);
  const ackUser = await c.subscribe('user:bob');
  assert.equal(ackUser.topic, 'user:bob');
  assert.equal(typeof ackUser.sequence, 'number');
  assert.equal(ackUser.recovered, undefined);
  const ackNews = await c.subscribe('public:news', { region: 'eu', n: 1 });
  assert.equal(ackNews.topic, 'public:news');
  assert.deepEqual(ackNews.params, { region: 'eu', n: 1 });
  assert.equal(c.getLastSequence('public:news', { n: 1, region: 'eu' }), ackNews.sequence);

  const sent = { user: [], news: [] };
  for (let i = 1; i <= 3; i++) {
    sent.user.push(await publish(srv, { topic: 'user:bob', type: 'notification', data: { i } }));
    // params in another key order: the same subscription
    sent.news.push(await publish(srv, { topic: 'public:news', params: { n: 1, region: 'eu' }, type: 'data', data: { i } }));
  }
  // Not for this subscription: other params, no params.
  await publish(srv, { topic: 'public:news', params: { region: 'us', n: 1 }, type: 'data', data: { wrong: 'params' } });
  await publish(srv, { topic: 'public:news', params: { region: 'eu', n: '1' }, type: 'data', data: { wrong: 'typed params' } });
  await publish(srv, { topic: 'public:news', type: 'data', data: { wrong: 'no params' } });
  // A fence: one more for the subscription; the connection's frames are in order.
  sent.news.push(await publish(srv, { topic: 'public:news', params: { region: 'eu', n: 1 }, type: 'status', data: { i: 4 } }));
  await until(() => byTopic(c, 'public:news').length >= 4 && byTopic(c, 'user:bob').length >= 3, 5000, 'the messages');

  const user = byTopic(c, 'user:bob');
  const news = byTopic(c, 'public:news');
  assert.deepEqual(user.map((e) => e.data), [{ i: 1 }, { i: 2 }, { i: 3 }]);
  assert.deepEqual(news.map((e) => e.data), [{ i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }], 'only the publishes with exactly these params');
  assert.deepEqual(news.map((e) => e.type), ['data', 'data', 'data', 'status']);
  assert.deepEqual(seqs(user), sent.user.map((p) => p.sequence), 'envelope sequence = the publish API sequence');
  assert.deepEqual(seqs(news), sent.news.map((p) => p.sequence));
  assert.deepEqual(user.map((e) => e.messageId), sent.user.map((p) => p.messageId));
  assertIncreasing(seqs(user), 'user:bob');
  assertIncreasing(seqs(news), 'public:news');
  assert.ok(news[0].sequence > ackNews.sequence, 'after the subscribe ack sequence');
  for (const e of news) assert.deepEqual(e.params, { n: 1, region: 'eu' }, 'delivered with its params');
  assert.equal(c.getLastSequence('public:news', { region: 'eu', n: 1 }), news.at(-1).sequence);
  assert.equal(c.getLastSequence('user:bob'), user.at(-1).sequence);

  // Unsubscribe: acked, and the server stops sending.
  const unack = await c.unsubscribe('public:news', { n: 1, region: 'eu' });
  assert.equal(unack.topic, 'public:news');
  assert.deepEqual(c.subscriptions().map((x) => x.topic), ['user:bob']);
  const after = await publish(srv, { topic: 'public:news', params: { region: 'eu', n: 1 }, type: 'data', data: { i: 5 } });
  assert.equal(after.delivered, 0);
  assert.deepEqual(c.log.errors, []);
});

test('heartbeat: the server answers every client heartbeat, so no HEARTBEAT_TIMEOUT', T, async (t) => {
  const srv = await server(t);
  const c = client(t, srv, { token: mint('hb'), clientId: 'node-hb', heartbeatInterval: 150, heartbeatTimeout: 400 });
  await connected(c);
  let answers = 0;
  c.on('heartbeat', (data) => { assert.equal(typeof data.serverTime, 'number'); answers++; });
  await sleep(1000);
  assert.ok(answers >= 4, `${answers} heartbeat answers`);
  const sent = c.rec.out.filter((f) => f.type === 'heartbeat').length;
  assert.ok(sent - answers <= 1, `${sent} heartbeats sent, ${answers} answered`);
  assert.equal(c.state, 'connected');
  assert.equal(c.log.disconnects.length, 0);
  assert.deepEqual(c.log.errors, []);
});

test('notification auto-ack: the server does not redeliver, and nothing waits in the inbox', T, async (t) => {
  const srv = await server(t, ['--ack-timeout', '300']);
  const c = client(t, srv, { token: mint('carol'), clientId: 'node-carol' });
  await connected(c);
  await c.subscribe('user:carol');
  const p = await publish(srv, { topic: 'user:carol', type: 'notification', data: { hello: 1 } });
  await until(() => c.log.messages.length === 1, 5000, 'the notification');
  await sleep(1500); // five ack timeouts
  const frames = c.rec.in.filter((f) => f.messageId === p.messageId);
  assert.equal(frames.length, 1, `delivered ${frames.length} times: the ack was not taken`);
  assert.equal(c.log.messages.length, 1);
  assert.equal(c.log.duplicates.length, 0);
  const acks = c.rec.out.filter((f) => f.type === 'ack');
  assert.deepEqual(acks.map((f) => f.data), [{ messageId: p.messageId }]);

  // The next connection of the user gets nothing from the inbox.
  c.close();
  const c2 = client(t, srv, { token: mint('carol'), clientId: 'node-carol' });
  await connected(c2);
  await c2.subscribe('user:carol'); // the inbox would come right after connect, before this ack
  assert.deepEqual(c2.rec.in.filter((f) => f.type === 'notification'), []);
});

test('duplicate suppression: a real redelivery (autoAck: false) reaches the handler once', T, async (t) => {
  const srv = await server(t, ['--ack-timeout', '300', '--ack-retries', '20']);
  const c = client(t, srv, { token: mint('dave'), clientId: 'node-dave', autoAck: false });
  await connected(c);
  await c.subscribe('user:dave');
  let calls = 0;
  c.on('notification', () => { calls++; });
  const p = await publish(srv, { topic: 'user:dave', type: 'notification', data: { once: true } });
  await until(() => c.rec.in.filter((f) => f.messageId === p.messageId).length >= 3, 5000, 'two redeliveries');
  const copies = c.rec.in.filter((f) => f.messageId === p.messageId);
  for (const f of copies) {
    assert.equal(f.type, 'notification');
    assert.equal(f.sequence, p.sequence, 'a redelivery keeps its sequence');
    assert.deepEqual(f.data, { once: true });
  }
  assert.equal(calls, 1, 'the handler fired once');
  assert.ok(c.log.duplicates.length >= 2, 'the copies were reported as duplicates');
  assert.ok(c.log.duplicates.every((e) => e.messageId === p.messageId));
  assert.deepEqual(c.rec.out.filter((f) => f.type === 'ack'), [], 'autoAck: false sends no ack');

  // Acked by hand: redelivery stops.
  assert.equal(c.ack(p.messageId), true);
  await sleep(150); // the ack reaches the server
  const n = c.rec.in.filter((f) => f.messageId === p.messageId).length;
  await sleep(1000);
  assert.equal(c.rec.in.filter((f) => f.messageId === p.messageId).length, n, 'redelivered after the ack');
  assert.equal(calls, 1);
});

test('inbox: an unacked notification comes on the next connection of the user, once, and is acked there', T, async (t) => {
  const srv = await server(t, ['--ack-timeout', '5000']);
  const c = client(t, srv, { token: mint('erin'), clientId: 'node-erin-1', autoAck: false });
  await connected(c);
  await c.subscribe('user:erin');
  const p = await publish(srv, { topic: 'user:erin', type: 'notification', data: { keep: 1 } });
  await until(() => c.log.messages.length === 1, 5000, 'the notification');
  c.close(); // not acked: the server keeps it in erin's inbox

  const c2 = client(t, srv, { token: mint('erin'), clientId: 'node-erin-2' });
  const got = next(c2, 'notification');
  const [data, env] = await got;
  assert.deepEqual(data, { keep: 1 });
  assert.equal(env.messageId, p.messageId);
  assert.equal(env.sequence, p.sequence);
  assert.equal(env.topic, 'user:erin');
  await until(() => c2.rec.out.some((f) => f.type === 'ack' && f.data.messageId === p.messageId), 2000, 'the auto-ack');
  await sleep(100);
  c2.close();

  const c3 = client(t, srv, { token: mint('erin'), clientId: 'node-erin-3' });
  await connected(c3);
  await c3.subscribe('user:erin');
  assert.deepEqual(c3.rec.in.filter((f) => f.type === 'notification'), [], 'acked: not in the inbox any more');
});

test('replay with an explicit lastSequence: a new client recovers what was published while offline, no gap, no duplicate', T, async (t) => {
  const srv = await server(t);
  const token = mint('frank');
  const c = client(t, srv, { token, clientId: 'node-frank' });
  await connected(c);
  await c.subscribe('public:feed', { room: 7 });
  const published = [];
  for (let i = 1; i <= 2; i++) published.push(await publish(srv, { topic: 'public:feed', params: { room: 7 }, type: 'data', data: { i } }));
  await until(() => c.log.messages.length === 2, 5000, 'the first two');
  const last = c.getLastSequence('public:feed', { room: 7 });
  assert.equal(last, published[1].sequence);
  c.close();
  await sleep(100);

  // Published while nobody is connected; one to other params (not for this subscription).
  for (let i = 3; i <= 5; i++) published.push(await publish(srv, { topic: 'public:feed', params: { room: 7 }, type: 'data', data: { i } }));
  await publish(srv, { topic: 'public:feed', params: { room: 8 }, type: 'data', data: { other: true } });

  const c2 = client(t, srv, { token, clientId: 'node-frank' });
  const ack = await c2.subscribe('public:feed', { room: 7 }, { lastSequence: last });
  assert.equal(ack.recovered, true);
  assert.equal(ack.topic, 'public:feed');
  await until(() => c2.log.messages.length === 3, 5000, 'the replay');
  published.push(await publish(srv, { topic: 'public:feed', params: { room: 7 }, type: 'data', data: { i: 6 } }));
  await until(() => c2.log.messages.length === 4, 5000, 'the live message');
  await sleep(200);

  const all = [...c.log.messages, ...c2.log.messages];
  assert.deepEqual(all.map((e) => e.data.i), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(seqs(all), published.map((p) => p.sequence));
  assert.deepEqual(all.map((e) => e.messageId), published.map((p) => p.messageId), 'replay keeps messageIds');
  assertIncreasing(seqs(all), 'public:feed');
  assert.equal(c2.getLastSequence('public:feed', { room: 7 }), published.at(-1).sequence);
  assert.equal(c2.log.duplicates.length, 0);
  // The subscribe frame carried it.
  const sub = c2.rec.out.find((f) => f.type === 'subscribe');
  assert.deepEqual(sub.data, { topic: 'public:feed', params: { room: 7 }, lastSequence: last });
});

test('automatic reconnect after a dropped connection (server up): resubscribes with lastSequence, replay recovered, no gap, no duplicate', T, async (t) => {
  const srv = await server(t);
  const px = await proxy(t, srv.port);
  const c = client(t, px.url, { token: mint('gina'), clientId: 'node-gina' });
  await connected(c);
  await c.subscribe('public:auto');
  await c.subscribe('user:gina');
  const pubs = [];
  const pub = async (topic, type, i) => { const p = await publish(srv, { topic, type, data: { i } }); pubs.push({ ...p, topic, i }); return p; };
  await pub('public:auto', 'data', 1);
  await pub('user:gina', 'notification', 2);
  await until(() => c.log.messages.length === 2, 5000, 'the first two');
  const lastAuto = c.getLastSequence('public:auto');
  const lastUser = c.getLastSequence('user:gina');
  await sleep(100); // the auto-ack of notification 2 reaches the server (else it comes again from the inbox)

  px.refuse = true;
  px.dropAll();
  await until(() => c.state === 'reconnecting', 5000, "state 'reconnecting'");
  assert.equal(c.log.disconnects.length, 1);
  assert.equal(c.log.disconnects[0].willReconnect, true);
  // Published while the client is away but the server is up.
  await pub('public:auto', 'data', 3);
  await pub('user:gina', 'notification', 4);
  await pub('public:auto', 'status', 5);
  await sleep(400); // a few refused attempts
  assert.ok(c.rec.sockets.length >= 2, 'it tried again');
  const resubscribed = until(() => c.log.resubscribes.length === 2 && c.log.resubscribes, 8000, 'two resubscribes');
  px.refuse = false;
  const resubs = await resubscribed;
  assert.equal(c.state, 'connected');
  for (const [ack, { topic }] of resubs) assert.equal(ack.recovered, true, `${topic}: ${JSON.stringify(ack)}`);
  const subFrames = c.rec.out.filter((f) => f.type === 'subscribe').slice(-2);
  assert.deepEqual(subFrames.map((f) => f.data).sort((a, b) => a.topic.localeCompare(b.topic)),
    [{ topic: 'public:auto', lastSequence: lastAuto }, { topic: 'user:gina', lastSequence: lastUser }]);
  await until(() => c.log.messages.length === 5, 5000, 'the replay');
  await pub('public:auto', 'data', 6);
  await until(() => c.log.messages.length === 6, 5000, 'the live message');
  await sleep(200);

  const got = c.log.messages;
  for (const topic of ['public:auto', 'user:gina']) {
    const want = pubs.filter((p) => p.topic === topic);
    const have = byTopic(c, topic);
    assert.deepEqual(have.map((e) => e.data.i), want.map((p) => p.i), topic);
    assert.deepEqual(seqs(have), want.map((p) => p.sequence), `${topic}: sequences`);
    assert.deepEqual(have.map((e) => e.messageId), want.map((p) => p.messageId), `${topic}: messageIds`);
  }
  assert.deepEqual(got.map((e) => e.data.i).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
  // Only an acked-but-unconfirmed notification may come twice (from the inbox); the client drops it.
  assert.deepEqual(c.log.duplicates.filter((e) => e.messageId !== pubs[1].messageId), [],
    `unexpected duplicates: ${JSON.stringify(c.log.duplicates)}`);
  // The replayed notification was acked on the new connection.
  assert.ok(c.rec.out.some((f) => f.type === 'ack' && f.data.messageId === pubs[3].messageId), 'replayed notification acked');
  assert.deepEqual(c.log.connects.length, 2);
});

test('bare topic and topic+params subscribed together: each message reaches the handler once, live and after a reconnect', T, async (t) => {
  const srv = await server(t);
  const px = await proxy(t, srv.port);
  const c = client(t, px.url, { token: mint('mia'), clientId: 'node-mia' });
  await connected(c);
  await c.subscribe('public:mix');
  await c.subscribe('public:mix', { room: 'r1' });
  const pubs = [];
  const pub = async (params, i) => pubs.push(await publish(srv, { topic: 'public:mix', ...(params ? { params } : {}), type: 'data', data: { i } }));
  await pub({ room: 'r1' }, 1);
  await pub(null, 2);
  await pub({ room: 'r2' }, 3);
  await until(() => c.log.messages.length >= 3, 5000, 'three messages');
  await sleep(100);
  px.refuse = true;
  px.dropAll();
  await until(() => c.state === 'reconnecting', 5000, "state 'reconnecting'");
  await pub({ room: 'r1' }, 4);
  await pub(null, 5);
  await pub({ room: 'r2' }, 6);
  px.refuse = false;
  await until(() => c.log.resubscribes.length === 2, 8000, 'two resubscribes');
  for (const [ack] of c.log.resubscribes) assert.equal(ack.recovered, true, JSON.stringify(ack));
  await until(() => c.log.messages.length >= 6, 5000, 'the replay');
  await pub({ room: 'r1' }, 7);
  await until(() => c.log.messages.length >= 7, 5000, 'the live message');
  await sleep(200);
  assert.deepEqual(c.log.messages.map((e) => e.data.i), [1, 2, 3, 4, 5, 6, 7], 'each once, in order');
  assert.deepEqual(seqs(c.log.messages), pubs.map((p) => p.sequence));
  assert.equal(c.getLastSequence('public:mix'), pubs[6].sequence);
  assert.equal(c.getLastSequence('public:mix', { room: 'r1' }), pubs[6].sequence);
  const frames = c.rec.in.filter((f) => f.topic === 'public:mix');
  console.log(`# public:mix: ${frames.length} frames received for 7 messages, ${c.log.duplicates.length} dropped as duplicates`);
});

test('a sendWithAck frame in flight when the connection drops is resent after the reconnect and processed once', T, async (t) => {
  const srv = await server(t);
  const px = await proxy(t, srv.port);
  const watcher = client(t, srv, { token: mint('watcher', 'admin'), clientId: 'node-watcher' });
  await connected(watcher);
  await watcher.subscribe('public:resend');
  const c = client(t, px.url, { token: mint('pub', 'admin'), clientId: 'node-pub' });
  await connected(c);

  px.holdDown = true; // the server gets the frame, the client never sees the ack
  const pending = c.sendWithAck('data', { n: 1 }, { topic: 'public:resend' });
  const id = pending.messageId;
  await until(() => watcher.log.messages.length === 1, 5000, 'the publish processed by the server');
  px.holdDown = false;
  px.dropAll();
  const result = await pending;
  assert.equal(result.messageId, id);
  const sends = c.rec.out.filter((f) => f.messageId === id);
  assert.equal(sends.length, 2, 'sent once on each connection');
  assert.equal(sends[0].type, 'data');
  assert.equal(sends[1].type, 'data');
  assert.deepEqual(sends[0], sends[1], 'resent as it was');
  assert.equal(c.log.connects.length, 2);

  // Fence: a later publish reaches the watcher; the resend must not have been published again.
  const fence = await publish(srv, { topic: 'public:resend', type: 'data', data: { fence: true } });
  await until(() => watcher.log.messages.some((e) => e.messageId === fence.messageId), 5000, 'the fence');
  const delivered = watcher.log.messages.filter((e) => e.data?.n === 1);
  assert.equal(delivered.length, 1, `the resend was processed ${delivered.length} times`);
  // The server answers the repeated id with {messageId, duplicate: true}: that is what the promise gets.
  assert.deepEqual(result, { messageId: id, duplicate: true });
});

test('permission refusals: subscribe to user:<other> rejects with 3001 and is forgotten; publishing as a user rejects with 3001', T, async (t) => {
  const srv = await server(t);
  const c = client(t, srv, { token: mint('hank'), clientId: 'node-hank' });
  await connected(c);
  await assert.rejects(c.subscribe('user:ivy'), (err) => {
    assert.equal(err.code, 3001);
    assert.equal(err.code, HeraldClient.ErrorCodes.PERMISSION_DENIED);
    assert.equal(typeof err.message, 'string');
    return true;
  });
  assert.deepEqual(c.subscriptions(), []);
  await assert.rejects(c.subscribe('x'.repeat(201)), (err) => err.code === 3000);
  await assert.rejects(c.sendWithAck('data', { no: 1 }, { topic: 'public:news' }), (err) => err.code === 3001);
  await assert.rejects(c.sendWithAck('status', { no: 1 }), (err) => err.code === 2000, 'publish without a topic');
  await assert.rejects(c.sendWithAck('bogus', {}), (err) => err.code === 3002);
  // Still connected and usable.
  assert.equal(c.state, 'connected');
  const ack = await c.subscribe('user:hank');
  assert.equal(ack.topic, 'user:hank');
  assert.deepEqual(c.subscriptions().map((s) => s.topic), ['user:hank']);
  assert.deepEqual(c.log.errors, [], 'errors that answer a request are not error events');
  assert.equal(c.log.states.length, 2);
});

test('rate limit: dropped frames surface as error events 2002 naming the frame; sendWithAck rejects with 2002; the connection stays', T, async (t) => {
  const srv = await server(t, ['--json-rate', '2', '--json-burst', '2']);
  const c = client(t, srv, { token: mint('ops', 'admin'), clientId: 'node-ops' });
  await connected(c);
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(c.send('status', { i }, { topic: 'public:rl' }));
  // sent in the same turn as the five: the bucket cannot have refilled, however slow the machine
  const over = assert.rejects(c.sendWithAck('status', { over: true }, { topic: 'public:rl' }), (err) => err.code === 2002);
  await until(() => c.log.errors.length >= 3, 5000, 'three error events');
  await sleep(100);
  assert.equal(c.log.errors.length, 3, JSON.stringify(c.log.errors.map((e) => [e.code, e.message])));
  for (const e of c.log.errors) {
    assert.equal(e.code, 2002);
    assert.equal(e.code, HeraldClient.ErrorCodes.RATE_LIMIT);
  }
  assert.deepEqual(c.log.errors.map((e) => e.details?.messageId), ids.slice(2), 'the dropped frames are named');
  await over;
  assert.equal(c.state, 'connected');
  await sleep(1200); // the bucket refills
  const ok = await c.sendWithAck('status', { later: true }, { topic: 'public:rl' });
  assert.equal(typeof ok.sequence, 'number');
  assert.equal(c.log.errors.length, 3, 'a rejected request is not also an error event');
  assert.equal(c.log.connects.length, 1);
});

test('rate limit at reconnect: a resubscribe refused with 2002 must not make the client forget the subscription', T, async (t) => {
  // On reconnect the client sends every resubscription at once; with a small bucket the server drops
  // the excess with 2002 (naming the frame). The subscription is still wanted: it must survive.
  const srv = await server(t, ['--json-rate', '2', '--json-burst', '2']);
  const px = await proxy(t, srv.port);
  const c = client(t, px.url, { token: mint('rl-user'), clientId: 'node-rl' });
  await connected(c);
  await c.subscribe('public:rl-a');
  await c.subscribe('public:rl-b');
  await sleep(600); // one token back
  await c.subscribe('public:rl-c');
  assert.deepEqual(c.subscriptions().map((x) => x.topic), ['public:rl-a', 'public:rl-b', 'public:rl-c']);

  px.dropAll();
  await until(() => c.log.connects.length === 2, 8000, 'the reconnect');
  await until(() => c.log.resubscribes.length + c.log.errors.length >= 3, 5000, 'answers to the 3 resubscribes');
  const refused = c.log.errors.filter((e) => e.code === 2002);
  assert.equal(c.log.resubscribes.length, 2, 'two resubscribes fit the bucket');
  assert.equal(refused.length, 1, 'the third was dropped by the rate limit');
  // BUG (client): _settle() removes a subscription on any resubscribe error but ACK_TIMEOUT, so a
  // transient 2002 silently ends public:rl-c for good (only an 'error' event tells).
  assert.deepEqual(c.subscriptions().map((x) => x.topic).sort(), ['public:rl-a', 'public:rl-b', 'public:rl-c'],
    'the client forgot a subscription whose resubscribe was rate limited');
  await sleep(1100); // the bucket refills; a correct client retries the resubscribe
  const p = await publish(srv, { topic: 'public:rl-c', type: 'data', data: { after: 'reconnect' } });
  await until(() => c.log.messages.some((e) => e.messageId === p.messageId), 5000, 'a message on public:rl-c after the reconnect');
});

test("replaced: a second connection with the same user and clientId ends the first, which does not reconnect", T, async (t) => {
  const srv = await server(t);
  const token = mint('jill');
  const a = client(t, srv, { token, clientId: 'node-jill' });
  await connected(a);
  await a.subscribe('user:jill');
  const b = client(t, srv, { token, clientId: 'node-jill' });
  await connected(b);
  await until(() => a.state === 'disconnected', 5000, "a: 'disconnected'");
  assert.equal(a.log.disconnects.length, 1);
  assert.equal(a.log.disconnects[0].serverReason, 'replaced');
  assert.equal(a.log.disconnects[0].willReconnect, false);
  assert.equal(a.log.states.at(-1)[1].reason, 'replaced');
  await sleep(500);
  assert.equal(a.rec.sockets.length, 1, 'no reconnect');
  assert.equal(b.state, 'connected');
  const p = await publish(srv, { topic: 'user:jill', type: 'data', data: 1 });
  assert.equal(p.delivered, 0, 'the old subscription went with the old connection');
  // Another clientId of the same user is not a replacement.
  const c = client(t, srv, { token, clientId: 'node-jill-2' });
  await connected(c);
  await sleep(200);
  assert.equal(b.state, 'connected');
});

test('token expiry: disconnect "token expired", then getToken supplies a new token and the client resubscribes', T, async (t) => {
  const srv = await server(t);
  let calls = 0;
  const getToken = () => (++calls === 1 ? mint('kim', 'user', nowS() + 1) : mint('kim'));
  const c = client(t, srv, { getToken, clientId: 'node-kim' });
  await connected(c);
  await c.subscribe('user:kim');
  await until(() => c.log.disconnects.length === 1, 6000, 'the expiry');
  assert.equal(c.log.disconnects[0].serverReason, 'token expired');
  assert.equal(c.log.disconnects[0].code, 1008);
  assert.equal(c.log.disconnects[0].willReconnect, true);
  await until(() => c.log.resubscribes.length === 1, 5000, 'the resubscribe');
  assert.equal(c.state, 'connected');
  assert.equal(calls, 2);
  const p = await publish(srv, { topic: 'user:kim', type: 'data', data: { after: 'expiry' } });
  await until(() => c.log.messages.some((e) => e.messageId === p.messageId), 5000, 'a message on the new connection');

  // Without getToken an expired session is final.
  const d = client(t, srv, { token: mint('lou', 'user', nowS() + 1), clientId: 'node-lou' });
  await connected(d);
  await until(() => d.state === 'failed', 6000, "state 'failed'");
  assert.equal(d.log.disconnects[0]?.serverReason, 'token expired');
  assert.equal(d.log.states.at(-1)[1].error.code, 1001);
});
