/* Herald pages, shared code (window.Herald): token storage, the REST helper, ONE Socket.IO connection
 * per page with a connection-state banner, listeners registered once, toasts, and escaping.
 * User content goes into the page through textContent (Herald.el) or Herald.escapeHtml, never raw HTML.
 * Event names used by pages must be in the catalog (`herald events`); a test scans web/ for them.
 * Words come from HeraldI18n (/assets/i18n.js, loaded first); times are shown as 24-hour HH:mm in
 * the server's display offset (GET /api/v4/config), not the browser's zone. */
(function () {
  'use strict';

  const API = '/api/v4';
  const t = window.HeraldI18n.t;
  // Separate storage per console so the admin console and the customer chat can be signed in
  // side by side in one browser.
  const STORAGE = { admin: 'herald.admin.auth', customer: 'herald.customer.auth' };

  /* --- escaping and DOM ---------------------------------------------------------------------- */

  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };
  function escapeHtml(value) {
    return String(value ?? '').replace(/[&<>"'`]/g, (c) => ESC[c]);
  }

  /** el('div', {class, text, title, dataset, onclick, ...attrs}, ...children): strings become text nodes. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'class') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
      else if (key === 'href' || key === 'src') {
        const safe = safeUrl(value);
        if (safe) node.setAttribute(key, safe);
      } else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** An http(s) or same-site URL, or null (no javascript:, data:, ...). */
  function safeUrl(value) {
    if (typeof value !== 'string' || !value.trim()) return null;
    try {
      const url = new URL(value, location.href);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  }

  const $ = (selector, root = document) => root.querySelector(selector);

  /* --- time ---------------------------------------------------------------------------------- */

  function parseTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  // The server's display offset (--display-utc-offset), remembered from the last visit until
  // GET /api/v4/config answers; every REST call waits for that answer (ready) so lists are drawn in it.
  const OFFSET_KEY = 'herald.display-offset';
  const display = { offset: '+08:00', minutes: 480 };

  /** Minutes east of UTC for "+HH:MM" / "-HH:MM" / "Z", or null. */
  function offsetMinutes(text) {
    if (text === 'Z') return 0;
    const m = /^([+-])(\d\d):(\d\d)$/.exec(String(text || ''));
    return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : null;
  }

  function setOffset(text) {
    const minutes = offsetMinutes(text);
    if (minutes === null) return;
    display.offset = text;
    display.minutes = minutes;
  }
  try {
    setOffset(localStorage.getItem(OFFSET_KEY));
  } catch { /* the default stays */ }

  const ready = fetch('/api/v4/config', { headers: { Accept: 'application/json' } })
    .then((res) => (res.ok ? res.json() : null))
    .then((cfg) => {
      if (cfg && offsetMinutes(cfg.display_utc_offset) !== null) {
        setOffset(cfg.display_utc_offset);
        try {
          localStorage.setItem(OFFSET_KEY, cfg.display_utc_offset);
        } catch { /* not remembered */ }
      }
    })
    .catch(() => {});

  const pad = (n) => String(n).padStart(2, '0');

  /** The wall-clock fields of a Date (or ms) in the display offset. */
  function wall(d) {
    const shifted = new Date((d instanceof Date ? d.getTime() : d) + display.minutes * 60000);
    return { y: shifted.getUTCFullYear(), mo: pad(shifted.getUTCMonth() + 1), d: pad(shifted.getUTCDate()),
      h: pad(shifted.getUTCHours()), mi: pad(shifted.getUTCMinutes()), s: pad(shifted.getUTCSeconds()) };
  }

  /** "14:05" today, "12-03 14:05" this year, "2025-12-03 14:05" otherwise (24-hour, display offset). */
  function fmtTime(iso) {
    const d = iso instanceof Date ? iso : parseTime(iso);
    if (!d) return '';
    const w = wall(d), now = wall(Date.now());
    if (w.y === now.y && w.mo === now.mo && w.d === now.d) return `${w.h}:${w.mi}`;
    if (w.y === now.y) return `${w.mo}-${w.d} ${w.h}:${w.mi}`;
    return `${w.y}-${w.mo}-${w.d} ${w.h}:${w.mi}`;
  }

  /** "2025-12-03 14:05" (display offset). */
  function fmtDateTime(value) {
    const d = value instanceof Date ? value : typeof value === 'number' ? new Date(value) : parseTime(value);
    if (!d) return '';
    const w = wall(d);
    return `${w.y}-${w.mo}-${w.d} ${w.h}:${w.mi}`;
  }

  /** "14:05:09" now (display offset). */
  function fmtClock(value = Date.now()) {
    const w = wall(value);
    return `${w.h}:${w.mi}:${w.s}`;
  }

  function fmtDuration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (d) return t('time.d', { d, h });
    if (h) return t('time.h', { h, m });
    if (m) return t('time.m', { m, s });
    return t('time.s', { s });
  }

  /* --- tokens -------------------------------------------------------------------------------- */

  function decodeJwt(token) {
    try {
      let part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      while (part.length % 4) part += '=';
      const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;
    }
  }

  /** {token, user, claims} for the scope ('admin' | 'customer'), or null; {expired: true} once expired. */
  function getAuth(scope) {
    let stored = null;
    try {
      stored = JSON.parse(localStorage.getItem(STORAGE[scope]) || 'null');
    } catch {
      stored = null;
    }
    if (!stored || typeof stored.token !== 'string') return null;
    const claims = decodeJwt(stored.token);
    if (!claims) {
      clearAuth(scope);
      return null;
    }
    if (claims.exp && claims.exp * 1000 <= Date.now()) {
      clearAuth(scope);
      return { expired: true };
    }
    return { token: stored.token, user: stored.user || { id: Number(claims.sub), role: claims.role }, claims };
  }

  function setAuth(scope, { token, user }) {
    localStorage.setItem(STORAGE[scope], JSON.stringify({ token, user }));
  }

  function clearAuth(scope) {
    localStorage.removeItem(STORAGE[scope]);
  }

  function userId(auth) {
    return Number(auth?.user?.id ?? auth?.claims?.sub);
  }

  function loginUrl(reason) {
    const params = new URLSearchParams({ next: location.pathname + location.search });
    if (reason) params.set('reason', reason);
    return `/admin/login.html?${params}`;
  }

  /* --- REST ---------------------------------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  const authLostHandlers = {};

  /** Called when the scope's token stops working (401, expired, refused by the socket). */
  function onAuthLost(scope, fn) {
    authLostHandlers[scope] = fn;
  }

  const lost = new Set();
  function authLost(scope, message) {
    if (lost.has(scope)) return undefined; // REST and the socket may both notice: react once
    lost.add(scope);
    clearAuth(scope);
    if (authLostHandlers[scope]) return authLostHandlers[scope](message);
    if (scope === 'admin') {
      toast({ title: t('auth.signedOut'), body: message, kind: 'warning' });
      setTimeout(() => location.replace(loginUrl(message === t('auth.expired') || /expired/i.test(message) ? 'expired' : 'invalid')), 1500);
    }
    return undefined;
  }

  // Server errors are English JSON {code, message}; the ones a person meets have their own words.
  const KNOWN_ERRORS = [
    [/^wrong user name or password/, 'error.wrongPassword'],
    [/^this account is disabled/, 'error.accountDisabled'],
    [/^demo account/, 'error.demoAccount'],
    [/^too many failed sign-ins/, 'error.tooManySignIns'],
    [/^sign-in is busy/, 'error.signInBusy'],
    [/^the store cannot read or write/, 'error.storeDown'],
    [/^sending too fast/, 'error.chatRate'],
    [/^this needs an admin/, 'error.notAdmin'],
    [/names no user$|^no user with that id/, 'error.noSuchUser'],
    [/must name an admin/, 'error.targetNotAdmin'],
  ];

  /** The words a person reads for an HTTP error: a known message translated, else by status. */
  function humanError(status, message) {
    for (const [pattern, key] of KNOWN_ERRORS) if (pattern.test(message)) return t(key);
    if ([400, 401, 403, 404, 409, 413, 429].includes(status)) return t(`error.${status}`, { message });
    return t(status >= 500 ? 'error.5xx' : 'error.other', { status, message });
  }

  /**
   * api('/notifications', {scope: 'admin', method, body, query}) -> parsed JSON.
   * Throws ApiError with a human message; a 401 signs the scope out.
   */
  async function api(path, { scope = null, method = 'GET', body, query } = {}) {
    let url = API + path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
      if ([...q].length) url += `?${q}`;
    }
    await ready; // times are drawn in the server's display offset
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const auth = scope ? getAuth(scope) : null;
    if (auth?.token) headers.Authorization = `Bearer ${auth.token}`;
    let res;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, t('error.unreachable'));
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const raw = (data && (data.message || data.error)) || res.statusText || 'request failed';
      const err = new ApiError(res.status, humanError(res.status, String(raw)), data);
      if (res.status === 401 && scope && auth?.token) authLost(scope, err.message);
      throw err;
    }
    return data;
  }

  /* --- toasts -------------------------------------------------------------------------------- */

  let toastBox = null;
  const TOAST_KINDS = new Set(['info', 'success', 'warning', 'error', 'system']);

  /**
   * toast({title, body, kind, timeout, onClick}) or toast('text'). The toasts sit in the page's top
   * bar (in the flow, under the header's own row), so they push the page down and never cover its
   * controls; pages without a top bar get them at the top of the body.
   */
  function toast(opts) {
    if (typeof opts === 'string') opts = { title: opts };
    const { title = '', body = '', kind = 'info', timeout = 6000, onClick = null } = opts;
    if (!toastBox) {
      toastBox = el('div', { class: 'toasts', id: 'toasts', role: 'region', 'aria-live': 'polite', 'aria-label': t('toast.region') });
      const bar = document.querySelector('.topbar');
      const corner = document.querySelector('body > .lang-switch');
      if (bar) bar.append(toastBox);
      else if (corner) corner.after(toastBox);
      else document.body.prepend(toastBox);
    }
    const close = () => node.remove();
    const node = el('div', { class: `toast ${TOAST_KINDS.has(kind) ? kind : 'info'}${onClick ? ' clickable' : ''}`, role: 'status' },
      el('div', { class: 'toast-text' },
        title ? el('div', { class: 'toast-title', text: title }) : null,
        body ? el('div', { class: 'toast-body', text: body }) : null),
      el('button', { class: 'toast-close', type: 'button', 'aria-label': t('toast.dismiss'), text: '×', onclick: (e) => { e.stopPropagation(); close(); } }));
    if (onClick) node.addEventListener('click', () => { close(); onClick(); });
    toastBox.prepend(node);
    while (toastBox.children.length > 3) toastBox.lastElementChild.remove();
    if (timeout) setTimeout(close, timeout);
    return node;
  }

  function showError(err, title = t('error.generic')) {
    toast({ title, body: err?.message || String(err), kind: 'error', timeout: 9000 });
  }

  /* --- the connection ------------------------------------------------------------------------ */

  let socket = null;
  let socketScope = null;
  const listeners = new Map(); // event -> Set of handlers; one socket listener per event
  const resyncHooks = new Set();
  const connState = { state: 'offline', message: '' };

  function setConnState(state, message = '') {
    connState.state = state;
    connState.message = message;
    document.body.dataset.conn = state;
    const labels = { connected: t('conn.connected'), connecting: t('conn.connecting'), reconnecting: t('conn.reconnecting'),
      failed: t('conn.failed'), offline: t('conn.offline') };
    for (const pill of document.querySelectorAll('[data-conn-pill]')) {
      pill.dataset.state = state;
      pill.textContent = labels[state] || state;
      pill.title = message || labels[state] || '';
    }
    let banner = document.getElementById('conn-banner');
    if (!banner) {
      banner = el('div', { id: 'conn-banner', class: 'conn-banner', role: 'alert', hidden: true },
        el('span', { class: 'conn-text' }),
        el('button', { type: 'button', class: 'btn-small conn-retry', text: t('conn.retry'), onclick: retry }));
      const header = document.querySelector('.topbar');
      if (header) header.after(banner);
      else document.body.prepend(banner);
    }
    banner.dataset.state = state;
    // "connecting" on first load is not worth a banner; anything else after a problem is
    banner.hidden = state === 'connected' || (state === 'connecting' && !message);
    banner.querySelector('.conn-text').textContent = message || labels[state] || '';
    banner.querySelector('.conn-retry').hidden = !(state === 'failed' || state === 'offline');
  }

  function retry() {
    if (!socket) return;
    const auth = getAuth(socketScope);
    if (!auth || auth.expired) return authLost(socketScope, t('auth.expired'));
    setConnState('connecting', t('conn.connecting'));
    socket.connect();
  }

  /**
   * The page's one connection, made once with the scope's token (read again on every reconnect).
   * Handlers registered through on() survive reconnects and are never registered twice.
   */
  function connect(scope) {
    if (socket) return socket;
    if (typeof window.io !== 'function') {
      setConnState('failed', t('conn.noClient'));
      return null;
    }
    socketScope = scope;
    setConnState('connecting');
    socket = window.io({
      auth: (cb) => cb({ token: getAuth(scope)?.token || '' }),
      transports: ['websocket', 'polling'],
      reconnectionAttempts: 30,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      timeout: 10000,
    });
    let connectedOnce = false;
    socket.on('connect', () => {
      setConnState('connected');
      // after a reconnect that did not recover the missed events, reload what the page shows
      if (connectedOnce && !socket.recovered) for (const hook of resyncHooks) hook();
      connectedOnce = true;
    });
    socket.on('disconnect', (reason) => {
      if (reason === 'io client disconnect') setConnState('offline', t('conn.disconnected'));
      else if (reason === 'io server disconnect') setConnState('failed', t('conn.serverClosed'));
      else setConnState('reconnecting', t('conn.lost'));
    });
    socket.on('connect_error', (err) => {
      const message = String(err?.message || 'unknown error');
      if (socket.active) { // a transport problem: the client retries by itself
        setConnState('reconnecting', t('conn.cannotReach', { message }));
        return;
      }
      // refused by the server (the token): no automatic retry
      let human;
      if (/expired/i.test(message)) human = t('auth.expired');
      else if (/token|auth/i.test(message)) human = t('conn.tokenRefused', { message });
      else human = t('conn.refused', { message });
      setConnState('failed', human);
      if (/expired|token|auth/i.test(message)) authLost(scope, human);
    });
    socket.io.on('reconnect_attempt', (n) => setConnState('reconnecting', t('conn.lostAttempt', { n })));
    socket.io.on('reconnect_failed', () => setConnState('failed', t('conn.reconnectFailed')));
    return socket;
  }

  /** Registers fn for an event once (a second registration of the same fn is ignored). fn gets the first argument. */
  function on(event, fn) {
    if (!socket) return; // no connection (the banner says why): nothing will arrive
    let set = listeners.get(event);
    if (!set) {
      set = new Set();
      listeners.set(event, set);
      // with connection-state recovery, broadcasts carry a trailing offset argument: read the first only
      socket.on(event, (data) => {
        for (const handler of set) {
          try {
            handler(data);
          } catch (e) {
            console.error(`handler for ${event} failed`, e);
          }
        }
      });
    }
    set.add(fn);
  }

  const events = { on }; // events.on(name, fn) below, in the form the event-catalog test scans

  /** Fire and forget (volatile: dropped rather than queued while disconnected). */
  function emit(event, data) {
    if (socket?.connected) socket.volatile.emit(event, data);
  }

  /** Emits with an acknowledgement; resolves the ack's data or throws with a human message. */
  async function emitWithAck(event, data, timeoutMs = 8000) {
    if (!socket?.connected) throw new Error(t('error.notConnected'));
    let ack;
    try {
      ack = await socket.timeout(timeoutMs).emitWithAck(event, data);
    } catch {
      throw new Error(t('error.noAnswer'));
    }
    if (ack && ack.success === false) {
      const e = ack.error;
      const raw = typeof e === 'string' ? e : e?.message;
      throw new Error(raw ? humanError(typeof e === 'object' && e?.code >= 400 ? e.code : 400, raw) : t('error.refused'));
    }
    return ack && 'data' in ack ? ack.data : ack;
  }

  function isConnected() {
    return !!socket?.connected;
  }

  function onResync(fn) {
    resyncHooks.add(fn);
  }

  /* --- people by name ------------------------------------------------------------------------ */

  // Words the pages put around people's names.
  const PEOPLE_TEXT = {
    customer: (id) => t('people.customer', { id }), // until the name is known
    agent: (id) => t('people.agent', { id }),
    you: t('people.you'),
    from: (name) => t('people.from', { name }),
    unassigned: t('people.unassigned'),
    assignedToYou: t('people.assignedToYou'),
    assignedTo: (name) => t('people.assignedTo', { name }),
    chattingWith: (name) => t('people.chattingWith', { name }),
    sentTo: (name) => t('people.sentTo', { name }),
    noOnlineAdmins: t('people.noOnlineAdmins'),
    transferTo: t('people.transferTo'),
    pickRecipient: t('people.pickRecipient'),
    noMatch: t('people.noMatch'),
  };

  const names = new Map(); // user id -> display name (per page, filled on demand)
  const nameWaiters = new Map(); // user id -> [resolve]
  let nameBatch = null;

  /** The display name of user id if known already (else null). */
  function knownName(id) {
    return names.get(Number(id)) ?? null;
  }

  /**
   * Resolves with the display names of ids (a Map id -> name; unknown ids are absent), asking
   * /api/v4/users/names once per batch of lookups made in the same turn.
   */
  function lookupNames(ids, scope) {
    const want = [...new Set(ids.map(Number).filter((id) => Number.isInteger(id) && id > 0))];
    const missing = want.filter((id) => !names.has(id));
    const answer = () => new Map(want.filter((id) => names.has(id)).map((id) => [id, names.get(id)]));
    if (!missing.length) return Promise.resolve(answer());
    const waits = missing.map((id) => new Promise((resolve) => {
      if (!nameWaiters.has(id)) nameWaiters.set(id, []);
      nameWaiters.get(id).push(resolve);
    }));
    if (!nameBatch) {
      nameBatch = { ids: new Set(), scope };
      queueMicrotask(async () => {
        const batch = nameBatch;
        nameBatch = null;
        const list = [...batch.ids];
        for (let i = 0; i < list.length; i += 100) {
          const part = list.slice(i, i + 100);
          try {
            const res = await api('/users/names', { scope: batch.scope, query: { ids: part.join(',') } });
            for (const u of res?.users || []) names.set(u.id, u.display_name);
          } catch { /* names stay unknown: the pages show the fallback */ }
          for (const id of part) {
            for (const resolve of nameWaiters.get(id) || []) resolve();
            nameWaiters.delete(id);
          }
        }
      });
    }
    for (const id of missing) nameBatch.ids.add(id);
    return Promise.all(waits).then(answer);
  }

  /** Remembers names the page learned another way (e.g. the online admins list). */
  function rememberName(id, name) {
    if (name) names.set(Number(id), String(name));
  }

  /**
   * A span showing the name of user id: the fallback text now, the display name once known.
   * fallback: a function of the id (PEOPLE_TEXT.customer / .agent).
   */
  function nameTag(id, scope, fallback, props = {}) {
    const known = knownName(id);
    const node = el('span', { ...props, class: `person ${props.class || ''}`.trim(), text: known ?? fallback(id) });
    if (known === null) lookupNames([id], scope).then((m) => { if (m.has(Number(id))) node.textContent = m.get(Number(id)); });
    return node;
  }

  /* --- admin pages --------------------------------------------------------------------------- */

  /**
   * Common start of an admin page: needs an admin token (else to the login page), fills the header,
   * wires sign-out, connects and shows system events as toasts. Returns the auth or null.
   */
  function initAdminPage() {
    const auth = getAuth('admin');
    if (!auth || auth.expired || auth.user?.role !== 'admin') {
      location.replace(loginUrl(auth?.expired ? 'expired' : null));
      return null;
    }
    for (const n of document.querySelectorAll('[data-user-name]')) {
      n.textContent = auth.user.display_name || auth.user.name || t('people.adminFallback', { id: userId(auth) });
      n.title = `${auth.user.name || ''} (id ${userId(auth)})`;
    }
    for (const b of document.querySelectorAll('[data-signout]')) {
      b.addEventListener('click', () => {
        clearAuth('admin');
        socket?.disconnect();
        location.replace('/admin/login.html');
      });
    }
    const path = location.pathname;
    for (const a of document.querySelectorAll('.nav a')) if (a.getAttribute('href') === path) a.setAttribute('aria-current', 'page');
    if (!connect('admin')) return auth;
    events.on('system:alert', (a) => toast({ title: a?.title || t('sys.alert'), body: a?.message || '', kind: alertKind(a?.level), timeout: 10000 }));
    events.on('system:maintenance', (m) => toast({ title: m?.title || t('sys.maintenance'), body: maintenanceText(m), kind: 'warning', timeout: 12000 }));
    events.on('system:status_change', (s) => toast({ title: t('sys.statusTitle', { status: statusName(s?.status ?? '?') }), body: s?.message || '', kind: 'system' }));
    // the token's end: tell the user before requests start failing
    const ms = (auth.claims.exp || 0) * 1000 - Date.now();
    if (ms > 0 && ms < 2 ** 31) setTimeout(() => authLost('admin', t('auth.expired')), ms);
    return auth;
  }

  /* --- levels and statuses: the REST API's names, shown in the page's language ------------------- */

  const ALERT_LEVELS = ['info', 'success', 'warning', 'error', 'critical']; // POST /system/alerts `level`
  const SERVER_STATUSES = ['ok', 'degraded', 'maintenance', 'down']; // what the form offers for POST /system/status

  /** The toast/chip style of an alert level. */
  function alertKind(level) {
    return { critical: 'error', error: 'error', warning: 'warning', success: 'success' }[level] || 'info';
  }

  /** An alert level or notification type in words ('warning' -> "Warning" / "警告"); unknown ones as given. */
  function levelName(level) {
    return ALERT_LEVELS.includes(level) || level === 'system' ? t(`level.${level}`) : String(level ?? '');
  }

  /** A server status in words ('degraded' -> "Degraded" / "性能下降"); a status of another name as given. */
  function statusName(status) {
    return SERVER_STATUSES.includes(status) ? t(`serverStatus.${status}`) : String(status ?? '');
  }

  /** A chat session's status in words. */
  function sessionStatusName(status) {
    return ['waiting', 'active', 'closed'].includes(status) ? t(`session.${status}`) : String(status ?? '');
  }

  function maintenanceText(m) {
    if (!m) return '';
    const when = [m.start_at && t('time.from', { time: fmtTime(m.start_at) }), m.end_at && t('time.until', { time: fmtTime(m.end_at) })]
      .filter(Boolean).join(' ');
    return [m.message, when].filter(Boolean).join('\n');
  }

  /**
   * Text with its http(s) links made clickable, as DOM nodes (text nodes and <a target=_blank
   * rel="noopener noreferrer">): user text never goes through innerHTML. Other schemes stay text.
   */
  function linkify(text) {
    const out = [];
    const source = String(text ?? '');
    const pattern = /\bhttps?:\/\/[^\s<>"'`]+/gi;
    let last = 0;
    for (let m = pattern.exec(source); m; m = pattern.exec(source)) {
      let url = m[0];
      const trail = /[.,;:!?。，；：！？)）\]】』」]+$/.exec(url); // sentence punctuation after a link is not part of it
      if (trail) url = url.slice(0, -trail[0].length);
      const safe = safeUrl(url);
      if (!safe) continue;
      if (m.index > last) out.push(document.createTextNode(source.slice(last, m.index)));
      out.push(el('a', { href: safe, target: '_blank', rel: 'noopener noreferrer', text: url }));
      last = m.index + url.length;
      pattern.lastIndex = last;
    }
    if (last < source.length) out.push(document.createTextNode(source.slice(last)));
    return out;
  }

  /** Disables a form's controls while fn runs; shows its error in the form's .form-error. */
  async function busy(form, fn) {
    const controls = [...form.querySelectorAll('button, input, select, textarea')].filter((c) => !c.disabled);
    const errorBox = form.querySelector('.form-error');
    if (errorBox) errorBox.textContent = '';
    controls.forEach((c) => { c.disabled = true; });
    try {
      return await fn();
    } catch (err) {
      if (errorBox) errorBox.textContent = err.message || String(err);
      else showError(err);
      return undefined;
    } finally {
      controls.forEach((c) => { c.disabled = false; });
    }
  }

  window.Herald = {
    t, ready, display, escapeHtml, el, $, safeUrl, linkify, fmtTime, fmtDateTime, fmtClock, fmtDuration, parseTime,
    getAuth, setAuth, clearAuth, userId, decodeJwt, loginUrl, onAuthLost,
    api, ApiError, toast, showError, busy,
    connect, on, emit, emitWithAck, isConnected, onResync, setConnState, connState, alertKind, maintenanceText,
    ALERT_LEVELS, SERVER_STATUSES, levelName, statusName, sessionStatusName, humanError,
    initAdminPage,
    PEOPLE_TEXT, knownName, lookupNames, rememberName, nameTag,
    get socket() { return socket; },
  };
})();
