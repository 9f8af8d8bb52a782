import { io } from 'socket.io-client';
import { startHerald } from '../tests/interop/lib/server.mjs';
const srv = await startHerald(['--test-handlers', '--max-http-buffer-size', '10000']);
const s = io(srv.url(), { transports: ['polling'], reconnection: false });
await new Promise((r) => s.on('connect', r));
s.io.engine.on('error', (e) => console.log('engine error', e.message, e.description, e.context?.status));
s.io.engine.on('close', (r, d) => console.log('engine close', r, d?.message, d?.description, d?.context?.status));
s.on('disconnect', (r, d) => { console.log('disconnect', r, d, typeof d); s.close(); srv.stop(); });
s.emit('echo', 'y'.repeat(20000));
