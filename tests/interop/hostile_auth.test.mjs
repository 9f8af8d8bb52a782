// Hostile input against authentication and the browser-facing surface (issue 11, "Authentication
// and the browser"): each test sends what an attacker would and asserts the safe answer, against a
// real herald started with startHerald. Bounded in time: every wait has a timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';

const SECRET = 'hostile-auth-secret-0123456789abcdef';
const API_KEY = 'hostile-auth-api-key-0123';
const ARGS = ['--jwt-secret', SECRET, '--api-key', API_KEY, '--demo-users', 'false'];
const WAIT = 5000;

const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
/** An HS256 token with these claims (and header fields). */
function sign(claims, header = {}, secret = SECRET) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT', ...header })}.${b64url(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
const now = () => Math.floor(Date.now() / 1000);
const mint = (sub, role = 'admin') => sign({ sub: String(sub), role, iat: now(), exp: now() + 3600 });

/** Opens /api/v1/ws with this query; resolves {frames, code} when the server closes or after ms. */
function wsSession(srv, query, ms = 1500) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?${query}`), { perMessageDeflate: false });
    const frames = [];
    const timer = setTimeout(() => { ws.terminate(); resolve({ frames, code: null }); }, ms);
    ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
    ws.on('close', (code) => { clearTimeout(timer); resolve({ frames, code }); });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

let srv;
before(async () => { srv = await startHerald(ARGS); });
after(async () => { await srv?.stop(); });

test('connect frame: a clientId with quotes cannot inject keys (built with the JSON library)', async () => {
  const evil = 'a","admin":true,"x":"';
  const r = await wsSession(srv, `token=${mint(1)}&protocol=1.0&clientId=${encodeURIComponent(evil)}`, 500);
  assert.equal(r.frames[0].type, 'connect');
  assert.deepEqual(Object.keys(r.frames[0].data).sort(), ['clientId', 'serverTime']);
  assert.equal(r.frames[0].data.clientId, evil);
});

test('clientId: too long, control or non-ASCII characters are refused; a valid one is echoed as JSON', async () => {
  for (const bad of ['x'.repeat(72), 'a\tb', 'a b', 'caf\u00e9', 'a\u0001']) {
    const r = await wsSession(srv, `token=${mint(2)}&protocol=1.0&clientId=${encodeURIComponent(bad)}`);
    assert.equal(r.code, 1008, JSON.stringify(bad));
    assert.equal(r.frames[0]?.data?.code, 2000, JSON.stringify(bad));
  }
  const ok = 'x'.repeat(71);
  const r = await wsSession(srv, `token=${mint(3)}&protocol=1.0&clientId=${ok}`, 500);
  assert.equal(r.frames[0].type, 'connect');
  assert.deepEqual(Object.keys(r.frames[0].data).sort(), ['clientId', 'serverTime']);
  assert.equal(r.frames[0].data.clientId, ok);
  const q = await wsSession(srv, `token=${mint(4)}&protocol=1.0&clientId=${encodeURIComponent('a"b\\c')}`, 500);
  assert.equal(q.frames[0].type, 'connect');
  assert.equal(q.frames[0].data.clientId, 'a"b\\c');
  const g = await wsSession(srv, `token=${mint(5)}&protocol=1.0`, 500);
  assert.match(g.frames[0].data.clientId, /^c.{15}$/);
});

test('integer query parameters are parsed strictly', async () => {
  const paths = ['/api/v4/notifications', '/api/v4/chat/conversations'];
  for (const bad of ['limit=%2B5', 'limit=+5', 'limit=%205', 'limit=5x', 'limit=0x5', 'limit=', 'before=-1', 'before=%201', 'limit=5%00', `limit=${'0'.repeat(40)}5`]) {
    const res = await fetch(srv.url(`/api/v4/notifications?${bad}`), { headers: { Authorization: `Bearer ${mint(6)}` } });
    if (bad === 'limit=') { assert.equal(res.status, 200, bad); continue; }
    assert.equal(res.status, 400, bad);
    const body = await res.json();
    assert.equal(typeof body.message, 'string', bad);
  }
  const res = await fetch(srv.url('/api/v4/notifications?limit=5&before=10'), { headers: { Authorization: `Bearer ${mint(6)}` } });
  assert.equal(res.status, 200);
  void paths;
});

test('pages and assets carry CSP (no inline script, no framing), nosniff and Referrer-Policy', async () => {
  for (const path of ['/', '/chat.html', '/admin/login.html', '/assets/app.js']) {
    const res = await fetch(srv.url(path));
    assert.equal(res.status, 200, path);
    const csp = res.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self'(;|$)/, path);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('referrer-policy'), 'same-origin', path);
    await res.arrayBuffer();
  }
});

test("CORS '*' with credentials: never reflects an origin (nor null) with Allow-Credentials", async () => {
  const s = await startHerald([...ARGS, '--cors-origin', 'https://good.example,*', '--cors-credentials', 'true']);
  try {
    for (const origin of ['https://evil.example', 'null']) {
      const res = await fetch(s.url('/health'), { headers: { Origin: origin } });
      await res.arrayBuffer();
      assert.equal(res.headers.get('access-control-allow-origin'), '*', origin);
      assert.equal(res.headers.get('access-control-allow-credentials'), null, origin);
    }
    const res = await fetch(s.url('/health'), { headers: { Origin: 'https://good.example' } });
    await res.arrayBuffer();
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://good.example');
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
  } finally { await s.stop(); }
});

test('--ws-origins applies to Engine.IO polling: 403 {code:4, message:"Forbidden"}', async () => {
  const s = await startHerald([...ARGS, '--ws-origins', 'https://good.example']);
  try {
    const bad = await fetch(s.url('/socket.io/?EIO=4&transport=polling'), { headers: { Origin: 'https://evil.example' } });
    assert.equal(bad.status, 403);
    assert.deepEqual(await bad.json(), { code: 4, message: 'Forbidden' });
    const ok = await fetch(s.url('/socket.io/?EIO=4&transport=polling'), { headers: { Origin: 'https://good.example' } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^0\{"sid"/);
  } finally { await s.stop(); }
});

test('notification links: site paths, or http(s) URLs on --link-hosts only', async () => {
  const s = await startHerald([...ARGS, '--link-hosts', 'shop.example, docs.example']);
  try {
    const send = (link) => fetch(s.url('/api/v4/notifications/send'), {
      method: 'POST', headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'info', title: 't', content: 'c', link }),
    });
    for (const good of ['/orders/1', '/', 'https://shop.example/o/1', 'http://SHOP.example', 'https://shop.example:8443/x?y#z', 'https://docs.example/a']) {
      const res = await send(good);
      assert.equal(res.status, 201, good);
      assert.equal((await res.json()).notification.link, good);
    }
    for (const bad of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'https://shop.example@evil.example/',
      'https://shop.example.evil.example/', 'https://evil.example#shop.example', 'https://shop.example:x/', 'https:///shop.example',
      'javascript:alert(1)', 'data:text/html,x', '/a b', 'HTTPS:evil.example']) {
      const res = await send(bad);
      assert.equal(res.status, 400, bad);
      const body = await res.json();
      assert.match(body.message, /link/, bad);
    }
  } finally { await s.stop(); }
  // default: no hosts, site paths only
  const res = await fetch(srv.url('/api/v4/notifications/send'), {
    method: 'POST', headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'info', title: 't', content: 'c', link: 'https://example.com/x' }),
  });
  assert.equal(res.status, 400);
});

test('JWT: crit header, no exp, too long a lifetime and pattern characters in sub are refused', async () => {
  const me = (token) => fetch(srv.url('/api/v4/auth/me'), { headers: { Authorization: `Bearer ${token}` } });
  const ok = await me(mint(9));
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
  const refused = [
    ['crit', sign({ sub: '9', role: 'admin', exp: now() + 60 }, { crit: ['b64'], b64: true })],
    ['no exp', sign({ sub: '9', role: 'admin' })],
    ['30 days', sign({ sub: '9', role: 'admin', iat: now(), exp: now() + 30 * 86400 })],
    ['sub *', sign({ sub: '*', role: 'admin', exp: now() + 60 })],
    ['sub {x}', sign({ sub: 'a{x}', role: 'admin', exp: now() + 60 })],
    ['sub a,b', sign({ sub: 'a,b', role: 'admin', exp: now() + 60 })],
    ['sub control', sign({ sub: 'a\u0007', role: 'admin', exp: now() + 60 })],
  ];
  for (const [what, token] of refused) {
    const res = await me(token);
    assert.equal(res.status, 401, what);
    await res.arrayBuffer();
    const r = await wsSession(srv, `token=${token}&protocol=1.0`);
    assert.equal(r.frames[0]?.data?.code, 1001, what);
    assert.equal(r.code, 1008, what);
  }
  // --jwt-max-ttl 0: no cap, a token without exp passes
  const s = await startHerald([...ARGS, '--jwt-max-ttl', '0']);
  try {
    const res = await fetch(s.url('/api/v4/auth/me'), { headers: { Authorization: `Bearer ${sign({ sub: '9', role: 'admin' })}` } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  } finally { await s.stop(); }
});

test('Socket.IO: a socket is disconnected by the server once its token expires (as the JSON protocol closes)', async () => {
  const { io } = await import('socket.io-client');
  const token = sign({ sub: 'exp-1', role: 'user', iat: now(), exp: now() + 2 });
  const socket = io(srv.url('/'), { auth: { token }, transports: ['websocket'], reconnection: false });
  try {
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const t0 = Date.now();
    const reason = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('still connected 5 s later')), 5000);
      socket.once('disconnect', (r) => { clearTimeout(timer); resolve(r); });
    });
    assert.equal(reason, 'io server disconnect');
    assert.ok(Date.now() - t0 < 4500);
  } finally {
    socket.close();
  }
});
