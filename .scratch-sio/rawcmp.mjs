import { startRef } from './ref.mjs';
import { startHerald } from '../tests/interop/lib/server.mjs';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function run(name, srv) {
  const u = (q) => srv.url('/socket.io/?EIO=4&transport=polling' + q);
  const t = (r) => r.text().then((b) => `${r.status} ${JSON.stringify(b)} ${r.headers.get('content-type')}`);
  let r = await fetch(u(''));
  const open = JSON.parse((await r.text()).slice(1));
  console.log(name, 'open', open);
  // ping timeout: pending GET
  const g1 = fetch(u('&sid=' + open.sid)).then(t);
  console.log(name, 'GET1', await g1);   // should be ping
  const t0 = Date.now();
  const g2 = fetch(u('&sid=' + open.sid)).then(t);
  console.log(name, 'GET2 after ping timeout', await g2, Date.now() - t0);
  // concurrent GET
  r = await fetch(u('')); const o2 = JSON.parse((await r.text()).slice(1));
  const a = fetch(u('&sid=' + o2.sid)).then(t);
  await sleep(50);
  const b = fetch(u('&sid=' + o2.sid)).then(t);
  console.log(name, 'concurrent', await b, await a);
  console.log(name, 'after', await fetch(u('&sid=' + o2.sid)).then(t));
  // invalid POST
  r = await fetch(u('')); const o3 = JSON.parse((await r.text()).slice(1));
  const pend = fetch(u('&sid=' + o3.sid)).then(t);
  await sleep(50);
  console.log(name, 'bad post', await fetch(u('&sid=' + o3.sid), { method: 'POST', body: '9x' }).then(t));
  console.log(name, 'pending after bad post', await pend);
  // connect timeout
  r = await fetch(u('')); const o4 = JSON.parse((await r.text()).slice(1));
  const t1 = Date.now();
  console.log(name, 'connect timeout GET', await fetch(u('&sid=' + o4.sid)).then(t), Date.now() - t1);
  // POST response
  r = await fetch(u('')); const o5 = JSON.parse((await r.text()).slice(1));
  console.log(name, 'post 40', await fetch(u('&sid=' + o5.sid), { method: 'POST', body: '40' }).then(t));
  console.log(name, 'get', await fetch(u('&sid=' + o5.sid)).then(t));
  console.log(name, 'post too big', await fetch(u('&sid=' + o5.sid), { method: 'POST', body: '4' + 'x'.repeat(2000) }).then(t));
  console.log(name, 'after too big', await fetch(u('&sid=' + o5.sid)).then(t));
  // errors
  for (const q of ['/socket.io/?EIO=4&transport=foo', '/socket.io/?EIO=4', '/socket.io/?EIO=5&transport=polling', '/socket.io/?EIO=3&transport=polling', '/socket.io/?transport=polling', '/socket.io/?EIO=4&transport=polling&sid=nope', '/socket.io/?EIO=4&transport=websocket']) {
    console.log(name, q, await fetch(srv.url(q)).then(t));
  }
  console.log(name, 'POST hs', await fetch(srv.url('/socket.io/?EIO=4&transport=polling'), { method: 'POST', body: '40' }).then(t));
  await srv.stop();
}
await run('node', await startRef({ pingInterval: 300, pingTimeout: 200, connectTimeout: 700, maxHttpBufferSize: 1024 }));
const h = await startHerald(['--test-handlers', '--ping-interval', '300', '--ping-timeout', '200', '--connect-timeout', '700', '--max-http-buffer-size', '1024']); h.child.on('exit', (c, s) => console.log('HERALD EXIT', c, s, h.log.split('\n').filter((l,i,a)=>a.indexOf(l)===i).join('\n').slice(0,6000))); await run('herald', h).catch(e => console.log('ERR', e.message));
