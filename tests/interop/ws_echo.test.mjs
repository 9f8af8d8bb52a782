// WebSocket echo with the npm `ws` client (and raw sockets where the client would hide the wire):
// payload sizes around every length-encoding boundary, fragmentation, ping/pong, close codes,
// permessage-deflate on/off and its threshold, server pings, idle timeout, handshake failures.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';

const SIZES = [0, 125, 126, 65535, 65536, 1024 * 1024];

// ---- helpers ----

/** Deterministic pseudo-random bytes (xorshift32). */
function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}
function randomBytes(n, seed) {
  const next = prng(seed), b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}
/** n bytes of valid UTF-8 text mixing 1-, 2-, 3- and 4-byte characters. */
function randomText(n, seed) {
  const next = prng(seed), chars = ['a', 'Z', '7', ' ', 'é', 'ж', '€', '中', '😀'];
  const parts = [];
  let len = 0;
  while (len < n) {
    let c = chars[next() % chars.length];
    if (len + Buffer.byteLength(c) > n) c = 'x';
    parts.push(c);
    len += Buffer.byteLength(c);
  }
  return parts.join('');
}

function open(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, ...opts });
    let response;
    ws.once('upgrade', (res) => { response = res; });
    ws.once('open', () => { ws.upgradeResponse = response; resolve(ws); });
    ws.once('error', reject);
  });
}

function nextMessage(ws, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { cleanup(); reject(new Error('timed out waiting for a message')); }, ms);
    const onMsg = (data, isBinary) => { cleanup(); resolve({ data, isBinary }); };
    const onClose = (code) => { cleanup(); reject(new Error(`closed (${code}) while waiting for a message`)); };
    const cleanup = () => { clearTimeout(t); ws.off('message', onMsg); ws.off('close', onClose); };
    ws.on('message', onMsg);
    ws.on('close', onClose);
  });
}

