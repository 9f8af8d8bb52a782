// Start-up refusals name their cause and leave nothing behind (issue 12, "Safe first run"): a port
// another process holds ("address already in use"), a host that does not resolve ("cannot resolve
// host"), --config naming a directory, a --web-root that does not exist; in each case no data dir,
// key, database or demo account is created and no "first start" is announced. --web-root '' turns
// the pages off explicitly (and never falls back to the checkout); a host name resolves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHerald, HERALD_BIN, withShards } from './lib/server.mjs';

/** Runs `herald serve args` expecting it to refuse; {status, stderr}. */
function refuse(args) {
  const r = spawnSync(HERALD_BIN, ['serve', ...withShards(args)], { encoding: 'utf8', timeout: 10000 });
  return { status: r.status, stderr: r.stderr };
}

test('start-up errors name the cause and create nothing', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'herald-first-'));
  const data = join(tmp, 'data');
  const held = createServer();
  await new Promise((resolve) => held.listen(0, '127.0.0.1', resolve));
  try {
    const base = ['--data-dir', data, '--web-root', join(process.cwd(), 'web')];
    let r = refuse([...base, '--host', '127.0.0.1', '--port', String(held.address().port)]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot listen.*address already in use/);
    r = refuse([...base, '--host', 'no-such-host.invalid', '--port', '0']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot resolve host.*no-such-host\.invalid/);
    mkdirSync(join(tmp, 'conf.d'));
    r = refuse([...base, '--config', join(tmp, 'conf.d')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--config .* is a directory/);
    r = refuse(['--data-dir', data, '--host', '127.0.0.1', '--port', '0', '--web-root', join(tmp, 'nope')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /pages directory not found.*--web-root ''/);
    for (const out of [r.stderr]) assert.doesNotMatch(out, /first start|demo/);
    assert.equal(existsSync(data), false, 'no data dir, key or database created');
  } finally {
    held.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("--web-root '' serves no pages (not the checkout); a host name resolves", async () => {
  const srv = await startHerald(['--host', 'localhost'], { webRoot: '' });
  try {
    assert.match(srv.log, /listening" host=127\.0\.0\.1 .*web_root=\(off\)/);
    for (const path of ['/', '/admin/login.html', '/README.md', '/CMakeLists.txt']) {
      const res = await fetch(srv.url(path));
      assert.equal(res.status, 404, path);
    }
    assert.equal((await fetch(srv.url('/health'))).status, 200);
  } finally {
    await srv.stop();
  }
});
