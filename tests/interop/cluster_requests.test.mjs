// The adapter's requests that cluster.test.mjs leaves out, in a mixed cluster on one Redis
// (HERALD_TEST_REDIS_URL): two Herald nodes (--test-handlers, --shards $HERALD_SHARDS or 2, recovery
// off so broadcasts carry no offset) and one Node.js socket.io 4.7.2 node with
// @socket.io/redis-adapter 8.3.0, plus @socket.io/redis-emitter and a raw Redis client. Contract:
//   - allRooms (1): a Herald client's `all-rooms` lists the rooms of every node; the Node node's
//     adapter.allRooms() lists those of the Herald nodes;
//   - rooms named by a socket id (Herald keeps them in a map of sockets, not as hub rooms): the Node
//     node's to(id) / except(id) / in(id).fetchSockets() / socketsJoin / socketsLeave /
//     disconnectSockets reach Herald sockets of either node by their id, in "/" and "/custom" (an id
//     of another namespace matches nothing), and another socket in the room of an id is in it as in
//     Node's adapter; Herald's fetch-sockets and broadcast-to find Node sockets by their id;
//   - serverSideEmit (6): from the Node node (with and without ack) and from the emitter to Herald
//     (`server-side` [event, ...args] to its sockets, answer {from: "herald", event}); from Herald
//     (`server-side-emit`) to the Node node and the other Herald node, never to itself, with the
//     answers of serverCount - 1 nodes;
//   - broadcast with acks (7, 8, 9): the Node node's io.timeout().emit(ev, cb) gets every Herald
//     client's ack (binary too), to rooms and except rooms, and completes at once when no Herald
//     client matches (clientCount 0 is sent); Herald's `broadcast-with-ack` gets the acks of clients
//     of every node;
//   - every request is answered exactly once per node whatever its shard count (counted on the raw
//     response channel), and garbage on the request and response channels is dropped without harm
//     (sent after the Node node left: its adapter throws on some of it).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { io as connect } from 'socket.io-client';
import { createClient } from 'redis';
import { Emitter } from '@socket.io/redis-emitter';
import msgpack from 'notepack.io';
import { startHerald } from './lib/server.mjs';
import { startNodeNode } from './lib/sio-redis-node.mjs';
import { once, sleep, until } from './lib/wait.mjs';

const REDIS = process.env.HERALD_TEST_REDIS_URL;
const T = { timeout: 15000 };
const WAIT = 4000;

