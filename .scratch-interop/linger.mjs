import net from 'node:net';
import WebSocket from 'ws';
import { startHerald } from '../tests/interop/lib/server.mjs';
const srv = await startHerald(['--echo-endpoint', '--max-backpressure', '1048576', '--max-body-size', '1000']);
// 1. 413 with a body being sent
for (let i = 0; i < 5; i++) {
  const s = net.connect(srv.port, '127.0.0.1');
  await new Promise(r => s.once('connect', r));
  let got = '', err = null;
  s.on('data', d => got += d); s.on('error', e => err = e.code);
  s.write('POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\n\r\n');
  const chunk = Buffer.alloc(65536, 0x61);
  for (let k = 0; k < 120 && !err; k++) { s.write(chunk); await new Promise(r => setImmediate(r)); }
  await new Promise(r => setTimeout(r, 300));
  console.log('413 case:', JSON.stringify(got.split('\r\n')[0]), 'err', err);
  s.destroy();
}
// 2. reading ws client bursting 20 x 64KiB
const ws = new WebSocket(srv.wsUrl(), { perMessageDeflate: false });
await new Promise(r => ws.once('open', r));
let n = 0, code = null;
ws.on('message', () => n++);
ws.on('close', (c) => code = c);
for (let i = 0; i < 20; i++) ws.send(Buffer.alloc(65536));
await new Promise(r => setTimeout(r, 1000));
console.log('burst: echoes', n, 'close', code);
await srv.stop();
