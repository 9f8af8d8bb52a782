// Rooms named by a socket's id ("own rooms"), Herald against Node's socket.io 4.7.2 on one node: the
// same script of socket.io-client calls runs against `herald serve --test-handlers` (its own room is
// an entry in the namespace's map of sockets, not a hub room: src/proto/sio.c) and against a Node
// server with the same handlers (in-memory adapter), and both must give the same observations:
//   - io.to(id) / except(id) / to(id1, id2).except(id2) reach exactly the sockets Node reaches, in
//     "/" and "/custom" (an id of another namespace reaches nobody);
//   - fetchSockets by id (in, except), socket.rooms (its id among them), socketsJoin / socketsLeave
//     / disconnectSockets of a socket-id room, allRooms;
//   - another socket that joins a room named by an id is in it as in Node's adapter: reached,
//     excluded and fetched with the owner, kept after the owner leaves the room or disconnects;
//   - a socket that leaves its own room (socketsLeave(id)) is no longer reached by its id until it
//     joins it again.
// And, Herald only (recovery on): what is sent to a socket's id while it is away is replayed when it
// recovers with the same id, and its id room works again afterwards; a socket that had left its own
// room is in it again once recovered (socket.io's _onconnect joins the id on every connect).
// HERALD_SHARDS=2 puts the sockets on both shards.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Server } from 'socket.io';
import { io } from 'socket.io-client';
import { startHerald } from './lib/server.mjs';
import { once, sleep, until } from './lib/wait.mjs';

const WAIT = 5000;
const T = { timeout: 30000 };

/** A Node socket.io server with the handlers of Herald's --test-handlers this file uses. */
async function startNodeServer() {
  const httpServer = http.createServer();
  const server = new Server(httpServer);
  for (const nsp of [server.of('/'), server.of('/custom')]) {
    const target = (opt = {}) => {
      let op = nsp;
      for (const r of opt.rooms ?? []) op = op.in(r);
      for (const r of opt.except ?? []) op = op.except(r);
      return op;
    };
    nsp.on('connection', (socket) => {
      socket.on('join', (room, ack) => { socket.join(room); ack({ ok: true }); });
      socket.on('sockets-join', (opt, ack) => { target(opt).socketsJoin(opt.room); ack({ ok: true }); });
      socket.on('sockets-leave', (opt, ack) => { target(opt).socketsLeave(opt.room); ack({ ok: true }); });
      socket.on('disconnect-sockets', (opt, ack) => { target(opt).disconnectSockets(); ack({ ok: true }); });
      socket.on('fetch-sockets', async (opt, ack) => {
        ack((await target(opt).fetchSockets()).map((s) => ({ id: s.id, nsp: nsp.name, rooms: [...s.rooms] })));
      });
      socket.on('broadcast-to', (opt, ack) => { target(opt).emit(opt.event, opt.data ?? null); ack?.({ ok: true }); });
      socket.on('all-rooms', (ack) => ack([...nsp.adapter.rooms.keys()]));
    });
  }
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return {
    url: (path) => `http://127.0.0.1:${httpServer.address().port}${path}`,
    async stop() { server.close(); await new Promise((resolve) => httpServer.close(resolve)); },
  };
}

