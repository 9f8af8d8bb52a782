// Bad and hostile clients: garbage, slowloris, idle keep-alive, a WebSocket reader that never
// reads, the connection limit, graceful shutdown. The server must stay up and keep serving others:
// after each case a fresh /health answers 200 and an echo round trip works.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHerald, rssBytes } from './lib/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Deterministic pseudo-random numbers (xorshift32). */
function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

/** One HTTP request on a fresh connection (Connection: close); resolves {status, headers, body}. */
function httpGet(port, path, ms = 5000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0), done = false;
    const finish = (err, v) => { if (done) return; done = true; clearTimeout(t); sock.destroy(); err ? reject(err) : resolve(v); };
    const t = setTimeout(() => finish(new Error(`GET ${path}: timeout`)), ms);
    const parse = (ended) => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) { if (ended) finish(new Error(`GET ${path}: no response`)); return; }
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
      const len = Number(headers['content-length'] ?? 0);
      if (buf.length >= end + 4 + len) finish(null, { status, headers, body: buf.subarray(end + 4, end + 4 + len).toString() });
      else if (ended) finish(new Error(`GET ${path}: short body`));
    };
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); parse(false); });
    sock.on('end', () => parse(true));
    sock.on('error', (e) => finish(e));
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
  });
}

function openWs(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...opts });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function echo(ws, text, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('echo timeout')), ms);
    ws.once('message', (d) => { clearTimeout(t); resolve(d.toString()); });
    ws.send(text);
  });
}

function closeOf(ws, ms = 5000) {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED) { resolve(null); return; }
    const t = setTimeout(() => reject(new Error('no close within time')), ms);
    ws.once('close', (code, reason) => { clearTimeout(t); resolve({ code, reason: reason.toString() }); });
  });
}

/** The server still answers: /health 200 and an echo round trip on a new WebSocket. */
async function assertHealthy(srv) {
  const h = await httpGet(srv.port, '/health');
  assert.equal(h.status, 200);
  assert.equal(JSON.parse(h.body).status, 'ok');
  const ws = await openWs(srv.wsUrl());
  try {
    assert.equal(await echo(ws, 'are you there?'), 'are you there?');
  } finally {
    const c = closeOf(ws);
    ws.close(1000);
    await c;
  }
}

async function metric(srv, re) {
  const m = await httpGet(srv.port, '/metrics');
  const hit = re.exec(m.body);
  return hit ? Number(hit[1]) : null;
}

let maskN = 0x2545f491;
function clientFrame(opcode, payload, { fin = true } = {}) {
  payload = Buffer.from(payload);
  const len = payload.length;
  let hdr;
  if (len < 126) hdr = Buffer.from([0, 0x80 | len]);
  else if (len <= 0xffff) hdr = Buffer.from([0, 0x80 | 126, len >> 8, len & 0xff]);
  else { hdr = Buffer.alloc(10); hdr[1] = 0x80 | 127; hdr.writeBigUInt64BE(BigInt(len), 2); }
  hdr[0] = (fin ? 0x80 : 0) | opcode;
  maskN = (maskN * 1103515245 + 12345) >>> 0;
  const mask = Buffer.alloc(4);
  mask.writeUInt32BE(maskN);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([hdr, mask, body]);
}

