// The Herald JSON protocol (/api/v1/ws and POST /api/v1/publish) against the contract in
// PROTOCOL.md, with the `ws` client: connect (token in the query or an Authorization header,
// auth/protocol/capacity refusals), heartbeat, disconnect reasons (replaced, token expired,
// shutdown), subscribe/unsubscribe with permissions, limits and params, per-topic sequences,
// replay with lastSequence, notification redelivery and the inbox, duplicate suppression,
// invalid/oversize/rate-limited frames, the REST publish endpoint, Socket.IO and JSON clients on
// one topic, permessage-deflate and the idle timeout.
//
// Tokens are HS256 JWTs minted here with node:crypto for the server's --jwt-secret.
// "Nothing else arrived" is checked with a fence: a heartbeat sent after the event in question;
// the server answers frames in order, so anything it meant to send first is queued before the reply.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { SANITIZER_REPORT, startHerald } from './lib/server.mjs';

const SECRET = 'interop-json-secret-0123456789abcdef';
const API_KEY = 'interop-api-key-42';
const BASE = ['--jwt-secret', SECRET, '--api-key', API_KEY];
const T = { timeout: 20000 }; // per test: a hang fails instead of blocking the run

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowS = () => Math.floor(Date.now() / 1000);

// ---- tokens ----

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An HS256 JWT with claims (iat/exp one hour by default, role user). */
function mint(claims, { secret = SECRET, header = { alg: 'HS256', typ: 'JWT' } } = {}) {
  const body = { iat: nowS(), exp: nowS() + 3600, role: 'user', ...claims };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  const signing = `${b64url(header)}.${b64url(body)}`;
  return `${signing}.${crypto.createHmac('sha256', secret).update(signing).digest('base64url')}`;
}
const userToken = (sub, extra = {}) => mint({ sub, role: 'user', ...extra });
const adminToken = (sub = 'admin', extra = {}) => mint({ sub, role: 'admin', ...extra });

// ---- servers ----

/** A herald with BASE args plus args; srv.clients: closers of its clients, run before it stops. */
async function herald(args = []) {
  const srv = await startHerald([...BASE, ...args]);
  srv.clients = [];
  return srv;
}

/** Closes the server's clients, stops it and asserts a clean exit (no crash, no sanitizer report). */
async function stopClean(srv) {
  if (!srv) return;
  for (const close of srv.clients.splice(0)) await close();
  const r = await srv.stop();
  assert.deepEqual(r, { code: 0, signal: null }, `herald did not exit cleanly:\n${crashLog(srv)}`);
}

/** A server for one test only, stopped after it. */
async function testHerald(t, args = []) {
  const srv = await herald(args);
  t.after(() => stopClean(srv));
  return srv;
}

/** The interesting part of a dead server's log: the sanitizer report if any, else the tail. */
function crashLog(srv) {
  const log = srv.log;
  const i = log.search(SANITIZER_REPORT);
  return i >= 0 ? log.slice(Math.max(0, log.lastIndexOf('\n', i - 1)), i + 2500) : log.slice(-1500);
}

const dead = (srv) => srv.child.exitCode !== null || srv.child.signalCode !== null;

/** Asserts the server process is still running (a crash shows up here, not as a vague timeout). */
function assertAlive(srv) {
  assert.ok(!dead(srv), `herald died (exit ${srv.child.exitCode}, signal ${srv.child.signalCode}):\n${crashLog(srv)}`);
}

/** Runs fn; if it fails and the server has died meanwhile, the failure says so. */
async function crashAware(srv, fn) {
  try {
    await fn();
  } catch (e) {
    await Promise.race([srv.exited, sleep(1000)]);
    if (dead(srv)) {
      throw new Error(`herald died (exit ${srv.child.exitCode}, signal ${srv.child.signalCode}) during the test ` +
        `(client saw: ${e.message}):\n${crashLog(srv)}`);
    }
    throw e;
  }
}

// ---- a JSON-protocol client over `ws` ----

let idCounter = 0;
const nextId = (prefix = 'm') => `${prefix}-${++idCounter}`;

