// Reference Socket.IO server for Herald's benchmarks: plain Node socket.io 4.7.2 with the handlers
// of bench/sio-handlers.js (those of `herald serve --test-handlers`: echo with ack, broadcast).
// WebSocket and polling transports, no compression, connection state recovery OFF.
//
//   node bench/sio-server.js PORT        (PORT 0 picks a free one)
//
// With BENCH_TLS_CERT and BENCH_TLS_KEY (PEM files) in the environment it serves https:// and
// wss:// (Node's https server). Prints "listening on 127.0.0.1:PORT" once accepting. GET /stats answers the counters of bench/sio-handlers.js
// as JSON (for the benchmark's cross-checks); exits cleanly on SIGINT/SIGTERM.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const { Server } = require(path.join(__dirname, '..', 'node_modules', 'socket.io'));
const { newStats, installHandlers, statsRoute } = require('./sio-handlers');

const port = Number(process.argv[2] ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node bench/sio-server.js PORT');
  process.exit(2);
}

const { BENCH_TLS_CERT: cert, BENCH_TLS_KEY: key } = process.env;
const tlsOptions = cert && key ? { cert: fs.readFileSync(cert), key: fs.readFileSync(key) } : null;
const stats = newStats();
const route = statsRoute(() => io, stats);
const httpServer = tlsOptions ? https.createServer(tlsOptions, route) : http.createServer(route);
const io = new Server(httpServer, {
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  // connectionStateRecovery is left unset: off, as Herald runs with --recovery-window 0
});
installHandlers(io, stats);

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
