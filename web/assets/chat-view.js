/* A conversation pane shared by the workbench and the customer chat: paged history ("Load earlier"),
 * messages added once each (by message_id) in order, send over the connection (REST when offline), and the
 * typing indicator both ways (chat:typing emitted at most every 2 s while typing; "typing…" shown for
 * 3 s after the other party's last chat:typing). Message text is set with textContent only. */
(function () {
  'use strict';
  const H = window.Herald;
  const { el, api, fmtTime, t } = H;
  const PAGE = 30;
  const TYPING_EMIT_MS = 2000;
  const TYPING_SHOW_MS = 3000;

  class ChatView {
    /**
     * opts: {scope, role ('admin'|'user'), messages, typing, form, input, otherName (message -> label),
     *        typingText, onSent(message)}
     */
    constructor(opts) {
      this.o = opts;
      this.sessionId = null;
      this.nodes = new Map(); // message_id -> node
      this.oldest = null;
      this.hasOlder = false;
      this.seq = 0;
      this.lastTypingEmit = 0;
      this.typingTimer = null;
      this.enabled = true;
      this.olderBtn = el('button', { type: 'button', class: 'btn-small older', text: t('chat.loadEarlier'), onclick: () => this.loadOlder() });

      opts.form.addEventListener('submit', (e) => {
        e.preventDefault();
        this.send();
      });
      opts.input.addEventListener('keydown', (e) => {
        // Enter sends; Shift+Enter is a new line; never while an IME composition is open
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
          e.preventDefault();
          opts.form.requestSubmit();
        }
      });
      opts.input.addEventListener('input', () => {
        this.autosize();
        if (!this.sessionId || !this.enabled || !opts.input.value) return;
        const now = Date.now();
        if (now - this.lastTypingEmit >= TYPING_EMIT_MS) {
          this.lastTypingEmit = now;
          H.emit('chat:typing', { session_id: this.sessionId });
        }
      });
    }

    autosize() {
      const input = this.o.input;
      input.style.height = 'auto';
      input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
    }

    /** Shows a session: its newest page of messages. */
    async open(sessionId) {
      const seq = ++this.seq;
      this.sessionId = sessionId;
      this.nodes.clear();
      this.oldest = null;
      this.hasOlder = false;
      this.hideTyping();
      this.o.messages.replaceChildren(el('div', { class: 'empty', text: t('chat.loadingMessages') }));
      try {
        const res = await api(`/customer-service/sessions/${sessionId}/messages`, { scope: this.o.scope, query: { limit: PAGE } });
        if (seq !== this.seq) return;
        const items = res?.items || [];
        this.o.messages.querySelector(':scope > .empty')?.remove(); // messages that came live meanwhile stay
        this.hasOlder = items.length >= PAGE;
        this.insertAll(items);
        this.scrollToEnd();
      } catch (err) {
        if (seq !== this.seq) return;
        this.o.messages.replaceChildren(el('div', { class: 'empty' }, `${t('chat.loadFailed', { message: err.message })} `,
          el('button', { type: 'button', class: 'btn-small', text: t('conn.retry'), onclick: () => this.open(sessionId) })));
      }
    }

    close() {
      this.seq++;
      this.sessionId = null;
      this.nodes.clear();
      this.hideTyping();
      this.o.messages.replaceChildren();
    }

    async loadOlder() {
      if (!this.sessionId || this.oldest === null) return;
      const seq = this.seq;
      const box = this.o.messages;
      this.olderBtn.disabled = true;
      try {
        const res = await api(`/customer-service/sessions/${this.sessionId}/messages`,
          { scope: this.o.scope, query: { limit: PAGE, before: this.oldest } });
        if (seq !== this.seq) return;
        const items = res?.items || [];
        const fromBottom = box.scrollHeight - box.scrollTop;
        this.hasOlder = items.length >= PAGE;
        this.insertAll(items);
        box.scrollTop = box.scrollHeight - fromBottom; // keep the view where it was
      } catch (err) {
        H.showError(err, t('chat.earlierFailed'));
      } finally {
        this.olderBtn.disabled = false;
      }
    }

    insertAll(items) {
      for (const m of items) this.insert(m);
      this.updateOlder();
    }

    updateOlder() {
      if (this.hasOlder) this.o.messages.prepend(this.olderBtn);
      else this.olderBtn.remove();
    }

    /** Adds a message of the open session (once); returns true if it was new. */
    add(m) {
      if (!m || m.session_id !== this.sessionId || this.nodes.has(m.message_id)) return false;
      const box = this.o.messages;
      const nearEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
      const empty = box.querySelector(':scope > .empty');
      if (empty) empty.remove();
      this.insert(m);
      if (m.sender_type !== this.o.role) this.hideTyping();
      if (nearEnd || m.sender_type === this.o.role) this.scrollToEnd();
      return true;
    }

    insert(m) {
      const mid = m.message_id;
      if (this.nodes.has(mid)) return;
      const node = this.render(m);
      this.nodes.set(mid, node);
      if (this.oldest === null || mid < this.oldest) this.oldest = mid;
      // keep id order: find the first shown message with a larger id
      let after = null;
      for (const [id, n] of this.nodes) if (id > mid && (after === null || id < after.id)) after = { id, n };
      if (after) after.n.before(node);
      else this.o.messages.append(node);
    }

    render(m) {
      const mine = m.sender_type === this.o.role;
      const kind = m.message_type === 'system' ? 'system' : mine ? 'mine' : 'theirs';
      const who = mine ? t('chat.you') : this.o.otherName(m);
      const url = (m.message_type === 'image' || m.message_type === 'file') ? H.safeUrl(m.message_content) : null;
      const body = url
        ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: `${m.message_type === 'image' ? '🖼' : '📎'} ${m.message_content}` })
        : H.linkify(m.message_content); // http(s) links clickable, the rest text
      return el('div', { class: `msg ${kind}`, dataset: { id: String(m.message_id), role: m.sender_type || '' } },
        el('div', { class: 'bubble' }, body),
        el('div', { class: 'meta', title: m.created_at || '' }, kind === 'system' ? fmtTime(m.created_at) : `${who} · ${fmtTime(m.created_at)}`));
    }

    scrollToEnd() {
      const box = this.o.messages;
      box.scrollTop = box.scrollHeight;
    }

    async send() {
      const input = this.o.input;
      const content = input.value.trim();
      if (!content || !this.sessionId || !this.enabled) return;
      const sessionId = this.sessionId;
      input.value = '';
      this.autosize();
      this.lastTypingEmit = 0;
      try {
        let message;
        if (H.isConnected()) message = await H.emitWithAck('chat:send_message', { session_id: sessionId, content });
        else message = (await api(`/customer-service/sessions/${sessionId}/messages`, { scope: this.o.scope, method: 'POST', body: { content } }))?.message;
        if (message) this.add(message);
        this.o.onSent?.(message);
      } catch (err) {
        if (!input.value) input.value = content; // give the text back
        this.autosize();
        H.showError(err, t('chat.notSent'));
      }
      input.focus();
    }

    /** chat:typing relayed from the other party. */
    onTyping(t) {
      if (!t || t.session_id !== this.sessionId || t.role === this.o.role) return;
      this.o.typing.textContent = this.o.typingText;
      this.o.typing.dataset.visible = 'true';
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => this.hideTyping(), TYPING_SHOW_MS);
    }

    hideTyping() {
      clearTimeout(this.typingTimer);
      this.o.typing.textContent = '';
      delete this.o.typing.dataset.visible;
    }

    setEnabled(on) {
      this.enabled = on;
      this.o.input.disabled = !on;
      for (const b of this.o.form.querySelectorAll('button')) b.disabled = !on;
      if (!on) this.hideTyping();
    }
  }

  window.HeraldChatView = ChatView;
})();