const UPGRADE = (port) => `GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
  'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** Connects, handshakes, resolves {sock, rest} once the 101 head is in (data listener removed). */
function rawHandshake(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => { sock.destroy(); reject(new Error('handshake timeout')); }, 5000);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(t);
      sock.off('data', onData);
      sock.pause();
      const head = buf.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101')) { sock.destroy(); reject(new Error(head)); return; }
      resolve({ sock, rest: buf.subarray(end + 4) });
    };
    sock.on('data', onData);
    sock.on('error', (e) => { clearTimeout(t); reject(e); });
    sock.on('connect', () => sock.write(UPGRADE(port)));
  });
}

/** Parses server frames from a stream of chunks; returns {push(chunk), frames}. */
function frameParser() {
  let buf = Buffer.alloc(0);
  const frames = [];
  return {
    frames,
    push(d) {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        frames.push({ opcode: buf[0] & 0xf, payload: buf.subarray(off, off + len) });
        buf = buf.subarray(off + len);
      }
    },
  };
}

// ---- one server for the abusive clients ----

describe('hostile clients (one server)', () => {
  let srv, bigSrv, root;
  before(async () => {
    srv = await startHerald(['--echo-endpoint', '--header-timeout', '1000', '--keepalive-timeout', '500',
      '--max-backpressure', '1048576']);
    root = mkdtempSync(join(tmpdir(), 'herald-robust-'));
    writeFileSync(join(root, 'four.bin'), Buffer.alloc(4000000, 0x42));
    bigSrv = await startHerald(['--header-timeout', '1000', '--keepalive-timeout', '500', '--send-timeout', '1500'], { webRoot: root });
  });
  after(async () => {
    if (srv) await srv.stop();
    if (bigSrv) await bigSrv.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('200 connections of random garbage', async () => {
    const rnd = prng(20240601);
    const prefixes = ['', 'GET / HTTP/1.1\r\n', 'GET /ws/echo HTTP/1.1\r\nHost: x\r\n', 'POST /health HTTP/1.1\r\nContent-Length: 5\r\n',
      'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', null /* ws handshake then garbage frames */];
    const one = () => new Promise((resolve) => {
      const len = 1 + (rnd() % 4096);
      const garbage = Buffer.alloc(len);
      for (let k = 0; k < len; k++) garbage[k] = rnd() & 0xff;
      const kind = rnd() % (prefixes.length + 2);
      let payload;
      if (kind < prefixes.length && prefixes[kind] !== null) {
        payload = Buffer.concat([Buffer.from(prefixes[kind]), garbage]);
      } else if (kind < prefixes.length) { // WebSocket handshake, then garbage frames
        payload = Buffer.concat([Buffer.from(UPGRADE(srv.port)), garbage]);
      } else if (kind === prefixes.length) { // a request line that never ends (header timeout)
        for (let k = 0; k < len; k++) garbage[k] = 0x61 + (garbage[k] % 26);
        payload = Buffer.concat([Buffer.from('GET /'), garbage]);
      } else { // a valid frame header promising 65535 bytes, then part of them (dropped mid-frame)
        const hdr = Buffer.from([0x82, 0xfe, 0xff, 0xff, 1, 2, 3, 4]);
        payload = Buffer.concat([Buffer.from(UPGRADE(srv.port)), hdr, garbage]);
      }
      // split into two writes so partial-input paths run too (drawn now: the sequence stays fixed)
      const cut = rnd() % payload.length;
      const sock = net.connect({ host: '127.0.0.1', port: srv.port });
      const t = setTimeout(() => { sock.destroy(); resolve(); }, 1500); // the server may wait for more
      sock.on('connect', () => {
        sock.write(payload.subarray(0, cut));
        setTimeout(() => { if (!sock.destroyed) sock.write(payload.subarray(cut)); }, 5);
      });
      sock.on('data', () => {});
      sock.on('error', () => {});
      sock.on('close', () => { clearTimeout(t); resolve(); });
    });
    const results = [];
    for (let batch = 0; batch < 4; batch++) {
      const ps = [];
      for (let i = 0; i < 50; i++) ps.push(one());
      await Promise.all(ps);
      results.push(...ps);
      const h = await httpGet(srv.port, '/health'); // served between batches too
      assert.equal(h.status, 200);
    }
    assert.equal(results.length, 200);
    assert.equal(srv.child.exitCode, null, 'server still running');
    await assertHealthy(srv);
  });

  test('slowloris: one header byte every 200 ms gets 408 and is closed; others are served meanwhile', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
    let received = '';
    let closedAt = null;
    const start = Date.now();
    sock.on('data', (d) => { received += d.toString('latin1'); });
    sock.on('error', () => {});
    sock.on('close', () => { closedAt = Date.now(); });
    sock.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const dripper = setInterval(() => { if (!sock.destroyed) sock.write('a'); }, 200);
    try {
      // other clients are served normally in the meantime
      while (closedAt === null && Date.now() - start < 4000) {
        const t0 = Date.now();
        const h = await httpGet(srv.port, '/health');
        assert.equal(h.status, 200);
        assert.ok(Date.now() - t0 < 1000, 'a normal client waited too long');
        await sleep(150);
      }
      assert.ok(closedAt !== null, 'slowloris connection still open after 4 s');
      const elapsed = closedAt - start;
      assert.ok(elapsed >= 900, `closed too early (${elapsed} ms)`);
      assert.ok(elapsed <= 2200, `closed too late (${elapsed} ms)`);
      assert.match(received, /^HTTP\/1\.1 408 /);
      assert.match(received, /"code":408/);
    } finally {
      clearInterval(dripper);
      sock.destroy();
    }
    await assertHealthy(srv);
  });

  test('an idle keep-alive connection is closed after --keepalive-timeout', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
    let received = '';
    let closedAt = null, answeredAt = null;
    sock.on('data', (d) => { received += d; if (received.includes('"status"') && !answeredAt) answeredAt = Date.now(); });
    sock.on('error', () => {});
    sock.on('close', () => { closedAt = Date.now(); });
    sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    const deadline = Date.now() + 3000;
    while (closedAt === null && Date.now() < deadline) await sleep(25);
    sock.destroy();
    assert.ok(answeredAt, 'request answered');
    assert.match(received, /^HTTP\/1\.1 200 /);
    assert.ok(closedAt, 'idle keep-alive connection not closed within 3 s');
    const idle = closedAt - answeredAt;
    assert.ok(idle >= 400, `closed too early (${idle} ms)`);
    assert.ok(idle <= 1500, `closed too late (${idle} ms)`);
    await assertHealthy(srv);
  });

  test('a connection that sends nothing at all is closed (no request ever started)', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
    const start = Date.now();
    let closedAt = null;
    sock.on('error', () => {});
    sock.on('close', () => { closedAt = Date.now(); });
    sock.resume();
    while (closedAt === null && Date.now() - start < 3000) await sleep(25);
    sock.destroy();
    assert.ok(closedAt, 'silent connection never closed');
    assert.ok(closedAt - start <= 1600, `closed after ${closedAt - start} ms`);
  });

  test('a WebSocket client that never reads is disconnected at --max-backpressure; memory stays bounded', async () => {
    const rssBefore = await rssBytes(srv.child.pid);
    let rssMax = rssBefore;
    const slowBefore = await metric(srv, /^herald_slow_consumers_total (\d+)$/m);
    const { sock } = await rawHandshake(srv.port);
    let sockError = null, sockClosed = false;
    sock.on('error', (e) => { sockError = e; });
    sock.on('close', () => { sockClosed = true; });
    const msg = clientFrame(0x2, Buffer.alloc(64 * 1024, 0x5a)); // "give me a 64 KiB echo"
    let sent = 0, slow = slowBefore;
    const start = Date.now();
    let lastPoll = 0;
    while (Date.now() - start < 20000) {
      if (!sockClosed && sockError === null && sock.writableLength < 2 * 1024 * 1024) {
        sock.write(msg);
        sent++;
        if (sent % 16) continue;
      } else {
        await sleep(20);
      }
      if (Date.now() - lastPoll > 200) {
        lastPoll = Date.now();
        rssMax = Math.max(rssMax, await rssBytes(srv.child.pid));
        slow = await metric(srv, /^herald_slow_consumers_total (\d+)$/m);
        if (slow > slowBefore) break;
      }
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(slow >= 1 && slow > slowBefore, `herald_slow_consumers_total did not rise (sent ${sent} x 64 KiB)`);
    const detectedAt = Date.now();
    // Now read: the server must end the connection (after its close 1008, or with a reset).
    const parser = frameParser();
    sock.on('data', (d) => parser.push(d));
    sock.resume();
    while (!sockClosed && Date.now() - detectedAt < 8000) {
      await sleep(50);
      rssMax = Math.max(rssMax, await rssBytes(srv.child.pid));
    }
    sock.destroy();
    assert.ok(sockClosed, 'the server did not close the slow consumer');
    assert.ok(Date.now() - detectedAt < 8000);
    const closes = parser.frames.filter((f) => f.opcode === 0x8);
    if (closes.length) assert.equal(closes[0].payload.readUInt16BE(0), 1008, 'close code for a slow consumer');
    if (!closes.length) assert.ok(sockError, 'no close frame: the connection must have been reset');
    const growth = rssMax - rssBefore;
    if (process.env.DEBUG_ROBUST) console.error({ sent, slow, closes: closes.length, err: sockError?.code, frames: parser.frames.length, growth });
    assert.ok(growth < 64 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB`);
    // the echo connection is gone from the gauges
    let open = null;
    for (let i = 0; i < 40; i++) {
      open = await metric(srv, /^herald_connections\{protocol="echo"\} (\d+)$/m);
      if (open === 0) break;
      await sleep(50);
    }
    assert.equal(open, 0, 'slow consumer still counted as an open echo connection');
    await assertHealthy(srv);
  });

  test('slow read: a client that requests a large response and never reads it is disconnected', async () => {
    // bigSrv serves a 4 MB file (below the default --max-backpressure) from a temp web root.
    const sock = net.connect({ host: '127.0.0.1', port: bigSrv.port });
    await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
    let closed = false;
    sock.on('close', () => { closed = true; });
    sock.on('error', () => {});
    sock.write('GET /four.bin HTTP/1.1\r\nHost: x\r\n\r\n');
    sock.pause(); // never read: the response stays stuck in the server's queue
    // A paused socket never notices the server's close, so ask the server: the only connection left
    // must be the one asking (/health counts itself).
    const start = Date.now();
    let open = Infinity;
    while (Date.now() - start < 6000) {
      const res = await fetch(bigSrv.url('/health'), { headers: { connection: 'close' } });
      open = (await res.json()).connections.total;
      if (open <= 1) break;
      await sleep(200);
    }
    sock.destroy();
    assert.ok(closed || open <= 1, 'a client that never reads held its connection (and ~4 MB of queued response) ' +
      'for 6 s with --send-timeout 1500');
  });

  test('a WebSocket client reading slowly but steadily is not cut off', async () => {
    const ws = await openWs(srv.wsUrl());
    try {
      const payload = 'y'.repeat(32 * 1024);
      for (let i = 0; i < 40; i++) assert.equal((await echo(ws, payload)).length, payload.length);
    } finally {
      const c = closeOf(ws);
      ws.close(1000);
      await c;
    }
  });

  test('afterwards no connection is left over in the books', async () => {
    let h;
    for (let i = 0; i < 60; i++) {
      h = JSON.parse((await httpGet(srv.port, '/health')).body);
      if (h.connections.total === 1) break;
      await sleep(100);
    }
    const { total, http, websocket } = h.connections;
    assert.deepEqual({ total, http, websocket }, { total: 1, http: 1, websocket: 0 }, 'only this /health request is open');
    const m = (await httpGet(srv.port, '/metrics')).body;
    assert.match(m, /^herald_connections\{protocol="echo"\} 0$/m);
  });
});

