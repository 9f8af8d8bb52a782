// Node socket.io 4.7.2 with herald's test handlers, for side-by-side checks.
import { Server } from 'socket.io';
import { createServer } from 'node:http';
export async function startRef({ recovery = true, allowEIO3 = false, pingInterval = 25000, pingTimeout = 20000, maxHttpBufferSize = 1e6, connectTimeout = 45000 } = {}) {
  const http = createServer();
  const io = new Server(http, { upgradeTimeout: 300, allowEIO3, pingInterval, pingTimeout, maxHttpBufferSize, connectTimeout,
    connectionStateRecovery: recovery ? { maxDisconnectionDuration: 120000, skipMiddlewares: true } : undefined });
  for (const nsp of ['/', '/custom']) {
    io.of(nsp).on('connection', (s) => {
      s.emit('auth', s.handshake.auth);
      s.on('message', (...a) => s.emit('message-back', ...a));
      s.on('message-with-ack', (...a) => { const cb = a.pop(); cb(...a); });
      s.on('echo', (x, cb) => cb(x));
      s.on('broadcast', (x) => io.of(nsp).emit('msg', x));
    });
  }
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  const port = http.address().port;
  return { port, io, url: (p = '/') => `http://127.0.0.1:${port}${p}`, stop: async () => { io.close(); } };
}
