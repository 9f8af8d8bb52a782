// Engine.IO v4 edge cases on the wire, with raw HTTP (fetch) and raw WebSocket (ws) against
// /socket.io/: the open packet, the error table of engine.io's server.ts, long-polling rules
// (one GET at a time, payloads joined by \x1e, invalid packets, limits), the upgrade (probe, noop,
// flush order, what is refused afterwards, upgrade timeout), heartbeat over polling and CORS.
// Expected behaviour is that of Node's engine.io 6.5 (socket.io 4.7.2) unless noted.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';

const SEP = '\x1e';
const WAIT = 5000;
const SUITE = { timeout: 30000 }; // a suite never hangs, even if the server dies
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- helpers ----

function eioUrl(srv, query = '') { return srv.url(`/socket.io/?EIO=4&transport=polling${query}`); }

/** A polling handshake: {sid, open (the parsed open packet), res}. */
async function handshake(srv, headers = {}) {
  const res = await fetch(eioUrl(srv), { headers });
  assert.equal(res.status, 200);
  const body = await res.text();
  assert.equal(body[0], '0', `open packet expected, got ${body.slice(0, 80)}`);
  const open = JSON.parse(body.slice(1));
  return { sid: open.sid, open, res };
}

function poll(srv, sid, headers = {}) {
  return fetch(eioUrl(srv, `&sid=${sid}`), { headers, signal: AbortSignal.timeout(WAIT) });
}
async function pollText(srv, sid) {
  const res = await poll(srv, sid);
  assert.equal(res.status, 200);
  return res.text();
}
function post(srv, sid, body, headers = {}) {
  return fetch(eioUrl(srv, `&sid=${sid}`), { method: 'POST', body, headers: { 'Content-Type': 'text/plain;charset=UTF-8', ...headers } });
}
async function postOk(srv, sid, body) {
  const res = await post(srv, sid, body);
  assert.equal(res.status, 200, `POST ${JSON.stringify(body).slice(0, 60)}`);
  assert.equal(await res.text(), 'ok');
}

/** GETs until `count` packets came in (only call when that many are due, or a GET would hang).
 * The test handlers' "auth" event (sent on CONNECT) is skipped: it is tested in socketio.test.mjs. */
async function pollPackets(srv, sid, count) {
  const packets = [];
  while (packets.length < count) packets.push(...(await pollText(srv, sid)).split(SEP).filter((p) => !isAuth(p)));
  return packets;
}
const isAuth = (packet) => packet.startsWith('42["auth"');

/** The JSON array of a Socket.IO event packet "42[...]". */
function eventArgs(packet) {
  assert.match(packet, /^42\[/);
  return JSON.parse(packet.slice(2));
}

/** Socket.IO CONNECT over polling; consumes the CONNECT reply, alone in its GET as Node sends it,
 * and the "auth" event the connect handler sends after it (with the next GET). */
async function sioConnect(srv, sid) {
  await postOk(srv, sid, '40');
  const connect = await pollText(srv, sid);
  assert.match(connect, /^40\{"sid":"[^"]+"(,"pid":"[^"]+")?\}$/);
  assert.ok(isAuth(await pollText(srv, sid)));
}

async function expectError(res, status, body) {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(await res.json(), body);
}
const UNKNOWN_SID = { code: 1, message: 'Session ID unknown' };

/** The session is gone: the next request gets code 1 (a close packet may come first, as from Node). */
async function assertClosed(srv, sid) {
  let res = await poll(srv, sid);
  if (res.status === 200) {
    const body = await res.text();
    assert.equal(body.split(SEP).at(-1), '1', `a close packet or "Session ID unknown", got ${JSON.stringify(body)}`);
    res = await poll(srv, sid);
  }
  await expectError(res, 400, UNKNOWN_SID);
}
const BAD_REQUEST = { code: 3, message: 'Bad request' };

