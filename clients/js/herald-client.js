/* Herald JSON-protocol client (protocol 1.0 at /api/v1/ws) for browsers and Node: connect frame,
 * reconnect with backoff and jitter, heartbeat, topic subscriptions with replay by lastSequence,
 * auto-ack of notifications, duplicate suppression by messageId, an outgoing queue while offline.
 * One file, no build step, no dependencies (UMD):
 *   browser classic script   <script src="herald-client.js"></script>  -> window.HeraldClient
 *   browser module           import './herald-client.js'               -> globalThis.HeraldClient
 *   CommonJS                 const HeraldClient = require('./herald-client.js')
 *   Node ESM                 import HeraldClient from './herald-client.js' (when Node loads it as
 *                            CommonJS), or createRequire(import.meta.url)('./herald-client.js')
 * The WebSocket comes from options.WebSocket, else the global WebSocket, else require('ws') (Node).
 * See README.md beside this file for the API and the protocol decisions it relies on. */
(function (root, factory) {
  'use strict';
  if (typeof module === 'object' && module && typeof module.exports === 'object') {
    module.exports = factory(typeof require === 'function' ? require : null);
  } else {
    root.HeraldClient = factory(null);
  }
})(typeof globalThis !== 'undefined' ? globalThis : typeof self !== 'undefined' ? self : this, function (nodeRequire) {
  'use strict';

  var ErrorCodes = Object.freeze({
    CONNECT_ERROR: 1000, AUTH_FAILED: 1001, INVALID_PROTOCOL: 1002,
    INVALID_MESSAGE: 2000, MESSAGE_TOO_LARGE: 2001, RATE_LIMIT: 2002,
    SUBSCRIBE_FAILED: 3000, PERMISSION_DENIED: 3001, INVALID_OPERATION: 3002,
  });

  /* Codes of errors the client raises itself (strings, so they never clash with server codes). */
  var LocalErrors = Object.freeze({
    CLOSED: 'CLOSED', ACK_TIMEOUT: 'ACK_TIMEOUT', QUEUE_OVERFLOW: 'QUEUE_OVERFLOW',
    CONNECT_TIMEOUT: 'CONNECT_TIMEOUT', HEARTBEAT_TIMEOUT: 'HEARTBEAT_TIMEOUT',
    RECONNECT_FAILED: 'RECONNECT_FAILED', TOKEN_ERROR: 'TOKEN_ERROR', INVALID_FRAME: 'INVALID_FRAME',
    UNSUBSCRIBED: 'UNSUBSCRIBED', NO_WEBSOCKET: 'NO_WEBSOCKET', SOCKET_ERROR: 'SOCKET_ERROR',
  });

  /* Envelope types the client handles itself: never deduplicated, never queued. */
  var CONTROL = { connect: 1, disconnect: 1, error: 1, heartbeat: 1, ack: 1 };
  /* Server `disconnect` reasons after which reconnecting would be wrong. */
  var FINAL_REASONS = { kicked: 1, replaced: 1 };
  var OPEN = 1;

  function noop() {}

  function herror(code, message, details, envelope) {
    var e = new Error(message || String(code));
    e.code = code;
    if (details !== undefined) e.details = details;
    if (envelope !== undefined) e.envelope = envelope;
    return e;
  }

  function rethrowLater(err) {
    setTimeout(function () { throw err; }, 0);
  }

  function numberOr(v, dflt) {
    return typeof v === 'number' && !isNaN(v) ? v : dflt;
  }

  function randomString(n) {
    var s = '';
    while (s.length < n) s += Math.random().toString(36).slice(2);
    return s.slice(0, n);
  }

  /* Canonical form of subscription params, as the server compares them: keys sorted, values typed
   * ({id: 1} != {id: '1'}); '' for none or {}. Throws TypeError unless params is a flat map of
   * strings and finite numbers. */
  function canonicalParams(params) {
    if (params === undefined || params === null) return '';
    if (typeof params !== 'object' || Array.isArray(params)) throw new TypeError('params must be a flat object');
    var keys = Object.keys(params).sort();
    var parts = [];
    for (var i = 0; i < keys.length; i++) {
      var v = params[keys[i]];
      if (typeof v !== 'string' && !(typeof v === 'number' && isFinite(v))) {
        throw new TypeError('params.' + keys[i] + ' must be a string or a finite number');
      }
      parts.push([keys[i], v]);
    }
    return parts.length ? JSON.stringify(parts) : '';
  }

  function subscriptionKey(topic, paramsKey) {
    return paramsKey ? topic + '\u0000' + paramsKey : topic;
  }

  /* Seen messageIds: LRU bounded by size; an entry expires ttl ms after it was last seen. Every
   * touch re-inserts, so Map order is expiry order and pruning stops at the first live entry. */
  function SeenIds(size, ttl) {
    this.size = size;
    this.ttl = ttl;
    this.map = new Map();
  }
  /* Records id; true when it was already there (a duplicate). */
  SeenIds.prototype.check = function (id, now) {
    var exp = this.map.get(id);
    var dup = exp !== undefined && exp > now;
    if (exp !== undefined) this.map.delete(id);
    this.map.set(id, now + this.ttl);
    this.prune(now);
    return dup;
  };
  SeenIds.prototype.prune = function (now) {
    var it = this.map.entries();
    for (var e = it.next(); !e.done; e = it.next()) {
      if (this.map.size <= this.size && e.value[1] > now) break;
      this.map.delete(e.value[0]);
    }
  };

  /* Reconnect delay before attempt n (0-based): min(maxDelay, initialDelay * factor^n), then
   * spread by +-jitter (a fraction), never negative. */
  function backoffDelay(n, opts, random) {
    var base = Math.min(opts.maxDelay, opts.initialDelay * Math.pow(opts.factor, n));
    var r = typeof random === 'number' ? random : Math.random();
    return Math.max(0, Math.round(base * (1 + opts.jitter * (2 * r - 1))));
  }

  /**
   * new HeraldClient({url, token, getToken, clientId, protocol, reconnect, heartbeatInterval,
   *   heartbeatTimeout, connectTimeout, requestTimeout, dedupeSize, dedupeTtl, queueSize,
   *   autoConnect, autoAck, WebSocket})
   */
  function HeraldClient(options) {
    if (!(this instanceof HeraldClient)) return new HeraldClient(options);
    options = options || {};
    if (!options.url || typeof options.url !== 'string') throw new TypeError('HeraldClient: options.url is required');
    var rc = options.reconnect === false ? { maxAttempts: 0 } : options.reconnect || {};
    this._reconnectEnabled = options.reconnect !== false;

    this.url = options.url;
    this.token = options.token;
    this.getToken = typeof options.getToken === 'function' ? options.getToken : null;
    this.clientId = options.clientId ? String(options.clientId) : 'js-' + randomString(12);
    this.protocol = options.protocol || '1.0';
    this.reconnectOptions = {
      initialDelay: numberOr(rc.initialDelay, 500),
      maxDelay: numberOr(rc.maxDelay, 30000),
      factor: numberOr(rc.factor, 2),
      jitter: Math.min(1, Math.max(0, numberOr(rc.jitter, 0.3))),
      maxAttempts: numberOr(rc.maxAttempts, Infinity),
    };
    this.heartbeatInterval = numberOr(options.heartbeatInterval, 30000);
    this.heartbeatTimeout = numberOr(options.heartbeatTimeout, 5000);
    this.connectTimeout = numberOr(options.connectTimeout, 10000);
    this.requestTimeout = numberOr(options.requestTimeout, 10000);
    this.queueSize = numberOr(options.queueSize, 1000);
    this.autoAck = options.autoAck !== false;

    this._WebSocket = options.WebSocket || null;
    this._listeners = new Map();    // type -> [handler]
    this._state = 'disconnected';
    this._socket = null;
    this._live = false;             // the server's connect frame arrived on _socket
    this._everConnected = false;
    this._everStarted = false;      // connect() or close() called (cancels the deferred autoConnect)
    this._closedByUser = false;
    this._gen = 0;                  // bumped to invalidate an attempt in progress (getToken)
    this._attempts = 0;             // reconnect attempts since the last successful connect
    this._fatal = null;             // error that forbids reconnecting (auth, protocol)
    this._serverReason = null;      // reason of the server's `disconnect` frame on this socket
    this._timers = { reconnect: null, connect: null, heartbeat: null, heartbeatWait: null, sweep: null };
    this._idPrefix = this.clientId + '-' + randomString(8) + '-';
    this._counter = 0;
    this._queue = [];               // unsent frames: {messageId, text, sent}
    this._pending = new Map();      // messageId -> request waiting for an ack or error
    this._subs = new Map();         // subscription key -> {topic, params, paramsKey, key, lastSequence, acked, waiters}
    this._byTopic = new Map();      // topic -> Map(key -> sub)
    this._seen = new SeenIds(numberOr(options.dedupeSize, 1000), numberOr(options.dedupeTtl, 600000));

    // Public methods keep working when detached (`setTimeout(client.close, ...)`).
    var self = this;
    ['connect', 'close', 'on', 'once', 'off', 'send', 'sendWithAck', 'subscribe', 'unsubscribe', 'ack'].forEach(function (m) {
      self[m] = HeraldClient.prototype[m].bind(self);
    });

    if (options.autoConnect !== false) {
      // Deferred so that listeners added right after `new` see the first 'connecting' state.
      Promise.resolve().then(function () {
        if (!self._closedByUser && self._state === 'disconnected' && !self._everStarted) self.connect();
      });
    }
  }

  HeraldClient.ErrorCodes = ErrorCodes;
  HeraldClient.LocalErrors = LocalErrors;
  HeraldClient.canonicalParams = canonicalParams;
  HeraldClient.backoffDelay = backoffDelay;
  HeraldClient.HeraldClient = HeraldClient;
  HeraldClient.default = HeraldClient;

  var proto = HeraldClient.prototype;

  Object.defineProperty(proto, 'state', { get: function () { return this._state; } });
  Object.defineProperty(proto, 'connected', { get: function () { return this._live; } });

  // ---- events ----

  /* Adds handler for an envelope type or a client event; returns this. */
  proto.on = function (type, handler) {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    var list = this._listeners.get(type);
    if (!list) this._listeners.set(type, (list = []));
    list.push(handler);
    return this;
  };

  /* Like on(), removed after its first call; off(type, handler) removes it too. */
  proto.once = function (type, handler) {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    var self = this;
    function wrapper() {
      self.off(type, wrapper);
      return handler.apply(this, arguments);
    }
    wrapper.listener = handler;
    return this.on(type, wrapper);
  };

  /* Removes one handler (every handler of the type when handler is omitted); returns this. */
  proto.off = function (type, handler) {
    if (handler === undefined) {
      this._listeners.delete(type);
      return this;
    }
    var list = this._listeners.get(type);
    if (!list) return this;
    for (var i = list.length - 1; i >= 0; i--) {
      if (list[i] === handler || list[i].listener === handler) {
        list.splice(i, 1);
        break;
      }
    }
    if (!list.length) this._listeners.delete(type);
    return this;
  };

  proto._emit = function (type) {
    var list = this._listeners.get(type);
    if (!list) return;
    var args = Array.prototype.slice.call(arguments, 1);
    list = list.slice(); // handlers may add or remove handlers
    for (var i = 0; i < list.length; i++) {
      try {
        list[i].apply(this, args);
      } catch (err) {
        rethrowLater(err); // a broken handler must not break the connection's message loop
      }
    }
  };

  proto._setState = function (state, info) {
    if (this._state === state) return;
    var previous = this._state;
    this._state = state;
    var detail = { previous: previous };
    if (info) for (var k in info) if (info[k] !== undefined) detail[k] = info[k];
    this._emit('state', state, detail);
  };

  // ---- connection lifecycle ----

  /* Starts connecting (no-op while connecting or connected); returns this. */
  proto.connect = function () {
    if (this._state === 'connecting' || this._state === 'connected' || this._state === 'reconnecting') return this;
    this._everStarted = true;
    this._closedByUser = false;
    this._fatal = null;
    this._attempts = 0;
    this._startSweep();
    this._setState('connecting');
    this._open();
    return this;
  };

  /* Closes the connection for good (until connect()): no reconnect, timers stopped, pending
   * requests and queued frames rejected with code CLOSED. Subscriptions are kept for connect(). */
  proto.close = function () {
    this._closedByUser = true;
    this._everStarted = true;
    this._gen++;
    var wasLive = this._live;
    this._stopTimers();
    this._teardownSocket(true);
    this._rejectAll(herror(LocalErrors.CLOSED, 'client closed'));
    this._setState('disconnected');
    if (wasLive) this._emit('disconnect', { code: 1000, reason: 'client closed', willReconnect: false });
    return this;
  };

  proto._open = function () {
    var self = this;
    var gen = ++this._gen;
    if (!this.getToken) return this._openSocket(gen);
    var p;
    try {
      p = Promise.resolve(this.getToken());
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(function (token) {
      if (gen !== self._gen || self._closedByUser) return;
      self.token = token;
      self._openSocket(gen);
    }, function (err) {
      if (gen !== self._gen || self._closedByUser) return;
      var e = herror(LocalErrors.TOKEN_ERROR, 'getToken failed: ' + (err && err.message ? err.message : err));
      e.cause = err;
      self._emit('error', e, null);
      self._connectionLost(1006, 'getToken failed', false, e);
    });
  };

  proto._resolveWebSocket = function () {
    if (this._WebSocket) return this._WebSocket;
    if (typeof WebSocket === 'function') return (this._WebSocket = WebSocket);
    if (nodeRequire) return (this._WebSocket = nodeRequire('ws'));
    throw herror(LocalErrors.NO_WEBSOCKET, 'no WebSocket implementation: pass options.WebSocket');
  };

  proto._buildUrl = function () {
    var base = this.url;
    if (base.charAt(0) === '/' && typeof location !== 'undefined') {
      base = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + base;
    } else {
      base = base.replace(/^http(s?):/i, 'ws$1:');
    }
    var query = [];
    if (this.token !== undefined && this.token !== null && this.token !== '') query.push(['token', String(this.token)]);
    query.push(['clientId', this.clientId], ['protocol', this.protocol]);
    if (typeof URL !== 'function') { // WeChat mini programs have no URL: the query is appended by hand
      var hash = base.indexOf('#');
      if (hash >= 0) base = base.slice(0, hash);
      return base + (base.indexOf('?') >= 0 ? '&' : '?') + query.map(function (kv) {
        return encodeURIComponent(kv[0]) + '=' + encodeURIComponent(kv[1]);
      }).join('&');
    }
    var u = new URL(base);
    query.forEach(function (kv) { u.searchParams.set(kv[0], kv[1]); });
    return u.toString();
  };

  proto._openSocket = function (gen) {
    var self = this, sock, WS, url;
    try {
      WS = this._resolveWebSocket();
      url = this._buildUrl();
    } catch (err) {
      if (!err.code) err.code = LocalErrors.NO_WEBSOCKET;
      this._fatal = err;
      this._emit('error', err, null);
      return this._connectionLost(1006, err.message, false, err);
    }
    try {
      sock = new WS(url);
    } catch (err) {
      this._emit('error', err, null);
      return this._connectionLost(1006, String(err && err.message), false, err);
    }
    this._socket = sock;
    this._live = false;
    this._serverReason = null;
    sock.onopen = noop;
    sock.onerror = function (ev) {
      // The connection is lost now: not every implementation fires 'close' after 'error' (undici in
      // Node 20 does not after a refused handshake).
      if (self._socket !== sock) return;
      var wasLive = self._live;
      var err = herror(LocalErrors.SOCKET_ERROR, 'WebSocket error' + (ev && ev.message ? ': ' + ev.message : ''));
      if (ev && ev.error) err.cause = ev.error;
      self._teardownSocket(false);
      self._connectionLost(1006, err.message, wasLive, err);
    };
    sock.onmessage = function (ev) {
      if (self._socket === sock) self._onFrame(ev.data);
    };
    sock.onclose = function (ev) {
      if (self._socket !== sock) return;
      var wasLive = self._live;
      self._teardownSocket(false);
      self._connectionLost(ev.code, ev.reason, wasLive, null);
    };
    if (this.connectTimeout > 0) {
      this._timers.connect = setTimeout(function () {
        self._timers.connect = null;
        if (self._socket === sock && !self._live) {
          self._abort(herror(LocalErrors.CONNECT_TIMEOUT, 'no connect frame within ' + self.connectTimeout + ' ms'));
        }
      }, this.connectTimeout);
    }
  };

  /* Detaches and closes the current socket (graceful: close frame 1000; else dropped at once). */
  proto._teardownSocket = function (graceful) {
    var sock = this._socket;
    this._live = false;
    clearTimeout(this._timers.connect);
    clearTimeout(this._timers.heartbeat);
    clearTimeout(this._timers.heartbeatWait);
    this._timers.connect = this._timers.heartbeat = this._timers.heartbeatWait = null;
    if (!sock) return;
    this._socket = null;
    sock.onopen = sock.onmessage = null;
    sock.onerror = noop; // keep one: the `ws` package throws on an unhandled 'error'
    sock.onclose = null;
    try {
      if (graceful && sock.readyState === OPEN) {
        sock.close(1000, 'client closed');
        if (typeof sock.terminate === 'function') {
          // Node's `ws` waits up to 30 s for the server's close frame; do not keep the process that long.
          var t = setTimeout(function () { sock.terminate(); }, 1000);
          sock.onclose = function () { clearTimeout(t); };
        }
      } else if (typeof sock.terminate === 'function') {
        sock.terminate();
      } else if (sock.readyState < 2) {
        sock.close(graceful ? 1000 : 4000, graceful ? 'client closed' : 'abort');
      }
    } catch (err) {
      /* closing a socket that is half open may throw in some implementations; it is gone either way */
    }
  };

  /* Drops the current socket because of a local timeout and handles the loss. */
  proto._abort = function (err) {
    var wasLive = this._live;
    this._teardownSocket(false);
    this._connectionLost(1006, err.message, wasLive, err);
  };

  proto._connectionLost = function (code, reason, wasLive, error) {
    if (this._closedByUser) return;
    this._requeueInFlight();
    var serverReason = this._serverReason;
    this._serverReason = null;
    var fatal = this._fatal;
    if (!fatal && code === 1008 && !(wasLive && this.getToken)) {
      fatal = herror(ErrorCodes.AUTH_FAILED, 'authentication failed (close 1008)');
    } else if (!fatal && code === 1002 && !wasLive) {
      fatal = herror(ErrorCodes.INVALID_PROTOCOL, 'protocol refused (close 1002)');
    }
    var final = !fatal && serverReason && FINAL_REASONS[serverReason] === 1;
    var retry = !fatal && !final && this._attempts < this.reconnectOptions.maxAttempts;
    if (wasLive) {
      this._emit('disconnect', {
        code: code, reason: reason || '', serverReason: serverReason || undefined,
        error: error || fatal || undefined, willReconnect: retry,
      });
    }
    if (fatal) return this._fail(fatal, false);
    if (final || (!retry && !this._reconnectEnabled)) {
      this._gen++;
      this._stopTimers();
      this._rejectAll(herror(LocalErrors.CLOSED, 'connection ended' + (serverReason ? ': ' + serverReason : '')));
      this._setState('disconnected', { reason: serverReason || undefined, error: error || undefined });
      return;
    }
    if (!retry) {
      var e = herror(LocalErrors.RECONNECT_FAILED, 'gave up after ' + this._attempts + ' reconnect attempts');
      if (error) e.cause = error;
      return this._fail(e, true);
    }
    var self = this;
    var delay = backoffDelay(this._attempts, this.reconnectOptions);
    this._attempts++;
    this._setState('reconnecting', { attempt: this._attempts, delay: delay, error: error || undefined });
    this._emit('reconnect_attempt', { attempt: this._attempts, delay: delay, code: code, error: error || undefined });
    this._timers.reconnect = setTimeout(function () {
      self._timers.reconnect = null;
      if (!self._closedByUser) self._open();
    }, delay);
  };

  proto._fail = function (err, exhausted) {
    this._gen++;
    this._stopTimers();
    this._teardownSocket(false);
    this._rejectAll(err);
    this._setState('failed', { error: err });
    if (exhausted) this._emit('reconnect_failed', { attempts: this._attempts, error: err });
  };

  proto._stopTimers = function () {
    var t = this._timers;
    clearTimeout(t.reconnect);
    clearTimeout(t.connect);
    clearTimeout(t.heartbeat);
    clearTimeout(t.heartbeatWait);
    clearInterval(t.sweep);
    t.reconnect = t.connect = t.heartbeat = t.heartbeatWait = t.sweep = null;
  };

  proto._startSweep = function () {
    if (this._timers.sweep) return;
    var seen = this._seen;
    var t = setInterval(function () { seen.prune(Date.now()); }, Math.max(1000, Math.min(seen.ttl, 60000)));
    if (t && typeof t.unref === 'function') t.unref(); // housekeeping never keeps Node alive
    this._timers.sweep = t;
  };

  // ---- heartbeat ----

  proto._startHeartbeat = function () {
    if (!(this.heartbeatInterval > 0)) return;
    var self = this;
    clearTimeout(this._timers.heartbeat);
    this._timers.heartbeat = setTimeout(function tick() {
      self._timers.heartbeat = null;
      if (!self._canWrite()) return;
      self._writeControl('heartbeat', {});
      if (!self._timers.heartbeatWait && self.heartbeatTimeout > 0) {
        self._timers.heartbeatWait = setTimeout(function () {
          self._timers.heartbeatWait = null;
          self._abort(herror(LocalErrors.HEARTBEAT_TIMEOUT, 'no heartbeat answer within ' + self.heartbeatTimeout + ' ms'));
        }, self.heartbeatTimeout);
      }
      self._timers.heartbeat = setTimeout(tick, self.heartbeatInterval);
    }, this.heartbeatInterval);
  };

  // ---- incoming frames ----

  proto._onFrame = function (raw) {
    if (typeof raw !== 'string') {
      if (raw && typeof raw.toString === 'function' && typeof Buffer !== 'undefined' && Buffer.isBuffer(raw)) raw = raw.toString('utf8');
      else return this._emit('error', herror(LocalErrors.INVALID_FRAME, 'binary frame ignored'), null);
    }
    var env;
    try {
      env = JSON.parse(raw);
    } catch (err) {
      return this._emit('error', herror(LocalErrors.INVALID_FRAME, 'frame is not JSON', { frame: raw.slice(0, 200) }), null);
    }
    if (!env || typeof env !== 'object' || Array.isArray(env) || typeof env.type !== 'string') {
      return this._emit('error', herror(LocalErrors.INVALID_FRAME, 'frame is not an envelope', { frame: raw.slice(0, 200) }), null);
    }
    switch (env.type) {
      case 'connect': return this._onConnectFrame(env);
      case 'error': return this._onErrorFrame(env);
      case 'disconnect':
        this._serverReason = env.data && typeof env.data.reason === 'string' ? env.data.reason : 'unknown';
        return this._emit('*', env);
      case 'heartbeat':
        clearTimeout(this._timers.heartbeatWait);
        this._timers.heartbeatWait = null;
        break;
      case 'ack':
        this._onAck(env);
        break;
      default:
        return this._onMessage(env);
    }
    this._emit(env.type, env.data, env);
    this._emit('*', env);
  };

  proto._onConnectFrame = function (env) {
    if (this._live) return;
    var data = env.data && typeof env.data === 'object' ? env.data : {};
    clearTimeout(this._timers.connect);
    this._timers.connect = null;
    if (typeof data.clientId === 'string' && data.clientId) this.clientId = data.clientId;
    var reconnected = this._everConnected;
    var attempts = this._attempts;
    this._live = true;
    this._everConnected = true;
    this._attempts = 0;
    this._fatal = null;
    // Subscriptions and queued frames go out before any handler runs, so a handler that
    // subscribes does not race with the resubscription.
    this._startHeartbeat();
    var self = this;
    this._subs.forEach(function (sub) { self._sendSubscribe(sub, sub.acked); });
    this._flushQueue();
    this._setState('connected');
    this._emit('connect', data, env);
    this._emit('*', env);
    if (reconnected && this._live) this._emit('reconnect', { attempts: attempts });
  };

  proto._onErrorFrame = function (env) {
    var d = env.data && typeof env.data === 'object' ? env.data : {};
    var err = herror(d.code, d.message || 'error ' + d.code, d.details, env);
    var ref = d.details && typeof d.details === 'object' ? d.details.messageId : undefined;
    var req = ref !== undefined ? this._pending.get(ref) : undefined;
    if (req) {
      this._settle(ref, req, err, null);
      this._emit('*', env);
      return;
    }
    if (err.code === ErrorCodes.AUTH_FAILED || err.code === ErrorCodes.INVALID_PROTOCOL) {
      var retryable = err.code === ErrorCodes.AUTH_FAILED && this._live && this.getToken;
      this._emit('error', err, env);
      this._emit('*', env);
      if (!retryable) {
        this._fatal = err;
        if (this._socket) this._abort(err);
      }
      return;
    }
    this._emit('error', err, env);
    this._emit('*', env);
  };

  proto._onAck = function (env) {
    var d = env.data && typeof env.data === 'object' ? env.data : {};
    var req = this._pending.get(d.messageId);
    if (req) this._settle(d.messageId, req, null, d);
  };

  /* Resolves or rejects a pending request and forgets it. */
  proto._settle = function (id, req, err, data) {
    this._pending.delete(id);
    clearTimeout(req.timer);
    if (req.kind === 'subscribe') {
      var sub = req.sub;
      if (this._subs.get(sub.key) !== sub) return; // unsubscribed meanwhile
      var waiters = sub.waiters;
      sub.waiters = [];
      if (err) {
        // Only a refusal of the subscription itself forgets it. A resubscription that failed for a
        // passing reason (rate limit, timeout) is kept and tried again, so nothing goes missing.
        var refused = err.code === ErrorCodes.SUBSCRIBE_FAILED || err.code === ErrorCodes.PERMISSION_DENIED ||
                      err.code === ErrorCodes.INVALID_MESSAGE;
        if (refused || !sub.acked) this._removeSub(sub);
        else this._retrySubscribe(sub);
        waiters.forEach(function (w) { w.reject(err); });
        if (!waiters.length) this._emit('error', err, err.envelope || null); // nobody else would hear of it
        return;
      }
      // ack.sequence is the topic's last sequence. Without lastSequence there is no replay, so the
      // subscription starts there. With one, the replay may follow the ack (it does on Herald), so
      // only the replayed messages themselves advance lastSequence.
      if (typeof data.sequence === 'number' && !req.sentLastSequence &&
          (sub.lastSequence === undefined || data.sequence > sub.lastSequence)) {
        sub.lastSequence = data.sequence;
      }
      sub.acked = true;
      sub.retryDelay = 0;
      waiters.forEach(function (w) { w.resolve(data); });
      if (req.resubscribe) this._emit('resubscribe', data, { topic: sub.topic, params: sub.params });
      return;
    }
    if (err) req.reject(err);
    else req.resolve(data);
  };

  proto._onMessage = function (env) {
    if (env.type === 'notification' && this.autoAck && typeof env.messageId === 'string') this.ack(env.messageId);
    if (typeof env.messageId === 'string' && env.messageId && this._seen.check(env.messageId, Date.now())) {
      this._emit('duplicate', env);
      return;
    }
    if (typeof env.topic === 'string' && typeof env.sequence === 'number') this._track(env);
    this._emit(env.type, env.data, env);
    this._emit('*', env);
  };

  /* Advances lastSequence of every subscription the message was delivered through: the bare topic
   * always, a topic with params only when the envelope carries the same params. */
  proto._track = function (env) {
    var subs = this._byTopic.get(env.topic);
    if (!subs) return;
    var pkey = null;
    if (env.params && typeof env.params === 'object') {
      try { pkey = canonicalParams(env.params); } catch (e) { pkey = null; }
    }
    subs.forEach(function (sub) {
      if (sub.paramsKey !== '' && sub.paramsKey !== pkey) return;
      if (sub.lastSequence === undefined || env.sequence > sub.lastSequence) sub.lastSequence = env.sequence;
    });
  };

  // ---- outgoing frames ----

  proto._nextId = function () {
    this._counter++;
    return this._idPrefix + this._counter.toString(36);
  };

  proto._canWrite = function () {
    return !!(this._socket && this._live && this._socket.readyState === OPEN);
  };

  proto._writeControl = function (type, data) {
    if (!this._canWrite()) return null;
    var id = this._nextId();
    this._socket.send(JSON.stringify({ type: type, data: data, timestamp: Date.now(), messageId: id }));
    return id;
  };

  proto._write = function (item) {
    this._socket.send(item.text);
    item.sent = true;
    var req = this._pending.get(item.messageId);
    if (req && req.timeout > 0) {
      var self = this;
      clearTimeout(req.timer);
      req.timer = setTimeout(function () {
        if (self._pending.get(item.messageId) === req) {
          self._settle(item.messageId, req, herror(LocalErrors.ACK_TIMEOUT, 'no ack within ' + req.timeout + ' ms', { messageId: item.messageId }), null);
        }
      }, req.timeout);
    }
  };

  proto._enqueue = function (item, front) {
    if (front) this._queue.unshift(item);
    else this._queue.push(item);
    while (this._queue.length > this.queueSize) {
      var dropped = this._queue.shift();
      var err = herror(LocalErrors.QUEUE_OVERFLOW, 'send queue full (' + this.queueSize + '): oldest frame dropped', { messageId: dropped.messageId });
      var req = this._pending.get(dropped.messageId);
      if (req) this._settle(dropped.messageId, req, err, null);
      this._emit('error', err, null);
    }
  };

  proto._flushQueue = function () {
    var q = this._queue;
    this._queue = [];
    for (var i = 0; i < q.length; i++) {
      if (this._canWrite()) this._write(q[i]);
      else this._enqueue(q[i]);
    }
  };

  /* After a lost connection: frames that await an ack go back to the front of the queue with the
   * same messageId (the server acks a repeated id without processing it twice); subscribe
   * requests are dropped (every subscription is sent again); unsubscribes are done. */
  proto._requeueInFlight = function () {
    var self = this, resend = [];
    this._pending.forEach(function (req, id) {
      clearTimeout(req.timer);
      req.timer = null;
      if (req.kind === 'send') {
        if (req.item.sent) resend.push(req.item);
      } else {
        self._pending.delete(id);
        if (req.kind === 'unsubscribe') req.resolve(null);
      }
    });
    for (var i = resend.length - 1; i >= 0; i--) this._enqueue(resend[i], true);
  };

  proto._rejectAll = function (err) {
    var pending = this._pending;
    this._pending = new Map();
    this._queue = [];
    pending.forEach(function (req) {
      clearTimeout(req.timer);
      if (req.kind === 'send') req.reject(err);
      else if (req.kind === 'unsubscribe') req.resolve(null);
    });
    this._subs.forEach(function (sub) {
      var w = sub.waiters;
      sub.waiters = [];
      w.forEach(function (x) { x.reject(err); });
    });
  };

  /* Sends {type, data, timestamp, messageId} now or, while not connected, when connected.
   * Returns the messageId; with {ack: true} returns a Promise of the server's ack data that also
   * carries .messageId. opts: {ack, timeout, topic, params}. */
  proto.send = function (type, data, opts) {
    if (typeof type !== 'string' || !type) throw new TypeError('type must be a non-empty string');
    opts = opts || {};
    var messageId = this._nextId();
    var env = { type: type, data: data === undefined ? null : data, timestamp: Date.now(), messageId: messageId };
    if (opts.topic !== undefined) {
      env.topic = opts.topic;
      if (opts.params !== undefined) env.params = opts.params;
    }
    var item = { messageId: messageId, text: JSON.stringify(env), sent: false };
    var promise = null;
    if (opts.ack) {
      var self = this;
      promise = new Promise(function (resolve, reject) {
        self._pending.set(messageId, {
          kind: 'send', item: item, resolve: resolve, reject: reject, timer: null,
          timeout: numberOr(opts.timeout, self.requestTimeout),
        });
      });
      promise.messageId = messageId;
    }
    if (this._canWrite()) this._write(item);
    else this._enqueue(item);
    return promise || messageId;
  };

  /* send() that waits for the server's ack: Promise<ackData>; rejects with the server's error
   * (err.code), ACK_TIMEOUT after opts.timeout ms connected without an answer, or CLOSED. */
  proto.sendWithAck = function (type, data, opts) {
    var o = {};
    if (opts) for (var k in opts) o[k] = opts[k];
    o.ack = true;
    return this.send(type, data, o);
  };

  /* Acknowledges a received frame by id (automatic for notifications unless autoAck: false).
   * True when written; acks are not queued (the server redelivers what it misses). */
  proto.ack = function (messageId) {
    return this._writeControl('ack', { messageId: messageId }) !== null;
  };

  // ---- subscriptions ----

  proto._sendSubscribe = function (sub, resubscribe) {
    if (!this._canWrite()) return;
    var id = this._nextId();
    var data = { topic: sub.topic };
    if (sub.paramsKey) data.params = sub.params;
    if (sub.lastSequence !== undefined) data.lastSequence = sub.lastSequence;
    var item = { messageId: id, text: JSON.stringify({ type: 'subscribe', data: data, timestamp: Date.now(), messageId: id }), sent: false };
    this._pending.set(id, { kind: 'subscribe', sub: sub, resubscribe: !!resubscribe, sentLastSequence: data.lastSequence !== undefined,
                            timer: null, timeout: this.requestTimeout });
    this._write(item);
  };

  /* Sends a kept subscription again after a pause (a resubscription failed for a passing reason). */
  proto._retrySubscribe = function (sub) {
    var self = this, gen = this._gen;
    clearTimeout(sub.retryTimer);
    sub.retryDelay = Math.min((sub.retryDelay || 500) * 2, 30000);
    sub.retryTimer = setTimeout(function () {
      sub.retryTimer = null;
      if (self._gen === gen && self._subs.get(sub.key) === sub) self._sendSubscribe(sub, true);
    }, sub.retryDelay);
    if (sub.retryTimer.unref) sub.retryTimer.unref();
  };

  proto._removeSub = function (sub) {
    clearTimeout(sub.retryTimer);
    if (this._subs.get(sub.key) !== sub) return;
    this._subs.delete(sub.key);
    var byTopic = this._byTopic.get(sub.topic);
    if (byTopic) {
      byTopic.delete(sub.key);
      if (!byTopic.size) this._byTopic.delete(sub.topic);
    }
  };

  /* Subscribes to topic (with optional params) now or on connection, and after every reconnect
   * with lastSequence. Promise<ackData> ({messageId, topic, params?, sequence, recovered?});
   * rejects with err.code 3000/3001 (and forgets the subscription). opts.lastSequence replays
   * from a sequence you kept (e.g. across page loads). */
  proto.subscribe = function (topic, params, opts) {
    var self = this;
    return new Promise(function (resolve, reject) {
      if (typeof topic !== 'string' || !topic) throw new TypeError('topic must be a non-empty string');
      var paramsKey = canonicalParams(params);
      var key = subscriptionKey(topic, paramsKey);
      var sub = self._subs.get(key);
      if (!sub) {
        sub = { topic: topic, params: paramsKey ? params : undefined, paramsKey: paramsKey, key: key,
                lastSequence: undefined, acked: false, waiters: [], settledBy: null };
        self._subs.set(key, sub);
        var byTopic = self._byTopic.get(topic);
        if (!byTopic) self._byTopic.set(topic, (byTopic = new Map()));
        byTopic.set(key, sub);
      }
      if (opts && typeof opts.lastSequence === 'number') sub.lastSequence = opts.lastSequence;
      sub.waiters.push({ resolve: resolve, reject: reject });
      self._sendSubscribe(sub); // while offline it goes out on connection
    });
  };

  /* Forgets the subscription and tells the server. Promise<ackData>, or null when not connected. */
  proto.unsubscribe = function (topic, params) {
    var self = this;
    return new Promise(function (resolve, reject) {
      var paramsKey = canonicalParams(params);
      var sub = self._subs.get(subscriptionKey(topic, paramsKey));
      if (sub) {
        self._removeSub(sub);
        var w = sub.waiters;
        sub.waiters = [];
        w.forEach(function (x) { x.reject(herror(LocalErrors.UNSUBSCRIBED, 'unsubscribed before the ack')); });
      }
      if (!self._canWrite()) return resolve(null);
      var id = self._nextId();
      var data = { topic: topic };
      if (paramsKey) data.params = params;
      var item = { messageId: id, text: JSON.stringify({ type: 'unsubscribe', data: data, timestamp: Date.now(), messageId: id }), sent: false };
      self._pending.set(id, { kind: 'unsubscribe', resolve: resolve, reject: reject, timer: null, timeout: self.requestTimeout });
      self._write(item);
    });
  };

  /* Last sequence seen on a subscription (undefined when none). */
  proto.getLastSequence = function (topic, params) {
    var sub = this._subs.get(subscriptionKey(topic, canonicalParams(params)));
    return sub ? sub.lastSequence : undefined;
  };

  /* The current subscriptions: [{topic, params, lastSequence}]. */
  proto.subscriptions = function () {
    var out = [];
    this._subs.forEach(function (s) { out.push({ topic: s.topic, params: s.params, lastSequence: s.lastSequence }); });
    return out;
  };

  return HeraldClient;
});
