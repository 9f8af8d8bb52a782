// clients/js/herald-client.js in a real browser (Debian chromium driven by playwright-core) against
// the real server (HERALD_BIN, default build/herald): herald serves the client at /herald-client.js
// and a test page from a temporary web root; the page connects with a token from its URL query and
// subscribes to `news`. The test publishes 5 messages through POST /api/v1/publish, restarts the
// server on the same port (SIGTERM, then the same --jwt-secret, --api-key and --data-dir), waits
// until the page's client has reconnected and resubscribed by itself, publishes 5 more, and checks
// that the page holds exactly the 10 messages, in order, without duplicates. A screenshot goes to
// test-artifacts/js_client_browser.png ($HERALD_TEST_ARTIFACTS instead when set). Skipped only when
// /usr/bin/chromium is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startHerald } from '../interop/lib/server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (scripts/install-deps.sh installs Debian's chromium)`;
const ARTIFACTS = process.env.HERALD_TEST_ARTIFACTS || join(ROOT, 'test-artifacts'); // scripts/test.sh: one per parallel run

const SECRET = 'e2e-js-client-secret-0123456789abcdef';
const API_KEY = 'e2e-js-client-api-key';
const USER = 'reader-1';

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function mint(sub, role = 'user') {
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, role, iat: now, exp: now + 3600 })}`;
  return `${signing}.${crypto.createHmac('sha256', SECRET).update(signing).digest('base64url')}`;
}

// The page: its state is in window.herald, for page.waitForFunction / page.evaluate.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Herald JS client e2e</title><link rel="icon" href="data:,">
<style>body{font:14px sans-serif;margin:16px} #state{font-weight:bold} li{font-family:monospace}</style>
<script src="/herald-client.js"></script></head>
<body><h1>news</h1><p>state: <span id="state">-</span></p><ol id="messages"></ol>
<script>
  const q = new URLSearchParams(location.search);
  const h = window.herald = { states: [], messages: [], connects: 0, reconnects: 0, subscribed: false, resubscribes: [],
                              errors: [], duplicates: 0, disconnects: [] };
  const client = window.heraldClient = new HeraldClient({
    url: '/api/v1/ws', token: q.get('token'), clientId: q.get('clientId'),
    reconnect: { initialDelay: 100, maxDelay: 500, jitter: 0.2 },
  });
  client.on('state', (state) => { h.states.push(state); document.getElementById('state').textContent = state; });
  client.on('connect', () => { h.connects++; });
  client.on('reconnect', () => { h.reconnects++; });
  client.on('disconnect', (d) => { h.disconnects.push({ code: d.code, serverReason: d.serverReason, willReconnect: d.willReconnect }); });
  client.on('resubscribe', (ack, sub) => { h.resubscribes.push({ topic: sub.topic, recovered: ack.recovered, sequence: ack.sequence }); });
  client.on('error', (e) => { h.errors.push({ code: e.code, message: e.message }); });
  client.on('duplicate', () => { h.duplicates++; });
  client.on('data', (data, env) => {
    if (env.topic !== 'news') return;
    h.messages.push({ i: data.i, text: data.text, sequence: env.sequence, messageId: env.messageId });
    const li = document.createElement('li');
    li.textContent = '#' + data.i + ' ' + data.text + ' (sequence ' + env.sequence + ')';
    document.getElementById('messages').appendChild(li);
  });
  client.subscribe('news').then((ack) => { h.subscribed = true; h.firstAck = ack; },
                                (e) => { h.errors.push({ code: e.code, message: 'subscribe: ' + e.message }); });
</script></body></html>
`;

