/* /chat.html: the customer side (what a mini program does). Sign in as a user, start a session
 * (POST /customer-service/sessions), chat with paged history and the typing indicator, and follow the
 * session's status (waiting -> active -> closed) through chat:session_update. */
(function () {
  'use strict';
  const H = window.Herald;
  const { $, el, api, toast, fmtTime, t } = H;
  const SCOPE = 'customer';

  const views = ['#signin-view', '#start-view', '#chat-view'];
  function show(id) {
    for (const v of views) $(v).hidden = v !== id;
    document.body.classList.toggle('fill', id === '#chat-view');
  }

  /* --- sign-in --------------------------------------------------------------------------- */

  function showSignIn(message) {
    $('#who').hidden = true;
    show('#signin-view');
    $('#signin-reason').hidden = !message;
    $('#signin-reason').textContent = message || '';
    $('#username').focus();
  }

  $('#signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const username = $('#username').value.trim();
    const password = $('#password').value;
    H.busy(form, async () => {
      if (!username || !password) throw new Error(t('login.enterBoth'));
      let res;
      try {
        res = await api('/auth/login', { method: 'POST', body: { username, password } });
      } catch (err) {
        throw err.status === 401 ? new Error(t('error.wrongPassword')) : err;
      }
      if (res?.user?.role !== 'user') {
        throw new Error(t('cchat.staffAccount'));
      }
      H.setAuth(SCOPE, res);
      location.reload(); // start clean with the new identity
    });
  });

  $('#signout').addEventListener('click', () => {
    H.clearAuth(SCOPE);
    location.reload();
  });

  const auth = H.getAuth(SCOPE);
  if (!auth || auth.expired || auth.user?.role !== 'user') {
    showSignIn(auth?.expired ? t('auth.expired') : '');
    return;
  }

  /* --- signed in ------------------------------------------------------------------------- */

  $('#who').hidden = false;
  $('#user-name').textContent = auth.user.display_name || auth.user.name || t('people.userFallback', { id: H.userId(auth) });
  H.onAuthLost(SCOPE, (message) => {
    H.socket?.disconnect();
    showSignIn(message);
  });
  H.connect(SCOPE);

  const sessions = new Map(); // session_id -> SessionData (mine)
  let current = null; // id of the session on screen

  const view = new window.HeraldChatView({
    scope: SCOPE,
    role: 'user',
    messages: $('#messages'),
    typing: $('#typing'),
    form: $('#composer'),
    input: $('#input'),
    typingText: t('cchat.agentTyping'),
    otherName: (m) => (m.sender_type === 'admin' ? H.knownName(m.sender_id) ?? t('cchat.agent') : t('cchat.customer')),
  });

  const isOpen = (s) => s.status === 'waiting' || s.status === 'active';
  const newest = (a, b) => String(b.created_at || '').localeCompare(String(a.created_at || '')) || b.session_id - a.session_id;

  function renderStatus() {
    const s = sessions.get(current);
    if (!s) return;
    const chip = $('#chat-status');
    chip.className = `chip ${s.status}`;
    chip.textContent = H.sessionStatusName(s.status);
    $('#chat-title').textContent = t('cchat.conversationNo', { id: s.session_id });
    const line = {
      waiting: t('cchat.waiting'),
      active: s.admin_id ? H.PEOPLE_TEXT.chattingWith(H.knownName(s.admin_id) ?? t('people.anAgent')) : t('cchat.onIt'),
      closed: s.closed_at ? t('cchat.closedAt', { time: fmtTime(s.closed_at) }) : t('cchat.closed'),
    }[s.status] || s.status;
    $('#status-line').textContent = line;
    if (s.admin_id && H.knownName(s.admin_id) === null) // the agent's name, then draw again
      H.lookupNames([s.admin_id], SCOPE).then((m) => { if (m.size && current === s.session_id) renderStatus(); });
    const closed = s.status === 'closed';
    $('#end-btn').hidden = closed;
    if (closed) $('#confirm-end').hidden = true;
    $('#composer').hidden = closed;
    $('#closed-note').hidden = !closed;
    $('#closed-text').textContent = t('cchat.closedText');
    view.setEnabled(!closed);
  }

  function openChat(id) {
    const changed = current !== id;
    current = id;
    show('#chat-view');
    renderStatus();
    if (changed) view.open(id);
    markRead(id);
    if (sessions.get(id)?.status !== 'closed') $('#input').focus({ preventScroll: true });
  }

  function showStart() {
    current = null;
    $('#confirm-end').hidden = true;
    view.close();
    show('#start-view');
    const past = [...sessions.values()].sort(newest);
    $('#past-view').hidden = past.length === 0;
    $('#past-list').replaceChildren(...past.map((s) => el('li', {},
      el('span', { class: `chip ${s.status}`, text: H.sessionStatusName(s.status) }),
      el('span', { class: 'p-text', text: s.last_message || t('cchat.conversationNo', { id: s.session_id }) }),
      el('span', { class: 'muted small', text: fmtTime(s.last_message_at || s.created_at) }),
      el('button', { type: 'button', class: 'btn-small', text: isOpen(s) ? t('cchat.continue') : t('cchat.view'), onclick: () => openChat(s.session_id) }))));
    $('#start-text').focus();
  }

  async function loadSessions({ pick = true } = {}) {
    try {
      const res = await api('/customer-service/sessions', { scope: SCOPE });
      for (const s of res?.items || []) sessions.set(s.session_id, s);
    } catch (err) {
      if (err.status === 401) return;
      show('#start-view');
      H.showError(err, t('cchat.loadFailed'));
      return;
    }
    if (!pick) {
      if (current) renderStatus();
      return;
    }
    const open = [...sessions.values()].filter(isOpen).sort(newest)[0];
    if (open) openChat(open.session_id);
    else showStart();
  }

  const reading = new Set();
  async function markRead(id) {
    const s = sessions.get(id);
    if (!s || !Number(s.user_unread ?? s.unread_count ?? 0) || reading.has(id) || document.hidden) return;
    reading.add(id);
    try {
      const res = await api(`/customer-service/sessions/${id}/read`, { scope: SCOPE, method: 'POST' });
      if (res?.session) sessions.set(id, { ...s, ...res.session });
    } catch {
      /* the count is only cosmetic here */
    } finally {
      reading.delete(id);
    }
  }
  document.addEventListener('visibilitychange', () => { if (!document.hidden && current) markRead(current); });

  $('#start-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    H.busy(form, async () => {
      const content = $('#start-text').value.trim();
      if (!content) throw new Error(t('cchat.needText'));
      const res = await api('/customer-service/sessions', { scope: SCOPE, method: 'POST', body: { content } });
      if (!res?.session) throw new Error(t('cchat.noSession'));
      sessions.set(res.session.session_id, res.session);
      $('#start-text').value = '';
      openChat(res.session.session_id);
      if (res.message) view.add(res.message);
    });
  });

  $('#end-btn').addEventListener('click', () => { $('#confirm-end').hidden = false; });
  $('#confirm-end-no').addEventListener('click', () => { $('#confirm-end').hidden = true; });
  $('#confirm-end-yes').addEventListener('click', async (e) => {
    const id = current;
    const button = e.currentTarget;
    button.disabled = true;
    try {
      const res = await api(`/customer-service/sessions/${id}/close`, { scope: SCOPE, method: 'POST' });
      if (res?.session) sessions.set(id, { ...sessions.get(id), ...res.session });
      if (current === id) renderStatus();
    } catch (err) {
      H.showError(err, t('cchat.endFailed'));
    } finally {
      button.disabled = false;
    }
  });

  $('#back-btn').addEventListener('click', showStart);
  $('#new-chat-btn').addEventListener('click', showStart);

  /* --- live ------------------------------------------------------------------------------ */

  H.on('chat:new_message', (m) => {
    if (!m) return;
    const s = sessions.get(m.session_id);
    if (s) sessions.set(s.session_id, { ...s, last_message: m.message_content, last_message_at: m.created_at });
    if (m.session_id === current) view.add(m);
  });

  H.on('chat:session_update', (s) => {
    if (!s || typeof s.session_id !== 'number') return;
    const before = sessions.get(s.session_id);
    sessions.set(s.session_id, { ...(before || {}), ...s });
    if (s.session_id === current) {
      renderStatus();
      if (before && before.status !== s.status) {
        if (s.status === 'active') toast({ title: t('cchat.joined'), body: t('cchat.joinedBody'), kind: 'success', timeout: 4000 });
        if (s.status === 'closed') toast({ title: t('cchat.closedToast'), body: t('cchat.closedToastBody'), kind: 'info', timeout: 5000 });
      }
      if (Number(s.user_unread ?? 0)) markRead(s.session_id);
    } else if (!$('#start-view').hidden) showStart();
  });

  H.on('chat:typing', (t) => view.onTyping(t));

  H.on('system:alert', (a) => toast({ title: a?.title || t('sys.notice'), body: a?.message || '', kind: H.alertKind(a?.level), timeout: 10000 }));
  H.on('system:maintenance', (m) => toast({ title: m?.title || t('sys.maintenance'), body: H.maintenanceText(m), kind: 'warning', timeout: 12000 }));

  H.onResync(() => {
    loadSessions({ pick: false });
    if (current) view.open(current);
  });

  loadSessions();
})();
