// Reference WebSocket echo server for Herald's benchmarks: plain Node `ws`, no compression,
// every message sent back with the opcode it came with. Same contract as
// `herald serve --echo-endpoint`: ws://127.0.0.1:PORT/ws/echo.
//
//   node bench/ws-echo-server.js PORT        (PORT 0 picks a free one)
//
// With BENCH_TLS_CERT and BENCH_TLS_KEY (PEM files) in the environment it serves wss:// instead
// (Node's https server under the same `ws`). Prints "listening on 127.0.0.1:PORT" once accepting;
// exits cleanly on SIGINT/SIGTERM.
'use strict';

const fs = require('fs');
const https = require('https');
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '..', 'node_modules', 'ws'));

const port = Number(process.argv[2] ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node bench/ws-echo-server.js PORT');
  process.exit(2);
}

const { BENCH_TLS_CERT: cert, BENCH_TLS_KEY: key } = process.env;
const tlsServer = cert && key ? https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }) : null;
const wss = new WebSocketServer({
  ...(tlsServer ? { server: tlsServer } : { host: '127.0.0.1', port }),
  path: '/ws/echo',
  perMessageDeflate: false,
  backlog: 511, // Node's default, stated so both servers are compared at the same listen queue
});
if (tlsServer) {
  tlsServer.on('error', (err) => { console.error(`ws-echo-server: ${err.message}`); process.exit(1); });
  tlsServer.listen(port, '127.0.0.1', 511, () => console.log(`listening on 127.0.0.1:${tlsServer.address().port} (tls)`));
}

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // a reset peer must not bring the server down
});

wss.on('listening', () => { // plain only: with TLS the https server says it above
  console.log(`listening on 127.0.0.1:${wss.address().port}`);
});

wss.on('error', (err) => {
  console.error(`ws-echo-server: ${err.message}`);
  process.exit(1);
});

function shutdown() {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
