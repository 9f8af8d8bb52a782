// HTTP/1.1 serving: keep-alive, pipelining, chunked bodies, error bodies, HEAD, request limits,
// static files (types, ETag, caching, path traversal), CORS, /health and /metrics. Raw sockets
// where a client library would normalise or hide what is on the wire.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startHerald } from './lib/server.mjs';

// ---- a raw HTTP/1.1 connection ----

class HttpConn {
  static open(port) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port });
      sock.once('connect', () => resolve(new HttpConn(sock)));
      sock.once('error', reject);
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.waiters = [];
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.#wake(); });
    const onEnd = () => { this.ended = true; this.#wake(); };
    sock.on('end', onEnd);
    sock.on('close', onEnd);
    sock.on('error', onEnd);
  }

  #wake() { for (const w of this.waiters.splice(0)) w(); }

  async #wait(deadline) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out; buffered: ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
    await new Promise((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
  }

  write(data) { this.sock.write(data); }

  /** The next response. head: it answers a HEAD request (no body whatever Content-Length says). */
  async response({ head = false, ms = 5000 } = {}) {
    const deadline = Date.now() + ms;
    let end;
    while ((end = this.buf.indexOf('\r\n\r\n')) < 0) {
      if (this.ended) throw new Error(`connection ended before a response; buffered: ${this.buf.toString('latin1')}`);
      await this.#wait(deadline);
    }
    const headText = this.buf.subarray(0, end).toString('latin1');
    const [statusLine, ...lines] = headText.split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
    assert.ok(m, `bad status line: ${statusLine}`);
    const status = Number(m[1]);
    const headers = {};
    const rawHeaders = [];
    for (const l of lines) {
      const i = l.indexOf(':');
      const name = l.slice(0, i).trim().toLowerCase(), value = l.slice(i + 1).trim();
      rawHeaders.push([name, value]);
      headers[name] = headers[name] !== undefined ? `${headers[name]}, ${value}` : value;
    }
    let len = 0;
    if (!head && status !== 204 && status !== 304 && status >= 200) {
      assert.ok(headers['content-length'] !== undefined, `response ${status} without Content-Length`);
      len = Number(headers['content-length']);
    }
    while (this.buf.length < end + 4 + len) {
      if (this.ended) throw new Error('connection ended inside a body');
      await this.#wait(deadline);
    }
    const body = Buffer.from(this.buf.subarray(end + 4, end + 4 + len));
    this.buf = this.buf.subarray(end + 4 + len);
    return { status, headers, rawHeaders, body, text: body.toString('utf8'), json: () => JSON.parse(body.toString('utf8')) };
  }

  /** True when the server closes the connection within ms (after any buffered bytes). */
  async closedWithin(ms = 3000) {
    const deadline = Date.now() + ms;
    while (!this.ended) {
      if (Date.now() >= deadline) return false;
      await this.#wait(deadline).catch(() => {});
    }
    return true;
  }

  destroy() { this.sock.destroy(); }
}

/** One request on a fresh connection; returns the response and whether the server then closed. */
async function exchange(port, request, { head = false } = {}) {
  const c = await HttpConn.open(port);
  try {
    c.write(request);
    const res = await c.response({ head });
    return res;
  } finally {
    c.destroy();
  }
}

const get = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;

function assertJsonError(res, status) {
  assert.equal(res.status, status);
  assert.match(res.headers['content-type'], /^application\/json/);
  const j = res.json();
  assert.equal(j.code, status);
  assert.equal(typeof j.message, 'string');
  assert.ok(j.message.length > 0);
}

// ---- a temporary web root with one file per type, a dotfile, symlinks in and out ----

