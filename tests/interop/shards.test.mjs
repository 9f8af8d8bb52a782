// Shards (`herald serve --shards 2`): one node, two event loops on two threads, each with its own
// SO_REUSEPORT listener, the kernel spreading TCP connections over them. The contract tested here:
//   - every HTTP response (a WebSocket's 101 too) names the shard that answered: X-Herald-Shard;
//   - an Engine.IO session lives on one shard; a polling GET/POST or a WebSocket upgrade for its sid
//     arriving on the other shard is handed to the owner (so the answer and its header come from it);
//   - JSON protocol topic sequences are strictly increasing and gap-free per topic whichever shard
//     publishes, and every subscriber gets every message once, in sequence order;
//   - Socket.IO connection state recovery works when the reconnection lands on the other shard;
//   - /health reports the node (`shards`), /metrics adds per-shard series (label shard="i").
//
// Landing on a chosen shard: the kernel's choice is per TCP connection, so a test opens new
// connections until one lands where it wants (at most TRIES; it fails saying so otherwise). A
// request naming a sid is answered by the sid's owner whatever shard the connection landed on, so
// its header cannot tell where the connection landed: such requests go over a connection whose
// shard was learnt first from a probe (GET /health, kept alive) on that same connection.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startHerald } from './lib/server.mjs';

const SHARDS = ['--shards', '2'];
const TRIES = 200; // new TCP connections tried to land on one shard
const WAIT = 5000;
const T = { timeout: 10000 }; // per test: a hang fails instead of blocking the run
const SEP = '\x1e'; // Engine.IO polling payload separator
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The X-Herald-Shard header of a response, as a number (asserts it is there and is 0 or 1). */
function shardOf(headers, what = 'response') {
  const v = headers['x-herald-shard'];
  assert.ok(v !== undefined, `${what}: no X-Herald-Shard header (is the server running --shards 2?): ${JSON.stringify(headers)}`);
  assert.match(String(v), /^[01]$/, `${what}: X-Herald-Shard ${v}`);
  return Number(v);
}

/** A server with --shards 2 and args, stopped (and asserted clean) after the test. */
async function herald(t, args = []) {
  const srv = await startHerald([...SHARDS, ...args]);
  t.after(async () => {
    for (const close of srv.closers ?? []) await close();
    const r = await srv.stop();
    assert.deepEqual(r, { code: 0, signal: null }, `herald did not exit cleanly:\n${srv.log.slice(-3000)}`);
  });
  srv.closers = [];
  return srv;
}

// ---- raw HTTP/1.1 over one TCP connection (to choose the connection a request goes over) ----

/** Reads one HTTP response from sock: {status, headers (lower-case names), body}. Content-Length
 * or chunked bodies; anything after the response is an error (we never pipeline). */
function readResponse(sock, ms = WAIT, what = 'response') {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err, value) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.off('error', onError);
      if (err) reject(err); else resolve(value);
    };
    const timer = setTimeout(() => done(new Error(`timed out waiting for the ${what}; got ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`)), ms);
    const onClose = () => done(new Error(`connection closed before the ${what} was complete: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`));
    const onError = (e) => done(e);
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]);
      let rest = buf.subarray(end + 4);
      let body;
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        const chunks = [];
        for (;;) {
          const eol = rest.indexOf('\r\n');
          if (eol < 0) return;
          const size = parseInt(rest.subarray(0, eol).toString('latin1'), 16);
          if (rest.length < eol + 2 + size + 2) return;
          chunks.push(rest.subarray(eol + 2, eol + 2 + size));
          rest = rest.subarray(eol + 2 + size + 2);
          if (size === 0) break;
        }
        body = Buffer.concat(chunks);
      } else {
        const len = Number(headers['content-length'] ?? 0);
        if (rest.length < len) return;
        body = rest.subarray(0, len);
        rest = rest.subarray(len);
      }
      if (rest.length) return done(new Error(`bytes after the ${what}: ${JSON.stringify(rest.toString('latin1').slice(0, 200))}`));
      done(null, { status, headers, body: body.toString() });
    };
    sock.on('data', onData);
    sock.on('close', onClose);
    sock.on('error', onError);
  });
}

/** Sends one request on sock (keep-alive) and reads its response. */
function requestOn(sock, { method = 'GET', path, body, headers = {} }, ms = WAIT) {
  const data = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
  const head = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (method !== 'GET' || data.length) head.push(`Content-Length: ${data.length}`);
  const response = readResponse(sock, ms, `answer to ${method} ${path}`);
  sock.write(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), data]));
  return response;
}