/** Runs the script against a server; returns its observations with socket ids replaced by names. */
async function play(srv) {
  const clients = {};
  const names = new Map(); // socket id -> name
  const log = [];
  const connect = async (name, nsp = '/') => {
    const s = io(srv.url(nsp), { forceNew: true, reconnection: false, transports: ['websocket'] });
    s.got = [];
    s.onAny((event) => s.got.push(event));
    await once(s, 'connect', WAIT);
    names.set(s.id, name);
    clients[name] = s;
    return s;
  };
  const named = (x) => names.get(x) ?? x;
  const ask = (s, event, arg) => (arg === undefined ? s.timeout(WAIT).emitWithAck(event) : s.timeout(WAIT).emitWithAck(event, arg));
  const ok = async (s, event, arg) => assert.deepEqual(await ask(s, event, arg), { ok: true }, event);
  let n = 0;
  /** The names of the sockets a broadcast-to {rooms, except} from `via` reaches: a second broadcast to
   * the whole namespace follows, and once every connected socket there has it, the first is in too. */
  const reached = async (via, opt) => {
    const event = `ev${++n}`, sync = `sync${n}`;
    await ok(via, 'broadcast-to', { ...opt, event, data: n });
    await ok(via, 'broadcast-to', { event: sync });
    const live = Object.values(clients).filter((s) => s.connected && s.nsp === via.nsp);
    await until(() => live.every((s) => s.got.includes(sync)), WAIT, `${sync} everywhere`);
    return Object.keys(clients).filter((k) => clients[k].got.includes(event)).sort();
  };
  /** fetch-sockets from `via`: "name:room,room" per socket, sorted. */
  const fetched = async (via, opt) => (await ask(via, 'fetch-sockets', opt))
    .map((d) => `${named(d.id)}:${d.rooms.map(named).sort().join(',')}`).sort();
  const allRooms = async (via) => (await ask(via, 'all-rooms')).map(named).sort();
  const step = (what, value) => log.push([what, value]);
  try {
    const a = await connect('a'), b = await connect('b'), c = await connect('c');
    const x = await connect('x', '/custom');
    step('to a', await reached(c, { rooms: [a.id] }));
    step('except a', await reached(c, { except: [a.id] }));
    step('to a and b except b', await reached(c, { rooms: [a.id, b.id], except: [b.id] }));
    step('to x from /', await reached(c, { rooms: [x.id] }));
    step('to x in /custom', await reached(x, { rooms: [x.id] }));
    step('except x in /custom', await reached(x, { except: [x.id] }));
    step('fetch a', await fetched(c, { rooms: [a.id] }));
    step('fetch all', await fetched(c, {}));
    step('fetch except a', await fetched(c, { except: [a.id] }));
    step('fetch x in /custom', await fetched(x, { rooms: [x.id] }));
    step('fetch x from /', await fetched(c, { rooms: [x.id] }));
    step('all rooms', await allRooms(c));
    step('all rooms /custom', await allRooms(x));
    await ok(c, 'sockets-join', { rooms: [a.id], room: 'r1' });
    step('a joined r1 by its id', await fetched(c, { rooms: ['r1'] }));
    await ok(c, 'sockets-leave', { rooms: [a.id], room: 'r1' });
    step('a left r1 by its id', await fetched(c, { rooms: ['r1'] }));

    await ok(b, 'join', a.id); // b in the room named by a's id
    step('to a, b in it', await reached(c, { rooms: [a.id] }));
    step('except a, b in it', await reached(c, { except: [a.id] }));
    step('fetch a, b in it', await fetched(c, { rooms: [a.id] }));
    step('all rooms, b in a', await allRooms(c));
    await ok(a, 'join', a.id); // already in: nothing changes
    step('fetch a after joining its own room again', await fetched(c, { rooms: [a.id] }));
    await ok(c, 'sockets-leave', { rooms: [b.id], room: a.id }); // b leaves it
    step('to a, b left it', await reached(c, { rooms: [a.id] }));
    await ok(c, 'sockets-leave', { rooms: [a.id], room: a.id }); // a leaves its own room
    step('to a, a left it', await reached(c, { rooms: [a.id] }));
    step('except a, a left it', await reached(c, { except: [a.id] }));
    step('fetch all, a left its room', await fetched(c, {}));
    step('all rooms, a left its room', await allRooms(c));
    await ok(a, 'join', a.id); // and joins it again
    step('to a, back in it', await reached(c, { rooms: [a.id] }));

    await ok(b, 'join', a.id);
    const aId = a.id; // the client forgets it once closed
    a.close(); // the owner goes; b stays in the room of its id
    await until(async () => !(await fetched(c, {})).some((d) => d.startsWith('a:')), WAIT, 'a gone on the server');
    step('to a, a gone', await reached(c, { rooms: [aId] }));
    step('fetch a, a gone', await fetched(c, { rooms: [aId] }));
    step('all rooms, a gone', await allRooms(c));

    const d = await connect('d');
    await ok(c, 'sockets-join', { rooms: [d.id], room: 'r2' });
    const gone = once(d, 'disconnect', WAIT);
    await ok(c, 'disconnect-sockets', { rooms: [d.id] }); // (its id read before it goes)
    step('d disconnected by its id', (await gone)[0]);
    step('fetch all, d gone', await fetched(c, {}));
    step('fetch r2, d gone', await fetched(c, { rooms: ['r2'] }));
    step('still connected', Object.keys(clients).filter((k) => clients[k].connected).sort());
    return log;
  } finally {
    for (const s of Object.values(clients)) s.close();
  }
}