class JClient {
  constructor(ws) {
    this.ws = ws;
    this.queue = []; // received, not consumed yet
    this.received = []; // everything received
    this.waiters = new Set();
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this.#wake();
      });
    });
    ws.on('message', (data, isBinary) => {
      let f;
      try { f = JSON.parse(data.toString()); } catch { f = { unparsed: data.toString(), isBinary }; }
      this.queue.push(f);
      this.received.push(f);
      this.#wake();
    });
    ws.on('error', (e) => { this.error = e; });
  }

  #wake() { for (const w of [...this.waiters]) w(); }

  get open() { return this.ws.readyState === WebSocket.OPEN; }

  /** Sends an object as JSON, or a string/Buffer as it is (Buffer: a binary frame). */
  send(frame) {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** Sends {type, data, messageId, timestamp, ...extra}; returns the messageId. */
  request(type, data, extra = {}) {
    const messageId = extra.messageId ?? nextId(type);
    this.send({ type, data, timestamp: Date.now(), ...extra, messageId });
    return messageId;
  }

  /** Removes and returns the first queued frame matching pred, waiting up to ms for one. */
  async next(pred = () => true, { ms = 5000, what = 'a frame' } = {}) {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.queue.findIndex(pred);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (this.closeInfo || left <= 0) {
        if (this.closeInfo?.code === 1006 && this.srv) { // abnormal close: did the server die?
          await Promise.race([this.srv.exited, sleep(1000)]);
          const { exitCode, signalCode } = this.srv.child;
          if (exitCode !== null || signalCode !== null) {
            throw new Error(`herald died (exit ${exitCode}, signal ${signalCode}) while waiting for ${what}:\n` +
              crashLog(this.srv));
          }
        }
        throw new Error(`${this.closeInfo ? `connection closed (${JSON.stringify(this.closeInfo)})` : 'timed out'} ` +
          `waiting for ${what}; unconsumed: ${JSON.stringify(this.queue).slice(0, 1500)}`);
      }
      await new Promise((r) => {
        const done = () => { clearTimeout(timer); this.waiters.delete(done); r(); };
        const timer = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
  }

  /** The ack or error answering client frame `id`. */
  reply(id, ms) {
    return this.next((f) => (f.type === 'ack' && f.data?.messageId === id) ||
      (f.type === 'error' && f.data?.details?.messageId === id), { ms, what: `the reply to ${id}` });
  }

  ack(id, ms) { return this.next((f) => f.type === 'ack' && f.data?.messageId === id, { ms, what: `the ack of ${id}` }); }

  error(code, ms) { return this.next((f) => f.type === 'error', { ms, what: `error ${code}` }); }

  /** A heartbeat round trip: after it, everything the server sent before is in the queue. */
  async fence() {
    this.request('heartbeat', {});
    const hb = await this.next((f) => f.type === 'heartbeat', { what: 'the fence heartbeat reply' });
    assert.equal(typeof hb.data?.serverTime, 'number');
  }

  /** Frames matching pred that are queued now (removed from the queue). */
  take(pred) {
    const out = this.queue.filter(pred);
    this.queue = this.queue.filter((f) => !pred(f));
    return out;
  }

  /** After a fence, asserts no queued frame matches pred. */
  async none(pred, what = 'unexpected frame') {
    await this.fence();
    const got = this.take(pred);
    assert.deepEqual(got, [], `${what}: ${JSON.stringify(got)}`);
  }

  async subscribe(topic, { params, lastSequence, messageId } = {}) {
    const data = { topic };
    if (params !== undefined) data.params = params;
    if (lastSequence !== undefined) data.lastSequence = lastSequence;
    const id = this.request('subscribe', data, messageId ? { messageId } : {});
    return this.reply(id);
  }

  /** Subscribes and asserts the ack. */
  async subscribed(topic, opts) {
    const r = await this.subscribe(topic, opts);
    assert.equal(r.type, 'ack', `subscribe ${topic}: ${JSON.stringify(r)}`);
    return r;
  }

  async close() {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    const t = setTimeout(() => this.ws.terminate(), 2000);
    await this.closed;
    clearTimeout(t);
  }
}

function wsPath({ token, clientId, protocol = '1.0', header = false } = {}) {
  const q = new URLSearchParams();
  if (token !== undefined && !header) q.set('token', token);
  if (clientId !== undefined) q.set('clientId', clientId);
  if (protocol !== null) q.set('protocol', protocol);
  return `/api/v1/ws?${q}`;
}

/** A WebSocket to /api/v1/ws, open (nothing read yet); closed after the test. */
async function openWs(t, srv, opts = {}) {
  const headers = opts.header ? { Authorization: `Bearer ${opts.token}` } : {};
  const ws = new WebSocket(srv.wsUrl(wsPath(opts)), { headers, perMessageDeflate: opts.perMessageDeflate ?? false });
  const c = new JClient(ws);
  c.srv = srv;
  t.after(() => c.close());
  srv.clients?.push(() => c.close());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return c;
}

/** An accepted connection: the first frame was `connect` (kept as c.hello). */
async function connect(t, srv, opts = {}) {
  const c = await openWs(t, srv, opts);
  c.hello = await c.next(() => true, { what: 'the connect frame' });
  assert.equal(c.hello.type, 'connect', `first frame: ${JSON.stringify(c.hello)}`);
  return c;
}

/** An upgrade request sent in two parts over a raw socket (to complete it at a chosen moment). */
class RawUpgrade {
  static async start(port, path) {
    const sock = net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const u = new RawUpgrade(sock, path);
    sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
    return u;
  }

  constructor(sock, path) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.ended = new Promise((resolve) => { sock.on('close', resolve); sock.on('error', resolve); });
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); });
  }

  /** Sends the rest of the request; returns the status and the server frames until the close frame. */
  async finish() {
    this.sock.write('Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
      'Sec-WebSocket-Version: 13\r\n\r\n');
    const deadline = Date.now() + 5000;
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const status = Number(/^HTTP\/1\.1 (\d+)/.exec(this.buf.toString('latin1'))?.[1]);
        const frames = [];
        let off = end + 4;
        while (off + 2 <= this.buf.length) {
          const opcode = this.buf[off] & 0x0f;
          let len = this.buf[off + 1] & 0x7f;
          let hdr = 2;
          if (len === 126) { len = this.buf.readUInt16BE(off + 2); hdr = 4; }
          if (off + hdr + len > this.buf.length) break;
          frames.push({ opcode, payload: this.buf.subarray(off + hdr, off + hdr + len) });
          off += hdr + len;
        }
        if (frames.some((f) => f.opcode === 8)) return { status, frames };
      }
      assert.ok(Date.now() < deadline, `no close frame; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      await sleep(20);
    }
  }

  destroy() { this.sock.destroy(); }
}

/** Expects the refusal sequence: one error frame with code, then a close with closeCode. */
async function expectRefused(c, code, closeCode) {
  const f = await c.next(() => true, { what: `error ${code}` });
  assert.equal(f.type, 'error', JSON.stringify(f));
  assert.equal(f.data.code, code, JSON.stringify(f));
  assert.equal(typeof f.data.message, 'string');
  const closed = await Promise.race([c.closed, sleep(5000).then(() => null)]);
  assert.ok(closed, 'the server did not close the connection');
  assert.equal(closed.code, closeCode, JSON.stringify(closed));
  assert.deepEqual(c.queue, [], 'nothing but the error before the close');
  assert.ok(!c.received.some((x) => x.type === 'connect'), 'no connect frame on a refusal');
}

function assertEnvelope(f) {
  assert.equal(typeof f.type, 'string', JSON.stringify(f));
  assert.equal(typeof f.timestamp, 'number', JSON.stringify(f));
  assert.ok(Math.abs(f.timestamp - Date.now()) < 60000, `timestamp is ms since the epoch: ${f.timestamp}`);
  assert.equal(typeof f.messageId, 'string', JSON.stringify(f));
  assert.ok(f.messageId.length > 0);
}

// ---- HTTP ----

/** One HTTP request on its own connection. body: object (sent as JSON) or string/Buffer (as is). */
function httpRequest(srv, { method = 'POST', path = '/api/v1/publish', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined
      : Buffer.isBuffer(body) || typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port: srv.port, method, path, agent: false,
      headers: { ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}), ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('HTTP request timed out')));
    req.end(data);
  });
}

/** POST /api/v1/publish with the API key; asserts 200 and returns {messageId, sequence, delivered}. */
async function publish(srv, payload, headers = { 'X-API-Key': API_KEY }) {
  const r = await httpRequest(srv, { body: payload, headers });
  assert.equal(r.status, 200, `publish ${JSON.stringify(payload)}: ${r.status} ${r.text}`);
  assert.equal(typeof r.json?.messageId, 'string', r.text);
  assert.equal(typeof r.json.sequence, 'number', r.text);
  assert.equal(typeof r.json.delivered, 'number', r.text);
  return r.json;
}

function assertHttpError(r, status, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.match(String(r.headers['content-type']), /application\/json/, `${what}: content-type`);
  assert.equal(r.json?.code, status, `${what}: body ${r.text}`);
  assert.equal(typeof r.json.message, 'string', `${what}: body ${r.text}`);
  assert.ok(r.json.message.length > 0);
}

/** Waits for a socket.io-client socket to connect. */
function sioConnected(sock) {
  return new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('connect_error', reject); });
}

// =================================================================================================

describe('connect', () => {
  let srv;
  before(async () => { srv = await herald(); });
  after(() => stopClean(srv));

  test('connect frame: clientId echoed, serverTime, envelope fields (token in the query)', T, async (t) => {
    const t0 = Date.now();
    const c = await connect(t, srv, { token: userToken('alice'), clientId: 'client_123' });
    assertEnvelope(c.hello);
    assert.equal(c.hello.data.clientId, 'client_123');
    assert.equal(typeof c.hello.data.serverTime, 'number');
    assert.ok(Math.abs(c.hello.data.serverTime - t0) < 5000, `serverTime ${c.hello.data.serverTime} vs ${t0}`);
    assert.equal(c.hello.sequence, undefined, 'connect is not a topic message');
  });

  test('token in an Authorization: Bearer header; no clientId -> one is assigned', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('bob'), header: true });
    assert.equal(typeof c.hello.data.clientId, 'string');
    assert.ok(c.hello.data.clientId.length > 0);
    const c2 = await connect(t, srv, { token: userToken('bob'), header: true });
    assert.notEqual(c2.hello.data.clientId, c.hello.data.clientId, 'assigned clientIds are unique');
    assert.ok(c.open, 'two connections of one user with different clientIds coexist');
  });

  test('missing, malformed, forged, expired, alg-none, subject-less tokens -> error 1001, close 1008', T, async (t) => {
    const forged = mint({ sub: 'eve' }, { secret: 'another-secret-another-secret' });
    const expired = userToken('carol', { iat: nowS() - 7200, exp: nowS() - 3600 });
    const none = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'eve', role: 'admin', exp: nowS() + 600 })}.`;
    const noSub = mint({ sub: undefined });
    const cases = [
      ['missing', {}],
      ['empty', { token: '' }],
      ['malformed', { token: 'not-a-jwt' }],
      ['forged signature', { token: forged }],
      ['expired', { token: expired }],
      ['alg none', { token: none }],
      ['no sub', { token: noSub }],
      ['forged, in the header', { token: forged, header: true }],
      ['expired, in the header', { token: expired, header: true }],
    ];
    for (const [what, opts] of cases) {
      const c = await openWs(t, srv, opts);
      await t.test(what, () => expectRefused(c, 1001, 1008));
    }
  });

  test('unsupported protocol=2.0 -> error 1002, close 1002', T, async (t) => {
    const c = await openWs(t, srv, { token: userToken('dave'), protocol: '2.0' });
    await expectRefused(c, 1002, 1002);
    const ok = await connect(t, srv, { token: userToken('dave'), protocol: '1.0' });
    assert.ok(ok.open);
  });
});

describe('server full', () => {
  let srv;
  before(async () => { srv = await herald(['--max-connections', '2']); });
  after(() => stopClean(srv));

  test('--max-connections 2 with 2 open: the third gets error 1000, close 1013; room again after a close', T, async (t) => {
    const a = await connect(t, srv, { token: userToken('u1') });
    await connect(t, srv, { token: userToken('u2') });
    const third = await openWs(t, srv, { token: userToken('u3') });
    await expectRefused(third, 1000, 1013);
    await a.close();
    // the server frees the slot once it has seen both closes; retry briefly
    const deadline = Date.now() + 5000;
    for (;;) {
      const c = await openWs(t, srv, { token: userToken('u3') });
      const f = await c.next(() => true);
      if (f.type === 'connect') break;
      assert.equal(f.data.code, 1000);
      await c.close();
      assert.ok(Date.now() < deadline, 'no slot freed after a connection closed');
      await sleep(50);
    }
  });
});

