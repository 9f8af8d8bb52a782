// A mixed Socket.IO cluster on one Redis (HERALD_TEST_REDIS_URL; scripts/test.sh starts a
// redis-server and sets it): two Herald nodes (--redis-url, --test-handlers, --shards 2) and one
// Node.js socket.io 4.7.2 node with @socket.io/redis-adapter 8.3.0 (tests/interop/lib/sio-redis-node.mjs),
// plus @socket.io/redis-emitter 5.1.0. Each run uses its own --redis-prefix, so runs sharing the
// Redis do not see each other. Contract tested:
//   - a broadcast from a Herald client reaches clients of every node (Herald and Node), to the
//     namespace, to rooms, with except rooms, in "/" and in "/custom";
//   - io.emit / io.to(room) / io.except(room) / binary Buffer / volatile from the Node node reach
//     Herald clients with the same payload;
//   - an emitter's emit and to(room).emit reach Herald clients;
//   - /health reports cluster {status: "ok", enabled, connected, nodes: 3, redis}.
// A message that must not arrive is checked with a sentinel broadcast sent after it: Redis hands a
// subscriber its messages in publish order, so the sentinel arriving first means it never will.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { io as connect } from 'socket.io-client';
import { createClient } from 'redis';
import { Emitter } from '@socket.io/redis-emitter';
import { startHerald } from './lib/server.mjs';
import { startNodeNode } from './lib/sio-redis-node.mjs';
import { once, sleep } from './lib/wait.mjs';

const REDIS = process.env.HERALD_TEST_REDIS_URL;
const T = { timeout: 10000 };
const WAIT = 4000;

/** Every event a socket receives, in order: [event, ...args]. A Herald node has connection state
 * recovery on: it appends the recovery offset (a decimal string) to broadcast arguments, as socket.io
 * does with connectionStateRecovery; that offset is checked and left out here. */
function record(socket) {
  const seen = [];
  socket.onAny((...args) => {
    if (socket.herald) {
      const offset = args.pop();
      assert.match(String(offset), /^\d+$/, `recovery offset of ${JSON.stringify(args)}`);
    }
    seen.push(args);
  });
  return seen;
}

/** Waits until seen holds an entry for event; returns its arguments. */
async function received(seen, event, ms = WAIT) {
  const end = Date.now() + ms;
  for (;;) {
    const hit = seen.find((e) => e[0] === event);
    if (hit) return hit.slice(1);
    if (Date.now() > end) throw new Error(`no "${event}" within ${ms} ms; got ${JSON.stringify(seen.map((e) => e[0]))}`);
    await sleep(10);
  }
}

