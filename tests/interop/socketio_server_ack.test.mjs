// Acks from the server's side: the server emits with an ack and a timeout (test handler
// `server-ack`); the stock socket.io-client 4.7.2 answers through its listener's callback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startHerald } from './lib/server.mjs';

let srv;
before(async () => { srv = await startHerald(['--test-handlers']); });
after(async () => { await srv?.stop(); });

function connect(transports) {
  const s = io(srv.url('/'), { transports, reconnection: false });
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

const result = (s) => new Promise((resolve) => s.once('server-ack-result', (...a) => resolve(a)));

for (const transports of [['websocket'], ['polling']]) {
  test(`${transports[0]}: the client's ack reaches the server; a missing ack times out`, async () => {
    const s = await connect(transports);
    try {
      s.on('ack-me', (data, ack) => { if (data?.answer) ack(data.answer, 'second'); });
      let r = result(s);
      s.emit('server-ack', { timeout: 2000, data: { answer: { ok: 1 } } });
      const [first] = await r;
      assert.deepEqual(first, [{ ok: 1 }, 'second']);
      r = result(s);
      const started = Date.now();
      s.emit('server-ack', { timeout: 300, data: { answer: null } }); // the listener does not ack
      const [answer] = await r; // a trailing recovery offset may follow
      assert.equal(answer, 'timeout');
      assert.ok(Date.now() - started >= 250, 'timed out too early');
    } finally {
      s.close();
    }
  });
}
