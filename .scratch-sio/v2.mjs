import { createRequire } from 'node:module';
import { startHerald } from '../tests/interop/lib/server.mjs';
const require = createRequire(import.meta.url);
const io2 = require('socket.io-client-v2');
const srv = await startHerald(['--test-handlers', '--allow-eio3', '--log-level', 'debug']);
for (const transports of [['polling'], ['websocket'], undefined]) {
  const s = io2(srv.url(), { transports, forceNew: true, reconnection: false });
  s.on('auth', (...a) => console.log('auth', a));
  s.on('connect_error', (e) => console.log('cerr', e));
  s.on('error', (e) => console.log('err', e));
  await new Promise((r) => s.on('connect', r));
  console.log('connected', s.id, s.io.engine.transport.name);
  await new Promise((r) => s.emit('echo', 'hi', (...a) => { console.log('ack', a); r(); }));
  await new Promise((r) => s.emit('message-with-ack', 1, { b: Buffer.from([1, 2]) }, (...a) => { console.log('ack', a); r(); }));
  await new Promise((r) => { s.once('message-back', (...a) => { console.log('mb', a); r(); }); s.emit('message', 1, { x: Buffer.from([3]) }, Buffer.from([9, 9])); });
  await new Promise((r) => { s.once('msg', (...a) => { console.log('msg', a); r(); }); s.emit('broadcast', 'yo'); });
  const c = io2(srv.url('/custom'), { transports, forceNew: true, reconnection: false });
  c.on('connect_error', (e) => console.log('cerr', e));
  c.on('error', (e) => console.log('err custom', e));
  await new Promise((r) => c.on('connect', r));
  console.log('custom connected', c.id, c.nsp);
  await new Promise((r) => c.emit('echo', 'cu', (...a) => { console.log('ack', a); r(); }));
  const bad = io2(srv.url('/nope'), { transports, forceNew: true, reconnection: false });
  await new Promise((r) => { bad.on('error', (e) => { console.log('bad err', e); r(); }); bad.on('connect_error', (e) => { console.log('bad cerr', e); r(); }); setTimeout(r, 1000); });
  bad.close();
  s.close(); c.close();
}
await srv.stop();
console.log(srv.log.split('\n').filter((l,i,a)=>a.indexOf(l)===i).slice(-15).join('\n'));
