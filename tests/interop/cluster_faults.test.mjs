// Faults of a Herald cluster (issue 9, "Faults"): this test runs its OWN redis-server (a free
// loopback port, no persistence) so that it can kill, stop and restart it while Herald nodes run:
//   - Redis killed: every node keeps delivering locally (Socket.IO broadcasts, REST publishes to
//     JSON-protocol and Socket.IO subscribers), /health says cluster.status "degraded" with HTTP 200,
//     a fetchSockets answers at once with this node's sockets; Redis restarted on the same port:
//     the nodes reconnect, subscribe again, cross-node delivery works again, health is "ok";
//   - Redis hung (SIGSTOP): a fetchSockets waiting for answers ends after --redis-timeout instead of
//     its 5 s; the unanswered PUBLISHes stop at --redis-max-queue (dropped, counted); the PING
//     watchdog makes the node "degraded"; SIGCONT: "ok" again and delivery across nodes resumes;
//   - a node killed with kill -9 leaves the node count of the others within 15 s, and their
//     requests no longer wait for it;
//   - the herald_cluster_* series of /metrics move (messages in and out, decode errors, dropped,
//     losses, reconnects, timeouts, queue, PING latency, publish lag histogram).
// Needs redis-server on PATH (scripts/install-deps.sh installs Debian's).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { io as connect } from 'socket.io-client';
import { createClient } from 'redis';
import { startHerald } from './lib/server.mjs';
import { freePort, once, sleep } from './lib/wait.mjs';

const API_KEY = 'cluster-faults-api-key-0123';
const SECRET = 'cluster-faults-secret-0123456789abcdef';
const T = { timeout: 20000 };
const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

/** A redis-server on port (no persistence), ready to accept. */
async function startRedis(port) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${log}`)), 5000);
    child.stdout.on('data', (d) => { log += d; if (/Ready to accept connections/.test(log)) { clearTimeout(timer); resolve(); } });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited (${code}):\n${log}`)); });
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return { child, kill: async (sig = 'SIGKILL') => { if (child.exitCode === null && child.signalCode === null) child.kill(sig); await exited; } };
}

/** Polls fn until it returns a truthy value or ms pass; returns that value. */
async function until(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

async function health(srv) {
  const res = await fetch(srv.url('/health'));
  return { http: res.status, ...(await res.json()) };
}

/** The /metrics series as a map `name{labels}` -> number. */
async function metrics(srv) {
  const text = await (await fetch(srv.url('/metrics'))).text();
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = /^(herald_cluster_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

async function publish(srv, topic, data) {
  const res = await fetch(srv.url('/api/v1/publish'), {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
    body: JSON.stringify({ topic, type: 'news', data }),
  });
  return { status: res.status, body: await res.json() };
}

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function adminToken() {
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'faults', role: 'admin', iat: now, exp: now + 3600 })}`;
  return `${signing}.${crypto.createHmac('sha256', SECRET).update(signing).digest('base64url')}`;
}

/** A JSON-protocol client subscribed to topic; .frames holds what arrived. */
async function jsonSubscriber(srv, topic) {
  const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?token=${adminToken()}&protocol=1.0`));
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(d)));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'subscribe', data: { topic }, messageId: 'sub-1' }));
  await until('subscribed', () => frames.find((f) => f.type === 'ack'), 4000);
  return { ws, frames };
}

