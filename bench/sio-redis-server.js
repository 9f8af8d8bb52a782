// Reference cluster node for Herald's cluster benchmark (bench/run-cluster.sh): plain Node
// socket.io 4.7.2 with @socket.io/redis-adapter 8.3.0 (classic pub/sub, on two `redis` 4.x
// clients), the handlers of bench/sio-handlers.js (as bench/sio-server.js and `herald serve
// --test-handlers`):
// WebSocket and polling transports, no compression, connection state recovery OFF.
//
//   node bench/sio-redis-server.js PORT REDIS_URL [PREFIX]    (PORT 0 picks a free one; PREFIX is
//                                                              the adapter's key, default socket.io)
//
// Prints "listening on 127.0.0.1:PORT" once accepting and connected to Redis. GET /stats answers
// its counters as JSON (bench/sio-handlers.js) and sockets (connected to "/" now).
// Exits cleanly on SIGINT/SIGTERM; exits 1 when Redis cannot be reached at start.
'use strict';

const http = require('http');
const path = require('path');
const modules = path.join(__dirname, '..', 'node_modules');
const { Server } = require(path.join(modules, 'socket.io'));
const { createAdapter } = require(path.join(modules, '@socket.io', 'redis-adapter'));
const { createClient } = require(path.join(modules, 'redis'));
const { newStats, installHandlers, statsRoute } = require('./sio-handlers');

const port = Number(process.argv[2] ?? 0);
const redisUrl = process.argv[3];
const prefix = process.argv[4] || 'socket.io';
if (!Number.isInteger(port) || port < 0 || port > 65535 || !/^redis:\/\//.test(redisUrl ?? '')) {
  console.error('usage: node bench/sio-redis-server.js PORT redis://HOST:PORT [PREFIX]');
  process.exit(2);
}

async function main() {
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  let started = false;
  for (const c of [pubClient, subClient]) {
    c.on('error', (err) => {
      if (!started) {
        console.error(`sio-redis-server: redis: ${err.message}`);
        process.exit(1);
      }
    });
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);
  started = true;

  const stats = newStats();
  const httpServer = http.createServer(statsRoute(() => io, stats));
  const io = new Server(httpServer, {
    serveClient: false,
    perMessageDeflate: false,
    httpCompression: false,
    adapter: createAdapter(pubClient, subClient, { key: prefix }),
  });
  installHandlers(io, stats);

  httpServer.on('error', (err) => {
    console.error(`sio-redis-server: ${err.message}`);
    process.exit(1);
  });
  httpServer.listen(port, '127.0.0.1', 511, () => {
    console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
  });

  const shutdown = () => {
    io.close(() => {
      Promise.allSettled([pubClient.quit(), subClient.quit()]).then(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err) => {
  console.error(`sio-redis-server: ${err.message}`);
  process.exit(1);
});
