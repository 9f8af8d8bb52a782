/* /admin/dashboard.html: live server state. /health and /metrics are sampled every 2 s (server state,
 * not business data) and drawn as tiles and two small line charts on <canvas>: connections, and
 * messages/s from the deltas of herald_ws_frames_total. GET /api/v4/presence (admin token), sampled
 * with them, fills the cluster's nodes (tag, URL, connections, online users and admins, heartbeat
 * age; this node alone without --redis-url) and the "Online now" tile. System events arrive over
 * the connection. The Status tile shows the last status posted (GET /api/v4/system/status, then each
 * system:status_change), with the health check below it; until one is posted, the health check. */
(function () {
  'use strict';
  const H = window.Herald;
  const { $, el, fmtTime, fmtDuration, t } = H;
  const INTERVAL_MS = 2000;
  const KEEP = 90; // samples on the charts (3 minutes)

  const auth = H.initAdminPage();
  if (!auth) return;

  /* --- Prometheus text ------------------------------------------------------------------ */

  /** name{labels} -> value for every sample line. */
  function parseMetrics(text) {
    const out = new Map();
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
      if (m) out.set(m[1], Number(m[2]));
    }
    return out;
  }

  function sumOf(metrics, name) {
    let total = 0;
    for (const [key, value] of metrics) if (key === name || key.startsWith(`${name}{`)) total += value;
    return total;
  }

  /* --- formatting ----------------------------------------------------------------------- */

  const nf = new Intl.NumberFormat();
  const num = (v) => (Number.isFinite(v) ? nf.format(Math.round(v)) : '—');
  const rate = (v) => (!Number.isFinite(v) ? '—' : v >= 100 ? nf.format(Math.round(v)) : v.toFixed(1));
  function bytes(v) {
    if (!Number.isFinite(v)) return '—';
    const units = ['B', 'KB', 'MB', 'GB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
  }

  function tile(id, value, sub, state) {
    const t = $(`#${id}`);
    t.querySelector('[data-v]').textContent = value;
    t.querySelector('[data-s]').textContent = sub || '';
    t.classList.toggle('ok', state === 'ok');
    t.classList.toggle('bad', state === 'bad');
  }

  /* --- charts ---------------------------------------------------------------------------- */

  const series = {
    conns: [
      { color: '#3b5bdb', values: [] },
      { color: '#2f9e44', values: [] },
      { color: '#e67700', values: [] },
    ],
    msgs: [
      { color: '#1c7ed6', values: [] },
      { color: '#ae3ec9', values: [] },
    ],
  };

  /** The top of the y axis: four steps of a round size (1, 2, 2.5, 5 x 10^k), at least 4. */
  function niceMax(v) {
    const raw = Math.max(v / 4, 1);
    const p = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return 4 * m * p;
    return 40 * p;
  }

  function draw(canvas, lines, fmt) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const left = 44, right = 8, top = 8, bottom = 20;
    const cw = w - left - right, ch = h - top - bottom;
    let max = 0;
    for (const s of lines) for (const v of s.values) if (v > max) max = v;
    max = niceMax(max * 1.1);

    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#667085';
    ctx.strokeStyle = '#e3e7ef';
    ctx.lineWidth = 1;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    for (let i = 0; i <= 4; i++) {
      const y = top + ch - (ch * i) / 4;
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y) + 0.5);
      ctx.lineTo(w - right, Math.round(y) + 0.5);
      ctx.stroke();
      ctx.fillText(fmt((max * i) / 4), left - 6, y);
    }
    // the time axis spans the samples there are (up to KEEP): the left label says how far back
    const n = Math.max(...lines.map((s) => s.values.length), 0);
    ctx.textBaseline = 'top';
    ctx.textAlign = 'left';
    if (n > 1) ctx.fillText(`-${fmtDuration(((n - 1) * INTERVAL_MS) / 1000)}`, left, top + ch + 5);
    ctx.textAlign = 'right';
    ctx.fillText(t('dash.now'), w - right, top + ch + 5);

    const step = n > 1 ? cw / (n - 1) : 0;
    for (const s of lines) {
      if (!s.values.length) continue;
      const offset = n - s.values.length;
      const points = s.values.map((v, i) => [n > 1 ? left + (offset + i) * step : w - right, top + ch - (ch * v) / max]);
      if (points.length === 1) { // one sample: a dot
        ctx.fillStyle = s.color;
        ctx.beginPath();
        ctx.arc(points[0][0], points[0][1], 2.5, 0, Math.PI * 2);
        ctx.fill();
        continue;
      }
      ctx.beginPath();
      points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.lineJoin = 'round';
      ctx.stroke();
      // a light area under the line
      ctx.lineTo(points[points.length - 1][0], top + ch);
      ctx.lineTo(points[0][0], top + ch);
      ctx.closePath();
      ctx.globalAlpha = 0.07;
      ctx.fillStyle = s.color;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
  }

  const shortNum = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k` : `${Math.round(v * 10) / 10}`);

  function drawAll() {
    draw($('#chart-conns'), series.conns, shortNum);
    draw($('#chart-msgs'), series.msgs, shortNum);
  }

  function push(list, values) {
    list.forEach((s, i) => {
      s.values.push(values[i]);
      if (s.values.length > KEEP) s.values.shift();
    });
  }

  /* --- sampling -------------------------------------------------------------------------- */

  let prev = null; // {t, framesIn, framesOut, bytesIn, bytesOut, http}
  let paused = false;
  let timer = null;
  let failures = 0;

  /** The cluster's nodes and who is online, from GET /api/v4/presence (a failure shows in the panel). */
  async function samplePresence() {
    let p;
    try {
      p = await H.api('/presence', { scope: 'admin' });
    } catch (err) {
      $('#nodes-scope').textContent = t('dash.presenceFailed', { message: err.message });
      return;
    }
    const nodes = [...(p.nodes || [])].sort((a, b) => (b.self - a.self) || String(a.tag).localeCompare(String(b.tag)));
    const rows = nodes.map((n) => el('tr', { class: n.self ? 'self' : '' },
      el('td', {}, el('code', { text: n.tag }), n.self ? el('span', { class: 'muted small', text: t('dash.thisNode') }) : null),
      el('td', { text: n.url || '—' }),
      el('td', { class: 'num', text: num(n.connections) }),
      el('td', { class: 'num', text: num(n.users) }),
      el('td', { class: 'num', text: num(n.admins) }),
      el('td', { class: 'num', text: n.self ? t('dash.liveBeat') : t('dash.agoS', { s: (n.age_ms / 1000).toFixed(1) }) })));
    $('#nodes tbody').replaceWith(el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { class: 'muted', colspan: '6', text: t('dash.noNode') }))));
    document.body.dataset.nodes = String(nodes.length);
    $('#nodes-scope').textContent = p.scope === 'cluster' ? t('dash.clusterNodes', { n: nodes.length }) : t('dash.single');
    tile('t-online', num(p.users_online), t('dash.onlineSub', { users: p.users_online, atLeast: !!p.users_truncated, admins: p.admins_online, cluster: p.scope === 'cluster' }));
  }

  async function sample() {
    timer = null;
    if (paused) return;
    samplePresence();
    try {
      const [hRes, mRes] = await Promise.all([fetch('/health', { cache: 'no-store' }), fetch('/metrics', { cache: 'no-store' })]);
      const health = await hRes.json();
      const metrics = parseMetrics(await mRes.text());
      if (!mRes.ok) throw new Error(`/metrics answered ${mRes.status}`);
      failures = 0;
      update(health, metrics);
    } catch (err) {
      failures++;
      tile('t-status', t('dash.unreachable'), err.message || t('dash.noAnswer'), 'bad');
      $('#updated').textContent = t('dash.failedSamples', { n: failures });
    }
    if (!paused) timer = setTimeout(sample, INTERVAL_MS);
  }

  function update(health, metrics) {
    const now = performance.now();
    const cur = {
      t: now,
      framesIn: metrics.get('herald_ws_frames_total{direction="in"}') ?? 0,
      framesOut: metrics.get('herald_ws_frames_total{direction="out"}') ?? 0,
      bytesIn: metrics.get('herald_bytes_total{direction="in"}') ?? 0,
      bytesOut: metrics.get('herald_bytes_total{direction="out"}') ?? 0,
      http: sumOf(metrics, 'herald_http_requests_total'),
    };
    let r = null;
    if (prev && now > prev.t) {
      const dt = (now - prev.t) / 1000;
      const d = (k) => Math.max(0, cur[k] - prev[k]) / dt; // a restarted server resets the counters
      r = { fin: d('framesIn'), fout: d('framesOut'), bin: d('bytesIn'), bout: d('bytesOut'), http: d('http') };
    }
    prev = cur;

    const c = health.connections || {};
    const ws = health.websocket || {};
    const sio = health.socketio || {};
    lastHealth = health;
    drawStatus();
    tile('t-uptime', fmtDuration(health.uptime || 0), t('dash.since', { time: H.fmtDateTime(Date.now() - (health.uptime || 0) * 1000) }));
    tile('t-conns', num(c.total), t('dash.connsSub', { http: num(c.http), ws: num(c.websocket) }));
    tile('t-sio', num(sio.sockets), t('dash.sioSub', { sessions: num(sio.sessions), json: num(health.json?.connections) }));
    tile('t-rooms', num(ws.rooms), t('dash.roomsSub'));
    tile('t-msgs', r ? rate(r.fin + r.fout) : '…', r ? t('dash.msgsSub', { in: rate(r.fin), out: rate(r.fout) }) : t('dash.twoSamples'));
    tile('t-bytes', r ? `${bytes(r.bin + r.bout)}/s` : '…', r ? t('dash.bytesSub', { in: bytes(r.bin), out: bytes(r.bout) }) : '');
    tile('t-http', r ? rate(r.http) : '…', t('dash.httpSub', { n: num(cur.http) }));
    const st = health.store;
    if (st) {
      tile('t-store', st.status || '?', [st.backend, Number.isFinite(st.commits) && t('dash.storeCommits', { n: num(st.commits) }),
        Number.isFinite(st.queue_depth) && t('dash.storeQueue', { n: num(st.queue_depth) }),
        Number.isFinite(st.last_commit_ms) && t('dash.storeLast', { ms: st.last_commit_ms.toFixed(1) })].filter(Boolean).join(' · '),
      st.status === 'ok' ? 'ok' : 'bad');
    } else tile('t-store', '—', t('dash.notReported'));
    tile('t-chat', num(metrics.get('herald_chat_sessions_total')), t('dash.chatSub', { n: num(metrics.get('herald_chat_messages_total')) }));
    tile('t-notif', num(sumOf(metrics, 'herald_notifications_sent_total')),
      t('dash.notifSub', { n: num(metrics.get('herald_notifications_read_total')) }));
    const lag = metrics.get('herald_event_loop_lag_seconds');
    const lagMax = metrics.get('herald_event_loop_lag_max_seconds');
    tile('t-lag', Number.isFinite(lag) ? `${(lag * 1000).toFixed(0)} ms` : '—',
      Number.isFinite(lagMax) ? t('dash.lagSub', { ms: (lagMax * 1000).toFixed(0) }) : '', Number.isFinite(lag) && lag > 0.1 ? 'bad' : null);

    const rows = Object.entries(ws.byProtocol || {}).sort((a, b) => b[1] - a[1])
      .map(([name, n]) => el('tr', {}, el('td', { text: name }), el('td', { text: num(n) })));
    $('#by-protocol').replaceChildren(el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { class: 'muted', text: t('dash.noProtocols') }), el('td', {}))));

    push(series.conns, [c.total || 0, c.websocket || 0, sio.sockets || 0]);
    if (r) push(series.msgs, [r.fin, r.fout]);
    drawAll();
    document.body.dataset.samples = String(series.conns[0].values.length);
    $('#updated').textContent = t('dash.updated', { time: H.fmtClock(), s: INTERVAL_MS / 1000 });
  }

  $('#pause-btn').addEventListener('click', (e) => {
    paused = !paused;
    e.currentTarget.textContent = paused ? t('dash.resume') : t('dash.pause');
    e.currentTarget.setAttribute('aria-pressed', String(paused));
    if (paused) {
      clearTimeout(timer);
      timer = null;
      $('#updated').textContent = t('dash.paused');
    } else {
      prev = null;
      sample();
    }
  });

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawAll, 100);
  });

  /* --- system events (live, over the connection) --------------------------------------- */

  function feed(kind, title, body, at, level) {
    $('#feed-empty').hidden = true;
    $('#feed').prepend(el('li', {},
      el('div', {}, el('span', { class: `chip ${kind}`, dataset: { level: level || kind }, text: kind === 'system' ? t('sys.kindStatus') : H.levelName(level || kind) }), ' ',
        el('span', { class: 'f-title', text: title }),
        el('span', { class: 'muted small', text: ` · ${fmtTime(at) || H.fmtClock()}` })),
      body ? el('div', { class: 'f-body', text: body }) : null));
    while ($('#feed').children.length > 50) $('#feed').lastElementChild.remove();
  }

  H.on('system:status_change', (s) => {
    feed('system', t('sys.feedStatus', { status: H.statusName(s?.status ?? '?') }), s?.message || '', s?.at);
    if (s?.status) {
      lastStatus = s;
      drawStatus();
    }
  });
  H.on('system:alert', (a) => feed(H.alertKind(a?.level), a?.title || t('sys.feedAlert'), a?.message || '', a?.at, a?.level));
  H.on('system:maintenance', (m) => feed('warning', m?.title || t('sys.maintenance'), H.maintenanceText(m), m?.at));

  /* --- the Status tile: the last status posted, the health check under it -------------------- */

  let lastStatus = null; // {status, message, at} of GET /api/v4/system/status or the last system:status_change
  let lastHealth = null;

  function drawStatus() {
    const health = lastHealth?.status;
    if (lastStatus?.status) {
      const sub = [lastStatus.message, lastStatus.at && t('dash.statusPosted', { time: fmtTime(lastStatus.at) }),
        health && t('dash.health', { s: health })].filter(Boolean).join(' · ');
      tile('t-status', H.statusName(lastStatus.status), sub, lastStatus.status === 'ok' && health === 'ok' ? 'ok' : 'bad');
      $('#t-status').dataset.status = lastStatus.status;
    } else if (lastHealth) {
      tile('t-status', health || '?', [t('dash.healthOnly'), lastHealth.version && t('dash.version', { v: lastHealth.version })]
        .filter(Boolean).join(' · '), health === 'ok' ? 'ok' : 'bad');
    }
  }

  async function loadStatus() {
    try {
      const s = await H.api('/system/status', { scope: 'admin' });
      if (s?.status && !lastStatus) {
        lastStatus = s;
        drawStatus();
      }
    } catch { /* the tile keeps the health check */ }
  }
  H.onResync(loadStatus);

  drawAll();
  loadStatus();
  sample();
})();
