// The customer chat page of the sample mini program: sign in with POST /api/v4/auth/login, start a
// session, and chat. REST (wx.request) stores every message; the live side is Herald's JSON
// protocol through herald-wx.js, subscribed to the customer's own topic `user:<id>`, which carries
// chat:new_message and chat:session_update (the same events the web chat page gets over Socket.IO).
const HeraldClient = require('../../utils/herald-client.js');
const HeraldWx = require('../../utils/herald-wx.js');

// every word the page shows, in one place per language
const TEXT = {
  en: { signIn: 'Sign in', username: 'User name', password: 'Password', hello: 'Hello,', describe: 'How can we help?',
    start: 'Start chatting', type: 'Type a message', send: 'Send', waiting: 'Waiting for an agent…',
    active: 'You are chatting with', closed: 'This conversation is closed.', agent: 'Agent', you: 'You',
    connecting: 'connecting', connected: 'connected', reconnecting: 'reconnecting', failed: 'offline' },
  zh: { signIn: '登录', username: '用户名', password: '密码', hello: '您好，', describe: '请描述您的问题',
    start: '开始咨询', type: '输入消息', send: '发送', waiting: '正在为您分配客服…',
    active: '正在与您对话：', closed: '本次会话已结束。', agent: '客服', you: '我',
    connecting: '连接中', connected: '已连接', reconnecting: '重连中', failed: '离线' },
};

const server = () => getApp().globalData.server;
const wsUrl = () => server().replace(/^http/, 'ws') + '/api/v1/ws';
const hhmm = (iso) => { const m = /T(\d\d):(\d\d)/.exec(iso || ''); return m ? `${m[1]}:${m[2]}` : ''; };

/** wx.request as a promise of the JSON body; rejects with the server's message. */
function request(method, path, token, data) {
  return new Promise((resolve, reject) => {
    wx.request({
      url: server() + '/api/v4' + path, method, data,
      header: token ? { Authorization: 'Bearer ' + token } : {},
      success: (res) => (res.statusCode < 300 ? resolve(res.data) : reject(new Error((res.data && res.data.message) || ('HTTP ' + res.statusCode)))),
      fail: (err) => reject(new Error(err.errMsg)),
    });
  });
}

Page({
  data: { text: TEXT.en, token: '', me: null, username: '', password: '', draft: '', busy: false, error: '',
    session: null, messages: [], lastId: '', statusLine: '', conn: 'connecting', agentName: '' },

  onLoad() {
    const lang = (wx.getSystemInfoSync().language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
    const saved = wx.getStorageSync('herald.customer') || null;
    this.setData({ text: TEXT[lang] });
    if (saved && saved.token) { this.setData({ token: saved.token, me: saved.user }); this.afterSignIn(); }
  },
  onUnload() { if (this.client) this.client.close(); },

  onUsername(e) { this.setData({ username: e.detail.value }); },
  onPassword(e) { this.setData({ password: e.detail.value }); },
  onDraft(e) { this.setData({ draft: e.detail.value }); },

  async signIn() {
    this.setData({ busy: true, error: '' });
    try {
      const res = await request('POST', '/auth/login', '', { username: this.data.username, password: this.data.password });
      wx.setStorageSync('herald.customer', { token: res.token, user: res.user });
      this.setData({ token: res.token, me: res.user, password: '' });
      this.afterSignIn();
    } catch (err) { this.setData({ error: err.message }); }
    this.setData({ busy: false });
  },

  /** Connects the live side and picks up an open session. */
  async afterSignIn() {
    this.client = HeraldWx.create(HeraldClient, { url: wsUrl(), token: this.data.token });
    this.client.on('state', (s) => this.setData({ conn: s === 'closed' ? 'failed' : s }));
    this.client.on('connect', () => this.client.subscribe('user:' + this.data.me.id).catch((e) => this.setData({ error: e.message })));
    this.client.on('chat:new_message', (m) => this.onMessage(m));
    this.client.on('chat:session_update', (s) => { if (this.data.session && s.session_id === this.data.session.session_id) this.showSession(s); });
    try {
      const res = await request('GET', '/customer-service/sessions', this.data.token);
      const open = (res.items || []).find((s) => s.status !== 'closed');
      if (open) { this.showSession(open); this.loadMessages(); }
    } catch (err) { this.setData({ error: err.message }); }
  },

  async start() {
    const content = this.data.draft.trim();
    if (!content) return;
    this.setData({ busy: true, error: '' });
    try {
      const res = await request('POST', '/customer-service/sessions', this.data.token, { content });
      this.setData({ draft: '' });
      this.showSession(res.session);
      this.loadMessages();
    } catch (err) { this.setData({ error: err.message }); }
    this.setData({ busy: false });
  },

  async send() {
    const content = this.data.draft.trim();
    if (!content || !this.data.session) return;
    this.setData({ draft: '' });
    try {
      const res = await request('POST', `/customer-service/sessions/${this.data.session.session_id}/messages`, this.data.token, { content });
      this.onMessage(res.message || res);
    } catch (err) { this.setData({ error: err.message, draft: content }); }
  },

  async showSession(s) {
    const t = this.data.text;
    let agentName = this.data.agentName;
    if (s.admin_id && !agentName) {
      try {
        const res = await request('GET', '/users/names?ids=' + s.admin_id, this.data.token);
        agentName = (res.users && res.users[0] && res.users[0].display_name) || '';
      } catch (err) { agentName = ''; }
    }
    const statusLine = s.status === 'closed' ? t.closed : s.status === 'active' ? `${t.active} ${agentName || t.agent}` : t.waiting;
    this.setData({ session: s, agentName, statusLine });
  },

  async loadMessages() {
    const res = await request('GET', `/customer-service/sessions/${this.data.session.session_id}/messages?limit=50`, this.data.token);
    this.setData({ messages: [] });
    for (const m of (res.items || []).slice().reverse()) this.onMessage(m);
  },

  /** Adds a message once (REST answers and live events may both bring it). */
  onMessage(m) {
    if (!m || !this.data.session || m.session_id !== this.data.session.session_id) return;
    if (this.data.messages.some((x) => x.message_id === m.message_id)) return;
    const t = this.data.text;
    const who = m.sender_type === 'user' ? t.you : this.data.agentName || t.agent;
    const messages = this.data.messages.concat([{ ...m, who, time: hhmm(m.created_at) }]).sort((a, b) => a.message_id - b.message_id);
    this.setData({ messages, lastId: 'm' + m.message_id });
  },
});
