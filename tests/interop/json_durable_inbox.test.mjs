// The JSON protocol's inbox is durable: a notification delivered but not acknowledged survives a
// kill -9 of the server and comes back, with the same messageId, on the user's next connection;
// once acknowledged it is gone for good.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';

const SECRET = 'durable-inbox-secret';
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function token(sub, role = 'user') {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, role, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

/** Opens a JSON-protocol connection and collects the envelopes it receives. */
function connect(srv, sub) {
  const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?clientId=tab1&token=${token(sub)}`));
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(d)));
  const opened = new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  return { ws, frames, opened };
}

const until = async (check, ms = 5000) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) if (check()) return;
  throw new Error('timed out');
};

test('an unacknowledged notification survives kill -9 and is delivered once acknowledged', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-inbox-'));
  const args = ['--jwt-secret', SECRET, '--api-key', 'K', '--ack-timeout', '60000', '--demo-users', 'false'];
  let srv = await startHerald(args, { dataDir });
  try {
    const a = connect(srv, '7');
    await a.opened;
    a.ws.send(JSON.stringify({ type: 'subscribe', messageId: 's1', data: { topic: 'user:7' } }));
    await until(() => a.frames.some((f) => f.type === 'ack'));
    const res = await fetch(srv.url('/api/v1/publish'), {
      method: 'POST', headers: { 'X-API-Key': 'K' },
      body: JSON.stringify({ topic: 'user:7', type: 'notification', data: { title: 'keep me' } }),
    });
    assert.equal(res.status, 200);
    const { messageId } = await res.json();
    await until(() => a.frames.some((f) => f.type === 'notification'));
    srv.child.kill('SIGKILL'); // no ack was sent
    await srv.exited;
    a.ws.terminate();

    srv = await startHerald([...args, '--port', String(srv.port)], { dataDir });
    const b = connect(srv, '7');
    await until(() => b.frames.some((f) => f.type === 'notification'));
    const again = b.frames.filter((f) => f.type === 'notification');
    assert.equal(again.length, 1);
    assert.equal(again[0].messageId, messageId);
    assert.deepEqual(again[0].data, { title: 'keep me' });
    b.ws.send(JSON.stringify({ type: 'ack', data: { messageId } }));
    await new Promise((r) => setTimeout(r, 200));
    b.ws.close();
    await srv.stop();

    srv = await startHerald(args, { dataDir });
    const c = connect(srv, '7');
    await until(() => c.frames.some((f) => f.type === 'connect'));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(c.frames.filter((f) => f.type === 'notification').length, 0, 'acknowledged: not delivered again');
    c.ws.close();
  } finally {
    await srv.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});
