// Reference cluster node for Herald's cluster benchmark (bench/run-cluster.sh): plain Node
// socket.io 4.7.2 with @socket.io/redis-adapter 8.3.0 (classic pub/sub, on two `redis` 4.x
// clients), the same handlers as bench/sio-server.js and `herald serve --test-handlers`:
//   echo(arg, ack)   -> ack(arg)
//   broadcast(arg)   -> io.emit('msg', arg)   (every socket of "/" on every node, the sender included)
// WebSocket and polling transports, no compression, connection state recovery OFF.
//
//   node bench/sio-redis-server.js PORT REDIS_URL [PREFIX]    (PORT 0 picks a free one; PREFIX is
//                                                              the adapter's key, default socket.io)
//
// Prints "listening on 127.0.0.1:PORT" once accepting and connected to Redis. GET /stats answers
// its counters as JSON: connects, disconnects, echoes, broadcasts (`broadcast` events received by
// this node's sockets), sockets (connected to "/" now).
// Exits cleanly on SIGINT/SIGTERM; exits 1 when Redis cannot be reached at start.
'use strict';

const http = require('http');
const path = require('path');
const modules = path.join(__dirname, '..', 'node_modules');
const { Server } = require(path.join(modules, 'socket.io'));
const { createAdapter } = require(path.join(modules, '@socket.io', 'redis-adapter'));
const { createClient } = require(path.join(modules, 'redis'));

const port = Number(process.argv[2] ?? 0);
const redisUrl = process.argv[3];
const prefix = process.argv[4] || 'socket.io';
if (!Number.isInteger(port) || port < 0 || port > 65535 || !/^redis:\/\//.test(redisUrl ?? '')) {
  console.error('usage: node bench/sio-redis-server.js PORT redis://HOST:PORT [PREFIX]');
  process.exit(2);
}

const stats = { connects: 0, disconnects: 0, echoes: 0, broadcasts: 0 };

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

  const httpServer = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/stats') {
      const body = JSON.stringify({ ...stats, sockets: io.of('/').sockets.size });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(404).end();
  });
  const io = new Server(httpServer, {
    serveClient: false,
    perMessageDeflate: false,
    httpCompression: false,
    adapter: createAdapter(pubClient, subClient, { key: prefix }),
  });
  io.on('connection', (socket) => {
    stats.connects++;
    socket.on('echo', (arg, ack) => {
      if (typeof ack === 'function') {
        stats.echoes++;
        ack(arg);
      }
    });
    socket.on('broadcast', (arg) => {
      stats.broadcasts++;
      io.emit('msg', arg);
    });
    socket.on('disconnect', () => stats.disconnects++);
  });

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
