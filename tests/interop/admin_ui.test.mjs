// The Socket.IO Admin UI protocol (issue 13, --admin-ui; docs/admin-ui.md): socket.io-client 4.7.2
// acts as @socket.io/admin-ui 0.5.1's UI on namespace /admin. Sign-in (a Herald admin's name and
// password, the session id handed out then, an admin token; others refused with connect_error),
// what the UI gets on connect (session, config, all_sockets in admin-ui's serialized shape),
// server_stats every 2 s, the live events (socket_connected / _disconnected, room_joined / _left,
// event_received / _sent), and the actions (join, leave, emit, _disconnect with and without
// close) taking effect on real socket.io-client sockets. Also: /socket-admin/ serves the stock UI.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { startHerald, storeArgs, HERALD_BIN } from './lib/server.mjs';
import { next } from './lib/wait.mjs';

const SECRET = 'admin-ui-secret-0123456789abcdef';
const WAIT = 5000;
const SERIALIZED_KEYS = ['clientId', 'data', 'handshake', 'id', 'nsp', 'rooms', 'transport'];
const ISO_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function mint(sub, role) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: String(sub), role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

let srv, dataDir;
const sockets = new Set();

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'herald-admin-ui-'));
  const add = (name, role, password) => execFileSync(HERALD_BIN, ['user', 'add', name, '--role', role, '--password', password,
    '--data-dir', dataDir, ...storeArgs(dataDir)], { stdio: 'pipe' });
  add('ops', 'admin', 'ops-password');
  add('ops2', 'admin', 'ops2-password');
  add('alice', 'user', 'alice-password');
  srv = await startHerald(['--jwt-secret', SECRET, '--demo-users', 'false', '--admin-ui', '--admin-ui-server-id', 'herald-test'], { dataDir });
});
after(() => srv?.stop());
afterEach(() => {
  for (const s of sockets) s.close();
  sockets.clear();
});

/** A socket.io-client socket (not yet connected), closed after the test. */
function client(nsp, opts) {
  const s = io(srv.url(nsp), { forceNew: true, reconnection: false, timeout: WAIT, transports: ['websocket'], ...opts });
  sockets.add(s);
  return s;
}

/** Resolves 'connected' or the connect_error message. */
function outcome(s) {
  return new Promise((resolve) => {
    s.once('connect', () => resolve('connected'));
    s.once('connect_error', (e) => resolve(e.message));
  });
}

/** An app socket on "/" with a user token, connected. */
async function appClient(sub, opts = {}) {
  const s = client('/', { auth: { token: mint(sub, 'user') }, ...opts });
  assert.equal(await outcome(s), 'connected');
  return s;
}

/** The Admin UI as the stock UI connects: /admin, auth {username, password}; listeners set before connecting. */
function adminClient(auth = { username: 'ops', password: 'ops-password' }, opts = {}) {
  const s = client('/admin', { auth, transports: ['polling', 'websocket'], ...opts });
  const quiet = (p) => { p.catch(() => {}); return p; }; /* awaited by the tests that care */
  const got = { session: quiet(next(s, 'session')), config: quiet(next(s, 'config')), all: quiet(next(s, 'all_sockets')) };
  return { s, got };
}

test('non-admins, wrong passwords and missing credentials are refused with connect_error', async () => {
  const tries = [
    [{ username: 'ops', password: 'wrong' }, 'invalid credentials'],
    [{ username: 'nobody', password: 'ops-password' }, 'invalid credentials'],
    [{ username: 'alice', password: 'alice-password' }, 'admin role required'],
    [{ token: mint(7, 'user') }, 'admin role required'],
    [{ sessionId: 'not-a-session' }, 'invalid credentials'],
    [{ username: 'ops', password: 'x'.repeat(300) }, 'invalid credentials'],
    [{ username: 'ops', password: 5 }, 'invalid credentials'],
    [undefined, 'invalid credentials'],
  ];
  for (const [auth, message] of tries) {
    const s = client('/admin', { auth });
    assert.equal(await outcome(s), message, JSON.stringify(auth)?.slice(0, 80));
  }
  // the app's namespace is untouched: a user still connects there, a password is no token there
  await appClient(8);
  assert.match(await outcome(client('/', { auth: { username: 'ops', password: 'ops-password' } })), /auth/);
});

