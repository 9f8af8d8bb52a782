/* /admin/login.html: sign in, keep the token (admin console or customer chat storage), go on by role. */
(function () {
  'use strict';
  const { $, api, setAuth, getAuth, busy, t } = window.Herald;
  const params = new URLSearchParams(location.search);

  // only same-site console pages as the destination after sign-in
  function nextUrl(role) {
    const next = params.get('next') || '';
    if (role === 'admin') return /^\/admin\/[a-z-]+\.html(\?[^#]*)?$/.test(next) && !next.startsWith('/admin/login') ? next : '/admin/notifications.html';
    return '/chat.html';
  }

  const reasons = { expired: t('auth.expired'), invalid: t('auth.invalid'), signin: t('auth.signIn') };
  const reason = params.get('reason') || (params.get('next') ? 'signin' : '');
  if (reasons[reason]) {
    $('#reason').textContent = reasons[reason];
    $('#reason').hidden = false;
  }

  const current = getAuth('admin');
  if (current && !current.expired && current.user?.role === 'admin') {
    $('[data-current-name]').textContent = current.user.display_name || current.user.name || t('people.adminFallback', { id: current.user.id });
    $('#continue-link').href = nextUrl('admin');
    $('#signed-in').hidden = false;
  }

  const form = $('#login-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const username = $('#username').value.trim();
    const password = $('#password').value;
    if (!username || !password) {
      $('#login-error').textContent = t('login.enterBoth');
      return;
    }
    busy(form, async () => {
      let res;
      try {
        res = await api('/auth/login', { method: 'POST', body: { username, password } });
      } catch (err) {
        if (err.status === 401) throw new Error(t('error.wrongPassword'));
        throw err;
      }
      if (!res?.token || !res.user) throw new Error(t('login.noToken'));
      const role = res.user.role;
      setAuth(role === 'admin' ? 'admin' : 'customer', res);
      location.assign(nextUrl(role));
    });
  });
})();
