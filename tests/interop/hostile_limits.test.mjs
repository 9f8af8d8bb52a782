// Limits and reference-server behaviour under hostile or careless clients (issue 11, "Behave as the
// reference servers do" and "Abuse must stay bounded"): each test does what such a client would and
// asserts the bounded, clearly answered outcome, against a real herald. Every wait has a timeout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });
async function herald(args, opts) {
  const s = await startHerald(args, opts);
  servers.push(s);
  return s;
}

test('Socket.IO CONNECT answer over polling: the GET carrying it carries nothing else, the event comes with the next GET', async () => {
  const srv = await herald(['--test-handlers', '--recovery-window', '0', '--ws-deflate', 'false']);
  const base = srv.url('/socket.io/?EIO=4&transport=polling');
  const open = await (await fetch(base)).text();
  const sid = JSON.parse(open.slice(1)).sid;
  const post = await fetch(`${base}&sid=${sid}`, { method: 'POST', body: '40' });
  assert.equal(await post.text(), 'ok');
  assert.match(await (await fetch(`${base}&sid=${sid}`)).text(), /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
  assert.equal(await (await fetch(`${base}&sid=${sid}`)).text(), '42["auth",{}]');
});

/** A GET on a connection of its own (no keep-alive pool): {status, body}. */
function getAlone(srv, path) {
  return new Promise((resolve, reject) => {
    const req = http.get(srv.url(path), { agent: false, headers: { Connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('no answer in time')));
  });
}

/** n idle TCP connections to srv (connected, sending nothing). */
async function idleSockets(srv, n) {
  const socks = [];
  for (let i = 0; i < n; i++) {
    socks.push(await new Promise((resolve, reject) => {
      const s = net.connect(srv.port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    }));
  }
  for (const s of socks) s.on('error', () => {});
  return socks;
}

/** Opens a WebSocket; resolves {code} when it closes, or {error} when the connection failed. */
function wsOutcome(url, ms = 5000) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => { ws.terminate(); resolve({ error: 'timeout' }); }, ms);
    ws.on('close', (code) => { clearTimeout(timer); resolve({ code }); });
    ws.on('error', (e) => { clearTimeout(timer); resolve({ error: e.message }); });
  });
}

test('over --max-connections /health still answers 200; other requests get 503', async () => {
  const srv = await herald(['--max-connections', '2']);
  const socks = await idleSockets(srv, 2);
  let health; // until both idle sockets are accepted (a shard's thread may start late on a busy machine)
  for (let i = 0; i < 40; i++) {
    health = await getAlone(srv, '/health');
    if (health.status !== 200 || JSON.parse(health.body).connections.total >= 3) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(health.status, 200, health.body);
  assert.equal(JSON.parse(health.body).status, 'ok');
  assert.ok(JSON.parse(health.body).connections.total >= 3, health.body);
  const page = await getAlone(srv, '/index.html');
  assert.equal(page.status, 503);
  assert.match(JSON.parse(page.body).message, /server full/);
  for (const s of socks) s.destroy();
});

test('past the refusal budget a connection waits in the listen queue (no reset) and gets close 1013 once there is room', async () => {
  // one shard: its listen queue is the one that fills (the budget is per node; the queues per shard)
  const srv = await herald(['--max-connections', '1', '--echo-endpoint', '--shards', '1']);
  const socks = await idleSockets(srv, 1 + 64 + 4); // the limit, the refusal budget, and some waiting
  await new Promise((r) => setTimeout(r, 200));
  const pending = wsOutcome(srv.wsUrl('/ws/echo'), 8000);
  await new Promise((r) => setTimeout(r, 300));
  for (const s of socks) s.destroy(); // room comes back: the waiting ones are accepted and refused politely
  assert.deepEqual(await pending, { code: 1013 });
});

test('a low open-file limit is named at start; running out of descriptors sheds new connections, keeps established ones, no busy loop', async () => {
  const srv = await herald(['--max-connections', '1000', '--echo-endpoint'], { openFiles: 128 });
  assert.match(srv.log, /open-file limit is below what --max-connections needs.*nofile=128 .*shortfall=\d+ connections_accepted_at_most=\d+/);
  const ws = new WebSocket(srv.wsUrl('/ws/echo'));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const echo = async (text) => {
    const got = new Promise((resolve) => ws.once('message', (m) => resolve(m.toString())));
    ws.send(text);
    return got;
  };
  assert.equal(await echo('before'), 'before');
  const flood = [];
  for (let i = 0; i < 160; i++) { // past the 128 descriptors
    const s = net.connect(srv.port, '127.0.0.1');
    s.on('error', () => {});
    flood.push(s);
  }
  await new Promise((r) => setTimeout(r, 500));
  const cpu = () => readFileSync(`/proc/${srv.child.pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0);
  const c0 = cpu();
  await new Promise((r) => setTimeout(r, 1000));
  const ticks = cpu() - c0; // clock ticks (100 per second): a spinning accept would take ~100
  assert.ok(ticks < 30, `${ticks} ticks of CPU in 1 s while out of descriptors`);
  assert.equal(await echo('during'), 'during', 'an established connection still works');
  for (const s of flood) s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await getAlone(srv, '/health')).status, 200);
  assert.equal(await echo('after'), 'after');
  ws.close();
});
