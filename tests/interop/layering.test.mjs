// Keeps the layering of DESIGN.md true by reading the #include lines of src/ (no binary needed):
// no include cycle among the headers of net/, the connection core (conn, server) never includes the
// kinds above it (http_conn, ws_conn), protocols, hub and delivery modules do not reach into app/,
// store/, node/ or cluster/, and core/net/auth include nothing above them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** The quoted includes of src/<dir>/<file>, as paths relative to src/ ("net/conn.h"). */
function includes(rel) {
  const text = readFileSync(join(SRC, rel), 'utf8');
  return [...text.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)].map((m) => m[1]);
}

function files(dir, re) {
  return readdirSync(join(SRC, dir)).filter((f) => re.test(f)).map((f) => `${dir}/${f}`);
}

test('net/ headers include each other without a cycle', () => {
  const headers = files('net', /\.h$/);
  const edges = new Map(headers.map((h) => [h, includes(h).filter((i) => i.startsWith('net/'))]));
  const state = new Map(); // 1: on the current path, 2: done
  const visit = (h, path) => {
    if (state.get(h) === 2) return;
    assert.notEqual(state.get(h), 1, `include cycle: ${[...path, h].join(' -> ')}`);
    state.set(h, 1);
    for (const next of edges.get(h) ?? []) visit(next, [...path, h]);
    state.set(h, 2);
  };
  for (const h of headers) visit(h, []);
});

test('the connection core (conn, server) does not include the kinds above it (http_conn, ws_conn)', () => {
  for (const f of ['net/conn.c', 'net/conn.h', 'net/server.c', 'net/server.h']) {
    const bad = includes(f).filter((i) => i === 'net/http_conn.h' || i === 'net/ws_conn.h');
    assert.deepEqual(bad, [], `${f} includes ${bad.join(', ')}: call the kind through hd_conn_handler_t`);
  }
});

test('protocols, the hub and the delivery modules do not include app/, store/, node/ or cluster/', () => {
  const checked = [...files('proto', /\.[ch]$/), ...files('hub', /\.[ch]$/), ...files('delivery', /\.[ch]$/)];
  assert.ok(checked.length >= 20, `expected the proto/hub/delivery files, found ${checked.join(', ')}`);
  for (const f of checked) {
    const bad = includes(f).filter((i) => /^(app|store|node|cluster)\//.test(i));
    assert.deepEqual(bad, [], `${f} includes ${bad.join(', ')}: the app installs callbacks and interfaces instead`);
  }
});

test('the layers below proto (core, net, auth) include nothing above them', () => {
  const checked = [...files('core', /\.[ch]$/), ...files('net', /\.[ch]$/), ...files('auth', /\.[ch]$/)];
  for (const f of checked) {
    const bad = includes(f).filter((i) => /^(proto|hub|delivery|app|store|node|cluster)\//.test(i));
    assert.deepEqual(bad, [], `${f} includes ${bad.join(', ')}`);
  }
});
