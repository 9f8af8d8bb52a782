// The application's pages (web/) in headless Chromium against a real herald: sign-in, the notification
// center (broadcast toast, two tabs kept in step on mark-read / read-all), the customer-service
// workbench with the customer chat page (assignment toast, messages both ways, typing indicator on
// each side, close), user content carrying markup shown as text, paged history, system events, every
// page free of console errors at desktop and phone widths, a refused or expired token, and the
// connection banner across a server restart; the language (from the browser's, switchable and
// remembered), times as 24-hour HH:mm in the server's display offset whatever the browser's zone, the
// system events form with its preview and the Status tile after a reload, toasts clear of the
// controls, clickable links in chat, the HTML 404 page and the /admin redirect. Every scenario runs
// in English and in Simplified Chinese (a browser whose language is zh-CN), checking the words of
// that language (tests/e2e/page_strings.mjs reads the pages' own string files). Screenshots go to
// test-artifacts/app-<lang>-*.png (git-ignored; $HERALD_TEST_ARTIFACTS instead when set).
//
// One server and one browser for the file: accounts are made with `herald user add` in a fresh data
// dir before the server starts (admin/admin123, user/user123 as the demo accounts would be, plus a
// second admin and a customer whose display name is markup). Demo accounts are only made when the
// store has no users, so pre-creating admin2 alone would leave admin and user missing.
// Pages are brought to the front before clicks: Chromium gives background tabs few animation frames,
// and Playwright's click waits for them.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import { startHerald, HERALD_BIN } from '../interop/lib/server.mjs';
import { LANGS, strings } from './page_strings.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = process.env.HERALD_TEST_ARTIFACTS || join(ROOT, 'test-artifacts'); // scripts/test.sh: one per parallel run
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (scripts/install-deps.sh installs Debian's chromium)`;
const WAIT = 8000;
const XSS = '<script>window.__xss="script"</script><img src=x onerror="window.__xss=\'img\'">';
const XSS_NAME = '<img src=x onerror="window.__xss=\'name\'">'; // display names are 64 bytes at most

const USERS = [
  { name: 'admin', role: 'admin', password: 'admin123' },
  { name: 'user', role: 'user', password: 'user123', display: '张伟' },
  { name: 'admin2', role: 'admin', password: 'admin2pw', display: '李娜' },
  { name: 'mallory', role: 'user', password: 'mallory1', display: XSS_NAME },
];

// the chat's abuse limits are off here (tested in tests/interop/hostile_limits.test.mjs): the pages' history test sends fast
const SERVER_ARGS = ['--socketio-client-dir', join(ROOT, 'node_modules', 'socket.io-client', 'dist'), '--chat-rate', '0', '--chat-max-open-sessions', '0'];
const PAGES = ['/', '/admin/login.html', '/admin/notifications.html', '/admin/customer-service.html', '/admin/dashboard.html',
  '/admin/system-events.html', '/chat.html'];
const ZONE = 'America/New_York'; // the browser's zone; the pages must show the server's display offset (+08:00) instead

for (const lang of LANGS) describe(`application pages in Chromium (${lang})`, { skip, timeout: 85000 }, () => {
  const S = strings(lang);
  const signInAgain = lang === 'en' ? /sign in again/i : /请重新登录/;
  let srv, browser, profile, dataDir;
  const login = {}; // name -> {token, user}

  async function rest(method, path, as, body) {
    const headers = { authorization: `Bearer ${login[as].token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(srv.url(`/api/v4${path}`), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path} as ${as}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** A new tab that records console errors, page errors, failed responses and dialogs in page.problems. */
  async function open(path, { width = 1280, height = 800 } = {}) {
    const page = await browser.newPage();
    await page.setViewportSize({ width, height });
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
    page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss().catch(() => {}); });
    page.problems = problems;
    if (path) await page.goto(srv.url(path), { timeout: WAIT });
    return page;
  }

  /** Puts tokens in the browser's storage as the login page would (scope -> account name or null). */
  async function storeAuth(scopes) {
    const page = await browser.newPage();
    try {
      await page.goto(srv.url('/'), { timeout: WAIT });
      await page.evaluate((entries) => {
        for (const [key, value] of entries) {
          if (value) localStorage.setItem(key, JSON.stringify(value));
          else localStorage.removeItem(key);
        }
      }, Object.entries(scopes).map(([scope, name]) => [`herald.${scope}.auth`, name ? login[name] : null]));
    } finally {
      await page.close();
    }
  }

  const connected = (page) => page.waitForSelector('body[data-conn="connected"]', { timeout: WAIT });
  const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `app-${lang}-${name}.png`), fullPage: false });
  const text = (page, selector) => page.locator(selector).first().textContent({ timeout: WAIT });

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dataDir = mkdtempSync(join(tmpdir(), 'herald-e2e-'));
    profile = mkdtempSync(join(tmpdir(), 'herald-chromium-'));
    for (const u of USERS) {
      execFileSync(HERALD_BIN, ['user', 'add', u.name, '--role', u.role, '--password', u.password, '--data-dir', dataDir,
        ...(u.display ? ['--display-name', u.display] : [])], { stdio: 'pipe' });
    }
    srv = await startHerald(SERVER_ARGS, { dataDir, webRoot: join(ROOT, 'web') });
    for (const u of USERS) {
      const res = await fetch(srv.url('/api/v4/auth/login'), {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: u.name, password: u.password }),
      });
      assert.equal(res.status, 200, `login ${u.name}`);
      login[u.name] = await res.json();
    }
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      timeout: 30000,
      locale: lang, // navigator.languages and Accept-Language
      timezoneId: ZONE,
    });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await srv?.stop();
    for (const dir of [profile, dataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('an admin signs in on the login page and sees another admin\'s broadcast arrive with a toast', async () => {
    await storeAuth({ admin: null, customer: null });
    const page = await open('/admin/login.html');
    try {
      await page.fill('#username', 'admin');
      await page.fill('#password', 'admin123');
      await shot(page, 'login');
      await page.click('#login-submit');
      await page.waitForURL('**/admin/notifications.html', { timeout: WAIT });
      await connected(page);
      await page.waitForSelector('#notif-loading[hidden]', { state: 'attached', timeout: WAIT });
      assert.equal(await text(page, '#unread-count'), '0');

      const sent = await rest('POST', '/notifications/send', 'admin2',
        { type: 'warning', title: 'Disk almost full', content: 'Node 3 is at 91% — please have a look.' });
      assert.equal(sent.notification.target_user_id, null);
      const toast = page.locator('.toast', { hasText: 'Disk almost full' });
      await toast.waitFor({ timeout: WAIT });
      assert.match(await toast.textContent(), /Node 3 is at 91%/);
      const item = page.locator(`.notif[data-id="${sent.notification.notification_id}"]`);
      await item.waitFor({ timeout: WAIT });
      assert.match(await item.getAttribute('class'), /\bunread\b/);
      assert.ok((await item.textContent()).includes(S('notif.broadcast')));
      await page.waitForFunction(() => document.querySelector('#unread-count').textContent === '1', null, { timeout: WAIT });
      await item.locator('.person', { hasText: '李娜' }).waitFor({ timeout: WAIT }); // the sender by name, not by id
      await shot(page, 'notifications-broadcast');
      // clicking the row marks it read
      await page.bringToFront();
      await item.locator('.n-title').click();
      await page.waitForFunction(() => document.querySelector('#unread-count').textContent === '0', null, { timeout: WAIT });
      assert.match(await item.getAttribute('class'), /\bread\b/);

      // and sends one to admin2 with the form
      await page.check('input[name="target"][value="one"]');
      await page.fill('#target-search', '李'); // picked by name from the users API
      await page.locator(`#target-id option[value="${login.admin2.user.id}"]`, { hasText: '李娜' }).waitFor({ state: 'attached', timeout: WAIT });
      await page.selectOption('#target-id', String(login.admin2.user.id));
      await page.selectOption('#n-type', 'success');
      await page.fill('#n-title', 'Reply from admin');
      await page.fill('#n-content', 'Looking at node 3 now.');
      await page.click('#send-btn');
      await page.locator('.toast', { hasText: S('people.sentTo', { name: '李娜' }) }).waitFor({ timeout: WAIT });
      const theirs = await rest('GET', '/notifications?limit=5', 'admin2');
      const reply = theirs.items.find((x) => x.title === 'Reply from admin');
      assert.ok(reply, 'admin2 has the notification');
      assert.deepEqual([reply.type, reply.content, reply.target_user_id, reply.sender_id],
        ['success', 'Looking at node 3 now.', login.admin2.user.id, login.admin.user.id]);
      assert.equal(await page.locator('.notif', { hasText: 'Reply from admin' }).count(), 0, 'not in the sender\'s own list');
      assert.equal(await page.inputValue('#n-title'), '', 'the form is cleared');
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });

  test('two tabs of one admin stay in step: mark read in one, read all in the other', async () => {
    await storeAuth({ admin: 'admin' });
    const ids = [];
    for (const title of ['Sync one', 'Sync two', 'Sync three']) {
      ids.push((await rest('POST', '/notifications/send', 'admin2', { type: 'info', title, content: `${title} body` })).notification.notification_id);
    }
    const { count: before } = await rest('GET', '/notifications/unread-count', 'admin');
    assert.ok(before >= 3);
    const a = await open('/admin/notifications.html');
    const b = await open('/admin/notifications.html');
    try {
      for (const page of [a, b]) {
        await connected(page);
        await page.locator(`.notif[data-id="${ids[2]}"]`).waitFor({ timeout: WAIT });
        await page.waitForFunction((n) => document.querySelector('#unread-count').textContent === String(n), before, { timeout: WAIT });
      }
      // tab A marks "Sync two" read: tab B shows it read and one fewer unread
      await a.bringToFront();
      await a.locator(`.notif[data-id="${ids[1]}"] .mark-read`).click();
      for (const page of [b, a]) {
        await page.waitForSelector(`.notif.read[data-id="${ids[1]}"]`, { timeout: WAIT });
        await page.waitForFunction((n) => document.querySelector('#unread-count').textContent === String(n), before - 1, { timeout: WAIT });
      }
      assert.equal(await b.locator(`.notif[data-id="${ids[1]}"] .mark-read`).count(), 0);
      assert.match(await b.locator(`.notif[data-id="${ids[0]}"]`).getAttribute('class'), /\bunread\b/);
      assert.equal((await rest('GET', '/notifications/unread-count', 'admin')).count, before - 1);
      await shot(b, 'notifications-tab-b-after-mark-read');

      // tab B marks all read: tab A follows
      await b.bringToFront();
      await b.click('#read-all');
      for (const page of [a, b]) {
        await page.waitForFunction(() => document.querySelector('#unread-count').textContent === '0'
          && !document.querySelector('.notif.unread'), null, { timeout: WAIT });
      }
      assert.equal((await rest('GET', '/notifications/unread-count', 'admin')).count, 0);
      await shot(a, 'notifications-tab-a-after-read-all');
      assert.deepEqual(a.problems, []);
      assert.deepEqual(b.problems, []);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('customer and agent chat: assignment toast, messages and typing both ways, the agent closes', async () => {
    await storeAuth({ admin: 'admin', customer: null });
    const agent = await open('/admin/customer-service.html');
    const customer = await open('/chat.html', { width: 390, height: 760 });
    try {
      await connected(agent);
      // the customer signs in on the chat page and starts a session
      await customer.fill('#username', 'user');
      await customer.fill('#password', 'user123');
      await customer.click('#signin-btn');
      await customer.waitForSelector('#start-view:not([hidden])', { timeout: WAIT });
      await connected(customer);
      await customer.fill('#start-text', 'Hello, my order #42 has not arrived.');
      await customer.click('#start-btn');
      await customer.waitForSelector('#chat-view:not([hidden])', { timeout: WAIT });
      await customer.locator('#messages .msg.mine', { hasText: 'order #42' }).waitFor({ timeout: WAIT });

      // the agent gets the assignment toast and opens the session from it
      const toast = agent.locator('.toast', { hasText: S('cs.assigned') });
      await toast.waitFor({ timeout: WAIT });
      const sid = Number((/#(\d+)/.exec(await toast.textContent()) || [])[1]);
      assert.ok(sid > 0, 'the toast names the session');
      assert.ok((await toast.textContent()).includes(S('cs.assignedBody', { id: sid, name: '张伟', p: 3 })), 'and the customer by name');
      await agent.locator(`.session[data-id="${sid}"]`).waitFor({ timeout: WAIT });
      assert.equal(await text(agent, `.session[data-id="${sid}"] .chip.prio-med`), 'P3', 'no priority given: 3 of 1..5');
      await agent.bringToFront(); // the front tab gets animation frames at full rate (click waits for them)
      await toast.click();
      await agent.locator('#messages .msg.theirs', { hasText: 'order #42' }).waitFor({ timeout: WAIT });
      await customer.waitForFunction((want) => document.querySelector('#chat-status').textContent === want, S('session.active'), { timeout: WAIT });
      await customer.waitForFunction((want) => document.querySelector('#status-line').textContent === want,
        S('people.chattingWith', { name: 'admin' }), { timeout: WAIT });
      assert.match(await text(agent, `.session[data-id="${sid}"] .s-title`), /张伟/);
      assert.equal(await text(agent, '#chat-title'), `张伟 · ${S('cs.sessionNo', { id: sid })}`);

      // agent types: the customer sees "Agent is typing…"; the reply arrives and the indicator goes
      await agent.click('#input');
      await agent.keyboard.type('Sorry about that, ', { delay: 15 });
      await customer.waitForFunction((want) => document.querySelector('#typing').textContent === want, S('cchat.agentTyping'), { timeout: WAIT });
      await shot(customer, 'chat-customer-agent-typing');
      await agent.keyboard.type('let me check the parcel.', { delay: 5 });
      await agent.keyboard.press('Enter');
      await customer.locator('#messages .msg.theirs', { hasText: 'let me check the parcel' }).waitFor({ timeout: WAIT });
      await agent.locator('#messages .msg.mine', { hasText: 'let me check the parcel' }).waitFor({ timeout: WAIT });
      await customer.waitForFunction(() => document.querySelector('#typing').textContent === '', null, { timeout: WAIT });

      // customer types: the agent sees "Customer is typing…" (list and pane), then it goes after 3 s
      await customer.bringToFront();
      await customer.click('#input');
      await customer.keyboard.type('Thanks', { delay: 15 });
      await agent.waitForFunction((want) => document.querySelector('#typing').textContent === want, S('cs.customerTyping'), { timeout: WAIT });
      await agent.locator(`.session[data-id="${sid}"] .s-typing`).waitFor({ timeout: WAIT });
      await shot(agent, 'workbench-customer-typing');
      const t0 = Date.now();
      await agent.waitForFunction(() => document.querySelector('#typing').textContent === '', null, { timeout: WAIT });
      assert.ok(Date.now() - t0 > 1000, 'the indicator stays up for a while (3 s after the last chat:typing)');
      await customer.keyboard.type('! Order 42, placed Monday.', { delay: 5 });
      await customer.click('#send-btn');
      await agent.locator('#messages .msg.theirs', { hasText: 'placed Monday' }).waitFor({ timeout: WAIT });
      assert.equal(await customer.locator('#messages .msg.mine', { hasText: 'placed Monday' }).count(), 1, 'shown once on the sender\'s side');

      const stored = await rest('GET', `/customer-service/sessions/${sid}/messages`, 'admin');
      assert.deepEqual(stored.items.map((m) => m.sender_type), ['user', 'admin', 'user']);

      // the agent closes the session; the customer sees it closed
      await agent.bringToFront();
      await agent.click('#close-btn');
      await agent.click('#confirm-close-yes');
      await agent.waitForSelector('#closed-note:not([hidden])', { timeout: WAIT });
      await customer.waitForSelector('#closed-note:not([hidden])', { timeout: WAIT });
      assert.equal(await text(customer, '#chat-status'), S('session.closed'));
      assert.ok(await customer.locator('#composer').isHidden());
      const mine = await rest('GET', '/customer-service/sessions', 'user');
      assert.equal(mine.items.find((x) => x.session_id === sid)?.status, 'closed');
      await shot(customer, 'chat-customer-closed');
      await shot(agent, 'workbench-closed');
      assert.deepEqual(agent.problems, []);
      assert.deepEqual(customer.problems, []);
    } finally {
      await agent.close();
      await customer.close();
    }
  });

  test('the workbench transfers a session to an online admin picked by name', async () => {
    await storeAuth({ admin: 'admin', customer: null });
    const { session } = await rest('POST', '/customer-service/sessions', 'user', { content: 'Please pass me on' });
    await rest('POST', `/customer-service/sessions/${session.session_id}/assign`, 'admin', {});
    const other = io(srv.url('/'), { auth: { token: login.admin2.token }, transports: ['websocket'], forceNew: true, reconnection: false });
    await new Promise((resolve, reject) => { other.once('connect', resolve); other.once('connect_error', reject); });
    const agent = await open('/admin/customer-service.html');
    try {
      await connected(agent);
      await agent.bringToFront();
      await agent.locator(`.session[data-id="${session.session_id}"]`).click();
      await agent.waitForFunction((want) => document.querySelector('#chat-agent').textContent === want, S('people.assignedToYou'), { timeout: WAIT });
      // focusing the list loads the online admins, by name (again on each focus: under load the first
      // load may come before the other admin's socket is counted online)
      const option = agent.locator(`#transfer-to option[value="${login.admin2.user.id}"]`, { hasText: '李娜' });
      for (let i = 0; ; i++) {
        await agent.focus('#transfer-to');
        try {
          await option.waitFor({ state: 'attached', timeout: 1000 });
          break;
        } catch (err) {
          if (i === 7) throw err;
          await agent.evaluate(() => document.activeElement?.blur());
        }
      }
      await agent.selectOption('#transfer-to', String(login.admin2.user.id));
      const to = S('people.assignedTo', { name: '李娜' });
      await agent.locator('.toast', { hasText: to }).waitFor({ timeout: WAIT });
      await agent.waitForFunction((want) => document.querySelector('#chat-agent').textContent === want, to, { timeout: WAIT });
      const theirs = await rest('GET', '/customer-service/sessions', 'admin2');
      assert.equal(theirs.items.find((x) => x.session_id === session.session_id)?.admin_id, login.admin2.user.id);
      await shot(agent, 'workbench-transferred');
      assert.deepEqual(agent.problems, []);
    } finally {
      other.close();
      await agent.close();
      // later tests expect the customer's sessions closed
      await rest('POST', `/customer-service/sessions/${session.session_id}/close`, 'admin2');
    }
  });

  test('user content with markup is shown as text (notifications, chat, display name)', async () => {
    await storeAuth({ admin: 'admin', customer: 'mallory' });
    const adminId = login.admin.user.id;
    const n = (await rest('POST', '/notifications/send', 'admin2',
      { type: 'error', title: XSS, content: `content ${XSS}`, target_user_id: adminId })).notification;
    const created = await rest('POST', '/customer-service/sessions', 'mallory', { content: XSS });
    const sid = created.session.session_id;
    await rest('POST', `/customer-service/sessions/${sid}/assign`, 'admin', {}); // to this admin, whoever was online

    const notif = await open('/admin/notifications.html');
    const agent = await open('/admin/customer-service.html');
    const customer = await open('/chat.html');
    try {
      await notif.locator(`.notif[data-id="${n.notification_id}"]`).waitFor({ timeout: WAIT });
      assert.equal(await text(notif, `.notif[data-id="${n.notification_id}"] .n-title`), XSS);
      assert.equal(await text(notif, `.notif[data-id="${n.notification_id}"] .n-content`), `content ${XSS}`);
      // a live one, through the toast
      await connected(notif);
      await rest('POST', '/notifications/send', 'admin2', { type: 'info', title: `live ${XSS}`, content: XSS, target_user_id: adminId });
      await notif.locator('.toast .toast-title', { hasText: 'live <script>' }).waitFor({ timeout: WAIT });

      await agent.locator(`.session[data-id="${sid}"]`).waitFor({ timeout: WAIT });
      assert.equal(await text(agent, `.session[data-id="${sid}"] .s-last`), XSS);
      await agent.bringToFront();
      await agent.click(`.session[data-id="${sid}"]`);
      await agent.locator('#messages .msg.theirs').first().waitFor({ timeout: WAIT });
      assert.equal(await text(agent, '#messages .msg.theirs .bubble'), XSS);

      await customer.locator('#messages .msg.mine').first().waitFor({ timeout: WAIT });
      assert.equal(await text(customer, '#messages .msg.mine .bubble'), XSS);
      assert.equal(await text(customer, '#user-name'), XSS_NAME);
      await connected(agent);
      await connected(customer);
      // and live over the connection, both ways
      await agent.fill('#input', `agent says ${XSS}`);
      await agent.press('#input', 'Enter');
      await customer.locator('#messages .msg.theirs', { hasText: 'agent says' }).waitFor({ timeout: WAIT });
      assert.equal(await text(customer, '#messages .msg.theirs .bubble'), `agent says ${XSS}`);

      for (const page of [notif, agent, customer]) {
        assert.equal(await page.evaluate(() => window.__xss), undefined, `no script ran on ${page.url()}`);
        assert.equal(await page.locator('img[src="x"], script:not([src])').count(), 0, `no injected elements on ${page.url()}`);
        assert.deepEqual(page.problems, []);
      }
      await shot(notif, 'xss-notifications');
      await shot(agent, 'xss-workbench');
      await shot(customer, 'xss-chat');
      await rest('POST', `/customer-service/sessions/${sid}/close`, 'admin');
    } finally {
      await notif.close();
      await agent.close();
      await customer.close();
    }
  });

  test('history is paged: notifications "Load more", chat "Load earlier messages"', async () => {
    await storeAuth({ admin: 'admin', customer: 'user' });
    const adminId = login.admin.user.id;
    for (let i = 1; i <= 25; i++) {
      await rest('POST', '/notifications/send', 'admin2', { type: 'info', title: `Paged ${i}`, content: `number ${i}`, target_user_id: adminId });
    }
    const total = (await rest('GET', '/notifications?limit=100', 'admin')).items.length;
    assert.ok(total > 25 && total <= 40, `${total} notifications`);
    const { session } = await rest('POST', '/customer-service/sessions', 'user', { content: 'message 0' });
    for (let i = 1; i <= 34; i++) await rest('POST', `/customer-service/sessions/${session.session_id}/messages`, 'user', { content: `message ${i}` });

    const notif = await open('/admin/notifications.html');
    const chat = await open('/chat.html');
    try {
      await notif.bringToFront();
      await notif.waitForSelector('#notif-loading[hidden]', { state: 'attached', timeout: WAIT });
      assert.equal(await notif.locator('.notif').count(), 20);
      assert.equal(await text(notif, '.notif .n-title'), 'Paged 25', 'newest first');
      await notif.click('#load-more');
      await notif.waitForFunction((n) => document.querySelectorAll('.notif').length === n, total, { timeout: WAIT });
      await notif.waitForSelector('#load-more[hidden]', { state: 'attached', timeout: WAIT });
      const ids = await notif.locator('.notif').evaluateAll((nodes) => nodes.map((n) => Number(n.dataset.id)));
      assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first across pages');
      assert.equal(new Set(ids).size, ids.length, 'no duplicates across pages');

      await chat.bringToFront();
      await chat.waitForSelector('#chat-view:not([hidden]) .msg', { timeout: WAIT });
      assert.equal(await chat.locator('#messages .msg').count(), 30);
      assert.equal(await text(chat, '#messages .msg .bubble'), 'message 5', 'the newest 30, oldest at the top');
      assert.equal(await text(chat, '#messages .msg:last-of-type .bubble'), 'message 34');
      await chat.click('#messages .older');
      await chat.waitForFunction(() => document.querySelectorAll('#messages .msg').length === 35, null, { timeout: WAIT });
      assert.equal(await text(chat, '#messages .msg .bubble'), 'message 0');
      assert.equal(await chat.locator('#messages .older').count(), 0, 'nothing older');
      await shot(chat, 'chat-history-paged');
      // the customer ends the conversation
      await chat.click('#end-btn');
      await chat.click('#confirm-end-yes');
      await chat.waitForSelector('#closed-note:not([hidden])', { timeout: WAIT });
      assert.equal(await text(chat, '#chat-status'), S('session.closed'));
      assert.deepEqual(notif.problems, []);
      assert.deepEqual(chat.problems, []);
    } finally {
      await notif.close();
      await chat.close();
      await fetch(srv.url(`/api/v4/customer-service/sessions/${session.session_id}/close`), // closed above unless the test failed
        { method: 'POST', headers: { authorization: `Bearer ${login.user.token}` } }).then((r) => r.arrayBuffer());
    }
  });

  test('system events: alerts toast on admin pages and fill the dashboard feed; maintenance for all users reaches customers', async () => {
    await storeAuth({ admin: 'admin', customer: 'user' });
    const dash = await open('/admin/dashboard.html');
    const chat = await open('/chat.html', { width: 390, height: 760 });
    try {
      await connected(dash);
      await connected(chat);
      await rest('POST', '/system/alerts', 'admin2', { level: 'warning', title: 'High load', message: 'CPU at 95% on node 2' });
      await dash.locator('.toast', { hasText: 'High load' }).waitFor({ timeout: WAIT });
      await dash.locator('#feed li', { hasText: 'CPU at 95% on node 2' }).waitFor({ timeout: WAIT });
      await rest('POST', '/system/maintenance', 'admin2', { title: 'Maintenance tonight', message: 'Chat may be slow for 10 minutes.', all_users: true });
      await chat.locator('.toast', { hasText: 'Maintenance tonight' }).waitFor({ timeout: WAIT });
      await dash.locator('#feed li', { hasText: 'Maintenance tonight' }).waitFor({ timeout: WAIT });
      assert.equal(await chat.locator('.toast', { hasText: 'High load' }).count(), 0, 'an admins-only alert is not shown to customers');
      await rest('POST', '/system/status', 'admin2', { status: 'degraded', message: 'replica lagging' });
      await dash.locator('#feed li', { hasText: S('sys.feedStatus', { status: S('serverStatus.degraded') }) }).waitFor({ timeout: WAIT });
      await dash.waitForFunction((want) => document.querySelector('#t-status [data-v]').textContent === want, S('serverStatus.degraded'), { timeout: WAIT });
      await dash.bringToFront();
      await shot(dash, 'dashboard-system-events');
      await chat.bringToFront();
      await shot(chat, 'chat-maintenance-toast');
      assert.deepEqual(dash.problems, []);
      assert.deepEqual(chat.problems, []);
    } finally {
      await dash.close();
      await chat.close();
    }
  });

  test('every page loads without console errors, at desktop and phone widths (screenshots)', async () => {
    await storeAuth({ admin: 'admin', customer: 'user' });
    for (const [label, width, height] of [['desktop', 1280, 800], ['mobile', 375, 740]]) {
      for (const path of PAGES) {
        const page = await open(path, { width, height });
        try {
          await page.waitForLoadState('load');
          if (path !== '/' && path !== '/admin/login.html') await connected(page);
          if (path === '/admin/dashboard.html') {
            // two samples: the rates and both charts have data
            await page.waitForFunction(() => Number(document.body.dataset.samples) >= 2
              && document.querySelector('#t-msgs [data-v]').textContent !== '…', null, { timeout: WAIT });
            // the last status posted (above) after a fresh load, the health check under it
            assert.equal(await text(page, '#t-status [data-v]'), S('serverStatus.degraded'));
            assert.ok((await text(page, '#t-status [data-s]')).includes(S('dash.health', { s: 'ok' })));
            if (label === 'desktop') { // a few points on the charts for the screenshot
              await page.waitForFunction(() => Number(document.body.dataset.samples) >= 4, null, { timeout: 15000 });
            }
          }
          if (path === '/admin/customer-service.html') await page.waitForSelector('#sessions-loading[hidden]', { state: 'attached', timeout: WAIT });
          if (path === '/admin/notifications.html') await page.waitForSelector('#notif-loading[hidden]', { state: 'attached', timeout: WAIT });
          // the customer's only session was closed above: the page offers a new one and lists the old
          if (path === '/chat.html') await page.waitForSelector('#start-view:not([hidden]) #past-list li', { timeout: WAIT });
          // nothing wider than the viewport
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          assert.ok(overflow <= 0, `${path} at ${width}px overflows by ${overflow}px`);
          assert.equal(await page.evaluate(() => document.documentElement.lang), lang, `${path} in ${lang}`);
          assert.equal(await page.inputValue('#lang-switch'), lang, `${path} has the language switch`);
          const name = path === '/' ? 'index' : path.replace(/^\/(admin\/)?/, '').replace(/\.html$/, '');
          await shot(page, `page-${name}-${label}`);
          assert.deepEqual(page.problems, [], `${path} (${label})`);
        } finally {
          await page.close();
        }
      }
    }
  });

  test('the language comes from the browser, switches on every page and is remembered', async () => {
    await storeAuth({ admin: 'admin' });
    const other = lang === 'en' ? 'zh-CN' : 'en';
    const O = strings(other);
    const page = await open('/admin/notifications.html');
    try {
      await connected(page);
      assert.equal(await page.evaluate(() => document.documentElement.lang), lang);
      assert.equal(await text(page, 'h1'), S('notif.heading'));
      assert.equal(await text(page, '.nav a[href="/admin/system-events.html"]'), S('nav.systemEvents'));
      assert.equal(await page.inputValue('#lang-switch'), lang);
      await Promise.all([page.waitForEvent('load'), page.selectOption('#lang-switch', other)]);
      await page.waitForFunction((l) => document.documentElement.lang === l, other, { timeout: WAIT });
      assert.equal(await text(page, 'h1'), O('notif.heading'));
      assert.equal(await page.inputValue('#lang-switch'), other);
      const next = await open('/'); // another page: the choice is remembered
      try {
        assert.equal(await next.evaluate(() => document.documentElement.lang), other);
        assert.equal(await text(next, '.hero p'), O('index.tagline'));
      } finally {
        await next.close();
      }
      await Promise.all([page.waitForEvent('load'), page.selectOption('#lang-switch', lang)]);
      assert.equal(await text(page, 'h1'), S('notif.heading'));
      assert.deepEqual(page.problems, []);
    } finally {
      await page.evaluate(() => localStorage.removeItem('herald.lang')).catch(() => {});
      await page.close();
    }
  });

  test('server errors (English JSON with a code) are shown in the page\'s language', async () => {
    await storeAuth({ admin: 'admin', customer: null });
    const signin = await open('/admin/login.html');
    const notif = await open('/admin/notifications.html');
    try {
      await signin.fill('#username', 'admin');
      await signin.fill('#password', 'not-the-password');
      await signin.click('#login-submit');
      await signin.waitForFunction((want) => document.querySelector('#login-error').textContent === want, S('error.wrongPassword'), { timeout: WAIT });
      // a customer cannot be notified: the server's 400 message, in words of this language
      await connected(notif);
      const message = await notif.evaluate((id) => window.Herald.api('/notifications/send', {
        scope: 'admin', method: 'POST', body: { type: 'info', title: 'x', content: 'y', target_user_id: id },
      }).then(() => 'sent', (err) => err.message), login.user.user.id);
      assert.equal(message, S('error.targetNotAdmin'));
      const unknown = await notif.evaluate(() => window.Herald.api('/notifications/send', {
        scope: 'admin', method: 'POST', body: { type: 'info', title: '', content: 'y' },
      }).then(() => 'sent', (err) => err.message));
      assert.ok(unknown.startsWith(S('error.400', { message: '' })), `by its status: ${unknown}`);
      assert.deepEqual(signin.problems.filter((p) => !/401/.test(p)), []);
    } finally {
      await signin.close();
      await notif.close();
    }
  });

  test('times are 24-hour HH:mm in the server\'s display offset, not in the browser\'s zone', async () => {
    await storeAuth({ admin: 'admin' });
    const n = (await rest('POST', '/notifications/send', 'admin2',
      { type: 'info', title: 'Clock check', content: 'what time is it', target_user_id: login.admin.user.id })).notification;
    assert.match(n.created_at, /\+08:00$/);
    const page = await open('/admin/notifications.html');
    try {
      const time = page.locator(`.notif[data-id="${n.notification_id}"] time`);
      await time.waitFor({ timeout: WAIT });
      assert.notEqual(await page.evaluate(() => new Date().getTimezoneOffset()), -480, `the browser runs in ${ZONE}`);
      assert.equal(await time.textContent(), n.created_at.slice(11, 16)); // today in +08:00: HH:mm
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });

  test('system events form: a preview first, then send; level names agree; the dashboard Status tile survives a reload', async () => {
    await storeAuth({ admin: 'admin' });
    const form = await open('/admin/system-events.html');
    const dash = await open('/admin/dashboard.html');
    try {
      await connected(form);
      await connected(dash);
      await form.bringToFront();
      await form.check('input[name="kind"][value="status"]');
      await form.selectOption('#e-status', 'maintenance');
      await form.fill('#e-message', 'Upgrading the database');
      await form.click('#preview-btn');
      await form.waitForSelector('#preview:not([hidden])', { timeout: WAIT });
      assert.equal(await text(form, '#preview .toast-title'), S('sys.statusTitle', { status: S('serverStatus.maintenance') }));
      assert.equal(await text(form, '#preview .toast-body'), 'Upgrading the database');
      assert.notEqual((await rest('GET', '/system/status', 'admin')).status, 'maintenance', 'a preview sends nothing');
      await shot(form, 'system-events-preview');
      await form.click('#send-btn');
      await form.locator('#toasts .toast', { hasText: S('sys.sent') }).waitFor({ timeout: WAIT });
      assert.equal((await rest('GET', '/system/status', 'admin')).status, 'maintenance');
      const tile = (want) => dash.waitForFunction((w) => document.querySelector('#t-status [data-v]').textContent === w, want, { timeout: WAIT });
      await tile(S('serverStatus.maintenance'));
      await dash.reload();
      await tile(S('serverStatus.maintenance')); // from the server after a reload
      assert.equal(await text(form, '#current-status'), S('serverStatus.maintenance'));

      // an alert: the level is named alike in the form's choices, the preview and the dashboard feed
      await form.check('input[name="kind"][value="alert"]');
      assert.deepEqual(await form.locator('#e-level option').evaluateAll((o) => o.map((x) => x.value)), ['info', 'success', 'warning', 'error', 'critical']);
      await form.selectOption('#e-level', 'critical');
      await form.fill('#e-title', 'Payment gateway errors');
      await form.fill('#e-message', 'Card payments failing since 14:00');
      await form.click('#preview-btn');
      assert.equal(await text(form, '#preview-feed .chip'), S('level.critical'));
      assert.equal(await text(form, '#preview-audience'), S('sys.audienceAdmins'));
      await form.click('#send-btn');
      const alert = dash.locator('#feed li', { hasText: 'Payment gateway errors' });
      await alert.waitFor({ timeout: WAIT });
      assert.equal(await alert.locator('.chip').textContent(), S('level.critical'));

      // a maintenance window, times typed in the display offset; an impossible date is refused before the preview
      await form.check('input[name="kind"][value="maintenance"]');
      await form.fill('#e-title', 'Nightly maintenance');
      await form.fill('#e-message', 'Chat pauses');
      await form.fill('#e-start', '2031-02-30 01:00');
      await form.click('#preview-btn');
      assert.equal(await text(form, '#event-form .form-error'), S('sys.badTime'));
      assert.ok(await form.locator('#preview').isHidden());
      await form.fill('#e-start', '2031-03-01 01:00');
      await form.fill('#e-end', '2031-03-01 03:30');
      await form.check('input[name="audience"][value="everyone"]');
      await form.click('#preview-btn');
      assert.ok((await text(form, '#preview .toast-body')).includes(S('time.from', { time: '2031-03-01 01:00' })));
      assert.equal(await text(form, '#preview-audience'), S('sys.audienceEveryone'));
      await form.click('#send-btn');
      const maint = dash.locator('#feed li', { hasText: 'Nightly maintenance' });
      await maint.waitFor({ timeout: WAIT });
      assert.ok((await maint.textContent()).includes(S('time.until', { time: '2031-03-01 03:30' })));
      await dash.bringToFront();
      await shot(dash, 'dashboard-after-system-events');
      assert.deepEqual(form.problems, []);
      assert.deepEqual(dash.problems, []);
    } finally {
      await form.close();
      await dash.close();
    }
  });

  test('toasts never cover the page\'s controls (desktop and phone)', async () => {
    await storeAuth({ admin: 'admin' });
    for (const [width, height] of [[1280, 800], [375, 740]]) {
      const page = await open('/admin/notifications.html', { width, height });
      try {
        await connected(page);
        await page.waitForSelector('#notif-loading[hidden]', { state: 'attached', timeout: WAIT });
        for (const i of [1, 2]) {
          await rest('POST', '/notifications/send', 'admin2', { type: 'info', title: `Overlap check ${width} ${i}`, content: 'a toast on top of the page' });
        }
        await page.locator('#toasts .toast', { hasText: `Overlap check ${width} 2` }).waitFor({ timeout: WAIT });
        await page.waitForTimeout(250); // the toast's entrance animation
        const covered = await page.evaluate(() => {
          const toasts = [...document.querySelectorAll('#toasts .toast')].map((n) => n.getBoundingClientRect());
          const out = [];
          for (const c of document.querySelectorAll('button, input, select, textarea, a, summary')) {
            if (c.closest('#toasts')) continue;
            const r = c.getBoundingClientRect();
            if (!r.width || !r.height) continue;
            for (const t of toasts) {
              if (r.left < t.right && r.right > t.left && r.top < t.bottom && r.bottom > t.top) out.push(c.id || c.textContent.trim().slice(0, 30));
            }
          }
          return out;
        });
        assert.deepEqual(covered, [], `controls under a toast at ${width}px`);
        await shot(page, `toasts-clear-${width}`);
        assert.deepEqual(page.problems, []);
      } finally {
        await page.close();
      }
    }
  });

  test('links in chat messages are clickable (http/https only, new tab, noopener), the rest stays text', async () => {
    await storeAuth({ admin: 'admin', customer: 'user' });
    const content = 'Track it at https://example.com/track?id=42. Not javascript:alert(1), <b>bold</b> or ftp://files.example.com/x';
    const { session } = await rest('POST', '/customer-service/sessions', 'user', { content });
    const chat = await open('/chat.html');
    try {
      const bubble = chat.locator('#messages .msg.mine .bubble').first();
      await bubble.waitFor({ timeout: WAIT });
      assert.equal(await bubble.textContent(), content);
      const links = await bubble.locator('a').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.textContent, a.target, a.rel]));
      assert.deepEqual(links, [['https://example.com/track?id=42', 'https://example.com/track?id=42', '_blank', 'noopener noreferrer']]);
      assert.equal(await bubble.locator('b').count(), 0, 'markup stays text');
      await shot(chat, 'chat-link');
      assert.deepEqual(chat.problems, []);
    } finally {
      await chat.close();
      await rest('POST', `/customer-service/sessions/${session.session_id}/close`, 'admin');
    }
  });

  test('a missing page shows the HTML 404 page; /admin opens the console', async () => {
    await storeAuth({ admin: 'admin' });
    const page = await open(null);
    try {
      const res = await page.goto(srv.url('/no/such/page.html'), { timeout: WAIT });
      assert.equal(res.status(), 404);
      assert.equal(await text(page, 'h1 [data-i18n="notFound.heading"]'), S('notFound.heading'));
      assert.equal(await page.title(), S('notFound.title'));
      await shot(page, 'not-found');
      assert.deepEqual(page.problems.filter((p) => !/404/.test(p)), []);
      page.problems.length = 0;
      await page.goto(srv.url('/admin'), { timeout: WAIT });
      await page.waitForURL('**/admin/notifications.html', { timeout: WAIT });
      await connected(page);
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });

  test('a token the server refuses or an expired one: a human message, then the sign-in form', async () => {
    const forged = `${login.admin.token.slice(0, -6)}${login.admin.token.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA'}`;
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const expired = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(login.admin.user.id), role: 'admin', exp: 1000 })}.c2ln`;
    const page = await browser.newPage();
    try {
      await page.goto(srv.url('/'), { timeout: WAIT });
      await page.evaluate(([a, c]) => {
        localStorage.setItem('herald.admin.auth', JSON.stringify(a));
        localStorage.setItem('herald.customer.auth', JSON.stringify(c));
      }, [{ token: forged, user: login.admin.user }, { token: `${login.user.token.slice(0, -6)}AAAAAA`, user: login.user.user }]);

      // the server refuses the socket (and REST): the page says why, forgets the token, goes to sign-in
      await page.goto(srv.url('/admin/dashboard.html'), { timeout: WAIT });
      await page.locator('.toast', { hasText: signInAgain }).waitFor({ timeout: WAIT });
      await page.waitForURL(/\/admin\/login\.html\?.*reason=invalid/, { timeout: WAIT });
      assert.equal(await text(page, '#reason'), S('auth.invalid'));
      assert.equal(await page.evaluate(() => localStorage.getItem('herald.admin.auth')), null);
      await shot(page, 'login-after-refused-token');

      // an expired token does not even get to the server
      await page.evaluate((t) => localStorage.setItem('herald.admin.auth', JSON.stringify(t)), { token: expired, user: login.admin.user });
      await page.goto(srv.url('/admin/notifications.html'), { timeout: WAIT });
      await page.waitForURL(/\/admin\/login\.html\?.*reason=expired/, { timeout: WAIT });
      assert.equal(await text(page, '#reason'), S('auth.expired'));

      // the customer page shows its sign-in form with the reason
      await page.goto(srv.url('/chat.html'), { timeout: WAIT });
      await page.waitForSelector('#signin-view:not([hidden]) #signin-reason:not([hidden])', { timeout: WAIT });
      assert.match(await text(page, '#signin-reason'), signInAgain);
      assert.equal(await page.evaluate(() => localStorage.getItem('herald.customer.auth')), null);
    } finally {
      await page.close();
    }
  });

  test('connection state: the server goes away (reconnecting banner) and comes back (connected, data reloaded)', async () => {
    await storeAuth({ admin: 'admin' });
    const page = await open('/admin/notifications.html');
    try {
      await connected(page);
      const port = srv.port;
      await srv.stop();
      await page.waitForSelector('body[data-conn="reconnecting"] #conn-banner:not([hidden])', { timeout: WAIT });
      assert.match(await text(page, '#conn-banner .conn-text'), lang === 'en' ? /reconnecting|retrying/i : /重新连接|重试/);
      assert.equal(await text(page, '[data-conn-pill]'), S('conn.reconnecting'));
      await shot(page, 'notifications-reconnecting');
      srv = await startHerald(SERVER_ARGS, { dataDir, port, webRoot: join(ROOT, 'web') });
      const n = (await rest('POST', '/notifications/send', 'admin2', { type: 'success', title: 'Back online', content: 'sent around the restart' })).notification;
      await page.waitForSelector('body[data-conn="connected"] #conn-banner[hidden]', { state: 'attached', timeout: 15000 });
      await page.locator(`.notif[data-id="${n.notification_id}"]`).waitFor({ timeout: WAIT });
    } finally {
      await page.close();
    }
  });
});