test('failed sign-ins count against the address (long-polling too), with POST /api/v4/auth/login\'s limit', async () => {
  const strict = await startHerald(['--jwt-secret', SECRET, '--demo-users', 'false', '--admin-ui', '--login-max-failures', '2'],
    { dataDir: mkdtempSync(join(tmpdir(), 'herald-admin-ui-limit-')) });
  try {
    execFileSync(HERALD_BIN, ['user', 'add', 'ops', '--role', 'admin', '--password', 'ops-password', '--data-dir', strict.dataDir,
      ...storeArgs(strict.dataDir)], { stdio: 'pipe' });
    const attempt = (password, transports) => {
      const s = io(strict.url('/admin'), { forceNew: true, reconnection: false, transports, auth: { username: 'ops', password } });
      sockets.add(s);
      return outcome(s);
    };
    assert.equal(await attempt('wrong-1', ['polling']), 'invalid credentials');
    assert.equal(await attempt('wrong-2', ['polling']), 'invalid credentials');
    // the same address over WebSocket, even with the right password: limited
    assert.equal(await attempt('ops-password', ['websocket']), 'too many failed sign-ins from this address: wait a minute');
    const login = await fetch(strict.url('/api/v4/auth/login'), { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'ops', password: 'ops-password' }) });
    assert.equal(login.status, 429, 'one limit for the UI and the REST sign-in');
  } finally {
    await strict.stop();
    rmSync(strict.dataDir, { recursive: true, force: true });
  }
});

test('an admin gets session, config and all_sockets in admin-ui\'s shape; the session id signs in again', async () => {
  const app = await appClient(11, { transports: ['polling'], query: { token: 'secret-in-query', team: 'blue' } });
  const { s, got } = adminClient();
  assert.equal(await outcome(s), 'connected');
  const [session] = await got.session;
  assert.equal(typeof session, 'string');
  const [config] = await got.config;
  assert.deepEqual(config, { supportedFeatures: ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'MJOIN', 'MLEAVE', 'MDISCONNECT', 'AGGREGATED_EVENTS', 'ALL_EVENTS'] });
  const [all] = await got.all;
  const mine = all.find((x) => x.id === app.id);
  assert.ok(mine, `the app socket is listed: ${JSON.stringify(all).slice(0, 300)}`);
  assert.deepEqual(Object.keys(mine).sort(), SERIALIZED_KEYS);
  assert.equal(mine.nsp, '/');
  assert.equal(mine.transport, 'polling');
  assert.equal(mine.clientId, app.io.engine.id.slice(0, 12));
  assert.deepEqual(mine.data, { sub: '11', role: 'user' });
  assert.ok(mine.rooms.includes(app.id), 'its own room');
  assert.equal(mine.handshake.address, '127.0.0.1');
  assert.equal(mine.handshake.query.team, 'blue');
  assert.equal(mine.handshake.query.token, undefined, 'no token shown');
  assert.equal(typeof mine.handshake.headers.host, 'string');
  assert.equal(typeof mine.handshake.issued, 'number');
  assert.equal(mine.handshake.secure, false);
  assert.match(mine.handshake.url, /^\/socket\.io\/\?/);
  const me = all.find((x) => x.id === s.id);
  assert.ok(me && me.nsp === '/admin', 'the admin socket itself is listed');

  // reloading the UI: {sessionId} from localStorage
  const again = client('/admin', { auth: { sessionId: session } });
  const config2 = next(again, 'config');
  assert.equal(await outcome(again), 'connected');
  await config2;
  // an admin token works too
  assert.equal(await outcome(client('/admin', { auth: { token: mint(1, 'admin') } })), 'connected');
});