/** Opens a WebSocket; resolves {ws, messages, closed} or rejects with the HTTP status it got. */
function openWs(srv, query) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket${query}`);
    const messages = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      messages.push(isBinary ? data : data.toString());
      for (const w of waiters.splice(0)) w();
    });
    const closed = new Promise((r) => ws.on('close', (code) => { r({ code, at: Date.now() }); for (const w of waiters.splice(0)) w(); }));
    ws.on('unexpected-response', (req, res) => { const e = new Error(`HTTP ${res.statusCode}`); e.status = res.statusCode; res.resume(); reject(e); });
    ws.on('error', reject);
    ws.on('open', () => {
      /** Resolves once messages.length >= n. */
      const next = (n, ms = WAIT) => new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`timed out waiting for ${n} ws messages, have ${JSON.stringify(messages)}`)), ms);
        const check = () => { if (messages.length >= n) { clearTimeout(t); res(messages); } else if (ws.readyState > 1) { clearTimeout(t); rej(new Error(`closed with ${JSON.stringify(messages)}`)); } else waiters.push(check); };
        check();
      });
      /** Resolves once pred(messages) holds. */
      const until = (pred, ms = WAIT) => new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`timed out waiting on ws messages ${JSON.stringify(messages).slice(0, 300)}`)), ms);
        const check = () => { if (pred(messages)) { clearTimeout(t); res(messages); } else if (ws.readyState > 1) { clearTimeout(t); rej(new Error('closed')); } else waiters.push(check); };
        check();
      });
      resolve({ ws, messages, closed, next, until, at: Date.now() });
    });
  });
}

/** A polling session upgraded to WebSocket (2probe, 3probe, 5). */
async function upgraded(srv) {
  const { sid } = await handshake(srv);
  const probe = await openWs(srv, `&sid=${sid}`);
  probe.ws.send('2probe');
  await probe.next(1);
  assert.equal(probe.messages[0], '3probe');
  probe.ws.send('5');
  return { sid, ...probe };
}

// ---- the default server ----

describe('Engine.IO v4, default options', SUITE, () => {
  let srv;
  const sockets = [];
  before(async () => { srv = await startHerald(['--test-handlers']); });
  after(async () => {
    for (const ws of sockets) ws.terminate();
    await srv?.stop();
  });
  const track = (c) => { sockets.push(c.ws); return c; };

  test('open packet over polling: exactly sid, upgrades, pingInterval, pingTimeout, maxPayload', async () => {
    const { open, res } = await handshake(srv);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=UTF-8');
    assert.deepEqual(Object.keys(open), ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
    assert.equal(typeof open.sid, 'string');
    assert.match(open.sid, /^[A-Za-z0-9_-]{16,}$/);
    assert.deepEqual(open.upgrades, ['websocket']);
    assert.equal(open.pingInterval, 25000);
    assert.equal(open.pingTimeout, 20000);
    assert.equal(open.maxPayload, 1000000);
    const other = await handshake(srv);
    assert.notEqual(other.sid, open.sid, 'fresh sid per session');
  });

  test('open packet over websocket: same keys, no further upgrades', async () => {
    const c = track(await openWs(srv, ''));
    await c.next(1);
    assert.equal(c.messages[0][0], '0');
    const open = JSON.parse(c.messages[0].slice(1));
    assert.deepEqual(Object.keys(open), ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
    assert.deepEqual(open.upgrades, []);
    assert.equal(open.maxPayload, 1000000);
    c.ws.send('40');
    await c.next(2);
    assert.match(c.messages[1], /^40\{"sid":"[^"]+"/);
  });

  test('error table: transport, sid, handshake method, protocol version', async () => {
    const get = (q, init) => fetch(srv.url(`/socket.io/${q}`), init);
    await expectError(await get('?EIO=4&transport=flash'), 400, { code: 0, message: 'Transport unknown' });
    await expectError(await get('?EIO=4'), 400, { code: 0, message: 'Transport unknown' });
    await expectError(await get('?EIO=4&transport=polling&sid=nope'), 400, UNKNOWN_SID);
    await expectError(await get('?EIO=4&transport=polling&sid=nope', { method: 'POST', body: '40' }), 400, UNKNOWN_SID);
    await expectError(await get('?EIO=4&transport=polling', { method: 'POST', body: '40' }), 400,
      { code: 2, message: 'Bad handshake method' });
    for (const q of ['?EIO=5&transport=polling', '?EIO=3&transport=polling', '?transport=polling', '?EIO=x&transport=polling']) {
      await expectError(await get(q), 400, { code: 5, message: 'Unsupported protocol version' });
    }
    // transport=websocket without an Upgrade header
    await expectError(await get('?EIO=4&transport=websocket'), 400, BAD_REQUEST);
    // a WebSocket for a session that does not exist: refused before the upgrade
    await assert.rejects(openWs(srv, '&sid=nope'), (e) => e.status === 400);
  });

  test('a second concurrent GET gets 400 and closes the session', async () => {
    const { sid } = await handshake(srv);
    const first = poll(srv, sid);
    await sleep(100); // the first GET is now waiting on the server (on a slow, sanitized server it may
    // arrive after the second: then the second waits and the first is the one refused)
    const [a, b] = await Promise.all([first, poll(srv, sid)]);
    const [waited, refused] = b.status === 400 ? [a, b] : [b, a];
    assert.equal(refused.status, 400, 'the second GET is refused');
    await refused.arrayBuffer();
    assert.equal(waited.status, 200, 'the waiting GET is released');
    await waited.text();
    await expectError(await poll(srv, sid), 400, UNKNOWN_SID);
    await expectError(await post(srv, sid, '40'), 400, UNKNOWN_SID);
  });

  test('POST of a payload with several packets joined by \\x1e: processed in order', async () => {
    const { sid } = await handshake(srv);
    await sioConnect(srv, sid);
    await postOk(srv, sid, ['42["message","a"]', '42["message","b"]'].join(SEP));
    const first = await pollPackets(srv, sid, 2);
    assert.deepEqual(first.map((p) => eventArgs(p).slice(0, 2)), [['message-back', 'a'], ['message-back', 'b']]);
    const batch = Array.from({ length: 20 }, (_, i) => `42["message",${i}]`);
    await postOk(srv, sid, batch.join(SEP));
    const back = (await pollPackets(srv, sid, 20)).map(eventArgs);
    assert.deepEqual(back.map((e) => e.slice(0, 2)), Array.from({ length: 20 }, (_, i) => ['message-back', i]));
    // a ping-free mix: noop packets in a payload are ignored
    await postOk(srv, sid, ['6', '42["message","c"]', '6'].join(SEP));
    assert.deepEqual(eventArgs((await pollPackets(srv, sid, 1))[0]).slice(0, 2), ['message-back', 'c']);
  });

  test('binary over polling: "b" + base64 packets, both ways', async () => {
    const { sid } = await handshake(srv);
    await sioConnect(srv, sid);
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
    await postOk(srv, sid, [`451-["message",{"_placeholder":true,"num":0},"t"]`, `b${bytes.toString('base64')}`].join(SEP));
    const packets = await pollPackets(srv, sid, 2);
    assert.match(packets[0], /^451-\[/);
    const args = JSON.parse(packets[0].slice(4));
    assert.deepEqual(args.slice(0, 3), ['message-back', { _placeholder: true, num: 0 }, 't']);
    assert.equal(packets[1], `b${bytes.toString('base64')}`);
  });

  test('POST of an invalid packet closes the session', async () => {
    const invalid = ['', '9', 'x42', '42[', '42["message"', '4{"not":"a socket.io packet"}', '42[{}]', 'b', '451-["message",{"_placeholder":true,"num":3}]'];
    for (const body of invalid) {
      const { sid } = await handshake(srv);
      if (body !== '') await sioConnect(srv, sid);
      const res = await post(srv, sid, body);
      await res.arrayBuffer();
      if (body.startsWith('451-')) await post(srv, sid, 'b!!!!').then((r) => r.arrayBuffer()); // invalid attachment
      await assertClosed(srv, sid);
    }
  });

  test('client close packet: POST "1" ends the session; the waiting GET is released', async () => {
    const { sid } = await handshake(srv);
    const waiting = poll(srv, sid);
    await sleep(100);
    await postOk(srv, sid, '1');
    const res = await waiting;
    assert.equal(res.status, 200);
    await res.text();
    await expectError(await poll(srv, sid), 400, UNKNOWN_SID);
  });

  test('a GET waiting when the server closes the session gets a close or noop packet, never an empty body', async () => {
    // Node's engine.io answers a waiting poll with "1" (server-side close) or "6" (client close);
    // an empty body is not a valid payload: engine.io-client decodes it as a "parser error".
    const cases = {
      'second GET': async (sid) => { await sleep(100); await (await poll(srv, sid)).arrayBuffer(); },
      'invalid POST': async (sid) => { await sleep(100); await (await post(srv, sid, '9')).arrayBuffer(); },
      'client close': async (sid) => { await sleep(100); await (await post(srv, sid, '1')).arrayBuffer(); },
    };
    const bodies = {};
    for (const [name, close] of Object.entries(cases)) {
      const { sid } = await handshake(srv);
      const waiting = poll(srv, sid);
      await close(sid);
      bodies[name] = await (await waiting).text();
    }
    for (const [name, body] of Object.entries(bodies)) assert.match(body, /^[16]$/, `${name}: got ${JSON.stringify(body)}`);
  });

  describe('upgrade', () => {
    test('2probe/3probe releases the waiting GET with a noop; packets queued during the upgrade arrive once, in order', async () => {
      const { sid } = await handshake(srv);
      await sioConnect(srv, sid);
      const waiting = poll(srv, sid); // parked: nothing to send
      await sleep(100);
      const probe = track(await openWs(srv, `&sid=${sid}`));
      probe.ws.send('2probe');
      await probe.next(1);
      assert.equal(probe.messages[0], '3probe');
      const released = await waiting;
      assert.equal(released.status, 200);
      assert.equal(await released.text(), '6', 'noop to the waiting GET');
      // during the upgrade the client may still POST; the replies go out once, in order: over the new
      // transport after 5 (herald), or to a GET that arrives during the upgrade (Node)
      await postOk(srv, sid, ['42["message",1]', '42["message",2]'].join(SEP));
      await postOk(srv, sid, '42["message",3]');
      const late = await poll(srv, sid); // a real client does not poll while upgrading
      const viaPolling = (await late.text()).split(SEP).filter((p) => p !== '6' && !isAuth(p));
      await sleep(100);
      assert.equal(probe.messages.length, 1, 'nothing goes over the probe before the upgrade packet');
      probe.ws.send('5');
      const backs = (m) => m.filter((x) => x.startsWith('42["message-back"')).map((x) => eventArgs(x)[1]);
      await probe.until((m) => viaPolling.length + backs(m).length >= 3);
      probe.ws.send('42["message",4]');
      await probe.until((m) => viaPolling.length + backs(m).length >= 4);
      await sleep(50);
      assert.deepEqual([...viaPolling.map((p) => eventArgs(p)[1]), ...backs(probe.messages)], [1, 2, 3, 4]);
    });

    test('after the upgrade polling is refused (400 code 3) and a second WebSocket for the sid is accepted, then closed (as Node does)', async () => {
      const c = track(await upgraded(srv));
      await sleep(50);
      await expectError(await poll(srv, c.sid), 400, BAD_REQUEST);
      await expectError(await post(srv, c.sid, '40'), 400, BAD_REQUEST);
      const second = await openWs(srv, `&sid=${c.sid}`); // accepted at the HTTP level, closed at once
      sockets.push(second.ws);
      second.ws.send('40');
      await second.closed;
      assert.deepEqual(second.messages, [], 'closed without carrying the session');
      // the upgraded transport is unaffected
      c.ws.send('40');
      await c.next(2);
      assert.match(c.messages[1], /^40\{"sid":/);
    });

    test('a probe that sends anything but 2probe/5 is closed; the polling session goes on', async () => {
      const { sid } = await handshake(srv);
      const probe = track(await openWs(srv, `&sid=${sid}`));
      probe.ws.send('42["message",1]');
      await probe.closed;
      await sioConnect(srv, sid);
      await postOk(srv, sid, '42["message",2]');
      const [packet] = await pollPackets(srv, sid, 1);
      assert.deepEqual(eventArgs(packet).slice(0, 2), ['message-back', 2]);
    });

    test('only one probe at a time', async () => {
      const { sid } = await handshake(srv);
      const probe = track(await openWs(srv, `&sid=${sid}`));
      const second = await openWs(srv, `&sid=${sid}`);
      sockets.push(second.ws);
      await second.closed;
      probe.ws.send('2probe');
      await probe.next(1);
      assert.equal(probe.messages[0], '3probe');
    });
  });
});

// ---- options ----

describe('as Node\'s engine.io answers (--test-handlers)', SUITE, () => {
  let srv;
  before(async () => { srv = await startHerald(['--test-handlers']); });
  after(async () => { await srv.stop(); });

  test('a method other than GET/POST/OPTIONS: 400 {code: 2, message: "Bad handshake method"}', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(eioUrl(srv), { method });
      assert.equal(res.status, 400, method);
      assert.deepEqual(await res.json(), { code: 2, message: 'Bad handshake method' }, method);
    }
  });

  test('raw Engine.IO echo at /engine.io/: text and binary, over polling and WebSocket', async () => {
    const base = srv.url('/engine.io/?EIO=4&transport=polling');
    const open = await (await fetch(base)).text();
    assert.match(open, /^0\{"sid":"/);
    const { sid } = JSON.parse(open.slice(1));
    const url = `${base}&sid=${sid}`;
    assert.equal(await (await fetch(url, { method: 'POST', body: `4hello${SEP}bAQID` })).text(), 'ok');
    const packets = [];
    while (packets.length < 2) packets.push(...(await (await fetch(url)).text()).split(SEP));
    assert.deepEqual(packets, ['4hello', 'bAQID']);
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/engine.io/?EIO=4&transport=websocket`);
    const got = [];
    await new Promise((resolve, reject) => {
      ws.on('message', (data, binary) => {
        got.push(binary ? [...data] : data.toString());
        if (got.length === 1) { ws.send('4hi'); ws.send(Buffer.from([7, 8])); }
        if (got.length === 3) resolve();
      });
      ws.on('error', reject);
      setTimeout(() => reject(new Error(`echo timed out: ${JSON.stringify(got)}`)), WAIT);
    });
    ws.close();
    assert.match(got[0], /^0\{"sid":"/);
    assert.deepEqual(got.slice(1), ['4hi', [7, 8]]);
  });
  test('pipelining: a waiting long-poll GET does not hold back a POST behind it on the same connection', async () => {
    // The GET is deferred until a packet is due; the POST pipelined after it is parsed and routed at
    // once (its message is echoed into the waiting GET), and the answers leave in request order.
    const base = '/engine.io/?EIO=4&transport=polling';
    const open = await (await fetch(srv.url(base))).text();
    const { sid } = JSON.parse(open.slice(1));
    const body = '4pipelined';
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    try {
      await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
      let text = '';
      sock.on('data', (d) => { text += d.toString('latin1'); });
      sock.write(`GET ${base}&sid=${sid} HTTP/1.1\r\nHost: x\r\n\r\n` +
        `POST ${base}&sid=${sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const deadline = Date.now() + 3000; // far below the 25 s ping interval that would release the GET
      while ((text.match(/HTTP\/1\.1 200/g) ?? []).length < 2) {
        if (Date.now() > deadline) assert.fail(`both answers expected; got ${JSON.stringify(text.slice(0, 600))}`);
        await sleep(20);
      }
      const first = text.indexOf('4pipelined'), second = text.indexOf('\r\n\r\nok');
      assert.ok(first > 0 && second > first, `GET answer (the echo) first, then the POST's "ok":\n${text}`);
    } finally { sock.destroy(); }
  });
});

