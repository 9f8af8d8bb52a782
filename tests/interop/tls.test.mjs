// TLS (--tls-cert, --tls-key, --tls-port) with real clients trusting a test CA made at test time:
// https (Node's https, curl), wss (npm `ws`, python3-websockets), socket.io-client 4.7.2 over
// WebSocket and over long-polling (a new TCP connection per request, so with 2 shards requests land
// on the shard that does not own the session and are handed over with their TLS session), ALPN,
// session resumption, TLS beside plain, and bad input: garbage before the ClientHello, a client
// that stalls mid-handshake, a handshake flood, bad certificates at start.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { HERALD_BIN, startHerald } from './lib/server.mjs';
import { makePki, tlsPortOf } from './lib/tls_certs.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SUITE = { timeout: 60000 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GET over https with the test CA; {status, body, socket facts}. */
function httpsGet(port, path, { ca, session, host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port, path, ca, session, agent: false, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body, alpn: res.socket.alpnProtocol, reused: res.socket.isSessionReused(), protocol: res.socket.getProtocol() }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A TLS handshake's result: the session ticket(s) come after it, so wait for one. */
function handshake(port, { ca, session, minVersion, maxVersion } = {}) {
  return new Promise((resolve, reject) => {
    let ticket = null;
    const s = tls.connect({ host: '127.0.0.1', port, ca, session, servername: 'localhost', minVersion, maxVersion }, () => {
      const info = { reused: s.isSessionReused(), protocol: s.getProtocol(), fingerprint: s.getPeerCertificate().fingerprint256 };
      setTimeout(() => { s.end(); resolve({ ...info, session: ticket }); }, 100);
    });
    s.on('session', (t) => { ticket = t; }); // TLS 1.2: during the handshake; 1.3: after it
    s.on('error', reject);
  });
}

/** Resolves when sock closes (with the ms it took), rejects after ms. */
function closedWithin(sock, ms) {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    sock.on('close', () => { clearTimeout(timer); resolve(Date.now() - t0); });
    sock.on('error', () => {});
  });
}

