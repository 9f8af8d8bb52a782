// Socket.IO v4 interop with the stock socket.io-client 4.7.2 against `herald serve --test-handlers`:
// transports (polling, WebSocket, upgrade), the CONNECT payload, acks, binary, namespaces (one engine
// connection, several sockets), broadcast, JWT authentication, reconnection, connection state
// recovery, payload limits, heartbeat and the connect timeout.
//
// The test handlers (src/proto/sio_test_handlers.c), on "/" and "/custom":
//   connect              -> emits "auth" with the CONNECT payload
//   "message" ...args    -> emits "message-back" ...args (binary kept)
//   "message-with-ack"   -> acks with all the arguments
//   "echo" x             -> acks with x
//   "broadcast" x        -> emits "msg" x to every socket of the namespace
// No handler emits to the client with an ack, so server->client acks are not testable here.
//
// With connection state recovery on (herald's default --recovery-window), every event the server
// stores for recovery carries its offset as an extra last argument, as with Node's socket.io; the
// helper `stripOffset` removes it where a test compares payloads.
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { io, Manager } from 'socket.io-client';
import { startHerald } from './lib/server.mjs';

const WAIT = 5000;
const SUITE = { timeout: 30000 }; // a suite never hangs, even if the server dies
const JWT_SECRET = 'interop-test-secret-0123456789abcdef';

// ---- helpers ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every socket/manager a test opens, closed after each test. */
const open = new Set();
function track(x) { open.add(x); return x; }
afterEach(() => {
  for (const x of open) { try { x.close?.(); } catch { /* already closed */ } }
  open.clear();
});

/** A socket.io-client socket on its own Manager, no reconnection unless asked. */
function client(srv, nsp = '/', opts = {}) {
  return track(io(srv.url(nsp), { forceNew: true, reconnection: false, timeout: WAIT, ...opts }));
}

/** Resolves with the arguments of the next `event` (rejects after ms). */
function waitFor(emitter, event, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { emitter.off(event, on); reject(new Error(`timed out waiting for '${event}'`)); }, ms);
    const on = (...args) => { clearTimeout(t); emitter.off(event, on); resolve(args); };
    emitter.on(event, on);
  });
}

/** Resolves once the socket is connected; rejects with the connect_error. */
function connected(socket, ms = WAIT) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { cleanup(); reject(new Error('timed out waiting for connect')); }, ms);
    const ok = () => { cleanup(); resolve(socket); };
    const ko = (err) => { cleanup(); reject(err); };
    const cleanup = () => { clearTimeout(t); socket.off('connect', ok); socket.off('connect_error', ko); };
    socket.on('connect', ok);
    socket.on('connect_error', ko);
  });
}

/** Resolves with the connect_error (fails if the socket connects). */
function connectError(socket, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { cleanup(); reject(new Error('timed out waiting for connect_error')); }, ms);
    const ok = () => { cleanup(); reject(new Error('connected, expected a connect_error')); };
    const ko = (err) => { cleanup(); resolve(err); };
    const cleanup = () => { clearTimeout(t); socket.off('connect', ok); socket.off('connect_error', ko); };
    socket.on('connect', ok);
    socket.on('connect_error', ko);
  });
}

