// Floods a careless or hostile client can send (issue 11, "Abuse must stay bounded"): sign-in bursts,
// Engine.IO session floods. Each test floods with small limits set through options and asserts the
// bounded outcome and its clear answer, against a real herald. Bounded in time: every wait has a timeout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from './lib/server.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });
async function herald(args) {
  const s = await startHerald(args);
  servers.push(s);
  return s;
}

const signIn = (srv, password = 'wrong') => fetch(srv.url('/api/v4/auth/login'), {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }),
});

test('sign-in: a concurrent burst of guesses is limited before any hash runs (in-flight ones count)', async () => {
  const srv = await herald(['--login-max-failures', '3', '--login-concurrency', '64']);
  const answers = await Promise.all(Array.from({ length: 30 }, () => signIn(srv)));
  const statuses = answers.map((r) => r.status);
  assert.ok(statuses.filter((s) => s === 401).length <= 3, `guesses checked: ${statuses.join(',')}`);
  assert.ok(statuses.filter((s) => s === 429).length >= 27, statuses.join(','));
  const limited = answers.find((r) => r.status === 429);
  assert.match((await limited.json()).message, /too many failed sign-ins/);
  for (const r of answers) await r.arrayBuffer().catch(() => {});
});

test('sign-in: password checks have a bounded queue (503 + Retry-After beyond it); static files stay fast', async () => {
  const srv = await herald(['--login-max-failures', '1000', '--login-concurrency', '1']);
  const burst = Array.from({ length: 40 }, () => signIn(srv));
  const t0 = Date.now();
  const page = await fetch(srv.url('/assets/app.js'));
  await page.arrayBuffer();
  const pageMs = Date.now() - t0;
  const answers = await Promise.all(burst);
  const statuses = answers.map((r) => r.status);
  const busy = answers.filter((r) => r.status === 503);
  assert.ok(busy.length >= 20, `refused as busy: ${statuses.join(',')}`);
  assert.equal(busy[0].headers.get('retry-after'), '1');
  assert.match((await busy[0].json()).message, /busy/);
  assert.ok(statuses.every((s) => s === 401 || s === 503), statuses.join(','));
  assert.ok(pageMs < 2000, `static file took ${pageMs} ms during the burst`);
  for (const r of answers) await r.arrayBuffer().catch(() => {});
  // once the burst is over, a sign-in is checked again (the places were given back)
  assert.equal((await signIn(srv, 'admin123')).status, 200);
});