describe('heartbeat and disconnect reasons', () => {
  let srv;
  before(async () => { srv = await herald(); });
  after(() => stopClean(srv));

  test('heartbeat is answered at once with serverTime (repeated messageId too)', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('hb') });
    for (let i = 0; i < 2; i++) {
      const sent = Date.now();
      c.send({ type: 'heartbeat', data: {}, timestamp: sent, messageId: 'hb-same' });
      const hb = await c.next(() => true, { ms: 2000 });
      assert.equal(hb.type, 'heartbeat', JSON.stringify(hb));
      assertEnvelope(hb);
      assert.equal(typeof hb.data.serverTime, 'number');
      assert.ok(Math.abs(hb.data.serverTime - sent) < 5000);
    }
    c.send({ type: 'heartbeat' }); // no data, no messageId
    assert.equal((await c.next()).type, 'heartbeat');
  });

  test('same user + same clientId: the first gets disconnect {reason: replaced} then closes', T, async (t) => {
    const tok = userToken('rita');
    const first = await connect(t, srv, { token: tok, clientId: 'phone' });
    const second = await connect(t, srv, { token: tok, clientId: 'phone' });
    assert.equal(second.hello.data.clientId, 'phone');
    const bye = await first.next(() => true);
    assert.equal(bye.type, 'disconnect', JSON.stringify(bye));
    assert.deepEqual(bye.data, { reason: 'replaced' });
    assertEnvelope(bye);
    const closed = await first.closed;
    assert.equal(closed.code, 1000, JSON.stringify(closed));
    await second.fence();
    assert.ok(second.open);
    // the old connection's close must not unregister the new one: a third replaces the second
    const third = await connect(t, srv, { token: tok, clientId: 'phone' });
    const bye2 = await second.next(() => true);
    assert.deepEqual([bye2.type, bye2.data], ['disconnect', { reason: 'replaced' }]);
    await second.closed;
    await third.fence();
  });

  test('another user with the same clientId does not replace', T, async (t) => {
    const a = await connect(t, srv, { token: userToken('sam'), clientId: 'shared-id' });
    const b = await connect(t, srv, { token: userToken('tom'), clientId: 'shared-id' });
    await a.none((f) => f.type === 'disconnect', 'first connection was disconnected');
    await b.fence();
    assert.ok(a.open && b.open);
  });

  test('token expiring 2 s after connect: disconnect {reason: token expired}, close 1008', T, async (t) => {
    const exp = nowS() + 2;
    const c = await connect(t, srv, { token: userToken('short', { exp }) });
    await c.subscribed('public:exp');
    const bye = await c.next(() => true, { ms: 6000, what: 'disconnect token expired' });
    assert.ok(Date.now() >= exp * 1000, `disconnected at ${Date.now()}, before exp ${exp * 1000}`);
    assert.equal(bye.type, 'disconnect', JSON.stringify(bye));
    assert.deepEqual(bye.data, { reason: 'token expired' });
    const closed = await c.closed;
    assert.equal(closed.code, 1008, JSON.stringify(closed));
  });

  test('SIGTERM: every connection gets disconnect {reason: shutdown}, then close 1001', T, async (t) => {
    const own = await startHerald(BASE);
    try {
      const a = await connect(t, own, { token: userToken('x1') });
      const b = await connect(t, own, { token: adminToken('x2') });
      // a handshake under way when the signal comes: completed after it -> refused with 1000, close 1001
      const late = await RawUpgrade.start(own.port, wsPath({ token: userToken('x3') }));
      t.after(() => late.destroy());
      await sleep(100);
      own.child.kill('SIGTERM');
      for (const c of [a, b]) {
        const bye = await c.next(() => true);
        assert.equal(bye.type, 'disconnect', JSON.stringify(bye));
        assert.deepEqual(bye.data, { reason: 'shutdown' });
        const closed = await c.closed;
        assert.equal(closed.code, 1001, JSON.stringify(closed));
      }
      const { status, frames } = await late.finish();
      assert.equal(status, 101);
      assert.equal(frames[0]?.opcode, 1, JSON.stringify(frames));
      const err = JSON.parse(frames[0].payload.toString());
      assert.deepEqual([err.type, err.data.code], ['error', 1000], JSON.stringify(err));
      assert.equal(frames[1]?.opcode, 8, JSON.stringify(frames));
      assert.equal(frames[1].payload.readUInt16BE(0), 1001);
    } finally {
      const r = await own.stop();
      assert.deepEqual(r, { code: 0, signal: null }, own.log.slice(-2000));
    }
  });
});

describe('subscriptions', () => {
  let srv;
  before(async () => { srv = await herald(); });
  after(() => stopClean(srv));

  test('subscribe and unsubscribe are acked with the frame\'s messageId; unsubscribed gets nothing', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('s1') });
    const id = c.request('subscribe', { topic: 'public:news' });
    const ack = await c.next(() => true);
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assertEnvelope(ack);
    assert.equal(ack.data.messageId, id);
    assert.equal(ack.data.topic, 'public:news');
    assert.notEqual(ack.messageId, id, 'the ack has its own messageId');

    const p = await publish(srv, { topic: 'public:news', type: 'data', data: { n: 1 } });
    assert.equal(p.delivered, 1);
    const m = await c.next((f) => f.type === 'data');
    assert.deepEqual(m.data, { n: 1 });

    const uid = c.request('unsubscribe', { topic: 'public:news' });
    const uack = await c.next(() => true);
    assert.equal(uack.type, 'ack', JSON.stringify(uack));
    assert.equal(uack.data.messageId, uid);
    const p2 = await publish(srv, { topic: 'public:news', type: 'data', data: { n: 2 } });
    assert.equal(p2.delivered, 0);
    await c.none((f) => f.type === 'data', 'delivered after unsubscribe');
  });

  test('permissions: user:<own id> yes, another user\'s -> 3001 (details.messageId); admin may', T, async (t) => {
    const u = await connect(t, srv, { token: userToken('u7') });
    for (const topic of ['user:u7', 'user:u7:inbox', 'public', 'public:x', 'system', 'system:alerts']) {
      const r = await u.subscribe(topic);
      assert.equal(r.type, 'ack', `${topic}: ${JSON.stringify(r)}`);
    }
    for (const topic of ['user:u8', 'user:u70', 'user:u8:inbox', 'private', 'admin:all', 'publicity']) {
      const id = nextId('deny');
      const r = await u.subscribe(topic, { messageId: id });
      assert.equal(r.type, 'error', `${topic}: ${JSON.stringify(r)}`);
      assert.equal(r.data.code, 3001, `${topic}: ${JSON.stringify(r)}`);
      assert.equal(r.data.details.messageId, id);
    }
    const p = await publish(srv, { topic: 'user:u8', type: 'data', data: 1 });
    assert.equal(p.delivered, 0, 'a refused subscription receives nothing');
    const admin = await connect(t, srv, { token: adminToken('root') });
    await admin.subscribed('user:u8');
    await admin.subscribed('anything:at:all');
  });

  test('invalid topics -> 3000; ill-typed fields -> 2000; the connection stays usable', T, async (t) => {
    const c = await connect(t, srv, { token: adminToken('inv') });
    for (const topic of ['', 'a\u0001b', 'tab\there', 'del\u007f', 'x'.repeat(201)]) {
      const r = await c.subscribe(topic);
      assert.equal(r.type, 'error', `${JSON.stringify(topic)}: ${JSON.stringify(r)}`);
      assert.equal(r.data.code, 3000, `${JSON.stringify(topic)}: ${JSON.stringify(r)}`);
    }
    await c.subscribed('x'.repeat(200));
    const bad = [
      { params: { nested: { a: 1 } } }, { params: [1, 2] }, { params: { b: true } }, { params: 'room=a' },
      { lastSequence: '5' }, { lastSequence: 1.5 },
    ];
    for (const extra of bad) {
      const id = c.request('subscribe', { topic: 'public:ok', ...extra });
      const r = await c.reply(id);
      assert.equal(r.type, 'error', `${JSON.stringify(extra)}: ${JSON.stringify(r)}`);
      assert.equal(r.data.code, 2000, `${JSON.stringify(extra)}: ${JSON.stringify(r)}`);
    }
    for (const data of [undefined, {}, { topic: 5 }, 'public:ok']) {
      const id = c.request('subscribe', data);
      const r = await c.reply(id);
      assert.equal(r.data.code, 2000, `${JSON.stringify(data)}: ${JSON.stringify(r)}`);
    }
    await c.subscribed('public:ok');
  });

  test('params: a publish with {room:a} reaches subscribers of the topic alone and with exactly {room:a}', T, async (t) => {
    const topic = 'public:rooms';
    const alone = await connect(t, srv, { token: userToken('p1') });
    const roomA = await connect(t, srv, { token: userToken('p2') });
    const roomB = await connect(t, srv, { token: userToken('p3') });
    const multi = await connect(t, srv, { token: userToken('p4') });
    await alone.subscribed(topic);
    const ackA = await roomA.subscribed(topic, { params: { room: 'a' } });
    assert.deepEqual(ackA.data.params, { room: 'a' });
    await roomB.subscribed(topic, { params: { room: 'b' } });
    await multi.subscribed(topic, { params: { z: 'last', n: 7 } });

    const p = await publish(srv, { topic, params: { room: 'a' }, type: 'data', data: { to: 'a' } });
    assert.equal(p.delivered, 2);
    for (const c of [alone, roomA]) {
      const m = await c.next((f) => f.type === 'data');
      assertEnvelope(m);
      assert.equal(m.topic, topic);
      assert.deepEqual(m.params, { room: 'a' });
      assert.deepEqual(m.data, { to: 'a' });
      assert.equal(m.messageId, p.messageId);
      assert.equal(m.sequence, p.sequence);
    }
    await roomB.none((f) => f.type === 'data', '{room:b} got a {room:a} publish');
    await multi.none((f) => f.type === 'data', 'other params got a {room:a} publish');

    // without params: only the topic-alone subscriber
    const p2 = await publish(srv, { topic, type: 'data', data: { to: 'all' } });
    assert.equal(p2.delivered, 1);
    const m2 = await alone.next((f) => f.type === 'data');
    assert.equal(m2.params, undefined);
    assert.equal(m2.topic, topic);
    for (const c of [roomA, roomB, multi]) await c.none((f) => f.type === 'data', 'a params subscriber got a params-less publish');

    // params match regardless of key order; numbers and strings as given
    const p3 = await publish(srv, { topic, params: { n: 7, z: 'last' }, type: 'data', data: 3 });
    assert.equal(p3.delivered, 2);
    const m3 = await multi.next((f) => f.type === 'data');
    assert.deepEqual(m3.params, { n: 7, z: 'last' });
    await alone.next((f) => f.type === 'data' && f.data === 3);
    const p4 = await publish(srv, { topic, params: { n: '7', z: 'last' }, type: 'data', data: 4 });
    assert.equal(p4.delivered, 1, 'the string "7" is not the number 7');

    // unsubscribing with the params leaves exactly that subscription
    const uid = roomA.request('unsubscribe', { topic, params: { room: 'a' } });
    await roomA.ack(uid);
    const p5 = await publish(srv, { topic, params: { room: 'a' }, type: 'data', data: 5 });
    assert.equal(p5.delivered, 1);
  });

  test('a topic named like a params room key is its own topic (no crosstalk with topic + params)', T, async (t) => {
    const sub = await connect(t, srv, { token: userToken('k1') });
    await sub.subscribed('public:ct', { params: { room: 'a' } });
    const other = await connect(t, srv, { token: userToken('k2') });
    await other.subscribed('public:ct?{"room":"a"}');
    // a publish to the oddly named topic must not reach the params subscriber of `public:ct`...
    const p = await publish(srv, { topic: 'public:ct?{"room":"a"}', type: 'data', data: 'odd' });
    await other.next((f) => f.type === 'data');
    await sub.none((f) => f.type === 'data', 'publish to topic `public:ct?{"room":"a"}` reached a subscriber of `public:ct` {room:a}');
    // ...and a publish to `public:ct` {room:a} must not reach the subscriber of the odd topic
    await publish(srv, { topic: 'public:ct', params: { room: 'a' }, type: 'data', data: 'real' });
    await sub.next((f) => f.type === 'data');
    await other.none((f) => f.type === 'data', 'publish to `public:ct` {room:a} reached a subscriber of topic `public:ct?{"room":"a"}`');
    assert.ok(p.delivered >= 1);
  });

  test('sequence: strictly increasing per topic across publishes (with and without params)', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('q1') });
    const ack = await c.subscribed('public:seq');
    assert.equal(typeof ack.data.sequence, 'number');
    const other = await connect(t, srv, { token: userToken('q2') });
    await other.subscribed('public:seq2');
    const sent = [];
    for (let i = 0; i < 8; i++) {
      const params = i % 3 === 0 ? { k: i } : undefined;
      sent.push(await publish(srv, { topic: 'public:seq', type: i % 2 ? 'status' : 'data', data: { i }, ...(params ? { params } : {}) }));
      await publish(srv, { topic: 'public:seq2', type: 'data', data: { i } }); // another topic in between
    }
    let last = ack.data.sequence;
    for (let i = 0; i < 8; i++) {
      const m = await c.next((f) => f.type === 'data' || f.type === 'status');
      assert.deepEqual(m.data, { i }, 'in publish order');
      assert.equal(m.type, i % 2 ? 'status' : 'data');
      assert.equal(m.topic, 'public:seq');
      assert.equal(m.sequence, sent[i].sequence);
      assert.equal(m.messageId, sent[i].messageId);
      assert.ok(m.sequence > last, `sequence ${m.sequence} after ${last}`);
      last = m.sequence;
    }
    assert.equal(new Set(sent.map((s) => s.messageId)).size, 8, 'messageIds unique');
    const seq2 = [];
    for (let i = 0; i < 8; i++) seq2.push((await other.next((f) => f.type === 'data')).sequence);
    for (let i = 1; i < 8; i++) assert.ok(seq2[i] > seq2[i - 1]);
  });
});

