// The stock Socket.IO Admin UI (npm @socket.io/admin-ui 0.5.1's ui/dist, served by Herald at
// /socket-admin/ with --admin-ui) in headless Chromium (issue 13; docs/admin-ui.md): the page signs
// in through its own connection form with a Herald admin's name and password, its Servers page
// lists the node, its Sockets page lists Herald's sockets live (one connecting shows up), its Rooms
// page their rooms, and its "disconnect" button disconnects the real socket.io-client socket. A
// wrong password gets the UI's "Invalid credentials". No page error, no failed request to Herald.
// Screenshots: test-artifacts/admin-ui-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import { startHerald, storeArgs, HERALD_BIN } from '../interop/lib/server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = process.env.HERALD_TEST_ARTIFACTS || join(ROOT, 'test-artifacts');
const UI_ROOT = join(ROOT, 'node_modules', '@socket.io', 'admin-ui', 'ui', 'dist');
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} not found` : !existsSync(UI_ROOT) ? `${UI_ROOT} missing (npm ci)` : false;
const WAIT = 10000;
const SECRET = 'admin-ui-e2e-secret-0123456789abcdef';
const SOCKET_ROWS = 'table:has(th:has-text("IP address")) tbody tr'; // the Sockets page's list

function token(sub, role) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(sub), role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${crypto.createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

let srv, browser;

before(async () => {
  if (skip) return;
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-admin-ui-e2e-'));
  execFileSync(HERALD_BIN, ['user', 'add', 'ops', '--role', 'admin', '--password', 'ops-password', '--data-dir', dataDir,
    ...storeArgs(dataDir)], { stdio: 'pipe' });
  srv = await startHerald(['--jwt-secret', SECRET, '--demo-users', 'false', '--admin-ui', '--admin-ui-root', UI_ROOT,
    '--admin-ui-server-id', 'herald-e2e'], { dataDir });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await srv?.stop();
});

/** A page that records page errors and failed same-origin responses. */
async function openPage() {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400 && r.url().startsWith(srv.url(''))) problems.push(`HTTP ${r.status()} ${r.url()}`); });
  // the stock page links Google Fonts and a CDN stylesheet: not reachable here, not needed
  await page.route((url) => !url.href.startsWith(srv.url('')), (route) => route.abort());
  return { page, problems };
}

/** Fills the UI's connection form and submits it. */
async function signIn(page, username, password) {
  await page.goto(srv.url('/socket-admin/'), { timeout: WAIT });
  await page.getByLabel('Server URL').fill(srv.url('').replace(/\/$/, ''));
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Connect' }).click();
}

test('a wrong password gets the UI\'s "Invalid credentials"', { skip }, async () => {
  const { page, problems } = await openPage();
  try {
    await signIn(page, 'ops', 'not-the-password');
    await page.getByText('Invalid credentials').waitFor({ timeout: WAIT });
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('the stock UI signs in, shows Herald\'s sockets and rooms live, and disconnects a real client', { skip }, async () => {
  const { page, problems } = await openPage();
  const clients = [];
  const connected = async (sub) => {
    const c = io(srv.url('/'), { auth: { token: token(sub, 'user') }, transports: ['websocket'], forceNew: true, reconnection: false });
    clients.push(c);
    await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('connect_error', reject); });
    return c;
  };
  try {
    const early = await connected(4241); // listed in all_sockets: the UI then shows namespace "/"
    await signIn(page, 'ops', 'ops-password');
    // this node in the Servers page, from its server_stats
    await page.goto(srv.url('/socket-admin/#/servers/'), { timeout: WAIT });
    await page.locator('tbody tr', { hasText: 'herald-e2e' }).waitFor({ timeout: WAIT });
    // a client connecting now shows up on the Sockets page
    await page.goto(srv.url('/socket-admin/#/sockets/'), { timeout: WAIT });
    await page.locator(SOCKET_ROWS, { hasText: early.id }).waitFor({ timeout: WAIT });
    const customer = await connected(4242);
    const row = page.locator(SOCKET_ROWS, { hasText: customer.id });
    await row.waitFor({ timeout: WAIT });
    assert.match(await row.textContent(), /websocket/i);
    assert.match(await row.textContent(), /127\.0\.0\.1/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-sockets.png'), fullPage: true });

    // its room user:4242 (Herald joins every user to it) on the Rooms page
    await page.goto(srv.url('/socket-admin/#/rooms/'), { timeout: WAIT });
    await page.locator('tbody tr', { hasText: 'user:4242' }).waitFor({ timeout: WAIT });
    await page.waitForTimeout(500); // the page's slide-in, for the screenshot
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-rooms.png'), fullPage: true });

    // the disconnect button of its row on the Sockets page disconnects the real client
    await page.goto(srv.url('/socket-admin/#/sockets/'), { timeout: WAIT });
    const id = customer.id;
    const gone = new Promise((resolve) => customer.once('disconnect', resolve));
    await page.locator(SOCKET_ROWS, { hasText: id }).locator('button').click();
    assert.equal(await gone, 'io server disconnect');
    // the click also opens the row's details (the stock UI's row handler): they say it is gone
    await page.getByText('Socket details').waitFor({ timeout: WAIT });
    await page.getByText('Disconnected').first().waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-socket-details.png'), fullPage: true });
    await page.goto(srv.url('/socket-admin/#/sockets/'), { timeout: WAIT });
    await page.locator(SOCKET_ROWS, { hasText: early.id }).waitFor({ timeout: WAIT });
    // its row is gone (from the list: the details view may linger in the DOM, in its transition)
    await page.locator(SOCKET_ROWS, { hasText: id }).waitFor({ state: 'detached', timeout: WAIT });
    assert.deepEqual(problems, []);
  } catch (e) {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-failure.png'), fullPage: true });
    throw e;
  } finally {
    for (const c of clients) c.close();
    await page.close();
  }
});
