// RFC 6455 violations sent as raw frames over node:net: for each, the server must send a close
// frame with the right code (1002 protocol error, 1007 bad data, 1009 too big), then close TCP, and
// keep serving fresh echo connections.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { startHerald } from './lib/server.mjs';

const MAX_MESSAGE = 1000;

// ---- a tiny raw WebSocket client ----

let maskSeed = 0x9e3779b9;
/** Deterministic masking keys (xorshift32). */
function nextMask() {
  maskSeed ^= maskSeed << 13; maskSeed >>>= 0;
  maskSeed ^= maskSeed >>> 17;
  maskSeed ^= maskSeed << 5; maskSeed >>>= 0;
  const m = Buffer.alloc(4);
  m.writeUInt32BE(maskSeed);
  return m;
}

/** A client frame. declaredLen overrides the length field (to send a header without its payload). */
function frame(opcode, payload = Buffer.alloc(0), opts = {}) {
  const { fin = true, rsv1 = false, rsv2 = false, rsv3 = false, masked = true, declaredLen } = opts;
  payload = Buffer.from(payload);
  const len = declaredLen ?? payload.length;
  let hdr;
  if (len < 126) { hdr = Buffer.alloc(2); hdr[1] = len; }
  else if (len <= 0xffff) { hdr = Buffer.alloc(4); hdr[1] = 126; hdr.writeUInt16BE(len, 2); }
  else { hdr = Buffer.alloc(10); hdr[1] = 127; hdr.writeBigUInt64BE(BigInt(len), 2); }
  hdr[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | opcode;
  if (!masked) return Buffer.concat([hdr, payload]);
  hdr[1] |= 0x80;
  const mask = nextMask();
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([hdr, mask, body]);
}

function closePayload(code, reason = Buffer.alloc(0)) {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.from(reason)]);
}

/** A handshaken raw connection that parses server frames. */
class RawWs {
  static open(port, { path = '/ws/echo', headers = {} } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port });
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => { sock.destroy(); reject(new Error('handshake timeout')); }, 5000);
      const onData = (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        sock.off('data', onData);
        const head = buf.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101')) { sock.destroy(); reject(new Error(`handshake failed: ${head}`)); return; }
        resolve(new RawWs(sock, head, buf.subarray(end + 4)));
      };
      sock.on('data', onData);
      sock.on('error', (e) => { clearTimeout(timer); reject(e); });
      sock.on('connect', () => {
        const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
        sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
      });
    });
  }

  constructor(sock, head, rest) {
    this.sock = sock;
    this.head = head;
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.waiters = [];
    this.ended = false;
    this.endWaiters = [];
    sock.on('data', (d) => this.#onData(d));
    const onEnd = () => {
      if (this.ended) return;
      this.ended = true;
      this.#wake();
      for (const w of this.endWaiters.splice(0)) w();
    };
    sock.on('end', onEnd);
    sock.on('close', onEnd);
    sock.on('error', onEnd); // ECONNRESET after the server closed also counts as closed
    if (rest.length) this.#onData(rest);
  }

  #onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = b[1] & 0x7f, off = 2;
      if (len === 126) { if (b.length < 4) break; len = b.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (b.length < 10) break; len = Number(b.readBigUInt64BE(2)); off = 10; }
      const masked = !!(b[1] & 0x80);
      if (masked) off += 4;
      if (b.length < off + len) break;
      this.frames.push({
        fin: !!(b[0] & 0x80), rsv1: !!(b[0] & 0x40), rsv2: !!(b[0] & 0x20), rsv3: !!(b[0] & 0x10),
        opcode: b[0] & 0x0f, masked, payload: Buffer.from(b.subarray(off, off + len)),
      });
      this.buf = b.subarray(off + len);
    }
    this.#wake();
  }

  #wake() { for (const w of this.waiters.splice(0)) w(); }

  write(...bufs) { this.sock.write(Buffer.concat(bufs)); }

  /** The next server frame; rejects on timeout or when the connection ends first. */
  async next(ms = 3000) {
    const deadline = Date.now() + ms;
    while (!this.frames.length) {
      if (this.ended) throw new Error('connection ended before a frame arrived');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.frames.shift();
  }

  /** Resolves true when TCP is closed by the peer within ms, false otherwise. */
  waitEnd(ms = 3000) {
    if (this.ended) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.endWaiters.push(() => { clearTimeout(t); resolve(true); });
    });
  }

  destroy() { this.sock.destroy(); }
}