describe('connection limit (--max-connections 5)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--echo-endpoint', '--max-connections', '5']); });
  after(async () => { if (srv) await srv.stop(); });

  test('beyond the limit HTTP gets 503 (not /health) and WebSocket close 1013; freed slots are reused', async () => {
    const socks = [];
    try {
      for (let i = 0; i < 5; i++) socks.push(await openWs(srv.wsUrl()));
      for (const [i, ws] of socks.entries()) assert.equal(await echo(ws, `n${i}`), `n${i}`);

      assert.equal((await httpGet(srv.port, '/health')).status, 200, '/health answers over the limit (issue 11)');
      const r = await httpGet(srv.port, '/metrics');
      assert.equal(r.status, 503);
      assert.match(r.headers['content-type'], /^application\/json/);
      const j = JSON.parse(r.body);
      assert.equal(j.code, 503);
      assert.equal(typeof j.message, 'string');

      const extra = await openWs(srv.wsUrl());
      const closed = await closeOf(extra);
      assert.equal(closed.code, 1013);

      // free two slots
      for (const ws of socks.splice(0, 2)) {
        const c = closeOf(ws);
        ws.close(1000);
        await c;
      }
      // the server frees them right after the close handshake; allow it a moment
      const fresh = [];
      const deadline = Date.now() + 3000;
      while (fresh.length < 2 && Date.now() < deadline) {
        const ws = await openWs(srv.wsUrl());
        const refused = await Promise.race([closeOf(ws, 10000).then((c) => c.code === 1013), echo(ws, 'ok').then(() => false)]);
        if (refused) { await sleep(50); continue; }
        fresh.push(ws);
      }
      assert.equal(fresh.length, 2, 'freed slots were not reused');
      socks.push(...fresh);
      for (const ws of socks) assert.equal(await echo(ws, 'again'), 'again');

      // and full again
      const again = await openWs(srv.wsUrl());
      assert.equal((await closeOf(again)).code, 1013);
      assert.equal((await httpGet(srv.port, '/metrics')).status, 503);
    } finally {
      for (const ws of socks) ws.terminate();
    }
    // everything released: served normally again
    const deadline = Date.now() + 3000;
    let status = 0;
    while (Date.now() < deadline && (status = (await httpGet(srv.port, '/health')).status) !== 200) await sleep(50);
    assert.equal(status, 200);
    await assertHealthy(srv);
  });
});

