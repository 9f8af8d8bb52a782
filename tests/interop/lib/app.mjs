// Helpers shared by the application tests (tests/interop/app_*.test.mjs): JSON error checks and
// Socket.IO clients that are closed after each test.
import assert from 'node:assert/strict';
import { afterEach } from 'node:test';
import { io } from 'socket.io-client';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const WAIT = 5000;

/** Asserts an error answer: that status, and a JSON body {code: status, message: non-empty}. */
export function assertError(res, status, what = '') {
  assert.equal(res.status, status, `${what}: status ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body, 'object', `${what}: JSON body`);
  assert.equal(res.body?.code, status, `${what}: code`);
  assert.equal(typeof res.body.message, 'string', `${what}: message`);
  assert.ok(res.body.message.length > 0, `${what}: message not empty`);
}

const sockets = new Set();

/** Closes every client made by connect() (done after each test anyway). */
export function closeSockets() {
  for (const s of sockets) s.close();
  sockets.clear();
}
afterEach(closeSockets);

/** A connected Socket.IO client (WebSocket) for token; closed after the test. */
export async function connect(srv, token) {
  const s = io(srv.url('/'), { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false, timeout: WAIT });
  sockets.add(s);
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timed out')), WAIT);
    s.once('connect', () => { clearTimeout(t); resolve(); });
    s.once('connect_error', (e) => { clearTimeout(t); reject(e); });
  });
  return s;
}

/** Resolves with the first argument of the next `event` on socket. */
export function next(socket, event, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { socket.off(event, on); reject(new Error(`timed out waiting for ${event}`)); }, ms);
    const on = (data) => { clearTimeout(t); socket.off(event, on); resolve(data); };
    socket.on(event, on);
  });
}

/**
 * Makes admins with ids 1..count (names admin1..) in the server's database, for tests that mint
 * their own tokens and send notifications to those ids (a recipient must be an admin of the
 * database). Written with python3's sqlite3 beside the running server (WAL); ids already taken
 * are left as they are.
 */
export function seedAdmins(dataDir, count = 128) {
  const script = `
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
now = int(time.time() * 1000)
db.executemany("INSERT OR IGNORE INTO users (id, name, role, password_hash, display_name, created_at) VALUES (?, ?, 'admin', '$seeded', '', ?)",
               [(i, 'admin%d' % i, now) for i in range(1, int(sys.argv[2]) + 1)])
db.commit()
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, join(dataDir, 'herald.db'), String(count)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`seeding admins failed: ${r.stderr}`);
}
