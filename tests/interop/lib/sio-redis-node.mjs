// A Node.js socket.io 4.7.2 node in a Redis cluster, for the cluster tests: socket.io's Server with
// @socket.io/redis-adapter 8.3.0 (classic pub/sub) on two `redis` 4.x clients, listening on a free
// loopback port, with handlers that mirror Herald's --test-handlers where the tests need them:
//   `join` room (ack {ok:true}), `echo` x (ack x),
//   `broadcast-to` {rooms, except, event, data} (to those sockets of every node; ack {ok:true}).
// Namespaces "/" and "/custom". `const node = await startNodeNode({ redisUrl, prefix })`, then
// node.port, node.url, node.io (the Server, to emit from it), node.stop().
import http from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';

function handlers(nsp) {
  nsp.on('connection', (socket) => {
    socket.on('join', (room, ack) => { socket.join(room); ack?.({ ok: true }); });
    socket.on('echo', (x, ack) => ack?.(x));
    socket.on('broadcast-to', (opt, ack) => {
      let op = nsp;
      for (const r of opt.rooms ?? []) op = op.to(r);
      for (const r of opt.except ?? []) op = op.except(r);
      op.emit(opt.event, opt.data ?? null);
      ack?.({ ok: true });
    });
  });
}

export async function startNodeNode({ redisUrl, prefix = 'socket.io' }) {
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  pubClient.on('error', () => {}); // reconnects by itself; the test sees the effect
  subClient.on('error', () => {});
  await Promise.all([pubClient.connect(), subClient.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pubClient, subClient, { key: prefix }) });
  handlers(io.of('/'));
  handlers(io.of('/custom'));
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = httpServer.address().port;
  return {
    io, port, pubClient,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      io.close();
      await new Promise((resolve) => httpServer.close(() => resolve()));
      await Promise.allSettled([pubClient.quit(), subClient.quit()]);
    },
  };
}

// Standalone: node tests/interop/lib/sio-redis-node.mjs redis://127.0.0.1:6379 [prefix]
if (import.meta.url === `file://${process.argv[1]}`) {
  const node = await startNodeNode({ redisUrl: process.argv[2], prefix: process.argv[3] || 'socket.io' });
  console.log(`socket.io node listening on ${node.url}`);
}