describe('subscription limit', () => {
  let srv;
  before(async () => { srv = await herald(['--max-subscriptions', '2']); });
  after(() => stopClean(srv));

  test('--max-subscriptions 2: the third gets 3000; re-subscribing is free; unsubscribe makes room', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('lim') });
    await c.subscribed('public:a');
    await c.subscribed('public:b');
    const id = nextId('third');
    const r = await c.subscribe('public:c', { messageId: id });
    assert.equal(r.type, 'error', JSON.stringify(r));
    assert.equal(r.data.code, 3000);
    assert.equal(r.data.details.messageId, id);
    await c.subscribed('public:a'); // already subscribed: not a new subscription
    await c.ack(c.request('unsubscribe', { topic: 'public:a' }));
    await c.subscribed('public:c');
    const p = await publish(srv, { topic: 'public:c', type: 'data', data: 1 });
    assert.equal(p.delivered, 1);
    // the limit is per connection
    const d = await connect(t, srv, { token: userToken('lim') });
    await d.subscribed('public:a');
  });
});

describe('subscription limit below --max-subscriptions', () => {
  let srv;
  before(async () => { srv = await herald(['--max-subscriptions', '10', '--max-rooms-per-socket', '2']); });
  after(() => stopClean(srv));

  test('--max-rooms-per-socket 2 bounds a JSON connection too: the third gets 3000 "subscription limit reached", not a transient error', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('lim2') });
    await c.subscribed('public:a');
    await c.subscribed('public:b');
    const r = await c.subscribe('public:c', { messageId: nextId('third') });
    assert.equal(r.type, 'error', JSON.stringify(r));
    assert.equal(r.data.code, 3000);
    assert.match(r.data.message, /subscription limit reached/);
    await c.ack(c.request('unsubscribe', { topic: 'public:a' }));
    await c.subscribed('public:c');
  });
});