/** Reads frames until a close frame; asserts its code and that TCP closes afterwards. */
async function expectClose(ws, code, what) {
  const f = await ws.next();
  assert.equal(f.opcode, 0x8, `${what}: expected a close frame, got opcode ${f.opcode}`);
  assert.equal(f.masked, false, `${what}: server frames must not be masked`);
  assert.ok(f.payload.length >= 2, `${what}: close frame without a status code`);
  assert.equal(f.payload.readUInt16BE(0), code, `${what}: close code`);
  assert.ok(await ws.waitEnd(3000), `${what}: server did not close TCP after its close frame`);
  return f;
}

let srv;
before(async () => { srv = await startHerald(['--echo-endpoint', '--ws-max-message-size', String(MAX_MESSAGE)]); });
after(async () => { if (srv) await srv.stop(); });

/** A fresh connection still gets an echo and a clean close. */
async function assertServes() {
  const ws = await RawWs.open(srv.port);
  try {
    ws.write(frame(0x1, 'still alive'));
    const f = await ws.next();
    assert.equal(f.opcode, 0x1);
    assert.equal(f.payload.toString(), 'still alive');
    ws.write(frame(0x8, closePayload(1000)));
    await expectClose(ws, 1000, 'fresh echo connection');
  } finally {
    ws.destroy();
  }
}

/** One violation: send bytes (after optional valid prelude), expect close code, then a healthy server. */
async function violation(what, bytes, code) {
  const ws = await RawWs.open(srv.port);
  try {
    ws.write(...[].concat(bytes));
    await expectClose(ws, code, what);
  } finally {
    ws.destroy();
  }
  await assertServes();
}

test('baseline: a valid masked text frame is echoed', async () => {
  await assertServes();
});

test('unmasked client frame -> 1002', () => violation('unmasked', frame(0x1, 'hello', { masked: false }), 1002));

test('RSV2 bit -> 1002', () => violation('rsv2', frame(0x1, 'hello', { rsv2: true }), 1002));

test('RSV3 bit -> 1002', () => violation('rsv3', frame(0x2, 'hello', { rsv3: true }), 1002));

test('RSV1 without negotiated deflate -> 1002', () => violation('rsv1', frame(0x1, 'hello', { rsv1: true }), 1002));

test('reserved data opcode 3 -> 1002', () => violation('opcode 3', frame(0x3, 'x'), 1002));

test('reserved control opcode 0xB -> 1002', () => violation('opcode 0xB', frame(0xb, 'x'), 1002));

test('ping with a 126-byte payload -> 1002', () => violation('ping 126', frame(0x9, Buffer.alloc(126, 0x61)), 1002));

test('ping with a 125-byte payload is fine (boundary)', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    const payload = Buffer.alloc(125, 0x62);
    ws.write(frame(0x9, payload));
    const f = await ws.next();
    assert.equal(f.opcode, 0xa);
    assert.deepEqual(f.payload, payload);
    ws.write(frame(0x8, closePayload(1000)));
    await expectClose(ws, 1000, 'close after ping');
  } finally {
    ws.destroy();
  }
});

test('fragmented ping (FIN clear) -> 1002', () => violation('fragmented ping', frame(0x9, 'ab', { fin: false }), 1002));

test('continuation without a started message -> 1002', () =>
  violation('orphan continuation', frame(0x0, 'tail', { fin: true }), 1002));

test('new text frame while a fragmented message is open -> 1002', () =>
  violation('interleaved', [frame(0x1, 'part1', { fin: false }), frame(0x1, 'other', { fin: true })], 1002));

test('new binary frame while a fragmented text message is open -> 1002', () =>
  violation('interleaved binary', [frame(0x1, 'part1', { fin: false }), frame(0x2, 'other', { fin: false })], 1002));

test('invalid UTF-8 in a single text frame -> 1007', () =>
  violation('bad utf8', frame(0x1, Buffer.from([0x68, 0x69, 0xff, 0x21])), 1007));

