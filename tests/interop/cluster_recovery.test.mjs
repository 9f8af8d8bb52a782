// Socket.IO connection state recovery across the nodes of a cluster (issue 9; docs/cluster-recovery.md).
// Two Herald nodes on one Redis (HERALD_TEST_REDIS_URL, an own --redis-prefix per run) and the stock
// socket.io-client 4.7.2, which sends {pid, offset} back in its CONNECT after a drop. The client is
// moved from node A to node B by pointing its Manager at B before it reconnects (engine.io-client
// re-reads the URI on every open). Contract tested:
//   - a socket that drops from A (transport closed) and reconnects to B within the window is recovered
//     (socket.recovered, the same id), keeps its rooms, and receives the broadcasts it missed — to its
//     room, to its id and to the namespace, published from either node — in order, once; a broadcast
//     to a room it is not in, or except its id, is not replayed; live traffic goes on (to its id too); its session is gone from Redis once taken;
//     each broadcast is kept once in Redis (one stream entry), whatever the number of nodes;
//   - the same client coming back a second time with the same pid is not recovered twice from the
//     old session (GETDEL), and a reconnection without an offset is a new session;
//   - past the recovery window: connected, not recovered, a new id;
//   - Redis not answering (SIGSTOP): the CONNECT is answered within the 2 s bound, not recovered;
//     Redis gone: connected at once, not recovered (a private redis-server for these two).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { io as connect } from 'socket.io-client';
import { createClient } from 'redis';
import { startHerald } from './lib/server.mjs';
import { freePort, once, sleep } from './lib/wait.mjs';

const REDIS = process.env.HERALD_TEST_REDIS_URL;
const T = { timeout: 15000 };
const WAIT = 4000;
const SKIP = !REDIS && 'HERALD_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server and sets it)';

async function waitFor(cond, what, ms = WAIT) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Starts n Herald nodes on redisUrl under prefix and waits until each counts them all. */
async function cluster(redisUrl, prefix, n, extra = []) {
  const args = ['--redis-url', redisUrl, '--redis-prefix', prefix, '--test-handlers', ...extra];
  const nodes = await Promise.all(Array.from({ length: n }, () => startHerald(args)));
  await waitFor(async () => {
    const hs = await Promise.all(nodes.map(async (h) => (await fetch(h.url('/health'))).json()));
    return hs.every((h) => h.cluster.connected && h.cluster.nodes === n);
  }, `${n} nodes in the cluster`, 8000);
  return nodes;
}

async function stopAll(nodes) {
  for (const h of nodes) {
    if (!h) continue;
    const r = await h.stop();
    assert.deepEqual(r, { code: 0, signal: null }, `herald did not exit cleanly:\n${h.log.slice(-3000)}`);
  }
}