function metric(text, name) {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('TLS on --port alone', SUITE, () => {
  let pki, srv, port, leaf;
  before(async () => {
    pki = makePki();
    leaf = pki.issue('server');
    srv = await startHerald(['--echo-endpoint', '--test-handlers', '--tls-cert', leaf.cert, '--tls-key', leaf.key]);
    port = tlsPortOf(srv.log);
    assert.equal(port, srv.port, 'TLS is served on --port itself');
  });
  after(async () => { await srv?.stop(); pki?.cleanup(); });

  test('https with Node: 200, ALPN http/1.1, the certificate chains to the test CA', async () => {
    const r = await httpsGet(port, '/health', { ca: pki.caPem });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).status, 'ok');
    assert.equal(r.alpn, 'http/1.1');
    await assert.rejects(httpsGet(port, '/health', {}), /self[- ]signed|unable to (get|verify)/i, 'an untrusting client refuses it');
  });

  test('a response bigger than a record (the 130 KiB client bundle) arrives whole', async () => {
    const r = await httpsGet(port, '/socket.io/socket.io.js', { ca: pki.caPem });
    assert.equal(r.status, 200);
    const file = readFileSync(join(HERE, '..', '..', 'node_modules', 'socket.io-client', 'dist', 'socket.io.js'), 'utf8');
    assert.ok(file.length > 100000);
    assert.equal(r.body, file);
  });

  test('plain HTTP to a TLS port is a failed handshake, not a crash', async () => {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await closedWithin(sock, 3000);
    assert.equal((await httpsGet(port, '/health', { ca: pki.caPem })).status, 200);
  });

  test('session tickets: a second handshake resumes (TLS 1.3 and 1.2)', async () => {
    for (const version of ['TLSv1.3', 'TLSv1.2']) {
      const first = await handshake(port, { ca: pki.caPem, minVersion: version, maxVersion: version });
      assert.equal(first.protocol, version);
      assert.equal(first.reused, false);
      assert.ok(first.session, `a ${version} session ticket arrives`);
      const second = await handshake(port, { ca: pki.caPem, session: first.session, minVersion: version, maxVersion: version });
      assert.equal(second.reused, true, `${version} session resumed`);
    }
  });

  test('curl over https (HTTP/1.1 via ALPN) with --cacert', () => {
    const r = spawnSync('curl', ['-sS', '--cacert', pki.ca, '-w', '\n%{http_code} %{http_version}', `https://localhost:${port}/health`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /"status":"ok"[\s\S]*\n200 1\.1$/);
    const bad = spawnSync('curl', ['-sS', `https://localhost:${port}/health`], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0, 'curl without the CA refuses the certificate');
  });

  test('wss echo with ws: small, 64 KiB and 1 MiB messages, in order', async () => {
    const ws = new WebSocket(`wss://localhost:${port}/ws/echo`, { ca: pki.caPem });
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    const sizes = [0, 1, 125, 126, 65536, 1024 * 1024, 3];
    const got = [];
    const done = new Promise((r) => ws.on('message', (d) => { got.push(d); if (got.length === sizes.length) r(); }));
    const sent = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    for (const b of sent) ws.send(b);
    await done;
    sizes.forEach((n, i) => assert.ok(Buffer.from(got[i]).equals(sent[i]), `message ${i} (${n} bytes) echoed intact`));
    ws.close();
  });

  test('socket.io-client over wss: acks and a broadcast to another socket', async () => {
    const opts = { transports: ['websocket'], ca: pki.caPem, forceNew: true, reconnection: false };
    const a = io(`https://localhost:${port}`, opts), b = io(`https://localhost:${port}`, opts);
    try {
      await Promise.all([a, b].map((s) => new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); })));
      assert.equal(await a.timeout(3000).emitWithAck('echo', 'over tls'), 'over tls');
      const msg = new Promise((r) => b.once('msg', r));
      a.emit('broadcast', { n: 42 });
      assert.deepEqual(await msg, { n: 42 });
    } finally { a.close(); b.close(); }
  });

  test('socket.io-client long-polling over https, a new connection per request', async () => {
    const sockets = [];
    try {
      for (let i = 0; i < 6; i++) {
        sockets.push(io(`https://localhost:${port}`, { transports: ['polling'], ca: pki.caPem, agent: false, forceNew: true, reconnection: false }));
      }
      await Promise.all(sockets.map((s) => new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); })));
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(sockets.map((s, i) => s.timeout(5000).emitWithAck('echo', `${round}-${i}`)));
        assert.deepEqual(answers, sockets.map((_, i) => `${round}-${i}`));
      }
      const msg = Promise.all(sockets.slice(1).map((s) => new Promise((r) => s.once('msg', r))));
      sockets[0].emit('broadcast', 'to all');
      assert.deepEqual(await msg, sockets.slice(1).map(() => 'to all'));
    } finally { for (const s of sockets) s.close(); }
  });

  test('python3-websockets over wss trusting the test CA', async () => {
    const script = `
import asyncio, ssl, sys, websockets
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with websockets.connect(sys.argv[1], ssl=ctx) as ws:
        for m in ["hello", "x" * 70000]:
            await ws.send(m)
            assert await ws.recv() == m
        try:
            async with websockets.connect(sys.argv[1], ssl=ssl.create_default_context()) as bad:
                print("untrusted certificate accepted"); sys.exit(1)
        except ssl.SSLCertVerificationError:
            pass
    print("ok")
asyncio.run(main())
`;
    const out = await new Promise((resolve, reject) => execFile('/usr/bin/python3', ['-c', script, `wss://localhost:${port}/ws/echo`, pki.ca],
      { timeout: 15000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout))));
    assert.equal(out.trim(), 'ok');
  });
});

