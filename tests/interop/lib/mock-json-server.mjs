// A mock of Herald's JSON protocol endpoint (/api/v1/ws), written from shared/PROTOCOL.md, for testing
// clients/js before (and besides) the real server: connect frame and connect errors, envelope
// validation, heartbeat answers, subscribe/unsubscribe acks, per-topic sequence with bounded history
// and replay by lastSequence (`recovered`), notification redelivery until acked plus a per-user inbox,
// re-acking of repeated client messageIds, and controls to drop connections or restart on the same port.
//
//   const mock = await startMockServer({ port: 0, ackTimeout: 200, historySize: 100 });
//   mock.url; mock.publish(topic, params, type, data, {messageId, duplicate}); mock.dropAll();
//   await mock.stop(); await mock.start(); await mock.close();
//
// The decisions it makes where PROTOCOL.md is silent are listed in clients/js/README.md
// ("Protocol decisions"); the real server is expected to match them.
import http from 'node:http';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';

export const ERROR = Object.freeze({
  CONNECT_ERROR: 1000, AUTH_FAILED: 1001, INVALID_PROTOCOL: 1002,
  INVALID_MESSAGE: 2000, MESSAGE_TOO_LARGE: 2001, RATE_LIMIT: 2002,
  SUBSCRIBE_FAILED: 3000, PERMISSION_DENIED: 3001, INVALID_OPERATION: 3002,
});

/** Canonical params, as Herald compares them: keys sorted, values typed ({id: 1} != {id: '1'}); '' for none. */
export function canonicalParams(params) {
  if (params === undefined || params === null) return '';
  const keys = Object.keys(params).sort();
  return keys.length ? JSON.stringify(keys.map((k) => [k, params[k]])) : '';
}

function isFlatParams(p) {
  if (p === undefined) return true;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return false;
  return Object.values(p).every((v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)));
}

