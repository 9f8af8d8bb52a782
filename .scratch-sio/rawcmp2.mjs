import { startRef } from './ref.mjs';
import { startHerald } from '../tests/interop/lib/server.mjs';
import WebSocket from 'ws';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function run(name, srv) {
  const u = (q) => srv.url('/socket.io/?EIO=4&transport=polling' + q);
  const t = (r) => r.text().then((b) => `${r.status} ${JSON.stringify(b.slice(0, 200))}`);
  const hs = async () => JSON.parse((await (await fetch(u(''))).text()).slice(1)).sid;
  let sid = await hs();
  const pend = fetch(u('&sid=' + sid)).then(t);
  await sleep(50);
  console.log(name, 'POST 1', await fetch(u('&sid=' + sid), { method: 'POST', body: '1' }).then(t));
  console.log(name, 'pending after client close', await pend);
  // upgrade
  sid = await hs();
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
  const msgs = [];
  ws.on('message', (d) => msgs.push(d.toString()));
  await new Promise((r) => ws.on('open', r));
  ws.send('2probe'); await sleep(100); ws.send('5'); await sleep(100);
  console.log(name, 'ws msgs', msgs);
  console.log(name, 'GET after upgrade', await fetch(u('&sid=' + sid)).then(t));
  console.log(name, 'POST after upgrade', await fetch(u('&sid=' + sid), { method: 'POST', body: '40' }).then(t));
  const ws2 = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
  ws2.on('unexpected-response', (req, res) => console.log(name, 'ws2 unexpected', res.statusCode));
  ws2.on('open', () => console.log(name, 'ws2 open'));
  ws2.on('message', (d) => console.log(name, 'ws2 msg', d.toString()));
  ws2.on('close', (c) => console.log(name, 'ws2 close', c));
  ws2.on('error', (e) => console.log(name, 'ws2 error', e.message));
  await sleep(300);
  ws.send('40'); await sleep(100); console.log(name, 'ws msgs', msgs);
  ws.close();
  // probe without 2probe: upgrade timeout
  sid = await hs();
  const ws3 = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
  const t0 = Date.now();
  ws3.on('close', (c) => console.log(name, 'ws3 (no probe) close', c, Date.now() - t0));
  await sleep(700);
  console.log(name, 'POST 40 after upgrade timeout', await fetch(u('&sid=' + sid), { method: 'POST', body: '40' }).then(t));
  console.log(name, 'GET', await fetch(u('&sid=' + sid)).then(t));
  // probe with bad packet
  const ws4 = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
  ws4.on('close', (c) => console.log(name, 'ws4 (bad probe) close', c));
  ws4.on('message', (d) => console.log(name, 'ws4 msg', d.toString()));
  await new Promise((r) => ws4.on('open', r));
  ws4.send('42["message",1]');
  await sleep(200);
  console.log(name, 'POST after bad probe', await fetch(u('&sid=' + sid), { method: 'POST', body: '42["message",2]' }).then(t));
  console.log(name, 'GET', await fetch(u('&sid=' + sid)).then(t));
  // ws big
  const ws5 = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`);
  ws5.on('close', (c) => console.log(name, 'ws5 big close', c));
  await new Promise((r) => ws5.on('open', r));
  ws5.send('4' + 'x'.repeat(2000));
  await sleep(200);
  // CORS
  await srv.stop();
}
await run('node', await startRef({ maxHttpBufferSize: 1024 }));
const h = await startHerald(['--test-handlers', '--max-http-buffer-size', '1024', '--upgrade-timeout', '300']);
await run('herald', h);
