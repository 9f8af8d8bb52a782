/* The pages' language (window.HeraldI18n): zh-CN or en, from the choice remembered in localStorage
 * ("herald.lang"), else the browser's languages (navigator.languages, first match), else English.
 * The strings live in /assets/i18n/<lang>.js (loaded before this file). Elements carry their key:
 * data-i18n="key" sets the text, data-i18n-attr="placeholder:key;title:key2" sets attributes; both
 * are filled when this file runs (pages load it after their markup). Every page gets a language
 * switch in its top bar (or the top corner); switching remembers the choice and reloads the page. */
(function () {
  'use strict';

  const LANGS = ['zh-CN', 'en'];
  const STORAGE_KEY = 'herald.lang';
  const strings = globalThis.HeraldStrings || {};

  /** 'zh-CN' | 'en' for a language tag (zh, zh-Hans, zh-TW... -> zh-CN; en-* -> en), or null. */
  function match(tag) {
    const t = String(tag || '').toLowerCase();
    if (t === 'zh' || t.startsWith('zh-')) return 'zh-CN';
    if (t === 'en' || t.startsWith('en-')) return 'en';
    return null;
  }

  function pick() {
    let stored = null;
    try {
      stored = localStorage.getItem(STORAGE_KEY);
    } catch { /* storage off: the browser's languages decide */ }
    if (LANGS.includes(stored) && strings[stored]) return stored;
    const wanted = navigator.languages?.length ? navigator.languages : [navigator.language];
    for (const tag of wanted) {
      const lang = match(tag);
      if (lang && strings[lang]) return lang;
    }
    return 'en';
  }

  const lang = pick();
  const dict = strings[lang] || {};
  const fallback = strings.en || {};

  /** The text of key in the page's language, {name} replaced by params.name; a missing key is logged. */
  function t(key, params) {
    const value = key in dict ? dict[key] : fallback[key];
    if (value === undefined) {
      console.error(`i18n: no string "${key}" (${lang})`);
      return key;
    }
    if (typeof value === 'function') return value(params || {});
    return value.replace(/\{(\w+)\}/g, (whole, name) => (params && params[name] !== undefined ? String(params[name]) : whole));
  }

  /** Fills data-i18n and data-i18n-attr under root. */
  function apply(root = document) {
    for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    for (const node of root.querySelectorAll('[data-i18n-attr]')) {
      for (const pair of node.dataset.i18nAttr.split(';')) {
        const [attr, key] = pair.split(':').map((s) => s.trim());
        if (attr && key) node.setAttribute(attr, t(key));
      }
    }
  }

  /** Remembers lang and reloads the page in it. */
  function setLang(next) {
    if (!LANGS.includes(next) || next === lang) return;
    try {
      localStorage.setItem(STORAGE_KEY, next);
    } catch { /* not remembered, but the reload below still cannot change language: nothing to do */ }
    location.reload();
  }

  /** The language switch: a small select in the top bar, or fixed in the corner of pages without one. */
  function switcher() {
    const select = document.createElement('select');
    select.className = 'lang-switch';
    select.id = 'lang-switch';
    select.setAttribute('aria-label', `${t('lang.label')} / ${lang === 'en' ? '语言' : 'Language'}`);
    for (const code of LANGS) {
      const option = document.createElement('option');
      option.value = code;
      option.lang = code;
      option.textContent = (strings[code] || {})['lang.name'] || code;
      select.append(option);
    }
    select.value = lang;
    select.addEventListener('change', () => setLang(select.value));
    const bar = document.querySelector('.topbar');
    if (bar) bar.append(select);
    else {
      select.classList.add('corner');
      document.body.prepend(select);
    }
  }

  document.documentElement.lang = lang;
  apply();
  if (document.body) switcher();
  window.HeraldI18n = { lang, LANGS, t, apply, setLang };
})();