describe('graceful shutdown', () => {
  test('SIGTERM: every WebSocket gets close 1001, idle HTTP closes, exit code 0', async () => {
    const srv = await startHerald(['--echo-endpoint']);
    let stopped = false;
    try {
      const socks = [];
      for (let i = 0; i < 3; i++) socks.push(await openWs(srv.wsUrl()));
      const closes = socks.map((ws) => closeOf(ws, 5000));
      const idle = net.connect({ host: '127.0.0.1', port: srv.port });
      await new Promise((r) => idle.once('connect', r));
      let idleClosed = false;
      idle.on('close', () => { idleClosed = true; });
      idle.on('error', () => {});
      idle.resume();
      const t0 = Date.now();
      const result = await srv.stop();
      stopped = true;
      const took = Date.now() - t0;
      for (const c of await Promise.all(closes)) assert.equal(c.code, 1001);
      assert.deepEqual(result, { code: 0, signal: null });
      assert.ok(took < 3000, `exit took ${took} ms`);
      await sleep(50);
      assert.ok(idleClosed, 'idle HTTP connection closed on shutdown');
      assert.match(srv.log, /shutting down/);
    } finally {
      if (!stopped) await srv.stop();
    }
  });

  test('--shutdown-grace 500 with a client that ignores the close: exit 0 within ~1.5 s', async () => {
    const srv = await startHerald(['--echo-endpoint', '--shutdown-grace', '500']);
    let stopped = false;
    try {
      const { sock, rest } = await rawHandshake(srv.port);
      const parser = frameParser();
      parser.push(rest);
      let closed = false;
      sock.on('data', (d) => parser.push(d)); // reads, but never answers the close frame
      sock.on('close', () => { closed = true; });
      sock.on('error', () => {});
      sock.resume();
      const t0 = Date.now();
      const result = await srv.stop();
      stopped = true;
      const took = Date.now() - t0;
      assert.deepEqual(result, { code: 0, signal: null });
      assert.ok(took >= 400, `exited before the grace period (${took} ms)`);
      assert.ok(took < 1500, `exit took ${took} ms`);
      await sleep(50);
      const close = parser.frames.find((f) => f.opcode === 0x8);
      assert.ok(close, 'close frame received');
      assert.equal(close.payload.readUInt16BE(0), 1001);
      assert.ok(closed, 'socket closed');
      sock.destroy();
    } finally {
      if (!stopped) await srv.stop();
    }
  });

  test('SIGINT also shuts down cleanly', async () => {
    const srv = await startHerald(['--echo-endpoint']);
    const ws = await openWs(srv.wsUrl());
    const c = closeOf(ws);
    const result = await srv.stop('SIGINT');
    assert.equal((await c).code, 1001);
    assert.deepEqual(result, { code: 0, signal: null });
  });
});
