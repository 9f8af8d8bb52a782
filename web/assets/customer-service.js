/* /admin/customer-service.html: the agent's workbench. Session list (assigned to me + waiting) with
 * unread counts and priority, kept live by chat:session_update / chat:new_message / chat:typing; a
 * toast on chat:session_assigned; the chat pane with paged history, send, typing, take, transfer (to
 * an online admin picked by name) and close. Customers and agents are shown by display name. */
(function () {
  'use strict';
  const H = window.Herald;
  const { $, el, api, toast, showError, fmtTime, t, PEOPLE_TEXT: T } = H;
  const SCOPE = 'admin';
  const TYPING_SHOW_MS = 3000;

  const auth = H.initAdminPage();
  if (!auth) return;
  const me = H.userId(auth);

  const sessions = new Map(); // session_id -> SessionData
  const typingUntil = new Map(); // session id -> timer
  let selected = null;
  let filter = 'open';
  let loadSeq = 0;
  let loadedOnce = false;

  const view = new window.HeraldChatView({
    scope: SCOPE,
    role: 'admin',
    messages: $('#messages'),
    typing: $('#typing'),
    form: $('#composer'),
    input: $('#input'),
    typingText: t('cs.customerTyping'),
    otherName: (m) => H.knownName(m.sender_id) ?? (m.sender_type === 'admin' ? T.agent(m.sender_id) : T.customer(m.sender_id)),
  });

  /* --- sessions ------------------------------------------------------------------------------ */

  const unreadOf = (s) => Number(s.admin_unread ?? s.unread_count ?? 0) || 0;
  // priority: 1 (lowest) .. 5 (most urgent), 3 when none was given
  const prioOf = (s) => Number(s.priority ?? 3) || 3;
  const prioClass = (p) => (p >= 4 ? 'prio-high' : p === 3 ? 'prio-med' : 'prio-low');
  const STATUS_RANK = { active: 0, waiting: 1, closed: 2 };

  function visible(s) {
    if (filter === 'all') return true;
    if (filter === 'open') return s.status !== 'closed';
    return s.status === filter;
  }

  function sorted() {
    return [...sessions.values()].filter(visible).sort((a, b) =>
      (STATUS_RANK[a.status] ?? 3) - (STATUS_RANK[b.status] ?? 3)
      || prioOf(b) - prioOf(a)
      || String(b.last_message_at || b.updated_at || '').localeCompare(String(a.last_message_at || a.updated_at || ''))
      || b.session_id - a.session_id);
  }

  function renderList() {
    const list = $('#session-list');
    const rows = sorted().map((s) => {
      const id = s.session_id;
      const unread = id === selected ? 0 : unreadOf(s);
      const typing = typingUntil.has(id);
      return el('li', {
        class: 'session', role: 'option', tabindex: '0', 'aria-selected': String(id === selected),
        dataset: { id: String(id), status: s.status },
        onclick: () => select(id),
        onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(id); } },
      },
      el('div', { class: 's-title' },
        H.nameTag(s.user_id, SCOPE, T.customer),
        el('span', { class: `chip ${s.status}`, text: H.sessionStatusName(s.status) }),
        el('span', { class: `chip ${prioClass(prioOf(s))}`, title: t('cs.priority', { p: prioOf(s) }), text: `P${prioOf(s)}` })),
      typing ? el('div', { class: 's-last s-typing', text: t('cs.typing') })
        : el('div', { class: 's-last', text: s.last_message || t('cs.noMessages') }),
      el('div', { class: 's-side' },
        el('span', { text: fmtTime(s.last_message_at || s.updated_at || s.created_at) }),
        unread ? el('span', { class: 'badge unread', title: t('cs.unreadCount', { n: unread }), text: String(unread) }) : null,
        el('span', { text: `#${id}` })));
    });
    list.replaceChildren(...rows);
    $('#sessions-empty').hidden = rows.length > 0 || !loadedOnce;
    let total = 0;
    for (const s of sessions.values()) if (s.status !== 'closed' && s.session_id !== selected) total += unreadOf(s);
    $('#total-unread').textContent = String(total);
    $('#total-unread').classList.toggle('zero', total === 0);
    document.title = total ? t('cs.titleCount', { n: total }) : t('cs.title');
  }

  function upsert(s) {
    if (!s || typeof s.session_id !== 'number') return;
    sessions.set(s.session_id, { ...(sessions.get(s.session_id) || {}), ...s });
  }

  async function loadSessions() {
    const seq = ++loadSeq;
    try {
      const query = { limit: 100 };
      if (filter !== 'open' && filter !== 'all') query.status = filter;
      const res = await api('/customer-service/sessions', { scope: SCOPE, query });
      if (seq !== loadSeq) return;
      for (const s of res?.items || []) upsert(s);
      // everyone on the list by name before the list and the open chat are drawn
      await H.lookupNames([...sessions.values()].flatMap((x) => [x.user_id, x.admin_id]).filter(Boolean).slice(0, 500), SCOPE);
      if (seq !== loadSeq) return;
      loadedOnce = true;
      $('#sessions-loading').hidden = true;
    } catch (err) {
      if (seq !== loadSeq) return;
      $('#sessions-loading').hidden = false;
      $('#sessions-loading').replaceChildren(`${t('cs.loadFailed', { message: err.message })} `,
        el('button', { type: 'button', class: 'btn-small', text: t('conn.retry'), onclick: loadSessions }));
    }
    renderList();
    if (selected) renderHead();
  }

  $('#status-filter').addEventListener('change', (e) => {
    filter = e.target.value;
    renderList();
    loadSessions();
  });

  /* --- the open session ---------------------------------------------------------------------- */

  function renderHead() {
    const s = sessions.get(selected);
    if (!s) return;
    $('#chat-title').replaceChildren(H.nameTag(s.user_id, SCOPE, T.customer), ` · ${t('cs.sessionNo', { id: s.session_id })}`);
    const status = $('#chat-status');
    status.className = `chip ${s.status}`;
    status.textContent = H.sessionStatusName(s.status);
    const prio = $('#chat-priority');
    prio.className = `chip ${prioClass(prioOf(s))}`;
    prio.textContent = `P${prioOf(s)}`;
    prio.title = t('cs.priority', { p: prioOf(s) });
    const agent = $('#chat-agent');
    if (s.admin_id === null || s.admin_id === undefined) agent.textContent = T.unassigned;
    else if (s.admin_id === me) agent.textContent = T.assignedToYou;
    else agent.replaceChildren(T.assignedTo(''), H.nameTag(s.admin_id, SCOPE, T.agent));
    const closed = s.status === 'closed';
    $('#take-btn').hidden = closed || s.admin_id === me;
    $('#transfer-to').hidden = closed;
    resetTransfer();
    $('#close-btn').hidden = closed;
    if (closed) $('#confirm-close').hidden = true;
    $('#composer').hidden = closed;
    $('#closed-note').hidden = !closed;
    $('#closed-note').textContent = !closed ? '' : s.closed_at ? t('cs.closedAt', { time: fmtTime(s.closed_at) }) : t('cs.closedPlain');
    view.setEnabled(!closed);
  }

  function select(id) {
    if (!sessions.has(id)) return;
    const changed = selected !== id;
    selected = id;
    $('#workbench').classList.add('chat-open');
    $('#chat-placeholder').hidden = true;
    $('#chat-pane').hidden = false;
    $('#confirm-close').hidden = true;
    renderHead();
    renderList();
    if (changed) {
      view.open(id);
      $('#input').focus({ preventScroll: true });
    }
    markRead(id);
  }

  const reading = new Set();
  async function markRead(id) {
    const s = sessions.get(id);
    if (!s || !unreadOf(s) || reading.has(id) || document.hidden) return;
    reading.add(id);
    try {
      const res = await api(`/customer-service/sessions/${id}/read`, { scope: SCOPE, method: 'POST' });
      if (res?.session) upsert(res.session);
      else upsert({ session_id: id, admin_unread: 0, unread_count: 0 });
      renderList();
    } catch (err) {
      showError(err, t('cs.markFailed'));
    } finally {
      reading.delete(id);
    }
  }

  document.addEventListener('visibilitychange', () => { if (!document.hidden && selected) markRead(selected); });

  $('#back-btn').addEventListener('click', () => $('#workbench').classList.remove('chat-open'));

  $('#take-btn').addEventListener('click', async (e) => {
    const id = selected;
    e.currentTarget.disabled = true;
    try {
      const res = await api(`/customer-service/sessions/${id}/assign`, { scope: SCOPE, method: 'POST', body: {} });
      if (res?.session) upsert(res.session);
      toast({ title: t('cs.taken'), body: t('cs.takenBody', { id }), kind: 'success', timeout: 3000 });
      renderList();
      if (selected === id) renderHead();
    } catch (err) {
      showError(err, t('cs.takeFailed'));
    } finally {
      $('#take-btn').disabled = false;
    }
  });

  /* transfer: the online admins by name, loaded when the list is opened */
  const transfer = $('#transfer-to');
  function resetTransfer() {
    if (transfer.options.length !== 1 || transfer.value !== '') transfer.replaceChildren(el('option', { value: '', text: T.transferTo }));
  }
  async function loadOnlineAdmins() {
    const s = sessions.get(selected);
    try {
      const res = await api('/users/online-admins', { scope: SCOPE });
      const others = (res?.users || []).filter((u) => u.id !== s?.admin_id);
      for (const u of others) H.rememberName(u.id, u.display_name);
      transfer.replaceChildren(el('option', { value: '', text: others.length ? T.transferTo : T.noOnlineAdmins }),
        ...others.map((u) => el('option', { value: String(u.id), text: u.id === me ? `${u.display_name} (${T.you})` : u.display_name })));
    } catch (err) {
      showError(err, t('cs.onlineFailed'));
    }
  }
  transfer.addEventListener('focus', loadOnlineAdmins);
  transfer.addEventListener('mousedown', () => { if (transfer.options.length <= 1) loadOnlineAdmins(); });
  transfer.addEventListener('change', async () => {
    const id = selected, to = Number(transfer.value);
    if (!to) return;
    transfer.disabled = true;
    try {
      const res = await api(`/customer-service/sessions/${id}/assign`, { scope: SCOPE, method: 'POST', body: { admin_id: to } });
      if (res?.session) upsert(res.session);
      toast({ title: t('cs.transferred'), body: T.assignedTo(H.knownName(to) ?? T.agent(to)), kind: 'success', timeout: 3000 });
      renderList();
      if (selected === id) renderHead();
    } catch (err) {
      showError(err, t('cs.transferFailed'));
    } finally {
      transfer.disabled = false;
      resetTransfer();
    }
  });

  $('#close-btn').addEventListener('click', () => { $('#confirm-close').hidden = false; });
  $('#confirm-close-no').addEventListener('click', () => { $('#confirm-close').hidden = true; });
  $('#confirm-close-yes').addEventListener('click', async (e) => {
    const id = selected;
    e.currentTarget.disabled = true;
    try {
      const res = await api(`/customer-service/sessions/${id}/close`, { scope: SCOPE, method: 'POST' });
      if (res?.session) upsert(res.session);
      else upsert({ session_id: id, status: 'closed' });
      $('#confirm-close').hidden = true;
      renderList();
      if (selected === id) renderHead();
    } catch (err) {
      showError(err, t('cs.closeFailed'));
    } finally {
      $('#confirm-close-yes').disabled = false;
    }
  });

  /* --- live ------------------------------------------------------------------------------ */

  const justAssigned = new Set(); // the assignment toast covers the session's first message
  H.on('chat:session_assigned', (a) => {
    if (!a) return;
    justAssigned.add(a.session_id);
    setTimeout(() => justAssigned.delete(a.session_id), 3000);
    H.lookupNames([a.user_id], SCOPE).then(() => toast({
      title: t('cs.assigned'),
      body: t('cs.assignedBody', { id: a.session_id, name: H.knownName(a.user_id) ?? T.customer(a.user_id), p: a.priority ?? 3 }),
      kind: 'info',
      timeout: 10000,
      onClick: () => select(a.session_id),
    }));
    loadSessions();
  });

  H.on('chat:session_update', (s) => {
    if (!s || typeof s.session_id !== 'number') return;
    upsert(s);
    renderList();
    if (s.session_id === selected) {
      renderHead();
      if (unreadOf(sessions.get(s.session_id))) markRead(s.session_id);
    }
  });

  H.on('chat:new_message', (m) => {
    if (!m) return;
    const s = sessions.get(m.session_id);
    if (!s) {
      loadSessions(); // a session this page has not seen yet
      return;
    }
    upsert({ session_id: s.session_id, last_message: m.message_content, last_message_at: m.created_at });
    if (m.sender_type !== 'admin') clearTyping(m.session_id);
    if (m.session_id === selected) {
      view.add(m);
    } else if (m.sender_type === 'user' && !justAssigned.has(m.session_id)) {
      toast({ title: H.knownName(s.user_id) ?? T.customer(s.user_id), body: m.message_content, kind: 'info', timeout: 5000, onClick: () => select(s.session_id) });
    }
    renderList();
  });

  H.on('chat:typing', (t) => {
    if (!t || t.role === 'admin') return;
    view.onTyping(t);
    clearTimeout(typingUntil.get(t.session_id));
    typingUntil.set(t.session_id, setTimeout(() => clearTyping(t.session_id), TYPING_SHOW_MS));
    renderList();
  });

  function clearTyping(id) {
    if (!typingUntil.has(id)) return;
    clearTimeout(typingUntil.get(id));
    typingUntil.delete(id);
    renderList();
  }

  H.onResync(() => {
    loadSessions();
    if (selected) view.open(selected);
  });

  loadSessions();
})();
