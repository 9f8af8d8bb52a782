// socket.io-client 2.5.0 (Engine.IO v3, Socket.IO protocol v4) against
// `herald serve --test-handlers --allow-eio3`: polling, websocket and the upgrade, acks, binary,
// broadcast, the /custom namespace, v3 payload framing with non-ASCII text, and refusal without
// --allow-eio3. The 2.x client connects "/" implicitly (the server must not wait for a CONNECT).
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startHerald } from './lib/server.mjs';

const require = createRequire(import.meta.url);
const io2 = require('socket.io-client-v2');

const WAIT = 5000;
const SUITE = { timeout: 30000 }; // a suite never hangs, even if the server dies
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const open = new Set();
afterEach(() => { for (const s of open) s.close(); open.clear(); });

function client(srv, nsp = '/', opts = {}) {
  const s = io2(srv.url(nsp), { forceNew: true, reconnection: false, timeout: WAIT, ...opts });
  open.add(s);
  return s;
}

/** Resolves when connected; rejects on connect_error / error (2.x reports namespace errors as 'error'). */
function connected(s, ms = WAIT) {
  if (s.connected) return Promise.resolve(s);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { cleanup(); reject(new Error('timed out waiting for connect')); }, ms);
    const ok = () => { cleanup(); resolve(s); };
    const ko = (err) => { // 2.x passes the server's error data as is: a string or {message}
      cleanup();
      reject(err instanceof Error ? err : new Error(typeof err?.message === 'string' ? err.message : String(err)));
    };
    const cleanup = () => { clearTimeout(t); s.off('connect', ok); s.off('connect_error', ko); s.off('error', ko); };
    s.on('connect', ok);
    s.on('connect_error', ko);
    s.on('error', ko);
  });
}

function waitFor(emitter, event, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { emitter.off(event, on); reject(new Error(`timed out waiting for '${event}'`)); }, ms);
    const on = (...args) => { clearTimeout(t); emitter.off(event, on); resolve(args); };
    emitter.on(event, on);
  });
}