const tmp = mkdtempSync(join(tmpdir(), 'herald-http-'));
const webRoot = join(tmp, 'root');
const SECRET = 'TOP-SECRET-OUTSIDE-THE-WEB-ROOT';
mkdirSync(webRoot);
mkdirSync(join(webRoot, 'sub'));
mkdirSync(join(webRoot, 'a'));
mkdirSync(join(tmp, 'outside'));
writeFileSync(join(tmp, 'secret.txt'), SECRET);
writeFileSync(join(tmp, 'outside', 'secret.html'), SECRET);
const FILES = {
  'index.html': ['<!doctype html><title>home</title>', /^text\/html/],
  'style.css': ['body { color: red }', /^text\/css/],
  'app.js': ['console.log("hi")', /^(text|application)\/javascript/],
  'data.json': ['{"a":1}', /^application\/json/],
  'logo.svg': ['<svg xmlns="http://www.w3.org/2000/svg"/>', /^image\/svg\+xml/],
  'pixel.png': [Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), /^image\/png/],
};
for (const [name, [content]] of Object.entries(FILES)) writeFileSync(join(webRoot, name), content);
writeFileSync(join(webRoot, 'sub', 'index.html'), '<p>sub index</p>');
const BIG = Buffer.alloc(1024 * 1024 + 3);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 2654435761) >>> 24;
writeFileSync(join(webRoot, 'big.bin'), BIG);
writeFileSync(join(webRoot, 'edge16k.txt'), 'e'.repeat(16384));
writeFileSync(join(webRoot, 'edge16k1.txt'), 'f'.repeat(16385));
writeFileSync(join(webRoot, 'a b.txt'), 'space in name');
writeFileSync(join(webRoot, 'empty.txt'), '');
writeFileSync(join(webRoot, 'changing.txt'), 'version 1');
mkdirSync(join(webRoot, 'noindex'));
writeFileSync(join(webRoot, 'noindex', 'other.txt'), 'x');
execFileSync('mkfifo', [join(webRoot, 'fifo.html')]);
writeFileSync(join(webRoot, '.hidden'), SECRET);
writeFileSync(join(webRoot, 'a', '.env'), SECRET);
symlinkSync(join(tmp, 'secret.txt'), join(webRoot, 'escape.txt'));
symlinkSync(join(tmp, 'outside'), join(webRoot, 'escapedir'));
symlinkSync(join(webRoot, 'style.css'), join(webRoot, 'inside-link.css'));

after(() => rmSync(tmp, { recursive: true, force: true }));

// ---- the main server ----