describe('Engine.IO options', SUITE, () => {
  test('--ping-interval, --ping-timeout, --max-http-buffer-size show in the open packet', async () => {
    const srv = await startHerald(['--test-handlers', '--ping-interval', '1234', '--ping-timeout', '2345', '--max-http-buffer-size', '4096']);
    try {
      const { open } = await handshake(srv);
      assert.deepEqual({ ...open, sid: 'x' }, { sid: 'x', upgrades: ['websocket'], pingInterval: 1234, pingTimeout: 2345, maxPayload: 4096 });
    } finally { await srv.stop(); }
  });

  // Node's engine.io reads any EIO other than "4" as 3 once allowEIO3 is set (so EIO=5 gets a v3
  // session there); herald keeps refusing unknown versions, which is the stricter choice.
  test('--allow-eio3 accepts EIO=3 (length-prefixed payload); EIO=5 is still refused', async () => {
    const srv = await startHerald(['--test-handlers', '--allow-eio3']);
    try {
      const res = await fetch(srv.url('/socket.io/?EIO=3&transport=polling'));
      assert.equal(res.status, 200);
      const body = await res.text();
      const m = /^(\d+):0(\{.*\})/.exec(body);
      assert.ok(m, body.slice(0, 100));
      const open = JSON.parse(m[2]);
      for (const k of ['sid', 'upgrades', 'pingInterval', 'pingTimeout']) assert.ok(k in open, k);
      assert.equal(Number(m[1]), m[2].length + 1);
      await expectError(await fetch(srv.url('/socket.io/?EIO=5&transport=polling')), 400, { code: 5, message: 'Unsupported protocol version' });
    } finally { await srv.stop(); }
  });

  test('--max-http-buffer-size 1024: POST at the limit passes, one byte over gets 413; ws message over it: close 1009', async () => {
    const srv = await startHerald(['--test-handlers', '--max-http-buffer-size', '1024']);
    const sockets = [];
    try {
      const { sid } = await handshake(srv);
      await sioConnect(srv, sid);
      const atLimit = `42["message","${'x'.repeat(1024 - 16)}"]`;
      assert.equal(Buffer.byteLength(atLimit), 1024);
      await postOk(srv, sid, atLimit);
      await pollPackets(srv, sid, 1);
      const over = await post(srv, sid, `42["message","${'x'.repeat(1024 - 15)}"]`);
      assert.equal(over.status, 413);
      await over.arrayBuffer();

      const c = await openWs(srv, '');
      sockets.push(c.ws);
      await c.next(1);
      c.ws.send('40');
      await c.next(2);
      c.ws.send(`42["message","${'x'.repeat(1024 - 16)}"]`);
      await c.until((m) => m.some((x) => x.startsWith('42["message-back"')));
      c.ws.send(`42["message","${'x'.repeat(1024 - 15)}"]`);
      assert.equal((await c.closed).code, 1009);
    } finally {
      for (const ws of sockets) ws.terminate();
      await srv.stop();
    }
  });

  test('--upgrade-timeout 300: a probe that never completes is closed; polling goes on', async () => {
    const srv = await startHerald(['--test-handlers', '--upgrade-timeout', '300']);
    const sockets = [];
    try {
      const { sid } = await handshake(srv);
      const probe = await openWs(srv, `&sid=${sid}`);
      sockets.push(probe.ws);
      const { at } = await probe.closed;
      const elapsed = at - probe.at;
      assert.ok(elapsed >= 250 && elapsed <= 2000, `probe closed after ${elapsed} ms`);
      await sioConnect(srv, sid);
      // and a later upgrade still works
      const again = await openWs(srv, `&sid=${sid}`);
      sockets.push(again.ws);
      again.ws.send('2probe');
      await again.next(1);
      again.ws.send('5');
      await sleep(50);
      again.ws.send('42["message","over ws"]');
      await again.until((m) => m.some((x) => x.startsWith('42["message-back"')));
      assert.deepEqual(eventArgs(again.messages.find((x) => x.startsWith('42["message-back"'))).slice(0, 2), ['message-back', 'over ws']);
    } finally {
      for (const ws of sockets) ws.terminate();
      await srv.stop();
    }
  });

  test('heartbeat over polling (--ping-interval 200 --ping-timeout 600): pongs keep the session, silence ends it with a close packet', async () => {
    const srv = await startHerald(['--test-handlers', '--ping-interval', '200', '--ping-timeout', '600']); // a pong late by a loaded machine's hiccup still counts
    try {
      const { sid } = await handshake(srv);
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        assert.equal(await pollText(srv, sid), '2');
        assert.ok(Date.now() - t0 <= 1500, 'ping about every 200 ms');
        await postOk(srv, sid, '3');
      }
      assert.equal(await pollText(srv, sid), '2');
      const t0 = Date.now();
      const last = await poll(srv, sid); // no pong: the session ends while this GET waits
      const body = await last.text();
      const elapsed = Date.now() - t0;
      assert.ok(elapsed >= 100 && elapsed <= 2000, `closed ${elapsed} ms after the ping`);
      await expectError(await poll(srv, sid), 400, UNKNOWN_SID);
      assert.equal(body, '1', `the waiting GET gets a close packet (Node's engine.io), got ${JSON.stringify(body)}`);
    } finally { await srv.stop(); }
  });
});

