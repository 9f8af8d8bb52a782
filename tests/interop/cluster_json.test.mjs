// The Herald JSON protocol across the nodes of a cluster (issue 9), with `ws` clients on three
// Herald nodes sharing one Redis (HERALD_TEST_REDIS_URL; scripts/test.sh starts a redis-server and
// sets it) under a --redis-prefix of this run. Contract tested (docs/cluster-json.md):
//   - publishes from every node at once (POST /api/v1/publish and JSON clients) reach the
//     subscribers of every node, each with a sequence, all in one gap-free order;
//   - params: a publish with params reaches the subscribers of the topic alone and those with
//     exactly those params, one without params only the topic alone, on every node, and a replay
//     is filtered the same way;
//   - lastSequence replay works on a node that never saw the messages, and after every Herald
//     node restarted (history and sequences live in Redis);
//   - Redis down (a private redis-server of this test, stopped with SHUTDOWN SAVE): a publish is
//     delivered on its node only, without a sequence (REST answer sequence 0), a subscribe is
//     acknowledged without one; once Redis is back, sequences go on where they stopped.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';
import { freePort, sleep } from './lib/wait.mjs';

const REDIS = process.env.HERALD_TEST_REDIS_URL;
const SECRET = 'cluster-json-secret-0123456789abcdef';
const API_KEY = 'cluster-json-api-key';
const T = { timeout: 30000 };
const WAIT = 5000;

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function adminToken(sub = 'admin') {
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, role: 'admin', iat: now, exp: now + 3600 })}`;
  return `${signing}.${crypto.createHmac('sha256', SECRET).update(signing).digest('base64url')}`;
}

/** A JSON-protocol client: every frame queued in arrival order. */
class JClient {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    this.n = 0;
    ws.on('message', (d) => {
      this.frames.push(JSON.parse(d.toString()));
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((r) => ws.once('close', r));
  }

  static async open(srv) {
    const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?token=${adminToken()}&protocol=1.0`), { perMessageDeflate: false });
    const c = new JClient(ws);
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const hello = await c.next((f) => f.type === 'connect', 'connect');
    assert.equal(hello.type, 'connect');
    return c;
  }

  /** Waits for the first frame matching pred (left in the queue). */
  async next(pred, what, ms = WAIT) {
    const end = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(this.frames.slice(-5))}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }

  send(type, data, extra = {}) {
    const messageId = `c${++this.n}-${crypto.randomBytes(3).toString('hex')}`;
    this.ws.send(JSON.stringify({ type, data, timestamp: Date.now(), messageId, ...extra }));
    return messageId;
  }

  reply(id) {
    return this.next((f) => (f.type === 'ack' || f.type === 'error') && (f.data?.messageId === id || f.data?.details?.messageId === id), `the answer to ${id}`);
  }

  async subscribe(topic, opts = {}) {
    const r = await this.reply(this.send('subscribe', { topic, ...opts }));
    assert.equal(r.type, 'ack', `subscribe ${topic}: ${JSON.stringify(r)}`);
    return r.data;
  }

  /** Messages of topic received so far (business frames carrying `topic`). */
  of(topic) {
    return this.frames.filter((f) => f.topic === topic && f.type !== 'ack' && f.type !== 'error');
  }

  async count(topic, n, ms = WAIT) {
    await this.next(() => this.of(topic).length >= n, `${n} messages of ${topic}`, ms);
    return this.of(topic);
  }

  async close() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    const t = setTimeout(() => this.ws.terminate(), 2000);
    await this.closed;
    clearTimeout(t);
  }
}