describe('HTTP basics (default limits, no CORS)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--echo-endpoint'], { webRoot }); });
  after(async () => { if (srv) await srv.stop(); });

  test('keep-alive: two requests on one socket', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write(get('/health'));
      const r1 = await c.response();
      assert.equal(r1.status, 200);
      assert.match(r1.headers.connection, /keep-alive/i);
      c.write(get('/health'));
      const r2 = await c.response();
      assert.equal(r2.status, 200);
      assert.equal(r2.json().status, 'ok');
      assert.equal(c.ended, false);
    } finally { c.destroy(); }
  });

  test('Connection: close is honoured', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write(get('/health', 'Connection: close\r\n'));
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.match(r.headers.connection, /close/i);
      assert.ok(await c.closedWithin(2000));
    } finally { c.destroy(); }
  });

  test('HTTP/1.0 without keep-alive is closed after the response', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write('GET /health HTTP/1.0\r\n\r\n');
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.ok(await c.closedWithin(2000));
    } finally { c.destroy(); }
  });

  test('pipelining: three requests in one write, three responses in order', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write(get('/health') + get('/no/such/thing') + get('/metrics'));
      const r1 = await c.response(), r2 = await c.response(), r3 = await c.response();
      assert.equal(r1.status, 200);
      assert.equal(r1.json().status, 'ok');
      assert.equal(r2.status, 404);
      assert.equal(r3.status, 200);
      assert.match(r3.text, /herald_up 1/);
    } finally { c.destroy(); }
  });

  test('pipelining: 50 requests in one write, including static files answered off the loop', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      const paths = [];
      for (let i = 0; i < 50; i++) paths.push(['/health', '/style.css', '/nope', '/data.json'][i % 4]);
      c.write(paths.map((p) => get(p)).join(''));
      for (const p of paths) {
        const r = await c.response();
        if (p === '/nope') assert.equal(r.status, 404);
        else assert.equal(r.status, 200, `response for ${p}`);
        if (p === '/style.css') assert.equal(r.text, FILES['style.css'][0]);
        if (p === '/data.json') assert.equal(r.text, FILES['data.json'][0]);
      }
    } finally { c.destroy(); }
  });

  test('chunked request body is consumed (POST /health -> 405, then the next request works)', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write('POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n' +
        '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n' + get('/health'));
      const r1 = await c.response();
      assertJsonError(r1, 405);
      assert.match(r1.headers.allow, /GET/);
      const r2 = await c.response();
      assert.equal(r2.status, 200, 'the chunked body was not taken for the next request');
    } finally { c.destroy(); }
  });

  test('chunked body sent in pieces with chunk extensions and trailers', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      const parts = ['POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', '3;ext=1\r\nabc\r\n',
        '0\r\nX-Trailer: yes\r\n\r\n', get('/health')];
      for (const p of parts) { c.write(p); await new Promise((r) => setTimeout(r, 20)); }
      assert.equal((await c.response()).status, 405);
      assert.equal((await c.response()).status, 200);
    } finally { c.destroy(); }
  });

  test('Content-Length body is consumed too', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write('POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nGET / HTTP/' + get('/health'));
      assert.equal((await c.response()).status, 405);
      assert.equal((await c.response()).status, 200);
    } finally { c.destroy(); }
  });

  test('404 has a JSON body {code, message}', async () => {
    const r = await exchange(srv.port, get('/definitely/not/here'));
    assertJsonError(r, 404);
  });

  test('405 has a JSON body and an Allow header', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = await exchange(srv.port, `${method} /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
      assertJsonError(r, 405);
      assert.ok(r.headers.allow, 'Allow header');
      assert.match(r.headers.allow, /\bGET\b/);
      assert.match(r.headers.allow, /\bHEAD\b/);
    }
  });

  test('HEAD has the headers of GET and no body', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      // HEAD then GET pipelined: the GET response must start right after the HEAD headers.
      c.write(`HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n` + get('/style.css'));
      const h = await c.response({ head: true });
      const g = await c.response();
      assert.equal(h.status, 200);
      assert.equal(h.body.length, 0);
      assert.equal(h.headers['content-length'], String(Buffer.byteLength(FILES['style.css'][0])));
      assert.equal(h.headers['content-type'], g.headers['content-type']);
      assert.equal(h.headers.etag, g.headers.etag);
      assert.equal(g.status, 200);
      assert.equal(g.text, FILES['style.css'][0]);
    } finally { c.destroy(); }
  });

  test('HEAD /health has no body', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write(`HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n` + get('/health'));
      const h = await c.response({ head: true });
      assert.equal(h.status, 200);
      assert.ok(Number(h.headers['content-length']) > 0);
      const g = await c.response();
      assert.equal(g.status, 200);
      assert.equal(g.json().status, 'ok');
    } finally { c.destroy(); }
  });

  test('malformed requests -> 400 JSON and the connection closes', async () => {
    const bad = [
      'GET /\r\n\r\n', // HTTP/0.9
      'GET / H/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.1 junk\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n', // HTTP/1.1 without Host
      'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'GET / HTTP/2.0\r\nHost: x\r\n\r\n',
    ];
    for (const req of bad) {
      const c = await HttpConn.open(srv.port);
      try {
        c.write(req);
        const r = await c.response();
        assert.ok([400, 505].includes(r.status), `${JSON.stringify(req)} -> ${r.status}`);
        assertJsonError(r, r.status);
        assert.match(r.headers.connection, /close/i, `${JSON.stringify(req)}: Connection: close`);
        assert.ok(await c.closedWithin(2000), `${JSON.stringify(req)}: connection closed`);
      } finally { c.destroy(); }
    }
  });

  test('request line with a misspelt protocol name (HTTX/1.1) -> 400 JSON, closed', async () => {
    // Each byte of "HTTP" must be checked; a lenient parser takes any H??? for HTTP.
    for (const proto of ['HTTX/1.1', 'HXXX/1.1', 'HTTP-1.1']) {
      const c = await HttpConn.open(srv.port);
      try {
        c.write(`GET / ${proto}\r\nHost: x\r\n\r\n`);
        const r = await c.response();
        assertJsonError(r, 400);
        assert.ok(await c.closedWithin(2000), `${proto}: connection closed`);
      } finally { c.destroy(); }
    }
  });

  test('binary garbage as request line (a TLS ClientHello) -> 400 JSON, closed', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write(Buffer.from('160301006e0100006a03036b2f6a2f1e8bfa3c000002c02f01000040', 'hex'));
      c.write('\r\n\r\n');
      const r = await c.response();
      assertJsonError(r, 400);
      assert.ok(await c.closedWithin(2000));
    } finally { c.destroy(); }
  });

  test('absolute-form request target is routed by its path (RFC 9112 3.2.2)', async () => {
    const r = await exchange(srv.port, `GET http://127.0.0.1:${srv.port}/style.css HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    assert.equal(r.status, 200);
    assert.equal(r.text, FILES['style.css'][0]);
  });

  test('an unknown method -> 501 or 400, JSON, closed', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write('FROB / HTTP/1.1\r\nHost: x\r\n\r\n');
      const r = await c.response();
      assert.ok([400, 501].includes(r.status), `status ${r.status}`);
      assertJsonError(r, r.status);
      assert.ok(await c.closedWithin(2000));
    } finally { c.destroy(); }
  });

  // ---- static files ----

  for (const [name, [content, type]] of Object.entries(FILES)) {
    test(`static ${name}: content and Content-Type`, async () => {
      const r = await exchange(srv.port, get(`/${name}`));
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], type);
      assert.ok(Buffer.compare(r.body, Buffer.from(content)) === 0);
    });
  }

  test('static: / and /sub/ serve index.html', async () => {
    const r = await exchange(srv.port, get('/'));
    assert.equal(r.status, 200);
    assert.equal(r.text, FILES['index.html'][0]);
    const s = await exchange(srv.port, get('/sub/'));
    assert.equal(s.status, 200);
    assert.equal(s.text, '<p>sub index</p>');
  });

  test('static: query strings are ignored for lookup', async () => {
    const r = await exchange(srv.port, get('/style.css?v=123'));
    assert.equal(r.status, 200);
    assert.equal(r.text, FILES['style.css'][0]);
  });

  test('static: large and boundary-sized files arrive intact', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write(get('/big.bin') + get('/edge16k.txt') + get('/edge16k1.txt') + get('/empty.txt'));
      const big = await c.response();
      assert.equal(big.status, 200);
      assert.equal(big.headers['content-type'], 'application/octet-stream');
      assert.ok(Buffer.compare(big.body, BIG) === 0, 'big.bin content');
      assert.equal((await c.response()).text, 'e'.repeat(16384));
      assert.equal((await c.response()).text, 'f'.repeat(16385));
      const empty = await c.response();
      assert.equal(empty.status, 200);
      assert.equal(empty.headers['content-length'], '0');
    } finally { c.destroy(); }
  });

  test('static: percent-encoded names are decoded', async () => {
    assert.equal((await exchange(srv.port, get('/a%20b.txt'))).text, 'space in name');
    assert.equal((await exchange(srv.port, get('/st%79le.css'))).text, FILES['style.css'][0]);
  });

  test('static: a malformed percent escape is refused (400 or 404), never 500', async () => {
    for (const p of ['/style.css%', '/style.css%2', '/%zz']) {
      const r = await exchange(srv.port, get(p));
      assert.ok([400, 404].includes(r.status), `${p} -> ${r.status}`);
    }
  });

  test('HEAD of a missing resource: 404 headers, no body', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write('HEAD /nope.css HTTP/1.1\r\nHost: x\r\n\r\n' + get('/health'));
      const h = await c.response({ head: true });
      assert.equal(h.status, 404);
      const g = await c.response();
      assert.equal(g.status, 200, 'a body after the HEAD response would have broken this one');
    } finally { c.destroy(); }
  });

  test('a request written one byte at a time', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      const req = Buffer.from(get('/data.json', 'X-Test: drip\r\n') + get('/health'));
      for (const b of req) {
        c.write(Buffer.from([b]));
        await new Promise((r) => setImmediate(r));
      }
      const r1 = await c.response();
      assert.equal(r1.status, 200);
      assert.equal(r1.text, FILES['data.json'][0]);
      assert.equal((await c.response()).status, 200);
    } finally { c.destroy(); }
  });

  test('a client that disconnects while its static file is being read does not upset the server', async () => {
    for (let i = 0; i < 20; i++) {
      const c = await HttpConn.open(srv.port);
      c.write(get('/big.bin'));
      if (i % 2) await new Promise((r) => setImmediate(r));
      c.sock.resetAndDestroy();
    }
    assert.equal((await exchange(srv.port, get('/health'))).status, 200);
  });

  test('static: missing file -> 404 JSON', async () => {
    assertJsonError(await exchange(srv.port, get('/missing.css')), 404);
  });

  test('static: ETag, If-None-Match -> 304 without body, Cache-Control: no-cache by default', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write(get('/app.js'));
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.ok(r.headers.etag, 'ETag header');
      assert.match(r.headers.etag, /^(W\/)?"[^"]+"$/);
      assert.equal(r.headers['cache-control'], 'no-cache');
      c.write(get('/app.js', `If-None-Match: ${r.headers.etag}\r\n`));
      const n = await c.response();
      assert.equal(n.status, 304);
      assert.equal(n.body.length, 0);
      assert.equal(n.headers.etag, r.headers.etag);
      assert.equal(n.headers['content-length'], undefined);
      // a list containing the tag, and a weak form of it, also match
      c.write(get('/app.js', `If-None-Match: "nope", W/${r.headers.etag}\r\n`));
      assert.equal((await c.response()).status, 304);
      c.write(get('/app.js', 'If-None-Match: "other"\r\n'));
      const o = await c.response();
      assert.equal(o.status, 200);
      assert.equal(o.text, FILES['app.js'][0]);
    } finally { c.destroy(); }
  });

  test('static: the ETag changes with the file; the old one no longer gets 304', async () => {
    const r1 = await exchange(srv.port, get('/changing.txt'));
    assert.equal(r1.text, 'version 1');
    writeFileSync(join(webRoot, 'changing.txt'), 'version 2'); // same size
    utimesSync(join(webRoot, 'changing.txt'), new Date(), new Date(Date.now() + 5000));
    const r2 = await exchange(srv.port, get('/changing.txt', `If-None-Match: ${r1.headers.etag}\r\n`));
    assert.equal(r2.status, 200);
    assert.equal(r2.text, 'version 2');
    assert.notEqual(r2.headers.etag, r1.headers.etag);
  });

  test('static: a FIFO in the web root is refused promptly, not read', async () => {
    const t0 = Date.now();
    const r = await exchange(srv.port, get('/fifo.html'));
    assert.ok([403, 404].includes(r.status), `status ${r.status}`);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal((await exchange(srv.port, get('/health'))).status, 200, 'a worker thread is not stuck on it');
  });

  test('static: a directory without index.html -> 404 (no listing)', async () => {
    for (const p of ['/noindex/', '/noindex']) {
      const r = await exchange(srv.port, get(p));
      assert.equal(r.status, 404, p);
      assert.ok(!r.text.includes('other.txt'));
    }
  });

  test('static: a symlink inside the root to a file inside the root is served', async () => {
    const r = await exchange(srv.port, get('/inside-link.css'));
    assert.equal(r.status, 200);
    assert.equal(r.text, FILES['style.css'][0]);
  });

  const TRAVERSALS = [
    '/../etc/passwd',
    '/../../../../../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd',
    '/..%2f..%2fetc/passwd',
    '/..%2F..%2F..%2F..%2Fetc%2Fpasswd',
    '/sub/../../secret.txt',
    '/sub/%2e%2e/%2e%2e/secret.txt',
    '/..%5c..%5csecret.txt',
    '/.%2e/secret.txt',
    '/a/%00.html',
    '/index.html%00.css',
    '/.hidden',
    '/a/.env',
    '/%2ehidden',
    '/escape.txt',
    '/escapedir/secret.html',
    '/escapedir/',
    '//etc/passwd',
    '/%2fetc%2fpasswd',
    '/%c0%ae%c0%ae/secret.txt',
  ];
  for (const path of TRAVERSALS) {
    test(`traversal ${path} never serves outside content`, async () => {
      const r = await exchange(srv.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.notEqual(r.status, 200, `${path} -> 200 ${r.text.slice(0, 80)}`);
      assert.ok([400, 403, 404].includes(r.status), `${path} -> ${r.status}`);
      assert.ok(!r.text.includes(SECRET), 'secret leaked');
      assert.ok(!/root:.*:0:0:/.test(r.text), '/etc/passwd leaked');
    });
  }

  // ---- health and metrics ----

  test('/health JSON fields, counting an open echo socket', async () => {
    const ws = new WebSocket(srv.wsUrl(), { perMessageDeflate: false });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    try {
      const r = await exchange(srv.port, get('/health'));
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^application\/json/);
      const h = r.json();
      assert.equal(h.status, 'ok');
      assert.equal(typeof h.version, 'string');
      assert.match(h.version, /^\d+\.\d+\.\d+/);
      assert.equal(typeof h.uptime, 'number');
      assert.ok(h.uptime >= 0);
      assert.equal(typeof h.connections, 'object');
      assert.ok(h.connections.total >= 2, `total ${h.connections.total}`); // the echo socket + this request
      assert.ok(h.connections.http >= 1);
      assert.ok(h.connections.websocket >= 1);
      assert.equal(h.connections.total, h.connections.http + h.connections.websocket);
      assert.ok(h.websocket.byProtocol.echo >= 1, JSON.stringify(h.websocket));
      const before = h.websocket.byProtocol.echo;
      await new Promise((resolve) => { ws.once('close', resolve); ws.close(1000); });
      // the server notices the close right after answering it
      let after = before;
      for (let i = 0; i < 40 && after >= before; i++) {
        await new Promise((r2) => setTimeout(r2, 25));
        after = (await exchange(srv.port, get('/health'))).json().websocket.byProtocol.echo;
      }
      assert.equal(after, before - 1, 'echo count drops when the socket closes');
    } finally { ws.terminate(); }
  });

  test('/metrics: Prometheus text with the core series', async () => {
    assert.equal((await exchange(srv.port, get('/this-is-a-404'))).status, 404);
    const ws = new WebSocket(srv.wsUrl(), { perMessageDeflate: false });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    try {
      await new Promise((resolve) => { ws.once('message', resolve); ws.send('count me'); });
      const r = await exchange(srv.port, get('/metrics'));
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^text\/plain/);
      const t = r.text;
      for (const re of [/^herald_connections\{protocol="http"\} \d+$/m, /^herald_connections\{protocol="echo"\} [1-9]\d*$/m,
        /^herald_ws_frames_total\{direction="in"\} [1-9]\d*$/m, /^herald_ws_frames_total\{direction="out"\} [1-9]\d*$/m,
        /^herald_bytes_total\{direction="in"\} [1-9]\d*$/m, /^herald_bytes_total\{direction="out"\} [1-9]\d*$/m,
        /^herald_http_requests_total\{status="404"\} [1-9]\d*$/m, /^herald_http_requests_total\{status="200"\} [1-9]\d*$/m,
        /^herald_event_loop_lag_seconds \d+(\.\d+)?$/m, /^# TYPE herald_connections gauge$/m,
        /^# TYPE herald_http_requests_total counter$/m]) {
        assert.match(t, re);
      }
      // every sample line is `name{labels} value`
      for (const line of t.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        assert.match(line, /^[a-z_:][a-z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$/, line);
      }
    } finally { ws.terminate(); }
  });

  test('no CORS headers without --cors-origin', async () => {
    const r = await exchange(srv.port, get('/health', 'Origin: http://a.example\r\n'));
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  });
});