/** A new TCP connection to srv (no request sent yet). */
function tcp(srv) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    sock.once('connect', () => { sock.off('error', reject); resolve(sock); });
    sock.once('error', reject);
  });
}

/** A TCP connection that landed on `shard`: a GET /health on it was answered by that shard. The
 * connection is kept alive for the caller's request; the caller destroys it. */
async function connectionOnShard(srv, shard) {
  const seen = [0, 0];
  for (let i = 0; i < TRIES; i++) {
    const sock = await tcp(srv);
    const probe = await requestOn(sock, { path: '/health' });
    assert.equal(probe.status, 200, `probe GET /health: ${probe.status} ${probe.body}`);
    assert.ok(!/close/i.test(probe.headers.connection ?? ''), 'the probe connection must stay open');
    const s = shardOf(probe.headers, 'GET /health');
    seen[s]++;
    if (s === shard) return sock;
    sock.destroy();
  }
  throw new Error(`no TCP connection landed on shard ${shard} in ${TRIES} tries (shard 0: ${seen[0]}, shard 1: ${seen[1]})`);
}

/** One request on a new connection that landed on `shard`; the connection is closed after it. */
async function requestVia(srv, shard, req) {
  const sock = await connectionOnShard(srv, shard);
  try {
    return await requestOn(sock, req);
  } finally {
    sock.destroy();
  }
}

// ---- Engine.IO / Socket.IO over polling ----

const eioPath = (sid) => `/socket.io/?EIO=4&transport=polling${sid ? `&sid=${sid}` : ''}`;
const isAuth = (p) => p.startsWith('42["auth"'); // the test handlers' answer to every CONNECT

/** A polling handshake on a new connection: {sid, owner (the shard that answered)}. */
async function handshake(srv) {
  const sock = await tcp(srv);
  try {
    const res = await requestOn(sock, { path: eioPath() });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.body[0], '0', `open packet expected: ${res.body}`);
    return { sid: JSON.parse(res.body.slice(1)).sid, owner: shardOf(res.headers, 'handshake') };
  } finally {
    sock.destroy();
  }
}

/** POST packets for sid over a connection that landed on `via`; asserts "ok" from the owner. */
async function postVia(srv, via, { sid, owner }, body) {
  const res = await requestVia(srv, via, { method: 'POST', path: eioPath(sid), body, headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
  assert.equal(res.status, 200, `POST ${JSON.stringify(body)} via shard ${via}: ${res.status} ${res.body}`);
  assert.equal(res.body, 'ok');
  assert.equal(shardOf(res.headers, 'POST'), owner, 'the POST is answered by the session\'s shard');
}

/** Starts a GET for sid over a connection that landed on `via`; resolves with its response. */
async function startGetVia(srv, via, { sid }) {
  const sock = await connectionOnShard(srv, via);
  const res = requestOn(sock, { path: eioPath(sid) });
  res.finally(() => sock.destroy()).catch(() => {});
  return { res };
}

/** GETs (each over a connection that landed on `via`) until `count` packets (auth events skipped). */
async function pollVia(srv, via, session, count) {
  const packets = [];
  while (packets.length < count) {
    const res = await (await startGetVia(srv, via, session)).res;
    assert.equal(res.status, 200, `GET via shard ${via}: ${res.status} ${res.body}`);
    assert.equal(shardOf(res.headers, 'GET'), session.owner, 'the GET is answered by the session\'s shard');
    packets.push(...res.body.split(SEP).filter((p) => !isAuth(p)));
  }
  return packets;
}

/** The arguments of a Socket.IO event packet 42[...], without the trailing recovery offset. */
function eventArgs(packet) {
  assert.match(packet, /^42\[/);
  const args = JSON.parse(packet.slice(2));
  assert.equal(typeof args.at(-1), 'string', `recovery offset expected as last argument: ${packet}`);
  return args.slice(0, -1);
}

// ---- WebSocket helper (ws) ----

/** Opens a WebSocket; resolves {ws, shard (of the 101), messages, take(pred), close()}. Text frames
 * are kept as strings (parsed as JSON when json is set). opts go to `ws` (e.g. createConnection). */
function openWs(url, { json = false, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...opts });
    const c = { ws, messages: [], waiters: new Set(), shard: undefined };
    const wake = () => { for (const w of [...c.waiters]) w(); };
    ws.on('upgrade', (res) => { c.shard = shardOf(res.headers, '101 Switching Protocols'); });
    ws.on('message', (data) => { c.messages.push(json ? JSON.parse(data.toString()) : data.toString()); wake(); });
    c.closed = new Promise((r) => ws.on('close', (code) => { r(code); wake(); }));
    ws.on('unexpected-response', (req, res) => { res.resume(); reject(new Error(`WebSocket refused: HTTP ${res.statusCode}`)); });
    ws.on('error', (e) => { c.error = e; reject(e); });
    /** Removes and returns the first message matching pred, waiting up to ms for it. */
    c.take = async (pred = () => true, ms = WAIT, what = 'a message') => {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = c.messages.findIndex(pred);
        if (i >= 0) return c.messages.splice(i, 1)[0];
        const left = deadline - Date.now();
        if (left <= 0 || ws.readyState > WebSocket.OPEN) {
          throw new Error(`${left <= 0 ? 'timed out' : 'connection closed'} waiting for ${what}; have ${JSON.stringify(c.messages).slice(0, 800)}`);
        }
        await new Promise((r) => {
          const done = () => { clearTimeout(timer); c.waiters.delete(done); r(); };
          const timer = setTimeout(done, left);
          c.waiters.add(done);
        });
      }
    };
    c.send = (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m));
    c.close = async () => {
      if (ws.readyState === WebSocket.CLOSED) return;
      if (ws.readyState === WebSocket.OPEN) ws.close(1000); else ws.terminate();
      const t = setTimeout(() => ws.terminate(), 2000);
      await c.closed;
      clearTimeout(t);
    };
    ws.on('open', () => resolve(c));
  });
}

