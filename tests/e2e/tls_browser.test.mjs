// Headless Chromium (Debian's, driven by playwright-core) over https:// and wss:// with the test CA
// trusted the way Chromium on Linux trusts a CA: imported into the NSS database of the browser's
// $HOME (certutil, libnss3-tools) — no --ignore-certificate-errors. The page loads the served
// socket.io client bundle and connects over WebSocket and long-polling, and a plain WebSocket echoes;
// a browser whose NSS database lacks the CA refuses the same page.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startHerald } from '../interop/lib/server.mjs';
import { makePki, tlsPortOf } from '../interop/lib/tls_certs.mjs';

const CHROMIUM = '/usr/bin/chromium';
const CERTUTIL = '/usr/bin/certutil';
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} not found (scripts/install-deps.sh installs Debian's chromium)`
  : !existsSync(CERTUTIL) ? `${CERTUTIL} not found (scripts/install-deps.sh installs libnss3-tools)` : false;

/** A browser whose $HOME holds an NSS database, trusting caPath as a CA when given. */
async function launch(home, caPath) {
  const nss = join(home, '.pki', 'nssdb');
  mkdirSync(nss, { recursive: true });
  execFileSync(CERTUTIL, ['-d', `sql:${nss}`, '-N', '--empty-password']);
  if (caPath) execFileSync(CERTUTIL, ['-d', `sql:${nss}`, '-A', '-t', 'C,,', '-n', 'Herald Test CA', '-i', caPath]);
  return chromium.launchPersistentContext(join(home, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: home },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
}

describe('Chromium over https and wss with a trusted test CA', { skip, timeout: 90000 }, () => {
  let pki, srv, port, home, browser;
  before(async () => {
    pki = makePki();
    const leaf = pki.issue('server');
    srv = await startHerald(['--echo-endpoint', '--test-handlers', '--tls-cert', leaf.cert, '--tls-key', leaf.key]);
    port = tlsPortOf(srv.log);
    home = mkdtempSync(join(tmpdir(), 'herald-chromium-tls-'));
    browser = await launch(home, pki.ca);
  });
  after(async () => {
    await browser?.close().catch(() => {});
    await srv?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
    pki?.cleanup();
  });

  test('the page loads over https, socket.io connects over wss and polling, a WebSocket echoes', async () => {
    const page = await browser.newPage();
    try {
      const res = await page.goto(`https://localhost:${port}/health`);
      assert.equal(res.status(), 200);
      const security = await res.securityDetails();
      assert.equal(security.issuer, 'Herald Test CA');
      await page.addScriptTag({ url: '/socket.io/socket.io.js' });
      const result = await page.evaluate(async () => {
        const viaSio = (transports) => new Promise((resolve, reject) => {
          const s = io({ transports, forceNew: true, reconnection: false });
          s.on('connect_error', (e) => reject(new Error(`${transports}: ${e.message}`)));
          s.on('connect', () => s.timeout(3000).emit('echo', `hi ${transports}`, (err, v) => {
            s.close();
            return err ? reject(err) : resolve(`${v} via ${location.protocol}`);
          }));
        });
        const viaWs = () => new Promise((resolve, reject) => {
          const ws = new WebSocket(`wss://${location.host}/ws/echo`);
          ws.onopen = () => ws.send('hello wss');
          ws.onmessage = (e) => { ws.close(); resolve(e.data); };
          ws.onerror = () => reject(new Error('wss failed'));
        });
        return [await viaSio(['websocket']), await viaSio(['polling']), await viaWs()];
      });
      assert.deepEqual(result, ['hi websocket via https:', 'hi polling via https:', 'hello wss']);
    } finally { await page.close(); }
  });

  test('a browser without the CA in its NSS database refuses the certificate', async () => {
    const otherHome = mkdtempSync(join(tmpdir(), 'herald-chromium-tls-'));
    const untrusting = await launch(otherHome, null);
    try {
      const page = await untrusting.newPage();
      await assert.rejects(page.goto(`https://localhost:${port}/health`), /ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await untrusting.close().catch(() => {});
      rmSync(otherHome, { recursive: true, force: true });
    }
  });
});