describe('TLS beside plain (--tls-port), two shards: hand-over keeps the TLS session', SUITE, () => {
  let pki, srv, tlsPort;
  before(async () => {
    pki = makePki();
    const leaf = pki.issue('server');
    srv = await startHerald(['--test-handlers', '--tls-cert', leaf.cert, '--tls-key', leaf.key, '--tls-port', '0', '--shards', '2',
      '--log-level', 'debug']);
    tlsPort = tlsPortOf(srv.log);
  });
  after(async () => { await srv?.stop(); pki?.cleanup(); });

  test('plain on --port, TLS on --tls-port', async () => {
    assert.notEqual(tlsPort, srv.port);
    assert.equal((await fetch(srv.url('/health'))).status, 200);
    assert.equal((await httpsGet(tlsPort, '/health', { ca: pki.caPem })).status, 200);
  });

  test('long-polling over keep-alive https connections, sessions spread over both shards', async () => {
    // keep-alive: a connection that lands on the other shard carries its TLS session there, and
    // the requests after it on the same connection go on over that session
    const agent = new https.Agent({ keepAlive: true, maxSockets: 24, ca: pki.caPem });
    const sockets = [];
    try {
      for (let i = 0; i < 8; i++) {
        sockets.push(io(`https://localhost:${tlsPort}`, { transports: ['polling'], agent, ca: pki.caPem, forceNew: true, reconnection: false }));
      }
      await Promise.all(sockets.map((s) => new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); })));
      for (let round = 0; round < 4; round++) {
        const answers = await Promise.all(sockets.map((s, i) => s.timeout(5000).emitWithAck('echo', { round, i })));
        assert.deepEqual(answers, sockets.map((_, i) => ({ round, i })));
      }
      const m = await (await fetch(srv.url('/metrics'))).text();
      assert.ok(metric(m, 'herald_tls_handshakes_total{outcome="done"}') >= 2);
      const moved = srv.log.match(/handed to the shard of its request.* tls=1/g) || [];
      assert.ok(moved.length >= 1, 'some TLS connections were handed to the other shard');
    } finally { for (const s of sockets) s.close(); agent.destroy(); }
  });

  test('polling, then the upgrade to WebSocket, over TLS', async () => {
    const s = io(`https://localhost:${tlsPort}`, { ca: pki.caPem, agent: false, forceNew: true, reconnection: false });
    try {
      await new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); });
      await new Promise((r) => (s.io.engine.transport.name === 'websocket' ? r() : s.io.engine.once('upgrade', r)));
      assert.equal(await s.timeout(3000).emitWithAck('echo', 'upgraded'), 'upgraded');
    } finally { s.close(); }
  });
});