test('an admin disabled with `herald user disable` loses the Admin UI, and cannot sign in again', async () => {
  const { s, got } = adminClient({ username: 'ops2', password: 'ops2-password' });
  assert.equal(await outcome(s), 'connected');
  const [session] = await got.session;
  const gone = new Promise((resolve) => s.once('disconnect', resolve));
  execFileSync(HERALD_BIN, ['user', 'disable', 'ops2', '--data-dir', dataDir, ...storeArgs(dataDir)], { stdio: 'pipe' });
  assert.equal(await gone, 'io server disconnect');
  assert.equal(await outcome(client('/admin', { auth: { sessionId: session } })), 'invalid credentials');
  assert.equal(await outcome(client('/admin', { auth: { username: 'ops2', password: 'ops2-password' } })), 'this account is disabled');
});

test('server_stats every 2 s: this node as one server with its namespaces and clients', async () => {
  const app = await appClient(21);
  const polling = await appClient(22, { transports: ['polling'] });
  const { s } = adminClient({ token: mint(1, 'admin') });
  const t0 = Date.now();
  const [first] = await next(s, 'server_stats', () => true, 3000);
  const [second] = await next(s, 'server_stats', () => true, 3000);
  const gap = Date.now() - t0;
  assert.ok(gap >= 1500 && gap < 5000, `two stats in ${gap} ms`);
  for (const st of [first, second]) {
    assert.equal(st.serverId, 'herald-test');
    assert.equal(typeof st.hostname, 'string');
    assert.equal(st.pid, srv.child.pid);
    assert.equal(typeof st.uptime, 'number');
    assert.ok(Array.isArray(st.aggregatedEvents));
    assert.ok(st.clientsCount >= 3, `clientsCount ${st.clientsCount}`);
    assert.ok(st.pollingClientsCount >= 1, `pollingClientsCount ${st.pollingClientsCount}`);
    const root = st.namespaces.find((n) => n.name === '/');
    assert.ok(root.socketsCount >= 2, JSON.stringify(st.namespaces));
    assert.ok(st.namespaces.find((n) => n.name === '/admin').socketsCount >= 1);
  }
  const kinds = new Set([first, second].flatMap((st) => st.aggregatedEvents.map((e) => e.type)));
  assert.ok(kinds.has('bytesIn') && kinds.has('bytesOut'), [...kinds].join());
  for (const e of [first, second].flatMap((st) => st.aggregatedEvents)) {
    assert.equal(e.timestamp % 1000, 0);
    assert.ok(e.count > 0);
  }
  app.close();
  polling.close();
});