describe('rooms named by a socket id, Herald and Node socket.io side by side', T, () => {
  test('the same script gives the same observations', T, async () => {
    const node = await startNodeServer();
    let expected;
    try { expected = await play(node); } finally { await node.stop(); }
    const srv = await startHerald(['--test-handlers', '--recovery-window', '0']);
    let got;
    try { got = await play(srv); } finally { await srv.stop(); }
    // a few of Node's answers spelled out, so the script itself is checked
    const of = (log, what) => log.find(([w]) => w === what)?.[1];
    assert.deepEqual(of(expected, 'to a'), ['a']);
    assert.deepEqual(of(expected, 'except a, b in it'), ['c']);
    assert.deepEqual(of(expected, 'to a, a gone'), ['b']);
    assert.deepEqual(of(expected, 'to a, a left it'), []);
    for (let i = 0; i < expected.length; i++) assert.deepEqual(got[i], expected[i], `step ${i}: ${expected[i][0]}`);
    assert.equal(got.length, expected.length);
  });
});

describe('connection state recovery and the room of its id (Herald)', T, () => {
  test('what is sent to its id while it is away is replayed; its id room works after', T, async () => {
    const srv = await startHerald(['--test-handlers']);
    const open = [];
    try {
      const a = io(srv.url('/'), { forceNew: true, transports: ['websocket'], reconnectionDelay: 300,
        reconnectionDelayMax: 300, randomizationFactor: 0 });
      const b = io(srv.url('/'), { forceNew: true, transports: ['websocket'], reconnection: false });
      open.push(a, b);
      await Promise.all([once(a, 'connect', WAIT), once(b, 'connect', WAIT)]);
      const got = [];
      a.on('ev', (data) => got.push(data));
      const id = a.id;
      assert.deepEqual(await b.timeout(WAIT).emitWithAck('broadcast-to', { rooms: [id], event: 'ev', data: 'before' }), { ok: true });
      await until(() => got.length === 1, WAIT, 'the first emit to its id');
      const down = once(a, 'disconnect', WAIT);
      a.io.engine.transport.ws._socket.destroy(); // abrupt: recoverable
      await down;
      for (const data of ['away-1', 'away-2'])
        assert.deepEqual(await b.timeout(WAIT).emitWithAck('broadcast-to', { rooms: [id], event: 'ev', data }), { ok: true });
      assert.deepEqual(await b.timeout(WAIT).emitWithAck('broadcast-to', { except: [id], event: 'ev', data: 'not-for-a' }), { ok: true });
      await once(a, 'connect', WAIT);
      assert.equal(a.recovered, true);
      assert.equal(a.id, id);
      await until(() => got.length >= 3, WAIT, 'the emits to its id, replayed');
      assert.deepEqual(await b.timeout(WAIT).emitWithAck('broadcast-to', { rooms: [id], event: 'ev', data: 'after' }), { ok: true });
      await until(() => got.length >= 4, WAIT, 'an emit to its id after the recovery');
      await sleep(100);
      assert.deepEqual(got, ['before', 'away-1', 'away-2', 'after']);
      const list = await b.timeout(WAIT).emitWithAck('fetch-sockets', { rooms: [id] });
      assert.deepEqual(list.map((s) => [s.id, s.rooms]), [[id, [id]]]);
      // it leaves its own room, drops and recovers: in it again
      assert.deepEqual(await b.timeout(WAIT).emitWithAck('sockets-leave', { rooms: [id], room: id }), { ok: true });
      assert.deepEqual(await b.timeout(WAIT).emitWithAck('fetch-sockets', { rooms: [id] }), []);
      const down2 = once(a, 'disconnect', WAIT);
      a.io.engine.transport.ws._socket.destroy();
      await down2;
      await once(a, 'connect', WAIT);
      assert.equal(a.recovered, true);
      assert.equal(a.id, id);
      const again = await b.timeout(WAIT).emitWithAck('fetch-sockets', { rooms: [id] });
      assert.deepEqual(again.map((s) => [s.id, s.rooms]), [[id, [id]]]);
    } finally {
      for (const s of open) s.close();
      await srv.stop();
    }
  });
});