describe('replay with lastSequence', () => {
  // every test has its own server: a crash in one does not take the others with it

  async function received(c, n) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await c.next((f) => f.type === 'data', { what: `message ${i + 1} of ${n}` }));
    return out;
  }

  test('unsubscribe, M missed, resubscribe: ack recovered:true, then exactly the M in order, then live', T, async (t) => {
    const srv = await testHerald(t);
    const topic = 'public:replay';
    const c = await connect(t, srv, { token: userToken('r1') });
    await c.subscribed(topic);
    const first = [];
    for (let i = 0; i < 3; i++) first.push(await publish(srv, { topic, type: 'data', data: { i } }));
    const got = await received(c, 3);
    assert.deepEqual(got.map((f) => f.sequence), first.map((p) => p.sequence));
    await c.ack(c.request('unsubscribe', { topic }));
    const missed = [];
    for (let i = 3; i < 5; i++) missed.push(await publish(srv, { topic, type: 'data', data: { i } }));
    const id = c.request('subscribe', { topic, lastSequence: got[2].sequence });
    const ack = await c.next(() => true, { what: 'the subscribe ack' });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.data.messageId, id);
    assert.equal(ack.data.recovered, true, JSON.stringify(ack));
    assertAlive(srv);
    const replayed = [await c.next(() => true), await c.next(() => true)];
    assert.deepEqual(replayed.map((f) => [f.type, f.sequence, f.messageId, f.data.i]),
      missed.map((p, k) => ['data', p.sequence, p.messageId, 3 + k]));
    const live = await publish(srv, { topic, type: 'data', data: { i: 5 } });
    const l = await c.next(() => true);
    assert.equal(l.sequence, live.sequence);
    assert.ok(l.sequence > replayed[1].sequence);
    await c.none((f) => f.type === 'data', 'replayed twice');
  });

  test('disconnect, M missed, new connection with lastSequence (a live publish racing the subscribe)', T, async (t) => {
    const srv = await testHerald(t);
    const topic = 'public:replay2';
    const c = await connect(t, srv, { token: userToken('r2') });
    await c.subscribed(topic);
    await publish(srv, { topic, type: 'data', data: { i: 0 } });
    const [seen] = await received(c, 1);
    await c.close();
    const missed = [];
    for (let i = 1; i <= 4; i++) missed.push(await publish(srv, { topic, type: 'data', data: { i } }));
    const d = await connect(t, srv, { token: userToken('r2') });
    const id = d.request('subscribe', { topic, lastSequence: seen.sequence });
    const racing = publish(srv, { topic, type: 'data', data: { i: 5 } }); // before or after the subscribe
    racing.catch(() => {}); // awaited below; not unhandled if the test fails first
    const ack = await d.ack(id);
    assert.equal(ack.data.recovered, true, JSON.stringify(ack));
    const live = await racing;
    assertAlive(srv);
    const msgs = await received(d, 5);
    assert.deepEqual(msgs.map((f) => f.data.i), [1, 2, 3, 4, 5], 'missed in order, then live, nothing twice');
    assert.deepEqual(msgs.map((f) => f.sequence), [...missed, live].map((p) => p.sequence));
    await d.none((f) => f.type === 'data', 'a message twice');
  });

  test('--topic-history 3: 3 missed -> recovered:true; 5 missed -> recovered:false and the 3 held are replayed', T, async (t) => {
    const srv = await testHerald(t, ['--topic-history', '3']);
    const c = await connect(t, srv, { token: userToken('r3') });
    for (const [topic, n, recovered] of [['public:h3', 3, true], ['public:h5', 5, false]]) {
      const base = await publish(srv, { topic, type: 'data', data: { i: 0 } });
      const missed = [];
      for (let i = 1; i <= n; i++) missed.push(await publish(srv, { topic, type: 'data', data: { i } }));
      const ack = await c.subscribe(topic, { lastSequence: base.sequence });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      assert.equal(ack.data.recovered, recovered, `${n} missed: ${JSON.stringify(ack)}`);
      assertAlive(srv);
      const held = missed.slice(-3);
      const msgs = await received(c, held.length);
      assert.deepEqual(msgs.map((f) => f.sequence), held.map((p) => p.sequence), `${n} missed: the last 3, in order`);
      await c.none((f) => f.type === 'data', 'more than history holds');
    }
  });

  test('lastSequence from the future -> recovered:false, nothing replayed; up to date -> recovered:true', T, async (t) => {
    const srv = await testHerald(t);
    const topic = 'public:future';
    const last = await publish(srv, { topic, type: 'data', data: 1 });
    const c = await connect(t, srv, { token: userToken('r4') });
    const ack = await c.subscribe(topic, { lastSequence: last.sequence + 1000 });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.data.recovered, false, JSON.stringify(ack));
    assert.equal(ack.data.sequence, last.sequence, 'the ack names the topic\'s current sequence');
    await c.none((f) => f.type === 'data', 'replayed from the future');
    const d = await connect(t, srv, { token: userToken('r4') });
    const ack2 = await d.subscribe(topic, { lastSequence: last.sequence });
    assert.equal(ack2.data.recovered, true, JSON.stringify(ack2));
    await d.none((f) => f.type === 'data', 'replayed what was seen');
  });

  test('replay honours params: the {room:a} subscriber replays only {room:a} publishes', T, async (t) => {
    const srv = await testHerald(t);
    const topic = 'public:rp';
    const base = await publish(srv, { topic, type: 'data', data: 'base' });
    const a1 = await publish(srv, { topic, params: { room: 'a' }, type: 'data', data: 'a1' });
    await publish(srv, { topic, params: { room: 'b' }, type: 'data', data: 'b1' });
    await publish(srv, { topic, type: 'data', data: 'all' });
    const a2 = await publish(srv, { topic, params: { room: 'a' }, type: 'data', data: 'a2' });
    const c = await connect(t, srv, { token: userToken('r5') });
    const ack = await c.subscribe(topic, { params: { room: 'a' }, lastSequence: base.sequence });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assertAlive(srv);
    const msgs = await received(c, 2);
    assert.deepEqual(msgs.map((f) => [f.data, f.sequence]), [['a1', a1.sequence], ['a2', a2.sequence]]);
    await c.none((f) => f.type === 'data', 'replayed a publish for other params');
    const d = await connect(t, srv, { token: userToken('r6') });
    await d.subscribed(topic, { lastSequence: base.sequence });
    const all = await received(d, 4);
    assert.deepEqual(all.map((f) => f.data), ['a1', 'b1', 'all', 'a2']);
  });

  test('--topic-history-age 300: older messages are not replayable -> recovered:false', T, async (t) => {
    const srv = await testHerald(t, ['--topic-history-age', '300']);
    const topic = 'public:aged';
    const base = await publish(srv, { topic, type: 'data', data: 0 });
    await publish(srv, { topic, type: 'data', data: 1 });
    await sleep(700);
    const c = await connect(t, srv, { token: userToken('r7') });
    const ack = await c.subscribe(topic, { lastSequence: base.sequence });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.data.recovered, false, JSON.stringify(ack));
    await c.none((f) => f.type === 'data', 'replayed an expired message');
  });
});

describe('notifications: acks, redelivery, inbox', () => {
  let srv;
  before(async () => { srv = await herald(['--ack-timeout', '300', '--ack-retries', '2']); });
  after(() => stopClean(srv));

  const notify = (sub, data) => publish(srv, { topic: `user:${sub}`, type: 'notification', data });
  const isNote = (m) => (f) => f.type === 'notification' && f.messageId === m;

  test('unacked: sent again with the same messageId and sequence after the ack timeout; acked: no more', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('n1') });
    await c.subscribed('user:n1');
    const t0 = Date.now(); // before the publish: the server's timer starts at its send, after this
    const p = await notify('n1', { text: 'hello' });
    const first = await c.next((f) => f.type === 'notification');
    assert.deepEqual([first.messageId, first.sequence, first.topic, first.data], [p.messageId, p.sequence, 'user:n1', { text: 'hello' }]);
    const again = await c.next(isNote(p.messageId), { ms: 3000, what: 'the redelivery' });
    assert.ok(Date.now() - t0 >= 250, `redelivered after ${Date.now() - t0} ms, the ack timeout is 300`);
    assert.deepEqual(again, first, 'the very same frame');
    c.send({ type: 'ack', data: { messageId: p.messageId }, messageId: nextId('ack'), timestamp: Date.now() });
    await c.fence();
    c.take(isNote(p.messageId)); // one may have crossed the ack
    await sleep(1000);
    await c.none(isNote(p.messageId), 'redelivered after the ack');
  });

  test('acked at once: never redelivered; data/status need no ack', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('n2') });
    await c.subscribed('user:n2');
    const p = await notify('n2', 1);
    await c.next(isNote(p.messageId));
    c.send({ type: 'ack', data: { messageId: p.messageId } });
    const d = await publish(srv, { topic: 'user:n2', type: 'data', data: 2 });
    const s = await publish(srv, { topic: 'user:n2', type: 'status', data: 3 });
    await c.next((f) => f.messageId === d.messageId);
    await c.next((f) => f.messageId === s.messageId);
    await sleep(1000);
    await c.none((f) => [p.messageId, d.messageId, s.messageId].includes(f.messageId), 'redelivered');
    // the next connection of the user finds nothing waiting
    await c.close();
    const c2 = await connect(t, srv, { token: userToken('n2') });
    await c2.none(() => true, 'something waited in the inbox');
  });

  test('--ack-retries 2 exhausted: 3 sends, then it waits in the inbox for the next connection', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('n3'), clientId: 'dev' });
    await c.subscribed('user:n3');
    const p = await notify('n3', { important: true });
    const sends = [];
    for (let i = 0; i < 3; i++) sends.push(await c.next(isNote(p.messageId), { ms: 3000, what: `send ${i + 1}` }));
    for (const f of sends) assert.deepEqual([f.messageId, f.sequence], [p.messageId, p.sequence]);
    await sleep(1200); // past the third timeout and a sweep
    await c.none(isNote(p.messageId), 'sent more than 1 + --ack-retries times');
    await c.close();
    const next = await connect(t, srv, { token: userToken('n3'), clientId: 'other-dev' });
    const f = await next.next((x) => x.type === 'notification', { what: 'the notification from the inbox' });
    assert.deepEqual([f.messageId, f.sequence, f.data, f.topic], [p.messageId, p.sequence, { important: true }, 'user:n3']);
    next.send({ type: 'ack', data: { messageId: p.messageId } });
    await next.fence();
    await next.close();
    const third = await connect(t, srv, { token: userToken('n3') });
    await third.none((x) => x.type === 'notification', 'an acked notification came back');
  });

  test('unacked at disconnect: delivered on the next connection (same messageId and sequence)', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('n4') });
    await c.subscribed('user:n4');
    const p1 = await notify('n4', 'one');
    const p2 = await notify('n4', 'two');
    await c.next(isNote(p1.messageId));
    await c.next(isNote(p2.messageId));
    await c.close();
    const other = await connect(t, srv, { token: userToken('someone-else') });
    await other.none((f) => f.type === 'notification', 'another user got the inbox');
    const d = await connect(t, srv, { token: userToken('n4') });
    const got = [await d.next(() => true), await d.next(() => true)];
    assert.deepEqual(got.map((f) => [f.type, f.messageId, f.sequence, f.data]),
      [['notification', p1.messageId, p1.sequence, 'one'], ['notification', p2.messageId, p2.sequence, 'two']]);
    for (const p of [p1, p2]) d.send({ type: 'ack', data: { messageId: p.messageId } });
    await d.fence();
    await d.close();
    const e = await connect(t, srv, { token: userToken('n4') });
    await e.none((f) => f.type === 'notification', 'acked notifications came back');
  });

  test('unacked on a connection that gets replaced: the replacing connection receives it', T, async (t) => {
    const tok = userToken('n5');
    const c = await connect(t, srv, { token: tok, clientId: 'phone' });
    await c.subscribed('user:n5');
    const p = await notify('n5', 'while reconnecting');
    await c.next(isNote(p.messageId));
    const d = await connect(t, srv, { token: tok, clientId: 'phone' }); // the same device reconnects
    await c.closed;
    const f = await d.next(isNote(p.messageId), { ms: 3000, what: 'the unacked notification on the replacing connection' });
    assert.equal(f.sequence, p.sequence);
  });
});

