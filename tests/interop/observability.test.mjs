// Observability with real clients: /metrics latency histograms (HTTP request duration, publish to
// write, store commit) and the message counters by protocol and namespace move when socket.io-client
// 4.7.2 and a `ws` JSON-protocol client exchange messages, and every histogram is consistent
// (cumulative buckets, +Inf = _count, a plausible _sum); the Grafana dashboard
// (packaging/grafana-herald.json) asks only for series /metrics has; `--log-format` text | logfmt | json: every
// line a server writes parses in its format, also when a value holds spaces and quotes.
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startHerald } from './lib/server.mjs';

const WAIT = 5000;
const SECRET = 'observability-secret-0123456789abcdef';
const API_KEY = 'observability-api-key';
const BASE = ['--jwt-secret', SECRET, '--api-key', API_KEY, '--test-handlers'];

const open = new Set();
const track = (x) => { open.add(x); return x; };
afterEach(() => {
  for (const x of open) { try { x.close?.(); } catch { /* closed */ } }
  open.clear();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, what, ms = WAIT) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const b64url = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function token(sub, role) {
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, role, iat: now, exp: now + 3600 })}`;
  return `${signing}.${crypto.createHmac('sha256', SECRET).update(signing).digest('base64url')}`;
}

/** /metrics as { series: Map('name{labels}' -> number), types: Map(name -> type) }. */
async function scrape(srv) {
  const res = await fetch(srv.url('/metrics'));
  assert.equal(res.status, 200);
  const series = new Map(), types = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (!line) continue;
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) { types.set(t[1], t[2]); continue; }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `a valid sample line: ${line}`);
    assert.ok(!series.has(m[1]), `one sample per series: ${m[1]}`);
    series.set(m[1], Number(m[2]));
  }
  return { series, types };
}

/** Checks the histogram `name` (no labels) and returns { buckets: [[le, n]], sum, count }. */
function histogram({ series, types }, name) {
  assert.equal(types.get(name), 'histogram', `${name} is a histogram`);
  const buckets = [];
  for (const [key, value] of series) {
    const m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}$`).exec(key);
    if (m) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), value]);
  }
  assert.ok(buckets.length >= 2, `${name} has buckets`);
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i][0] > buckets[i - 1][0], `${name}: bounds increase`);
    assert.ok(buckets[i][1] >= buckets[i - 1][1], `${name}: buckets are cumulative`);
  }
  assert.equal(buckets.at(-1)[0], Infinity, `${name}: the last bucket is +Inf`);
  const count = series.get(`${name}_count`), sum = series.get(`${name}_sum`);
  assert.equal(buckets.at(-1)[1], count, `${name}: +Inf bucket = _count`);
  assert.ok(sum >= 0 && (count > 0 || sum === 0), `${name}: _sum ${sum} fits _count ${count}`);
  // every observation is at most its bucket's bound: the sum cannot pass what the buckets allow
  let most = 0, below = 0;
  for (const [le, n] of buckets) { if (le !== Infinity) most += (n - below) * le; below = n; }
  if (buckets.at(-1)[1] === buckets.at(-2)[1]) assert.ok(sum <= most + 1e-6, `${name}: _sum ${sum} within the bounds (${most})`);
  return { buckets, sum, count };
}

const delta = (before, after, key) => (after.series.get(key) ?? 0) - (before.series.get(key) ?? 0);