// ---- CORS ----

describe('CORS (--cors-origin http://a.example)', SUITE, () => {
  let srv;
  before(async () => { srv = await startHerald(['--test-handlers', '--cors-origin', 'http://a.example']); });
  after(async () => { await srv?.stop(); });
  const A = { Origin: 'http://a.example' };

  test('polling responses carry Access-Control-Allow-Origin for the allowed origin', async () => {
    const { sid, res } = await handshake(srv, A);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://a.example');
    const posted = await post(srv, sid, '40', A);
    assert.equal(posted.status, 200);
    assert.equal(posted.headers.get('access-control-allow-origin'), 'http://a.example');
    await posted.text();
    const got = await poll(srv, sid, A);
    assert.equal(got.headers.get('access-control-allow-origin'), 'http://a.example');
    assert.match(await got.text(), /^40\{/);
    assert.match(await (await poll(srv, sid, A)).text(), /^42\["auth"/); // after the CONNECT, in a GET of its own
    // a long poll answered later (deferred response)
    const waiting = poll(srv, sid, A);
    await sleep(100);
    await (await post(srv, sid, '42["message","late"]', A)).text();
    const late = await waiting;
    assert.equal(late.headers.get('access-control-allow-origin'), 'http://a.example');
    assert.match(await late.text(), /message-back/);
    // errors too, so a page can read them
    const err = await fetch(srv.url('/socket.io/?EIO=4&transport=polling&sid=nope'), { headers: A });
    assert.equal(err.status, 400);
    assert.equal(err.headers.get('access-control-allow-origin'), 'http://a.example');
    await err.text();
  });

  test('OPTIONS preflight is answered for the allowed origin', async () => {
    const res = await fetch(eioUrl(srv), { method: 'OPTIONS', headers: { ...A, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' } });
    assert.ok(res.status === 204 || res.status === 200, `status ${res.status}`);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://a.example');
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /GET/);
    assert.match((res.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /content-type/);
    await res.arrayBuffer();
  });

  test('another origin is not allowed (no Access-Control-Allow-Origin for it)', async () => {
    const B = { Origin: 'http://b.example' };
    const allowed = (v) => v === 'http://b.example' || v === '*';
    const { res } = await handshake(srv, B);
    assert.ok(!allowed(res.headers.get('access-control-allow-origin')), res.headers.get('access-control-allow-origin'));
    const pre = await fetch(eioUrl(srv), { method: 'OPTIONS', headers: { ...B, 'Access-Control-Request-Method': 'POST' } });
    assert.ok(!allowed(pre.headers.get('access-control-allow-origin')));
    await pre.arrayBuffer();
  });
});