describe('inbox limit', () => {
  let srv;
  before(async () => { srv = await herald(['--inbox-max', '2']); });
  after(() => stopClean(srv));

  test('--inbox-max 2: of 3 unacked, the newest 2 wait for the next connection', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('ib') });
    await c.subscribed('user:ib');
    const ps = [];
    for (let i = 0; i < 3; i++) ps.push(await publish(srv, { topic: 'user:ib', type: 'notification', data: i }));
    for (const p of ps) await c.next((f) => f.messageId === p.messageId);
    await c.close();
    const d = await connect(t, srv, { token: userToken('ib') });
    await d.fence();
    const got = d.take((f) => f.type === 'notification');
    assert.deepEqual(got.map((f) => f.messageId), [ps[1].messageId, ps[2].messageId]);
  });
});

describe('duplicate suppression', () => {
  let srv;
  before(async () => { srv = await herald(); });
  after(() => stopClean(srv));

  test('admin publishes the same messageId twice: acked twice, delivered once', T, async (t) => {
    const sub = await connect(t, srv, { token: userToken('d1') });
    await sub.subscribed('public:dup');
    const admin = await connect(t, srv, { token: adminToken('d-admin') });
    const frame = { type: 'data', topic: 'public:dup', data: { v: 1 }, messageId: 'dup-1', timestamp: Date.now() };
    admin.send(frame);
    admin.send(frame);
    const a1 = await admin.ack('dup-1');
    const a2 = await admin.ack('dup-1');
    assert.equal(typeof a1.data.sequence, 'number', JSON.stringify(a1));
    assert.equal(a1.data.delivered, 1, JSON.stringify(a1));
    assert.notEqual(a1.data.duplicate, true);
    assert.equal(a2.data.duplicate, true, JSON.stringify(a2));
    const m = await sub.next((f) => f.type === 'data');
    assert.deepEqual([m.data, m.topic, m.sequence], [{ v: 1 }, 'public:dup', a1.data.sequence]);
    assert.equal(m.messageId, a1.data.publishedId);
    await sub.none((f) => f.type === 'data', 'the duplicate was published');
    // another messageId is processed
    admin.send({ ...frame, messageId: 'dup-2' });
    await admin.ack('dup-2');
    await sub.next((f) => f.type === 'data');
  });

  test('subscribe sent twice with one messageId: two acks, one subscription', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('d2') });
    const data = { topic: 'public:dup2' };
    c.send({ type: 'subscribe', data, messageId: 'sub-x' });
    c.send({ type: 'subscribe', data, messageId: 'sub-x' });
    const a1 = await c.ack('sub-x');
    const a2 = await c.ack('sub-x');
    assert.equal(a1.data.topic, 'public:dup2');
    assert.equal(a2.data.duplicate, true);
    const p = await publish(srv, { topic: 'public:dup2', type: 'data', data: 1 });
    assert.equal(p.delivered, 1);
    await c.next((f) => f.type === 'data');
    await c.none((f) => f.type === 'data', 'delivered twice');
  });

  test('a user may not publish (3001); a refused frame re-sent with its messageId is refused again', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('d3') });
    const frame = { type: 'data', topic: 'public:dup3', data: 1, messageId: 'user-pub' };
    c.send(frame);
    const e1 = await c.reply('user-pub');
    assert.deepEqual([e1.type, e1.data.code], ['error', 3001], JSON.stringify(e1));
    c.send(frame);
    const e2 = await c.reply('user-pub');
    assert.equal(e2.type, 'error', `a refused publish re-sent was acknowledged as if done: ${JSON.stringify(e2)}`);
    assert.equal(e2.data.code, 3001);
  });

  test('a client publish without a topic -> 2000', T, async (t) => {
    const admin = await connect(t, srv, { token: adminToken('d4') });
    const id = admin.request('data', { x: 1 });
    const e = await admin.reply(id);
    assert.deepEqual([e.type, e.data.code], ['error', 2000], JSON.stringify(e));
  });

  test('duplicates are recognised across reconnects of the same user and clientId, not of another clientId', T, async (t) => {
    const sub = await connect(t, srv, { token: userToken('d5') });
    await sub.subscribed('public:again');
    const tok = adminToken('d5-admin');
    const frame = { type: 'data', topic: 'public:again', data: 'once', messageId: 'resent-after-reconnect' };
    const a = await connect(t, srv, { token: tok, clientId: 'backend-1' });
    a.send(frame);
    assert.notEqual((await a.ack(frame.messageId)).data.duplicate, true);
    await a.close();
    const b = await connect(t, srv, { token: tok, clientId: 'backend-1' });
    b.send(frame);
    assert.equal((await b.ack(frame.messageId)).data.duplicate, true, 'the resent frame was processed again');
    const other = await connect(t, srv, { token: tok, clientId: 'backend-2' });
    other.send(frame);
    assert.notEqual((await other.ack(frame.messageId)).data.duplicate, true, 'another clientId shares the window');
    await sub.fence();
    assert.deepEqual(sub.take((f) => f.type === 'data').map((f) => f.data), ['once', 'once']);
  });

  test('--dedupe-window 2: a messageId older than the window is processed again', T, async (t) => {
    const own = await testHerald(t, ['--dedupe-window', '2']);
    const sub = await connect(t, own, { token: userToken('w1') });
    await sub.subscribed('public:win');
    const admin = await connect(t, own, { token: adminToken('w-admin') });
    for (const id of ['w-1', 'w-2', 'w-3', 'w-1']) {
      admin.send({ type: 'data', topic: 'public:win', data: id, messageId: id });
      const a = await admin.ack(id);
      assert.notEqual(a.data.duplicate, true, `${id}: ${JSON.stringify(a)}`);
    }
    admin.send({ type: 'data', topic: 'public:win', data: 'w-1', messageId: 'w-1' });
    assert.equal((await admin.ack('w-1')).data.duplicate, true, 'within the window again');
    await sub.fence();
    assert.deepEqual(sub.take((f) => f.type === 'data').map((f) => f.data), ['w-1', 'w-2', 'w-3', 'w-1']);
  });
});

describe('invalid frames', () => {
  let srv;
  before(async () => { srv = await herald(); });
  after(() => stopClean(srv));

  test('not JSON, not an object, no/ill-typed type or messageId, binary -> 2000; the connection stays open', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('e1') });
    const bad = ['hello', '{"type":', '[1,2,3]', '[]', '"heartbeat"', '42', 'null', '{}', '{"data":{}}', '{"type":5}',
      '{"type":null}', '{"type":""}', '{"type":["heartbeat"]}', '{"type":"heartbeat","messageId":5}',
      '{"type":"heartbeat","timestamp":"now"}', Buffer.from('{"type":"heartbeat"}')];
    for (const frame of bad) {
      c.send(frame);
      const e = await c.next(() => true, { ms: 2000, what: `the reply to ${frame}` });
      assert.equal(e.type, 'error', `${frame}: ${JSON.stringify(e)}`);
      assert.equal(e.data.code, 2000, `${frame}: ${JSON.stringify(e)}`);
      assertEnvelope(e);
      assert.ok(c.open, `closed after ${frame}`);
    }
    await c.fence();
    await c.subscribed('public:still-works');
  });

  test('unknown type or one not allowed from clients -> 3002 naming the frame', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('e2') });
    for (const type of ['bogus', 'connect', 'disconnect', 'error', 'Subscribe']) {
      const id = c.request(type, {});
      const e = await c.reply(id);
      assert.equal(e.type, 'error', `${type}: ${JSON.stringify(e)}`);
      assert.equal(e.data.code, 3002, `${type}: ${JSON.stringify(e)}`);
      assert.equal(e.data.details.messageId, id);
    }
    await c.fence();
  });

  test('ack without data.messageId -> 2000', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('e3') });
    const id = c.request('ack', {});
    const e = await c.reply(id);
    assert.deepEqual([e.type, e.data.code], ['error', 2000], JSON.stringify(e));
    c.request('ack', { messageId: 'never-sent' }); // an ack for nothing is harmless
    await c.none((f) => f.type === 'error', 'error for an unknown ack');
  });
});

