// clients/miniprogram/herald-wx.js — the JSON-protocol client for WeChat mini programs, which runs
// clients/js/herald-client.js over wx.connectSocket — against the REAL server through a faithful `wx`
// shim (lib/wx-shim.mjs: SocketTask callbacks, errMsg strings, synchronous storage) with no global
// URL (mini programs have none): the clientId kept in wx storage and reused, subscribe + publish +
// auto-ack (nothing left in the inbox), heartbeats over the SocketTask, a refused token, and a
// server restart (SIGTERM, same port and data dir) with the client reconnecting by itself and every
// notification published before and after arriving exactly once, in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHerald } from './lib/server.mjs';
import { createWx } from './lib/wx-shim.mjs';

const require = createRequire(import.meta.url);
const HeraldClient = require(fileURLToPath(new URL('../../clients/js/herald-client.js', import.meta.url)));
const HeraldWx = require(fileURLToPath(new URL('../../clients/miniprogram/herald-wx.js', import.meta.url)));

const SECRET = 'miniprogram-secret-0123456789abcdef';
const API_KEY = 'miniprogram-api-key-0123';
const ARGS = ['--jwt-secret', SECRET, '--api-key', API_KEY, '--demo-users', 'false'];
const FAST = { initialDelay: 100, maxDelay: 400, factor: 2, jitter: 0 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function mint(sub, role = 'user') {
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, role, iat: now, exp: now + 3600 })}`;
  return `${signing}.${crypto.createHmac('sha256', SECRET).update(signing).digest('base64url')}`;
}

/** POST /api/v1/publish with node:http (no URL global needed); the JSON answer. */
function publish(port, body) {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/api/v1/publish', method: 'POST',
      headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), Connection: 'close' } },
    (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(data)) : reject(new Error(`publish ${res.statusCode} ${data}`))));
    });
    req.on('error', reject);
    req.end(text);
  });
}

async function until(cond, ms, what) {
  for (const end = Date.now() + ms; !cond(); await sleep(10)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

let savedURL;
before(() => { savedURL = globalThis.URL; globalThis.URL = undefined; }); // as in a mini program
after(() => { globalThis.URL = savedURL; });

/** A mini-program client on wx with a record of what it got. */
function wxClient(wx, port, opts = {}) {
  const c = HeraldWx.create(HeraldClient, { wx, url: `ws://127.0.0.1:${port}/api/v1/ws`, reconnect: FAST, heartbeatInterval: 0, ...opts });
  c.got = [];
  c.states = [];
  c.errors = [];
  c.on('notification', (data, env) => c.got.push(env));
  c.on('state', (s) => c.states.push(s));
  c.on('error', (e) => c.errors.push(e));
  return c;
}

test('mini program client: stored clientId, subscribe, publish, auto-ack, heartbeat; a refused token', async () => {
  const srv = await startHerald(ARGS);
  const wx = createWx();
  try {
    const c = wxClient(wx, srv.port, { token: mint('mp-1'), heartbeatInterval: 150 });
    await until(() => c.connected, 5000, 'connect');
    const stored = wx.getStorageSync(HeraldWx.CLIENT_ID_KEY);
    assert.match(stored, /^wx-[a-z0-9]{20}$/);
    assert.equal(c.clientId, stored);
    await c.subscribe('user:mp-1');
    const p = await publish(srv.port, { topic: 'user:mp-1', type: 'notification', data: { title: '订单已发货' } });
    await until(() => c.got.length === 1, 5000, 'the notification');
    assert.equal(c.got[0].messageId, p.messageId);
    assert.deepEqual(c.got[0].data, { title: '订单已发货' });
    await until(() => wx.log.sent.some((f) => JSON.parse(f).type === 'ack'), 2000, 'the ack over the SocketTask');
    await sleep(400);
    assert.ok(wx.log.sent.filter((f) => JSON.parse(f).type === 'heartbeat').length >= 2, 'heartbeats sent');
    assert.ok(c.connected, 'heartbeats answered: still connected');
    c.close();
    await until(() => wx.log.closes.length === 1, 3000, 'closed');

    // the same mini program starts again: the same clientId from storage, and nothing waits in the inbox
    const again = wxClient(wx, srv.port, { token: mint('mp-1') });
    assert.equal(again.clientId, stored);
    await until(() => again.connected, 5000, 'reconnect');
    await again.subscribe('user:mp-1');
    await sleep(200);
    assert.deepEqual(again.got, [], 'acked: not redelivered');
    again.close();

    const bad = wxClient(createWx(), srv.port, { token: 'not-a-token', reconnect: false });
    await until(() => bad.errors.length > 0, 5000, 'the refusal');
    assert.ok(bad.errors.some((e) => e.code === 1001), JSON.stringify(bad.errors.map((e) => [e.code, e.message])));
    assert.equal(bad.connected, false);
    bad.close();
  } finally {
    await srv.stop();
  }
});

test('mini program client across a server restart: reconnects by itself, nothing lost or duplicated', { timeout: 30000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-mp-'));
  let srv = await startHerald(ARGS, { dataDir });
  const port = srv.port;
  const wx = createWx();
  const c = wxClient(wx, port, { token: mint('mp-2') });
  try {
    await until(() => c.connected, 5000, 'connect');
    await c.subscribe('user:mp-2');
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push((await publish(port, { topic: 'user:mp-2', type: 'notification', data: { i } })).messageId);
    await until(() => c.got.length === 5, 5000, 'the first five');
    await srv.stop();
    await until(() => !c.connected, 5000, 'the client notices');
    srv = await startHerald(ARGS, { dataDir, port });
    await until(() => c.connected, 10000, 'the client reconnects by itself');
    assert.ok(wx.log.tasks >= 2, 'a new SocketTask');
    await sleep(200); // resubscribed
    for (let i = 5; i < 10; i++) sent.push((await publish(port, { topic: 'user:mp-2', type: 'notification', data: { i } })).messageId);
    await until(() => c.got.length >= 10, 5000, 'the next five');
    await sleep(300);
    assert.deepEqual(c.got.map((e) => e.data.i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each once, in order');
    assert.deepEqual(c.got.map((e) => e.messageId), sent);
  } finally {
    c.close();
    await srv.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
