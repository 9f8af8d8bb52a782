// clients/js/herald-client.js against the mock JSON-protocol server (lib/mock-json-server.mjs):
// connect and states, subscribe acks and errors, sequences, params routing, auto-ack and redelivery,
// duplicate suppression, reconnect with backoff, resubscribe with lastSequence across a restart,
// heartbeat timeout, maxAttempts, auth/protocol failures, sendWithAck and resends, the offline queue,
// and close() leaving nothing running. Needs no Herald binary (HERALD_BIN is ignored).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startMockServer } from './lib/mock-json-server.mjs';

const require = createRequire(import.meta.url);
const CLIENT_PATH = fileURLToPath(new URL('../../clients/js/herald-client.js', import.meta.url));
const MOCK_URL = new URL('./lib/mock-json-server.mjs', import.meta.url).href;
const HeraldClient = require(CLIENT_PATH);

const FAST = { initialDelay: 20, maxDelay: 100, factor: 2, jitter: 0 };
const T = { timeout: 5000 }; // per test: a hang fails fast

// ---- helpers ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when cond() is truthy (polled every 5 ms); fails after ms. */
async function until(cond, ms = 2000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The arguments of the next `event` of client. */
function next(client, event, ms = 2000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { client.off(event, h); reject(new Error(`timed out waiting for ${event}`)); }, ms);
    const h = (...args) => { clearTimeout(t); client.off(event, h); resolve(args); };
    client.on(event, h);
  });
}

/** A mock and a client (not connected yet) that are both shut down after the test. */
async function setup(t, mockOpts = {}, clientOpts = {}) {
  const mock = await startMockServer({ port: 0, ...mockOpts });
  const client = new HeraldClient({
    url: mock.url, token: 'alice', clientId: 'c1', autoConnect: false, reconnect: FAST,
    heartbeatInterval: 1000, heartbeatTimeout: 500, ...clientOpts,
  });
  const errors = [];
  client.on('error', (e) => errors.push(e));
  t.after(async () => { client.close(); await mock.close(); });
  return { mock, client, errors };
}

async function connected(t, mockOpts, clientOpts) {
  const s = await setup(t, mockOpts, clientOpts);
  const ready = next(s.client, 'connect');
  s.client.connect();
  await ready;
  return s;
}

/** Collects (data, envelope) of every `type` message. */
function collect(client, type = 'data') {
  const got = [];
  client.on(type, (data, env) => got.push(env));
  return got;
}

// ---- tests ----

test('connects: state events, connect data, token/clientId/protocol in the query', T, async (t) => {
  const { mock, client } = await setup(t);
  const states = [];
  client.on('state', (s, info) => states.push([s, info.previous]));
  const ready = next(client, 'connect');
  assert.equal(client.connect(), client);
  const [data, env] = await ready;
  assert.equal(data.clientId, 'c1');
  assert.equal(typeof data.serverTime, 'number');
  assert.equal(env.type, 'connect');
  assert.deepEqual(states, [['connecting', 'disconnected'], ['connected', 'connecting']]);
  assert.equal(client.state, 'connected');
  assert.equal(client.connected, true);
  const { token, clientId, protocol } = mock.attempts[0].query;
  assert.deepEqual({ token, clientId, protocol }, { token: 'alice', clientId: 'c1', protocol: '1.0' });
});

test('autoConnect (default) starts after the constructor returns, so early listeners see every state', T, async (t) => {
  const mock = await startMockServer();
  const client = new HeraldClient({ url: mock.url, token: 'bob' });
  t.after(async () => { client.close(); await mock.close(); });
  const states = [];
  client.on('state', (s) => states.push(s));
  const [data] = await next(client, 'connect');
  assert.deepEqual(states, ['connecting', 'connected']);
  assert.match(data.clientId, /^js-/); // generated when not given
});

