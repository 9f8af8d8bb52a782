// Configuration: `herald serve --help` documents every option with its environment name; bad
// values are refused at start naming the option; options come from flags, HERALD_* environment
// variables and a config file, with flag > environment > file.
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HERALD_BIN, SANITIZER_REPORT, startHerald, withShards } from './lib/server.mjs';

const OPTIONS = [
  'config', 'host', 'port', 'data-dir', 'log-level', 'web-root', 'max-connections', 'backlog', 'cors-origin',
  'cors-credentials', 'ws-origins', 'echo-endpoint', 'jwt-secret', 'api-key', 'max-request-line', 'max-header-size',
  'max-header-count', 'max-body-size', 'header-timeout', 'keepalive-timeout', 'static-max-age', 'ws-max-message-size',
  'max-backpressure', 'ws-idle-timeout', 'ws-ping-interval', 'ws-deflate', 'ws-deflate-threshold',
  'ws-deflate-window-bits', 'shutdown-grace', 'shards',
];
const envName = (opt) => `HERALD_${opt.toUpperCase().replace(/-/g, '_')}`;

const tmp = mkdtempSync(join(tmpdir(), 'herald-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Environment without any HERALD_* variable inherited from the caller (HERALD_BIN aside). */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return { ...env, ...extra };
}

/** `serve` args with --shards $HERALD_SHARDS first (as the harness does; first, so a test's last
 * argument stays last, e.g. a flag missing its value). Other commands unchanged. */
function shardArgs(args) {
  if (args[0] !== 'serve') return args;
  const rest = args.slice(1);
  const added = withShards(rest);
  return added === rest ? args : ['serve', ...added.slice(rest.length), ...rest];
}

/** Runs herald to completion (for commands that must exit at once). */
function run(args, env = {}) {
  const r = spawnSync(HERALD_BIN, shardArgs(args), { env: cleanEnv(env), encoding: 'utf8', timeout: 10000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Starts herald with exactly these args/env (no harness defaults but --shards $HERALD_SHARDS);
 * resolves {port, stop}. */
function startRaw(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(HERALD_BIN, shardArgs(['serve', ...args]), { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`herald did not start:\n${log}`)); }, 10000);
    child.stdout.on('data', (d) => { log += d; });
    child.stderr.on('data', (d) => {
      log += d;
      const m = /msg="listening".* port=(\d+)/.exec(log);
      if (m) {
        clearTimeout(t);
        resolve({
          port: Number(m[1]),
          get log() { return log; },
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
            const res = await exited;
            if (SANITIZER_REPORT.test(log)) throw new Error(`sanitizer report:\n${log}`);
            return res;
          },
        });
      }
    });
    child.on('exit', (code) => { clearTimeout(t); reject(new Error(`herald exited (${code}) before listening:\n${log}`)); });
  });
}

/** Status of a WebSocket upgrade to /ws/echo (101 when the echo endpoint is on). */
function upgradeStatus(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const t = setTimeout(() => { s.destroy(); reject(new Error('timeout')); }, 5000);
    s.on('connect', () => s.write('GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
    s.on('data', (d) => {
      buf += d;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m) { clearTimeout(t); s.destroy(); resolve(Number(m[1])); }
    });
    s.on('error', (e) => { clearTimeout(t); reject(e); });
  });
}

/** Headers of GET path (Connection: close). */
function getHeaders(port, path) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const t = setTimeout(() => { s.destroy(); reject(new Error('timeout')); }, 5000);
    s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    s.on('data', (d) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(t);
      s.destroy();
      const [status, ...lines] = buf.slice(0, end).split('\r\n');
      const h = { status: Number(status.split(' ')[1]) };
      for (const l of lines) { const i = l.indexOf(':'); h[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
      resolve(h);
    });
    s.on('error', (e) => { clearTimeout(t); reject(e); });
  });
}

const webRoot = join(tmp, 'web');
mkdirSync(webRoot);
writeFileSync(join(webRoot, 'index.html'), '<p>hi</p>');
const dataDir = join(tmp, 'data');
const BASE = ['--host', '127.0.0.1', '--web-root', webRoot, '--data-dir', dataDir];

