/* /admin/notifications.html: the notification center. A paged list (newest first, "Load more"), the
 * unread count, mark read (clicking a row, or its button; over the connection, REST when offline) and
 * read all, a toast for every notification:new / notification:broadcast, all tabs kept in step by
 * notification:update, senders shown by name, and the send form (every admin, or one admin picked
 * by name from the users API). One's own broadcast is never unread. */
(function () {
  'use strict';
  const H = window.Herald;
  const { $, el, api, toast, showError, fmtTime, t, PEOPLE_TEXT: T } = H;
  const SCOPE = 'admin';
  const PAGE = 20;

  const auth = H.initAdminPage();
  if (!auth) return;
  const me = H.userId(auth);

  const list = $('#notif-list');
  const items = new Map(); // notification_id -> {data, node}
  let filter = 'all';
  let oldest = null; // smallest notification_id loaded by paging (the next page is before it)
  let hasMore = false;
  let loadSeq = 0;
  let unread = 0;

  /* --- unread count ---------------------------------------------------------------------- */

  function setUnread(n) {
    unread = Math.max(0, n | 0);
    const badge = $('#unread-count');
    badge.textContent = String(unread);
    badge.classList.toggle('zero', unread === 0);
    $('#read-all').disabled = unread === 0;
    document.title = unread ? t('notif.titleCount', { n: unread }) : t('notif.title');
  }

  async function refreshCount() {
    try {
      const res = await api('/notifications/unread-count', { scope: SCOPE });
      setUnread(res?.count ?? 0);
    } catch (err) {
      showError(err, t('notif.countFailed'));
    }
  }

  /* --- list ------------------------------------------------------------------------------- */

  const TYPES = new Set(['info', 'success', 'warning', 'error', 'system']);
  const typeClass = (t) => (TYPES.has(t) ? t : 'info');

  const ownBroadcast = (n) => n.sender_id === me && (n.target_user_id === null || n.target_user_id === undefined);

  function renderItem(n) {
    const read = !!n.is_read;
    const link = H.safeUrl(n.link);
    const audience = n.target_user_id === null || n.target_user_id === undefined ? t('notif.broadcast') : t('notif.toYou');
    // clicking an unread row (not its link or button) marks it read
    const onclick = read ? null : (e) => { if (!e.target.closest('a, button')) markRead(n.notification_id); };
    return el('li', { class: `notif ${read ? 'read' : 'unread'}`, dataset: { id: String(n.notification_id) }, onclick },
      el('span', { class: 'dot', 'aria-hidden': 'true' }),
      el('div', { class: 'n-main' },
        el('div', { class: 'n-head' },
          el('span', { class: `chip ${typeClass(n.type)}`, text: H.levelName(n.type || 'info') }),
          el('span', { class: 'n-title', text: n.title || t('notif.noTitle') }),
          read ? null : el('span', { class: 'sr-only', text: t('notif.unreadMark') })),
        n.content ? el('div', { class: 'n-content' }, H.linkify(n.content)) : null,
        link ? el('a', { class: 'small', href: link, target: '_blank', rel: 'noopener noreferrer', text: n.link }) : null,
        el('div', { class: 'n-meta' },
          el('time', { datetime: n.created_at || '', title: n.created_at || '', text: fmtTime(n.created_at) }),
          el('span', { text: audience }),
          n.sender_id ? (n.sender_id === me ? el('span', { text: T.from(T.you) })
            : el('span', {}, T.from(''), H.nameTag(n.sender_id, SCOPE, T.agent))) : null)),
      el('div', { class: 'n-actions' },
        read ? null : el('button', { type: 'button', class: 'btn-small mark-read', text: t('notif.markRead'), onclick: () => markRead(n.notification_id) })));
  }

  function put(n, where) {
    const node = renderItem(n);
    const old = items.get(n.notification_id);
    if (old) {
      old.node.replaceWith(node);
      old.data = n;
      old.node = node;
      return old;
    }
    const item = { data: n, node };
    items.set(n.notification_id, item);
    if (where === 'top') {
      node.classList.add('fresh');
      list.prepend(node);
    } else list.append(node);
    return item;
  }

  function updateEmpty() {
    $('#notif-empty').hidden = items.size > 0 || !$('#notif-loading').hidden;
    $('#notif-empty').textContent = filter === 'unread' ? t('notif.emptyUnread') : t('notif.empty');
    $('#load-more').hidden = !hasMore;
  }

  async function load(reset) {
    const seq = ++loadSeq;
    if (reset) {
      items.clear();
      list.replaceChildren();
      oldest = null;
      hasMore = false;
      $('#notif-loading').hidden = false;
      $('#notif-loading').textContent = t('notif.loading');
      updateEmpty();
    }
    const more = $('#load-more');
    more.disabled = true;
    try {
      const res = await api('/notifications', {
        scope: SCOPE,
        query: { limit: PAGE, unread: filter === 'unread' ? 'true' : undefined, before: reset ? undefined : oldest },
      });
      if (seq !== loadSeq) return;
      for (const n of res?.items || []) {
        if (!items.has(n.notification_id)) put(n, 'bottom');
        if (oldest === null || n.notification_id < oldest) oldest = n.notification_id;
      }
      hasMore = !!res?.has_more;
      $('#notif-loading').hidden = true;
    } catch (err) {
      if (seq !== loadSeq) return;
      $('#notif-loading').hidden = false;
      $('#notif-loading').replaceChildren(`${t('notif.loadFailed', { message: err.message })} `,
        el('button', { type: 'button', class: 'btn-small', text: t('conn.retry'), onclick: () => load(items.size === 0) }));
    } finally {
      if (seq === loadSeq) more.disabled = false;
      updateEmpty();
    }
  }

  /* --- read state -------------------------------------------------------------------------- */

  function applyRead(id, isRead = true) {
    const item = items.get(id);
    if (!item) { // not on screen: ask the server for the count
      refreshCount();
      return;
    }
    if (!!item.data.is_read === isRead) return;
    put({ ...item.data, is_read: isRead }, null);
    setUnread(unread + (isRead ? -1 : 1));
  }

  async function markRead(id) {
    const button = items.get(id)?.node.querySelector('.mark-read');
    if (button) button.disabled = true;
    try {
      if (H.isConnected()) await H.emitWithAck('notification:mark_read', { notification_id: id });
      else await api(`/notifications/${id}/read`, { scope: SCOPE, method: 'POST' });
      applyRead(id, true);
    } catch (err) {
      if (button) button.disabled = false;
      showError(err, t('notif.markFailed'));
    }
  }

  $('#read-all').addEventListener('click', async (e) => {
    const button = e.currentTarget;
    button.disabled = true;
    try {
      await api('/notifications/read-all', { scope: SCOPE, method: 'POST' });
      applyAllRead();
    } catch (err) {
      showError(err, t('notif.readAllFailed'));
    } finally {
      button.disabled = unread === 0;
    }
  });

  function applyAllRead() {
    for (const item of items.values()) if (!item.data.is_read) put({ ...item.data, is_read: true }, null);
    setUnread(0);
  }

  /* --- live ------------------------------------------------------------------------------- */

  function incoming(n, broadcast) {
    if (!n || typeof n.notification_id !== 'number') return;
    if (ownBroadcast(n)) n = { ...n, is_read: true }; // stored read for its sender
    if (!items.has(n.notification_id)) {
      if (!(filter === 'unread' && n.is_read)) put(n, 'top');
      if (!n.is_read) setUnread(unread + 1);
      updateEmpty();
    }
    toast({
      title: n.title || (broadcast ? t('notif.broadcast') : t('notif.newOne')),
      body: n.content || '',
      kind: typeClass(n.type),
      timeout: 8000,
      onClick: () => items.get(n.notification_id)?.node.scrollIntoView({ behavior: 'smooth', block: 'center' }),
    });
  }

  H.on('notification:new', (n) => incoming(n, false));
  H.on('notification:broadcast', (n) => incoming(n, true));
  H.on('notification:update', (u) => {
    if (!u) return;
    if (u.all) applyAllRead();
    else if (u.notification_id !== undefined) applyRead(Number(u.notification_id), u.is_read !== false);
  });
  H.onResync(() => {
    load(true);
    refreshCount();
  });

  /* --- filter and paging ---------------------------------------------------------------- */

  for (const [id, value] of [['#filter-all', 'all'], ['#filter-unread', 'unread']]) {
    $(id).addEventListener('click', () => {
      if (filter === value) return;
      filter = value;
      $('#filter-all').setAttribute('aria-pressed', String(value === 'all'));
      $('#filter-unread').setAttribute('aria-pressed', String(value === 'unread'));
      load(true);
    });
  }
  $('#load-more').addEventListener('click', () => load(false));

  /* --- send ------------------------------------------------------------------------------- */

  // on a phone the form starts folded so the list is what one sees first
  if (window.matchMedia('(max-width: 860px)').matches) $('#send-panel').open = false;
  const form = $('#send-form');
  const picker = $('#target-id');
  $('#target-hint').textContent = '';
  let searchSeq = 0, searchTimer = null;

  /** Fills the recipient list with the admins whose name or display name holds q. */
  async function searchAdmins(q) {
    const seq = ++searchSeq;
    try {
      const res = await api('/users', { scope: SCOPE, query: { q, role: 'admin', limit: 20 } });
      if (seq !== searchSeq) return;
      const chosen = picker.value;
      const users = res?.users || [];
      for (const u of users) H.rememberName(u.id, u.display_name);
      picker.replaceChildren(...users.map((u) => el('option', {
        value: String(u.id), text: u.id === me ? `${u.display_name} (${T.you})` : u.display_name === u.name ? u.name : `${u.display_name} (${u.name})`,
      })));
      if (users.some((u) => String(u.id) === chosen)) picker.value = chosen;
      $('#target-hint').textContent = users.length ? '' : T.noMatch;
    } catch (err) {
      if (seq === searchSeq) showError(err, t('notif.searchFailed'));
    }
  }

  $('#target-search').addEventListener('input', (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => searchAdmins(e.target.value.trim()), 200);
  });
  for (const radio of form.querySelectorAll('input[name="target"]')) {
    radio.addEventListener('change', () => {
      const one = form.querySelector('input[name="target"]:checked').value === 'one';
      $('#target-row').hidden = !one;
      if (one) {
        searchAdmins($('#target-search').value.trim());
        $('#target-search').focus();
      }
    });
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    H.busy(form, async () => {
      const one = form.querySelector('input[name="target"]:checked').value === 'one';
      const body = {
        type: $('#n-type').value,
        title: $('#n-title').value.trim(),
        content: $('#n-content').value.trim(),
      };
      if (!body.title) throw new Error(t('notif.needTitle'));
      if (!body.content) throw new Error(t('notif.needMessage'));
      const link = $('#n-link').value.trim();
      if (link) {
        if (!/^https?:\/\//i.test(link) || !H.safeUrl(link)) throw new Error(t('notif.badLink'));
        body.link = link;
      }
      if (one) {
        const target = Number(picker.value);
        if (!Number.isInteger(target) || target < 1) throw new Error(T.pickRecipient);
        body.target_user_id = target;
      }
      await api('/notifications/send', { scope: SCOPE, method: 'POST', body });
      const to = one ? T.sentTo(H.knownName(body.target_user_id) ?? T.agent(body.target_user_id)) : t('notif.toAllAdmins');
      toast({ title: t('notif.sent'), body: to, kind: 'success', timeout: 3000 });
      $('#n-title').value = '';
      $('#n-content').value = '';
      $('#n-link').value = '';
    });
  });

  setUnread(0);
  refreshCount();
  load(true);
})();