function waitEvent(emitter, name, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for '${name}'`)), ms);
    emitter.once(name, (...args) => { clearTimeout(t); resolve(args); });
  });
}

async function closeWs(ws, code = 1000, reason = '') {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = waitEvent(ws, 'close');
  ws.close(code, reason);
  await closed;
}

async function roundTrip(ws, payload, binary) {
  const got = nextMessage(ws);
  ws.send(payload, { binary });
  const { data, isBinary } = await got;
  assert.equal(isBinary, binary, 'opcode preserved');
  const expected = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  assert.equal(data.length, expected.length, 'length');
  assert.ok(Buffer.compare(data, expected) === 0, 'content byte for byte');
}

/** One raw HTTP exchange: resolves {status, headers, body, head} once the response (or 101 head) is in. */
function rawHttp(port, request, ms = 5000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0), done = false;
    const t = setTimeout(() => finish(new Error(`timeout; got: ${buf.toString('latin1')}`)), ms);
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      sock.destroy();
      if (err) reject(err); else resolve(value);
    };
    const tryParse = (ended) => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) { if (ended) finish(new Error(`incomplete response: ${buf.toString('latin1')}`)); return; }
      const head = buf.subarray(0, end).toString('latin1');
      const [statusLine, ...lines] = head.split('\r\n');
      const status = Number(statusLine.split(' ')[1]);
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const body = buf.subarray(end + 4);
      const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : null;
      if (status === 101 || (len !== null && body.length >= len) || ended) {
        finish(null, { status, headers, body: len !== null ? body.subarray(0, len) : body, head });
      }
    };
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); tryParse(false); });
    sock.on('end', () => tryParse(true));
    sock.on('error', (e) => finish(e));
    sock.on('connect', () => sock.write(request));
  });
}

function upgradeRequest(port, { method = 'GET', path = '/ws/echo', version = '13', key = 'dGhlIHNhbXBsZSBub25jZQ==', extra = '' } = {}) {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    (key ? `Sec-WebSocket-Key: ${key}\r\n` : '') + (version ? `Sec-WebSocket-Version: ${version}\r\n` : '') + extra + '\r\n';
}

/** Raw client: handshake with the given extra headers, then parses unmasked server frames. */
async function rawWs(port, extra = '') {
  const sock = net.connect({ host: '127.0.0.1', port });
  await waitEvent(sock, 'connect');
  sock.write(upgradeRequest(port, { extra }));
  let buf = Buffer.alloc(0), head = null;
  const frames = [];
  let wake = null;
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (head === null) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      head = buf.subarray(0, end).toString('latin1');
      buf = buf.subarray(end + 4);
    }
    for (;;) {
      if (buf.length < 2) break;
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + len) break;
      frames.push({ fin: !!(buf[0] & 0x80), rsv1: !!(buf[0] & 0x40), opcode: buf[0] & 0xf, payload: Buffer.from(buf.subarray(off, off + len)) });
      buf = buf.subarray(off + len);
    }
    if (wake) wake();
  });
  const api = {
    sock,
    get head() { return head; },
    write: (b) => sock.write(b),
    async next(ms = 5000) {
      const deadline = Date.now() + ms;
      while (!frames.length) {
        if (Date.now() > deadline) throw new Error('timed out waiting for a frame');
        await new Promise((r) => { wake = r; setTimeout(r, 50); });
      }
      return frames.shift();
    },
  };
  const deadline = Date.now() + 5000;
  while (head === null) {
    if (Date.now() > deadline) throw new Error('no handshake response');
    await new Promise((r) => { wake = r; setTimeout(r, 50); });
  }
  return api;
}

let maskN = 0x12345678;
function clientFrame(opcode, payload, { fin = true, rsv1 = false } = {}) {
  payload = Buffer.from(payload);
  const len = payload.length;
  const hdr = len < 126 ? Buffer.from([0, 0x80 | len])
    : len <= 0xffff ? Buffer.from([0, 0x80 | 126, len >> 8, len & 0xff])
      : (() => { const h = Buffer.alloc(10); h[1] = 0x80 | 127; h.writeBigUInt64BE(BigInt(len), 2); return h; })();
  hdr[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  maskN = (maskN * 1103515245 + 12345) >>> 0;
  const mask = Buffer.alloc(4);
  mask.writeUInt32BE(maskN);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([hdr, mask, body]);
}

function inflateMessage(payload) {
  return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

// ---- the default server: echo endpoint, deflate on ----

describe('echo (default options)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--echo-endpoint']); });
  after(async () => { if (srv) await srv.stop(); });

  for (const size of SIZES) {
    test(`text echo at ${size} bytes`, async () => {
      const ws = await open(srv.wsUrl());
      try { await roundTrip(ws, randomText(size, size + 1), false); } finally { await closeWs(ws); }
    });
    test(`binary echo at ${size} bytes`, async () => {
      const ws = await open(srv.wsUrl());
      try { await roundTrip(ws, randomBytes(size, size + 7), true); } finally { await closeWs(ws); }
    });
  }

  test('all sizes on one connection, in order', async () => {
    const ws = await open(srv.wsUrl());
    try {
      for (const size of SIZES) {
        await roundTrip(ws, randomBytes(size, size + 3), true);
        await roundTrip(ws, randomText(size, size + 5), false);
      }
    } finally { await closeWs(ws); }
  });

  test('fragmented text message with a ping between fragments (ws fin:false)', async () => {
    const ws = await open(srv.wsUrl());
    try {
      const events = [];
      ws.on('pong', (d) => events.push(['pong', d.toString()]));
      const got = nextMessage(ws);
      ws.on('message', (d, isBinary) => events.push(['message', d.toString(), isBinary]));
      ws.send('Hello, ', { fin: false });
      ws.ping('between');
      ws.send('fragmented ', { fin: false });
      ws.send('world €', { fin: true });
      const { data, isBinary } = await got;
      assert.equal(isBinary, false);
      assert.equal(data.toString(), 'Hello, fragmented world €');
      assert.deepEqual(events[0], ['pong', 'between'], 'the pong is answered while the message is still open');
    } finally { await closeWs(ws); }
  });

  test('fragmented binary message of 1 MiB in 16 fragments', async () => {
    const ws = await open(srv.wsUrl());
    try {
      const payload = randomBytes(1024 * 1024, 99);
      const got = nextMessage(ws);
      for (let i = 0; i < 16; i++) {
        ws.send(payload.subarray(i * 65536, (i + 1) * 65536), { binary: true, fin: i === 15 });
      }
      const { data, isBinary } = await got;
      assert.equal(isBinary, true);
      assert.ok(Buffer.compare(data, payload) === 0);
    } finally { await closeWs(ws); }
  });

  test('raw fragments: text + ping + continuation + continuation', async () => {
    const ws = await rawWs(srv.port);
    try {
      assert.match(ws.head, /^HTTP\/1\.1 101/);
      ws.write(Buffer.concat([
        clientFrame(0x1, 'one ', { fin: false }),
        clientFrame(0x9, 'ping-in-the-middle'),
        clientFrame(0x0, 'two ', { fin: false }),
        clientFrame(0x0, 'three', { fin: true }),
      ]));
      const pong = await ws.next();
      assert.equal(pong.opcode, 0xa);
      assert.equal(pong.payload.toString(), 'ping-in-the-middle');
      const msg = await ws.next();
      assert.equal(msg.opcode, 0x1);
      assert.equal(msg.fin, true);
      assert.equal(msg.payload.toString(), 'one two three');
    } finally { ws.sock.destroy(); }
  });

  test('raw fragments: empty first and last fragments, binary', async () => {
    const ws = await rawWs(srv.port);
    try {
      ws.write(Buffer.concat([
        clientFrame(0x2, '', { fin: false }),
        clientFrame(0x0, Buffer.from([0, 1, 2]), { fin: false }),
        clientFrame(0x0, '', { fin: true }),
      ]));
      const msg = await ws.next();
      assert.equal(msg.opcode, 0x2);
      assert.deepEqual(msg.payload, Buffer.from([0, 1, 2]));
    } finally { ws.sock.destroy(); }
  });

  test('client ping gets a pong with the same payload', async () => {
    const ws = await open(srv.wsUrl());
    try {
      for (const payload of [Buffer.alloc(0), Buffer.from('hello'), randomBytes(125, 5)]) {
        const pong = waitEvent(ws, 'pong');
        ws.ping(payload);
        const [data] = await pong;
        assert.ok(Buffer.compare(data, payload) === 0);
      }
    } finally { await closeWs(ws); }
  });

  test('client close 1000 with a reason gets 1000 back', async () => {
    const ws = await open(srv.wsUrl());
    const closed = waitEvent(ws, 'close');
    ws.close(1000, 'bye for now');
    const [code] = await closed;
    assert.equal(code, 1000);
  });

  test('client close 4001 gets 4001 back', async () => {
    const ws = await open(srv.wsUrl());
    const closed = waitEvent(ws, 'close');
    ws.close(4001, 'custom');
    const [code] = await closed;
    assert.equal(code, 4001);
  });

  test('deflate: negotiated with server_no_context_takeover', async () => {
    const ws = await open(srv.wsUrl(), { perMessageDeflate: true });
    try {
      const ext = ws.upgradeResponse.headers['sec-websocket-extensions'];
      assert.ok(ext, 'extension header present');
      assert.match(ext, /permessage-deflate/);
      assert.match(ext, /server_no_context_takeover/);
      assert.match(ws.extensions, /permessage-deflate/);
    } finally { await closeWs(ws); }
  });

  test('deflate: large compressible message echoed intact', async () => {
    const ws = await open(srv.wsUrl(), { perMessageDeflate: true });
    try {
      const text = 'The quick brown fox jumps over the lazy dog. '.repeat(40000); // ~1.8 MB
      await roundTrip(ws, text, false);
      await roundTrip(ws, randomBytes(1024 * 1024, 42), true); // incompressible
      await roundTrip(ws, Buffer.alloc(3 * 1024 * 1024, 0x41), true); // compresses to almost nothing
    } finally { await closeWs(ws); }
  });

  test('deflate: many messages of mixed sizes arrive intact and in order', async () => {
    const ws = await open(srv.wsUrl(), { perMessageDeflate: { threshold: 0 } });
    try {
      const N = 600, sent = [];
      const received = [];
      const all = new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${received.length}/${N} messages arrived`)), 20000);
        ws.on('message', (d, isBinary) => {
          received.push({ d, isBinary });
          if (received.length === N) { clearTimeout(t); resolve(); }
        });
      });
      for (let i = 0; i < N; i++) {
        const size = (i * 97) % 5000;
        const binary = i % 3 === 0;
        const p = binary ? randomBytes(size, i + 1) : `msg ${i} ` + 'lorem ipsum '.repeat(size / 12 | 0);
        sent.push({ p, binary });
        ws.send(p, { binary });
      }
      await all;
      for (let i = 0; i < N; i++) {
        assert.equal(received[i].isBinary, sent[i].binary, `message ${i} opcode`);
        const exp = Buffer.isBuffer(sent[i].p) ? sent[i].p : Buffer.from(sent[i].p);
        assert.ok(Buffer.compare(received[i].d, exp) === 0, `message ${i} content`);
      }
    } finally { await closeWs(ws); }
  });

  test('deflate threshold: 255 bytes go out uncompressed, 256 bytes compressed (raw RSV1)', async () => {
    const ws = await rawWs(srv.port, 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n');
    try {
      assert.match(ws.head, /Sec-WebSocket-Extensions: permessage-deflate/i);
      const small = 'a'.repeat(255), big = 'a'.repeat(256);
      ws.write(clientFrame(0x1, 'tiny'));
      let f = await ws.next();
      assert.equal(f.rsv1, false, 'tiny message uncompressed');
      assert.equal(f.payload.toString(), 'tiny');
      ws.write(clientFrame(0x1, small));
      f = await ws.next();
      assert.equal(f.rsv1, false, '255-byte message uncompressed (below the 256 default)');
      assert.equal(f.payload.toString(), small);
      ws.write(clientFrame(0x1, big));
      f = await ws.next();
      assert.equal(f.rsv1, true, '256-byte message compressed');
      assert.ok(f.payload.length < 256);
      assert.equal(inflateMessage(f.payload).toString(), big);
      // the client may send compressed too; the echo of a compressed message is a normal message
      const comp = zlib.deflateRawSync(Buffer.from(big), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      ws.write(clientFrame(0x1, comp.subarray(0, comp.length - 4), { rsv1: true }));
      f = await ws.next();
      assert.equal(f.opcode, 0x1);
      assert.equal((f.rsv1 ? inflateMessage(f.payload) : f.payload).toString(), big);
    } finally { ws.sock.destroy(); }
  });

  test('server without context takeover: each compressed message inflates on its own', async () => {
    const ws = await rawWs(srv.port, 'Sec-WebSocket-Extensions: permessage-deflate\r\n');
    try {
      const msg = 'repeated content that would be back-referenced with context takeover '.repeat(10);
      for (let i = 0; i < 3; i++) {
        ws.write(clientFrame(0x1, msg));
        const f = await ws.next();
        assert.equal(f.rsv1, true);
        assert.equal(inflateMessage(f.payload).toString(), msg, `message ${i} decodes with a fresh inflater`);
      }
    } finally { ws.sock.destroy(); }
  });

  test('deflate: fragmented compressed message with a ping between fragments', async () => {
    const ws = await open(srv.wsUrl(), { perMessageDeflate: { threshold: 0 } });
    try {
      const events = [];
      ws.on('pong', (d) => events.push(`pong:${d}`));
      const got = nextMessage(ws);
      const part = 'compressible fragment '.repeat(200);
      ws.send(part, { fin: false, compress: true });
      ws.ping('mid');
      ws.send(part, { fin: false, compress: true });
      ws.send('end', { fin: true, compress: true });
      const { data, isBinary } = await got;
      assert.equal(isBinary, false);
      assert.equal(data.toString(), part + part + 'end');
      assert.deepEqual(events, ['pong:mid']);
    } finally { await closeWs(ws); }
  });

  test('deflate: client asks server_max_window_bits=10; output decodes with a 1 KiB window', async () => {
    const ws = await open(srv.wsUrl(), { perMessageDeflate: { serverMaxWindowBits: 10, threshold: 0 } });
    try {
      assert.match(ws.upgradeResponse.headers['sec-websocket-extensions'], /server_max_window_bits=10/);
      // 4 KiB random blocks repeated: a 32 KiB window would back-reference 4 KiB away, which a
      // 1 KiB-window inflater rejects ("invalid distance too far back").
      const block = randomBytes(4096, 77);
      const payload = Buffer.concat(Array.from({ length: 64 }, () => block));
      await roundTrip(ws, payload, true);
    } finally { await closeWs(ws); }
  });

  test('deflate: client_no_context_takeover offered is acknowledged', async () => {
    const ws = await open(srv.wsUrl(), { perMessageDeflate: { clientNoContextTakeover: true, threshold: 0 } });
    try {
      assert.match(ws.upgradeResponse.headers['sec-websocket-extensions'], /client_no_context_takeover/);
      for (let i = 0; i < 5; i++) await roundTrip(ws, 'same text again and again '.repeat(30), false);
    } finally { await closeWs(ws); }
  });

  test('deflate: a malformed offer is skipped and the next acceptable one taken', async () => {
    const ws = await rawWs(srv.port, 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=abc, ' +
      'x-unknown-ext, permessage-deflate; client_max_window_bits=12\r\n');
    try {
      assert.match(ws.head, /^HTTP\/1\.1 101/);
      const ext = /sec-websocket-extensions: (.*)/i.exec(ws.head);
      assert.ok(ext, 'extension accepted');
      assert.match(ext[1], /^permessage-deflate/);
      assert.doesNotMatch(ext[1], /abc|x-unknown/);
      assert.match(ext[1], /client_max_window_bits=12/);
    } finally { ws.sock.destroy(); }
  });

  test('deflate: only unacceptable offers -> no extension, plain frames', async () => {
    const ws = await rawWs(srv.port, 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8; bogus_param\r\n');
    try {
      assert.match(ws.head, /^HTTP\/1\.1 101/);
      assert.doesNotMatch(ws.head, /sec-websocket-extensions/i);
      ws.write(clientFrame(0x1, 'z'.repeat(1000)));
      const f = await ws.next();
      assert.equal(f.rsv1, false);
      assert.equal(f.payload.toString(), 'z'.repeat(1000));
    } finally { ws.sock.destroy(); }
  });

  test('frames sent in the same packet as the handshake are processed', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    try {
      await waitEvent(sock, 'connect');
      let buf = Buffer.alloc(0);
      sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
      sock.write(Buffer.concat([Buffer.from(upgradeRequest(srv.port)), clientFrame(0x1, 'early bird'), clientFrame(0x9, 'p')]));
      const deadline = Date.now() + 5000;
      while (!buf.includes('early bird') || !buf.includes(Buffer.from([0x8a, 0x01, 0x70])) ) {
        if (Date.now() > deadline) assert.fail(`no echo; got ${buf.toString('latin1')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.match(buf.toString('latin1'), /^HTTP\/1\.1 101/);
    } finally { sock.destroy(); }
  });

  test('upgrade pipelined after a static file request on the same connection', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    try {
      await waitEvent(sock, 'connect');
      let buf = Buffer.alloc(0);
      sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
      sock.write(`GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n` +
        upgradeRequest(srv.port));
      sock.write(clientFrame(0x1, 'after upgrade'));
      const deadline = Date.now() + 5000;
      while (!buf.includes('after upgrade')) {
        if (Date.now() > deadline) assert.fail(`no echo; got ${buf.toString('latin1')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const text = buf.toString('latin1');
      const i200a = text.indexOf('HTTP/1.1 200'), i200b = text.indexOf('HTTP/1.1 200', i200a + 1), i101 = text.indexOf('HTTP/1.1 101');
      assert.ok(i200a === 0 && i200b > i200a && i101 > i200b, `responses out of order:\n${text.slice(0, 800)}`);
    } finally { sock.destroy(); }
  });

  test('handshake: Connection: keep-alive, Upgrade and Upgrade: WebSocket (any case) are accepted', async () => {
    const req = `GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    const r = await rawHttp(srv.port, req);
    assert.equal(r.status, 101);
  });

  for (const deflate of [false, true]) {
    test(`message size limit (default 4 MiB), deflate ${deflate ? 'on' : 'off'}: exactly 4 MiB echoes, 4 MiB + 1 -> 1009`, async () => {
      const LIMIT = 4 * 1024 * 1024;
      const ws = await open(srv.wsUrl(), { perMessageDeflate: deflate ? { threshold: 0 } : false });
      try {
        await roundTrip(ws, Buffer.alloc(LIMIT, 0x61), true);
      } finally { await closeWs(ws); }
      const ws2 = await open(srv.wsUrl(), { perMessageDeflate: deflate ? { threshold: 0 } : false });
      const closed = waitEvent(ws2, 'close', 10000);
      ws2.send(Buffer.alloc(LIMIT + 1, 0x61));
      const [code] = await closed;
      assert.equal(code, 1009);
    });
  }

  test('handshake: Sec-WebSocket-Version 8 -> 426 with Sec-WebSocket-Version: 13', async () => {
    const r = await rawHttp(srv.port, upgradeRequest(srv.port, { version: '8' }));
    assert.equal(r.status, 426);
    assert.equal(r.headers['sec-websocket-version'], '13');
    assert.equal(JSON.parse(r.body).code, 426);
  });

  test('handshake: missing Sec-WebSocket-Key -> 400', async () => {
    const r = await rawHttp(srv.port, upgradeRequest(srv.port, { key: null }));
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).code, 400);
  });

  test('handshake: malformed Sec-WebSocket-Key -> 400', async () => {
    const r = await rawHttp(srv.port, upgradeRequest(srv.port, { key: 'c2hvcnQ=' }));
    assert.equal(r.status, 400);
  });

  test('handshake: missing Sec-WebSocket-Version -> 400 (or 426)', async () => {
    const r = await rawHttp(srv.port, upgradeRequest(srv.port, { version: null }));
    assert.ok([400, 426].includes(r.status), `status ${r.status}`);
  });

  test('handshake: plain GET without Upgrade -> 400', async () => {
    const r = await rawHttp(srv.port, `GET /ws/echo HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).code, 400);
  });

  test('handshake: POST -> 405 (or 404)', async () => {
    const r = await rawHttp(srv.port, upgradeRequest(srv.port, { method: 'POST', extra: 'Content-Length: 0\r\n' }));
    assert.ok([405, 404].includes(r.status), `status ${r.status}`);
    if (r.status === 405) assert.match(r.headers.allow, /GET/);
  });

  test('handshake: HTTP/1.0 upgrade -> 400', async () => {
    const req = upgradeRequest(srv.port).replace('HTTP/1.1', 'HTTP/1.0');
    const r = await rawHttp(srv.port, req);
    assert.equal(r.status, 400);
  });

  test('handshake: the 101 response carries the right Sec-WebSocket-Accept', async () => {
    const r = await rawHttp(srv.port, upgradeRequest(srv.port));
    assert.equal(r.status, 101);
    assert.equal(r.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.match(r.headers.upgrade, /websocket/i);
  });
});

describe('deflate off (--ws-deflate false)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--echo-endpoint', '--ws-deflate', 'false']); });
  after(async () => { if (srv) await srv.stop(); });

  test('no extension header even when the client offers deflate', async () => {
    const ws = await open(srv.wsUrl(), { perMessageDeflate: true });
    try {
      assert.equal(ws.upgradeResponse.headers['sec-websocket-extensions'], undefined);
      assert.equal(ws.extensions, '');
      await roundTrip(ws, 'x'.repeat(100000), false);
    } finally { await closeWs(ws); }
  });
});

