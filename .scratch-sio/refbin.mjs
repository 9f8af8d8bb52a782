import { io } from 'socket.io-client';
import { startRef } from './ref.mjs';
import { startHerald } from '../tests/interop/lib/server.mjs';
for (const [name, srv] of [['node', await startRef()], ['herald', await startHerald(['--test-handlers'])]]) {
  const s = io(srv.url(), { transports: ['websocket'], auth: { x: 1 } });
  const auth = new Promise((r) => s.once('auth', (...a) => r(a)));
  await new Promise((r) => s.on('connect', r));
  console.log(name, 'auth', await auth, s._pid ? 'pid' : 'nopid');
  let r1 = new Promise((r) => s.once('message-back', (...a) => r(a)));
  s.emit('message', 1, 'two');
  console.log(name, 'text mb', await r1);
  r1 = new Promise((r) => s.once('message-back', (...a) => r(a)));
  s.emit('message', 1, { b: Buffer.from([1]) });
  console.log(name, 'bin mb', await r1);
  console.log(name, 'ack', await s.emitWithAck('message-with-ack', 1, 'a'));
  console.log(name, 'echo noarg', await s.emitWithAck('echo'));
  s.close();
  await srv.stop();
}
