// Persist, then deliver (docs/app.md): a 201 from POST /api/v4/notifications/send means the
// notification is committed. A stream of sends (concurrency 10) runs while the server is killed with
// SIGKILL in the middle; after a restart on the same --data-dir every send that was answered 201 is
// there exactly once, with the id it was answered with and its full content, nothing is duplicated or
// half-written, and new ids continue after the old ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHerald } from './lib/server.mjs';
import { seedAdmins } from './lib/app.mjs';

const SECRET = 'app-durability-secret-0123456789';
const API_KEY = 'app-durability-api-key-0123';
const ARGS = ['--jwt-secret', SECRET, '--api-key', API_KEY, '--demo-users', 'false'];
const TOTAL = 300;
const CONCURRENCY = 10;
const KILL_AFTER = 120; // answered sends before the kill

const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
function mint(sub, role) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: String(sub), role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}
const ADMIN = mint(1, 'admin');

/** The notification send number i: every other one targets admin 1, the rest are broadcasts. */
function body(i) {
  return { type: 'info', title: `durable-${i}`, content: `content of ${i} `.repeat(20), link: `/n/${i}`, target_user_id: i % 2 ? 1 : null };
}

/** Every notification admin 1 sees, newest first, paging with before. */
async function listAll(srv) {
  const items = [];
  let before = 0;
  for (;;) {
    const res = await fetch(srv.url(`/api/v4/notifications?limit=100${before ? `&before=${before}` : ''}`), {
      headers: { Authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(res.status, 200);
    const page = await res.json();
    items.push(...page.items);
    if (!page.has_more) return items;
    before = page.items.at(-1).id;
  }
}

test('every send answered 201 survives kill -9 exactly once', { timeout: 55000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-durability-'));
  let srv = await startHerald(ARGS, { dataDir });
  seedAdmins(dataDir, 1); // the target of every other notification
  try {
    const acked = new Map(); // i -> notification answered 201
    let next = 0, failed = 0, other = 0, killedAt = -1;
    const worker = async () => {
      while (next < TOTAL) {
        const i = next++;
        try {
          const res = await fetch(srv.url('/api/v4/notifications/send'), {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
            body: JSON.stringify(body(i)),
            signal: AbortSignal.timeout(5000),
          });
          const json = await res.json().catch(() => null);
          if (res.status === 201) acked.set(i, json.notification);
          else other++;
        } catch {
          failed++; // the server is gone: no answer, so no promise
        }
        if (acked.size >= KILL_AFTER && killedAt < 0) {
          killedAt = next;
          srv.child.kill('SIGKILL'); // with sends still in flight
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const { signal } = await srv.stop();
    assert.equal(signal, 'SIGKILL');
    assert.ok(killedAt > 0 && killedAt < TOTAL, `killed in the middle (after ${killedAt} started)`);
    assert.ok(acked.size >= KILL_AFTER && acked.size < TOTAL, `${acked.size} answered 201`);
    assert.ok(failed > 0, 'some sends got no answer');
    assert.equal(other, 0, 'no other status before the kill');

    srv = await startHerald(ARGS, { dataDir });
    const items = await listAll(srv);
    const byTitle = new Map();
    for (const n of items) {
      assert.ok(!byTitle.has(n.title), `${n.title} is stored twice`);
      byTitle.set(n.title, n);
    }
    assert.equal(new Set(items.map((n) => n.id)).size, items.length, 'ids unique');
    for (const [i, n] of acked) {
      const stored = byTitle.get(`durable-${i}`);
      assert.ok(stored, `send ${i} was answered 201 (id ${n.id}) but is missing after the restart`);
      assert.deepEqual(stored, n, `send ${i} is stored as it was answered`);
    }
    // whatever else survived (committed, answer lost in the kill) is whole, and was sent
    for (const n of items) {
      const i = Number(n.title.slice('durable-'.length));
      const b = body(i);
      assert.deepEqual([n.type, n.content, n.link, n.target_user_id], [b.type, b.content, b.link, b.target_user_id]);
    }
    assert.ok(items.length <= acked.size + CONCURRENCY, 'at most the in-flight sends besides the answered ones');
    const count = await (await fetch(srv.url('/api/v4/notifications/unread-count'), { headers: { Authorization: `Bearer ${ADMIN}` } })).json();
    assert.equal(count.count, items.length, 'unread count agrees with the list');

    // the server goes on: a new send gets a new id after every old one
    const res = await fetch(srv.url('/api/v4/notifications/send'), {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY }, body: JSON.stringify(body(TOTAL)),
    });
    assert.equal(res.status, 201);
    const fresh = (await res.json()).notification;
    assert.ok(items.every((n) => n.id < fresh.id), 'ids are not reused');
  } finally {
    await srv.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