test('subscribe resolves with the ack; publishes arrive in order with topic and sequence', T, async (t) => {
  const { mock, client } = await connected(t);
  const ack = await client.subscribe('news');
  assert.equal(ack.topic, 'news');
  assert.equal(ack.recovered, undefined); // only with lastSequence
  assert.equal(ack.sequence, 0);
  const [frame] = mock.framesOf('subscribe');
  assert.equal(ack.messageId, frame.messageId);
  assert.deepEqual(frame.data, { topic: 'news' });
  assert.equal(typeof frame.timestamp, 'number');

  const got = collect(client);
  mock.publish('news', undefined, 'data', { n: 1 });
  mock.publish('elsewhere', undefined, 'data', { n: 99 });
  mock.publish('news', undefined, 'data', { n: 2 });
  await until(() => got.length === 2, 2000, 'two messages');
  await sleep(20);
  assert.deepEqual(got.map((e) => [e.data.n, e.topic, e.sequence]), [[1, 'news', 1], [2, 'news', 2]]);
  assert.equal(client.getLastSequence('news'), 2);
  assert.deepEqual(client.subscriptions(), [{ topic: 'news', params: undefined, lastSequence: 2 }]);
});

test('params: exact-match routing, one copy when subscribed to topic and topic+params, canonical keys', T, async (t) => {
  const { mock, client } = await connected(t);
  const got = collect(client);
  await client.subscribe('orders', { id: 1, shop: 'a' });
  mock.publish('orders', { id: 2, shop: 'a' }, 'data', { n: 1 });
  mock.publish('orders', { id: '1', shop: 'a' }, 'data', { n: 1.5 }); // values are typed: "1" is not 1
  mock.publish('orders', { shop: 'a', id: 1 }, 'data', { n: 2 }); // same params, other key order
  await until(() => got.length === 1);
  await client.subscribe('orders');
  mock.publish('orders', { id: 1, shop: 'a' }, 'data', { n: 3 });
  mock.publish('orders', undefined, 'data', { n: 4 });
  await until(() => got.length === 3);
  await sleep(20);
  assert.deepEqual(got.map((e) => e.data.n), [2, 3, 4]);
  assert.equal(client.getLastSequence('orders', { shop: 'a', id: 1 }), 4);
  assert.equal(client.getLastSequence('orders', { id: '1', shop: 'a' }), undefined);
  assert.equal(client.getLastSequence('orders'), 5);
  await assert.rejects(client.subscribe('orders', { nested: { x: 1 } }), TypeError);
});

test('notifications are acked automatically and not redelivered', T, async (t) => {
  const { mock, client } = await connected(t, { ackTimeout: 60 });
  const got = collect(client, 'notification');
  await client.subscribe('alerts');
  const msg = mock.publish('alerts', undefined, 'notification', { title: 'hi' });
  await until(() => got.length === 1);
  await until(() => mock.framesOf('ack').some((f) => f.data.messageId === msg.messageId), 1000, 'the ack');
  await sleep(150); // past two ack timeouts
  assert.equal(mock.deliveries.filter((d) => d.envelope.messageId === msg.messageId).length, 1);
  assert.equal(mock.inbox.get('alice')?.size ?? 0, 0);
  assert.equal(got.length, 1);
});

test('unacked notifications are redelivered; the client drops the copies; a manual ack stops them', T, async (t) => {
  const { mock, client } = await connected(t, { ackTimeout: 40, maxRetries: 20 }, { autoAck: false });
  const got = collect(client, 'notification');
  const dups = [];
  client.on('duplicate', (env) => dups.push(env));
  await client.subscribe('alerts');
  const msg = mock.publish('alerts', undefined, 'notification', { title: 'hi' });
  const count = () => mock.deliveries.filter((d) => d.envelope.messageId === msg.messageId).length;
  await until(() => dups.length >= 2, 2000, 'redeliveries');
  assert.ok(count() >= 3);
  assert.equal(got.length, 1);
  assert.ok(dups.every((e) => e.messageId === msg.messageId && e.sequence === msg.sequence));
  assert.equal(client.ack(msg.messageId), true);
  await until(() => mock.framesOf('ack').some((f) => f.data.messageId === msg.messageId), 2000, 'the ack');
  const after = count();
  await sleep(120);
  assert.equal(count(), after, 'no redelivery after the ack');
  assert.equal(got.length, 1);
});

