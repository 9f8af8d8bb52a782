// Keeps the layering of DESIGN.md true by reading the #include lines of src/ (no binary needed):
// no include cycle among the headers of net/, the connection core (conn, server) never includes the
// kinds above it (http_conn, ws_conn), and protocols do not reach into app/ or store/.
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

test('protocols do not include app/ or store/', () => {
  // TODO(json_proto): only the protocols that already comply are checked. json_proto.h still
  // includes store/store.h; its owner is removing that, then this filter goes and all of src/proto/
  // is checked (replace the regular expression with /\.[ch]$/).
  const checked = files('proto', /^(sio|eio|echo).*\.[ch]$|packet.*\.[ch]$/);
  assert.ok(checked.length >= 6, `expected the sio/eio/echo/packet files, found ${checked.join(', ')}`);
  for (const f of checked) {
    const bad = includes(f).filter((i) => i.startsWith('app/') || i.startsWith('store/'));
    assert.deepEqual(bad, [], `${f} includes ${bad.join(', ')}`);
  }
});
