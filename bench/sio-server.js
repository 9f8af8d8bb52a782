// Reference Socket.IO server for Herald's benchmarks: plain Node socket.io 4.7.2, the same
// handlers as `herald serve --test-handlers` on namespace "/":
//   echo(arg, ack)   -> ack(arg)
//   broadcast(arg)   -> io.emit('msg', arg)   (every socket of "/", the sender included)
// WebSocket and polling transports, no compression, connection state recovery OFF.
//
//   node bench/sio-server.js PORT        (PORT 0 picks a free one)
//
// With BENCH_TLS_CERT and BENCH_TLS_KEY (PEM files) in the environment it serves https:// and
// wss:// (Node's https server). Prints "listening on 127.0.0.1:PORT" once accepting. GET /stats answers the counters below
// as JSON (for the benchmark's cross-checks); exits cleanly on SIGINT/SIGTERM.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const { Server } = require(path.join(__dirname, '..', 'node_modules', 'socket.io'));

const port = Number(process.argv[2] ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node bench/sio-server.js PORT');
  process.exit(2);
}

// connects: sockets connected to "/" since start; echoes: acks sent; broadcasts: `broadcast`
// events; deliveries: msg packets handed to sockets (broadcasts x sockets connected then).
const stats = { connects: 0, disconnects: 0, echoes: 0, broadcasts: 0, deliveries: 0 };

const { BENCH_TLS_CERT: cert, BENCH_TLS_KEY: key } = process.env;
const tlsOptions = cert && key ? { cert: fs.readFileSync(cert), key: fs.readFileSync(key) } : null;
const httpServer = (tlsOptions ? https.createServer.bind(null, tlsOptions) : http.createServer)((req, res) => {
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
  // connectionStateRecovery is left unset: off, as Herald runs with --recovery-window 0
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
    stats.deliveries += io.of('/').sockets.size;
    io.emit('msg', arg);
  });
  socket.on('disconnect', () => {
    stats.disconnects++;
  });
});

httpServer.on('error', (err) => {
  console.error(`sio-server: ${err.message}`);
  process.exit(1);
});

// backlog 511: Node's default, stated so both servers are compared at the same listen queue
httpServer.listen(port, '127.0.0.1', 511, () => {
  console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
});

function shutdown() {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