describe('cluster faults (own redis-server)', { skip: !hasRedis && 'redis-server is not installed' }, () => {
  const prefix = `herald-faults-${crypto.randomBytes(4).toString('hex')}`;
  const ARGS = ['--redis-prefix', prefix, '--test-handlers', '--redis-timeout', '1000', '--redis-max-queue', '65536',
    '--api-key', API_KEY, '--jwt-secret', SECRET];
  let port, redis, h1, h2, h3;
  const sockets = [];
  const closers = [];

  async function client(srv, nsp = '/') {
    const s = connect(srv.url(nsp), { transports: ['websocket'], forceNew: true, reconnection: false });
    sockets.push(s);
    await once(s, 'connect');
    return s;
  }

  /** a broadcast from `from` (a socket) reaches `to` (a socket) */
  async function crosses(from, to, tag) {
    const got = once(to, tag, 3000);
    assert.deepEqual(await from.timeout(3000).emitWithAck('broadcast-to', { event: tag, data: { tag } }), { ok: true });
    const [data] = await got;
    assert.deepEqual(data, { tag });
  }

  const formed = (n, ...nodes) => until(`cluster of ${n} formed`, async () => {
    const hs = await Promise.all(nodes.map(health));
    return hs.every((h) => h.cluster.status === 'ok' && h.cluster.nodes === n) && hs;
  }, 8000);

  before(async () => {
    port = await freePort();
    redis = await startRedis(port);
    const args = ['--redis-url', `redis://127.0.0.1:${port}`, ...ARGS];
    [h1, h2] = await Promise.all([startHerald(args), startHerald(args)]);
    await formed(2, h1, h2);
  });

  after(async () => {
    for (const s of sockets) s.close();
    for (const c of closers) c();
    for (const srv of [h1, h2]) {
      if (!srv) continue;
      const r = await srv.stop();
      assert.deepEqual(r, { code: 0, signal: null }, `herald did not exit cleanly:\n${srv.log.slice(-3000)}`);
    }
    await h3?.stop().catch(() => {});
    redis?.child.kill('SIGCONT');
    await redis?.kill('SIGKILL');
  });

  test('a node without --redis-url: cluster.status "disabled"', T, async () => {
    const solo = await startHerald(['--api-key', API_KEY]);
    try {
      const h = await health(solo);
      assert.equal(h.http, 200);
      assert.deepEqual({ status: h.cluster.status, enabled: h.cluster.enabled, nodes: h.cluster.nodes },
        { status: 'disabled', enabled: false, nodes: 1 });
      const m = await (await fetch(solo.url('/metrics'))).text();
      assert.match(m, /^herald_cluster_enabled 0$/m);
      assert.doesNotMatch(m, /herald_cluster_connected/);
    } finally {
      assert.deepEqual(await solo.stop(), { code: 0, signal: null });
    }
  });

  test('garbage from the cluster is dropped and counted as decode errors', T, async () => {
    const before = (await metrics(h1)).get('herald_cluster_errors_total{reason="decode"}');
    const pub = createClient({ url: `redis://127.0.0.1:${port}` });
    await pub.connect();
    try {
      await pub.publish(`${prefix}#/#`, Buffer.from([0x93, 0xc1, 0xff])); // not msgpack
      await pub.publish(`${prefix}-request#/#`, '{"uid":'); // broken JSON
    } finally {
      await pub.quit();
    }
    await until('decode errors counted', async () => (await metrics(h1)).get('herald_cluster_errors_total{reason="decode"}') >= before + 2, 3000);
    const a1 = await client(h1), b1 = await client(h2);
    await crosses(a1, b1, 'after-garbage');
  });

  test('Redis killed: local delivery goes on, health degraded; restarted: ok, across nodes again', T, async () => {
    const a1 = await client(h1), a2 = await client(h1), b1 = await client(h2);
    await crosses(a1, b1, 'before');
    const m0 = await metrics(h1);
    assert.ok(m0.get('herald_cluster_messages_total{direction="out",kind="broadcast"}') >= 1);
    assert.ok((await metrics(h2)).get('herald_cluster_messages_total{direction="in",kind="broadcast"}') >= 1);
    assert.equal(m0.get('herald_cluster_connected'), 1);

    const topic = `faults-${crypto.randomBytes(3).toString('hex')}`;
    const sub = await jsonSubscriber(h1, topic);
    closers.push(() => sub.ws.close());
    assert.deepEqual(await a2.timeout(3000).emitWithAck('join', topic), { ok: true });

    await redis.kill('SIGKILL');
    const [d1, d2] = await Promise.all([h1, h2].map((srv) => until('degraded', async () => {
      const h = await health(srv);
      return h.cluster.status === 'degraded' && h;
    }, 3000)));
    for (const h of [d1, d2]) {
      assert.equal(h.http, 200, 'a degraded node still serves');
      assert.equal(h.status, 'ok');
      assert.deepEqual({ connected: h.cluster.connected, nodes: h.cluster.nodes }, { connected: false, nodes: 1 });
    }

    // Socket.IO on this node: delivered; the other node: nothing
    const lost = [];
    b1.on('during', (...a) => lost.push(a));
    await crosses(a1, a2, 'during');
    // a REST publish reaches this node's JSON-protocol and Socket.IO subscribers, and says so
    const gotSio = once(a2, 'news');
    const p = await publish(h1, topic, { n: 1 });
    assert.equal(p.status, 200);
    assert.equal(p.body.delivered, 2, JSON.stringify(p.body));
    await until('JSON subscriber got the publish', () => sub.frames.find((f) => f.type === 'news'), 3000);
    assert.deepEqual((await gotSio)[0], { n: 1 });
    // a fetchSockets does not wait for nodes it cannot reach: this node's sockets, at once
    const t0 = Date.now();
    const fetched = await a1.timeout(3000).emitWithAck('fetch-sockets', {});
    assert.ok(Date.now() - t0 < 1000, `fetchSockets took ${Date.now() - t0} ms`);
    const ids = fetched.map((s) => s.id);
    assert.ok(ids.includes(a1.id) && ids.includes(a2.id) && !ids.includes(b1.id), JSON.stringify(ids));

    const m1 = await metrics(h1);
    assert.equal(m1.get('herald_cluster_connected'), 0);
    assert.ok(m1.get('herald_cluster_dropped_total{reason="disconnected"}') >= 1);
    assert.ok(m1.get('herald_cluster_link_losses_total') >= 1);

    redis = await startRedis(port);
    await formed(2, h1, h2); // backoff: 100 ms doubling to 5 s
    await crosses(a1, b1, 'after'); // subscribed again: the pattern and the room channels
    await crosses(b1, a1, 'after-back');
    assert.equal(lost.length, 0, 'what was broadcast during the outage is not replayed');
    const m2 = await metrics(h1);
    assert.ok(m2.get('herald_cluster_reconnects_total') >= 1);
    assert.ok(m2.get('herald_cluster_publish_lag_seconds_count') >= 1, 'the lag of own broadcasts is measured');
    assert.ok(m2.get('herald_cluster_link_latency_seconds') > 0);
  });

  test('Redis hung (SIGSTOP): requests end at --redis-timeout, the queue is bounded, degraded; SIGCONT: ok', T, async () => {
    const a1 = await client(h1), b1 = await client(h2);
    await crosses(a1, b1, 'pre-hang');
    redis.child.kill('SIGSTOP');
    try {
      // a request already waiting for the other node's answer ends when the hang is detected
      const t0 = Date.now();
      const fetching = a1.timeout(8000).emitWithAck('fetch-sockets', {});
      // PUBLISHes pile up unanswered: beyond --redis-max-queue (64 KiB) they are dropped
      const big = 'x'.repeat(2048);
      for (let i = 0; i < 100; i++) a1.emit('broadcast-to', { event: 'flood', data: big });
      const fetched = await fetching;
      const took = Date.now() - t0;
      assert.ok(took < 3500, `fetchSockets took ${took} ms (its timeout is 5 s; the hang is seen within 1-2 s)`);
      assert.ok(fetched.some((s) => s.id === a1.id));
      const h = await until('degraded', async () => { const x = await health(h1); return x.cluster.status === 'degraded' && x; }, 3000);
      assert.equal(h.http, 200);
      const m = await metrics(h1);
      assert.ok(m.get('herald_cluster_dropped_total{reason="queue_full"}') >= 1, 'queue bound reached');
      assert.ok(m.get('herald_cluster_timeouts_total') >= 1);
      assert.ok(m.get('herald_cluster_requests_failed_total') >= 1);
      assert.equal(m.get('herald_cluster_queued_bytes'), 0, 'the hung connection was dropped with its queue');
      assert.equal(m.get('herald_cluster_queue_limit_bytes'), 65536);
    } finally {
      redis.child.kill('SIGCONT');
    }
    await formed(2, h1, h2);
    await crosses(a1, b1, 'post-hang');
  });

  test('a node killed with kill -9 leaves the node count; requests stop waiting for it', T, async () => {
    h3 = await startHerald(['--redis-url', `redis://127.0.0.1:${port}`, ...ARGS]);
    await formed(3, h1, h2, h3);
    const a1 = await client(h1), b1 = await client(h2), c1 = await client(h3);
    const all = await a1.timeout(6000).emitWithAck('fetch-sockets', {});
    assert.ok([a1, b1, c1].every((s) => all.some((x) => x.id === s.id)), 'every node answered');
    h3.child.kill('SIGKILL');
    const t0 = Date.now();
    await h3.exited;
    await sleep(100); // Redis sees the connection close
    // each request counts the nodes first (PUBSUB NUMSUB, as the adapter does): no wait for the dead one,
    // even before the node count of /health (polled every 2 s) has caught up
    for (const [s, peer] of [[a1, b1], [b1, a1]]) {
      const t1 = Date.now();
      const got = await s.timeout(6000).emitWithAck('fetch-sockets', {});
      assert.ok(Date.now() - t1 < 1000, `fetchSockets took ${Date.now() - t1} ms`);
      const ids = got.map((x) => x.id);
      assert.ok(ids.includes(s.id) && ids.includes(peer.id) && !ids.includes(c1.id), JSON.stringify(ids));
      const t2 = Date.now();
      const rooms = await s.timeout(6000).emitWithAck('all-rooms');
      assert.ok(Date.now() - t2 < 1000, `allRooms took ${Date.now() - t2} ms`);
      assert.ok(rooms.includes(peer.id), JSON.stringify(rooms));
    }
    await formed(2, h1, h2);
    assert.ok(Date.now() - t0 < 15000, `dropped out after ${Date.now() - t0} ms`);
    const r = await h3.stop();
    assert.equal(r.signal, 'SIGKILL');
    h3 = null;
  });
});
