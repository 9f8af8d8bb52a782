// The event catalog (src/app/events.h, printed by `herald events`) is the single source of truth:
// every name is `<module>:<action>`, and every event a page or the server uses is in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HERALD_BIN } from './lib/server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAME = /^[a-z]+:[a-z_]+$/;
// Socket.IO's own events and the test handlers' events are not application events.
const BUILTIN = new Set(['connect', 'disconnect', 'connect_error', 'disconnecting', 'error', 'reconnect',
  'reconnect_attempt', 'reconnect_error', 'reconnect_failed', 'ping', 'register_user']);

function files(dir, exts) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...files(path, exts));
    else if (exts.some((e) => name.endsWith(e))) out.push(path);
  }
  return out;
}

const catalog = JSON.parse(execFileSync(HERALD_BIN, ['events'], { encoding: 'utf8' }));
const names = new Set(catalog.map((e) => e.name));

test('every catalog entry is <module>:<action> with a direction, payload and audience', () => {
  assert.ok(catalog.length > 0);
  for (const e of catalog) {
    assert.match(e.name, NAME, `bad event name ${e.name}`);
    assert.ok(['s2c', 'c2s', 'both'].includes(e.direction), `${e.name}: direction`);
    assert.ok(e.payload && e.audience, `${e.name}: payload and audience`);
  }
  assert.equal(names.size, catalog.length, 'duplicate names in the catalog');
});

test('pages use only catalog events', () => {
  const used = /\.(?:on|once|off|emit|emitWithAck|timeout\(\d+\)\.emit)\(\s*['"`]([^'"`]+)['"`]/g;
  const problems = [];
  for (const file of files(join(ROOT, 'web'), ['.html', '.js'])) {
    const text = readFileSync(file, 'utf8');
    for (const [, name] of text.matchAll(used)) {
      if (BUILTIN.has(name) || !name.includes(':')) continue; // DOM events, Socket.IO's own
      if (!NAME.test(name) || !names.has(name)) problems.push(`${relative(ROOT, file)}: ${name}`);
    }
  }
  assert.deepEqual(problems, [], 'events not in the catalog (src/app/events.h)');
});

test('the server names events only through the catalog constants', () => {
  const literal = /hd_sio_(?:emit|emit_with_ack|broadcast|on)\([^;]*?"([a-z_]+:[a-z_:]+)"/gs;
  const problems = [];
  for (const file of files(join(ROOT, 'src'), ['.c'])) {
    const text = readFileSync(file, 'utf8');
    for (const [, name] of text.matchAll(literal)) problems.push(`${relative(ROOT, file)}: "${name}" (use HD_EV_*)`);
  }
  assert.deepEqual(problems, []);
});