test('duplicate messageIds reach handlers once; every copy of a notification is acked', T, async (t) => {
  const { mock, client } = await connected(t, { ackTimeout: 5000 });
  const data = collect(client, 'data');
  const notes = collect(client, 'notification');
  await client.subscribe('dups');
  mock.publish('dups', undefined, 'data', { a: 1 }, { duplicate: true });
  const n = mock.publish('dups', undefined, 'notification', { b: 1 }, { duplicate: true });
  mock.sendTo('c1', { type: 'status', data: { s: 1 }, messageId: 'fixed-1' });
  mock.sendTo('c1', { type: 'status', data: { s: 1 }, messageId: 'fixed-1' });
  const statuses = collect(client, 'status');
  await until(() => mock.framesOf('ack').filter((f) => f.data.messageId === n.messageId).length === 2, 1000, 'two acks');
  await sleep(30);
  assert.equal(data.length, 1);
  assert.equal(notes.length, 1);
  assert.equal(statuses.length, 1);
});

test('duplicate memory is bounded: LRU size and TTL', T, async (t) => {
  const { mock, client } = await connected(t, {}, { dedupeSize: 2, dedupeTtl: 100 });
  const got = collect(client, 'status');
  const send = (id) => mock.sendTo('c1', { type: 'status', data: { id }, messageId: id });
  for (const id of ['a', 'b', 'c', 'a', 'c']) send(id); // a evicted by c, so a is new again; c is a copy
  await until(() => got.length === 4);
  await sleep(150); // c expires
  send('c');
  send('a'); // a too has expired (seen 150 ms ago)
  await until(() => got.length === 6);
  await sleep(20);
  assert.deepEqual(got.map((e) => e.messageId), ['a', 'b', 'c', 'a', 'c', 'a']);
});

test('reconnects with backoff after the connection is severed; the subscription follows', T, async (t) => {
  const { mock, client } = await connected(t);
  const got = collect(client);
  await client.subscribe('live');
  mock.publish('live', undefined, 'data', { n: 1 });
  await until(() => got.length === 1);
  const states = [];
  client.on('state', (s) => states.push(s));
  const lost = next(client, 'disconnect');
  const back = next(client, 'reconnect');
  const t0 = Date.now();
  mock.dropAll();
  const [info] = await lost;
  assert.equal(info.code, 1006);
  assert.equal(info.willReconnect, true);
  const [re] = await back;
  assert.ok(Date.now() - t0 >= FAST.initialDelay - 5, 'waited the initial delay');
  assert.equal(re.attempts, 1);
  assert.deepEqual(states, ['reconnecting', 'connected']);
  await until(() => mock.framesOf('subscribe').length === 2, 1000, 'the resubscribe');
  assert.deepEqual(mock.framesOf('subscribe')[1].data, { topic: 'live', lastSequence: 1 });
  mock.publish('live', undefined, 'data', { n: 2 });
  await until(() => got.length === 2);
  assert.deepEqual(got.map((e) => e.sequence), [1, 2]);
});

test('backoff grows by factor up to maxDelay; after maxAttempts the state is failed', T, async (t) => {
  const { mock, client, errors } = await setup(t, {}, {
    reconnect: { initialDelay: 30, factor: 2, maxDelay: 100, jitter: 0, maxAttempts: 4 },
  });
  mock.accepting = false; // error 1000, close 1013: retryable
  const states = [];
  const delays = [];
  client.on('state', (s) => states.push(s));
  client.on('reconnect_attempt', (a) => delays.push(a.delay));
  const failed = next(client, 'reconnect_failed', 3000);
  client.connect();
  const [info] = await failed;
  assert.equal(info.attempts, 4);
  assert.equal(info.error.code, 'RECONNECT_FAILED');
  assert.deepEqual(delays, [30, 60, 100, 100]);
  assert.deepEqual(states, ['connecting', 'reconnecting', 'failed']);
  assert.equal(mock.attempts.length, 5); // the first try and 4 retries
  const gaps = mock.attempts.slice(1).map((a, i) => a.time - mock.attempts[i].time);
  gaps.forEach((g, i) => assert.ok(g >= delays[i] - 5, `gap ${i} ${g} ms >= ${delays[i]} ms`));
  assert.equal(errors.filter((e) => e.code === 1000).length, 5);
  await sleep(150);
  assert.equal(mock.attempts.length, 5, 'no attempt after failed');
});

