import { io } from 'socket.io-client';
import { startRef } from './ref.mjs';
const srv = await startRef({ maxHttpBufferSize: 10000 });
const s = io(srv.url(), { transports: ['polling'], reconnection: false });
await new Promise((r) => s.on('connect', r));
s.on('disconnect', (r, d) => { console.log('disconnect', r, d?.message, d?.description, d?.context?.status, String(d?.context?.statusText).slice(0,40)); s.close(); srv.stop(); });
s.emit('echo', 'y'.repeat(20000));