test('live: connect, join, emit, leave, events, disconnect, as the UI sees them and as the clients feel them', async () => {
  const { s: admin, got } = adminClient();
  assert.equal(await outcome(admin), 'connected');
  await got.all;
  const connected = next(admin, 'socket_connected', (sock) => sock.nsp === '/' && sock.data.sub === '31');
  const app = await appClient(31);
  const [sock, when] = await connected;
  assert.equal(sock.id, app.id);
  assert.deepEqual(Object.keys(sock).sort(), SERIALIZED_KEYS);
  assert.equal(sock.transport, 'websocket');
  assert.match(when, ISO_DATE);

  // join (nsp, room, filter = the socket's id): the socket really is in the room
  const joined = next(admin, 'room_joined', (nsp, room, id) => room === 'blue' && id === app.id);
  admin.emit('join', '/', 'blue', app.id);
  const [jn, , , jwhen] = await joined;
  assert.equal(jn, '/');
  assert.match(jwhen, ISO_DATE);
  const hello = next(app, 'hello');
  admin.emit('emit', '/', 'blue', 'hello', { n: 1 }, 'two');
  assert.deepEqual((await hello).slice(0, 2), [{ n: 1 }, 'two']); /* then the recovery offset */

  // events: what the client sends, seen by the UI
  const received = next(admin, 'event_received', (nsp, id) => id === app.id);
  app.emit('anything:here', { x: 1 });
  const [rn, rid, rargs, rwhen] = await received;
  assert.deepEqual([rn, rid, rargs], ['/', app.id, ['anything:here', { x: 1 }]]);
  assert.match(rwhen, ISO_DATE);

  // leave: no longer in the room
  const left = next(admin, 'room_left', (nsp, room, id) => room === 'blue' && id === app.id);
  admin.emit('leave', '/', 'blue', app.id);
  await left;
  let late = false;
  app.on('after-leave', () => { late = true; });
  admin.emit('emit', '/', 'blue', 'after-leave');
  await sleep(300);
  assert.equal(late, false, 'a socket that left gets nothing sent to the room');

  // _disconnect (nsp, false, id): the namespace only; the UI hears of it and of each room it left
  const appId = app.id; /* the client forgets it once disconnected */
  const gone = next(admin, 'socket_disconnected', (nsp, id) => id === appId);
  const ownRoomLeft = next(admin, 'room_left', (nsp, room, id) => room === appId && id === appId);
  const reason = new Promise((resolve) => app.once('disconnect', resolve));
  admin.emit('_disconnect', '/', false, appId);
  assert.equal(await reason, 'io server disconnect');
  const [dn, did, dreason, dwhen] = await gone;
  assert.deepEqual([dn, did, dreason], ['/', appId, 'server namespace disconnect']);
  assert.match(dwhen, ISO_DATE);
  await ownRoomLeft;

  // namespace only: a "/" socket sharing the admin's connection goes, the admin's /admin socket stays
  const sibling = admin.io.socket('/', { auth: { token: mint(33, 'user') } });
  sockets.add(sibling);
  assert.equal(await outcome(sibling), 'connected');
  const siblingGone = new Promise((resolve) => sibling.once('disconnect', resolve));
  admin.emit('_disconnect', '/', false, sibling.id);
  assert.equal(await siblingGone, 'io server disconnect');
  await sleep(100);
  assert.equal(admin.connected, true, 'the shared connection stays');

  // _disconnect (nsp, true, id): the whole connection closes
  const other = await appClient(32);
  const closing = new Promise((resolve) => other.once('disconnect', resolve));
  const otherId = other.id;
  const gone2 = next(admin, 'socket_disconnected', (nsp, id) => id === otherId);
  admin.emit('_disconnect', '/', true, otherId);
  assert.equal(await closing, 'transport close');
  assert.equal((await gone2)[2], 'forced server close');
});

test('a client upgrading from polling to WebSocket: socket_connected says polling, then socket_updated', async () => {
  const { s: admin, got } = adminClient({ token: mint(1, 'admin') });
  assert.equal(await outcome(admin), 'connected');
  await got.all;
  const connected = next(admin, 'socket_connected', (sock) => sock.data.sub === '35');
  const updated = next(admin, 'socket_updated', (u) => u.nsp === '/'); // not the admin's own upgrade
  const app = client('/', { auth: { token: mint(35, 'user') }, transports: ['polling', 'websocket'] });
  assert.equal(await outcome(app), 'connected');
  const [sock] = await connected;
  assert.equal(sock.transport, 'polling');
  const [update] = await updated;
  assert.deepEqual(update, { id: app.id, nsp: '/', transport: 'websocket' });
  assert.equal(app.io.engine.transport.name, 'websocket');
});

test('room-wide actions (MJOIN, MLEAVE, MDISCONNECT) reach every socket of the room on every shard', async () => {
  const { s: admin, got } = adminClient({ token: mint(1, 'admin') });
  assert.equal(await outcome(admin), 'connected');
  await got.config;
  const apps = await Promise.all([41, 42, 43, 44].map((n) => appClient(n)));
  for (const a of apps) admin.emit('join', '/', 'team', a.id);
  const all = apps.map((a) => next(a, 'to-team'));
  await sleep(200);
  admin.emit('emit', '/', 'team', 'to-team', 1);
  await Promise.all(all);
  const reasons = apps.map((a) => new Promise((resolve) => a.once('disconnect', resolve)));
  admin.emit('_disconnect', '/', false, 'team');
  assert.deepEqual(await Promise.all(reasons), apps.map(() => 'io server disconnect'));
});

