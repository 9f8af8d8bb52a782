// The dashboard's "Cluster nodes" panel in headless Chromium (issue 9): two Herald nodes on one Redis
// (HERALD_TEST_REDIS_URL, their own --redis-prefix), the page opened on node A with an admin token
// minted here lists both nodes (tag, URL, connections, online users) from GET /api/v4/presence, and
// the "Online now" tile counts a customer connected to node B; no console error, no CSP violation.
// Screenshot: test-artifacts/dashboard-cluster.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import { startHerald } from '../interop/lib/server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = process.env.HERALD_TEST_ARTIFACTS || join(ROOT, 'test-artifacts');
const REDIS = process.env.HERALD_TEST_REDIS_URL;
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} not found` : !REDIS ? 'HERALD_TEST_REDIS_URL is not set' : false;
const WAIT = 8000;
const SECRET = 'dashboard-cluster-secret-0123456789';

function token(sub, role) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(sub), role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${crypto.createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

let a, b, browser;
const prefix = `herald-dash-${crypto.randomBytes(4).toString('hex')}`;
const ARGS = ['--jwt-secret', SECRET, '--demo-users', 'false', '--redis-url', REDIS, '--redis-prefix', prefix,
  '--socketio-client-dir', join(ROOT, 'node_modules', 'socket.io-client', 'dist')];

before(async () => {
  if (skip) return;
  [a, b] = await Promise.all([startHerald(ARGS), startHerald(ARGS)]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await Promise.all([a?.stop(), b?.stop()]);
});

test('the dashboard lists the cluster\'s nodes and who is online on them', { skip }, async () => {
  const customer = io(b.url('/'), { auth: { token: token(4242, 'user') }, transports: ['websocket'], forceNew: true, reconnection: false });
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
  try {
    await page.goto(a.url('/'), { timeout: WAIT });
    await page.evaluate((auth) => localStorage.setItem('herald.admin.auth', JSON.stringify(auth)),
      { token: token(77, 'admin'), user: { id: 77, name: 'admin77', role: 'admin' } });
    await page.goto(a.url('/admin/dashboard.html'), { timeout: WAIT });
    await page.waitForFunction(() => document.body.dataset.nodes === '2' &&
      document.querySelector('#t-online [data-v]').textContent === '1' &&
      /1 admin ·/.test(document.querySelector('#t-online [data-s]').textContent) &&
      // a node's URL comes from the node registry, read apart from presence: '—' until it is known
      [...document.querySelectorAll('#nodes tbody tr td:nth-child(2)')].every((td) => td.textContent.trim() !== '—'),
    null, { timeout: 10000 });
    const rows = await page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
    assert.equal(rows.length, 2);
    assert.match(rows[0][0], /\(this node\)/);
    assert.equal(rows[0][1], a.url('').replace(/\/$/, ''));
    assert.equal(rows[1][1], b.url('').replace(/\/$/, ''), 'the other node with its advertised URL');
    assert.equal(rows[1][3], '1', 'the customer on node B is an online user there');
    assert.match(await page.textContent('#nodes-scope'), /2 nodes in the cluster/);
    assert.equal(await page.textContent('#t-online [data-s]'), 'user · 1 admin · whole cluster');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-cluster.png'), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    customer.close();
    await page.close();
  }
});
