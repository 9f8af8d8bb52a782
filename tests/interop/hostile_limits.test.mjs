// Limits and reference-server behaviour under hostile or careless clients (issue 11, "Behave as the
// reference servers do" and "Abuse must stay bounded"): each test does what such a client would and
// asserts the bounded, clearly answered outcome, against a real herald. Every wait has a timeout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from './lib/server.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });
async function herald(args) {
  const s = await startHerald(args);
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
