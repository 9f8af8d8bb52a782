// Helpers shared by the application tests (tests/interop/app_*.test.mjs): JSON error checks and
// Socket.IO clients that are closed after each test.
import assert from 'node:assert/strict';
import { afterEach } from 'node:test';
import { io } from 'socket.io-client';
import { STORE, storeSql } from './server.mjs';

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
 * Makes admins in the server's store (its SQLite file beside the running server, or its PostgreSQL
 * database), for tests that mint their own tokens and send notifications to those ids (a recipient
 * must be an admin of the database): `ids` is a count (ids 1..count) or a list of ids; names are
 * admin<id>. Ids already taken are left as they are; on PostgreSQL the id sequence moves past them.
 */
export function seedAdmins(dataDir, ids = 128) {
  const list = (typeof ids === 'number' ? Array.from({ length: ids }, (_, i) => i + 1) : ids).map(Number);
  if (!list.length || !list.every((id) => Number.isSafeInteger(id) && id > 0)) throw new Error(`seedAdmins: bad ids ${ids}`);
  const rows = `(VALUES ${list.map((id) => `(${id})`).join(', ')}) AS v(id)`;
  const now = Date.now();
  if (STORE === 'postgres') {
    storeSql(dataDir, `INSERT INTO users (id, name, role, password_hash, display_name, created_at) SELECT id, 'admin' || id, 'admin', '$seeded', '', ${now} FROM ${rows} ON CONFLICT DO NOTHING; ` +
      "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))");
  } else {
    storeSql(dataDir, `INSERT OR IGNORE INTO users (id, name, role, password_hash, display_name, created_at) SELECT column1, 'admin' || column1, 'admin', '$seeded', '', ${now} FROM (VALUES ${list.map((id) => `(${id})`).join(', ')})`);
  }
}