test('overlong UTF-8 encoding -> 1007', () =>
  violation('overlong utf8', frame(0x1, Buffer.from([0xc0, 0xaf])), 1007));

test('UTF-8 surrogate (ED A0 80) -> 1007', () =>
  violation('surrogate', frame(0x1, Buffer.from([0x61, 0xed, 0xa0, 0x80])), 1007));

test('truncated UTF-8 sequence at the end of the message -> 1007', () =>
  violation('truncated utf8', frame(0x1, Buffer.from([0x61, 0xe2, 0x82])), 1007));

test('UTF-8 sequence split across fragments is valid', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    const euro = Buffer.from('€', 'utf8'); // e2 82 ac
    ws.write(frame(0x1, Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]), { fin: false }),
      frame(0x0, euro.subarray(1, 2), { fin: false }),
      frame(0x0, Buffer.concat([euro.subarray(2), Buffer.from('b')]), { fin: true }));
    const f = await ws.next();
    assert.equal(f.opcode, 0x1);
    assert.equal(f.payload.toString('utf8'), 'a€b');
  } finally {
    ws.destroy();
  }
});

test('invalid UTF-8 in a fragmented message fails fast at the first bad fragment', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    ws.write(frame(0x1, 'good start ', { fin: false }));
    ws.write(frame(0x0, Buffer.from([0x62, 0x61, 0x64, 0xff]), { fin: false }));
    // The final fragment is never sent: the close must come without it.
    await expectClose(ws, 1007, 'fail-fast utf8');
  } finally {
    ws.destroy();
  }
  await assertServes();
});

test('close frame with a 1-byte payload -> 1002', () => violation('close 1 byte', frame(0x8, Buffer.from([0x03])), 1002));

for (const code of [1005, 999, 5000, 1004, 1006, 1015, 1016, 0, 2999]) {
  test(`close frame with invalid code ${code} -> 1002`, () => violation(`close ${code}`, frame(0x8, closePayload(code)), 1002));
}

test('close frame with an invalid UTF-8 reason -> 1007', () =>
  violation('close reason utf8', frame(0x8, closePayload(1000, Buffer.from([0x62, 0xff]))), 1007));

test('close with a valid application code 4000 is answered with 4000', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    ws.write(frame(0x8, closePayload(4000, 'bye')));
    await expectClose(ws, 4000, 'close 4000');
  } finally {
    ws.destroy();
  }
});

test('close without payload is answered with an empty close frame', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    ws.write(frame(0x8));
    const f = await ws.next();
    assert.equal(f.opcode, 0x8);
    assert.equal(f.payload.length, 0);
    assert.ok(await ws.waitEnd(3000), 'server did not close TCP');
  } finally {
    ws.destroy();
  }
});

test('single frame declaring more than --ws-max-message-size -> 1009 before any payload is sent', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    // Only the header (with mask key) goes out; the 2000 payload bytes never do.
    const hdr = frame(0x2, Buffer.alloc(0), { declaredLen: MAX_MESSAGE * 2 });
    ws.write(hdr);
    await expectClose(ws, 1009, 'declared too big');
  } finally {
    ws.destroy();
  }
  await assertServes();
});

test('single frame declaring a 2^62 length -> 1009', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    const hdr = Buffer.from([0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    ws.write(hdr);
    await expectClose(ws, 1009, 'declared 2^62');
  } finally {
    ws.destroy();
  }
  await assertServes();
});

test('64-bit length with the most significant bit set -> 1002', () =>
  violation('msb length', Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]), 1002));

test('message of exactly --ws-max-message-size bytes is echoed', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    const payload = Buffer.alloc(MAX_MESSAGE, 0x7a);
    ws.write(frame(0x2, payload));
    const f = await ws.next();
    assert.equal(f.opcode, 0x2);
    assert.deepEqual(f.payload, payload);
  } finally {
    ws.destroy();
  }
});

test('fragmented message whose total passes --ws-max-message-size -> 1009', () =>
  violation('fragmented too big', [
    frame(0x2, Buffer.alloc(600, 1), { fin: false }),
    frame(0x0, Buffer.alloc(600, 2), { fin: true }),
  ], 1009));