describe('server ping (--ws-ping-interval 300)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--echo-endpoint', '--ws-ping-interval', '300']); });
  after(async () => { if (srv) await srv.stop(); });

  test('an idle client gets a ping and, answering it, stays open', async () => {
    const ws = await open(srv.wsUrl());
    try {
      const start = Date.now();
      await waitEvent(ws, 'ping', 3000);
      assert.ok(Date.now() - start >= 250, 'not before the interval');
      await waitEvent(ws, 'ping', 3000); // answered with a pong, so pings keep coming, no close
      assert.equal(ws.readyState, WebSocket.OPEN);
      await roundTrip(ws, 'still here', false);
    } finally { await closeWs(ws); }
  });
});

describe('idle timeout (--ws-idle-timeout 800 --ws-ping-interval 0)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--echo-endpoint', '--ws-idle-timeout', '800', '--ws-ping-interval', '0']); });
  after(async () => { if (srv) await srv.stop(); });

  test('a silent client is closed with 1001', async () => {
    const ws = await open(srv.wsUrl());
    const start = Date.now();
    let pinged = false;
    ws.on('ping', () => { pinged = true; });
    const [code] = await waitEvent(ws, 'close', 4000);
    const elapsed = Date.now() - start;
    assert.equal(code, 1001);
    // the server counts from its last read (the handshake request), a little before 'open' fires here
    assert.ok(elapsed >= 400, `closed too early (${elapsed} ms)`);
    assert.ok(elapsed < 2500, `closed too late (${elapsed} ms)`);
    assert.equal(pinged, false, 'no ping with --ws-ping-interval 0');
  });

  test('a client that keeps talking is not closed', async () => {
    const ws = await open(srv.wsUrl());
    try {
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 300));
        await roundTrip(ws, `tick ${i}`, false);
      }
      assert.equal(ws.readyState, WebSocket.OPEN);
    } finally { await closeWs(ws); }
  });
});