function ack(s, event, ...args) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ack for '${event}'`)), WAIT);
    s.emit(event, ...args, (...got) => { clearTimeout(t); resolve(got); });
  });
}

async function until(cond, ms = WAIT, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Herald's default connection state recovery appends an offset (a string) to stored events, as
 * Node's socket.io does; 2.x clients pass it on as an extra argument. */
const withoutOffset = (args) => (typeof args.at(-1) === 'string' ? args.slice(0, -1) : args);

describe('socket.io-client 2.5.0, herald --test-handlers --allow-eio3', SUITE, () => {
  let srv;
  before(async () => { srv = await startHerald(['--test-handlers', '--allow-eio3', '--log-level', 'debug']); });
  after(async () => { await srv?.stop(); });

  for (const [name, transports] of [['polling', ['polling']], ['websocket', ['websocket']], ['default (upgrade)', undefined]]) {
    test(`${name}: connects, echo with ack, message-with-ack`, async () => {
      const s = client(srv, '/', transports ? { transports } : {});
      await connected(s);
      assert.equal(String(s.io.engine.transport.query.EIO), '3', 'Engine.IO v3 client');
      if (transports) assert.equal(s.io.engine.transport.name, transports[0]);
      assert.deepEqual(await ack(s, 'echo', 'hello v2'), ['hello v2']);
      assert.deepEqual(await ack(s, 'message-with-ack', 1, 'two', { three: [3] }), [1, 'two', { three: [3] }]);
      if (!transports) {
        await until(() => s.io.engine.transport.name === 'websocket', WAIT, 'the upgrade');
        assert.deepEqual(await ack(s, 'echo', 'after upgrade'), ['after upgrade']);
      }
    });
  }

  for (const transports of [['polling'], ['websocket']]) {
    test(`message-back with binary over ${transports[0]}: nested Buffers, several attachments`, async () => {
      const s = client(srv, '/', { transports });
      await connected(s);
      const args = [{ file: Buffer.from([1, 2, 3]), list: [Buffer.from('abc'), 'x'] }, Buffer.alloc(300, 9), 42];
      const back = waitFor(s, 'message-back');
      s.emit('message', ...args);
      const got = await back;
      assert.deepEqual(got.slice(0, 3), args);
      assert.deepEqual(await ack(s, 'message-with-ack', Buffer.from([0, 255]), { b: Buffer.from([7]) }),
        [Buffer.from([0, 255]), { b: Buffer.from([7]) }]);
    });
  }

  test('non-ASCII text over v3 polling (lengths in UTF-16 units), both ways', async () => {
    const s = client(srv, '/', { transports: ['polling'] });
    await connected(s);
    const texts = ['é', '中文', '😀', 'a😀b€c', '😀'.repeat(100), '\u2028\u2029', 'mixed ж 中 😀 é'];
    for (const t of texts) assert.deepEqual(await ack(s, 'echo', t), [t], JSON.stringify(t));
    // several packets in one payload, with multi-byte text around a binary one
    const got = [];
    s.on('message-back', (...a) => got.push(withoutOffset(a)));
    s.emit('message', '😀 one');
    s.emit('message', Buffer.from([1, 2]));
    s.emit('message', 'два 中');
    await until(() => got.length === 3, WAIT, 'three message-back events');
    assert.deepEqual(got, [['😀 one'], [Buffer.from([1, 2])], ['два 中']]);
  });

  test('broadcast reaches every 2.x client', async () => {
    const a = client(srv, '/', { transports: ['polling'] });
    const b = client(srv, '/', { transports: ['websocket'] });
    await Promise.all([connected(a), connected(b)]);
    const got = [[], []];
    a.on('msg', (...x) => got[0].push(withoutOffset(x)));
    b.on('msg', (...x) => got[1].push(withoutOffset(x)));
    a.emit('broadcast', { from: 'a' });
    await until(() => got.every((g) => g.length === 1), WAIT, 'the broadcast on both clients');
    assert.deepEqual(got, [[[{ from: 'a' }]], [[{ from: 'a' }]]]);
  });

  test('/custom namespace connects and echoes; an unknown namespace gets "Invalid namespace"', async () => {
    for (const transports of [['polling'], ['websocket']]) {
      const s = client(srv, '/custom', { transports });
      await connected(s);
      assert.equal(s.nsp, '/custom');
      assert.deepEqual(await ack(s, 'echo', 'custom'), ['custom']);
      const bad = client(srv, '/nope', { transports });
      const err = await connected(bad).then(() => null, (e) => e);
      assert.ok(err, 'no connection to an unknown namespace');
      assert.match(err.message, /Invalid namespace/);
    }
  });

  test('socket ids are those a 2.x client expects: engine id on "/", "/custom#<engine id>" elsewhere', async () => {
    // Node's socket.io gives EIO3 clients these ids (socket.ts: `nsp.name !== "/" ? nsp.name + "#" + client.id
    // : client.id`); the 2.x client computes socket.id the same way on its side, so anything addressed to
    // the server-side id (socket.id rooms, REST calls with the id) only works if both agree.
    const root = client(srv, '/', { transports: ['websocket'] });
    const custom = client(srv, '/custom', { transports: ['websocket'] });
    await Promise.all([connected(root), connected(custom)]);
    await sleep(50);
    const ids = [...srv.log.matchAll(/msg="socket connected" nsp=(\S+) id=(\S+)/g)].map((m) => `${m[1]} ${m[2]}`);
    assert.ok(ids.includes(`/ ${root.id}`), `server-side "/" ids ${JSON.stringify(ids.filter((x) => x.startsWith('/ ')).slice(-3))} do not include the client's ${root.id}`);
    assert.ok(ids.includes(`/custom ${custom.id}`), `client's ${custom.id} not among server-side /custom ids`);
  });
});

test('JWT in the query (?token=, how 2.x clients authenticate) with --jwt-secret and no test handlers', async () => {
  const secret = 'interop-test-secret-0123456789abcdef';
  const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const body = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'v2user', role: 'user', exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  const { createHmac } = await import('node:crypto');
  const token = `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
  const srv = await startHerald(['--allow-eio3', '--jwt-secret', secret]);
  try {
    for (const transports of [['polling'], ['websocket']]) {
      const ok = client(srv, '/', { transports, query: { token } });
      await connected(ok);
      await sleep(50);
      assert.equal(ok.connected, true, `valid token over ${transports[0]}`);
      const refused = client(srv, '/', { transports });
      const err = await connected(refused, 3000).then(() => null, (e) => e);
      assert.ok(err, `connected over ${transports[0]} without a token`);
      assert.match(err.message, /token/i);
    }
  } finally {
    for (const s of open) s.close();
    open.clear();
    await srv.stop();
  }
});

test('without --allow-eio3 a 2.x client cannot connect (polling and websocket)', async () => {
  const srv = await startHerald(['--test-handlers']);
  try {
    for (const transports of [['polling'], ['websocket']]) {
      const s = client(srv, '/', { transports });
      const err = await connected(s, 3000).then(() => null, (e) => e);
      assert.ok(err, `connected over ${transports[0]} without --allow-eio3`);
      assert.equal(s.connected, false);
      s.close();
    }
  } finally {
    for (const s of open) s.close();
    open.clear();
    await srv.stop();
  }
});