/** A client of url ('/' namespace) that reconnects only when told (reconnect()). */
async function client(url, sockets) {
  const s = connect(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  sockets.push(s);
  await once(s, 'connect');
  return s;
}

/** Every "news" payload s receives (the recovery offset, its last argument, checked and left out). */
function news(s) {
  const seen = [];
  s.on('news', (data, offset) => {
    assert.match(String(offset), /^\d+$/, `offset of ${JSON.stringify(data)}`);
    seen.push(data);
  });
  return seen;
}

/** Drops s's transport (the server sees "transport close": recoverable) and waits for it. */
async function drop(s) {
  const gone = once(s, 'disconnect');
  s.io.engine.close();
  await gone;
}

/** Reconnects s to another node (same pid and offset, as the client keeps them). */
async function reconnectTo(s, url, ms = WAIT) {
  s.io.uri = url;
  const back = once(s, 'connect', ms);
  s.connect();
  await back;
}

describe('Socket.IO connection state recovery across nodes', { skip: SKIP }, () => {
  const prefix = `herald-rec-${crypto.randomBytes(4).toString('hex')}`;
  let a, b, redis;
  const sockets = [];

  before(async () => {
    [a, b] = await cluster(REDIS, prefix, 2);
    redis = createClient({ url: REDIS });
    await redis.connect();
  });

  after(async () => {
    for (const s of sockets) s.close();
    await redis?.quit().catch(() => {});
    await stopAll([a, b]);
  });

  test('dropped from node A, back on node B: recovered, same id, rooms kept, missed broadcasts in order, once', T, async () => {
    const pubA = await client(a.url(''), sockets), pubB = await client(b.url(''), sockets);
    const c = await client(a.url(''), sockets);
    const seen = news(c);
    assert.deepEqual(await c.emitWithAck('join', 'r1'), { ok: true });
    const streamKey = `${prefix}#herald#recovery#/`;
    const before = await redis.xLen(streamKey);
    // live first: c gets an offset
    await pubB.emitWithAck('broadcast-to', { rooms: ['r1'], event: 'news', data: 'm0' });
    await waitFor(() => seen.length === 1, 'm0 on c');
    const firstId = c.id;
    await drop(c);
    await waitFor(async () => (await redis.keys(`${prefix}#herald#session#*`)).length === 1, 'the session in Redis');
    // meanwhile, from both nodes: to its room, to the namespace, to another room
    const sends = [[pubA, { rooms: ['r1'], data: 'x1' }], [pubB, { data: 'x2' }], [pubA, { rooms: ['r2'], data: 'not-for-c' }],
      [pubA, { data: 'x3' }], [pubB, { rooms: ['r1'], data: 'x4' }], [pubB, { rooms: ['r1', 'r2'], except: ['r3'], data: 'x5' }],
      [pubA, { rooms: [firstId], data: 'x6' }], [pubB, { except: [firstId], data: 'not-for-c-either' }]];
    for (const [p, opt] of sends) {
      assert.deepEqual(await p.emitWithAck('broadcast-to', { event: 'news', ...opt }), { ok: true });
      await sleep(30); // the two nodes' stream writes in the order sent
    }
    // each of this test's broadcasts kept once, whatever the number of nodes (an entry of something
    // else broadcast meanwhile on the namespace does not count)
    const entries = (await redis.xRange(streamKey, '-', '+')).map((e) => JSON.stringify(e.message));
    for (const mark of ['m0', ...sends.map(([, opt]) => opt.data)]) {
      const n = entries.filter((e) => e.includes(`\\"${mark}\\"`)).length;
      assert.equal(n, 1, `${mark} kept ${n} times in the stream (of ${before} + ${entries.length - before}): ${entries.slice(before).join('\n')}`);
    }
    await reconnectTo(c, b.url(''));
    assert.equal(c.recovered, true, 'socket.recovered');
    assert.equal(c.id, firstId, 'the same id');
    await waitFor(() => seen.length >= 7, 'the missed broadcasts');
    await sleep(200); // nothing more arrives
    assert.deepEqual(seen, ['m0', 'x1', 'x2', 'x3', 'x4', 'x5', 'x6'], 'missed broadcasts, in order, once');
    assert.equal((await redis.keys(`${prefix}#herald#session#*`)).length, 0, 'the session is taken');
    // its rooms on node B: a broadcast to r1 from node A reaches it, once
    await pubA.emitWithAck('broadcast-to', { rooms: ['r1'], event: 'news', data: 'live' });
    await waitFor(() => seen.length === 8, 'live on B');
    // and its id: from node A to its socket on node B
    await pubA.emitWithAck('broadcast-to', { rooms: [firstId], event: 'news', data: 'live-to-id' });
    await waitFor(() => seen.length === 9, 'live to its id on B');
    await sleep(100);
    assert.deepEqual(seen.slice(7), ['live', 'live-to-id']);
  });

  test('a session is taken once; a reconnection without an offset is a new session', T, async () => {
    const pubA = await client(a.url(''), sockets);
    const c = await client(a.url(''), sockets);
    const seen = news(c);
    await pubA.emitWithAck('broadcast-to', { event: 'news', data: 'n0' });
    await waitFor(() => seen.length === 1, 'n0');
    const { _pid: pid, _lastOffset: offset } = c;
    await drop(c);
    await waitFor(async () => (await redis.exists(`${prefix}#herald#session#${pid}`)) === 1, 'the session in Redis');
    await reconnectTo(c, b.url(''));
    assert.equal(c.recovered, true);
    // a second client claiming the same pid and offset: the session is gone
    const thief = connect(b.url(''), { transports: ['websocket'], forceNew: true, reconnection: false, auth: { pid, offset } });
    sockets.push(thief);
    await once(thief, 'connect');
    assert.notEqual(thief.id, c.id, 'not the same socket twice');
    // no offset: a new session even with a saved one
    const d = await client(a.url(''), sockets);
    const dId = d.id;
    await drop(d);
    await waitFor(async () => (await redis.exists(`${prefix}#herald#session#${d._pid}`)) === 1, 'd\'s session');
    d._lastOffset = undefined;
    await reconnectTo(d, b.url(''));
    assert.equal(d.recovered, false);
    assert.notEqual(d.id, dId);
  });
});

describe('recovery across nodes: window expired', { skip: SKIP }, () => {
  const prefix = `herald-rec-${crypto.randomBytes(4).toString('hex')}`;
  let a, b;
  const sockets = [];
  before(async () => { [a, b] = await cluster(REDIS, prefix, 2, ['--recovery-window', '600']); });
  after(async () => {
    for (const s of sockets) s.close();
    await stopAll([a, b]);
  });

  test('back after the window: connected, not recovered, a new id', T, async () => {
    const pub = await client(b.url(''), sockets);
    const c = await client(a.url(''), sockets);
    const seen = news(c);
    await pub.emitWithAck('broadcast-to', { event: 'news', data: 'w0' });
    await waitFor(() => seen.length === 1, 'w0');
    const firstId = c.id;
    await drop(c);
    await sleep(900);
    await pub.emitWithAck('broadcast-to', { event: 'news', data: 'w1' });
    await reconnectTo(c, b.url(''));
    assert.equal(c.recovered, false);
    assert.notEqual(c.id, firstId);
    await sleep(200);
    assert.deepEqual(seen, ['w0'], 'nothing replayed');
  });
});

/** A free loopback port. */
describe('recovery across nodes: Redis not answering, Redis down', { skip: SKIP }, () => {
  const prefix = `herald-rec-${crypto.randomBytes(4).toString('hex')}`;
  let a, b, redisProc;
  const sockets = [];

  before(async () => {
    const port = await freePort();
    redisProc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' });
    const url = `redis://127.0.0.1:${port}`;
    await waitFor(() => new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    }), 'the private redis-server');
    [a, b] = await cluster(url, prefix, 2);
  });

  after(async () => {
    for (const s of sockets) s.close();
    if (redisProc && redisProc.exitCode === null) { redisProc.kill('SIGCONT'); redisProc.kill('SIGKILL'); }
    await stopAll([a, b]);
  });

  test('Redis stopped: the CONNECT is answered within the bound, not recovered; Redis killed: connected at once, not recovered', T, async () => {
    const pub = await client(b.url(''), sockets);
    const c = await client(a.url(''), sockets), d = await client(a.url(''), sockets);
    const seen = news(c), seenD = news(d);
    await pub.emitWithAck('broadcast-to', { event: 'news', data: 'd0' });
    await waitFor(() => seen.length === 1 && seenD.length === 1, 'd0');
    const [cId, dId] = [c.id, d.id];
    await drop(c);
    await drop(d);
    await sleep(200); // the sessions are saved
    redisProc.kill('SIGSTOP');
    const t0 = Date.now();
    await reconnectTo(c, b.url(''), 5000);
    const waited = Date.now() - t0;
    assert.equal(c.recovered, false);
    assert.notEqual(c.id, cId);
    assert.ok(waited >= 1500 && waited < 4000, `answered after the 2 s bound, not before nor long after: ${waited} ms`);
    redisProc.kill('SIGCONT'); // its late answer finds nobody waiting
    await sleep(100);
    redisProc.kill('SIGKILL');
    await new Promise((r) => redisProc.once('exit', r));
    await waitFor(async () => (await (await fetch(b.url('/health'))).json()).cluster.connected === false, 'B sees Redis gone');
    const t1 = Date.now();
    await reconnectTo(d, b.url(''));
    assert.ok(Date.now() - t1 < 1000, 'no waiting when Redis is down');
    assert.equal(d.recovered, false);
    assert.notEqual(d.id, dId);
    // still serving: a broadcast reaches it
    await pub.emitWithAck('broadcast-to', { event: 'news', data: 'after' });
    await waitFor(() => seenD.includes('after'), 'a broadcast after Redis went');
  });
});