describe('help and commands', () => {
  test('herald serve --help lists every option with its HERALD_ environment name', () => {
    const r = run(['serve', '--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const opt of OPTIONS) {
      assert.match(r.stdout, new RegExp(`--${opt}\\b`), `--${opt} missing from --help`);
      assert.ok(r.stdout.includes(envName(opt)), `${envName(opt)} missing from --help`);
    }
    assert.match(r.stdout, /flag > environment > config file > default/i);
    // every option listed (including ones added after this test was written) names its variable
    const listed = [...r.stdout.matchAll(/^ {2}--([a-z0-9-]+)/gm)].map((m) => m[1]);
    assert.ok(listed.length >= OPTIONS.length, `only ${listed.length} options listed`);
    assert.equal(new Set(listed).size, listed.length, 'an option is listed twice');
    const lines = r.stdout.split('\n');
    for (const opt of listed) {
      const at = lines.findIndex((l) => l.startsWith(`  --${opt} `) || l === `  --${opt}`);
      const block = lines.slice(at, at + 3).join('\n');
      assert.ok(block.includes(`(env ${envName(opt)})`), `--${opt}: no (env ${envName(opt)}) in its help`);
    }
  });

  test('every option listed by --help is accepted as a flag with its default value', async () => {
    const r = run(['serve', '--help']);
    const listed = [...r.stdout.matchAll(/^ {2}--([a-z0-9-]+) +(int|bool|string) +default (\S+)/gm)];
    assert.ok(listed.length >= OPTIONS.length);
    const override = { config: null, host: '127.0.0.1', port: '0', 'data-dir': dataDir, 'web-root': webRoot };
    const args = [];
    for (const [, name, , def] of listed) {
      const value = name in override ? override[name] : def === '""' ? '' : def;
      if (value !== null) args.push(`--${name}=${value}`);
    }
    const srv = await startRaw(args);
    assert.deepEqual(await srv.stop(), { code: 0, signal: null });
  });

  test('-h works as --help', () => {
    const r = run(['serve', '-h']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--max-connections/);
  });

  test('herald --help, herald version, unknown command', () => {
    const h = run(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /serve/);
    const v = run(['version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^herald \d+\.\d+\.\d+/);
    const u = run(['frobnicate']);
    assert.notEqual(u.code, 0);
    assert.match(u.stderr, /frobnicate/);
    const none = run([]);
    assert.notEqual(none.code, 0);
  });
});

describe('invalid configuration is refused at start, naming the option', () => {
  const cases = [
    [['--port', '70000'], 'port'],
    [['--port', '-1'], 'port'],
    [['--port', '80x'], 'port'],
    [['--port', ''], 'port'],
    [['--log-level', 'loud'], 'log-level'],
    [['--max-connections', '0'], 'max-connections'],
    [['--max-connections', '99999999999999999999'], 'max-connections'],
    [['--ws-deflate=maybe'], 'ws-deflate'],
    [['--ws-deflate', 'maybe'], 'maybe'], // a bare boolean flag, then a stray argument
    [['--ws-deflate-window-bits', '8'], 'ws-deflate-window-bits'],
    [['--max-request-line', '10'], 'max-request-line'],
    [['--max-header-count', '100000'], 'max-header-count'],
    [['--ws-max-message-size', '1'], 'ws-max-message-size'],
    [['--shutdown-grace', '1e3'], 'shutdown-grace'],
    [['--no-such-option', '1'], 'no-such-option'],
    [['--port=70000'], 'port'],
    [['--port'], 'port'], // missing value
    [['stray-argument'], 'stray-argument'],
  ];
  for (const [args, name] of cases) {
    test(`${args.join(' ') || '(empty)'} -> non-zero exit naming ${name}`, () => {
      const r = run(['serve', ...BASE, '--port', '0', ...args]);
      assert.notEqual(r.code, 0, `exit code; stderr: ${r.stderr}`);
      assert.equal(r.signal, null, 'exited, not killed (no hang)');
      assert.ok(r.stderr.includes(name), `stderr does not name ${name}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /msg="listening"/);
    });
  }

  test('invalid environment value names the variable', () => {
    const r = run(['serve', ...BASE], { HERALD_PORT: 'eighty' });
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes('HERALD_PORT'), r.stderr);
  });

  test('invalid value in the config file names the file, line and option', () => {
    const file = join(tmp, 'bad.conf');
    writeFileSync(file, '# comment\nport = 0\n\nmax-connections = 0\n');
    const r = run(['serve', ...BASE, '--config', file]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`${file}:4`), r.stderr);
    assert.ok(r.stderr.includes('max-connections'), r.stderr);
  });

  test('unknown key in the config file is refused', () => {
    const file = join(tmp, 'unknown.conf');
    writeFileSync(file, 'port = 0\nflux-capacitor = on\n');
    const r = run(['serve', ...BASE, '--config', file]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes('flux-capacitor'), r.stderr);
  });

  test('missing config file is refused', () => {
    const r = run(['serve', ...BASE, '--config', join(tmp, 'does-not-exist.conf')]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes('does-not-exist.conf'), r.stderr);
  });

  test('a port in use is refused with a message', async () => {
    const srv = await startRaw([...BASE, '--port', '0']);
    try {
      const r = run(['serve', ...BASE, '--port', String(srv.port)]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /listen|in use/i);
    } finally {
      await srv.stop();
    }
  });
});

describe('sources: environment, config file, precedence', () => {
  test('HERALD_PORT=0 and HERALD_ECHO_ENDPOINT=true from the environment', async () => {
    const srv = await startRaw([...BASE], { HERALD_PORT: '0', HERALD_ECHO_ENDPOINT: 'true' });
    try {
      assert.ok(srv.port > 0 && srv.port !== 3000, `port ${srv.port}`);
      assert.equal(await upgradeStatus(srv.port), 101);
    } finally {
      assert.deepEqual(await srv.stop(), { code: 0, signal: null });
    }
  });

  test('--config file with port = 0 and echo-endpoint = true', async () => {
    const file = join(tmp, 'herald.conf');
    writeFileSync(file, `# herald test config\n  port = 0\necho-endpoint = true\nhost = "127.0.0.1"\n` +
      `web-root = ${webRoot}\ndata-dir=${dataDir}\n\n# trailing comment\n`);
    const srv = await startRaw(['--config', file]);
    try {
      assert.ok(srv.port > 0 && srv.port !== 3000);
      assert.equal(await upgradeStatus(srv.port), 101);
    } finally {
      await srv.stop();
    }
  });

  test('HERALD_CONFIG names the config file', async () => {
    const file = join(tmp, 'env.conf');
    writeFileSync(file, 'port = 0\necho-endpoint = yes\n');
    const srv = await startRaw([...BASE], { HERALD_CONFIG: file });
    try {
      assert.equal(await upgradeStatus(srv.port), 101);
    } finally {
      await srv.stop();
    }
  });

  test('echo endpoint is off by default', async () => {
    const srv = await startRaw([...BASE, '--port', '0']);
    try {
      assert.equal(await upgradeStatus(srv.port), 404);
    } finally {
      await srv.stop();
    }
  });

  test('flag > environment > config file > default (static-max-age)', async () => {
    const file = join(tmp, 'prec.conf');
    writeFileSync(file, 'static-max-age = 10\n');
    const maxAge = async (args, env) => {
      const srv = await startHerald(args, { env: { ...env }, webRoot });
      try {
        return (await getHeaders(srv.port, '/index.html'))['cache-control'];
      } finally {
        await srv.stop();
      }
    };
    // startHerald inherits process.env: make sure no stray value leaks in
    const unset = { HERALD_STATIC_MAX_AGE: undefined, HERALD_CONFIG: undefined };
    assert.equal(await maxAge([], { ...unset }), 'no-cache');
    assert.match(await maxAge(['--config', file], { ...unset }), /max-age=10\b/);
    assert.match(await maxAge(['--config', file], { ...unset, HERALD_STATIC_MAX_AGE: '20' }), /max-age=20\b/);
    assert.match(await maxAge(['--config', file, '--static-max-age', '30'], { ...unset, HERALD_STATIC_MAX_AGE: '20' }), /max-age=30\b/);
    assert.match(await maxAge(['--static-max-age=40'], { ...unset, HERALD_STATIC_MAX_AGE: '20' }), /max-age=40\b/);
  });

  test('bare boolean flag followed by another flag; --name=value form', async () => {
    const srv = await startRaw([...BASE, '--echo-endpoint', '--port=0', '--ws-deflate=false']);
    try {
      assert.equal(await upgradeStatus(srv.port), 101);
    } finally {
      await srv.stop();
    }
  });

  test('boolean flag with an explicit false value', async () => {
    const srv = await startRaw([...BASE, '--port', '0', '--echo-endpoint', 'false']);
    try {
      assert.equal(await upgradeStatus(srv.port), 404);
    } finally {
      await srv.stop();
    }
  });
});
