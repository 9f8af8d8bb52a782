/* herald-wx.js — the Herald JSON-protocol client for WeChat mini programs.
 *
 * Not a second client: it runs clients/js/herald-client.js (reconnect backoff with jitter, heartbeat,
 * subscriptions with replay, acks, duplicate suppression, the offline queue) over the mini program's
 * socket. What it adds is the mini-program side:
 *   - WxWebSocket: a WebSocket-shaped wrapper of wx.connectSocket / SocketTask (readyState, onopen,
 *     onmessage, onclose, onerror, send, close), handed to HeraldClient as options.WebSocket;
 *   - a clientId kept with wx.setStorageSync, so a restarted mini program is the same client (the
 *     server then replaces its older connection and keeps its acks and inbox in step).
 *
 * Usage in a mini program (copy this file and clients/js/herald-client.js into utils/):
 *   const HeraldClient = require('../../utils/herald-client.js');
 *   const HeraldWx = require('../../utils/herald-wx.js');
 *   const client = HeraldWx.create(HeraldClient, { url: 'wss://herald.example.com/api/v1/ws', token });
 *   client.on('notification', (data) => ...);
 * The domain must be on the mini program's "socket legal domains" list, over wss (docs/miniprogram.md). */
(function (root, factory) {
  'use strict';
  if (typeof module === 'object' && module && typeof module.exports === 'object') module.exports = factory();
  else root.HeraldWx = factory();
})(typeof globalThis !== 'undefined' ? globalThis : this, function () {
  'use strict';

  var CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;
  var CLIENT_ID_KEY = 'herald.clientId';

  /* A WebSocket class over wx's socket API (wxApi: the `wx` object). */
  function socketClass(wxApi) {
    function WxWebSocket(url) {
      var self = this;
      this.url = url;
      this.readyState = CONNECTING;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      var closed = false;
      function finish(code, reason) { // close once, whatever wx reports
        if (closed) return;
        closed = true;
        self.readyState = CLOSED;
        if (self.onclose) self.onclose({ code: code, reason: reason || '', wasClean: code === 1000 });
      }
      this._finish = finish;
      this._task = wxApi.connectSocket({
        url: url,
        fail: function (res) {
          if (self.onerror) self.onerror({ message: (res && res.errMsg) || 'connectSocket failed' });
          finish(1006, (res && res.errMsg) || 'connectSocket failed');
        },
      });
      this._task.onOpen(function () {
        if (closed) return;
        self.readyState = OPEN;
        if (self.onopen) self.onopen({});
      });
      this._task.onMessage(function (res) {
        if (!closed && self.onmessage) self.onmessage({ data: res.data });
      });
      this._task.onError(function (res) {
        if (closed) return;
        if (self.onerror) self.onerror({ message: (res && res.errMsg) || 'socket error' });
      });
      this._task.onClose(function (res) {
        finish(res && typeof res.code === 'number' ? res.code : 1006, res && res.reason);
      });
    }
    WxWebSocket.CONNECTING = CONNECTING;
    WxWebSocket.OPEN = OPEN;
    WxWebSocket.CLOSING = CLOSING;
    WxWebSocket.CLOSED = CLOSED;
    WxWebSocket.prototype.send = function (data) {
      if (this.readyState !== OPEN) throw new Error('WxWebSocket: not open');
      var self = this;
      this._task.send({
        data: data,
        fail: function (res) { if (self.onerror) self.onerror({ message: (res && res.errMsg) || 'send failed' }); },
      });
    };
    WxWebSocket.prototype.close = function (code, reason) {
      if (this.readyState >= CLOSING) return;
      this.readyState = CLOSING;
      var self = this;
      this._task.close({
        code: code || 1000,
        reason: reason || '',
        fail: function () { self._finish(1006, 'close failed'); },
      });
    };
    return WxWebSocket;
  }

  /* This mini program's clientId: the stored one, else a new one stored for next time. */
  function clientId(wxApi) {
    var id = '';
    try { id = wxApi.getStorageSync(CLIENT_ID_KEY) || ''; } catch (e) { id = ''; }
    if (typeof id === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(id)) return id;
    id = 'wx-';
    while (id.length < 23) id += Math.random().toString(36).slice(2);
    id = id.slice(0, 23);
    try { wxApi.setStorageSync(CLIENT_ID_KEY, id); } catch (e) { /* storage full: a new id next time */ }
    return id;
  }

  /**
   * A HeraldClient (the constructor from herald-client.js) on the mini program's socket. options are
   * HeraldClient's (url must be ws:// or wss://, absolute); options.wx replaces the global `wx`
   * (tests); options.clientId replaces the stored one.
   */
  function create(HeraldClient, options) {
    var o = {};
    for (var k in options) if (Object.prototype.hasOwnProperty.call(options, k)) o[k] = options[k];
    var wxApi = o.wx || (typeof wx !== 'undefined' ? wx : null); // eslint-disable-line no-undef
    if (!wxApi) throw new TypeError('HeraldWx.create: no wx API (run inside a mini program, or pass options.wx)');
    delete o.wx;
    if (!o.clientId) o.clientId = clientId(wxApi);
    o.WebSocket = socketClass(wxApi);
    return new HeraldClient(o);
  }

  return { create: create, socketClass: socketClass, clientId: clientId, CLIENT_ID_KEY: CLIENT_ID_KEY };
});
