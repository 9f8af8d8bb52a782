// Live reload: `herald reload` (through --pid-file) and SIGHUP re-read the config file and the TLS
// certificate and key while clients stay connected (wss with `ws`, socket.io-client over WebSocket
// and long-polling): they keep their connections and sessions, new handshakes get the new
// certificate on every shard, an option that cannot change live is named in the log, and a broken
// certificate is refused with the old one kept.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { HERALD_BIN, startHerald } from './lib/server.mjs';
import { makePki, tlsPortOf } from './lib/tls_certs.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The certificate fingerprint a new handshake sees. */
function fingerprint(port, ca) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const f = s.getPeerCertificate().fingerprint256;
      s.destroy();
      resolve(f);
    });
    s.on('error', reject);
  });
}

/** Waits until the server log matches re `count` times. */
async function logged(srv, re, count = 1, ms = 5000) {
  const g = new RegExp(re.source, 'g');
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(20)) if ((srv.log.match(g) || []).length >= count) return;
  throw new Error(`log never showed ${re} ${count} time(s):\n${srv.log}`);
}

function run(args) {
  return new Promise((resolve) => execFile(HERALD_BIN, args, { timeout: 10000 }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr })));
}

describe('live reload of the TLS certificate', { timeout: 60000 }, () => {
  let pki, srv, port, first, second, config, pidFile, ws, sioWs, sioPoll;
  const live = { cert: '', key: '' };
  const install = (leaf) => { copyFileSync(leaf.cert, live.cert); copyFileSync(leaf.key, live.key); };

  before(async () => {
    pki = makePki();
    first = pki.issue('first');
    second = pki.issue('second');
    live.cert = join(pki.dir, 'live.pem');
    live.key = join(pki.dir, 'live.key');
    install(first);
    config = join(pki.dir, 'herald.conf');
    pidFile = join(pki.dir, 'herald.pid');
    writeFileSync(config, `tls-cert = ${live.cert}\ntls-key = ${live.key}\npid-file = ${pidFile}\n`);
    srv = await startHerald(['--config', config, '--echo-endpoint', '--test-handlers']);
    port = tlsPortOf(srv.log);
    ws = new WebSocket(`wss://localhost:${port}/ws/echo`, { ca: pki.caPem });
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    const opts = { ca: pki.caPem, forceNew: true, reconnection: false };
    sioWs = io(`https://localhost:${port}`, { ...opts, transports: ['websocket'] });
    sioPoll = io(`https://localhost:${port}`, { ...opts, transports: ['polling'] });
    await Promise.all([sioWs, sioPoll].map((s) => new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); })));
  });
  after(async () => {
    ws?.close();
    sioWs?.close();
    sioPoll?.close();
    await srv?.stop();
    assert.ok(!existsSync(pidFile), 'the pid file goes with the server');
    pki?.cleanup();
  });

  /** Every client is still on its first connection and answers. */
  async function clientsStillThere(tag) {
    assert.equal(ws.readyState, WebSocket.OPEN);
    const echoed = new Promise((r) => ws.once('message', (d) => r(String(d))));
    ws.send(`ws ${tag}`);
    assert.equal(await echoed, `ws ${tag}`);
    for (const s of [sioWs, sioPoll]) {
      assert.ok(s.connected, `${s.io.engine.transport.name} socket still connected`);
      assert.equal(await s.timeout(3000).emitWithAck('echo', tag), tag);
    }
  }

  test('herald reload: new handshakes see the new certificate, connected clients stay', async () => {
    assert.equal(await fingerprint(port, pki.caPem), first.fingerprint);
    const ids = [sioWs.id, sioPoll.id];
    install(second);
    writeFileSync(config, `tls-cert = ${live.cert}\ntls-key = ${live.key}\npid-file = ${pidFile}\nmax-connections = 77\n`);
    const r = await run(['reload', '--pid-file', pidFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /asked pid \d+ to reload/);
    await logged(srv, /msg="reload done: new TLS handshakes use the certificate" generation=1 /);
    assert.match(srv.log, /option cannot change while the server runs: it keeps its old value.*option=max-connections/);
    for (let i = 0; i < 6; i++) assert.equal(await fingerprint(port, pki.caPem), second.fingerprint, `handshake ${i}`);
    await clientsStillThere('after reload');
    assert.deepEqual([sioWs.id, sioPoll.id], ids, 'the same Socket.IO sessions');
  });

  test('SIGHUP does the same (herald reload --config finds the pid file too)', async () => {
    install(first);
    srv.child.kill('SIGHUP');
    await logged(srv, /msg="reload done: new TLS handshakes use the certificate" generation=2 /);
    assert.equal(await fingerprint(port, pki.caPem), first.fingerprint);
    install(second);
    const r = await run(['reload', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    await logged(srv, /msg="reload done: new TLS handshakes use the certificate" generation=3 /);
    assert.equal(await fingerprint(port, pki.caPem), second.fingerprint);
    await clientsStillThere('after sighup');
  });

  test('a broken certificate or config is refused: the one in use stays', async () => {
    writeFileSync(live.cert, '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n');
    srv.child.kill('SIGHUP');
    await logged(srv, /msg="reload refused: the TLS certificate does not load; the one in use stays"/);
    assert.equal(await fingerprint(port, pki.caPem), second.fingerprint);
    const expired = pki.issue('expired', { days: -1 });
    install(expired);
    srv.child.kill('SIGHUP');
    await logged(srv, /reload refused: the TLS certificate does not load.*has expired/);
    assert.equal(await fingerprint(port, pki.caPem), second.fingerprint);
    writeFileSync(config, `tls-cert = ${live.cert}\nno-such-option = 1\n`);
    srv.child.kill('SIGHUP');
    await logged(srv, /reload refused: the configuration does not load; nothing changed.*no-such-option/);
    await clientsStillThere('after refusals');
  });

  test('herald reload without a pid file says so and fails', async () => {
    const r = await run(['reload', '--pid-file', join(pki.dir, 'missing.pid')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read a pid from .*missing\.pid/);
    const stale = join(pki.dir, 'stale.pid');
    writeFileSync(stale, `${process.pid}\n`); // a live process that is not herald
    const wrong = await run(['reload', '--pid-file', stale]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /not herald: a stale pid file\? Nothing signalled/);
    const none = await run(['reload']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no --pid-file/);
  });
});
