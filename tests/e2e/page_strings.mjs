// The pages' strings for the e2e tests: strings(lang) -> t(key, params), read from the same files the
// pages load (web/assets/i18n/<lang>.js) and filled in as /assets/i18n.js does, so a scenario written
// once checks the words of either language.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web', 'assets', 'i18n');

export const LANGS = ['en', 'zh-CN'];

export function strings(lang) {
  const context = vm.createContext({});
  vm.runInContext(readFileSync(join(DIR, `${lang}.js`), 'utf8'), context);
  const dict = context.HeraldStrings[lang];
  return (key, params = {}) => {
    const value = dict[key];
    if (value === undefined) throw new Error(`no string ${key} in ${lang}`);
    if (typeof value === 'function') return value(params);
    return value.replace(/\{(\w+)\}/g, (whole, name) => (params[name] !== undefined ? String(params[name]) : whole));
  };
}
