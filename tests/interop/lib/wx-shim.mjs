// A faithful stand-in for the WeChat mini program APIs that clients/miniprogram/herald-wx.js uses,
// for tests in Node: wx.connectSocket returning a SocketTask (onOpen, onMessage, onClose, onError,
// send, close — callbacks called asynchronously, errMsg strings, a send on a socket that is not
// open failing as WeChat's does, onError followed by onClose when the connection breaks) over the
// `ws` package, and the synchronous storage API (getStorageSync returns '' for a missing key).
// Everything the code under test does is recorded in wx.log.
import WebSocket from 'ws';

export function createWx() {
  const storage = new Map();
  const log = { tasks: 0, sent: [], received: [], closes: [] };
  const later = (fn, ...args) => { if (typeof fn === 'function') setImmediate(() => fn(...args)); };

  function connectSocket({ url, header, protocols, success, fail, complete } = {}) {
    const handlers = { open: [], message: [], close: [], error: [] };
    const fire = (kind, arg) => { for (const h of handlers[kind]) h(arg); };
    let ws = null;
    let state = 0; // 0 connecting, 1 open, 2 closing, 3 closed
    const task = {
      onOpen: (cb) => handlers.open.push(cb),
      onMessage: (cb) => handlers.message.push(cb),
      onClose: (cb) => handlers.close.push(cb),
      onError: (cb) => handlers.error.push(cb),
      send({ data, success: ok, fail: bad, complete: done } = {}) {
        if (state !== 1) {
          later(bad, { errMsg: 'sendSocketMessage:fail WebSocket is not connected' });
          later(done);
          return;
        }
        log.sent.push(data);
        ws.send(data, (err) => {
          if (err) later(bad, { errMsg: `sendSocketMessage:fail ${err.message}` });
          else later(ok, { errMsg: 'sendSocketMessage:ok' });
          later(done);
        });
      },
      close({ code = 1000, reason = '', success: ok, complete: done } = {}) {
        if (state < 2 && ws) {
          state = 2;
          try { ws.close(code, reason); } catch { ws.terminate(); }
        }
        later(ok, { errMsg: 'closeSocket:ok' });
        later(done);
      },
    };
    if (typeof url !== 'string' || !/^wss?:\/\//.test(url)) {
      later(fail, { errMsg: 'connectSocket:fail invalid url' });
      later(complete);
      return task;
    }
    log.tasks++;
    ws = new WebSocket(url, protocols, { headers: header });
    ws.on('open', () => { state = 1; fire('open', { header: {}, profile: {} }); });
    ws.on('message', (data, isBinary) => {
      const value = isBinary ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data.toString('utf8');
      log.received.push(value);
      fire('message', { data: value });
    });
    ws.on('error', (err) => fire('error', { errMsg: err.message }));
    ws.on('close', (code, reason) => {
      state = 3;
      log.closes.push(code);
      fire('close', { code, reason: reason.toString() });
    });
    later(success, { errMsg: 'connectSocket:ok' });
    later(complete);
    return task;
  }

  return {
    log,
    connectSocket,
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => { storage.set(key, value); },
    removeStorageSync: (key) => { storage.delete(key); },
    clearStorageSync: () => storage.clear(),
    getStorageInfoSync: () => ({ keys: [...storage.keys()], currentSize: 0, limitSize: 10240 }),
  };
}