describe('frame size limit', () => {
  let srv;
  before(async () => { srv = await herald(['--json-max-message', '1000']); });
  after(() => stopClean(srv));

  test('--json-max-message 1000: 1000 bytes ok; more -> error 2001, then close 1009', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('big') });
    const base = JSON.stringify({ type: 'heartbeat', data: { pad: '' } });
    const exact = JSON.stringify({ type: 'heartbeat', data: { pad: 'x'.repeat(1000 - base.length) } });
    assert.equal(exact.length, 1000);
    c.send(exact);
    assert.equal((await c.next()).type, 'heartbeat');
    c.send(JSON.stringify({ type: 'heartbeat', data: { pad: 'x'.repeat(1500) } }));
    const e = await c.next(() => true, { what: 'error 2001' });
    assert.deepEqual([e.type, e.data.code], ['error', 2001], JSON.stringify(e));
    const closed = await c.closed;
    assert.equal(closed.code, 1009, JSON.stringify(closed));
    const d = await connect(t, srv, { token: userToken('big') });
    await d.fence();
  });
});

describe('notifications and closing connections', () => {
  let srv;
  before(async () => { srv = await herald(['--json-max-message', '1000']); });
  after(() => stopClean(srv));

  test('a notification published while the server waits for the client\'s close frame is kept for the next connection', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('closing') });
    await c.subscribed('user:closing');
    c.ws._socket.pause(); // read nothing more: the server's close frame stays unanswered for now
    c.send(JSON.stringify({ type: 'heartbeat', data: { pad: 'x'.repeat(2000) } })); // over the limit: 2001, close 1009
    await sleep(300); // let the server act on it
    const p = await publish(srv, { topic: 'user:closing', type: 'notification', data: 'in the window' });
    c.ws._socket.resume();
    const closed = await c.closed;
    assert.equal(closed.code, 1009);
    assert.ok(!c.received.some((f) => f.messageId === p.messageId), 'sent after the close frame');
    const d = await connect(t, srv, { token: userToken('closing') });
    const f = await d.next((x) => x.type === 'notification', { ms: 2000, what: `notification ${p.messageId} (published with delivered=${p.delivered}) on the next connection` });
    assert.deepEqual([f.messageId, f.sequence], [p.messageId, p.sequence]);
  });
});

describe('rate limit', () => {
  let srv;
  before(async () => { srv = await herald(['--json-rate', '5', '--json-burst', '5']); });
  after(() => stopClean(srv));

  test('--json-rate 5 --json-burst 5: a burst of 20 -> some 2002, still open, accepted again later', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('fast') });
    for (let i = 0; i < 20; i++) c.send({ type: 'heartbeat', messageId: `b${i}` });
    const replies = [];
    for (let i = 0; i < 20; i++) replies.push(await c.next(() => true, { what: `reply ${i + 1} of 20` }));
    const ok = replies.filter((f) => f.type === 'heartbeat').length;
    const limited = replies.filter((f) => f.type === 'error' && f.data.code === 2002).length;
    assert.equal(ok + limited, 20, JSON.stringify(replies));
    assert.ok(ok >= 5 && ok <= 8, `${ok} heartbeats answered of a burst of 20 with burst 5`);
    assert.ok(c.open);
    // a dropped frame is not processed
    c.send({ type: 'subscribe', data: { topic: 'public:rl' }, messageId: 'dropped' });
    const e = await c.next(() => true);
    assert.deepEqual([e.type, e.data.code], ['error', 2002], JSON.stringify(e));
    assert.equal(e.data.details?.messageId, 'dropped', `the 2002 error names the dropped frame: ${JSON.stringify(e)}`);
    const p = await publish(srv, { topic: 'public:rl', type: 'data', data: 1 });
    assert.equal(p.delivered, 0, 'the rate-limited subscribe was processed');
    await sleep(1100); // 5 tokens again
    for (let i = 0; i < 5; i++) c.send({ type: 'heartbeat', messageId: `later${i}` });
    for (let i = 0; i < 5; i++) {
      const f = await c.next(() => true);
      assert.equal(f.type, 'heartbeat', `after waiting: ${JSON.stringify(f)}`);
    }
  });
});

describe('POST /api/v1/publish', () => {
  let srv;
  before(async () => { srv = await herald(['--json-max-message', '2000', '--max-body-size', '10000']); });
  after(() => stopClean(srv));

  const good = { topic: 'public:rest', type: 'data', data: { hello: 'world' } };

  test('X-API-Key and admin Bearer: 200 {messageId, sequence, delivered}, delivered to subscribers', T, async (t) => {
    const a = await connect(t, srv, { token: userToken('h1') });
    const b = await connect(t, srv, { token: userToken('h2') });
    await a.subscribed('public:rest');
    await b.subscribed('public:rest');
    const r1 = await httpRequest(srv, { body: good, headers: { 'X-API-Key': API_KEY } });
    assert.equal(r1.status, 200, r1.text);
    assert.match(String(r1.headers['content-type']), /application\/json/);
    assert.deepEqual(Object.keys(r1.json).sort(), ['delivered', 'messageId', 'sequence']);
    assert.equal(r1.json.delivered, 2);
    for (const c of [a, b]) {
      const m = await c.next((f) => f.type === 'data');
      assert.deepEqual([m.messageId, m.sequence, m.data, m.topic], [r1.json.messageId, r1.json.sequence, good.data, good.topic]);
    }
    const r2 = await httpRequest(srv, { body: { ...good, type: 'status' }, headers: { Authorization: `Bearer ${adminToken()}` } });
    assert.equal(r2.status, 200, r2.text);
    assert.ok(r2.json.sequence > r1.json.sequence);
    assert.notEqual(r2.json.messageId, r1.json.messageId);
    assert.equal((await a.next((f) => f.type === 'status')).messageId, r2.json.messageId);
    const r3 = await httpRequest(srv, { body: { topic: 'public:nobody', type: 'data' } , headers: { 'X-API-Key': API_KEY } });
    assert.equal(r3.status, 200, r3.text);
    assert.equal(r3.json.delivered, 0);
  });

  test('user Bearer -> 403; none, wrong key, bad/expired token, not Bearer -> 401 (JSON bodies)', T, async () => {
    assertHttpError(await httpRequest(srv, { body: good, headers: { Authorization: `Bearer ${userToken('h3')}` } }), 403, 'user token');
    const cases = [
      ['no credentials', {}],
      ['wrong key', { 'X-API-Key': 'nope' }],
      ['empty key', { 'X-API-Key': '' }],
      ['key with a suffix', { 'X-API-Key': `${API_KEY}x` }],
      ['forged token', { Authorization: `Bearer ${mint({ sub: 'x', role: 'admin' }, { secret: 'other-secret-other-secret' })}` }],
      ['expired admin token', { Authorization: `Bearer ${adminToken('old', { iat: nowS() - 7200, exp: nowS() - 3600 })}` }],
      ['garbage token', { Authorization: 'Bearer garbage' }],
      ['Basic auth', { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
    ];
    for (const [what, headers] of cases) assertHttpError(await httpRequest(srv, { body: good, headers }), 401, what);
  });

  test('bad bodies -> 400', T, async () => {
    const headers = { 'X-API-Key': API_KEY };
    const cases = [
      ['not JSON', 'topic=public:rest'],
      ['truncated JSON', '{"topic":"public:rest",'],
      ['a JSON array', '[{"topic":"public:rest","type":"data"}]'],
      ['empty body', ''],
      ['no topic', { type: 'data', data: 1 }],
      ['topic not a string', { topic: 7, type: 'data' }],
      ['empty topic', { topic: '', type: 'data' }],
      ['topic with a control character', { topic: 'a\nb', type: 'data' }],
      ['no type', { topic: 'public:rest', data: 1 }],
      ['params an array', { ...good, params: ['a'] }],
      ['params nested', { ...good, params: { a: { b: 1 } } }],
      ['params with a boolean', { ...good, params: { a: true } }],
      ['params a string', { ...good, params: 'room=a' }],
    ];
    for (const [what, body] of cases) assertHttpError(await httpRequest(srv, { body, headers }), 400, what);
  });

  test('body over --json-max-message -> 413 (handler); over --max-body-size -> 413 (HTTP layer)', T, async () => {
    const headers = { 'X-API-Key': API_KEY };
    const under = { ...good, data: 'x'.repeat(1800) };
    assert.ok(JSON.stringify(under).length <= 2000);
    assert.equal((await httpRequest(srv, { body: under, headers })).status, 200);
    assertHttpError(await httpRequest(srv, { body: { ...good, data: 'x'.repeat(3000) }, headers }), 413, 'over --json-max-message');
    // over --max-body-size: the headers alone announce it; answered without reading the body
    const raw = await new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port: srv.port });
      let buf = '';
      sock.on('data', (d) => { buf += d; });
      sock.on('end', () => resolve(buf));
      sock.on('close', () => resolve(buf));
      sock.on('error', reject);
      sock.setTimeout(5000, () => { sock.destroy(); reject(new Error(`timeout; got ${buf}`)); });
      sock.write(`POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ${API_KEY}\r\nContent-Type: application/json\r\n` +
        'Content-Length: 20000\r\n\r\n{"topic":"public:rest"');
    });
    assert.match(raw, /^HTTP\/1\.1 413 /, raw);
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
    assert.equal(body.code, 413);
    assert.equal(typeof body.message, 'string');
  });

  test('GET /api/v1/publish is not a publish', T, async () => {
    const r = await httpRequest(srv, { method: 'GET', headers: { 'X-API-Key': API_KEY } });
    assert.notEqual(r.status, 200, r.text);
  });
});