describe('cluster over Redis (Herald + Node.js socket.io + emitter)', { skip: !REDIS && 'HERALD_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server and sets it)' }, () => {
  const prefix = `herald-test-${crypto.randomBytes(4).toString('hex')}`;
  let h1, h2, node, redis, emitter;
  const sockets = [];

  async function client(url, nsp = '/') {
    const s = connect(url + nsp, { transports: ['websocket'], forceNew: true, reconnection: false });
    s.herald = url !== node.url;
    sockets.push(s);
    await once(s, 'connect');
    return s;
  }

  async function healthOf(srv) {
    return (await fetch(srv.url('/health'))).json();
  }

  before(async () => {
    const args = ['--redis-url', REDIS, '--redis-prefix', prefix, '--test-handlers', '--shards', '2'];
    [h1, h2] = await Promise.all([startHerald(args), startHerald(args)]);
    node = await startNodeNode({ redisUrl: REDIS, prefix });
    redis = createClient({ url: REDIS });
    await redis.connect();
    emitter = new Emitter(redis, { key: prefix });
    const end = Date.now() + 8000; // every node subscribed: each Herald counts 3 request subscribers
    for (;;) {
      const [a, b] = await Promise.all([healthOf(h1), healthOf(h2)]);
      if (a.cluster.nodes === 3 && b.cluster.nodes === 3 && a.cluster.connected && b.cluster.connected) break;
      if (Date.now() > end) throw new Error(`cluster not formed: ${JSON.stringify([a.cluster, b.cluster])}`);
      await sleep(50);
    }
  });

  after(async () => {
    for (const s of sockets) s.close();
    await redis?.quit().catch(() => {});
    await node?.stop();
    for (const srv of [h1, h2]) {
      if (!srv) continue;
      const r = await srv.stop();
      assert.deepEqual(r, { code: 0, signal: null }, `herald did not exit cleanly:\n${srv.log.slice(-3000)}`);
    }
  });

  test('/health reports the cluster', T, async () => {
    const h = await healthOf(h1);
    assert.equal(h.status, 'ok');
    assert.equal(h.cluster.status, 'ok');
    assert.equal(h.cluster.enabled, true);
    assert.equal(h.cluster.nodes, 3);
    assert.match(h.cluster.redis, /^127\.0\.0\.1:\d+$/);
  });

  test('a broadcast from a Herald client reaches every node, in "/" and "/custom"', T, async () => {
    for (const nsp of ['/', '/custom']) {
      const a = await client(h1.url(''), nsp), b = await client(h2.url(''), nsp), n = await client(node.url, nsp);
      const got = [once(a, 'news'), once(b, 'news'), once(n, 'news')];
      a.emit('broadcast-to', { event: 'news', data: { nsp, n: 1, pi: 3.25, s: 'é' } });
      for (const [data] of await Promise.all(got)) assert.deepEqual(data, { nsp, n: 1, pi: 3.25, s: 'é' });
    }
  });

  test('rooms and except, from a Herald client, across Herald and Node nodes', T, async () => {
    const a1 = await client(h1.url('')), b1 = await client(h2.url('')), b2 = await client(h2.url(''));
    const n1 = await client(node.url), n2 = await client(node.url);
    const room = `r-${crypto.randomBytes(3).toString('hex')}`;
    for (const [s, r] of [[a1, room], [b1, room], [b2, 'other'], [n1, room], [n2, room], [n2, 'vip']])
      assert.deepEqual(await s.timeout(WAIT).emitWithAck('join', r), { ok: true });
    const all = [a1, b1, b2, n1, n2];
    const seen = all.map(record);
    await a1.timeout(WAIT).emitWithAck('broadcast-to', { rooms: [room], except: ['vip'], event: 'roomy', data: 7 });
    await a1.timeout(WAIT).emitWithAck('broadcast-to', { event: 'sentinel', data: 0 });
    for (const s of seen) await received(s, 'sentinel');
    const roomy = seen.map((s) => s.filter((e) => e[0] === 'roomy').length);
    assert.deepEqual(roomy, [1, 1, 0, 1, 0], 'a1, b1, n1 in the room; b2 elsewhere; n2 excepted');
    // two rooms (the namespace channel): a socket in both gets it once
    await a1.timeout(WAIT).emitWithAck('join', 'other');
    await n2.timeout(WAIT).emitWithAck('broadcast-to', { rooms: [room, 'other'], event: 'two-rooms', data: 'x' });
    await n2.timeout(WAIT).emitWithAck('broadcast-to', { event: 'sentinel2', data: 0 });
    for (const s of seen) await received(s, 'sentinel2');
    assert.deepEqual(seen.map((s) => s.filter((e) => e[0] === 'two-rooms').length), [1, 1, 1, 1, 1]);
  });

  test('io.emit, io.to(room), io.except(room), binary and volatile from the Node node reach Herald clients', T, async () => {
    const a = await client(h1.url('')), b = await client(h2.url('')), c = await client(h2.url(''));
    const room = `n-${crypto.randomBytes(3).toString('hex')}`;
    assert.deepEqual(await a.timeout(WAIT).emitWithAck('join', room), { ok: true });
    assert.deepEqual(await c.timeout(WAIT).emitWithAck('join', room), { ok: true });
    const seen = [a, b, c].map(record);
    const bin = Buffer.from([0, 1, 2, 250, 255]);
    node.io.emit('to-all', 1, 'two', { three: [3], big: 1234567890123, neg: -5, f: 0.5, nil: null });
    node.io.to(room).emit('to-room', 'r');
    node.io.except(room).emit('except-room', 'e');
    node.io.emit('binary', 'file', bin, { nested: bin });
    node.io.volatile.emit('volatile', 'v');
    node.io.emit('sentinel', 0);
    for (const s of seen) await received(s, 'sentinel');
    for (const s of seen)
      assert.deepEqual(await received(s, 'to-all'), [1, 'two', { three: [3], big: 1234567890123, neg: -5, f: 0.5, nil: null }]);
    assert.deepEqual(seen.map((s) => s.filter((e) => e[0] === 'to-room').length), [1, 0, 1]);
    assert.deepEqual(seen.map((s) => s.filter((e) => e[0] === 'except-room').length), [0, 1, 0]);
    for (const s of seen) {
      const [name, file, obj] = await received(s, 'binary');
      assert.equal(name, 'file');
      assert.deepEqual(Buffer.from(file), bin);
      assert.deepEqual(Buffer.from(obj.nested), bin);
      assert.deepEqual(await received(s, 'volatile'), ['v']);
    }
  });

  test('an emitter reaches Herald clients (emit, to(room).emit)', T, async () => {
    const a = await client(h1.url('')), b = await client(h2.url(''));
    const room = `e-${crypto.randomBytes(3).toString('hex')}`;
    assert.deepEqual(await b.timeout(WAIT).emitWithAck('join', room), { ok: true });
    const seen = [a, b].map(record);
    emitter.emit('from-emitter', { a: 1 }, [true, false]);
    emitter.to(room).emit('emitter-room', 'only b');
    emitter.of('/').emit('sentinel', 0);
    for (const s of seen) await received(s, 'sentinel');
    for (const s of seen) assert.deepEqual(await received(s, 'from-emitter'), [{ a: 1 }, [true, false]]);
    assert.deepEqual(seen.map((s) => s.filter((e) => e[0] === 'emitter-room').length), [0, 1]);
  });

  test('every Herald shard delivers what comes from Redis, once', T, async () => {
    const many = [];
    for (let i = 0; i < 8; i++) many.push(await client(h1.url('')));
    const seen = many.map(record);
    node.io.emit('fan', 'out');
    node.io.emit('sentinel', 0);
    for (const s of seen) await received(s, 'sentinel');
    assert.deepEqual(seen.map((s) => s.filter((e) => e[0] === 'fan').length), many.map(() => 1));
  });
  test('io.in(room).fetchSockets() on the Node node lists Herald sockets (id, rooms, handshake) of every shard', T, async () => {
    const room = `f-${crypto.randomBytes(3).toString('hex')}`;
    const hs = [await client(h1.url('')), await client(h1.url('')), await client(h2.url(''))];
    const n = await client(node.url);
    for (const s of [...hs, n]) assert.deepEqual(await s.timeout(WAIT).emitWithAck('join', room), { ok: true });
    const found = await node.io.in(room).fetchSockets();
    assert.deepEqual(found.map((s) => s.id).sort(), [...hs, n].map((s) => s.id).sort());
    const one = found.find((s) => s.id === hs[2].id);
    assert.ok(one.rooms.has(room));
    assert.equal(typeof one.handshake.issued, 'number');
    const all = await node.io.fetchSockets();
    for (const s of [...hs, n]) assert.ok(all.some((f) => f.id === s.id), `${s.id} in io.fetchSockets()`);
  });

  test('io.socketsJoin / io.in(room).socketsLeave / io.in(room).disconnectSockets() from the Node node reach Herald sockets', T, async () => {
    const tag = crypto.randomBytes(3).toString('hex');
    const a = await client(h1.url('')), b = await client(h2.url(''));
    for (const s of [a, b]) assert.deepEqual(await s.timeout(WAIT).emitWithAck('join', `src-${tag}`), { ok: true });
    node.io.in(`src-${tag}`).socketsJoin(`dst-${tag}`);
    const end = Date.now() + WAIT;
    let ids = [];
    while (Date.now() < end && ids.length < 2) { ids = (await node.io.in(`dst-${tag}`).fetchSockets()).map((s) => s.id); await sleep(20); }
    assert.deepEqual(ids.sort(), [a.id, b.id].sort());
    node.io.in(`src-${tag}`).except(`nope-${tag}`).socketsLeave(`dst-${tag}`);
    while (Date.now() < end && ids.length) { ids = (await node.io.in(`dst-${tag}`).fetchSockets()).map((s) => s.id); await sleep(20); }
    assert.deepEqual(ids, []);
    const gone = [once(a, 'disconnect'), once(b, 'disconnect')];
    node.io.in(`src-${tag}`).disconnectSockets();
    await Promise.all(gone);
  });

  test("the emitter's socketsJoin / socketsLeave / disconnectSockets reach Herald sockets", T, async () => {
    const tag = crypto.randomBytes(3).toString('hex');
    const a = await client(h1.url('')), b = await client(h2.url(''));
    assert.deepEqual(await a.timeout(WAIT).emitWithAck('join', `src-${tag}`), { ok: true });
    emitter.in(`src-${tag}`).socketsJoin(`dst-${tag}`);
    const end = Date.now() + WAIT;
    let ids = [];
    while (Date.now() < end && ids.length < 1) { ids = (await node.io.in(`dst-${tag}`).fetchSockets()).map((s) => s.id); await sleep(20); }
    assert.deepEqual(ids, [a.id]);
    emitter.in(`src-${tag}`).socketsLeave(`dst-${tag}`);
    while (Date.now() < end && ids.length) { ids = (await node.io.in(`dst-${tag}`).fetchSockets()).map((s) => s.id); await sleep(20); }
    assert.deepEqual(ids, []);
    const gone = once(a, 'disconnect');
    emitter.in(`src-${tag}`).disconnectSockets();
    await gone;
    assert.ok(b.connected);
  });
  test('from Herald (sockets-join / fetch-sockets / sockets-leave / disconnect-sockets): the Node node and the other Herald node are reached', T, async () => {
    const tag = crypto.randomBytes(3).toString('hex');
    const asker = await client(h1.url(''));
    const n = await client(node.url), b = await client(h2.url('')), a2 = await client(h1.url(''));
    for (const s of [n, b, a2]) assert.deepEqual(await s.timeout(WAIT).emitWithAck('join', `src-${tag}`), { ok: true });
    const ids = async (room) => (await asker.timeout(WAIT).emitWithAck('fetch-sockets', { rooms: [room] })).map((d) => d.id).sort();
    assert.deepEqual(await ids(`src-${tag}`), [n.id, b.id, a2.id].sort());
    const fetched = await asker.timeout(WAIT).emitWithAck('fetch-sockets', { rooms: [`src-${tag}`] });
    assert.ok(fetched.find((d) => d.id === n.id).rooms.includes(`src-${tag}`));
    assert.deepEqual(await asker.timeout(WAIT).emitWithAck('sockets-join', { rooms: [`src-${tag}`], except: [], room: `dst-${tag}` }), { ok: true });
    const end = Date.now() + WAIT;
    let got = [];
    while (Date.now() < end && got.length < 3) { got = await ids(`dst-${tag}`); await sleep(20); }
    assert.deepEqual(got, [n.id, b.id, a2.id].sort());
    assert.deepEqual((await node.io.in(`dst-${tag}`).fetchSockets()).map((s) => s.id).sort(), got);
    assert.deepEqual(await asker.timeout(WAIT).emitWithAck('sockets-leave', { rooms: [`dst-${tag}`], room: `dst-${tag}` }), { ok: true });
    while (Date.now() < end && got.length) { got = await ids(`dst-${tag}`); await sleep(20); }
    assert.deepEqual(got, []);
    const gone = [n, b, a2].map((s) => once(s, 'disconnect'));
    assert.deepEqual(await asker.timeout(WAIT).emitWithAck('disconnect-sockets', { rooms: [`src-${tag}`] }), { ok: true });
    await Promise.all(gone);
    assert.ok(asker.connected);
  });
});
