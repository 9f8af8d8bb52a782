// The pages' strings (web/assets/i18n/en.js and zh-CN.js): both languages have the same keys and the
// same {parameters}; every key a page uses (data-i18n, data-i18n-attr, t('key') in its scripts)
// exists; the Chinese is translated (not the English text left in place); every page loads the
// strings and the loader before its own scripts. Runs without a server or a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const WEB = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
const context = vm.createContext({});
for (const lang of ['en', 'zh-CN']) vm.runInContext(readFileSync(join(WEB, 'assets', 'i18n', `${lang}.js`), 'utf8'), context);
const { en, 'zh-CN': zh } = context.HeraldStrings;

// the same in both languages on purpose: names, units, protocol words
const SAME = new Set(['index.title', 'dash.tSio', 'dash.websocket', 'dash.connsSub', 'dash.url']);

function files(dir, ext) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? files(join(dir, d.name), ext) : d.name.endsWith(ext) ? [join(dir, d.name)] : []);
}
const params = (v) => (typeof v === 'string' ? [...v.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort() : null);

test('en and zh-CN have the same keys, the same parameters, and the Chinese is translated', () => {
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  for (const key of Object.keys(en)) {
    assert.equal(typeof zh[key], typeof en[key], key);
    if (typeof en[key] === 'string') assert.deepEqual(params(zh[key]), params(en[key]), `${key}: parameters`);
    if (!SAME.has(key) && typeof en[key] === 'string') assert.notEqual(zh[key], en[key], `${key} is not translated`);
    if (typeof zh[key] === 'string' && !SAME.has(key) && key !== 'error.other') {
      // Chinese text: at least one CJK character (ids, URLs and commands aside)
      assert.match(zh[key], /[\u3400-\u9fff]/, `${key}: ${zh[key]}`);
    }
  }
  // plural functions give text in both languages
  for (const key of Object.keys(en).filter((k) => typeof en[k] === 'function')) {
    for (const n of [0, 1, 2]) {
      assert.equal(typeof en[key]({ n, users: n, admins: n }), 'string');
      assert.match(zh[key]({ n, users: n, admins: n }), /[\u3400-\u9fff]/, key);
    }
  }
});

test('every key the pages use exists', () => {
  const used = new Map(); // key -> file
  for (const file of files(WEB, '.html')) {
    const html = readFileSync(file, 'utf8');
    for (const m of html.matchAll(/data-i18n="([^"]+)"/g)) used.set(m[1], file);
    for (const m of html.matchAll(/data-i18n-attr="([^"]+)"/g)) {
      for (const pair of m[1].split(';')) used.set(pair.split(':')[1].trim(), file);
    }
  }
  for (const file of files(join(WEB, 'assets'), '.js')) {
    if (file.includes('/i18n/')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(/\bt\('([\w.]+)'/g)) used.set(m[1], file);
  }
  assert.ok(used.size > 200, `${used.size} keys found`);
  for (const [key, file] of used) assert.ok(key in en, `${file}: no string "${key}"`);
  for (const prefix of ['level.', 'serverStatus.', 'session.']) {
    assert.ok(Object.keys(en).some((k) => k.startsWith(prefix)), prefix); // built as `${prefix}${name}` in app.js
  }
});

test('every page loads the strings and the loader before its own scripts, and has no inline script', () => {
  for (const file of files(WEB, '.html')) {
    const html = readFileSync(file, 'utf8');
    const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]);
    assert.ok(scripts.every((attrs) => /\bsrc=/.test(attrs)), `${file}: inline script`);
    const srcs = scripts.map((attrs) => /src="([^"]+)"/.exec(attrs)[1]);
    assert.deepEqual(srcs.slice(0, 3), ['/assets/i18n/en.js', '/assets/i18n/zh-CN.js', '/assets/i18n.js'], file);
    assert.match(html, /<title data-i18n="/, `${file}: the title is translated`);
  }
});
