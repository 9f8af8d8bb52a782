// Keeps README.md true: its configuration table must be exactly what the binary prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HERALD_BIN } from './lib/server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('README configuration table matches `herald serve --help-markdown`', () => {
  const table = execFileSync(HERALD_BIN, ['serve', '--help-markdown'], { encoding: 'utf8' });
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes(table), 'README.md is stale: regenerate the table with build/herald serve --help-markdown');
});
