// socket.io-client in a real browser (Debian chromium driven by playwright-core) against
// `herald serve --test-handlers`: herald serves the client bundle at /socket.io/socket.io.js (and
// .min.js, and both source maps) and a test page from a temporary web root; the page connects
// (default transports with the upgrade, websocket only, polling only), emits echo with an ack,
// gets message-back with ArrayBuffers and a binary ack, and hands its results to the test through
// page.evaluate. Console errors and page errors fail the test.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startHerald } from './lib/server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (scripts/install-deps.sh installs Debian's chromium)`;

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>herald socket.io browser test</title><link rel="icon" href="data:,">
<script src="/socket.io/socket.io.js"></script></head>
<body><script>
window.sioTest = async function (transports) {
  const out = { log: [] };
  const socket = io({ transports, reconnection: false, timeout: 5000, auth: { from: 'browser', n: 1 } });
  try {
    const auth = new Promise((r) => { socket.once('auth', (...a) => r(a)); setTimeout(() => r(['no "auth" event']), 5000); });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', (e) => reject(new Error('connect_error: ' + e.message)));
    });
    out.id = socket.id;
    out.echo = await socket.timeout(5000).emitWithAck('echo', 'hello from the browser é中😀');

    const back = new Promise((r) => socket.once('message-back', (...a) => r(a)));
    socket.emit('message', new Uint8Array([1, 2, 3, 250, 255]).buffer, { nested: new Uint8Array([9, 8]), text: 't' });
    const got = await back;
    out.back = {
      firstIsArrayBuffer: got[0] instanceof ArrayBuffer,
      first: Array.from(new Uint8Array(got[0])),
      nestedIsArrayBuffer: got[1].nested instanceof ArrayBuffer,
      nested: Array.from(new Uint8Array(got[1].nested)),
      text: got[1].text,
    };

    const acked = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no ack for message-with-ack')), 5000);
      socket.emit('message-with-ack', new Uint8Array([7, 6, 5]), 'x', (...a) => { clearTimeout(t); resolve(a); });
    });
    out.ack = { isArrayBuffer: acked[0] instanceof ArrayBuffer, bytes: Array.from(new Uint8Array(acked[0])), rest: acked.slice(1) };

    const deadline = Date.now() + 5000; // the default transports upgrade to websocket
    while (!transports && socket.io.engine.transport.name !== 'websocket' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    out.transport = socket.io.engine.transport.name;
    out.afterUpgrade = await socket.timeout(5000).emitWithAck('echo', 'still here');
    out.auth = (await auth)[0];
    return out;
  } finally {
    socket.close();
  }
};
</script></body></html>
`;

describe('socket.io-client in Chromium', { skip, timeout: 50000 }, () => {
  let srv, browser, webRoot, profile;

  before(async () => {
    webRoot = mkdtempSync(join(tmpdir(), 'herald-web-'));
    profile = mkdtempSync(join(tmpdir(), 'herald-chromium-'));
    // the server's Content-Security-Policy allows no inline script: the page's script is a file of its own
    const inline = /<script>([\s\S]*?)<\/script>/.exec(PAGE);
    writeFileSync(join(webRoot, 'sio.html'), PAGE.replace(inline[0], '<script src="/sio.js"></script>'));
    writeFileSync(join(webRoot, 'sio.js'), inline[1]);
    srv = await startHerald(['--test-handlers', '--socketio-client-dir', join(ROOT, 'node_modules', 'socket.io-client', 'dist')], { webRoot });
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      timeout: 30000,
    });
  });

  after(async () => {
    await browser?.close();
    await srv?.stop();
    for (const dir of [webRoot, profile]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the client bundle is served: socket.io.js, socket.io.min.js and their source maps', async () => {
    for (const name of ['socket.io.js', 'socket.io.min.js']) {
      const res = await fetch(srv.url(`/socket.io/${name}`));
      assert.equal(res.status, 200, name);
      assert.match(res.headers.get('content-type') ?? '', /javascript/, `${name} content-type`);
      const body = await res.text();
      assert.match(body, /Socket\.IO v4\.7\.2/, `${name} is socket.io-client 4.7.2`);
    }
    for (const name of ['socket.io.js.map', 'socket.io.min.js.map']) {
      const res = await fetch(srv.url(`/socket.io/${name}`));
      assert.equal(res.status, 200, name);
      const map = JSON.parse(await res.text());
      assert.equal(map.version, 3, `${name} is a source map`);
      assert.ok(Array.isArray(map.sources) && map.sources.length > 0);
    }
    const missing = await fetch(srv.url('/socket.io/socket.io.esm.min.js.nope'));
    assert.notEqual(missing.status, 200);
    await missing.arrayBuffer();
  });

  for (const [name, transports] of [['default transports (upgrade)', null], ['websocket only', ['websocket']], ['polling only', ['polling']]]) {
    test(`page on herald: ${name}: connect, echo ack, message-back with ArrayBuffers, binary ack`, async () => {
      const page = await browser.newPage();
      const problems = [];
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      const scripts = [];
      page.on('response', (r) => {
        if (r.url().endsWith('/socket.io/socket.io.js')) scripts.push(r.status());
        if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
      });
      try {
        const res = await page.goto(srv.url('/sio.html'), { timeout: 15000 });
        assert.equal(res.status(), 200);
        assert.deepEqual(scripts, [200], 'the page loaded the bundle from herald');
        const out = await page.evaluate((t) => window.sioTest(t ?? undefined), transports);
        assert.ok(out.id);
        assert.equal(out.echo, 'hello from the browser é中😀');
        assert.deepEqual(out.back, { firstIsArrayBuffer: true, first: [1, 2, 3, 250, 255], nestedIsArrayBuffer: true, nested: [9, 8], text: 't' });
        assert.deepEqual(out.ack, { isArrayBuffer: true, bytes: [7, 6, 5], rest: ['x'] });
        assert.equal(out.transport, transports ? transports[0] : 'websocket');
        assert.equal(out.afterUpgrade, 'still here');
        assert.deepEqual(problems, []);
        assert.deepEqual(out.auth, { from: 'browser', n: 1 }, 'the "auth" event carries the CONNECT payload');
      } finally {
        await page.close();
      }
    });
  }
});