async function restPublish(srv, body) {
  const res = await fetch(srv.url('/api/v1/publish'), {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `publish: ${res.status} ${await res.clone().text()}`);
  return res.json();
}

async function healthOf(srv) { return (await fetch(srv.url('/health'))).json(); }

async function waitFor(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Asserts frames carry consecutive sequences. */
function assertGapFree(frames, what) {
  for (let i = 1; i < frames.length; i++)
    assert.equal(frames[i].sequence, frames[i - 1].sequence + 1, `${what}: ${frames[i - 1].sequence} then ${frames[i].sequence}`);
}

describe('JSON protocol across Herald nodes (Redis)', { skip: !REDIS && 'HERALD_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server and sets it)' }, () => {
  const prefix = `herald-json-${crypto.randomBytes(4).toString('hex')}`;
  const args = ['--redis-url', REDIS, '--redis-prefix', prefix, '--jwt-secret', SECRET, '--api-key', API_KEY];
  let nodes = [];
  const clients = [];

  async function client(srv) {
    const c = await JClient.open(srv);
    clients.push(c);
    return c;
  }

  async function startAll() {
    nodes = await Promise.all([0, 1, 2].map(() => startHerald(args)));
    await waitFor('3 nodes in every /health', async () => {
      const hs = await Promise.all(nodes.map(healthOf));
      return hs.every((h) => h.cluster?.status === 'ok' && h.cluster.nodes === 3);
    });
  }

  async function stopAll() {
    for (const c of clients.splice(0)) await c.close();
    const results = await Promise.all(nodes.map((n) => n.stop()));
    for (const r of results) assert.deepEqual(r, { code: 0, signal: null });
  }

  before(startAll);
  after(stopAll);

  test('publishes from every node at once reach every node in one gap-free order', T, async () => {
    const topic = 'orders';
    const subs = [];
    for (const srv of nodes) for (let i = 0; i < 2; i++) subs.push(await client(srv));
    const acks = await Promise.all(subs.map((c) => c.subscribe(topic)));
    const publishers = await Promise.all(nodes.map((srv) => client(srv)));
    const PER = 8;
    const rest = [], viaWs = [];
    for (let i = 0; i < PER; i++) {
      nodes.forEach((srv, n) => rest.push(restPublish(srv, { topic, type: 'data', data: { from: `rest-${n}`, i } })));
      publishers.forEach((c, n) => viaWs.push(c.reply(c.send('data', { from: `ws-${n}`, i }, { topic }))));
    }
    const restAnswers = await Promise.all(rest);
    const wsAnswers = await Promise.all(viaWs);
    const total = PER * nodes.length * 2;
    const seqs = [...restAnswers.map((a) => a.sequence), ...wsAnswers.map((a) => { assert.equal(a.type, 'ack'); return a.data.sequence; })];
    assert.equal(new Set(seqs).size, total, 'every publish got its own sequence');
    const base = Math.min(...acks.map((a) => a.sequence));
    assert.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => base + 1 + i),
      'the sequences given are the next ones of the topic, none skipped');
    const orders = [];
    for (const c of subs) {
      const got = await c.count(topic, total);
      assert.equal(got.length, total);
      assertGapFree(got, 'a subscriber');
      assert.equal(got[0].sequence, base + 1);
      orders.push(got.map((f) => f.messageId).join(','));
    }
    assert.equal(new Set(orders).size, 1, 'every subscriber saw the same order');
    const ids = new Set([...restAnswers.map((a) => a.messageId), ...wsAnswers.map((a) => a.data.publishedId)]);
    assert.deepEqual(new Set(subs[0].of(topic).map((f) => f.messageId)), ids, 'the message ids answered are the ones delivered');
    const first = subs[5].of(topic).find((f) => f.data.from === 'rest-0' && f.data.i === 0);
    assert.equal(first.type, 'data');
  });

  test('params: the topic alone and exactly those params, on any node; replay filtered the same way', T, async () => {
    const topic = 'rooms';
    const bare = await client(nodes[0]);
    const red = await client(nodes[1]);
    const blue = await client(nodes[2]);
    const a0 = await bare.subscribe(topic);
    await red.subscribe(topic, { params: { color: 'red' } });
    await blue.subscribe(topic, { params: { color: 'blue' } });
    await restPublish(nodes[0], { topic, params: { color: 'red' }, type: 'status', data: 'r1' });
    await restPublish(nodes[1], { topic, type: 'status', data: 'all1' });
    await restPublish(nodes[2], { topic, params: { color: 'blue' }, type: 'status', data: 'b1' });
    const fence = await restPublish(nodes[0], { topic, type: 'status', data: 'fence' });
    assert.deepEqual((await bare.count(topic, 4)).map((f) => f.data), ['r1', 'all1', 'b1', 'fence']);
    await waitFor('the fence everywhere', () => red.of(topic).length >= 1 && blue.of(topic).length >= 1);
    assert.deepEqual(red.of(topic).map((f) => [f.data, f.params]), [['r1', { color: 'red' }]]);
    assert.deepEqual(blue.of(topic).map((f) => [f.data, f.params]), [['b1', { color: 'blue' }]]);
    const late = await client(nodes[2]);
    const ack = await late.subscribe(topic, { params: { color: 'red' }, lastSequence: a0.sequence });
    assert.equal(ack.recovered, true);
    assert.equal(ack.sequence, fence.sequence);
    await late.count(topic, 1);
    const check = await client(nodes[2]); // a fence: the late client got no more than r1
    await check.subscribe(topic, { lastSequence: a0.sequence });
    assert.deepEqual((await check.count(topic, 4)).map((f) => f.data), ['r1', 'all1', 'b1', 'fence']);
    assert.deepEqual(late.of(topic).map((f) => f.data), ['r1']);
  });

  test('lastSequence replay on a node that never saw the messages, then after every node restarted', T, async () => {
    const topic = 'replay';
    const first = await client(nodes[0]);
    const { sequence: start } = await first.subscribe(topic);
    const published = [];
    for (let i = 0; i < 5; i++) published.push(await restPublish(nodes[1], { topic, type: 'data', data: { i } }));
    await first.count(topic, 5);
    const other = await client(nodes[2]);
    const ack = await other.subscribe(topic, { lastSequence: start + 2 });
    assert.deepEqual([ack.recovered, ack.sequence], [true, start + 5]);
    const replayed = await other.count(topic, 3);
    assert.deepEqual(replayed.map((f) => f.messageId), published.slice(2).map((p) => p.messageId));
    assert.deepEqual(replayed.map((f) => f.sequence), [start + 3, start + 4, start + 5]);
    const future = await client(nodes[0]);
    const fack = await future.subscribe(topic, { lastSequence: start + 1000 });
    assert.equal(fack.recovered, false);

    await stopAll();
    await startAll();
    const again = await client(nodes[1]);
    const rack = await again.subscribe(topic, { lastSequence: start });
    assert.deepEqual([rack.recovered, rack.sequence], [true, start + 5]);
    const back = await again.count(topic, 5);
    assert.deepEqual(back.map((f) => f.messageId), published.map((p) => p.messageId));
    assert.deepEqual(back.map((f) => f.data.i), [0, 1, 2, 3, 4]);
    const next = await restPublish(nodes[0], { topic, type: 'data', data: { i: 5 } });
    assert.equal(next.sequence, start + 6, 'the sequence goes on after the restart');
    assert.equal((await again.count(topic, 6))[5].sequence, start + 6);
  });
});

