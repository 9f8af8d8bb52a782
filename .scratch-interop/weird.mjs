import net from 'node:net';
import { startHerald } from '../tests/interop/lib/server.mjs';
const srv = await startHerald(['--echo-endpoint', '--max-body-size', '100', '--log-level', 'debug'], { webRoot: new URL('./www', import.meta.url).pathname });
const up = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
const reqs = [
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}Content-Length: 5\r\n\r\nhello`,
  `GET /health HTTP/1.1\r\nHost: x\r\n${up}\r\n\x81\x85abcd12345`,
  `CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE`,
  `GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0\r\n\r\n`,
  `POST /ws/echo HTTP/1.1\r\nHost: x\r\n${up}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}Sec-WebSocket-Extensions: ${'permessage-deflate; '.repeat(50)}\r\n\r\n`,
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits="1\\5"\r\n\r\n`,
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits="\r\n\r\n`,
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\r\n\r\n`,
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}Sec-WebSocket-Extensions: ${'x'.repeat(3000)}, permessage-deflate\r\n\r\n`,
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10; client_no_context_takeover; server_no_context_takeover\r\n\r\n`,
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}Origin: ${'o'.repeat(5000)}\r\n\r\n`,
  `GET /${'%41'.repeat(700)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  `GET /${'a/'.repeat(1500)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  `GET /${'a'.repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  `GET /?${'q=1&'.repeat(1500)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  `OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n`,
  `OPTIONS /health HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: ${'h'.repeat(2000)}\r\n\r\n`,
  `GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n`,
  `GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n`,
  `GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`,
  `GET /health HTTP/1.1\r\nHost: x\r\nIf-None-Match: ${'"a",'.repeat(100)}\r\n\r\n`,
  `GET /two.bin HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/"\r\n\r\n`,
  `GET /two.bin HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n`,
  `GET /two.bin HTTP/1.1\r\nHost: x\r\nIf-None-Match: ${'x'.repeat(300)}\r\n\r\n`,
  `GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n`,
  `GET / HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(300),
  `HEAD /two.bin HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(50),
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}\r\n` + '\x88\x80abcd',
  `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${up}\r\n` + '\x01\x80abcd' + '\x80\x80abcd' + '\x88\x82abcd' + 'ab',
];
for (const [i, r] of reqs.entries()) {
  const out = await new Promise((res) => {
    const s = net.connect(srv.port, '127.0.0.1', () => s.write(Buffer.from(r, 'latin1')));
    let b = Buffer.alloc(0); s.on('data', d => b = Buffer.concat([b, d])); s.on('close', () => res(b)); s.on('error', () => {});
    setTimeout(() => { s.destroy(); res(b); }, 700);
  });
  console.log(i, JSON.stringify(out.toString('latin1').split('\r\n')[0]), out.length);
}
const r = await srv.stop();
console.log(r, /AddressSanitizer|runtime error/.test(srv.log) ? 'SANITIZER' : 'clean');
