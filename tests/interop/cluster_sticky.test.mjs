// No sticky sessions (issue 9): three Herald nodes on one Redis (HERALD_TEST_REDIS_URL, its own
// --redis-prefix) behind a plain per-request round-robin HTTP proxy written here (node:http for
// requests, node:net for upgrades; no affinity of any kind). Contract tested:
//   - every node registers itself (/health cluster.registry: tag, url, age_ms) and sees the others;
//   - a polling-only socket.io-client 4.7.2 through the proxy connects, gets 50 acks and 50
//     broadcasts (emitted on another node) in order, with no error, although most of its requests
//     land on nodes that do not own its session (forwarded to the owner, X-Forwarded-For appended);
//   - a client with upgrade on, whose WebSocket upgrade the proxy sends to a node that is not the
//     owner, upgrades (the upgrade is piped to the owner) and keeps working over WebSocket;
//   - a forwarded request is never forwarded again (X-Herald-Forwarded), an unknown node tag is an
//     unknown session (400 code 1), a node that is gone gets a clear 502, not a hang;
//   - kill -9 of a node: it leaves every other node's registry within 15 s;
//   - a node that accepts and never answers: 504 after --ping-interval + --ping-timeout + 5 s, and
//     beyond --forward-max requests in flight a 503 at once.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { io as connect } from 'socket.io-client';
import { createClient } from 'redis';
import { startHerald } from './lib/server.mjs';
import { once, sleep, until } from './lib/wait.mjs';

const REDIS = process.env.HERALD_TEST_REDIS_URL;

async function health(srv) {
  return (await fetch(srv.url('/health'))).json();
}

/** The Engine.IO sid of a request URL, or null. */
function sidOf(url) {
  return new URL(url, 'http://x').searchParams.get('sid');
}

/**
 * A round-robin reverse proxy over backends ({port, tag}): each HTTP request goes to the next backend
 * on a fresh connection; an upgrade goes to the next backend that is NOT the session's owner (the
 * worst case for a balancer without affinity). Counts requests per backend and those that did not
 * land on their session's owner.
 */
