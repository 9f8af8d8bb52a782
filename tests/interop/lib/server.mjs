// Starts a herald server for an interop test: `const srv = await startHerald(['--echo-endpoint'])`,
// then srv.port, srv.url(path), srv.wsUrl(path), srv.stop(). The binary comes from HERALD_BIN
// (default build/herald); the port is picked by the kernel (--port 0) and read from the log.
// Options: env (added to the environment), webRoot (--web-root), port (a fixed port, e.g. to restart
// on the port of a stopped server), dataDir (a --data-dir the caller owns: kept by stop(), so a
// restarted server finds its state; by default a temporary one is made and removed by stop()).
// HERALD_SHARDS=N in the environment runs every server with `--shards N` unless the caller's args
// name --shards themselves (scripts/test.sh runs the suite with 1 and with 2 shards).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const HERALD_BIN = process.env.HERALD_BIN || join(ROOT, 'build', 'herald');

/** Sanitizer reports (ASan, UBSan, LSan, TSan) that fail a test when found in a server's log. */
export const SANITIZER_REPORT = /ERROR: AddressSanitizer|runtime error:|LeakSanitizer|WARNING: ThreadSanitizer/;

/** args plus `--shards $HERALD_SHARDS` when that variable is set and args do not name --shards. */
export function withShards(args) {
  const n = process.env.HERALD_SHARDS;
  if (n === undefined || n === '' || args.some((a) => a === '--shards' || a.startsWith('--shards='))) return args;
  return [...args, '--shards', n];
}

export async function startHerald(args = [], { env = {}, webRoot = join(ROOT, 'web'), port: fixedPort = 0, dataDir: ownDir, openFiles, fileBlocks } = {}) {
  const dataDir = ownDir || mkdtempSync(join(tmpdir(), 'herald-test-'));
  const argv = ['serve', '--host', '127.0.0.1', '--port', String(fixedPort), '--data-dir', dataDir,
    '--web-root', webRoot, '--log-level', 'info', ...withShards(args)];
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
      const m = /msg="listening".* port=(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stderr.on('data', onData);
    child.stdout.on('data', (c) => { log += c; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`herald exited (${code}):\n${log}`)); });
  }).catch((err) => { // not started: leave no process and no temporary directory behind
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (!ownDir) rmSync(dataDir, { recursive: true, force: true });
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
      if (!ownDir) rmSync(dataDir, { recursive: true, force: true });
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