describe('pings keep an answering client alive (--ws-idle-timeout 800 --ws-ping-interval 300)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--echo-endpoint', '--ws-idle-timeout', '800', '--ws-ping-interval', '300']); });
  after(async () => { if (srv) await srv.stop(); });

  test('a silent client that answers pings outlives the idle timeout; one that ignores them is closed 1001', async () => {
    const good = await open(srv.wsUrl()); // ws answers pings automatically
    const bad = await rawWs(srv.port); // reads, never answers anything
    try {
      let pings = 0;
      good.on('ping', () => { pings++; });
      const start = Date.now();
      let badClose = null;
      while (Date.now() - start < 2200) {
        await new Promise((r) => setTimeout(r, 100));
        while (badClose === null) {
          const f = await bad.next(10).catch(() => null);
          if (!f) break;
          if (f.opcode === 0x8) badClose = { code: f.payload.readUInt16BE(0), at: Date.now() - start };
        }
      }
      assert.ok(pings >= 2, `pings seen: ${pings}`);
      assert.equal(good.readyState, WebSocket.OPEN, 'the answering client is still open');
      await roundTrip(good, 'alive', false);
      assert.ok(badClose, 'the silent raw client was not closed');
      assert.equal(badClose.code, 1001);
      assert.ok(badClose.at >= 700 && badClose.at < 2000, `closed at ${badClose.at} ms`);
    } finally {
      bad.sock.destroy();
      await closeWs(good);
    }
  });
});

