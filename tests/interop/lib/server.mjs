// Starts a herald server for an interop test: `const srv = await startHerald(['--echo-endpoint'])`,
// then srv.port, srv.url(path), srv.wsUrl(path), srv.stop(). The binary comes from HERALD_BIN
// (default build/herald); the port is picked by the kernel (--port 0) and read from the log (any
// --log-format).
// Options: env (added to the environment), webRoot (--web-root), port (a fixed port, e.g. to restart
// on the port of a stopped server), dataDir (a --data-dir the caller owns: kept by stop(), so a
// restarted server finds its state; by default a temporary one is made and removed by stop()).
// HERALD_SHARDS=N in the environment runs every server with `--shards N` unless the caller's args
// name --shards themselves (scripts/test.sh runs the suite with 1 and with 2 shards).
// HERALD_STORE=postgres (with HERALD_TEST_POSTGRES_URL, see scripts/pg-test-server.sh) keeps every
// server's store in PostgreSQL instead: one database per data directory (created on first use, so a
// restart on the same dataDir finds its state; dropped by stop() with the temporary directory).
// storeArgs(dataDir) gives the same flags to CLI commands (herald migrate, herald user add), and
// storeSql(dataDir, sql) runs SQL on that store (SQLite or PostgreSQL) for tests that age rows.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const HERALD_BIN = process.env.HERALD_BIN || join(ROOT, 'build', 'herald');

/** Sanitizer reports (ASan, UBSan, LSan, TSan) that fail a test when found in a server's log. */
export const SANITIZER_REPORT = /ERROR: AddressSanitizer|runtime error:|LeakSanitizer|WARNING: ThreadSanitizer/;

/** 'postgres' when the tests run on PostgreSQL (HERALD_STORE=postgres), else 'sqlite'. */
export const STORE = process.env.HERALD_STORE === 'postgres' ? 'postgres' : 'sqlite';
if (STORE === 'postgres' && !process.env.HERALD_TEST_POSTGRES_URL) {
  throw new Error('HERALD_STORE=postgres needs HERALD_TEST_POSTGRES_URL (eval "$(scripts/pg-test-server.sh start)")');
}

/** Runs SQL on the PostgreSQL test server (database `db`, default the maintenance one); its output. */
function psql(sql, db) {
  const url = new URL(process.env.HERALD_TEST_POSTGRES_URL);
  if (db) url.pathname = `/${db}`;
  return execFileSync('psql', [url.href, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The PostgreSQL database of a data directory. */
function databaseOf(dataDir) {
  return `herald_t_${createHash('sha1').update(dataDir).digest('hex').slice(0, 20)}`;
}

/** The flags that put the store of dataDir where the tests want it ([] for SQLite in dataDir). */
export function storeArgs(dataDir) {
  if (STORE !== 'postgres') return [];
  const db = databaseOf(dataDir);
  if (!psql(`SELECT 1 FROM pg_database WHERE datname = '${db}'`).trim()) psql(`CREATE DATABASE ${db}`);
  const url = new URL(process.env.HERALD_TEST_POSTGRES_URL);
  url.pathname = `/${db}`;
  return ['--postgres-url', url.href];
}

/** Runs sql on the store of dataDir (its SQLite file, or its PostgreSQL database); the output. */
export function storeSql(dataDir, sql) {
  if (STORE === 'postgres') return psql(sql, databaseOf(dataDir));
  const script = 'import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\nfor row in db.execute(sys.argv[2]): print("|".join(map(str, row)))\ndb.commit()\n';
  return execFileSync('python3', ['-c', script, join(dataDir, 'herald.db'), sql], { encoding: 'utf8' });
}

/** Drops the PostgreSQL database of a data directory that is gone. */
function dropStore(dataDir) {
  if (STORE === 'postgres') psql(`DROP DATABASE IF EXISTS ${databaseOf(dataDir)} WITH (FORCE)`);
}

/** args plus `--shards $HERALD_SHARDS` when that variable is set and args do not name --shards. */
export function withShards(args) {
  const n = process.env.HERALD_SHARDS;
  if (n === undefined || n === '' || args.some((a) => a === '--shards' || a.startsWith('--shards='))) return args;
  return [...args, '--shards', n];
}

export async function startHerald(args = [], { env = {}, webRoot = join(ROOT, 'web'), port: fixedPort = 0, dataDir: ownDir, openFiles, fileBlocks } = {}) {
  const dataDir = ownDir || mkdtempSync(join(tmpdir(), 'herald-test-'));
  const ownStore = args.some((a) => /^--(db|postgres-url)(=|$)/.test(a));
  const store = ownStore ? [] : storeArgs(dataDir);
  const argv = ['serve', '--host', '127.0.0.1', '--port', String(fixedPort), '--data-dir', dataDir,
    '--web-root', webRoot, '--log-level', 'info', ...store, ...withShards(args)];
  // openFiles / fileBlocks: run under `ulimit -n` / `ulimit -f` (blocks of /bin/sh: 512 bytes in
  // dash), as a careless operator or a full disk would have it
  const limits = [openFiles && `ulimit -n ${Number(openFiles)}`, fileBlocks && `ulimit -f ${Number(fileBlocks)}`].filter(Boolean);
  const child = spawn(limits.length ? '/bin/sh' : HERALD_BIN, limits.length ? ['-c', `${limits.join(' && ')} && exec "$0" "$@"`, HERALD_BIN, ...argv] : argv, {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald did not start:\n${log}`)), 10000);
    child.on('error', (err) => { clearTimeout(timer); reject(new Error(`herald did not start: ${err.message}\n${log}`)); }); // e.g. spawn EACCES
    const onData = (chunk) => {
      log += chunk;
      const m = /msg="listening".* port=(\d+)/.exec(log) || /"msg":"listening".*"port":(\d+)/.exec(log); // text or logfmt | json
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stderr.on('data', onData);
    child.stdout.on('data', (c) => { log += c; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`herald exited (${code}):\n${log}`)); });
  }).catch((err) => { // not started: leave no process and no temporary directory behind
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (!ownDir) {
      rmSync(dataDir, { recursive: true, force: true });
      if (!ownStore) dropStore(dataDir);
    }
    throw err;
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    port, child, exited, dataDir,
    get log() { return log; },
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    wsUrl: (path = '/ws/echo') => `ws://127.0.0.1:${port}${path}`,
    /** SIGTERM, wait for exit; returns {code, signal}. Fails loudly on sanitizer reports. */
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const result = await exited;
      if (!ownDir) {
        rmSync(dataDir, { recursive: true, force: true });
        if (!ownStore) dropStore(dataDir);
      }
      if (SANITIZER_REPORT.test(log)) {
        throw new Error(`sanitizer report in herald log:\n${log}`);
      }
      return result;
    },
  };
}

/** Resident memory of a process in bytes (VmRSS). */
export async function rssBytes(pid) {
  const { readFileSync } = await import('node:fs');
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