test('herald-client.js in Chromium: 5 messages, server restart on the same port, reconnect + resubscribe, 5 more: exactly 10, in order', { skip, timeout: 55000 }, async (t) => {
  const webRoot = mkdtempSync(join(tmpdir(), 'herald-e2e-web-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-e2e-data-'));
  const profile = mkdtempSync(join(tmpdir(), 'herald-e2e-chromium-'));
  // the server's Content-Security-Policy allows no inline script: the page's script is a file of its own
  const inline = /<script>([\s\S]*?)<\/script>/.exec(PAGE);
  writeFileSync(join(webRoot, 'news.html'), PAGE.replace(inline[0], '<script src="/news.js"></script>'));
  writeFileSync(join(webRoot, 'news.js'), inline[1]);
  const args = ['--jwt-secret', SECRET, '--api-key', API_KEY, '--js-client-dir', join(ROOT, 'clients', 'js'),
    '--topic-subscribe-user', 'user:{sub},news'];
  let srv = null, context = null;
  t.after(async () => {
    await context?.close().catch(() => {});
    if (srv) await srv.stop().catch(() => {});
    for (const d of [webRoot, dataDir, profile]) rmSync(d, { recursive: true, force: true });
  });

  const stopClean = async (s) => {
    const r = await s.stop('SIGTERM');
    assert.deepEqual(r, { code: 0, signal: null }, `herald did not exit cleanly:\n${s.log.slice(-3000)}`);
  };
  const publish = async (i) => {
    const res = await fetch(srv.url('/api/v1/publish'), {
      method: 'POST', headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json', Connection: 'close' },
      body: JSON.stringify({ topic: 'news', type: 'data', data: { i, text: `story ${i}` } }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.delivered, 1, `message ${i} reached ${body.delivered} subscribers`);
    return body;
  };

  srv = await startHerald(args, { webRoot, dataDir });
  const port = srv.port;

  // The served client is the file in clients/js.
  const js = await fetch(srv.url('/herald-client.js'), { headers: { Connection: 'close' } });
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') || '', /javascript/);
  assert.equal(await js.text(), readFileSync(join(ROOT, 'clients', 'js', 'herald-client.js'), 'utf8'));

  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] || await context.newPage();
  const pageErrors = [];
  const consoleErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  const state = () => page.evaluate(() => window.herald);

  const q = new URLSearchParams({ token: mint(USER), clientId: 'e2e-page' });
  await page.goto(srv.url(`/news.html?${q}`));
  await page.waitForFunction(() => window.herald && window.herald.subscribed, null, { timeout: 10000 });

  const published = [];
  for (let i = 1; i <= 5; i++) published.push(await publish(i));
  await page.waitForFunction(() => window.herald.messages.length >= 5, null, { timeout: 10000 });

  // Restart on the same port: the page's client sees `disconnect {shutdown}`, then refused attempts.
  await stopClean(srv);
  srv = null;
  await page.waitForFunction(() => window.herald.states.at(-1) === 'reconnecting', null, { timeout: 10000 });
  await new Promise((r) => setTimeout(r, 700)); // a few attempts against a closed port
  srv = await startHerald(args, { webRoot, dataDir, port });
  assert.equal(srv.port, port);

  // Publish only after the page has resubscribed on the new server.
  await page.waitForFunction(() => window.herald.resubscribes.length === 1 && window.herald.states.at(-1) === 'connected',
    null, { timeout: 15000 });
  for (let i = 6; i <= 10; i++) published.push(await publish(i));
  await page.waitForFunction(() => window.herald.messages.length >= 10, null, { timeout: 10000 });
  await new Promise((r) => setTimeout(r, 300)); // anything extra would arrive now

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'js_client_browser.png'), fullPage: true });

  const h = await state();
  assert.deepEqual(h.messages.map((m) => m.i), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'exactly the 10 messages, in order');
  assert.deepEqual(h.messages.map((m) => m.messageId), published.map((p) => p.messageId));
  assert.deepEqual(h.messages.map((m) => m.sequence), published.map((p) => p.sequence));
  for (let i = 1; i < h.messages.length; i++) {
    assert.ok(h.messages[i].sequence > h.messages[i - 1].sequence, `sequence not increasing at ${i}: ${h.messages.map((m) => m.sequence)}`);
  }
  assert.equal(new Set(h.messages.map((m) => m.messageId)).size, 10);
  assert.equal(h.duplicates, 0);
  assert.deepEqual(h.states, ['connecting', 'connected', 'reconnecting', 'connected']);
  assert.equal(h.connects, 2);
  assert.equal(h.reconnects, 1);
  assert.deepEqual(h.disconnects, [{ code: 1001, serverReason: 'shutdown', willReconnect: true }]);
  // The lastSequence the page resubscribed with comes from the previous process: a single node keeps
  // its topic history across a graceful restart (docs/cluster-json.md), so the replay is complete.
  assert.equal(h.resubscribes[0].topic, 'news');
  assert.equal(h.resubscribes[0].recovered, true);
  assert.ok(h.resubscribes[0].sequence < published[5].sequence);
  assert.ok(h.firstAck.sequence < published[0].sequence);
  assert.deepEqual(h.errors, []);
  assert.deepEqual(pageErrors, []);
  // While the server is down Chromium logs the refused WebSocket attempts; nothing else may be an error.
  assert.deepEqual(consoleErrors.filter((m) => !/WebSocket connection to .* failed/.test(m)), []);

  await page.evaluate(() => window.heraldClient.close());
  await stopClean(srv);
  srv = null;
});