function startProxy(backends) {
  let next = 0;
  const stats = { requests: 0, elsewhere: 0, upgrades: 0, upgradesElsewhere: 0 };
  const owner = (url) => { const sid = sidOf(url); return sid ? sid.slice(1, 4) : null; };
  const server = http.createServer((req, res) => {
    const b = backends[next++ % backends.length];
    stats.requests++;
    if (owner(req.url) && owner(req.url) !== b.tag) stats.elsewhere++;
    const up = http.request({ host: '127.0.0.1', port: b.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (ures) => {
      res.writeHead(ures.statusCode, ures.headers);
      ures.pipe(res);
    });
    up.on('error', (err) => { res.writeHead(599); res.end(String(err)); });
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    stats.upgrades++;
    let b = backends[next++ % backends.length];
    while (b.tag === owner(req.url)) b = backends[next++ % backends.length];
    if (owner(req.url)) stats.upgradesElsewhere++;
    stats.upgradePort = b.port;
    const up = net.connect(b.port, '127.0.0.1', () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(raw + '\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    server, stats, url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  })));
}

/** A raw polling handshake on srv: the new session's sid. */
async function handshake(srv) {
  const text = await (await fetch(srv.url('/socket.io/?EIO=4&transport=polling'))).text();
  return JSON.parse(text.slice(1)).sid;
}

describe('no sticky sessions: three Herald nodes behind a round-robin proxy', { skip: !REDIS && 'HERALD_TEST_REDIS_URL is not set (scripts/test.sh starts a redis-server and sets it)' }, () => {
  const prefix = `herald-sticky-${crypto.randomBytes(4).toString('hex')}`;
  let nodes = [], proxy, redis;
  const sockets = [];

  before(async () => {
    const args = ['--redis-url', REDIS, '--redis-prefix', prefix, '--test-handlers'];
    nodes = await Promise.all([startHerald(args), startHerald(args), startHerald(args)]);
    // every node sees all three in its registry
    const regs = await until(async () => {
      const all = await Promise.all(nodes.map(health));
      return all.every((h) => h.cluster.registry?.length === 3) && all.map((h) => h.cluster.registry);
    }, 5000, 'three nodes registered');
    for (const [i, n] of nodes.entries()) {
      const self = regs[i].find((e) => e.self);
      assert.equal(self.url, n.url('').replace(/\/$/, ''), 'the default advertised URL is the listen address');
      n.tag = self.tag;
      assert.match(n.tag, /^[A-Za-z0-9_-]{3}$/);
      for (const e of regs[i]) assert.ok(e.age_ms >= 0 && e.age_ms < 5000, `age_ms ${e.age_ms}`);
    }
    proxy = await startProxy(nodes.map((n) => ({ port: n.port, tag: n.tag })));
    redis = createClient({ url: REDIS });
    await redis.connect();
  });

  after(async () => {
    for (const s of sockets) s.disconnect();
    await proxy?.close();
    await redis?.quit();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  function client(url, opts) {
    const s = connect(url, { forceNew: true, reconnection: false, ...opts });
    sockets.push(s);
    return s;
  }

  test('a polling-only client through the proxy: 50 acks, 50 broadcasts, no error', { timeout: 30000 }, async () => {
    const errors = [];
    const p = client(proxy.url, { transports: ['polling'] });
    p.on('connect_error', (e) => errors.push(`connect_error ${e.message}`));
    p.on('disconnect', (r) => errors.push(`disconnect ${r}`));
    const got = [];
    p.on('msg', (...args) => got.push(args[0]));
    await once(p, 'connect');
    const owner = p.io.engine.id.slice(1, 4);
    assert.ok(nodes.some((n) => n.tag === owner), 'the sid names one of the nodes');
    for (let i = 0; i < 50; i++) assert.deepEqual(await p.timeout(5000).emitWithAck('echo', { i }), { i });
    // 50 broadcasts emitted on a node that does not own the session, over WebSocket
    const other = nodes.find((n) => n.tag !== owner);
    const w = client(other.url('/'), { transports: ['websocket'] });
    await once(w, 'connect');
    for (let i = 0; i < 50; i++) w.emit('broadcast', i);
    await until(() => got.length >= 50, 10000, `50 broadcasts (got ${got.length})`);
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i), 'every broadcast once, in order');
    assert.equal(p.io.engine.transport.name, 'polling');
    assert.ok(proxy.stats.elsewhere >= 20, `requests that landed on a node not owning the session: ${proxy.stats.elsewhere} of ${proxy.stats.requests}`);
    assert.deepEqual(errors, []);
    assert.ok(p.connected);
  });

  test('a client upgrades to WebSocket through a node that does not own its session', { timeout: 20000 }, async () => {
    const errors = [];
    const c = client(proxy.url, { transports: ['polling', 'websocket'] });
    c.on('connect_error', (e) => errors.push(`connect_error ${e.message}`));
    c.on('disconnect', (r) => errors.push(`disconnect ${r}`));
    await once(c, 'connect');
    if (c.io.engine.transport.name !== 'websocket') await once(c.io.engine, 'upgrade', 10000);
    assert.equal(c.io.engine.transport.name, 'websocket');
    assert.ok(proxy.stats.upgradesElsewhere >= 1, 'the upgrade went to a node that forwarded it');
    const via = nodes.find((n) => n.port === proxy.stats.upgradePort);
    assert.notEqual(via.tag, c.io.engine.id.slice(1, 4));
    assert.ok((await health(via)).websocket.byProtocol.forwarded >= 1, 'the forwarding node counts its pipe');
    for (let i = 0; i < 10; i++) assert.deepEqual(await c.timeout(5000).emitWithAck('echo', `ws${i}`), `ws${i}`);
    const big = 'x'.repeat(300000); // more than one read each way through the pipe
    assert.equal((await c.timeout(5000).emitWithAck('echo', big)).length, big.length);
    assert.deepEqual(errors, []);
  });

  test('forwarding: X-Forwarded-For appended, never forwarded twice, unknown node = unknown session', { timeout: 15000 }, async () => {
    // a fake node in the registry whose URL is a plain HTTP server of this test
    const seen = [];
    const fake = http.createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8', 'X-Fake': 'yes' });
      res.end('6');
    });
    await new Promise((r) => fake.listen(0, r)); // every address: "localhost" may resolve to ::1 or 127.0.0.1
    const fakeUrl = `http://127.0.0.1:${fake.address().port}`;
    // and one whose URL is node 1 although the tag is not node 1's (a stale entry): no loop
    const [secs] = await redis.time().then((t) => [t.getTime()]);
    await redis.hSet(`${prefix}#herald#nodes`, {
      zzz: JSON.stringify({ url: fakeUrl, uid: 'fake01' }),
      yyy: JSON.stringify({ url: nodes[1].url('').replace(/\/$/, ''), uid: 'fake02' }),
      www: JSON.stringify({ url: `http://localhost:${fake.address().port}`, uid: 'fake04' }), // a name: resolved off the loop
    });
    await redis.zAdd(`${prefix}#herald#nodes#seen`, ['zzz', 'yyy', 'www'].map((value) => ({ score: secs, value })));
    try {
      await until(async () => (await health(nodes[0])).cluster.registry.length === 6, 3000, 'fake nodes seen');
      let res = await fetch(nodes[0].url('/socket.io/?EIO=4&transport=polling&sid=Azzz0123456789abcdef'), { headers: { 'X-Forwarded-For': '203.0.113.7' } });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '6');
      assert.equal(res.headers.get('x-fake'), 'yes');
      assert.equal(seen.length, 1);
      assert.equal(seen[0]['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
      assert.equal(seen[0]['x-herald-forwarded'], nodes[0].tag);
      res = await fetch(nodes[0].url('/socket.io/?EIO=4&transport=polling&sid=Awww0123456789abcdef'), { method: 'POST', body: '2' });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '6');
      assert.equal(seen.length, 2);
      // the stale entry: node 0 forwards to node 1, which must not forward again
      res = await fetch(nodes[0].url('/socket.io/?EIO=4&transport=polling&sid=Ayyy0123456789abcdef'));
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { code: 1, message: 'Session ID unknown' });
      // a request that says it was forwarded is not forwarded
      res = await fetch(nodes[0].url('/socket.io/?EIO=4&transport=polling&sid=Azzz0123456789abcdef'), { headers: { 'X-Herald-Forwarded': 'abc' } });
      assert.equal(res.status, 400);
      assert.equal(seen.length, 2);
      // a tag no node has
      res = await fetch(nodes[0].url('/socket.io/?EIO=4&transport=polling&sid=A!!!0123456789abcdef'));
      assert.deepEqual([res.status, await res.json()], [400, { code: 1, message: 'Session ID unknown' }]);
    } finally {
      await redis.hDel(`${prefix}#herald#nodes`, ['zzz', 'yyy', 'www']);
      await redis.zRem(`${prefix}#herald#nodes#seen`, ['zzz', 'yyy', 'www']);
      fake.closeAllConnections?.();
      await new Promise((r) => fake.close(r));
    }
  });

  test('kill -9 of a node: a clear 502 for its sessions, and it leaves the registry within 15 s', { timeout: 30000 }, async () => {
    const victim = nodes[2];
    const sid = await handshake(victim);
    let res = await fetch(nodes[0].url(`/socket.io/?EIO=4&transport=polling&sid=${sid}`), { method: 'POST', body: '40', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(res.status, 200, 'forwarded while the owner lives');
    victim.child.kill('SIGKILL');
    await victim.exited;
    const killedAt = Date.now();
    const t0 = Date.now();
    res = await fetch(nodes[0].url(`/socket.io/?EIO=4&transport=polling&sid=${sid}`));
    assert.equal(res.status, 502);
    const body = await res.json();
    assert.equal(body.code, 502);
    assert.match(body.message, /cannot be reached/);
    assert.ok(Date.now() - t0 < 4000, 'answered at once, no hang');
    for (const n of nodes.slice(0, 2)) {
      await until(async () => !(await health(n)).cluster.registry.some((e) => e.tag === victim.tag), 15000 - (Date.now() - killedAt), 'the killed node leaves the registry');
    }
    const gone = Date.now() - killedAt;
    assert.ok(gone < 15000, `dropped after ${gone} ms`);
    // now its sessions are unknown
    res = await fetch(nodes[0].url(`/socket.io/?EIO=4&transport=polling&sid=${sid}`));
    assert.equal(res.status, 400);
    const h = await health(nodes[0]);
    assert.equal(h.cluster.registry.length, 2);
    await victim.stop(); // already exited: removes its data directory, checks its log
    nodes = nodes.slice(0, 2);
  });

  test('a node that never answers: 504 in bounded time; beyond --forward-max a 503 at once', { timeout: 20000 }, async () => {
    const held = [];
    const mute = net.createServer((sock) => held.push(sock)); // accepts, reads, never answers
    await new Promise((r) => mute.listen(0, '127.0.0.1', r));
    const extra = await startHerald(['--redis-url', REDIS, '--redis-prefix', prefix, '--test-handlers', '--shards', '1',
      '--forward-max', '1', '--ping-interval', '1000', '--ping-timeout', '1000']);
    const now = (await redis.time()).getTime();
    await redis.hSet(`${prefix}#herald#nodes`, 'xxx', JSON.stringify({ url: `http://127.0.0.1:${mute.address().port}`, uid: 'fake03' }));
    await redis.zAdd(`${prefix}#herald#nodes#seen`, [{ score: now, value: 'xxx' }]);
    try {
      await until(async () => (await health(extra)).cluster.registry.some((e) => e.tag === 'xxx'), 3000, 'mute node seen');
      const t0 = Date.now();
      const first = fetch(extra.url('/socket.io/?EIO=4&transport=polling&sid=Axxx0123456789abcdef'));
      await until(() => held.length === 1, 2000, 'the request reached the mute node');
      const second = await fetch(extra.url('/socket.io/?EIO=4&transport=polling&sid=Axxx0123456789abcdef'));
      assert.equal(second.status, 503, 'over --forward-max');
      assert.match((await second.json()).message, /too many/);
      const res = await first;
      const took = Date.now() - t0;
      assert.equal(res.status, 504);
      assert.match((await res.json()).message, /did not answer in time/);
      assert.ok(took >= 6000 && took < 10000, `answered after ${took} ms (1000 + 1000 + 5000 expected)`);
    } finally {
      for (const s of held) s.destroy();
      mute.close();
      await redis.hDel(`${prefix}#herald#nodes`, 'xxx');
      await redis.zRem(`${prefix}#herald#nodes#seen`, 'xxx');
      await extra.stop();
    }
  });
});

test('--advertise-url must be http://host[:port]: anything else is refused at start, naming the option', async () => {
  for (const bad of ['https://a:1', 'http://a:1/path', 'http://', 'a:1', 'http://user@a:1']) {
    await assert.rejects(startHerald(['--advertise-url', bad]), (err) => /advertise-url/.test(err.message), bad);
  }
});