/** Emits with an ack callback; resolves with all the ack's arguments (fails after ms). */
function ackAll(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ack for '${event}'`)), WAIT);
    socket.emit(event, ...args, (...got) => { clearTimeout(t); resolve(got); });
  });
}

/** Polls cond() until true (fails after ms). */
async function until(cond, ms = WAIT, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Drops the recovery offset (a trailing string) the server appends when recovery is on. */
function stripOffset(socket, args) {
  if (!socket._pid) return args;
  assert.equal(typeof args.at(-1), 'string', `expected a recovery offset as last argument: ${JSON.stringify(args)}`);
  return args.slice(0, -1);
}

/** Collects the (offset-stripped) arguments of every `event` on socket. */
function collect(socket, event) {
  const got = [];
  socket.on(event, (...args) => got.push(stripOffset(socket, args)));
  return got;
}

function b64url(x) { return Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url'); }
/** An HS256 JWT. */
function mintJwt(payload, secret = JWT_SECRET, header = { alg: 'HS256', typ: 'JWT' }) {
  const body = `${b64url(header)}.${b64url(payload)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}
const now = () => Math.floor(Date.now() / 1000);

/** A raw Engine.IO v4 WebSocket (no Socket.IO client): resolves after the open packet. */
function rawEngine(srv) {
  return new Promise((resolve, reject) => {
    const ws = track(new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`));
    ws.received = [];
    ws.closed = new Promise((r) => ws.on('close', (code) => r({ code, at: Date.now() })));
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? data : data.toString();
      if (!ws.opened && typeof text === 'string' && text[0] === '0') {
        ws.opened = Date.now();
        ws.handshake = JSON.parse(text.slice(1));
        resolve(ws);
      } else ws.received.push(text);
    });
    ws.on('error', reject);
  });
}

// ---- the conformance server (default options) ----

describe('socket.io-client 4.7.2, herald --test-handlers', SUITE, () => {
  let srv;
  before(async () => { srv = await startHerald(['--test-handlers']); });
  after(async () => { await srv?.stop(); });

  test('polling only: connects, stays on polling, echo ack', async () => {
    const s = client(srv, '/', { transports: ['polling'] });
    await connected(s);
    assert.equal(s.io.engine.transport.name, 'polling');
    assert.equal(await s.timeout(WAIT).emitWithAck('echo', 'over polling'), 'over polling');
    await sleep(100);
    assert.equal(s.io.engine.transport.name, 'polling', 'no upgrade without the websocket transport');
  });

  test('websocket only (as a mini program connects): first transport is websocket', async () => {
    const s = client(srv, '/', { transports: ['websocket'] });
    assert.equal(s.io.engine.transport.name, 'websocket');
    await connected(s);
    assert.equal(s.io.engine.transport.name, 'websocket');
    assert.equal(await s.timeout(WAIT).emitWithAck('echo', 'over websocket'), 'over websocket');
  });

  /** Emits "message" 0..49 in three bursts (20 from start(), 10 on 'upgrading', 20 on 'upgrade') and
   * checks that the 50 "message-back" events come back once each, in order, and the upgrade happened. */
  async function streamAroundUpgrade(s, start) {
    const engine = s.io.engine;
    const got = [];
    s.on('message-back', (...args) => got.push(stripOffset(s, args)));
    let sent = 0;
    const send = (n) => { for (let k = 0; k < n; k++) s.emit('message', sent++); };
    const phases = [];
    engine.on('upgrading', () => { phases.push('upgrading'); send(10); });
    engine.on('upgrade', () => { phases.push('upgrade'); send(20); });
    await start(() => send(20));
    await until(() => got.length >= 50 && phases.includes('upgrade'), WAIT, '50 message-back events and the upgrade');
    await sleep(100); // anything duplicated would arrive now
    assert.deepEqual(phases, ['upgrading', 'upgrade']);
    assert.equal(engine.transport.name, 'websocket');
    assert.equal(sent, 50);
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => [i]), 'each message once, in order');
    assert.equal(await s.timeout(WAIT).emitWithAck('echo', 'after upgrade'), 'after upgrade');
  }

  test('upgrade (default transports): polling -> websocket, 50 numbered messages, none lost or duplicated', async () => {
    const s = client(srv);
    assert.equal(s.io.engine.transport.name, 'polling');
    // the first 20 are emitted before the CONNECT (buffered by the client), the rest on the upgrade events
    await streamAroundUpgrade(s, async (send) => { send(); await connected(s); });
  });

  test('upgrade in the middle of a message stream: messages in flight over polling, buffered during the probe', async () => {
    // upgrade:false keeps the client from probing at open; the test starts the probe itself once 20
    // messages are on their way over polling (engine.probe is engine.io-client's own upgrade step)
    const s = client(srv, '/', { upgrade: false });
    await connected(s);
    assert.equal(s.io.engine.transport.name, 'polling');
    await streamAroundUpgrade(s, async (send) => { send(); s.io.engine.probe('websocket'); });
  });

  test('"auth" event carries the CONNECT payload', async () => {
    const auth = { user: 'u1', n: 42, nested: { list: [1, 'two', null], ok: true }, text: 'é中😀' };
    const s = client(srv, '/', { auth });
    const got = waitFor(s, 'auth');
    await connected(s);
    assert.deepEqual(stripOffset(s, await got), [auth]);
    const bare = client(srv, '/', { transports: ['websocket'] });
    const got2 = waitFor(bare, 'auth');
    await connected(bare);
    assert.deepEqual(stripOffset(bare, await got2), [{}], 'no CONNECT payload -> {}');
    // test mode echoes whatever comes, a token that is no JWT included (authentication is off here)
    const token = { token: 'not-a-jwt', n: 1 };
    const withToken = client(srv, '/', { auth: token, transports: ['websocket'] });
    const got3 = waitFor(withToken, 'auth');
    await connected(withToken);
    assert.deepEqual(stripOffset(withToken, await got3), [token]);
  });

  test('echo ack returns the first argument unchanged (JSON values, unicode)', async () => {
    const s = client(srv, '/', { transports: ['websocket'] });
    await connected(s);
    const values = ['', 'text', 0, -1.5, 9007199254740991, true, false, null, [], {}, [1, [2, [3]]],
      { a: { b: { c: 'd' } }, 'k e y': 'v' }, 'é ж € 中 😀 \u2028 \u0000 "quoted" \\ /', 'x'.repeat(100000)];
    for (const v of values) assert.deepEqual(await s.timeout(WAIT).emitWithAck('echo', v), v, JSON.stringify(v).slice(0, 40));
    assert.deepEqual(await s.timeout(WAIT).emitWithAck('echo', 'first', 'second'), 'first', 'only the first argument');
  });

  test('message-with-ack acks with every argument; message-back emits them back', async () => {
    for (const transports of [['polling'], ['websocket']]) {
      const s = client(srv, '/', { transports });
      await connected(s);
      const args = [1, 'two', { three: [3] }, [4, { five: 5 }], null, true];
      const acked = await ackAll(s, 'message-with-ack', ...args);
      assert.deepEqual(acked, args, `ack over ${transports}`);
      const back = waitFor(s, 'message-back');
      s.emit('message', ...args);
      assert.deepEqual(stripOffset(s, await back), args, `message-back over ${transports}`);
      s.close();
    }
  });

  test('emitWithAck on an event the server never acks times out; the socket stays usable', async () => {
    const s = client(srv, '/', { transports: ['websocket'] });
    await connected(s);
    const t0 = Date.now();
    await assert.rejects(s.timeout(200).emitWithAck('unknown-event', 1), /operation has timed out/);
    assert.ok(Date.now() - t0 >= 190);
    await assert.rejects(s.timeout(200).emitWithAck('message', 'no ack from message'), /operation has timed out/);
    assert.ok(s.connected);
    assert.equal(await s.timeout(WAIT).emitWithAck('echo', 'still here'), 'still here');
  });

  test('polling: 200 messages batched in both directions keep their order', async () => {
    const s = client(srv, '/', { transports: ['polling'] });
    await connected(s);
    const got = collect(s, 'message-back');
    for (let i = 0; i < 200; i++) s.emit('message', i, `m${i}`);
    await until(() => got.length >= 200, WAIT, '200 message-back events');
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => [i, `m${i}`]));
  });

  // server -> client acks (emit with ack and timeout): tests/interop/socketio_server_ack.test.mjs

  for (const transports of [['polling'], ['websocket']]) {
    describe(`binary over ${transports[0]}`, () => {
      const blob = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
      const nested = () => ({
        id: 7,
        file: { name: 'a.bin', data: blob(300, 1), parts: [blob(1, 2), blob(0, 3), { deep: blob(70000, 4) }] },
        list: [blob(16, 5), 'text', 3],
      });

      test('message-back: nested Buffers, several attachments, mixed with JSON', async () => {
        const s = client(srv, '/', { transports });
        await connected(s);
        const args = [nested(), blob(5, 6), 'tail', [blob(2, 7), null]];
        const back = waitFor(s, 'message-back');
        s.emit('message', ...args);
        const got = await back;
        assert.deepEqual(got.slice(0, args.length), args);
        assert.ok(Buffer.isBuffer(got[1]) && got[1].length === 5);
      });

      test('message-with-ack: binary in the ack', async () => {
        const s = client(srv, '/', { transports });
        await connected(s);
        const args = [blob(10, 8), { x: [blob(3, 9), blob(4, 10)] }, 42];
        const acked = await ackAll(s, 'message-with-ack', ...args);
        assert.deepEqual(acked, args);
      });

      test('echo with a Buffer, then text again (attachment state is reset)', async () => {
        const s = client(srv, '/', { transports });
        await connected(s);
        assert.deepEqual(await s.timeout(WAIT).emitWithAck('echo', blob(1000, 11)), blob(1000, 11));
        assert.deepEqual(await s.timeout(WAIT).emitWithAck('echo', { b: Buffer.alloc(0) }), { b: Buffer.alloc(0) });
        assert.equal(await s.timeout(WAIT).emitWithAck('echo', 'plain'), 'plain');
        const back = waitFor(s, 'message-back');
        s.emit('message', 'plain again');
        assert.deepEqual(stripOffset(s, await back), ['plain again']);
      });
    });
  }

  describe('namespaces', () => {
    test('/custom connects, gets its own "auth" event and echoes', async () => {
      const s = client(srv, '/custom', { auth: { where: 'custom' } });
      const auth = waitFor(s, 'auth');
      await connected(s);
      assert.deepEqual(stripOffset(s, await auth), [{ where: 'custom' }]);
      assert.equal(await s.timeout(WAIT).emitWithAck('echo', 'custom echo'), 'custom echo');
    });

    test('an unknown namespace gets connect_error "Invalid namespace"', async () => {
      const s = client(srv, '/nope');
      const err = await connectError(s);
      assert.equal(err.message, 'Invalid namespace');
      assert.equal(s.connected, false);
    });

    test('one Manager: sockets on / and /custom share one engine connection; disconnecting one keeps the other', async () => {
      const manager = track(new Manager(srv.url(), { reconnection: false, timeout: WAIT }));
      const root = manager.socket('/');
      const custom = manager.socket('/custom');
      await Promise.all([connected(root), connected(custom)]);
      assert.equal(root.io, custom.io);
      const engine = manager.engine;
      const engineId = engine.id;
      assert.ok(engineId);
      assert.notEqual(root.id, custom.id);
      assert.equal(await root.timeout(WAIT).emitWithAck('echo', 'root'), 'root');
      assert.equal(await custom.timeout(WAIT).emitWithAck('echo', 'custom'), 'custom');

      // /custom broadcasts reach /custom sockets only
      const rootMsgs = collect(root, 'msg');
      const customMsgs = collect(custom, 'msg');
      custom.emit('broadcast', 'to custom');
      await until(() => customMsgs.length === 1, WAIT, 'the /custom broadcast');
      assert.equal(await root.timeout(WAIT).emitWithAck('echo', 'sync'), 'sync');
      assert.deepEqual(customMsgs, [['to custom']]);
      assert.deepEqual(rootMsgs, []);

      custom.disconnect();
      assert.equal(custom.connected, false);
      await sleep(100);
      assert.equal(root.connected, true);
      assert.equal(manager.engine, engine, 'same engine');
      assert.equal(engine.id, engineId);
      assert.equal(engine.readyState, 'open');
      assert.equal(await root.timeout(WAIT).emitWithAck('echo', 'root still here'), 'root still here');

      // and /custom can come back on the same engine connection
      custom.connect();
      await connected(custom);
      assert.equal(manager.engine.id, engineId);
      assert.equal(await custom.timeout(WAIT).emitWithAck('echo', 'back'), 'back');
      root.disconnect();
      custom.disconnect();
    });
  });

  test('broadcast reaches all 3 clients (each transport) with the argument, in one order', async () => {
    const a = client(srv, '/', { transports: ['polling'] });
    const b = client(srv, '/', { transports: ['websocket'] });
    const c = client(srv);
    await Promise.all([connected(a), connected(b), connected(c)]);
    const got = [a, b, c].map((s) => collect(s, 'msg'));
    a.emit('broadcast', { hello: 'world', n: [1, 2] });
    await until(() => got.every((g) => g.length === 1), WAIT, 'the first broadcast on three clients');
    for (const g of got) assert.deepEqual(g, [[{ hello: 'world', n: [1, 2] }]]);
    // three senders at once: every client sees the same order
    a.emit('broadcast', 'from a');
    b.emit('broadcast', 'from b');
    c.emit('broadcast', 'from c', 'extra arguments are not broadcast');
    await until(() => got.every((g) => g.length >= 4), WAIT, 'three more broadcasts on three clients');
    await sleep(100);
    for (const g of got) assert.deepEqual(g, got[0], 'same order everywhere');
    assert.deepEqual(got[0].slice(1).map((x) => x[0]).sort(), ['from a', 'from b', 'from c']);
    assert.ok(got[0].every((x) => x.length === 1));
  });

  test('reconnection: closing the engine makes the client reconnect', async () => {
    const s = client(srv, '/', { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 100, randomizationFactor: 0 });
    await connected(s);
    const disconnected = waitFor(s, 'disconnect');
    const reconnected = waitFor(s.io, 'reconnect');
    s.io.engine.close();
    await disconnected;
    await reconnected;
    await connected(s);
    assert.equal(await s.timeout(WAIT).emitWithAck('echo', 'after reconnect'), 'after reconnect');
  });

  test('recovery offsets: text and binary events both carry one (as Node stores both for recovery)', async () => {
    const s = client(srv, '/', { transports: ['websocket'] });
    await connected(s);
    assert.ok(s._pid, 'the CONNECT reply carries a pid when recovery is on');
    let back = waitFor(s, 'message-back');
    s.emit('message', 1);
    const text = await back;
    assert.equal(text.length, 2);
    assert.equal(typeof text[1], 'string', 'text event: offset appended');
    back = waitFor(s, 'message-back');
    s.emit('message', 1, Buffer.from([1, 2, 3]));
    const bin = await back;
    assert.deepEqual(bin.slice(0, 2), [1, Buffer.from([1, 2, 3])]);
    assert.equal(bin.length, 3, `binary event: offset appended, as Node's socket.io 4.7.2 does (got ${bin.length - 2} extra args)`);
    assert.equal(typeof bin[2], 'string');
  });
});

// ---- connection state recovery ----

describe('connection state recovery', SUITE, () => {
  /** a gets a broadcast, loses its TCP connection; b broadcasts twice meanwhile; a comes back. */
  async function dropAndMiss(srv) {
    const a = client(srv, '/', { transports: ['websocket'], reconnection: true, reconnectionDelay: 400,
      reconnectionDelayMax: 400, randomizationFactor: 0 });
    const b = client(srv, '/', { transports: ['websocket'] });
    await Promise.all([connected(a), connected(b)]);
    const msgs = [];
    a.on('msg', (...args) => msgs.push(args[0]));
    b.emit('broadcast', 'm0');
    await until(() => msgs.length === 1, WAIT, 'the first broadcast');
    const id = a.id;
    const disconnected = waitFor(a, 'disconnect');
    a.io.engine.transport.ws._socket.destroy(); // abrupt: no close frame, no close packet
    const [reason] = await disconnected;
    b.emit('broadcast', 'm1');
    b.emit('broadcast', 'm2');
    assert.equal(await b.timeout(WAIT).emitWithAck('echo', 'sync'), 'sync');
    const missedWhileDown = msgs.length;
    await waitFor(a, 'connect', WAIT);
    return { a, b, id, msgs, reason, missedWhileDown };
  }

  test('default --recovery-window: same id, recovered, missed broadcasts replayed in order', async () => {
    const srv = await startHerald(['--test-handlers']);
    try {
      const { a, id, msgs, reason, missedWhileDown } = await dropAndMiss(srv);
      assert.equal(reason, 'transport close');
      assert.equal(missedWhileDown, 1);
      assert.equal(a.recovered, true);
      assert.equal(a.id, id);
      await until(() => msgs.length >= 3, WAIT, 'the two missed broadcasts');
      await sleep(100);
      assert.deepEqual(msgs, ['m0', 'm1', 'm2']);
      assert.equal(await a.timeout(WAIT).emitWithAck('echo', 'recovered'), 'recovered');
    } finally {
      for (const x of open) x.close();
      await srv.stop();
    }
  });

  test('replay rebuilds what was recorded: binary attachments, rooms and except rooms', async () => {
    const srv = await startHerald(['--test-handlers']);
    try {
      const a = client(srv, '/', { transports: ['websocket'], reconnection: true, reconnectionDelay: 300,
        reconnectionDelayMax: 300, randomizationFactor: 0 });
      const b = client(srv, '/', { transports: ['websocket'] });
      await Promise.all([connected(a), connected(b)]);
      for (const room of ['r1', 'ex']) assert.deepEqual(await a.timeout(WAIT).emitWithAck('join', room), { ok: true });
      const got = [];
      a.on('ev', (data) => got.push(data));
      a.on('message-back', (...args) => got.push(args));
      const m0 = waitFor(a, 'msg');
      b.emit('broadcast', 'm0');
      await m0;
      const before = a._lastOffset; // replay everything after m0, the binary echo below included
      a.emit('message', Buffer.from([1, 2, 3]), 'text');
      await until(() => got.length === 1, WAIT, 'the binary message-back');
      a._lastOffset = before;
      const disconnected = waitFor(a, 'disconnect');
      a.io.engine.transport.ws._socket.destroy();
      await disconnected;
      for (const [rooms, except, data] of [[['r1'], [], 'to-r1'], [['r1'], ['ex'], 'excluded'], [['r2'], [], 'other']]) {
        assert.deepEqual(await b.timeout(WAIT).emitWithAck('broadcast-to', { rooms, except, event: 'ev', data }), { ok: true });
      }
      await waitFor(a, 'connect', WAIT);
      assert.equal(a.recovered, true);
      await until(() => got.length >= 3, WAIT, 'the replayed packets');
      await sleep(100);
      assert.equal(got.length, 3, JSON.stringify(got));
      assert.deepEqual(got[1].slice(0, 2), [Buffer.from([1, 2, 3]), 'text']); // replayed with its attachment
      assert.equal(got[2], 'to-r1');
    } finally {
      for (const x of open) x.close();
      await srv.stop();
    }
  });

  test('--recovery-window 0: a new session, nothing replayed', async () => {
    const srv = await startHerald(['--test-handlers', '--recovery-window', '0']);
    try {
      const { a, id, msgs } = await dropAndMiss(srv);
      assert.ok(!a.recovered, `recovered: ${a.recovered}`);
      assert.equal(a._pid, undefined, 'no pid in the CONNECT reply');
      assert.notEqual(a.id, id);
      await sleep(200);
      assert.deepEqual(msgs, ['m0']);
    } finally {
      for (const x of open) x.close();
      await srv.stop();
    }
  });
});

// ---- authentication (no test handlers: a token is required) ----

describe('JWT authentication (--jwt-secret, no --test-handlers)', SUITE, () => {
  let srv;
  before(async () => { srv = await startHerald(['--jwt-secret', JWT_SECRET]); });
  after(async () => { await srv?.stop(); });

  test('no token: connect_error mentioning the token', async () => {
    const err = await connectError(client(srv));
    assert.match(err.message, /token/i);
  });

  test('malformed token, wrong signature, alg none: connect_error', async () => {
    const good = { sub: 'u1', role: 'user', exp: now() + 3600 };
    const tokens = ['not-a-jwt', 'a.b.c', mintJwt(good, 'another-secret-0123456789abcdef'),
      `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(good)}.`, 42];
    for (const token of tokens) {
      const err = await connectError(client(srv, '/', { auth: { token } }));
      assert.ok(err.message, `refused: ${String(token).slice(0, 30)}`);
    }
  });

  test('expired token: connect_error', async () => {
    const token = mintJwt({ sub: 'u1', role: 'user', exp: now() - 3600 });
    const err = await connectError(client(srv, '/', { auth: { token } }));
    assert.ok(err.message);
  });

  test('valid token: connects over polling and websocket', async () => {
    const token = mintJwt({ sub: 'u1', role: 'user', exp: now() + 3600 });
    for (const transports of [['polling'], ['websocket']]) {
      const s = client(srv, '/', { auth: { token }, transports });
      await connected(s);
      assert.ok(s.id);
      await sleep(50);
      assert.equal(s.connected, true);
      s.close();
    }
  });

  test('after a refused CONNECT the socket connects once given a valid token', async () => {
    const s = client(srv, '/', { auth: {}, transports: ['websocket'] });
    await connectError(s);
    s.auth = { token: mintJwt({ sub: 'u2', role: 'user', exp: now() + 3600 }) };
    s.connect();
    await connected(s);
    assert.ok(s.id);
  });

  test('with --test-handlers authentication is off: no token, a bad one (echoed as given) or a valid one all connect', async () => {
    const th = await startHerald(['--test-handlers', '--jwt-secret', JWT_SECRET]);
    try {
      await connected(client(th));
      const expired = { token: mintJwt({ sub: 'u', exp: now() - 60 }) };
      const bad = client(th, '/', { auth: expired });
      const echoed = waitFor(bad, 'auth');
      await connected(bad);
      assert.deepEqual(stripOffset(bad, await echoed), [expired]);
      const token = mintJwt({ sub: 'u3', role: 'admin', exp: now() + 3600 });
      await connected(client(th, '/', { auth: { token } }));
      const s = client(th, '/custom', { auth: { token } });
      const auth = waitFor(s, 'auth');
      await connected(s);
      assert.deepEqual(stripOffset(s, await auth), [{ token }]);
    } finally {
      for (const x of open) x.close();
      await th.stop();
    }
  });
});

// ---- limits ----

describe('--max-http-buffer-size 10000', SUITE, () => {
  let srv;
  before(async () => { srv = await startHerald(['--test-handlers', '--max-http-buffer-size', '10000']); });
  after(async () => { await srv?.stop(); });

  test('the handshake announces maxPayload 10000', async () => {
    const s = client(srv, '/', { transports: ['websocket'] });
    await connected(s);
    assert.equal(s.io.engine.maxPayload, 10000);
  });

  test('websocket: a message under the limit passes; one over it closes the connection (transport close)', async () => {
    const s = client(srv, '/', { transports: ['websocket'] });
    await connected(s);
    assert.equal((await s.timeout(WAIT).emitWithAck('echo', 'x'.repeat(9000))).length, 9000);
    const disconnected = waitFor(s, 'disconnect');
    s.emit('echo', 'x'.repeat(20000));
    const [reason] = await disconnected;
    assert.equal(reason, 'transport close');
  });

  test('websocket: a binary attachment over the limit closes the connection', async () => {
    const s = client(srv, '/', { transports: ['websocket'] });
    await connected(s);
    const disconnected = waitFor(s, 'disconnect');
    s.emit('message', Buffer.alloc(20000, 7));
    const [reason] = await disconnected;
    assert.equal(reason, 'transport close');
  });

  test('polling: a POST over the limit ends the session; the client reports transport error', async () => {
    const s = client(srv, '/', { transports: ['polling'] });
    await connected(s);
    assert.equal((await s.timeout(WAIT).emitWithAck('echo', 'y'.repeat(9000))).length, 9000);
    const disconnected = waitFor(s, 'disconnect');
    s.emit('echo', 'y'.repeat(20000));
    const [reason] = await disconnected;
    assert.equal(reason, 'transport error');
  });
});

// ---- heartbeat ----

describe('heartbeat (--ping-interval 300 --ping-timeout 500)', SUITE, () => {
  let srv;
  // a timeout with room for a loaded machine's hiccups (a late pong or ping is not what is tested)
  before(async () => { srv = await startHerald(['--test-handlers', '--ping-interval', '300', '--ping-timeout', '500']); });
  after(async () => { await srv?.stop(); });

  test('clients that answer pings stay connected (polling and websocket, 2 s)', async () => {
    const sockets = [client(srv, '/', { transports: ['polling'] }), client(srv, '/', { transports: ['websocket'] })];
    await Promise.all(sockets.map((s) => connected(s)));
    const pings = sockets.map(() => 0);
    const drops = [];
    sockets.forEach((s, i) => {
      s.io.engine.on('ping', () => pings[i]++);
      s.on('disconnect', (r) => drops.push(r));
    });
    await sleep(2000);
    assert.deepEqual(drops, []);
    for (const [i, n] of pings.entries()) assert.ok(n >= 4, `socket ${i}: ${n} pings in 2 s`);
    for (const s of sockets) assert.equal(await s.timeout(WAIT).emitWithAck('echo', 'alive'), 'alive');
  });

  test('a raw client that never answers is closed within about interval + timeout', async () => {
    const ws = await rawEngine(srv);
    ws.send('40');
    const { at } = await ws.closed;
    const elapsed = at - ws.opened;
    assert.ok(elapsed >= 750, `closed after ${elapsed} ms (not before interval + timeout = 800)`);
    assert.ok(elapsed <= 2000, `closed after ${elapsed} ms`);
    assert.ok(ws.received.includes('2'), 'a ping was sent');
  });
});

// ---- connect timeout ----

describe('--connect-timeout 500', SUITE, () => {
  let srv;
  before(async () => { srv = await startHerald(['--test-handlers', '--connect-timeout', '500']); });
  after(async () => { await srv?.stop(); });

  test('an Engine.IO session that never sends a Socket.IO CONNECT is closed (websocket)', async () => {
    const ws = await rawEngine(srv);
    const { at } = await ws.closed;
    const elapsed = at - ws.opened;
    assert.ok(elapsed >= 450 && elapsed <= 2000, `closed after ${elapsed} ms`);
  });

  test('an Engine.IO session that never sends a Socket.IO CONNECT is closed (polling: the poll gets a close packet)', async () => {
    const base = srv.url('/socket.io/?EIO=4&transport=polling');
    const t0 = Date.now();
    const openPacket = await (await fetch(base)).text();
    const { sid } = JSON.parse(openPacket.slice(1));
    const poll = await fetch(`${base}&sid=${sid}`);
    assert.equal(poll.status, 200);
    assert.equal(await poll.text(), '1');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 450 && elapsed <= 2000, `closed after ${elapsed} ms`);
    const after = await fetch(`${base}&sid=${sid}`);
    assert.equal(after.status, 400);
    assert.deepEqual(await after.json(), { code: 1, message: 'Session ID unknown' });
  });

  test('a client that connects in time is not affected', async () => {
    const s = client(srv, '/', { transports: ['websocket'] });
    await connected(s);
    await sleep(800);
    assert.equal(s.connected, true);
    assert.equal(await s.timeout(WAIT).emitWithAck('echo', 'ok'), 'ok');
  });
});
