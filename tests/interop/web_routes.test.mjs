// The server's routes for the pages: `/admin` (a directory named without its slash) is redirected to
// `/admin/`, a browser asking for a missing page gets the HTML 404 page (web/404.html, status 404,
// the pages' Content-Security-Policy) while API and protocol paths keep their JSON 404 whatever
// Accept says, GET /api/v4/config tells the pages the UTC offset to show times in
// (--display-utc-offset, validated), and GET /api/v4/system/status gives admins the last status
// posted (what the dashboard's Status tile shows after a reload), whichever shard answers, and with
// HERALD_TEST_REDIS_URL whichever node of a cluster answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { startHerald, HERALD_BIN } from './lib/server.mjs';

const SECRET = 'web-routes-secret-0123456789abcdef';
const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
function mint(sub, role) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: String(sub), role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}
const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'; // what Chromium sends

let srv;
before(async () => { srv = await startHerald(['--jwt-secret', SECRET, '--demo-users', 'false', '--display-utc-offset', '-05:30']); });
after(async () => { await srv?.stop(); });

const get = (path, headers = {}) => fetch(srv.url(path), { headers, redirect: 'manual' });

test('/admin is redirected to /admin/ (query kept); /admin/ serves the console index', async () => {
  for (const [path, to] of [['/admin', '/admin/'], ['/admin?x=1&y=%20', '/admin/?x=1&y=%20']]) {
    const res = await get(path, { accept: HTML });
    await res.arrayBuffer();
    assert.equal(res.status, 301, path);
    assert.equal(res.headers.get('location'), to);
  }
  const index = await get('/admin/', { accept: HTML });
  assert.equal(index.status, 200);
  assert.match(await index.text(), /notifications\.html/);
  const other = await get('//admin', { accept: HTML }); // never a redirect to another host
  await other.arrayBuffer();
  assert.notEqual(other.status, 301);
});

test('a browser gets the HTML 404 page for a missing page; API and protocol paths keep the JSON 404', async () => {
  for (const path of ['/nope.html', '/admin/nope.html', '/no/such/dir/']) {
    const res = await get(path, { accept: HTML });
    assert.equal(res.status, 404, path);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
    const body = await res.text();
    assert.match(body, /<title data-i18n="notFound\.title">/, `${path}: the 404 page`);
    assert.doesNotMatch(body, /<script>/, 'no inline script');
  }
  // not a browser: JSON
  const plain = await get('/nope.html');
  assert.equal(plain.status, 404);
  assert.deepEqual(await plain.json(), { code: 404, message: 'no such resource' });
  for (const path of ['/api/v4/nope', '/api/v1/nope', '/health/nope', '/metrics/x', '/ws/nope', '/herald-client.js/x']) {
    const res = await get(path, { accept: HTML });
    assert.equal(res.status, 404, path);
    assert.match(res.headers.get('content-type'), /^application\/json/, path);
    assert.equal((await res.json()).code, 404, path);
  }
  const sio = await get('/socket.io/nope.js', { accept: HTML }); // Engine.IO answers in its own terms
  assert.match(sio.headers.get('content-type'), /^application\/json/);
  await sio.arrayBuffer();
});

test('GET /api/v4/config gives the display offset (no token needed); a malformed one is refused at start', async () => {
  const res = await get('/api/v4/config');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { display_utc_offset: '-05:30', time_offset: '+08:00' });
  for (const bad of ['+8', '+08:60', '+15:00', 'UTC', '']) {
    const run = spawnSync(HERALD_BIN, ['serve', '--port', '0', '--display-utc-offset', bad, '--web-root', ''], { encoding: 'utf8', timeout: 5000 });
    assert.notEqual(run.status, 0, `${JSON.stringify(bad)} is refused`);
    assert.match(run.stderr + run.stdout, /display-utc-offset/);
  }
});

test('GET /api/v4/system/status: nothing until a status is posted, then the last one on every shard (admins only)', async () => {
  const admin = { authorization: `Bearer ${mint(1, 'admin')}` };
  const none = await get('/api/v4/system/status', admin);
  assert.equal(none.status, 200);
  assert.deepEqual(await none.json(), { status: null, message: null, at: null });
  for (const [status, message] of [['degraded', 'replica lagging'], ['ok', null]]) {
    const posted = await fetch(srv.url('/api/v4/system/status'), {
      method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify(message ? { status, message } : { status }),
    });
    assert.equal(posted.status, 200, await posted.text());
    for (let i = 0; i < 6; i++) { // new connections: spread over the shards
      const res = await fetch(srv.url('/api/v4/system/status'), { headers: { ...admin, connection: 'close' } });
      const body = await res.json();
      assert.equal(body.status, status);
      assert.equal(body.message, message);
      assert.match(body.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$/);
    }
  }
  const user = await get('/api/v4/system/status', { authorization: `Bearer ${mint(2, 'user')}` });
  assert.equal(user.status, 403);
  const anonymous = await get('/api/v4/system/status');
  assert.equal(anonymous.status, 401);
});

const REDIS = process.env.HERALD_TEST_REDIS_URL;
test('GET /api/v4/system/status on another node of the cluster gives the status posted on the first', {
  skip: !REDIS && 'HERALD_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server and sets it)',
}, async () => {
  const args = ['--jwt-secret', SECRET, '--demo-users', 'false', '--redis-url', REDIS, '--redis-prefix', `web-routes-${randomBytes(4).toString('hex')}`];
  const a = await startHerald(args);
  const b = await startHerald(args);
  try {
    const admin = { authorization: `Bearer ${mint(1, 'admin')}`, 'content-type': 'application/json' };
    const deadline = Date.now() + 5000; // the nodes find each other through Redis
    while ((await (await fetch(b.url('/health'))).json()).cluster?.nodes < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const posted = await fetch(a.url('/api/v4/system/status'), { method: 'POST', headers: admin, body: JSON.stringify({ status: 'down', message: 'database failover' }) });
    assert.equal(posted.status, 200, await posted.text());
    let body;
    while (Date.now() < deadline + 5000) {
      body = await (await fetch(b.url('/api/v4/system/status'), { headers: admin })).json();
      if (body.status) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(body.status, 'down');
    assert.equal(body.message, 'database failover');
  } finally {
    await a.stop();
    await b.stop();
  }
});