test('fragmented message passing the limit closes before the final fragment', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    ws.write(frame(0x1, Buffer.alloc(400, 0x61), { fin: false }));
    ws.write(frame(0x0, Buffer.alloc(400, 0x62), { fin: false }));
    ws.write(frame(0x0, Buffer.alloc(400, 0x63), { fin: false }));
    await expectClose(ws, 1009, 'fragmented too big, no final');
  } finally {
    ws.destroy();
  }
  await assertServes();
});

test('frames split into single bytes are reassembled', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    const bytes = Buffer.concat([frame(0x1, 'slow', { fin: false }), frame(0x9, 'p'), frame(0x0, 'drip', { fin: true })]);
    for (const b of bytes) {
      ws.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    const pong = await ws.next();
    assert.equal(pong.opcode, 0xa);
    assert.equal(pong.payload.toString(), 'p');
    const f = await ws.next();
    assert.equal(f.opcode, 0x1);
    assert.equal(f.payload.toString(), 'slowdrip');
  } finally {
    ws.destroy();
  }
});

test('data after a protocol error is ignored and the server stays healthy', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    ws.write(frame(0x1, 'x', { masked: false }), frame(0x1, 'should not be echoed'));
    await expectClose(ws, 1002, 'error then data');
    assert.equal(ws.frames.length, 0, 'no frame may follow the close frame');
  } finally {
    ws.destroy();
  }
  await assertServes();
});

test('invalid UTF-8 inside one partly sent frame fails fast (before the frame is complete)', async () => {
  const ws = await RawWs.open(srv.port);
  try {
    const payload = Buffer.alloc(500, 0x61);
    payload[50] = 0xff;
    const whole = frame(0x1, payload);
    ws.write(whole.subarray(0, 8 + 100)); // header (4) + mask (4) + 100 payload bytes holding the bad byte
    await expectClose(ws, 1007, 'fail-fast inside a frame');
  } finally {
    ws.destroy();
  }
  await assertServes();
});

const DEFLATE = { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' };

/** Compressed message payload per RFC 7692 (tail 00 00 ff ff removed). */
function deflate(data) {
  const out = zlib.deflateRawSync(Buffer.from(data), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

async function deflateViolation(what, bytes, code) {
  const ws = await RawWs.open(srv.port, { headers: DEFLATE });
  try {
    assert.match(ws.head, /sec-websocket-extensions: permessage-deflate/i);
    ws.write(...[].concat(bytes));
    await expectClose(ws, code, what);
  } finally {
    ws.destroy();
  }
  await assertServes();
}

test('with deflate negotiated, a compressed message is inflated and echoed', async () => {
  const ws = await RawWs.open(srv.port, { headers: DEFLATE });
  try {
    ws.write(frame(0x1, deflate('hello hello hello'), { rsv1: true }));
    const f = await ws.next();
    assert.equal(f.opcode, 0x1);
    const text = f.rsv1 ? zlib.inflateRawSync(Buffer.concat([f.payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }) : f.payload;
    assert.equal(text.toString(), 'hello hello hello');
  } finally {
    ws.destroy();
  }
});

test('with deflate negotiated, RSV1 on a ping -> 1002', () =>
  deflateViolation('rsv1 ping', frame(0x9, 'p', { rsv1: true }), 1002));

test('with deflate negotiated, RSV1 on a continuation frame -> 1002', () =>
  deflateViolation('rsv1 continuation', [
    frame(0x1, deflate('abc'), { rsv1: true, fin: false }),
    frame(0x0, deflate('def'), { rsv1: true, fin: true }),
  ], 1002));

test('with deflate negotiated, corrupt deflate data -> 1007', () =>
  deflateViolation('bad deflate', frame(0x2, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), { rsv1: true }), 1007));

test('with deflate negotiated, a message inflating past --ws-max-message-size -> 1009', () =>
  deflateViolation('deflate bomb', frame(0x2, deflate(Buffer.alloc(200000)), { rsv1: true }), 1009));

test('with deflate negotiated, compressed text with invalid UTF-8 -> 1007', () =>
  deflateViolation('deflate utf8', frame(0x1, deflate(Buffer.from([0x61, 0xff, 0x62])), { rsv1: true }), 1007));
