// Load for bench/run-store.sh against one running Herald: closed-loop clients, each waiting for the
// acknowledgement of one write before sending the next. Phase 1: POST /api/v4/notifications/send
// (API key) from CONCURRENCY keep-alive clients; phase 2: chat:send_message over Socket.IO from
// CONCURRENCY users, each in their own session, acked with the stored message; phase 3: POST
// /api/v1/publish of a notification to `user:{sub}` of one of CONCURRENCY online JSON-protocol users
// (each acking what it gets), answered once its inbox row is committed. Prints one JSON
// line per phase: writes/s, p50/p99 latency to the ack (ms), store commits/s (from /metrics).
// Usage: node bench/store-load.mjs PORT SECRET API_KEY SECONDS CONCURRENCY
import { createHmac } from 'node:crypto';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const [port, secret, apiKey, seconds, concurrency] = process.argv.slice(2);
const BASE = `http://127.0.0.1:${port}`;
const DURATION = Number(seconds) * 1000, C = Number(concurrency);

function token(sub, role) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: String(sub), role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

async function commits() {
  const text = await (await fetch(`${BASE}/metrics`)).text();
  return Number(/^herald_store_commits_total (\d+)/m.exec(text)[1]);
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

async function phase(name, clients, once) {
  const lat = [];
  let errors = 0;
  const c0 = await commits(), t0 = performance.now(), end = t0 + DURATION;
  await Promise.all(clients.map(async (client) => {
    while (performance.now() < end) {
      const s = performance.now();
      if (await once(client)) lat.push(performance.now() - s);
      else errors++;
    }
  }));
  const secs = (performance.now() - t0) / 1000, c1 = await commits();
  lat.sort((a, b) => a - b);
  console.log(JSON.stringify({ phase: name, writes_per_s: Math.round(lat.length / secs), p50_ms: +pct(lat, 50).toFixed(2),
    p99_ms: +pct(lat, 99).toFixed(2), commits_per_s: Math.round((c1 - c0) / secs), writes: lat.length, errors }));
}

const body = JSON.stringify({ type: 'info', title: 'bench', content: 'x'.repeat(100) }); // a broadcast: a target must be an admin of the store
await phase('notifications', Array.from({ length: C }, (_, i) => i), async () => {
  const r = await fetch(`${BASE}/api/v4/notifications/send`, { method: 'POST', headers: { 'x-api-key': apiKey, 'content-type': 'application/json' }, body });
  await r.arrayBuffer();
  return r.status === 201;
});

const users = [];
for (let i = 0; i < C; i++) {
  const tok = token(10000 + i, 'user');
  const r = await fetch(`${BASE}/api/v4/customer-service/sessions`, { method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: JSON.stringify({ content: 'hello' }) });
  const sessionId = (await r.json()).session.id;
  const socket = io(BASE, { auth: { token: tok }, transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
  users.push({ socket, sessionId });
}
await phase('chat_messages', users, (u) => new Promise((resolve) => {
  u.socket.timeout(10000).emit('chat:send_message', { session_id: u.sessionId, content: 'y'.repeat(100) }, (err, res) => resolve(!err && res?.success));
}));
for (const u of users) u.socket.close();

const inboxUsers = [];
for (let i = 0; i < C; i++) {
  const sub = String(20000 + i);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/ws?clientId=bench&token=${token(sub, 'user')}`);
  ws.on('message', (d) => {
    const f = JSON.parse(d);
    if (f.type === 'notification') ws.send(JSON.stringify({ type: 'ack', data: { messageId: f.messageId } }));
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'subscribe', messageId: 's', data: { topic: `user:${sub}` } }));
  inboxUsers.push(sub);
}
await new Promise((r) => setTimeout(r, 200));
await phase('inbox_publishes', inboxUsers, async (sub) => {
  const r = await fetch(`${BASE}/api/v1/publish`, { method: 'POST', headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ topic: `user:${sub}`, type: 'notification', data: { title: 'bench', content: 'z'.repeat(100) } }) });
  const res = await r.json();
  return r.status === 200 && res.delivered === 1;
});
process.exit(0);