describe('cluster requests over Redis (allRooms, serverSideEmit, broadcast with acks)', { skip: !REDIS && 'HERALD_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server and sets it)' }, () => {
  const prefix = `herald-req-${crypto.randomBytes(4).toString('hex')}`;
  let h1, h2, node, redis, sub, emitter;
  const sockets = [];
  const responses = []; // every message on the response channel of "/": {raw, msg}

  async function client(url, nsp = '/') {
    const s = connect(url + nsp, { transports: ['websocket'], forceNew: true, reconnection: false });
    sockets.push(s);
    await once(s, 'connect');
    return s;
  }
  const healthOf = async (srv) => (await fetch(srv.url('/health'))).json();
  const answersTo = (requestId) => responses.filter((r) => r.msg?.requestId === requestId);

  before(async () => {
    const args = ['--redis-url', REDIS, '--redis-prefix', prefix, '--test-handlers', '--recovery-window', '0',
      '--shards', process.env.HERALD_SHARDS || '2'];
    [h1, h2] = await Promise.all([startHerald(args), startHerald(args)]);
    node = await startNodeNode({ redisUrl: REDIS, prefix });
    redis = createClient({ url: REDIS });
    await redis.connect();
    sub = redis.duplicate();
    await sub.connect();
    await sub.subscribe(`${prefix}-response#/#`, (raw) => {
      let msg = null;
      try { msg = raw[0] === 0x7b ? JSON.parse(raw.toString()) : msgpack.decode(raw); } catch { /* garbage */ }
      responses.push({ raw, msg });
    }, true);
    emitter = new Emitter(redis, { key: prefix });
    const end = Date.now() + 8000;
    for (;;) {
      const [a, b] = await Promise.all([healthOf(h1), healthOf(h2)]);
      if (a.cluster.nodes === 3 && b.cluster.nodes === 3 && a.cluster.connected && b.cluster.connected) break;
      if (Date.now() > end) throw new Error(`cluster not formed: ${JSON.stringify([a.cluster, b.cluster])}`);
      await sleep(50);
    }
  });

  after(async () => {
    for (const s of sockets) s.close();
    await sub?.quit().catch(() => {});
    await redis?.quit().catch(() => {});
    await node?.stop();
    for (const srv of [h1, h2]) {
      if (!srv) continue;
      const r = await srv.stop();
      assert.deepEqual(r, { code: 0, signal: null }, `herald did not exit cleanly:\n${srv.log.slice(-3000)}`);
    }
  });

  test('rooms named by a socket id, across nodes and namespaces', T, async () => {
    const tag = crypto.randomBytes(3).toString('hex');
    const a = await client(h1.url('')), b = await client(h2.url('')), n = await client(node.url);
    const ac = await client(h1.url(''), '/custom');
    const ids = async (op) => (await op.fetchSockets()).map((s) => s.id).sort();
    const got = new Map([[a, []], [b, []], [n, []]]);
    for (const [s, list] of got) s.onAny((event) => list.push(event));
    const arrived = (s, event) => until(() => got.get(s).includes(event), WAIT, `${event} on ${s.id}`);
    // the Node node finds Herald sockets by their id
    const [fa] = await node.io.in(a.id).fetchSockets();
    assert.equal(fa?.id, a.id);
    assert.ok(fa.rooms.has(a.id), 'its id among its rooms');
    assert.deepEqual(await ids(node.io.of('/custom').in(ac.id)), [ac.id]);
    assert.deepEqual(await ids(node.io.in(ac.id)), [], 'an id of /custom is no room of /');
    const others = await ids(node.io.except(a.id));
    assert.ok(!others.includes(a.id) && others.includes(b.id) && others.includes(n.id), 'except(id)');
    node.io.to(a.id).emit(`to-a-${tag}`);
    node.io.except(a.id).emit(`not-a-${tag}`);
    await Promise.all([arrived(a, `to-a-${tag}`), arrived(b, `not-a-${tag}`), arrived(n, `not-a-${tag}`)]);
    await sleep(100);
    assert.ok(!got.get(a).includes(`not-a-${tag}`) && !got.get(b).includes(`to-a-${tag}`), JSON.stringify([...got.values()]));
    // socketsJoin by id; another socket (on the other Herald node) in the room of a's id
    node.io.in(a.id).socketsJoin(`j-${tag}`);
    await until(async () => (await ids(node.io.in(`j-${tag}`))).length === 1, WAIT, 'a in the joined room');
    assert.deepEqual(await ids(node.io.in(`j-${tag}`)), [a.id]);
    assert.deepEqual(await b.timeout(WAIT).emitWithAck('join', a.id), { ok: true });
    assert.deepEqual(await ids(node.io.in(a.id)), [a.id, b.id].sort());
    // Herald asks: Node sockets by their id, and the room of a's id with both
    const byId = await b.timeout(WAIT).emitWithAck('fetch-sockets', { rooms: [n.id] });
    assert.deepEqual(byId.map((d) => [d.id, d.rooms.includes(n.id)]), [[n.id, true]]);
    assert.deepEqual((await b.timeout(WAIT).emitWithAck('fetch-sockets', { rooms: [a.id] })).map((d) => d.id).sort(), [a.id, b.id].sort());
    assert.deepEqual(await b.timeout(WAIT).emitWithAck('broadcast-to', { rooms: [n.id], event: `to-n-${tag}` }), { ok: true });
    await arrived(n, `to-n-${tag}`);
    // socketsLeave by id, then disconnectSockets of a's id: a goes, b (out of that room again) stays
    node.io.in(b.id).socketsLeave(a.id);
    await until(async () => (await ids(node.io.in(a.id))).length === 1, WAIT, 'b out of the room of a\'s id');
    const gone = once(a, 'disconnect');
    node.io.in(a.id).disconnectSockets();
    assert.equal((await gone)[0], 'io server disconnect');
    await sleep(100);
    assert.ok(b.connected && n.connected && ac.connected);
  });

  test('allRooms: a Herald client sees the rooms of every node, the Node node those of both Herald nodes', T, async () => {
    const tag = crypto.randomBytes(3).toString('hex');
    const a = await client(h1.url('')), b = await client(h2.url('')), n = await client(node.url);
    const c = await client(h2.url(''), '/custom');
    for (const [s, r] of [[a, `ra-${tag}`], [b, `rb-${tag}`], [n, `rn-${tag}`], [c, `rc-${tag}`]])
      assert.deepEqual(await s.timeout(WAIT).emitWithAck('join', r), { ok: true });
    const fromHerald = await a.timeout(WAIT).emitWithAck('all-rooms');
    for (const r of [`ra-${tag}`, `rb-${tag}`, `rn-${tag}`, a.id, b.id, n.id]) assert.ok(fromHerald.includes(r), `${r} in ${fromHerald}`);
    assert.ok(!fromHerald.includes(`rc-${tag}`), 'a room of /custom is not a room of /');
    assert.equal(new Set(fromHerald).size, fromHerald.length, 'each room once');
    const fromNode = await node.io.of('/').adapter.allRooms();
    for (const r of [`ra-${tag}`, `rb-${tag}`, `rn-${tag}`, a.id, b.id]) assert.ok(fromNode.has(r), `${r} in the Node node's allRooms`);
    const custom = await node.io.of('/custom').adapter.allRooms();
    assert.ok(custom.has(`rc-${tag}`) && !custom.has(`ra-${tag}`));
    assert.ok((await c.timeout(WAIT).emitWithAck('all-rooms')).includes(`rc-${tag}`));
  });

  test('serverSideEmit from the Node node and the emitter reaches Herald nodes, answered once per Herald node', T, async () => {
    const a = await client(h1.url('')), b = await client(h2.url(''));
    const got = [once(a, 'server-side'), once(b, 'server-side')];
    node.io.serverSideEmit('plain', 1, { two: [2] });
    for (const args of await Promise.all(got)) assert.deepEqual(args, ['plain', 1, { two: [2] }]);
    const answers = await node.io.serverSideEmitWithAck('asking', 'x');
    assert.deepEqual(answers, [{ from: 'herald', event: 'asking' }, { from: 'herald', event: 'asking' }]);
    const heard = [a, b].map((s) => { const seen = []; s.on('server-side', (...args) => seen.push(args)); return seen; });
    emitter.serverSideEmit('from-emitter', 'e');
    const end = Date.now() + WAIT;
    while (heard.some((h) => !h.some((e) => e[0] === 'from-emitter')) && Date.now() < end) await sleep(10);
    for (const h of heard) assert.deepEqual(h.filter((e) => e[0] === 'from-emitter'), [['from-emitter', 'e']]);
  });

  test('serverSideEmit from Herald reaches the Node node and the other Herald node, not itself, with their answers', T, async () => {
    const a = await client(h1.url('')), a2 = await client(h1.url('')), b = await client(h2.url(''));
    const heard = [];
    const listener = (x, cb) => { heard.push(x); cb?.({ from: 'node', x }); };
    node.io.of('/').on('herald-hi', listener);
    try {
      const seenByA = [];
      a2.on('server-side', (...args) => seenByA.push(args));
      const atB = once(b, 'server-side');
      const res = await a.timeout(WAIT * 2).emitWithAck('server-side-emit', 'herald-hi', 5);
      assert.equal(res.complete, true);
      assert.deepEqual(res.answers.map((x) => JSON.stringify(x)).sort(),
        [{ from: 'herald', event: 'herald-hi' }, { from: 'node', x: 5 }].map((x) => JSON.stringify(x)).sort());
      assert.deepEqual(await atB, ['herald-hi', 5]);
      a.emit('server-side-emit', 'herald-hi', 6); // no ack wanted
      const end = Date.now() + WAIT;
      while (heard.length < 2 && Date.now() < end) await sleep(10);
      assert.deepEqual(heard, [5, 6]);
      assert.deepEqual(seenByA, [], 'never delivered to the sending node');
    } finally {
      node.io.of('/').off('herald-hi', listener);
    }
  });

  test("the Node node's io.timeout().emit(ev, cb) gets every Herald client's ack (binary too), to rooms and except rooms", T, async () => {
    const tag = crypto.randomBytes(3).toString('hex');
    for (const s of sockets.splice(0)) s.close(); // every socket of the namespace must answer: only these
    await sleep(200);
    const hs = [await client(h1.url('')), await client(h1.url('')), await client(h1.url('')), await client(h2.url(''))];
    hs.forEach((s, i) => s.on('ask', (x, cb) => cb(i === 3 ? Buffer.from([i, 255]) : { i, x })));
    const n = await client(node.url);
    n.on('ask', (x, cb) => cb({ node: true, x }));
    const all = await node.io.timeout(3000).emitWithAck('ask', 'q');
    const plain = all.filter((r) => !Buffer.isBuffer(r)).map((r) => JSON.stringify(r)).sort();
    assert.deepEqual(plain, [{ i: 0, x: 'q' }, { i: 1, x: 'q' }, { i: 2, x: 'q' }, { node: true, x: 'q' }].map((r) => JSON.stringify(r)).sort());
    const bins = all.filter((r) => Buffer.isBuffer(r));
    assert.equal(bins.length, 1);
    assert.deepEqual([...bins[0]], [3, 255]);
    for (const s of [hs[0], hs[3]]) assert.deepEqual(await s.timeout(WAIT).emitWithAck('join', `ack-${tag}`), { ok: true });
    assert.deepEqual(await hs[3].timeout(WAIT).emitWithAck('join', `vip-${tag}`), { ok: true });
    const some = await node.io.to(`ack-${tag}`).except(`vip-${tag}`).timeout(3000).emitWithAck('ask', 'r');
    assert.deepEqual(some, [{ i: 0, x: 'r' }]);
    const started = Date.now(); // nobody in the room: every node answers clientCount 0 at once
    assert.deepEqual(await node.io.to(`nobody-${tag}`).timeout(3000).emitWithAck('ask', 's'), []);
    assert.ok(Date.now() - started < 1500, `completed in ${Date.now() - started} ms, not at the timeout`);
  });

  test("Herald's broadcast-with-ack gets the acks of clients of every node", T, async () => {
    const tag = crypto.randomBytes(3).toString('hex');
    const asker = await client(h1.url(''));
    const others = [await client(h1.url('')), await client(h2.url('')), await client(node.url)];
    others.forEach((s, i) => s.on('ask', (x, cb) => cb({ i, x })));
    for (const s of others) assert.deepEqual(await s.timeout(WAIT).emitWithAck('join', `bw-${tag}`), { ok: true });
    const res = await asker.timeout(WAIT).emitWithAck('broadcast-with-ack', { rooms: [`bw-${tag}`], event: 'ask', data: 'hi', timeout: 3000 });
    assert.equal(res.complete, true);
    assert.deepEqual(res.responses.map((r) => r.i).sort(), [0, 1, 2]);
    assert.ok(res.responses.every((r) => r.x === 'hi'));
    const none = await asker.timeout(WAIT).emitWithAck('broadcast-with-ack', { rooms: [`bw-${tag}`], except: [`bw-${tag}`], event: 'ask', timeout: 3000 });
    assert.deepEqual(none, { complete: true, responses: [] });
    others[2].off('ask'); // the Node client stops answering: the timeout ends it, with what came
    others[2].on('ask', () => {});
    const partial = await asker.timeout(WAIT).emitWithAck('broadcast-with-ack', { rooms: [`bw-${tag}`], event: 'ask', data: 1, timeout: 500 });
    assert.equal(partial.complete, false);
    assert.deepEqual(partial.responses.map((r) => r.i).sort(), [0, 1]);
  });

  test('every request is answered exactly once per node (raw requests on the request channel)', T, async () => {
    await client(h1.url('')); await client(h2.url('')); await client(node.url);
    const ch = `${prefix}-request#/#`;
    const ids = { 0: 'raw0', 1: 'raw1', 5: 'raw5', 6: 'raw6', 7: 'raw7' };
    for (const k of Object.keys(ids)) ids[k] += crypto.randomBytes(3).toString('hex');
    await redis.publish(ch, JSON.stringify({ uid: 'tester', requestId: ids[0], type: 0, rooms: [] }));
    await redis.publish(ch, JSON.stringify({ uid: 'tester', requestId: ids[1], type: 1 }));
    await redis.publish(ch, JSON.stringify({ uid: 'tester', requestId: ids[5], type: 5, opts: { rooms: [], except: [] } }));
    await redis.publish(ch, JSON.stringify({ uid: 'tester', requestId: ids[6], type: 6, data: ['nobody-listens-on-node'] }));
    await redis.publish(ch, msgpack.encode({ uid: 'tester', requestId: ids[7], type: 7, packet: { type: 2, data: ['unanswered'], nsp: '/' }, opts: { rooms: ['none'], except: [], flags: { timeout: 100 } } }));
    await sleep(700);
    assert.equal(answersTo(ids[0]).length, 3, 'SOCKETS: Node + 2 Herald');
    assert.equal(answersTo(ids[1]).length, 3, 'ALL_ROOMS');
    assert.equal(answersTo(ids[5]).length, 3, 'REMOTE_FETCH');
    assert.equal(answersTo(ids[6]).length, 2, 'SERVER_SIDE_EMIT: the Herald nodes (the Node node has no listener)');
    assert.deepEqual(answersTo(ids[7]).map((r) => [r.msg.type, r.msg.clientCount]), [[8, 0], [8, 0], [8, 0]]);
  });

  test('garbage on the request and response channels is dropped; the nodes keep serving', T, async () => {
    // last: the Node node leaves first, its adapter throws (unhandled rejections) on requests without opts
    await node.stop();
    node = null;
    for (const end = Date.now() + 5000; Date.now() < end; await sleep(50)) // nodes polled every 2 s
      if ((await healthOf(h1)).cluster.nodes === 2 && (await healthOf(h2)).cluster.nodes === 2) break;
    const chs = [`${prefix}-request#/#`, `${prefix}-response#/#`, `${prefix}-request#/custom#`];
    const junk = [
      Buffer.from([0xc1]), Buffer.from([0xde, 0xff, 0xff]), Buffer.from('{'), Buffer.from('{"type":7}'),
      Buffer.from('{"uid":"x","type":5}'), Buffer.from('{"uid":"x","type":5,"requestId":"g","opts":{"rooms":"nope"}}'),
      Buffer.from('{"uid":"x","type":6,"data":"not an array"}'), Buffer.from('{"uid":"x","type":6,"requestId":7,"data":[1]}'),
      Buffer.from('{"uid":"x","type":2,"opts":{"rooms":[1,2]},"rooms":[{}]}'), Buffer.from('{"type":99,"requestId":"g"}'),
      Buffer.from('{"type":"0","requestId":"g"}'), Buffer.from('[]'), Buffer.from('null'), Buffer.alloc(0),
      msgpack.encode({ uid: 'x', type: 7, requestId: 'g' }), msgpack.encode({ uid: 'x', type: 7, requestId: 'g', packet: { data: 'no' }, opts: {} }),
      msgpack.encode({ uid: 'x', type: 7, requestId: 'g', packet: { type: 2, data: ['ev', Buffer.from([1])] }, opts: { rooms: [1] } }),
      msgpack.encode({ uid: 'x', type: 7, requestId: 'g'.repeat(100), packet: { type: 2, data: ['ev'] }, opts: {} }),
      msgpack.encode({ uid: 'x', type: 7, requestId: 'g', packet: { type: 2, data: ['ev'] }, opts: { flags: { timeout: 1e300 } } }),
      msgpack.encode({ uid: 'x', type: 7, requestId: 'g', packet: { type: 2, data: ['ev'] }, opts: { flags: { timeout: -1e300 } } }),
      msgpack.encode({ uid: 'x', type: 0, requestId: 'g', rooms: [Buffer.from([1])] }), msgpack.encode([1, 2, 3]),
      msgpack.encode({ type: 9, requestId: 'g', packet: Buffer.alloc(10) }), Buffer.from([0x81, 0xa4, 0x74, 0x79, 0x70, 0x65]),
      Buffer.from(JSON.stringify({ uid: 'x', type: 0, requestId: 'g', rooms: Array.from({ length: 500 }, (_, i) => `r${i}`) })),
      Buffer.from(JSON.stringify({ uid: 'x', type: 3, opts: { rooms: ['a'.repeat(5000)] }, rooms: ['b'] })),
      crypto.randomBytes(64), crypto.randomBytes(3000),
    ];
    for (const ch of chs) for (const j of junk) await redis.publish(ch, j);
    await sleep(300);
    for (const srv of [h1, h2]) {
      const h = await healthOf(srv);
      assert.equal(h.cluster.status, 'ok');
    }
    const a = await client(h1.url('')), b = await client(h2.url(''));
    const got = once(b, 'after-junk');
    await a.timeout(WAIT).emitWithAck('broadcast-to', { event: 'after-junk', data: 1 });
    assert.deepEqual(await got, [1]);
    assert.ok((await a.timeout(WAIT).emitWithAck('all-rooms')).includes(b.id));
  });
});
