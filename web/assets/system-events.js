/* /admin/system-events.html: post a system event — a status change (POST /api/v4/system/status), an
 * alert (/system/alerts) or a maintenance window (/system/maintenance) — after a preview of what
 * people will see (the toast, the dashboard feed line, the audience). Levels and statuses are the
 * REST API's names (Herald.ALERT_LEVELS, Herald.SERVER_STATUSES), shown translated. Maintenance
 * times are typed as "YYYY-MM-DD HH:mm" in the server's display offset. The current status comes
 * from GET /api/v4/system/status and follows system:status_change. */
(function () {
  'use strict';
  const H = window.Herald;
  const { $, el, api, t, toast } = H;
  const SCOPE = 'admin';

  const auth = H.initAdminPage();
  if (!auth) return;

  const form = $('#event-form');
  $('#e-status').replaceChildren(...H.SERVER_STATUSES.map((s) => el('option', { value: s, text: H.statusName(s) })));
  $('#e-level').replaceChildren(...H.ALERT_LEVELS.map((l) => el('option', { value: l, text: H.levelName(l) })));
  $('#e-level').value = 'warning';
  H.ready.then(() => { $('#times-hint').textContent = t('sys.timesIn', { offset: H.display.offset === 'Z' ? '' : H.display.offset }); });

  const kind = () => form.querySelector('input[name="kind"]:checked').value;
  const everyone = () => form.querySelector('input[name="audience"]:checked').value === 'everyone';

  /** Shows the fields of the chosen kind. */
  function showFields() {
    const k = kind();
    for (const node of form.querySelectorAll('[data-for]')) node.hidden = !node.dataset.for.split(' ').includes(k);
    $('#e-message-label').textContent = t(k === 'status' ? 'sys.messageOptional' : 'sys.message');
    hidePreview();
  }
  for (const radio of form.querySelectorAll('input[name="kind"]')) radio.addEventListener('change', showFields);
  for (const input of form.querySelectorAll('input, select, textarea')) input.addEventListener('input', hidePreview);

  /** "YYYY-MM-DD HH:mm" in the display offset -> ISO 8601 with that offset; '' -> null; else throws. */
  function isoOf(text) {
    const value = text.trim();
    if (!value) return null;
    const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})$/.exec(value);
    const iso = m && `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:00${H.display.offset}`;
    // a real date and time: drawn back in the same offset it reads the same
    if (!iso || H.fmtDateTime(iso) !== `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}`) throw new Error(t('sys.badTime'));
    return iso;
  }

  /** The request for the form's content: {path, body, toast: {title, body, kind}, feed}. Throws a human message. */
  function build() {
    const k = kind();
    const message = $('#e-message').value.trim();
    const title = $('#e-title').value.trim();
    if (k === 'status') {
      const status = $('#e-status').value;
      if (!status) throw new Error(t('sys.needStatus'));
      return {
        path: '/system/status',
        body: message ? { status, message } : { status },
        toast: { title: t('sys.statusTitle', { status: H.statusName(status) }), body: message, kind: 'system' },
        feed: t('sys.feedStatus', { status: H.statusName(status) }),
        everyone: false,
      };
    }
    if (!title) throw new Error(t('sys.needTitle'));
    if (k === 'alert') {
      const level = $('#e-level').value;
      return {
        path: '/system/alerts',
        body: { level, title, message, all_users: everyone() },
        toast: { title, body: message, kind: H.alertKind(level) },
        feed: title,
        everyone: everyone(),
      };
    }
    const start = isoOf($('#e-start').value), end = isoOf($('#e-end').value);
    if (start && end && Date.parse(end) < Date.parse(start)) throw new Error(t('sys.badTimes'));
    const body = { title, message, all_users: everyone() };
    if (start) body.start_at = start;
    if (end) body.end_at = end;
    return {
      path: '/system/maintenance',
      body,
      toast: { title, body: H.maintenanceText({ message, start_at: start, end_at: end }), kind: 'warning' },
      feed: title,
      everyone: everyone(),
    };
  }

  let pending = null;

  function hidePreview() {
    pending = null;
    $('#preview').hidden = true;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const errorBox = form.querySelector('.form-error');
    errorBox.textContent = '';
    try {
      pending = build();
    } catch (err) {
      errorBox.textContent = err.message;
      hidePreview();
      return;
    }
    const p = pending.toast;
    $('#preview-toast').replaceChildren(el('div', { class: `toast preview ${p.kind}` },
      el('div', { class: 'toast-text' },
        el('div', { class: 'toast-title', text: p.title }),
        p.body ? el('div', { class: 'toast-body', text: p.body }) : null)));
    $('#preview-feed').replaceChildren(el('li', {},
      el('div', {}, el('span', { class: `chip ${p.kind}`, text: p.kind === 'system' ? t('sys.kindStatus') : H.levelName(pending.body.level || 'warning') }), ' ',
        el('span', { class: 'f-title', text: pending.feed }),
        el('span', { class: 'muted small', text: ` · ${H.fmtClock().slice(0, 5)}` }))));
    $('#preview-audience').textContent = t(pending.everyone ? 'sys.audienceEveryone' : 'sys.audienceAdmins');
    $('#send-error').textContent = '';
    $('#preview').hidden = false;
    $('#send-btn').focus();
  });

  $('#edit-btn').addEventListener('click', () => {
    hidePreview();
    $('#preview-btn').focus();
  });

  $('#send-btn').addEventListener('click', async (e) => {
    if (!pending) return;
    const button = e.currentTarget;
    const request = pending;
    button.disabled = true;
    try {
      const res = await api(request.path, { scope: SCOPE, method: 'POST', body: request.body });
      toast({ title: t('sys.sent'), body: t('sys.delivered', { n: res?.delivered ?? 0 }), kind: 'success', timeout: 5000 });
      if (request.path === '/system/status') showStatus(request.body.status);
      hidePreview();
      $('#e-title').value = '';
      $('#e-message').value = '';
    } catch (err) {
      $('#send-error').textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });

  /* --- the current status ---------------------------------------------------------------------- */

  function showStatus(status) {
    const chip = $('#current-status');
    chip.textContent = status ? H.statusName(status) : t('sys.noStatus');
    chip.className = `chip ${status === 'ok' ? 'success' : status ? 'warning' : ''}`;
    chip.dataset.status = status || '';
  }

  H.on('system:status_change', (s) => showStatus(s?.status));
  api('/system/status', { scope: SCOPE }).then((s) => showStatus(s?.status)).catch(() => {});
  showFields();
})();