/** Default token check: any non-empty token not starting with "invalid" or "expired"; claims {sub}. */
function defaultAuthenticate(token) {
  if (typeof token !== 'string' || !token || /^(invalid|expired)/.test(token)) return null;
  return { sub: token.replace(/#.*$/, '') }; // "alice#2" is user alice with another token
}

/** Default topic rules for action 'subscribe' or 'publish': "private..." is refused (3001),
 * "unknown..." does not exist (3000). */
function defaultAuthorize(conn, action, topic) {
  if (topic.startsWith('private')) return ERROR.PERMISSION_DENIED;
  if (topic.startsWith('unknown')) return ERROR.SUBSCRIBE_FAILED;
  return true;
}

export async function startMockServer(options = {}) {
  const mock = new MockJsonServer(options);
  await mock.start();
  return mock;
}

export class MockJsonServer extends EventEmitter {
  constructor({
    port = 0, host = '127.0.0.1', path = '/api/v1/ws', protocols = ['1.0'],
    ackTimeout = 10000, maxRetries = 3, historySize = 100, maxSubscriptions = 100,
    maxPayload = 64 * 1024, authenticate = defaultAuthenticate, authorize = defaultAuthorize,
    sequenceBase = 0, // first sequence of a topic is sequenceBase + 1 (Herald: process start ms * 1000)
    replayInterval = 0, // > 0: replayed messages go out one every replayInterval ms (to cut a replay short)
  } = {}) {
    super();
    Object.assign(this, { port, host, path, protocols, ackTimeout, maxRetries, historySize, maxSubscriptions, maxPayload, authenticate, authorize, sequenceBase, replayInterval });
    this.answerHeartbeats = true; // false: heartbeats are received but never answered
    this.accepting = true;        // false: every connection gets error 1000 and close 1013
    this.server = null;
    this.sockets = new Set();     // raw TCP sockets, to end them on stop()
    this.conns = new Set();       // accepted connections
    this.topics = new Map();      // topic -> {seq, evicted, history: [msg]}
    this.inbox = new Map();       // user (claims.sub) -> Map(messageId -> msg): notifications not yet acked
    this.processed = new Map();   // clientId -> Map(messageId -> ack data) for client frames
    this.attempts = [];           // every WebSocket handshake: {time, query, headers, result}
    this.frames = [];             // every client frame: {time, clientId, connId, frame}
    this.received = [];           // business frames (notification/status/data) published once: {clientId, frame}
    this.deliveries = [];         // every frame delivered by publish/replay/redelivery/inbox: {clientId, envelope, why}
    this.nextConnId = 1;
    this.nextMsgId = 1;
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  }

  get url() { return `ws://${this.host}:${this.port}${this.path}`; }
  /** Accepted connections that are still open. */
  get connections() { return [...this.conns]; }

  /** Listens (again) on this.port; the port chosen on the first start is kept for restarts. */
  async start() {
    if (this.server) return;
    const server = http.createServer((req, res) => { res.writeHead(404).end(); });
    server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url, 'http://x');
      if (url.pathname !== this.path) { socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'); return; }
      this.wss.handleUpgrade(req, socket, head, (ws) => this._accept(ws, req, url));
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => { server.off('error', reject); resolve(); });
    });
    this.port = server.address().port;
    this.server = server;
  }

  /** Stops listening and ends every connection (graceful: `disconnect {reason:'shutdown'}` and close
   * 1001 first). State (topics, history, inboxes, processed ids) survives, as in a restart with a store. */
  async stop({ graceful = true } = {}) {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const conn of [...this.conns]) {
      if (graceful) {
        this._send(conn, { type: 'disconnect', data: { reason: 'shutdown' } });
        conn.ws.close(1001, 'shutdown');
      } else {
        conn.ws.terminate();
      }
      this._gone(conn);
    }
    const closed = new Promise((resolve) => server.close(resolve));
    const deadline = Date.now() + 200;
    while (this.sockets.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** stop() and forget everything: the process can exit afterwards. */
  async close() {
    await this.stop({ graceful: false });
    this.wss.close();
    this.removeAllListeners();
  }

  /** Severs every connection at the TCP level (no close frame), as a network failure would. */
  dropAll() {
    for (const conn of [...this.conns]) { conn.ws.terminate(); this._gone(conn); }
  }

  /** Sends `disconnect {reason}` and closes the connections of clientId with closeCode
   * ('token expired' is closed with 1008, as an auth failure). */
  kick(clientId, reason = 'kicked', closeCode = reason === 'token expired' ? 1008 : 1000) {
    for (const conn of [...this.conns]) {
      if (conn.clientId !== clientId) continue;
      this._send(conn, { type: 'disconnect', data: { reason } });
      conn.ws.close(closeCode, reason);
      this._gone(conn);
    }
  }

  /** Sends a raw envelope (timestamp and messageId filled in when absent) to clientId's connections. */
  sendTo(clientId, envelope) {
    for (const conn of this.conns) if (conn.clientId === clientId) this._send(conn, envelope);
  }

  /** Publishes to topic (params: the narrower subscription it also reaches): gives it the topic's next
   * sequence, keeps it in history, delivers it once to each subscriber of `topic` or of `topic`+params.
   * opts.messageId fixes the id; opts.duplicate sends the frame twice. Returns the envelope. */
  publish(topic, params, type, data, opts = {}) {
    const t = this._topic(topic);
    const msg = {
      type, data, timestamp: Date.now(), messageId: opts.messageId || this._id('m'),
      topic, sequence: ++t.seq,
    };
    const pkey = canonicalParams(params);
    if (pkey) msg.params = params;
    Object.defineProperty(msg, 'paramsKey', { value: pkey, enumerable: false });
    t.history.push(msg);
    while (t.history.length > this.historySize) t.evicted = t.history.shift().sequence;
    for (const conn of this.conns) {
      if (!conn.live || ![...conn.subs.values()].some((s) => this._matches(s, msg))) continue;
      this._deliver(conn, msg, 'publish');
      if (opts.duplicate) this._deliver(conn, msg, 'duplicate');
    }
    return msg;
  }

  /** The topic's current sequence (sequenceBase when nothing was published). */
  sequence(topic) { return this.topics.get(topic)?.seq ?? this.sequenceBase; }

  /** Frames received from clients with the given type (and clientId when given). */
  framesOf(type, clientId) {
    return this.frames.filter((f) => f.frame.type === type && (clientId === undefined || f.clientId === clientId)).map((f) => f.frame);
  }

  // ---- internals ----

  _id(prefix) { return `${prefix}-${this.nextMsgId++}-${randomBytes(3).toString('hex')}`; }

  _topic(name) {
    let t = this.topics.get(name);
    if (!t) this.topics.set(name, (t = { seq: this.sequenceBase, evicted: this.sequenceBase, history: [] }));
    return t;
  }

  _matches(sub, msg) {
    return sub.topic === msg.topic && (sub.paramsKey === '' || sub.paramsKey === msg.paramsKey);
  }

  _send(conn, env) {
    if (conn.ws.readyState !== 1) return;
    const full = { type: env.type, data: env.data ?? {}, timestamp: env.timestamp ?? Date.now(), messageId: env.messageId ?? this._id('s') };
    for (const k of ['topic', 'sequence', 'params']) if (env[k] !== undefined) full[k] = env[k];
    conn.ws.send(JSON.stringify(full));
  }

  _error(conn, code, message, ref, close) {
    const data = { code, message };
    if (ref !== undefined) data.details = { messageId: ref };
    this._send(conn, { type: 'error', data });
    if (close) conn.ws.close(close, message.slice(0, 100));
  }

  /** Sends msg; a notification is then redelivered every ackTimeout until acked (maxRetries times)
   * and kept in the user's inbox until acked. */
  _deliver(conn, msg, why) {
    this._send(conn, msg);
    this.deliveries.push({ clientId: conn.clientId, envelope: msg, why });
    if (msg.type !== 'notification') return;
    const box = this.inbox.get(conn.user) ?? new Map();
    this.inbox.set(conn.user, box);
    box.set(msg.messageId, msg);
    if (conn.unacked.has(msg.messageId)) return;
    const entry = { msg, retries: 0, timer: null };
    const arm = () => {
      entry.timer = setTimeout(() => {
        if (!this.conns.has(conn) || !conn.unacked.has(msg.messageId)) return;
        if (entry.retries >= this.maxRetries) { conn.unacked.delete(msg.messageId); return; } // stays in the inbox
        entry.retries++;
        this._send(conn, msg);
        this.deliveries.push({ clientId: conn.clientId, envelope: msg, why: 'redelivery' });
        arm();
      }, this.ackTimeout);
    };
    conn.unacked.set(msg.messageId, entry);
    arm();
  }

  _gone(conn) {
    if (!this.conns.delete(conn)) return;
    conn.live = false;
    for (const e of conn.unacked.values()) clearTimeout(e.timer);
    clearTimeout(conn.replayTimer);
    conn.unacked.clear();
    this.emit('disconnection', conn);
  }

  _accept(ws, req, url) {
    const query = Object.fromEntries(url.searchParams);
    const attempt = { time: Date.now(), query, headers: req.headers, result: 'accepted' };
    this.attempts.push(attempt);
    const conn = { id: this.nextConnId++, ws, clientId: null, user: null, claims: null, live: false, subs: new Map(), unacked: new Map() };
    ws.on('error', () => {});
    const protocol = query.protocol ?? '1.0';
    let token = query.token;
    const auth = req.headers.authorization;
    if (!token && auth && /^Bearer /i.test(auth)) token = auth.slice(7).trim();
    if (!this.accepting) {
      attempt.result = 'error 1000';
      return this._error(conn, ERROR.CONNECT_ERROR, 'server not ready', undefined, 1013);
    }
    if (!this.protocols.includes(protocol)) {
      attempt.result = 'error 1002';
      return this._error(conn, ERROR.INVALID_PROTOCOL, `unsupported protocol ${protocol}`, undefined, 1002);
    }
    const claims = this.authenticate(token, req);
    if (!claims) {
      attempt.result = 'error 1001';
      return this._error(conn, ERROR.AUTH_FAILED, 'authentication failed', undefined, 1008);
    }
    conn.claims = claims;
    conn.user = claims.sub;
    conn.clientId = query.clientId || `client_${conn.id}`;
    conn.token = token;
    // One live connection per clientId: the older one is told it was replaced.
    for (const old of [...this.conns]) {
      if (old.clientId !== conn.clientId) continue;
      this._send(old, { type: 'disconnect', data: { reason: 'replaced' } });
      old.ws.close(1000, 'replaced');
      this._gone(old);
    }
    this.conns.add(conn);
    conn.live = true;
    ws.on('close', () => this._gone(conn));
    ws.on('message', (data, isBinary) => this._onFrame(conn, data, isBinary));
    this._send(conn, { type: 'connect', data: { clientId: conn.clientId, serverTime: Date.now() } });
    // What this user has not acknowledged yet comes on the new connection.
    const box = this.inbox.get(conn.user);
    if (box) for (const msg of [...box.values()]) this._deliver(conn, msg, 'inbox');
    this.emit('connection', conn);
  }

  _onFrame(conn, raw, isBinary) {
    if (!this.conns.has(conn)) return;
    if (raw.length > this.maxPayload) return this._error(conn, ERROR.MESSAGE_TOO_LARGE, 'frame too large', undefined, 1009);
    if (isBinary) return this._error(conn, ERROR.INVALID_MESSAGE, 'binary frames are not envelopes');
    let frame;
    try { frame = JSON.parse(raw.toString('utf8')); } catch { return this._error(conn, ERROR.INVALID_MESSAGE, 'not JSON'); }
    if (!frame || typeof frame !== 'object' || Array.isArray(frame) || typeof frame.type !== 'string') {
      return this._error(conn, ERROR.INVALID_MESSAGE, 'not an object with a string type');
    }
    this.frames.push({ time: Date.now(), clientId: conn.clientId, connId: conn.id, frame });
    this.emit('frame', frame, conn);
    const id = typeof frame.messageId === 'string' ? frame.messageId : undefined;
    const d = frame.data && typeof frame.data === 'object' && !Array.isArray(frame.data) ? frame.data : undefined;

    if (frame.type === 'heartbeat') {
      if (this.answerHeartbeats) this._send(conn, { type: 'heartbeat', data: { serverTime: Date.now() } });
      return;
    }
    if (frame.type === 'ack') {
      if (!d || typeof d.messageId !== 'string') return this._error(conn, ERROR.INVALID_MESSAGE, 'ack needs data.messageId', id);
      const e = conn.unacked.get(d.messageId);
      if (e) { clearTimeout(e.timer); conn.unacked.delete(d.messageId); }
      this.inbox.get(conn.user)?.delete(d.messageId);
      return; // acks are not acked
    }
    // A messageId processed before, on this or an earlier connection of the clientId (e.g. resent
    // after a reconnect), is acknowledged again, not processed. (Herald remembers per connection.)
    const seen = this.processed.get(conn.clientId) ?? new Map();
    this.processed.set(conn.clientId, seen);
    if (id !== undefined && seen.has(id)) return this._send(conn, { type: 'ack', data: { messageId: id, duplicate: true } });
    const ack = (extra = {}) => {
      const data = { ...(id !== undefined ? { messageId: id } : {}), ...extra };
      if (id !== undefined) {
        seen.set(id, data);
        if (seen.size > 10000) seen.delete(seen.keys().next().value);
      }
      this._send(conn, { type: 'ack', data });
    };

    switch (frame.type) {
      case 'subscribe':
      case 'unsubscribe': {
        if (!d || typeof d.topic !== 'string' || !d.topic || !isFlatParams(d.params) ||
            (d.lastSequence !== undefined && !(Number.isInteger(d.lastSequence) && d.lastSequence >= 0))) {
          return this._error(conn, ERROR.INVALID_MESSAGE, `${frame.type} needs {topic, params?, lastSequence?}`, id);
        }
        const pkey = canonicalParams(d.params);
        const key = pkey ? `${d.topic}\u0000${pkey}` : d.topic;
        if (frame.type === 'unsubscribe') { conn.subs.delete(key); return ack({ topic: d.topic }); }
        const verdict = this.authorize(conn, 'subscribe', d.topic, d.params);
        if (verdict !== true) {
          const code = typeof verdict === 'number' ? verdict : ERROR.PERMISSION_DENIED;
          return this._error(conn, code, code === ERROR.PERMISSION_DENIED ? 'permission denied' : 'subscribe failed', id);
        }
        if (!conn.subs.has(key) && conn.subs.size >= this.maxSubscriptions) {
          return this._error(conn, ERROR.SUBSCRIBE_FAILED, 'subscription limit reached', id);
        }
        const sub = { topic: d.topic, params: d.params, paramsKey: pkey };
        conn.subs.set(key, sub);
        // As Herald: the ack, then (with lastSequence) the replay, before any live message.
        const t = this._topic(d.topic);
        const result = { topic: d.topic, sequence: t.seq, ...(pkey ? { params: d.params } : {}) };
        if (d.lastSequence === undefined) return ack(result);
        const after = d.lastSequence;
        // recovered: everything after `after` is still held (false when history dropped part of it
        // or `after` is ahead of the topic, e.g. from another server process).
        ack({ ...result, recovered: after <= t.seq && after >= t.evicted });
        const replay = t.history.filter((msg) => msg.sequence > after && this._matches(sub, msg));
        if (!this.replayInterval) { for (const msg of replay) this._deliver(conn, msg, 'replay'); return; }
        const step = () => {
          conn.replayTimer = null;
          if (!this.conns.has(conn) || !replay.length) return;
          this._deliver(conn, replay.shift(), 'replay');
          conn.replayTimer = setTimeout(step, this.replayInterval);
        };
        step();
        return;
      }
      case 'notification':
      case 'status':
      case 'data': {
        // A client publishes through the envelope's `topic` (and `params`), as on Herald.
        if (typeof frame.topic !== 'string' || !frame.topic || !isFlatParams(frame.params ?? undefined)) {
          return this._error(conn, ERROR.INVALID_MESSAGE, '`topic` is required to publish', id);
        }
        const verdict = this.authorize(conn, 'publish', frame.topic, frame.params);
        if (verdict !== true) return this._error(conn, ERROR.PERMISSION_DENIED, 'not allowed to publish to this topic', id);
        this.received.push({ clientId: conn.clientId, frame });
        this.emit('message', frame, conn);
        if (!this.conns.has(conn)) return ack(); // dropped by a 'message' listener: the ack is lost
        const before = this.deliveries.length;
        const msg = this.publish(frame.topic, frame.params ?? undefined, frame.type, frame.data ?? null);
        return ack({ sequence: msg.sequence, delivered: this.deliveries.length - before, publishedId: msg.messageId });
      }
      default:
        return this._error(conn, ERROR.INVALID_OPERATION, `type ${frame.type} not allowed from a client`, id);
    }
  }
}
