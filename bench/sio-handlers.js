// The handlers every Node reference server of the benchmarks shares with `herald serve
// --test-handlers` on namespace "/", and its GET /stats answer:
//   echo(arg, ack)   -> ack(arg)
//   broadcast(arg)   -> io.emit('msg', arg)   (every socket of "/" on every node, the sender included)
// stats: connects (sockets connected to "/" since start), disconnects, echoes (acks sent),
// broadcasts (`broadcast` events received here), deliveries (msg packets handed to this node's
// sockets for them: broadcasts x sockets connected then).
'use strict';

/** A fresh stats object (all counters 0). */
function newStats() {
  return { connects: 0, disconnects: 0, echoes: 0, broadcasts: 0, deliveries: 0 };
}

/** Installs the handlers on io ("/"), counting into stats. */
function installHandlers(io, stats) {
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
    socket.on('disconnect', () => stats.disconnects++);
  });
}

/** An HTTP request handler answering GET /stats with stats and the sockets of "/" now (io from
 * getIo()), 404 to everything else; give it to the HTTP server before socket.io attaches, which
 * then hands it every request that is not its own. */
function statsRoute(getIo, stats) {
  return (req, res) => {
    if (req.method === 'GET' && req.url === '/stats') {
      const body = JSON.stringify({ ...stats, sockets: getIo().of('/').sockets.size });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(404).end();
  };
}

module.exports = { newStats, installHandlers, statsRoute };