/** A free loopback port. */
const HAVE_REDIS_SERVER = spawnSync('redis-server', ['--version']).status === 0;

describe('JSON protocol while Redis is down', { skip: !HAVE_REDIS_SERVER && 'no redis-server on PATH' }, () => {
  let dir, port, redis, h1, h2;
  const clients = [];

  async function startRedis() {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    redis.exitedP = new Promise((r) => redis.once('exit', r));
    await waitFor('redis-server', () => new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.on('error', () => resolve(false));
    }));
  }

  /** SHUTDOWN SAVE over a raw connection: the data survives for the next start. */
  async function stopRedis() {
    const s = net.connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write('*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n');
    s.on('error', () => {});
    await redis.exitedP;
  }

  async function client(srv) {
    const c = await JClient.open(srv);
    clients.push(c);
    return c;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-redis-'));
    port = await freePort();
    await startRedis();
    const args = ['--redis-url', `redis://127.0.0.1:${port}`, '--redis-prefix', 'down-test', '--jwt-secret', SECRET, '--api-key', API_KEY];
    [h1, h2] = await Promise.all([startHerald(args), startHerald(args)]);
    await waitFor('2 nodes', async () => (await healthOf(h1)).cluster?.nodes === 2 && (await healthOf(h2)).cluster?.nodes === 2);
  });

  after(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const h of [h1, h2]) if (h) assert.deepEqual(await h.stop(), { code: 0, signal: null });
    if (redis && redis.exitCode === null) { redis.kill('SIGKILL'); await redis.exitedP; }
    rmSync(dir, { recursive: true, force: true });
  });

  test('local delivery without a sequence while down; sequences go on once Redis is back', T, async () => {
    const topic = 'outage';
    const a = await client(h1), b = await client(h2);
    await a.subscribe(topic);
    await b.subscribe(topic);
    const before = await restPublish(h2, { topic, type: 'data', data: 'before' });
    assert.equal(before.sequence, 1);
    await a.count(topic, 1);

    await stopRedis();
    await waitFor('degraded', async () => (await healthOf(h1)).cluster?.status === 'degraded' && (await healthOf(h2)).cluster?.status === 'degraded');
    const during = await restPublish(h1, { topic, type: 'data', data: 'during' });
    assert.equal(during.sequence, 0, 'no sequence without Redis');
    assert.equal(during.delivered, 1, 'delivered on this node');
    const got = await a.count(topic, 2);
    assert.equal(got[1].data, 'during');
    assert.equal(got[1].sequence, undefined);
    assert.equal(got[1].topic, topic);
    const c = await client(h1);
    const ack = await c.subscribe(topic, { lastSequence: 0 });
    assert.equal(ack.sequence, undefined, 'no sequence known without Redis');
    assert.equal(ack.recovered, false);

    await startRedis();
    await waitFor('ok again', async () => (await healthOf(h1)).cluster?.status === 'ok' && (await healthOf(h2)).cluster?.status === 'ok');
    await waitFor('the topic channel subscribed again', async () => {
      const r = await restPublish(h2, { topic: 'probe', type: 'data', data: 1 });
      return r.sequence > 0;
    });
    const after = await restPublish(h2, { topic, type: 'data', data: 'after' });
    assert.equal(after.sequence, 2, 'the sequence goes on from what Redis kept');
    const ga = await a.count(topic, 3);
    assert.deepEqual([ga[2].data, ga[2].sequence], ['after', 2]);
    const gb = await b.count(topic, 2);
    assert.deepEqual(gb.map((f) => f.data), ['before', 'after'], 'the other node never got what was published during the outage');
    const d = await client(h2);
    const dack = await d.subscribe(topic, { lastSequence: 0 });
    assert.deepEqual([dack.recovered, dack.sequence], [true, 2]);
    assert.deepEqual((await d.count(topic, 2)).map((f) => f.data), ['before', 'after']);
  });
});