describe('/metrics: latency histograms and counters by protocol and namespace', { timeout: 30000 }, () => {
  test('socket.io and JSON-protocol traffic moves the counters and the histograms, which stay consistent', async () => {
    const srv = await startHerald([...BASE, '--namespaces', '/,/custom']);
    try {
      const before = await scrape(srv);
      for (const name of ['herald_http_request_duration_seconds', 'herald_publish_to_write_seconds', 'herald_store_commit_duration_seconds'])
        histogram(before, name);

      // two socket.io clients on /custom (WebSocket only: deliveries go through the shared frame)
      const a = track(io(srv.url('/custom'), { forceNew: true, reconnection: false, transports: ['websocket'] }));
      const b = track(io(srv.url('/custom'), { forceNew: true, reconnection: false, transports: ['websocket'] }));
      const got = { a: 0, b: 0 };
      let events = 0; // every event the server sent them (the test handlers also emit `auth` on connect)
      a.on('msg', () => got.a++);
      b.on('msg', () => got.b++);
      a.onAny(() => events++);
      b.onAny(() => events++);
      await until(() => a.connected && b.connected, 'two socket.io clients');
      for (let i = 0; i < 3; i++) a.emit('broadcast', { i });
      await until(() => got.a === 3 && got.b === 3, 'three broadcasts on both clients');

      // a JSON-protocol client subscribed to a topic, two publishes through the REST API
      const ws = track(new WebSocket(srv.wsUrl(`/api/v1/ws?token=${token('watcher', 'admin')}&protocol=1.0`)));
      const frames = [];
      ws.on('message', (d) => frames.push(JSON.parse(d)));
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      ws.send(JSON.stringify({ type: 'subscribe', data: { topic: 'metrics-news' }, messageId: 'sub-1' }));
      await until(() => frames.some((f) => f.type === 'ack'), 'the subscribe ack');
      for (let i = 0; i < 2; i++) {
        const res = await fetch(srv.url('/api/v1/publish'), {
          method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
          body: JSON.stringify({ topic: 'metrics-news', type: 'news', data: { i } }),
        });
        assert.equal(res.status, 200, await res.text());
      }
      await until(() => frames.filter((f) => f.type === 'news').length === 2, 'two publishes on the JSON client');

      // counters are gathered from every shard at the scrape: wait until the deliveries settled
      let after;
      await until(async () => {
        after = await scrape(srv);
        return delta(before, after, 'herald_messages_delivered_total{protocol="json",namespace="/"}') >= 2;
      }, 'the JSON deliveries in /metrics');
      assert.equal(delta(before, after, 'herald_messages_received_total{protocol="socketio",namespace="/custom"}'), 3);
      assert.equal(delta(before, after, 'herald_messages_delivered_total{protocol="socketio",namespace="/custom"}'), events,
        'one delivery per event the clients got');
      assert.ok(events >= 6);
      // three broadcasts, and each event to one socket alone (`auth`) is a publish of its own
      assert.equal(delta(before, after, 'herald_messages_published_total{namespace="/custom"}'), 3 + (events - 6));
      assert.equal(delta(before, after, 'herald_messages_delivered_total{protocol="json",namespace="/"}'), 2);
      assert.ok(delta(before, after, 'herald_messages_received_total{protocol="json",namespace="/"}') >= 1, 'the subscribe counted');
      assert.equal(delta(before, after, 'herald_messages_received_total{protocol="socketio",namespace="/"}'), 0, 'nothing on /');
      assert.equal(after.types.get('herald_messages_delivered_total'), 'counter');

      const p2w = [histogram(before, 'herald_publish_to_write_seconds'), histogram(after, 'herald_publish_to_write_seconds')];
      assert.ok(p2w[1].count - p2w[0].count >= 8, `publish-to-write counted every WebSocket delivery (${p2w[1].count - p2w[0].count})`);
      assert.ok(p2w[1].sum > p2w[0].sum, 'publish-to-write sum grew');
      const http = [histogram(before, 'herald_http_request_duration_seconds'), histogram(after, 'herald_http_request_duration_seconds')];
      assert.ok(http[1].count - http[0].count >= 3, 'the REST publishes and the first scrape were timed');
      // each timed HTTP request is counted in herald_http_requests_total too (the upgrades, 101, are not timed)
      let responses = 0;
      for (const [key, n] of after.series) if (/^herald_http_requests_total\{status="(?!101)/.test(key)) responses += n;
      assert.ok(http[1].count <= responses, `timed requests ${http[1].count} <= responses ${responses}`);
      const store = histogram(after, 'herald_store_commit_duration_seconds');
      assert.equal(store.count, after.series.get('herald_store_commits_total'), 'every store commit is timed');
      assert.ok(store.count > 0, 'the demo accounts were committed');
    } finally {
      await srv.stop();
    }
  });

  test('a store write moves the store commit histogram', async () => {
    const srv = await startHerald(BASE);
    try {
      await until(async () => histogram(await scrape(srv), 'herald_store_commit_duration_seconds').count > 0, 'the first commits');
      await sleep(200); // the demo accounts' commits are done
      const before = histogram(await scrape(srv), 'herald_store_commit_duration_seconds');
      const sent = await fetch(srv.url('/api/v4/notifications/send'), {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
        body: JSON.stringify({ type: 'system', title: 'metrics', content: 'a stored notification' }),
      });
      assert.ok(sent.status < 300, `notification stored (${sent.status}: ${await sent.text()})`);
      await until(async () => histogram(await scrape(srv), 'herald_store_commit_duration_seconds').count > before.count, 'a commit timed');
    } finally {
      await srv.stop();
    }
  });
});

describe('packaging/grafana-herald.json', { timeout: 30000 }, () => {
  test('is a dashboard whose queries name only series /metrics serves', async () => {
    const dash = JSON.parse(readFileSync(new URL('../../packaging/grafana-herald.json', import.meta.url), 'utf8'));
    assert.equal(dash.title, 'Herald');
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    assert.ok(exprs.length >= 10);
    const srv = await startHerald(BASE);
    try {
      const { types } = await scrape(srv);
      const names = new Set(exprs.flatMap((e) => e.match(/herald_[a-z_]+/g) || []));
      for (const name of names) {
        const family = name.replace(/_(bucket|sum|count)$/, '');
        if (family.startsWith('herald_cluster_') && family !== 'herald_cluster_enabled') continue; // only with --redis-url
        assert.ok(types.has(family), `${name} (in the dashboard) is served by /metrics`);
        if (name !== family) assert.equal(types.get(family), 'histogram', `${name}: ${family} is a histogram`);
      }
    } finally {
      await srv.stop();
    }
  });
});

// ---- log formats ----

/** Parses one logfmt line strictly (key=bare | key="escaped"); throws on anything else. */
function parseLogfmt(line) {
  const out = {};
  let i = 0;
  while (i < line.length) {
    const key = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(line.slice(i));
    if (!key) throw new Error(`no key at ${i}: ${line}`);
    i += key[0].length;
    if (line[i] !== '=') throw new Error(`no = after ${key[0]}: ${line}`);
    i++;
    let value;
    if (line[i] === '"') {
      const q = /^"((?:[^"\\\u0000-\u001f]|\\["\\nrtbf/]|\\u[0-9a-fA-F]{4})*)"/.exec(line.slice(i));
      if (!q) throw new Error(`bad quoted value for ${key[0]}: ${line}`);
      value = JSON.parse(q[0]);
      i += q[0].length;
    } else {
      const bare = /^[^\s"=\\]+/.exec(line.slice(i));
      if (!bare) throw new Error(`empty bare value for ${key[0]}: ${line}`);
      value = bare[0];
      i += bare[0].length;
    }
    if (key[0] in out) throw new Error(`duplicate key ${key[0]}: ${line}`);
    out[key[0]] = value;
    if (i < line.length) {
      if (line[i] !== ' ') throw new Error(`no space after ${key[0]}: ${line}`);
      i++;
    }
  }
  return out;
}

/** A server with an odd namespace, some traffic logged at debug level, stopped: its log lines. */
async function logOf(format) {
  const odd = '/a b"c=d';
  const srv = await startHerald([...BASE, '--log-level', 'debug', '--log-format', format, '--namespaces', `/,${odd}`],
    { env: { HERALD_LOG_LEVEL: 'debug' } });
  try {
    const s = track(io(srv.url(odd), { forceNew: true, reconnection: false, transports: ['websocket'] }));
    await until(() => s.connected, 'a socket.io client on the odd namespace');
    const bad = await fetch(srv.url('/nope'), { method: 'BREW' }).catch(() => null); // a bad request, logged at debug
    void bad;
    s.close();
    await sleep(100);
  } finally {
    await srv.stop();
  }
  return { lines: srv.log.split('\n').filter((l) => l.length), odd };
}

describe('--log-format', { timeout: 30000 }, () => {
  test('json: every line is one JSON object with ts, level, comp, msg; values with spaces and quotes intact', async () => {
    const { lines, odd } = await logOf('json');
    assert.ok(lines.length >= 4, lines.join('\n'));
    const objects = lines.map((l) => { try { return JSON.parse(l); } catch (e) { throw new Error(`not JSON: ${l}`); } });
    for (const o of objects) {
      assert.equal(typeof o, 'object');
      assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level), o.level);
      assert.equal(typeof o.comp, 'string');
      assert.equal(typeof o.msg, 'string');
    }
    const listening = objects.find((o) => o.msg === 'listening');
    assert.equal(typeof listening.port, 'number', 'numbers stay numbers');
    assert.ok(objects.some((o) => o.msg === 'socket connected' && o.nsp === odd), 'the odd namespace logged whole');
  });

  test('logfmt: every line parses as logfmt; values with spaces and quotes intact', async () => {
    const { lines, odd } = await logOf('logfmt');
    const records = lines.map(parseLogfmt);
    for (const r of records) for (const k of ['ts', 'level', 'comp', 'msg']) assert.ok(k in r, `${k} in ${JSON.stringify(r)}`);
    assert.ok(records.some((r) => r.msg === 'listening' && /^\d+$/.test(r.port)));
    assert.ok(records.some((r) => r.msg === 'socket connected' && r.nsp === odd), 'the odd namespace logged whole');
  });

  test('text (the default): the lines as before, ts level comp msg first', async () => {
    const { lines } = await logOf('text');
    for (const l of lines) assert.match(l, /^ts=\S+ level=(debug|info|warn|error) comp=\S+ msg="(?:[^"\\]|\\.)*"/);
    assert.ok(lines.some((l) => /msg="listening" .*port=\d+/.test(l)));
  });

  test('an unknown format is refused at start, naming the option', async () => {
    await assert.rejects(startHerald(['--log-format', 'yaml']), /log-format/);
  });
});