describe('TLS bad input', SUITE, () => {
  let pki, srv, port;
  before(async () => {
    pki = makePki();
    const leaf = pki.issue('server');
    srv = await startHerald(['--tls-cert', leaf.cert, '--tls-key', leaf.key, '--tls-handshake-timeout', '600',
      '--tls-max-handshakes', '6', '--tls-max-handshakes-per-shard', '6']);
    port = srv.port;
  });
  after(async () => { await srv?.stop(); pki?.cleanup(); });

  const metrics = async () => (await httpsGet(port, '/metrics', { ca: pki.caPem })).body;

  test('garbage before the ClientHello: closed at once, counted as a failed handshake', async () => {
    const before = metric(await metrics(), 'herald_tls_handshakes_total{outcome="failed"}');
    const sock = net.connect(port, '127.0.0.1');
    sock.write(Buffer.from('\x00\x01\x02 not a client hello at all, just bytes \xff\xfe\r\n'.repeat(4), 'latin1'));
    assert.ok(await closedWithin(sock, 2000) < 2000);
    const after = metric(await metrics(), 'herald_tls_handshakes_total{outcome="failed"}');
    assert.equal(after, before + 1);
  });

  test('a record longer than TLS allows: a fatal alert at once, then the connection ends', async () => {
    const sock = net.connect(port, '127.0.0.1');
    const first = new Promise((r) => sock.once('data', r));
    sock.write(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00]));
    const alert = await first;
    assert.equal(alert[0], 0x15, 'an alert record');
    sock.end();
    await closedWithin(sock, 3000);
  });

  test('a client that stalls mid-handshake is closed after --tls-handshake-timeout', async () => {
    // the first bytes of a real ClientHello, then nothing
    const hello = await new Promise((resolve) => {
      const capture = net.createServer((s) => s.once('data', (d) => { resolve(d); s.destroy(); capture.close(); }));
      capture.listen(0, '127.0.0.1', () => {
        const c = tls.connect({ host: '127.0.0.1', port: capture.address().port, rejectUnauthorized: false });
        c.on('error', () => {});
      });
    });
    const sock = net.connect(port, '127.0.0.1');
    sock.write(hello.subarray(0, Math.floor(hello.length / 2)));
    const ms = await closedWithin(sock, 5000);
    assert.ok(ms >= 400 && ms < 3000, `closed after ${ms} ms (timeout 600 ms)`);
    assert.ok(metric(await metrics(), 'herald_tls_handshakes_total{outcome="timeout"}') >= 1);
  });

  test('a handshake flood is capped: past --tls-max-handshakes newcomers are shed, served again after', async () => {
    const socks = [], closes = [];
    for (let i = 0; i < 20; i++) {
      const s = net.connect(port, '127.0.0.1');
      closes.push(closedWithin(s, 400).then(() => true, () => false)); // well before the 600 ms timeout
      socks.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    const closedSoon = await Promise.all(closes);
    const shed = closedSoon.filter(Boolean).length;
    assert.ok(shed >= 14, `${shed} of 20 stalled handshakes were shed at once (cap 6)`);
    for (const s of socks) s.destroy();
    await sleep(100);
    assert.ok(metric(await metrics(), 'herald_tls_handshakes_total{outcome="refused"}') >= 14);
    assert.equal((await httpsGet(port, '/health', { ca: pki.caPem })).status, 200);
  });

  test('TLS 1.1 and below are refused; --tls-min-version 1.3 refuses 1.2', async () => {
    await assert.rejects(handshake(port, { ca: pki.caPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }));
    const leaf = pki.issue('v13');
    const only13 = await startHerald(['--tls-cert', leaf.cert, '--tls-key', leaf.key, '--tls-min-version', '1.3']);
    try {
      await assert.rejects(handshake(only13.port, { ca: pki.caPem, maxVersion: 'TLSv1.2' }));
      assert.equal((await handshake(only13.port, { ca: pki.caPem })).protocol, 'TLSv1.3');
    } finally { await only13.stop(); }
  });
});

describe('TLS certificates refused at start', SUITE, () => {
  let pki;
  before(() => { pki = makePki(); });
  after(() => pki?.cleanup());

  const serve = (args) => spawnSync(HERALD_BIN, ['serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', join(pki.dir, 'data'),
    '--web-root', '', ...args], { encoding: 'utf8', timeout: 10000 });

  test('an expired certificate: a clear error, exit 1, nothing listens', () => {
    const old = pki.issue('expired', { days: -1 });
    const r = serve(['--tls-cert', old.cert, '--tls-key', old.key]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot serve TLS.*has expired/);
    assert.doesNotMatch(r.stderr, /msg="listening"/);
  });

  test('a key that does not match the certificate', () => {
    const a = pki.issue('a'), b = pki.issue('b');
    const r = serve(['--tls-cert', a.cert, '--tls-key', b.key]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /does not match the certificate/);
  });

  test('a missing file, a certificate without a key, a bad --tls-min-version', () => {
    const a = pki.issue('c');
    let r = serve(['--tls-cert', join(pki.dir, 'nope.pem'), '--tls-key', a.key]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot load --tls-cert/);
    r = serve(['--tls-cert', a.cert]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /needs both --tls-cert and --tls-key/);
    r = serve(['--tls-cert', a.cert, '--tls-key', a.key, '--tls-min-version', '1.1']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /tls-min-version/);
    r = serve(['--tls-cert', a.cert, '--tls-key', a.key, '--port', '18443', '--tls-port', '18443']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--tls-port must differ from --port/);
    r = serve(['--tls-port', '0']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--tls-port needs --tls-cert/);
  });
});
