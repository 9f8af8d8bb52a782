import { io } from 'socket.io-client';
import { startHerald } from '/work/main/tests/interop/lib/server.mjs';
const srv = await startHerald(['--test-handlers', '--log-level', 'debug']);
const s = io(srv.url(), { auth: { a: 1 } });
s.on('auth', (a) => console.log('auth', a));
s.on('connect', async () => {
  console.log('connected', s.id, s.io.engine.transport.name);
  console.log(await s.emitWithAck('echo', 'hi'));
  console.log(await s.emitWithAck('message-with-ack', 1, 'x', { b: Buffer.from([1,2]) }));
  s.on('message-back', (...a) => console.log('mb', a));
  s.emit('message', 1, { x: Buffer.from([3]) }, Buffer.from([9,9]));
  setTimeout(async () => { s.close(); await new Promise(r=>setTimeout(r,300)); console.log('transport', s.io.engine.transport.name); s.close(); await srv.stop(); console.log(srv.log.slice(-2000)); }, 500);
});
