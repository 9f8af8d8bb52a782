// A single node's topic history survives a restart (docs/cluster-json.md, "A single node"): after a
// graceful stop a subscribe with lastSequence replays what was published before, with the same
// message ids and sequences, says recovered: true, and the topic's sequences go on without a gap;
// after kill -9 what was saved (every 200 ms) is replayed too, but recovered is false (the last
// messages before a crash may be missing) and the sequences go on from the new process's base.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';

const SECRET = 'history-restart-secret-0123456789abcdef';
const API_KEY = 'history-restart-key';
const ARGS = ['--jwt-secret', SECRET, '--api-key', API_KEY];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function adminToken() {
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'admin', role: 'admin', iat: now, exp: now + 3600 })}`;
  return `${signing}.${crypto.createHmac('sha256', SECRET).update(signing).digest('base64url')}`;
}

/** Opens a JSON client, subscribes (with lastSequence when given) and collects `count` messages. */
async function subscribe(srv, topic, data, count) {
  const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?token=${adminToken()}`), { perMessageDeflate: false });
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'subscribe', messageId: 'sub1', data: { topic, ...data } }));
  const end = Date.now() + 5000;
  const got = () => frames.filter((f) => f.topic === topic && f.type === 'data');
  while (!frames.some((f) => f.type === 'ack' && f.data.messageId === 'sub1') || got().length < count) {
    if (Date.now() > end) throw new Error(`timed out: ${JSON.stringify(frames)}`);
    await sleep(20);
  }
  ws.close();
  return { ack: frames.find((f) => f.type === 'ack').data, messages: got() };
}

async function publish(srv, topic, data) {
  const res = await fetch(srv.url('/api/v1/publish'), {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body: JSON.stringify({ topic, type: 'data', data }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

test('topic history across a graceful stop and a crash of a single node', { timeout: 60000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-history-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const topic = 'news';
  let srv = await startHerald(ARGS, { dataDir });
  const { ack: first } = await subscribe(srv, topic, {}, 0);
  const before = [];
  for (let i = 0; i < 3; i++) before.push(await publish(srv, topic, { i }));
  assert.deepEqual(before.map((p) => p.sequence), [1, 2, 3].map((k) => first.sequence + k));
  assert.deepEqual(await srv.stop(), { code: 0, signal: null });

  srv = await startHerald(ARGS, { dataDir });
  let r = await subscribe(srv, topic, { lastSequence: first.sequence }, 3);
  assert.deepEqual([r.ack.recovered, r.ack.sequence], [true, first.sequence + 3]);
  assert.deepEqual(r.messages.map((m) => m.messageId), before.map((p) => p.messageId));
  assert.deepEqual(r.messages.map((m) => [m.sequence, m.data.i]), before.map((p, i) => [p.sequence, i]));
  r = await subscribe(srv, topic, { lastSequence: first.sequence + 1 }, 2);
  assert.deepEqual(r.messages.map((m) => m.data.i), [1, 2]);
  const next = await publish(srv, topic, { i: 3 });
  assert.equal(next.sequence, first.sequence + 4, 'no gap after a graceful stop');

  const late = [await publish(srv, topic, { i: 4 }), await publish(srv, topic, { i: 5 })];
  await sleep(600); // saved by the 200 ms timer
  assert.deepEqual(await srv.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });

  srv = await startHerald(ARGS, { dataDir });
  t.after(() => srv.stop());
  r = await subscribe(srv, topic, { lastSequence: next.sequence }, 2);
  assert.equal(r.ack.recovered, false, 'after a crash the last messages may be missing');
  assert.deepEqual(r.messages.map((m) => m.messageId), late.map((p) => p.messageId));
  const after = await publish(srv, topic, { i: 6 });
  assert.ok(after.sequence > late[1].sequence, `${after.sequence} > ${late[1].sequence}`);
  r = await subscribe(srv, topic, { lastSequence: late[1].sequence - 1 }, 2);
  assert.deepEqual(r.messages.map((m) => m.data.i), [5, 6]);
});