describe('Socket.IO and JSON clients on one topic', () => {
  let srv;
  before(async () => { srv = await herald(['--test-handlers']); });
  after(() => stopClean(srv));

  test('publish to a socket\'s own room reaches the socket.io-client and a JSON subscriber of that topic', T, async (t) => {
    await crashAware(srv, async () => {
      // long-polling only: the WebSocket transports have their own tests below
      const sock = io(srv.url(''), { transports: ['polling'], reconnection: false, forceNew: true });
      t.after(() => sock.close());
      srv.clients.push(() => sock.close());
      await sioConnected(sock);
      const topic = sock.id;
      assert.ok(topic);
      const json = await connect(t, srv, { token: adminToken('bridge') });
      await json.subscribed(topic);

      const gotGreeting = new Promise((resolve) => sock.once('greeting', (...args) => resolve(args)));
      const p = await publish(srv, { topic, type: 'greeting', data: { x: 1 } });
      assert.equal(p.delivered, 2, 'the socket and the JSON subscriber');
      const args = await gotGreeting;
      assert.deepEqual(args[0], { x: 1 });
      assert.ok(args.length <= 2, JSON.stringify(args));
      const m = await json.next((f) => f.type === 'greeting');
      assert.deepEqual([m.data, m.topic, m.messageId, m.sequence], [{ x: 1 }, topic, p.messageId, p.sequence]);
      if (args.length === 2) { // the connection-state-recovery offset: the hub id of the same message
        assert.equal(typeof args[1], 'string');
        assert.ok(p.messageId.endsWith(`-${args[1]}`), `offset ${args[1]} vs messageId ${p.messageId}`);
      }

      const gotCustom = new Promise((resolve) => sock.once('custom', (...a) => resolve(a)));
      const q = await publish(srv, { topic, type: 'greeting', event: 'custom', data: { x: 2 } });
      assert.deepEqual((await gotCustom)[0], { x: 2 });
      const m2 = await json.next((f) => f.messageId === q.messageId);
      assert.deepEqual([m2.type, m2.data, m2.sequence], ['greeting', { x: 2 }, q.sequence], 'the JSON side keeps `type`');
      assert.ok(q.sequence > p.sequence);

      // the other way: the server's emit to the socket (its own room, i.e. this topic) reaches the JSON side
      const back = new Promise((resolve) => sock.once('message-back', (...a) => resolve(a)));
      sock.emit('message', { y: 2 });
      assert.deepEqual((await back)[0], { y: 2 });
      const m3 = await json.next((f) => f.type === 'message-back');
      assert.deepEqual([m3.data, m3.topic], [{ y: 2 }, topic], 'one argument becomes data');
      assert.ok(m3.sequence > q.sequence);
      sock.emit('message', 1, 'two');
      const m4 = await json.next((f) => f.type === 'message-back');
      assert.deepEqual(m4.data, [1, 'two'], 'several arguments become an array');
    });
  });
});

describe('Socket.IO connections next to JSON clients', () => {
  test('socket.io-client with transports: [websocket] (no polling first) connects and round-trips', T, async (t) => {
    const srv = await testHerald(t, ['--test-handlers']);
    await crashAware(srv, async () => {
      const sock = io(srv.url(''), { transports: ['websocket'], reconnection: false, forceNew: true });
      t.after(() => sock.close());
      srv.clients.push(() => sock.close());
      await sioConnected(sock);
      const echoed = await sock.timeout(5000).emitWithAck('echo', { hi: 1 });
      assert.deepEqual(echoed, { hi: 1 });
      const json = await connect(t, srv, { token: adminToken('ws-bridge') });
      await json.subscribed(sock.id);
      const got = new Promise((resolve) => sock.once('greeting', (...a) => resolve(a)));
      const p = await publish(srv, { topic: sock.id, type: 'greeting', data: 'direct' });
      assert.equal((await got)[0], 'direct');
      assert.equal((await json.next((f) => f.type === 'greeting')).messageId, p.messageId);
      sock.close(); // a client-side disconnect before the server stops
      await json.fence();
    });
  });

  test('socket.io-client upgrading from polling to WebSocket connects and round-trips', T, async (t) => {
    const srv = await testHerald(t, ['--test-handlers']);
    await crashAware(srv, async () => {
      const sock = io(srv.url(''), { reconnection: false, forceNew: true });
      t.after(() => sock.close());
      srv.clients.push(() => sock.close());
      await sioConnected(sock);
      if (sock.io.engine.transport.name !== 'websocket') {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no upgrade to websocket within 5 s')), 5000);
          sock.io.engine.once('upgrade', () => { clearTimeout(timer); resolve(); });
        });
      }
      assert.deepEqual(await sock.timeout(5000).emitWithAck('echo', 'up'), 'up');
      sock.close();
      await sleep(100);
      assertAlive(srv);
    });
  });

  test('a Socket.IO client dropping its transport does not take the server and its JSON clients down', T, async (t) => {
    const srv = await testHerald(t, ['--test-handlers']);
    await crashAware(srv, async () => {
      const json = await connect(t, srv, { token: userToken('bystander') });
      await json.subscribed('public:bystander');
      const sock = io(srv.url(''), { transports: ['polling'], reconnection: false, forceNew: true });
      t.after(() => sock.close());
      srv.clients.push(() => sock.close());
      await sioConnected(sock);
      sock.io.engine.close(); // the transport goes away without a namespace disconnect ("transport close")
      await sleep(300);
      assertAlive(srv);
      await json.fence();
      const p = await publish(srv, { topic: 'public:bystander', type: 'data', data: 1 });
      assert.equal((await json.next((f) => f.type === 'data')).messageId, p.messageId);
    });
  });
});

describe('compression and idle timeout', () => {
  let srv;
  before(async () => { srv = await herald(['--ws-idle-timeout', '600']); });
  after(() => stopClean(srv));

  test('permessage-deflate negotiated with the ws client; large and small frames both ways', T, async (t) => {
    const c = await connect(t, srv, { token: adminToken('z'), perMessageDeflate: true });
    assert.match(c.ws.extensions, /permessage-deflate/);
    await c.subscribed('public:zip');
    const big = 'herald '.repeat(2000);
    const id = c.request('data', { big }, { topic: 'public:zip' }); // compressed by the client (> 1 KiB)
    await c.ack(id);
    const m = await c.next((f) => f.type === 'data');
    assert.equal(m.data.big, big);
    const p = await publish(srv, { topic: 'public:zip', type: 'data', data: { small: 1 } });
    assert.deepEqual((await c.next((f) => f.messageId === p.messageId)).data, { small: 1 });
    const plain = await connect(t, srv, { token: adminToken('z2'), perMessageDeflate: false });
    assert.equal(plain.ws.extensions, '');
  });

  test('--ws-idle-timeout 600: a silent client is closed (1001); one sending heartbeats is not', T, async (t) => {
    const silent = await connect(t, srv, { token: userToken('idle') });
    const busy = await connect(t, srv, { token: userToken('busy') });
    const t0 = Date.now();
    const timer = setInterval(() => busy.request('heartbeat', {}), 150);
    t.after(() => clearInterval(timer));
    const closed = await Promise.race([silent.closed, sleep(5000).then(() => null)]);
    assert.ok(closed, 'silent client not closed');
    assert.equal(closed.code, 1001, JSON.stringify(closed));
    assert.ok(Date.now() - t0 >= 550, `closed after ${Date.now() - t0} ms`);
    await sleep(300);
    clearInterval(timer);
    assert.ok(busy.open, 'the busy client was closed');
  });
});

describe('permessage-deflate off', () => {
  let srv;
  before(async () => { srv = await herald(['--ws-deflate', 'false']); });
  after(() => stopClean(srv));

  test('--ws-deflate false: not negotiated though offered; traffic works', T, async (t) => {
    const c = await connect(t, srv, { token: userToken('nz'), perMessageDeflate: true });
    assert.equal(c.ws.extensions, '');
    await c.subscribed('public:nz');
    const p = await publish(srv, { topic: 'public:nz', type: 'data', data: 'y'.repeat(5000) });
    assert.equal((await c.next((f) => f.messageId === p.messageId)).data.length, 5000);
  });
});