describe('small server window (--ws-deflate-window-bits 9)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--echo-endpoint', '--ws-deflate-window-bits', '9']); });
  after(async () => { if (srv) await srv.stop(); });

  test('the limit is announced and honoured', async () => {
    const ws = await open(srv.wsUrl(), { perMessageDeflate: { threshold: 0 } });
    try {
      assert.match(ws.upgradeResponse.headers['sec-websocket-extensions'], /server_max_window_bits=9/);
      const block = randomBytes(2048, 5);
      await roundTrip(ws, Buffer.concat(Array.from({ length: 32 }, () => block)), true);
    } finally { await closeWs(ws); }
  });

  test('raw: frames decode with a 512-byte window inflater', async () => {
    const ws = await rawWs(srv.port, 'Sec-WebSocket-Extensions: permessage-deflate\r\n');
    try {
      assert.match(ws.head, /server_max_window_bits=9/);
      const block = randomBytes(1500, 9).toString('base64');
      const text = block.repeat(20);
      ws.write(clientFrame(0x1, text));
      const f = await ws.next();
      assert.equal(f.rsv1, true);
      const out = zlib.inflateRawSync(Buffer.concat([f.payload, Buffer.from([0, 0, 0xff, 0xff])]),
        { windowBits: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
      assert.equal(out.toString(), text);
    } finally { ws.sock.destroy(); }
  });
});

describe('origin allow-list (--ws-origins http://good.example)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--echo-endpoint', '--ws-origins', 'http://good.example']); });
  after(async () => { if (srv) await srv.stop(); });

  test('a disallowed Origin gets 403', async () => {
    const r = await rawHttp(srv.port, upgradeRequest(srv.port, { extra: 'Origin: http://evil.example\r\n' }));
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).code, 403);
  });

  test('an Origin that only shares a prefix gets 403', async () => {
    const r = await rawHttp(srv.port, upgradeRequest(srv.port, { extra: 'Origin: http://good.example.evil.example\r\n' }));
    assert.equal(r.status, 403);
  });

  test('the allowed Origin connects and echoes', async () => {
    const ws = await open(srv.wsUrl(), { origin: 'http://good.example' });
    try { await roundTrip(ws, 'hi', false); } finally { await closeWs(ws); }
  });
});

describe('without --echo-endpoint', () => {
  let srv;
  before(async () => { srv = await startHerald([]); });
  after(async () => { if (srv) await srv.stop(); });

  test('/ws/echo -> 404', async () => {
    const r = await rawHttp(srv.port, upgradeRequest(srv.port));
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.body).code, 404);
  });
});
