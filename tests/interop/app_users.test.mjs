// Users from the command line against a running server (issue 12, "Safe first run"): `herald user
// add|passwd|disable|enable|delete|list` on the database the server uses, the server noticing each
// change within its one-second poll (live Socket.IO and JSON-protocol connections of a disabled or
// deleted user closed, its tokens refused at connect and on REST, tokens from before a new password
// refused), names validated and unique without regard to case, a missing --role named, the password
// asked for without echo on a terminal (a real pty through python3), `herald user`/`token` saying
// which data dir they use and creating none by accident, and the demo accounts refused beyond
// loopback until their password changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { WAIT, connect, next } from './lib/app.mjs';
import { startHerald, storeArgs, HERALD_BIN } from './lib/server.mjs';

const SECRET = 'app-users-secret-0123456789abcdef';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `herald user ...` (or another command) on dataDir; {status, stdout, stderr}. */
function cli(dataDir, args, input = '') {
  const r = spawnSync(HERALD_BIN, [...args, '--data-dir', dataDir], { input, encoding: 'utf8', timeout: 20000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** cli() on the store a server started with that dataDir uses (its PostgreSQL database when the tests run there). */
const serverCli = (dataDir, args, input = '') => cli(dataDir, [...args, ...storeArgs(dataDir)], input);

async function login(srv, username, password) {
  const res = await fetch(srv.url('/api/v4/auth/login'), {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username, password }),
  });
  return { status: res.status, body: await res.json() };
}

async function me(srv, token) {
  const res = await fetch(srv.url('/api/v4/auth/me'), { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

/** A Socket.IO connect attempt: resolves with the connect_error message, or 'connected'. */
function tryConnect(srv, token) {
  const s = io(srv.url('/'), { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT });
  return new Promise((resolve) => {
    s.once('connect', () => { s.close(); resolve('connected'); });
    s.once('connect_error', (e) => { s.close(); resolve(e.message); });
  });
}

/** An open JSON-protocol connection: {ws, frames, closed (a promise of the close code)}. */
async function jsonClient(srv, token) {
  const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?token=${encodeURIComponent(token)}&protocol=1.0`));
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { ws, frames, closed };
}

/** Waits until the server's log matches re. */
async function waitLog(srv, re, ms = 5000) {
  for (const end = Date.now() + ms; !re.test(srv.log); await sleep(20)) if (Date.now() > end) throw new Error(`log never matched ${re}:\n${srv.log}`);
}

const within = (p, ms, what) => Promise.race([p, sleep(ms).then(() => { throw new Error(`${what}: not within ${ms} ms`); })]);

test('user CLI: validation, case-insensitive names, which database, nothing created by accident', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-users-'));
  try {
    const data = join(dir, 'data');
    let r = cli(data, ['user', 'list']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no database at .*herald\.db/);
    assert.equal(existsSync(data), false, 'list created nothing');
    r = cli(data, ['token', '--sub', '1']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /no signing key at .*jwt-secret/);
    assert.equal(existsSync(data), false, 'token created nothing');
    r = cli(data, ['user', 'add', 'wang'], 'secret1\n');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--role is required/);
    for (const bad of ['wang fang', 'tab\there', 'nl\nx', 'ctl\x01', 'wide\u3000space', 'x'.repeat(65)]) {
      r = cli(data, ['user', 'add', bad, '--role', 'user'], 'secret1\n');
      assert.equal(r.status, 2, JSON.stringify(bad));
      assert.match(r.stderr, /name/);
    }
    assert.equal(existsSync(data), false, 'refused commands created nothing');
    r = cli(data, ['user', 'add', 'wang', '--role', 'admin', '--display-name', '王芳'], 'secret1\n');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /no database at .* creating it/);
    assert.match(r.stdout, /created 1\twang\tadmin\t王芳\tactive/);
    r = cli(data, ['user', 'add', 'WANG', '--role', 'user'], 'secret1\n');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /exists \(names are compared without regard to case\)/);
    r = cli(data, ['user', 'add', '李雷', '--role', 'user'], 'short\n');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /password has 6 to 255 characters/);
    r = cli(data, ['user', 'passwd', 'nobody'], 'secret2\n');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no user named nobody/);
    r = cli(data, ['user', 'disable', 'wang']);
    assert.equal(r.status, 0);
    assert.match(r.stderr, new RegExp(`database ${data}/herald.db`));
    r = cli(data, ['user', 'list']);
    assert.match(r.stdout, /1\twang\tadmin\t王芳\tdisabled/);
    r = cli(data, ['user', 'delete', 'wang']);
    assert.equal(r.status, 0);
    r = cli(data, ['user', 'list']);
    assert.doesNotMatch(r.stdout, /wang/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('user CLI on a terminal: the password is asked twice and never echoed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-users-'));
  try {
    const data = join(dir, 'data');
    // python3's pty: the child gets a real terminal; we type the password twice
    const script = `
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:-1])  # the last argument is the password to type
out = b''
def read_until(token):
    global out
    while token not in out:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            return
        if not chunk:
            return
        out += chunk
read_until(b'password for')
os.write(fd, sys.argv[-1].encode() + b'\\n')
read_until(b'Again')
os.write(fd, sys.argv[-1].encode() + b'\\n')
read_until(b'\\x00never')
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf-8', 'replace'))
sys.exit(os.WEXITSTATUS(status))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', script, HERALD_BIN, 'user', 'add', 'zhang', '--role', 'user', '--data-dir', data, 'tty-secret-1'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /New password for zhang:/);
    assert.match(r.stdout, /Again:/);
    assert.match(r.stdout, /created \d+\tzhang/);
    assert.doesNotMatch(r.stdout, /tty-secret-1/, 'the password was not echoed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a running server applies disable, enable, passwd and delete made by the CLI: connections closed, tokens refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-users-'));
  const srv = await startHerald(['--jwt-secret', SECRET, '--demo-users', 'false'], { dataDir: dir });
  try {
    assert.equal(serverCli(dir, ['user', 'add', 'fang', '--role', 'admin', '--display-name', '王芳'], 'fang-secret\n').status, 0);
    assert.equal(serverCli(dir, ['user', 'add', 'lei', '--role', 'user'], 'lei-secret\n').status, 0);
    const a = await login(srv, 'fang', 'fang-secret');
    assert.equal(a.status, 200);
    assert.equal(a.body.user.display_name, '王芳');
    const token = a.body.token;
    const other = (await login(srv, 'lei', 'lei-secret')).body.token;
    const sock = await connect(srv, token);
    const bystander = await connect(srv, other);
    const json = await jsonClient(srv, token);
    const gone = next(sock, 'disconnect', 5000);

    assert.equal(serverCli(dir, ['user', 'disable', 'fang']).status, 0);
    assert.equal(await within(gone, 4000, 'socket.io disconnect'), 'io server disconnect');
    assert.equal(await within(json.closed, 4000, 'json close'), 1008);
    assert.ok(json.frames.some((f) => f.type === 'disconnect' && /disabled/.test(f.data.reason)), JSON.stringify(json.frames));
    assert.ok(bystander.connected, 'another user stays connected');
    let r = await me(srv, token);
    assert.equal(r.status, 401);
    assert.match(r.body.message, /disabled/);
    assert.match(await tryConnect(srv, token), /disabled/);
    r = await login(srv, 'fang', 'fang-secret');
    assert.equal(r.status, 403);
    assert.match(r.body.message, /disabled/);

    assert.equal(serverCli(dir, ['user', 'enable', 'fang']).status, 0);
    await sleep(1500);
    assert.equal((await me(srv, token)).status, 200, 'enabled again: the same token works');

    await sleep(1100); // tokens carry whole seconds: the new password must come a second after the token
    const sock2 = await connect(srv, token);
    const gone2 = next(sock2, 'disconnect', 5000);
    assert.equal(serverCli(dir, ['user', 'passwd', 'fang'], 'fang-secret-2\n').status, 0);
    await within(gone2, 4000, 'disconnect after passwd');
    r = await me(srv, token);
    assert.equal(r.status, 401);
    assert.match(r.body.message, /password changed/);
    assert.equal((await login(srv, 'fang', 'fang-secret')).status, 401);
    const fresh = await login(srv, 'fang', 'fang-secret-2');
    assert.equal(fresh.status, 200);
    assert.equal((await me(srv, fresh.body.token)).status, 200);

    const sock3 = await connect(srv, fresh.body.token);
    const gone3 = next(sock3, 'disconnect', 5000);
    assert.equal(serverCli(dir, ['user', 'delete', 'fang']).status, 0);
    await within(gone3, 4000, 'disconnect after delete');
    r = await me(srv, fresh.body.token);
    assert.equal(r.status, 401);
    assert.match(r.body.message, /deleted/);
    assert.equal((await login(srv, 'fang', 'fang-secret-2')).status, 401);
    assert.ok(bystander.connected);
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two nodes on one store: a user disabled by the CLI is refused on both within the poll', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-users-'));
  let a, b;
  try {
    const args = ['--jwt-secret', SECRET, '--demo-users', 'false'];
    a = await startHerald(args, { dataDir: dir });
    b = await startHerald(args, { dataDir: dir });
    assert.equal(serverCli(dir, ['user', 'add', 'qiang', '--role', 'admin'], 'qiang-secret\n').status, 0);
    const token = (await login(a, 'qiang', 'qiang-secret')).body.token;
    assert.equal((await me(b, token)).status, 200, 'a token from node A works on node B');
    assert.equal(serverCli(dir, ['user', 'disable', 'qiang']).status, 0);
    await sleep(2500); // each node polls the change counter every second
    for (const [node, srv] of [['A', a], ['B', b]]) {
      const r = await me(srv, token);
      assert.equal(r.status, 401, `node ${node}`);
      assert.match(r.body.message, /disabled/);
    }
  } finally {
    await a?.stop();
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('demo accounts: created on loopback only, refused beyond loopback until their password changes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-users-'));
  const dir2 = mkdtempSync(join(tmpdir(), 'herald-users-'));
  let srv;
  try {
    srv = await startHerald(['--jwt-secret', SECRET], { dataDir: dir });
    await waitLog(srv, /demo accounts admin/);
    await waitLog(srv, /demo user created.*name=user/);
    assert.equal((await login(srv, 'admin', 'admin123')).status, 200);
    await srv.stop();
    // the same data served on every interface: the demo accounts are refused
    srv = await startHerald(['--jwt-secret', SECRET, '--host', '0.0.0.0'], { dataDir: dir });
    let r = await login(srv, 'admin', 'admin123');
    assert.equal(r.status, 403);
    assert.match(r.body.message, /demo account/);
    await waitLog(srv, /demo account refused beyond loopback.*name=admin/);
    assert.equal(serverCli(dir, ['user', 'passwd', 'admin'], 'a-real-password\n').status, 0);
    await sleep(1500);
    assert.equal((await login(srv, 'admin', 'a-real-password')).status, 200);
    assert.equal((await login(srv, 'user', 'user123')).status, 403, 'the other demo account still refused');
    await srv.stop();
    // a first start beyond loopback creates no demo account
    srv = await startHerald(['--jwt-secret', SECRET, '--host', '0.0.0.0'], { dataDir: dir2 });
    assert.equal((await login(srv, 'admin', 'admin123')).status, 401);
    await waitLog(srv, /no users yet: create an admin with `herald user add/);
  } finally {
    await srv?.stop(); // stopping twice is harmless
    rmSync(dir, { recursive: true, force: true });
    rmSync(dir2, { recursive: true, force: true });
  }
});