describe('static file larger than --max-backpressure (default 8 MiB)', () => {
  let srv, root;
  const NINE = Buffer.alloc(9 * 1024 * 1024);
  for (let i = 0; i < NINE.length; i += 4) NINE.writeUInt32LE((i * 2654435761) >>> 0, i);
  before(async () => {
    root = join(tmp, 'bigroot');
    mkdirSync(root);
    writeFileSync(join(root, 'nine.bin'), NINE);
    srv = await startHerald([], { webRoot: root });
  });
  after(async () => { if (srv) await srv.stop(); });

  test('a 9 MiB file is served whole (the connection is not dropped without a response)', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write(get('/nine.bin'));
      const r = await c.response({ ms: 15000 });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, NINE.length);
      assert.ok(Buffer.compare(r.body, NINE) === 0);
    } finally { c.destroy(); }
  });

  test('HEAD of the 9 MiB file reports its length', async () => {
    const r = await exchange(srv.port, `HEAD /nine.bin HTTP/1.1\r\nHost: x\r\n\r\n`, { head: true });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(NINE.length));
  });
});

describe('request limits', () => {
  let srv;
  before(async () => {
    srv = await startHerald(['--max-request-line', '256', '--max-header-size', '1024', '--max-header-count', '8',
      '--max-body-size', '100'], { webRoot });
  });
  after(async () => { if (srv) await srv.stop(); });

  async function limited(request, status) {
    const c = await HttpConn.open(srv.port);
    try {
      c.write(request);
      const r = await c.response();
      assertJsonError(r, status);
      assert.match(r.headers.connection, /close/i);
      assert.ok(await c.closedWithin(2000), 'connection closed after the error');
    } finally { c.destroy(); }
  }

  test('request line within the limit is served', async () => {
    const r = await exchange(srv.port, get('/style.css?' + 'q'.repeat(150)));
    assert.equal(r.status, 200);
  });

  test('request line > --max-request-line -> 414', () => limited(get('/' + 'a'.repeat(400)), 414));

  test('request line > limit sent slowly, never ending -> 414 without waiting for the rest', async () => {
    const c = await HttpConn.open(srv.port);
    try {
      c.write('GET /' + 'b'.repeat(300)); // no end of line ever sent
      const r = await c.response();
      assertJsonError(r, 414);
      assert.ok(await c.closedWithin(2000));
    } finally { c.destroy(); }
  });

  test('header bytes > --max-header-size -> 431', () =>
    limited(get('/', `X-Big: ${'v'.repeat(1200)}\r\n`), 431));

  test('many small headers adding up past --max-header-size -> 431', () =>
    limited(get('/', Array.from({ length: 6 }, (_, i) => `X-H${i}: ${'v'.repeat(200)}\r\n`).join('')), 431));

  test('more than --max-header-count headers -> 431', () =>
    limited(get('/', Array.from({ length: 9 }, (_, i) => `X-${i}: 1\r\n`).join('')), 431));

  test('exactly --max-header-count headers is fine', async () => {
    const r = await exchange(srv.port, get('/health', Array.from({ length: 7 }, (_, i) => `X-${i}: 1\r\n`).join('')));
    assert.equal(r.status, 200); // Host + 7 = 8
  });

  test('Content-Length > --max-body-size -> 413 (before the body is sent)', () =>
    limited('POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n', 413));

  test('413 while the client is still sending a large body: the client gets the 413, not a reset', async () => {
    // A server that stops reading and closes with unread input makes the kernel send RST, which
    // destroys the response at the client; a lingering close (drain input for a while) avoids it.
    const c = await HttpConn.open(srv.port);
    try {
      c.write(`POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      for (let i = 0; i < 32 && !c.ended; i++) {
        c.write(chunk);
        await new Promise((r) => setImmediate(r));
      }
      const r = await c.response();
      assertJsonError(r, 413);
    } finally { c.destroy(); }
  });

  test('chunked body > --max-body-size -> 413', () =>
    limited('POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '40\r\n' + 'x'.repeat(64) + '\r\n40\r\n' + 'y'.repeat(64) + '\r\n0\r\n\r\n', 413));

  test('body of exactly --max-body-size is accepted (405 from the route)', async () => {
    const r = await exchange(srv.port, 'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n' + 'z'.repeat(100));
    assert.equal(r.status, 405);
  });

  test('the server still serves after all that', async () => {
    assert.equal((await exchange(srv.port, get('/health'))).status, 200);
  });
});

describe('static max-age and CORS (--static-max-age 60 --cors-origin http://a.example)', () => {
  let srv;
  before(async () => { srv = await startHerald(['--static-max-age', '60', '--cors-origin', 'http://a.example'], { webRoot }); });
  after(async () => { if (srv) await srv.stop(); });

  test('Cache-Control carries max-age=60', async () => {
    const r = await exchange(srv.port, get('/style.css'));
    assert.equal(r.status, 200);
    assert.match(r.headers['cache-control'], /max-age=60\b/);
    assert.ok(r.headers.etag);
  });

  test('allowed Origin: ACAO echoes it, with Vary: Origin', async () => {
    const r = await exchange(srv.port, get('/health', 'Origin: http://a.example\r\n'));
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'http://a.example');
    assert.match(r.headers.vary, /\bOrigin\b/i);
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
  });

  test('CORS headers also on errors for an allowed origin', async () => {
    const r = await exchange(srv.port, get('/nope', 'Origin: http://a.example\r\n'));
    assert.equal(r.status, 404);
    assert.equal(r.headers['access-control-allow-origin'], 'http://a.example');
  });

  test('disallowed Origin gets no ACAO', async () => {
    for (const origin of ['http://b.example', 'http://a.example.evil', 'null']) {
      const r = await exchange(srv.port, get('/health', `Origin: ${origin}\r\n`));
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-origin'], undefined, origin);
    }
  });

  test('no Origin, no ACAO', async () => {
    const r = await exchange(srv.port, get('/health'));
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  });

  test('preflight OPTIONS -> 204 with Allow-Methods and Allow-Headers', async () => {
    const r = await exchange(srv.port, 'OPTIONS /health HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n' +
      'Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, x-api-key\r\n\r\n');
    assert.equal(r.status, 204);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['access-control-allow-origin'], 'http://a.example');
    assert.match(r.headers['access-control-allow-methods'], /\bPOST\b/);
    assert.match(r.headers['access-control-allow-methods'], /\bGET\b/);
    assert.match(r.headers['access-control-allow-headers'], /content-type/i);
    assert.match(r.headers['access-control-allow-headers'], /x-api-key/i);
  });

  test('preflight from a disallowed origin gets no ACAO', async () => {
    const r = await exchange(srv.port, 'OPTIONS /health HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\n' +
      'Access-Control-Request-Method: POST\r\n\r\n');
    assert.notEqual(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.equal(r.headers['access-control-allow-methods'], undefined);
  });
});

describe('CORS with credentials (--cors-origin list --cors-credentials)', () => {
  let srv;
  before(async () => {
    srv = await startHerald(['--cors-origin', 'http://a.example, http://b.example', '--cors-credentials'], { webRoot });
  });
  after(async () => { if (srv) await srv.stop(); });

  test('each listed origin is echoed with Allow-Credentials: true', async () => {
    for (const origin of ['http://a.example', 'http://b.example']) {
      const r = await exchange(srv.port, get('/health', `Origin: ${origin}\r\n`));
      assert.equal(r.headers['access-control-allow-origin'], origin);
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.match(r.headers.vary, /Origin/);
    }
  });

  test('an unlisted origin gets neither', async () => {
    const r = await exchange(srv.port, get('/health', 'Origin: http://c.example\r\n'));
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
  });
});