test('bad actions are ignored, the admin stays connected', async () => {
  const { s: admin, got } = adminClient({ token: mint(1, 'admin') });
  assert.equal(await outcome(admin), 'connected');
  await got.config;
  const app = await appClient(51);
  admin.emit('join');
  admin.emit('join', 5, 'x', app.id);
  admin.emit('join', '/nope', 'x');
  admin.emit('leave', '/', null, app.id);
  admin.emit('_disconnect', { nsp: '/' });
  admin.emit('emit', '/', '', 42);
  admin.emit('join', '/', 'r'.repeat(5000), app.id);
  const stats = await next(admin, 'server_stats', () => true, 3000);
  assert.ok(stats);
  assert.equal(admin.connected, true);
  assert.equal(app.connected, true);
});

test('--admin-ui-mode production --admin-ui-readonly: server stats only, no actions', async () => {
  const quiet = await startHerald(['--jwt-secret', SECRET, '--demo-users', 'false', '--admin-ui', '--admin-ui-mode', 'production',
    '--admin-ui-readonly']);
  try {
    const admin = io(quiet.url('/admin'), { forceNew: true, reconnection: false, transports: ['websocket'], auth: { token: mint(1, 'admin') } });
    sockets.add(admin);
    const seen = [];
    admin.onAny((event) => seen.push(event));
    const config = next(admin, 'config');
    assert.equal(await outcome(admin), 'connected');
    assert.deepEqual((await config)[0], { supportedFeatures: ['AGGREGATED_EVENTS'] });
    const app = io(quiet.url('/'), { forceNew: true, reconnection: false, transports: ['websocket'], auth: { token: mint(71, 'user') } });
    sockets.add(app);
    assert.equal(await outcome(app), 'connected');
    admin.emit('_disconnect', '/', false, app.id);
    admin.emit('join', '/', 'x', app.id);
    const [stats] = await next(admin, 'server_stats', () => true, 3000);
    assert.equal(stats.namespaces.find((n) => n.name === '/').socketsCount, 1);
    assert.equal(app.connected, true, 'no action taken');
    assert.deepEqual([...new Set(seen)].sort(), ['config', 'server_stats'], 'no sockets, rooms or events sent');
  } finally {
    await quiet.stop();
  }
});

test('--admin-ui-mode takes development or production only', async () => {
  await assert.rejects(startHerald(['--admin-ui', '--admin-ui-mode', 'verbose']), /admin-ui-mode/);
});

test('/socket-admin/ serves the stock UI from --admin-ui-root', async () => {
  const page = await fetch(srv.url('/socket-admin/'));
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>Socket.IO Admin UI<\/title>/);
  const csp = page.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self';/, 'scripts from this origin only');
  assert.match(csp, /style-src [^;]*https:\/\/cdn\.jsdelivr\.net/, 'the icon font\'s stylesheet the page links');
  assert.match(csp, /connect-src 'self'/);
  const redirect = await fetch(srv.url('/socket-admin'), { redirect: 'manual' });
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.get('location'), '/socket-admin/');
  assert.equal((await fetch(srv.url('/socket-admin/../../package.json'))).status === 200, false);
});

test('without --admin-ui there is no /admin namespace and no /socket-admin/', async () => {
  const plain = await startHerald(['--jwt-secret', SECRET, '--demo-users', 'false']);
  try {
    const s = io(plain.url('/admin'), { forceNew: true, reconnection: false, transports: ['websocket'], auth: { token: mint(1, 'admin') } });
    sockets.add(s);
    assert.equal(await outcome(s), 'Invalid namespace');
    assert.equal((await fetch(plain.url('/socket-admin/'))).status, 404);
  } finally {
    await plain.stop();
  }
});

test('a missing --admin-ui-root is named in the log, the protocol still works', async () => {
  const odd = await startHerald(['--jwt-secret', SECRET, '--demo-users', 'false', '--admin-ui', '--admin-ui-root', '/nonexistent/ui']);
  try {
    assert.match(odd.log, /Admin UI's files are missing.*\/nonexistent\/ui/);
    assert.equal((await fetch(odd.url('/socket-admin/'))).status, 404);
    const s = io(odd.url('/admin'), { forceNew: true, reconnection: false, transports: ['websocket'], auth: { token: mint(1, 'admin') } });
    sockets.add(s);
    assert.equal(await outcome(s), 'connected');
  } finally {
    await odd.stop();
  }
});