test('backoff jitter stays within +-jitter of the exponential delay', T, () => {
  const o = { initialDelay: 100, factor: 2, maxDelay: 1000, jitter: 0.3 };
  assert.equal(HeraldClient.backoffDelay(0, o, 0), 70);
  assert.equal(HeraldClient.backoffDelay(0, o, 1), 130);
  assert.equal(HeraldClient.backoffDelay(2, o, 0.5), 400);
  assert.equal(HeraldClient.backoffDelay(10, o, 0.5), 1000);
  for (let i = 0; i < 200; i++) {
    const d = HeraldClient.backoffDelay(3, o);
    assert.ok(d >= 560 && d <= 1040, `${d}`);
  }
});

test('server restart: resubscribe with lastSequence, replay without gap or duplicate, then live', T, async (t) => {
  const base = Date.now() * 1000; // sequences as large as Herald's
  const { mock, client } = await connected(t, { sequenceBase: base });
  const got = collect(client);
  await client.subscribe('feed');
  for (let n = 1; n <= 3; n++) mock.publish('feed', undefined, 'data', { n });
  await until(() => got.length === 3);
  const lost = next(client, 'disconnect');
  const resub = next(client, 'resubscribe');
  const port = mock.port;
  await mock.stop(); // graceful: disconnect {reason: 'shutdown'}, close 1001
  const [info] = await lost;
  assert.equal(info.serverReason, 'shutdown');
  assert.equal(info.willReconnect, true);
  mock.publish('feed', undefined, 'data', { n: 4 }); // published while the client is away
  mock.publish('feed', undefined, 'data', { n: 5 });
  await sleep(150); // a few refused attempts
  assert.equal(client.state, 'reconnecting');
  await mock.start();
  assert.equal(mock.port, port);
  const [ack, sub] = await resub;
  assert.deepEqual(sub, { topic: 'feed', params: undefined });
  assert.equal(ack.recovered, true);
  assert.equal(ack.sequence, base + 5);
  assert.equal(mock.framesOf('subscribe').at(-1).data.lastSequence, base + 3);
  await until(() => got.length === 5, 2000, 'the replay'); // follows the ack
  mock.publish('feed', undefined, 'data', { n: 6 });
  await until(() => got.length === 6);
  await sleep(20);
  assert.deepEqual(got.map((e) => e.data.n), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(got.map((e) => e.sequence - base), [1, 2, 3, 4, 5, 6]);
  const sent = mock.deliveries.filter((d) => d.envelope.topic === 'feed').map((d) => d.envelope.sequence - base);
  assert.deepEqual(sent, [1, 2, 3, 4, 5, 6], 'the server sent each message once');
});

test('recovered: false when history no longer reaches back; what it holds is replayed', T, async (t) => {
  const { mock, client } = await connected(t, { historySize: 2 }, { reconnect: { ...FAST, initialDelay: 80 } });
  const got = collect(client);
  await client.subscribe('short');
  mock.publish('short', undefined, 'data', { n: 1 });
  await until(() => got.length === 1);
  const resub = next(client, 'resubscribe');
  mock.dropAll();
  for (let n = 2; n <= 5; n++) mock.publish('short', undefined, 'data', { n }); // history keeps 4, 5
  const [ack] = await resub;
  assert.equal(ack.recovered, false);
  await until(() => got.length === 3, 2000, 'the replay');
  assert.deepEqual(got.map((e) => e.sequence), [1, 4, 5]);
  assert.equal(client.getLastSequence('short'), 5);
});

test('a fresh subscription starts from the ack sequence: nothing published while away is lost', T, async (t) => {
  const { mock, client } = await connected(t, {}, { reconnect: { ...FAST, initialDelay: 60 } });
  for (let n = 1; n <= 5; n++) mock.publish('old', undefined, 'data', { n }); // before subscribing
  const got = collect(client);
  const ack = await client.subscribe('old');
  assert.equal(ack.sequence, 5);
  assert.equal(client.getLastSequence('old'), 5);
  const resub = next(client, 'resubscribe');
  mock.dropAll();
  mock.publish('old', undefined, 'data', { n: 6 }); // while away
  const [rack] = await resub;
  assert.equal(rack.recovered, true);
  assert.equal(mock.framesOf('subscribe').at(-1).data.lastSequence, 5);
  await until(() => got.length === 1, 2000, 'the replay');
  await sleep(20);
  assert.deepEqual(got.map((e) => e.data.n), [6]);
});

test('a replay cut short by a lost connection resumes where it stopped (the ack comes first)', T, async (t) => {
  const { mock, client } = await connected(t, { replayInterval: 30 });
  const got = collect(client);
  await client.subscribe('long');
  mock.publish('long', undefined, 'data', { n: 1 });
  await until(() => got.length === 1);
  const resub = next(client, 'resubscribe');
  mock.dropAll();
  for (let n = 2; n <= 6; n++) mock.publish('long', undefined, 'data', { n }); // while away
  const [ack] = await resub;
  assert.equal(ack.sequence, 6);
  await until(() => got.length === 2, 2000, 'the first replayed message'); // 3..6 still to come
  const again = next(client, 'resubscribe');
  mock.dropAll();
  await again;
  assert.equal(mock.framesOf('subscribe').at(-1).data.lastSequence, 2, 'resumes after what arrived');
  await until(() => got.length === 6, 2000, 'the rest of the replay');
  await sleep(50);
  assert.deepEqual(got.map((e) => e.data.n), [1, 2, 3, 4, 5, 6]);
});

test('token expired: with getToken the client reconnects with a new token; without it, failed', T, async (t) => {
  let n = 0;
  const a = await connected(t, {}, { token: undefined, getToken: () => `alice#${++n}` });
  const back = next(a.client, 'reconnect');
  a.mock.kick('c1', 'token expired'); // disconnect {reason}, close 1008
  await back;
  assert.deepEqual(a.mock.attempts.map((x) => x.query.token), ['alice#1', 'alice#2']);

  const b = await connected(t, {}, { clientId: 'c2' });
  const lost = next(b.client, 'disconnect');
  b.mock.kick('c2', 'token expired');
  const [info] = await lost;
  assert.equal(info.serverReason, 'token expired');
  assert.equal(info.willReconnect, false);
  await until(() => b.client.state === 'failed');
  await sleep(80);
  assert.equal(b.mock.attempts.length, 1);
});

test('heartbeats: answered ones keep the connection, a missing answer makes the client reconnect', T, async (t) => {
  const { mock, client } = await connected(t, {}, { heartbeatInterval: 30, heartbeatTimeout: 60 });
  await sleep(150);
  const beats = mock.framesOf('heartbeat');
  assert.ok(beats.length >= 3, `${beats.length} heartbeats`);
  assert.equal(typeof beats[0].messageId, 'string');
  assert.equal(typeof beats[0].timestamp, 'number');
  assert.equal(mock.attempts.length, 1);
  const lost = next(client, 'disconnect');
  const back = next(client, 'reconnect');
  mock.answerHeartbeats = false;
  const [info] = await lost;
  assert.equal(info.error.code, 'HEARTBEAT_TIMEOUT');
  assert.equal(info.willReconnect, true);
  mock.answerHeartbeats = true;
  await back;
  assert.equal(client.state, 'connected');
  assert.equal(mock.attempts.length, 2);
});

test('auth failure (1001, close 1008): failed at once, no retry', T, async (t) => {
  const { mock, client, errors } = await setup(t, {}, { token: 'invalid-token' });
  let gaveUp = false;
  client.on('reconnect_failed', () => { gaveUp = true; });
  const failed = until(() => client.state === 'failed');
  client.connect();
  await failed;
  assert.equal(errors[0].code, 1001);
  await sleep(100);
  assert.equal(mock.attempts.length, 1);
  assert.equal(gaveUp, false);
});

test('protocol mismatch (1002): failed at once, no retry', T, async (t) => {
  const { mock, client, errors } = await setup(t, {}, { protocol: '9.9' });
  const failed = new Promise((resolve) => client.on('state', (s, info) => { if (s === 'failed') resolve(info); }));
  client.connect();
  const info = await failed;
  assert.equal(info.error.code, 1002);
  assert.equal(errors[0].code, 1002);
  assert.equal(mock.attempts[0].query.protocol, '9.9');
  await sleep(100);
  assert.equal(mock.attempts.length, 1);
});

test('getToken is asked for a fresh token on every attempt', T, async (t) => {
  let n = 0;
  const { mock, client } = await connected(t, {}, { token: undefined, getToken: async () => `alice#${++n}` });
  const back = next(client, 'reconnect');
  mock.dropAll();
  await back;
  assert.deepEqual(mock.attempts.map((a) => a.query.token), ['alice#1', 'alice#2']);
});

test('sendWithAck resolves with the ack; a frame in flight at a drop is resent and processed once', T, async (t) => {
  const { mock, client } = await connected(t);
  const got = collect(client);
  await client.subscribe('room');
  const ack = await client.sendWithAck('data', { x: 1 }, { topic: 'room' }); // a client publish
  assert.equal(mock.received.length, 1);
  assert.equal(ack.messageId, mock.received[0].frame.messageId);
  assert.equal(ack.delivered, 1);
  assert.equal(typeof ack.publishedId, 'string');
  assert.deepEqual(mock.received[0].frame.data, { x: 1 });
  assert.equal(mock.received[0].frame.topic, 'room');
  await until(() => got.length === 1);
  assert.equal(got[0].sequence, ack.sequence);
  await assert.rejects(client.sendWithAck('data', {}, { topic: 'private:x' }), (e) => e.code === 3001);
  await assert.rejects(client.sendWithAck('data', {}), (e) => e.code === 2000); // no topic

  mock.once('message', () => mock.dropAll()); // processed, but the ack never leaves
  const p = client.sendWithAck('data', { y: 2 }, { topic: 'room' });
  assert.equal(typeof p.messageId, 'string');
  const ack2 = await p;
  assert.equal(ack2.messageId, p.messageId);
  assert.equal(ack2.duplicate, true);
  assert.equal(mock.framesOf('data').filter((f) => f.messageId === p.messageId).length, 2, 'sent twice');
  assert.equal(mock.received.filter((r) => r.frame.messageId === p.messageId).length, 1, 'processed once');

  const id = client.send('status', { plain: true }, { topic: 'room' });
  assert.equal(typeof id, 'string');
  await until(() => mock.received.some((r) => r.frame.messageId === id));
  await assert.rejects(client.sendWithAck('connect', {}), (e) => e.code === 3002);
});

test('sends while offline are queued, flushed in order on connect; overflow drops the oldest', T, async (t) => {
  const { mock, client, errors } = await setup(t, {}, { queueSize: 3 });
  const first = client.sendWithAck('data', { n: 1 }, { topic: 'q' });
  for (let n = 2; n <= 5; n++) client.send('data', { n }, { topic: 'q' });
  await assert.rejects(first, (e) => e.code === 'QUEUE_OVERFLOW');
  assert.deepEqual(errors.map((e) => e.code), ['QUEUE_OVERFLOW', 'QUEUE_OVERFLOW']);
  client.connect();
  await until(() => mock.received.length === 3);
  await sleep(20);
  assert.deepEqual(mock.received.map((r) => r.frame.data.n), [3, 4, 5]);
});

test('subscribe refused: 3001 permission denied, 3000 unknown topic; the subscription is forgotten', T, async (t) => {
  const { client } = await connected(t);
  await assert.rejects(client.subscribe('private:payroll'), (e) => e.code === 3001 && e instanceof Error);
  await assert.rejects(client.subscribe('unknown:x', { a: 1 }), (e) => e.code === 3000);
  assert.deepEqual(client.subscriptions(), []);
});

test('subscribe while offline resolves on connection; unsubscribe stops delivery', T, async (t) => {
  const { mock, client } = await setup(t);
  const got = collect(client);
  const subscribed = client.subscribe('later');
  client.connect();
  const ack = await subscribed;
  assert.equal(ack.topic, 'later');
  mock.publish('later', undefined, 'data', { n: 1 });
  await until(() => got.length === 1);
  const uack = await client.unsubscribe('later');
  assert.equal(uack.topic, 'later');
  mock.publish('later', undefined, 'data', { n: 2 });
  await sleep(50);
  assert.equal(got.length, 1);
  assert.deepEqual(client.subscriptions(), []);
});

test('server kick: disconnected, no reconnect', T, async (t) => {
  const { mock, client } = await connected(t);
  const lost = next(client, 'disconnect');
  mock.kick('c1', 'kicked');
  const [info] = await lost;
  assert.equal(info.serverReason, 'kicked');
  assert.equal(info.willReconnect, false);
  await until(() => client.state === 'disconnected');
  await sleep(100);
  assert.equal(mock.attempts.length, 1);
});

test('events: off() removes, once() fires once, handlers get `this` = client, methods work detached', T, async (t) => {
  const { mock, client, errors } = await connected(t);
  const calls = [];
  const h = function (d) { calls.push(['h', d.n, this === client]); };
  const o = (d) => calls.push(['once', d.n]);
  client.on('status', h).once('status', o);
  const { subscribe } = client; // detached
  await subscribe('ev');
  mock.publish('ev', undefined, 'status', { n: 1 });
  await until(() => calls.length === 2);
  client.off('status', h);
  mock.publish('ev', undefined, 'status', { n: 2 });
  await sleep(40);
  assert.deepEqual(calls, [['h', 1, true], ['once', 1]]);
  // A frame that is not an envelope is reported and the connection stays.
  mock.connections[0].ws.send('not json');
  await until(() => errors.length === 1);
  assert.equal(errors[0].code, 'INVALID_FRAME');
  assert.equal(client.state, 'connected');
  const all = mock.frames.map((f) => f.frame.messageId);
  assert.equal(new Set(all).size, all.length, 'messageIds are unique');
  assert.ok(all.every((id) => id.startsWith('c1-')));
});

test('close(): disconnected, pending requests rejected, no reconnect', T, async (t) => {
  const { mock, client } = await connected(t);
  await client.subscribe('x');
  const closedOnServer = new Promise((r) => mock.connections[0].ws.once('close', (code) => r(code)));
  const states = [];
  client.on('state', (s) => states.push(s));
  const lost = next(client, 'disconnect');
  const { close } = client;
  close();
  const [info] = await lost;
  assert.equal(info.willReconnect, false);
  assert.deepEqual(states, ['disconnected']);
  assert.equal(await closedOnServer, 1000);
  const queued = client.sendWithAck('data', {});
  client.close();
  await assert.rejects(queued, (e) => e.code === 'CLOSED');
  await sleep(100);
  assert.equal(mock.attempts.length, 1);
  // connect() again resumes with the kept subscription
  const back = next(client, 'connect');
  client.connect();
  await back;
  await until(() => mock.framesOf('subscribe').length === 2);
});

test('close() leaves no timer or socket behind: a Node process exits right after', T, async () => {
  const script = `
    import { createRequire } from 'node:module';
    import { startMockServer } from ${JSON.stringify(MOCK_URL)};
    const HeraldClient = createRequire(import.meta.url)(${JSON.stringify(CLIENT_PATH)});
    const mock = await startMockServer();
    const client = new HeraldClient({ url: mock.url, token: 'zoe', heartbeatInterval: 50, reconnect: { initialDelay: 10 } });
    await new Promise((r) => client.on('connect', r));
    await client.subscribe('t');
    client.send('data', { queued: false }, { topic: 't' });
    client.sendWithAck('data', {}, { topic: 't', timeout: 60000 }).catch(() => {});
    client.close();
    // A client waiting out a long reconnect delay must not keep the process either.
    const waiting = new HeraldClient({ url: mock.url, token: 'zoe',
      reconnect: { initialDelay: 20000, jitter: 0 } });
    await new Promise((r) => waiting.on('connect', r));
    mock.dropAll();
    await new Promise((r) => waiting.on('state', (s) => s === 'reconnecting' && r()));
    waiting.close();
    await mock.close();
    console.log('done');
  `;
  const started = Date.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  const code = await new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.on('exit', (c) => { clearTimeout(kill); resolve(c); });
  });
  assert.equal(code, 0, out);
  assert.match(out, /done/);
  assert.ok(Date.now() - started < 3000, `exited after ${Date.now() - started} ms`);
});

test('loads as CommonJS, as an ESM default import, and as a browser classic script', T, async () => {
  const esm = (await import(pathToFileURL(CLIENT_PATH).href)).default;
  assert.equal(esm, HeraldClient);
  const vm = await import('node:vm');
  const { readFileSync } = await import('node:fs');
  // A context without `module`/`require`, as in a browser where `globalThis` is `window`.
  const ctx = vm.createContext({ URL, setTimeout, clearTimeout, setInterval, clearInterval });
  vm.runInContext(readFileSync(CLIENT_PATH, 'utf8'), ctx);
  assert.equal(typeof ctx.HeraldClient, 'function');
  assert.equal(ctx.HeraldClient.ErrorCodes.PERMISSION_DENIED, 3001);
  assert.throws(() => new ctx.HeraldClient({}), { name: 'TypeError' });
});
