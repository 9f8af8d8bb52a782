// Floods a careless or hostile client can send (issue 11, "Abuse must stay bounded"): sign-in bursts,
// Engine.IO session floods. Each test floods with small limits set through options and asserts the
// bounded outcome and its clear answer, against a real herald. Bounded in time: every wait has a timeout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startHerald, rssBytes } from './lib/server.mjs';

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

/** Signs in from a given loopback source address (127.x.y.z): resolves with the HTTP status. */
function signInFrom(srv, localAddress, password = 'wrong') {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ username: 'admin', password });
    const req = http.request(srv.url('/api/v4/auth/login'), {
      method: 'POST', localAddress, agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end(body);
  });
}

test('sign-in: the per-address limiter forgets addresses (success at once, failures after --login-window): its table stays small', async () => {
  const srv = await herald(['--login-window', '5000', '--login-concurrency', '64']);
  for (let i = 0; i < 100 && !/demo user created.*name=admin/.test(srv.log); i++) await new Promise((r) => setTimeout(r, 50));
  const tracked = async () => Number(/^herald_login_addresses (\d+)$/m.exec(await (await fetch(srv.url('/metrics'))).text())[1]);
  const failed = await Promise.all(Array.from({ length: 12 }, (_, i) => signInFrom(srv, `127.0.1.${i + 1}`)));
  const t0 = Date.now(); // each failure is counted when its check ends, before its answer: all are older than this
  assert.deepEqual([...new Set(failed)], [401]);
  assert.equal(await tracked(), 12, 'each failing address is tracked (argon2 runs within the window)');
  const ok = await Promise.all(Array.from({ length: 6 }, (_, i) => signInFrom(srv, `127.0.2.${i + 1}`, 'admin123')));
  assert.deepEqual([...new Set(ok)], [200]);
  assert.equal(await tracked(), 12, 'a successful sign-in leaves nothing behind');
  await new Promise((r) => setTimeout(r, Math.max(0, t0 + 5200 - Date.now()))); // past the window: the failures are stale
  assert.equal(await signInFrom(srv, '127.0.3.1'), 401);
  assert.equal(await tracked(), 1, 'stale addresses were swept');
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

const handshake = (srv) => fetch(srv.url('/socket.io/?EIO=4&transport=polling'));

test('Engine.IO sessions: the node holds at most --max-eio-sessions; past it the handshake gets 503 JSON, and room comes back as sessions close', async () => {
  const srv = await herald(['--max-eio-sessions', '20', '--eio-handshake-rate', '0']);
  const answers = await Promise.all(Array.from({ length: 30 }, () => handshake(srv)));
  const open = [];
  for (const r of answers) {
    if (r.status === 200) open.push(JSON.parse((await r.text()).slice(1)).sid);
    else {
      assert.equal(r.status, 503);
      assert.match(r.headers.get('content-type'), /^application\/json/);
      assert.match((await r.json()).message, /too many Engine.IO sessions/);
    }
  }
  assert.equal(open.length, 20, 'sessions opened over every shard');
  // a WebSocket handshake past the limit is refused the same way, before the upgrade
  const refused = await new Promise((resolve, reject) => {
    const ws = new WebSocket(srv.wsUrl('/socket.io/?EIO=4&transport=websocket'));
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('open', () => reject(new Error('upgraded past the session limit')));
    ws.on('error', () => {});
  });
  assert.equal(refused, 503);
  for (const sid of open.slice(0, 5)) {
    const r = await fetch(srv.url(`/socket.io/?EIO=4&transport=polling&sid=${sid}`), { method: 'POST', body: '1' });
    assert.equal(await r.text(), 'ok');
  }
  await new Promise((r) => setTimeout(r, 50));
  const again = await Promise.all(Array.from({ length: 6 }, () => handshake(srv)));
  assert.deepEqual(again.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 503]);
  for (const r of again) await r.arrayBuffer();
});

test('Engine.IO handshakes: per-address rate (--eio-handshake-rate/-burst); past it 429 JSON, no session made', async () => {
  const srv = await herald(['--eio-handshake-rate', '5', '--eio-handshake-burst', '10']);
  const t0 = Date.now();
  const answers = await Promise.all(Array.from({ length: 25 }, () => handshake(srv)));
  const refill = Math.ceil(((Date.now() - t0) / 1000) * 5); // tokens back while the burst was served
  const statuses = answers.map((r) => r.status);
  const ok = statuses.filter((s) => s === 200).length;
  assert.ok(ok >= 10 && ok <= 11 + refill, `${statuses.join(',')} (refill ${refill})`);
  const limited = answers.find((r) => r.status === 429);
  assert.match((await limited.json()).message, /too many Engine.IO handshakes/);
  for (const r of answers) await r.arrayBuffer().catch(() => {});
  const health = await (await fetch(srv.url('/health'))).json();
  assert.ok(health.status === 'ok');
  await new Promise((r) => setTimeout(r, 400)); // two tokens back
  assert.equal((await handshake(srv)).status, 200);
});

test('Engine.IO polling output is bounded over the node (--max-polling-bytes): sessions that do not poll are closed past it, memory does not grow', async () => {
  const { createHmac } = await import('node:crypto');
  const secret = 'polling-bytes-secret';
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const mint = (sub) => {
    const t = Math.floor(Date.now() / 1000);
    const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(sub), role: 'user', iat: t, exp: t + 600 })}`;
    return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
  };
  const limit = 1024 * 1024;
  const srv = await herald(['--jwt-secret', secret, '--api-key', 'kp', '--max-polling-bytes', String(limit),
    '--json-max-message', '1000000', '--max-body-size', '2000000', '--eio-handshake-rate', '0']);
  const gauge = async () => Number(/^herald_eio_polling_bytes (\d+)$/m.exec(await (await fetch(srv.url('/metrics'))).text())[1]);
  const sids = [];
  for (let i = 0; i < 4; i++) { // four Socket.IO sockets over polling that stop polling once connected
    const sid = JSON.parse((await (await handshake(srv)).text()).slice(1)).sid;
    const q = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    assert.equal((await fetch(srv.url(q), { method: 'POST', body: `40${JSON.stringify({ token: mint(900 + i) })}` })).status, 200);
    assert.match(await (await fetch(srv.url(q))).text(), /^40\{/); // the CONNECT answer
    sids.push(sid);
  }
  for (let round = 0; round < 2; round++)
    for (let i = 0; i < 4; i++) {
      const r = await fetch(srv.url('/api/v1/publish'), {
        method: 'POST', headers: { 'X-API-Key': 'kp' },
        body: JSON.stringify({ topic: `user:${900 + i}`, type: 'data', data: { blob: 'p'.repeat(300000) } }),
      });
      assert.equal(r.status, 200);
      assert.ok(await gauge() <= limit, 'within the bound');
    }
  // 8 x 300 kB were pushed: at most 1 MiB waits, the sessions pushed past it were closed
  const states = await Promise.all(sids.map(async (sid) => {
    const r = await fetch(srv.url(`/socket.io/?EIO=4&transport=polling&sid=${sid}`));
    return r.status === 200 ? (await r.text()).length : r.status;
  }));
  assert.ok(states.filter((s) => s === 400).length >= 1, `some session closed: ${states.join(',')}`);
  assert.ok(await gauge() <= limit);
});

test('Engine.IO sessions: after a flood of unauthenticated handshakes expires, resident memory returns near its baseline', async () => {
  // sessions live 2.5 s (ping interval + timeout: the flooder never polls again); no rate limit, so
  // one address can open tens of thousands within the session cap
  // no demo users: hashing their passwords at start (libsodium, 64 MiB) would be in the baseline
  const srv = await herald(['--max-eio-sessions', '200000', '--eio-handshake-rate', '0', '--ping-interval', '1500',
    '--ping-timeout', '1000', '--connect-timeout', '2500', '--demo-users', 'false']);
  const pid = srv.child.pid;
  const metric = async (name) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(srv.url('/metrics'))).text())[1]);
  // ASan/TSan keep freed memory in their own allocator (quarantine): RSS says nothing there
  const sanitized = /lib(asan|tsan)|libclang_rt\.(asan|tsan)/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));
  let base = await rssBytes(pid); // settled: two reads 200 ms apart within 1 MiB
  for (let i = 0, prev = 0; i < 25 && Math.abs(base - prev) > 1048576; i++) {
    prev = base;
    await new Promise((r) => setTimeout(r, 200));
    base = await rssBytes(pid);
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  let made = 0, peakSessions = 0;
  const until = Date.now() + 3000;
  const one = () => new Promise((resolve, reject) => {
    const req = http.get(srv.url('/socket.io/?EIO=4&transport=polling'), { agent }, (res) => {
      res.resume();
      res.on('end', () => { if (res.statusCode === 200) made++; resolve(res.statusCode); });
    });
    req.on('error', reject);
  });
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (Date.now() < until) assert.equal(await one(), 200);
  }));
  agent.destroy();
  peakSessions = await metric('herald_eio_sessions');
  const peak = await rssBytes(pid);
  const growth = peak - base;
  for (let i = 0; i < 60 && await metric('herald_eio_sessions') > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await metric('herald_eio_sessions'), 0, 'every session expired');
  if (sanitized) return; // the sessions expired; memory is not the allocator's to judge here
  assert.ok(growth >= 3 * 1024 * 1024, `the flood (${made} sessions, ${peakSessions} at once) grew RSS by ${growth} bytes only`);
  const near = base + 0.3 * growth + 2 * 1024 * 1024; // generous: what the maps and the loop keep
  let rss = await rssBytes(pid);
  for (let i = 0; i < 40 && rss > near; i++) { // the trim runs on a 2 s timer after the wave of closes
    await new Promise((r) => setTimeout(r, 100));
    rss = await rssBytes(pid);
  }
  const mb = (x) => (x / 1048576).toFixed(1);
  assert.ok(rss <= near, `RSS ${mb(base)} MB before, ${mb(peak)} MB after ${made} handshakes (${peakSessions} sessions at once), ` +
    `${mb(rss)} MB once they expired (at most ${mb(near)} MB expected)`);
  assert.ok(await metric('herald_memory_trims_total') >= 1);
});