/** Opens WebSockets (each a new TCP connection) until one's 101 comes from `shard`; closes the others. */
async function wsOnShard(srv, shard, url, opts) {
  const seen = [0, 0];
  for (let i = 0; i < TRIES; i++) {
    const c = await openWs(url, opts);
    seen[c.shard]++;
    if (c.shard === shard) { srv.closers.push(() => c.close()); return c; }
    c.ws.terminate();
  }
  throw new Error(`no WebSocket landed on shard ${shard} in ${TRIES} tries (shard 0: ${seen[0]}, shard 1: ${seen[1]})`);
}

/** A raw Engine.IO WebSocket session on `shard`, its open packet consumed. */
async function engineOnShard(srv, shard) {
  const c = await wsOnShard(srv, shard, `ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`);
  const open = await c.take((m) => m[0] === '0', WAIT, 'the open packet');
  c.sid = JSON.parse(open.slice(1)).sid;
  return c;
}

/** Socket.IO CONNECT (optionally with auth) on a raw engine; returns the CONNECT reply's payload. */
async function sioConnect(c, auth) {
  c.send(auth ? `40${JSON.stringify(auth)}` : '40');
  const reply = await c.take((m) => m.startsWith('40') || m.startsWith('44'), WAIT, 'the CONNECT reply');
  assert.match(reply, /^40\{/, `CONNECT refused: ${reply}`);
  await c.take(isAuth, WAIT, 'the test handlers\' auth event');
  return JSON.parse(reply.slice(2));
}

/** An echo round trip (ack id `id`) on a raw Socket.IO engine: after it, everything sent before is in. */
async function echo(c, id, value) {
  c.send(`42${id}["echo",${JSON.stringify(value)}]`);
  const ack = await c.take((m) => m.startsWith(`43${id}[`), WAIT, `the ack ${id}`);
  assert.deepEqual(JSON.parse(ack.slice(2 + String(id).length)), [value]);
}

// ---- a. Engine.IO across shards ----

describe('Engine.IO sessions across shards (raw HTTP)', () => {
  test('polling: POSTs and GETs arriving on the other shard are answered by the owner, Socket.IO echoes come back', T, async (t) => {
    const srv = await herald(t, ['--test-handlers']);
    const s = await handshake(srv);
    const other = 1 - s.owner;
    // Socket.IO CONNECT from the other shard
    await postVia(srv, other, s, '40');
    const [connectReply] = await pollVia(srv, other, s, 1);
    assert.match(connectReply, /^40\{"sid":"[^"]+"/, connectReply);
    for (let i = 0; i < 5; i++) {
      // a GET parked first (the owner holds it), then the POST that releases it, both via the other shard
      const parked = await startGetVia(srv, other, s);
      await sleep(20);
      await postVia(srv, other, s, [`42["message","m${i}"]`, `42${i}["echo",{"i":${i}}]`].join(SEP));
      const res = await parked.res;
      assert.equal(res.status, 200, res.body);
      assert.equal(shardOf(res.headers, 'parked GET'), s.owner);
      const packets = res.body.split(SEP).filter((p) => !isAuth(p));
      if (packets.length < 2) packets.push(...await pollVia(srv, other, s, 2 - packets.length));
      assert.deepEqual(eventArgs(packets[0]), ['message-back', `m${i}`], `round trip ${i}: ${JSON.stringify(packets)}`);
      assert.equal(packets[1], `43${i}[{"i":${i}}]`, `round trip ${i}`);
    }
    // the owner's own shard still serves the session too
    await postVia(srv, s.owner, s, '4242["echo","home"]');
    assert.deepEqual(await pollVia(srv, s.owner, s, 1), ['4342["home"]']);
  });

  test('polling -> WebSocket upgrade whose WebSocket lands on the other shard: 101 from the owner, probe, upgrade, messages flow', T, async (t) => {
    const srv = await herald(t, ['--test-handlers']);
    const s = await handshake(srv);
    const other = 1 - s.owner;
    await postVia(srv, other, s, '40');
    assert.match((await pollVia(srv, other, s, 1))[0], /^40\{"sid":/);
    // the connect handler's event comes with the next GET: the CONNECT answer ends its GET, as Node's
    assert.ok(isAuth((await (await startGetVia(srv, other, s)).res).body));
    const parked = await startGetVia(srv, other, s); // released with a noop by the probe
    await sleep(50);
    const sock = await connectionOnShard(srv, other);
    const c = await openWs(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket&sid=${s.sid}`, { createConnection: () => sock });
    srv.closers.push(() => c.close());
    assert.equal(c.shard, s.owner, 'the 101 comes from the session\'s shard');
    c.send('2probe');
    assert.equal(await c.take(() => true, WAIT, '3probe'), '3probe');
    const released = await parked.res;
    assert.equal(released.status, 200);
    assert.equal(released.body, '6', 'noop to the parked GET');
    c.send('5');
    for (let i = 0; i < 3; i++) {
      c.send(`42["message","w${i}"]`);
      assert.deepEqual(eventArgs(await c.take((m) => m.startsWith('42["message-back"'), WAIT, `message-back w${i}`)), ['message-back', `w${i}`]);
      await echo(c, 10 + i, `e${i}`);
    }
    // after the upgrade, polling for the sid is refused, from whichever shard
    const refused = await requestVia(srv, other, { path: eioPath(s.sid) });
    assert.equal(refused.status, 400, refused.body);
    assert.deepEqual(c.messages.filter((m) => !m.startsWith('2')), [], 'nothing unexpected over the WebSocket'); // pings aside
  });
});

// ---- b. socket.io-client ----

describe('socket.io-client 4.7.2 against --shards 2', () => {
  for (const [name, opts] of [['polling only', { transports: ['polling'] }], ['polling then upgrade (default)', {}]]) {
    test(`${name}: 20 clients connect, echo, message-back and a broadcast reaching all, no error`, T, async (t) => {
      const srv = await herald(t, ['--test-handlers']);
      const errors = [];
      let closing = false;
      const clients = Array.from({ length: 20 }, (_, i) => {
        const s = io(srv.url('/'), { forceNew: true, reconnection: false, timeout: WAIT, ...opts });
        s.on('connect_error', (e) => errors.push(`client ${i}: connect_error ${e.message}`));
        s.on('disconnect', (reason) => { if (!closing) errors.push(`client ${i}: disconnect ${reason}`); });
        s.io.on('error', (e) => errors.push(`client ${i}: manager error ${e.message}`));
        return s;
      });
      t.after(() => { closing = true; for (const s of clients) s.close(); });
      await Promise.all(clients.map((s, i) => new Promise((resolve, reject) => {
        if (s.connected) return resolve();
        const timer = setTimeout(() => reject(new Error(`client ${i} did not connect; errors: ${errors.join('; ')}`)), WAIT);
        s.once('connect', () => { clearTimeout(timer); resolve(); });
        s.once('connect_error', (e) => { clearTimeout(timer); reject(e); });
      })));
      const roundTrips = () => Promise.all(clients.map(async (s, i) => {
        assert.deepEqual(await s.timeout(WAIT).emitWithAck('echo', { i }), { i });
        const back = new Promise((resolve) => s.once('message-back', (...args) => resolve(args)));
        s.emit('message', i, 'x');
        const args = await back;
        assert.deepEqual(args.slice(0, 2), [i, 'x']);
      }));
      await roundTrips();
      if (!opts.transports) { // the default: every client upgrades to WebSocket
        const end = Date.now() + WAIT;
        while (clients.some((s) => s.io.engine.transport.name !== 'websocket')) {
          assert.ok(Date.now() < end, `not upgraded: ${clients.filter((s) => s.io.engine.transport.name !== 'websocket').length} clients`);
          await sleep(20);
        }
        await roundTrips();
      }
      // a broadcast from one client reaches every client, on both shards
      const got = clients.map((s) => new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('broadcast not received')), WAIT);
        s.once('msg', (v) => { clearTimeout(timer); resolve(v); });
      }));
      clients[7].emit('broadcast', 'to-all');
      assert.deepEqual(await Promise.all(got), clients.map(() => 'to-all'));
      assert.deepEqual(errors, []);
    });
  }
});

describe('the server API over every shard (the adapter\'s membership requests)', () => {
  test('socketsJoin, fetchSockets, a broadcast to the joined room, socketsLeave and disconnectSockets reach sockets on both shards', T, async (t) => {
    const srv = await herald(t, ['--test-handlers']);
    const clients = Array.from({ length: 16 }, () => io(srv.url('/'), { forceNew: true, reconnection: false, timeout: WAIT, transports: ['websocket'] }));
    t.after(() => { for (const s of clients) s.close(); });
    await Promise.all(clients.map((s) => (s.connected ? null : new Promise((resolve, reject) => {
      s.once('connect', resolve);
      s.once('connect_error', reject);
    }))));
    const metrics = await (await fetch(srv.url('/metrics'))).text();
    const perShard = [0, 1].map((i) => Number(new RegExp(`herald_shard_socketio_sockets\\{shard="${i}"\\} (\\d+)`).exec(metrics)?.[1]));
    assert.ok(perShard[0] > 0 && perShard[1] > 0, `sockets on both shards: ${perShard}`);
    const ask = (s, ev, arg) => s.timeout(WAIT).emitWithAck(ev, arg);
    const odd = clients.filter((_, i) => i % 2);
    const even = clients.filter((_, i) => i % 2 === 0);
    for (const s of odd) assert.deepEqual(await ask(s, 'join', 'r1'), { ok: true });
    // every socket in r1, whichever shard, joins r2; one of them is left out by except
    assert.deepEqual(await ask(even[0], 'join', 'vip'), { ok: true });
    assert.deepEqual(await ask(odd[0], 'join', 'vip'), { ok: true });
    assert.deepEqual(await ask(even[0], 'sockets-join', { rooms: ['r1'], except: ['vip'], room: 'r2' }), { ok: true });
    const ids = (list) => list.map((x) => x.id).sort();
    let list = await ask(even[1], 'fetch-sockets', { rooms: ['r2'] });
    assert.deepEqual(ids(list), ids(odd.slice(1)));
    for (const x of list) {
      assert.ok(x.rooms.includes('r1') && x.rooms.includes('r2') && x.rooms.includes(x.id), JSON.stringify(x));
      assert.equal(x.nsp, '/');
    }
    // a broadcast to r2 reaches exactly those sockets
    const got = new Set();
    for (const s of clients) s.on('to-r2', () => got.add(s.id));
    assert.deepEqual(await ask(even[2], 'broadcast-to', { rooms: ['r2'], event: 'to-r2', data: 1 }), { ok: true });
    const end = Date.now() + WAIT;
    while (got.size < odd.length - 1 && Date.now() < end) await sleep(10);
    await sleep(100);
    assert.deepEqual([...got].sort(), ids(odd.slice(1)));
    // socketsLeave empties r2 on every shard
    assert.deepEqual(await ask(even[0], 'sockets-leave', { rooms: ['r2'], room: 'r2' }), { ok: true });
    list = await ask(even[1], 'fetch-sockets', { rooms: ['r2'] });
    assert.deepEqual(list, []);
    // disconnectSockets: the sockets of r1 go, the others stay
    const gone = odd.map((s) => new Promise((resolve) => s.once('disconnect', resolve)));
    assert.deepEqual(await ask(even[0], 'disconnect-sockets', { rooms: ['r1'] }), { ok: true });
    assert.deepEqual(await Promise.all(gone), odd.map(() => 'io server disconnect'));
    assert.ok(even.every((s) => s.connected));
    list = await ask(even[1], 'fetch-sockets', {});
    assert.deepEqual(ids(list), ids(even));
  });
});

// ---- c. JSON protocol: one topic, publishers and subscribers on both shards ----

const SECRET = 'interop-shards-secret-0123456789abcdef';
const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
/** An HS256 JWT for the server's --jwt-secret. */
function mint(sub, role) {
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, role, iat: now, exp: now + 3600 })}`;
  return `${signing}.${crypto.createHmac('sha256', SECRET).update(signing).digest('base64url')}`;
}

let users = 0;
/** JSON-protocol connections (each its own user) until `perShard` landed on each shard: [[on 0], [on 1]]. */
async function jsonOnBothShards(srv, role, perShard) {
  const on = [[], []];
  for (let i = 0; i < 2 * TRIES && (on[0].length < perShard || on[1].length < perShard); i++) {
    const sub = `${role}-${++users}`;
    const c = await openWs(`ws://127.0.0.1:${srv.port}/api/v1/ws?token=${mint(sub, role)}&protocol=1.0`, { json: true });
    if (on[c.shard].length >= perShard) { c.ws.terminate(); continue; }
    srv.closers.push(() => c.close());
    const hello = await c.take(() => true, WAIT, 'the connect frame');
    assert.equal(hello.type, 'connect', JSON.stringify(hello));
    c.sub = sub;
    on[c.shard].push(c);
  }
  assert.ok(on[0].length >= perShard && on[1].length >= perShard,
    `could not land ${perShard} ${role} connections on each shard (shard 0: ${on[0].length}, shard 1: ${on[1].length})`);
  return on;
}

let ids = 0;
/** Sends a client frame; resolves with the ack (fails on an error frame). */
async function request(c, type, data, extra = {}) {
  const messageId = `r-${++ids}`;
  c.send({ type, data, timestamp: Date.now(), messageId, ...extra });
  const r = await c.take((f) => (f.type === 'ack' && f.data?.messageId === messageId) ||
    (f.type === 'error' && f.data?.details?.messageId === messageId), WAIT, `the reply to ${type} ${messageId}`);
  assert.equal(r.type, 'ack', `${type}: ${JSON.stringify(r)}`);
  return r.data;
}

/** Takes n `data` frames of topic from c, in arrival order. */
async function takeData(c, topic, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await c.take((f) => f.type === 'data' && f.topic === topic, WAIT, `data frame ${i + 1} of ${n} on shard ${c.shard}`));
  return out;
}

/** A heartbeat round trip (the server answers frames in order), then asserts nothing else of topic
 * is queued: no duplicate, nothing extra. */
async function nothingMore(c, topic) {
  c.send({ type: 'heartbeat', data: {}, timestamp: Date.now(), messageId: `hb-${++ids}` });
  await c.take((f) => f.type === 'heartbeat', WAIT, 'the heartbeat reply');
  assert.deepEqual(c.messages.filter((f) => f.topic === topic), [], `shard ${c.shard}: frames after the last expected one`);
}

describe('JSON protocol across shards', () => {
  test('4 publishers (2 per shard) x 50 concurrent publishes to one topic: gap-free sequences, every subscriber gets each once, in order; replay on either shard', T, async (t) => {
    const srv = await herald(t, ['--jwt-secret', SECRET, '--json-rate', '100000', '--json-burst', '100000', '--topic-history', '1000']);
    const topic = 'public:shards';
    const PER = 50;
    const subs = (await jsonOnBothShards(srv, 'user', 2)).flat();
    const pubs = (await jsonOnBothShards(srv, 'admin', 2)).flat();
    const acks = await Promise.all(subs.map((c) => request(c, 'subscribe', { topic })));
    const base = acks[0].sequence;
    assert.equal(typeof base, 'number');
    for (const a of acks) assert.equal(a.sequence, base, `the topic's current sequence is the same on both shards: ${JSON.stringify(acks)}`);

    // every publisher sends its 50 frames at once; all four at the same time
    const sent = pubs.map((c, p) => {
      const frames = Array.from({ length: PER }, (_, i) => ({ type: 'data', topic, data: { p, i }, timestamp: Date.now(), messageId: `pub${p}-${i}` }));
      for (const f of frames) c.send(f);
      return frames;
    });
    const pubAcks = await Promise.all(pubs.map(async (c, p) => {
      const out = [];
      for (const f of sent[p]) {
        const a = await c.take((x) => (x.type === 'ack' && x.data?.messageId === f.messageId) || x.type === 'error', WAIT, `the ack of ${f.messageId}`);
        assert.equal(a.type, 'ack', JSON.stringify(a));
        out.push(a.data);
      }
      return out;
    }));
    // the publishers' acks: sequences base+1 .. base+200, each once; increasing per publisher
    const bySeq = new Map();
    pubAcks.forEach((list, p) => list.forEach((a, i) => {
      assert.equal(typeof a.sequence, 'number', JSON.stringify(a));
      assert.ok(!bySeq.has(a.sequence), `sequence ${a.sequence} given twice`);
      bySeq.set(a.sequence, { p, i, publishedId: a.publishedId });
      if (i) assert.ok(a.sequence > list[i - 1].sequence, `publisher ${p}: sequence ${a.sequence} after ${list[i - 1].sequence}`);
    }));
    const total = pubs.length * PER;
    assert.deepEqual([...bySeq.keys()].sort((a, b) => a - b), Array.from({ length: total }, (_, k) => base + 1 + k), 'gap-free, from the subscribe ack\'s sequence on');

    // every subscriber, on either shard: all 200, each once, sequence +1 each time, the publisher's id and data
    for (const c of subs) {
      const got = await takeData(c, topic, total);
      got.forEach((f, k) => {
        assert.equal(f.sequence, base + 1 + k, `shard ${c.shard} subscriber: frame ${k} has sequence ${f.sequence}, expected ${base + 1 + k}`);
        const origin = bySeq.get(f.sequence);
        assert.equal(f.messageId, origin.publishedId, `sequence ${f.sequence}: messageId`);
        assert.deepEqual(f.data, { p: origin.p, i: origin.i }, `sequence ${f.sequence}: data`);
      });
      await nothingMore(c, topic);
    }

    // replay: a new subscriber on each shard with lastSequence gets exactly what came after it, then live
    const from = base + total - 30;
    const late = await jsonOnBothShards(srv, 'user', 1);
    for (const [c] of late) {
      const ack = await request(c, 'subscribe', { topic, lastSequence: from });
      assert.equal(ack.recovered, true, `shard ${c.shard}: ${JSON.stringify(ack)}`);
      assert.equal(ack.sequence, base + total, `shard ${c.shard}: the ack names the topic's current sequence`);
      const replayed = await takeData(c, topic, 30);
      assert.deepEqual(replayed.map((f) => [f.sequence, f.messageId]),
        Array.from({ length: 30 }, (_, k) => [from + 1 + k, bySeq.get(from + 1 + k).publishedId]), `replay on shard ${c.shard}`);
    }
    // a live message from each shard after the replay: next sequences, to everyone
    for (const shard of [0, 1]) {
      const pub = pubs.find((c) => c.shard === shard);
      const a = await request(pub, 'data', { live: shard }, { topic });
      const expected = base + total + 1 + shard;
      assert.equal(a.sequence, expected);
      for (const c of [...subs, late[0][0], late[1][0]]) {
        const [f] = await takeData(c, topic, 1);
        assert.deepEqual([f.sequence, f.data], [expected, { live: shard }], `live after replay, subscriber on shard ${c.shard}`);
      }
    }
  });
});

describe('JSON protocol: answers in frame order while publishes wait for the other shard', () => {
  test('40 pipelined publishes with an invalid frame and a heartbeat among them: every answer in the order of the frames', T, async (t) => {
    const srv = await herald(t, ['--jwt-secret', SECRET, '--json-rate', '100000', '--json-burst', '100000']);
    const topic = 'public:order';
    const [subs0, subs1] = await jsonOnBothShards(srv, 'user', 1);
    for (const c of [subs0[0], subs1[0]]) await request(c, 'subscribe', { topic });
    const [pubs] = await jsonOnBothShards(srv, 'admin', 1);
    const pub = pubs[0];
    const frames = [];
    for (let i = 0; i < 40; i++) {
      if (i === 20) frames.push({ type: 'data', data: {}, timestamp: Date.now(), messageId: 'no-topic' });
      frames.push({ type: 'data', topic, data: { i }, timestamp: Date.now(), messageId: `ordered-${i}` });
    }
    frames.push({ type: 'heartbeat', data: {}, timestamp: Date.now(), messageId: 'hb-last' });
    for (const f of frames) pub.send(f);
    const answers = [];
    for (let k = 0; k < frames.length; k++) {
      const a = await pub.take((f) => ['ack', 'error', 'heartbeat'].includes(f.type), WAIT, `answer ${k + 1} of ${frames.length}`);
      answers.push(a.type === 'heartbeat' ? 'heartbeat' : `${a.type}:${a.data?.messageId ?? a.data?.details?.messageId}`);
      if (a.type === 'ack') assert.equal(a.data.delivered, 2, `one subscriber on each shard: ${JSON.stringify(a)}`);
    }
    const expected = frames.map((f) => f.type === 'heartbeat' ? 'heartbeat' : f.messageId === 'no-topic' ? 'error:no-topic' : `ack:${f.messageId}`);
    assert.deepEqual(answers, expected);
  });
});

// ---- d. Socket.IO connection state recovery across shards ----

describe('Socket.IO connection state recovery across shards (raw Engine.IO over ws)', () => {
  test('a socket that drops on one shard and reconnects on the other is recovered: same sid and pid, missed broadcasts replayed in order', T, async (t) => {
    const srv = await herald(t, ['--test-handlers']);
    const a = await engineOnShard(srv, 0);
    const first = await sioConnect(a);
    assert.equal(typeof first.pid, 'string', `the CONNECT reply carries a pid when recovery is on: ${JSON.stringify(first)}`);
    const b = await engineOnShard(srv, 1);
    await sioConnect(b);
    const msg = (m) => m.startsWith('42["msg"');
    // a broadcast from shard 1 reaches a on shard 0, with its offset
    b.send('42["broadcast","m0"]');
    const m0 = JSON.parse((await a.take(msg, WAIT, 'broadcast m0')).slice(2));
    assert.equal(m0[1], 'm0');
    const offset = m0.at(-1);
    assert.equal(typeof offset, 'string', `offset expected as last argument: ${JSON.stringify(m0)}`);
    // a's TCP connection dies (no close frame, no disconnect packet); b broadcasts twice meanwhile
    a.ws.terminate();
    await a.closed;
    await sleep(100);
    b.send('42["broadcast","m1"]');
    b.send('42["broadcast","m2"]');
    await echo(b, 1, 'sync');
    for (const v of ['m0', 'm1', 'm2']) assert.equal(JSON.parse((await b.take(msg, WAIT, `b's own ${v}`)).slice(2))[1], v);
    // a comes back on shard 1 with {pid, offset}
    const a2 = await engineOnShard(srv, 1);
    const again = await sioConnect(a2, { pid: first.pid, offset });
    assert.equal(again.sid, first.sid, `recovered: the same Socket.IO sid (${JSON.stringify(again)} after ${JSON.stringify(first)})`);
    assert.equal(again.pid, first.pid, 'recovered: the same pid (socket.recovered on the client)');
    await echo(a2, 2, 'after');
    const replayed = a2.messages.filter(msg).map((m) => JSON.parse(m.slice(2)));
    assert.deepEqual(replayed.map((args) => args[1]), ['m1', 'm2'], `missed broadcasts, in order, once: ${JSON.stringify(replayed)}`);
    for (const args of replayed) assert.equal(typeof args.at(-1), 'string', 'replayed packets carry their offsets');
    // and live traffic goes on
    b.send('42["broadcast","m3"]');
    assert.equal(JSON.parse((await a2.take((m) => m.startsWith('42["msg","m3"'), WAIT, 'live m3')).slice(2))[1], 'm3');
  });

  test('without a pid the reconnection on the other shard is a new session; a stale pid is not recovered', T, async (t) => {
    const srv = await herald(t, ['--test-handlers']);
    const a = await engineOnShard(srv, 1);
    const first = await sioConnect(a);
    a.ws.terminate();
    await a.closed;
    const fresh = await engineOnShard(srv, 0);
    const plain = await sioConnect(fresh);
    assert.notEqual(plain.sid, first.sid);
    const bogus = await engineOnShard(srv, 0);
    const stale = await sioConnect(bogus, { pid: 'no-such-pid', offset: 'no-such-offset' });
    assert.notEqual(stale.sid, first.sid);
    assert.notEqual(stale.pid, 'no-such-pid', 'an unknown pid is not recovered');
  });
});

// ---- e. node-wide and per-shard reporting ----

test('/health reports the node (shards: 2); /metrics keeps node-wide series and adds shard="0" and shard="1"', T, async (t) => {
  const srv = await herald(t);
  // a WebSocket on each shard, so both shards have something to count
  await wsOnShard(srv, 0, `ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`);
  await wsOnShard(srv, 1, `ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`);
  const health = await requestVia(srv, 0, { path: '/health' });
  assert.equal(health.status, 200);
  const h = JSON.parse(health.body);
  assert.equal(h.shards, 2, health.body);
  assert.ok(h.socketio.sessions >= 2, `node-wide sessions: ${health.body}`);
  for (const via of [0, 1]) {
    const m = await requestVia(srv, via, { path: '/metrics' });
    assert.equal(m.status, 200);
    assert.match(m.body, /^herald_up 1$/m);
    assert.match(m.body, /^herald_socketio_sessions \d+$/m, 'the node-wide series keeps its name, no label');
    for (const s of ['0', '1']) assert.match(m.body, new RegExp(`^herald_shard_\\w+\\{[^}]*shard="${s}"[^}]*\\} \\d`, 'm'), `per-shard series for shard ${s} (via shard ${via})`);
  }
});
