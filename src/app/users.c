/* Users and sign-in (see users.h). */
#include "app/users.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/rest.h"
#include "app/user_states.h"
#include "app/user_watch.h"
#include "core/error.h"
#include "core/log.h"
#include "core/clock.h"
#include "core/map.h"

#define MAX_TRACKED_ADDRESSES 100000

typedef struct {
  char addr[64];
  uint32_t failures;
  uint32_t in_flight;   /* sign-ins from addr being checked now: they count as failures until known */
  uint64_t window_start;
} failures_t;

/* Failed sign-ins per client address and the sign-ins being checked, shared by every shard of the
 * node: a concurrent burst is limited before any password hash runs. An address is tracked while it
 * has failures in its window or sign-ins being checked, no longer: its entry goes at its successful
 * sign-in, and a sweep (once per window, and whenever the table is full) removes the others, so the
 * table follows the addresses signing in now, not every address ever seen. Full of live entries, it
 * refuses new addresses (503) rather than let them go unlimited. */
typedef struct {
  uv_mutex_t mu;
  hd_map_t by_addr;  /* client address -> failures_t (under mu) */
  uint32_t checking; /* sign-ins between their admission and their answer, node-wide (under mu) */
  uint64_t window_ms; /* --login-window */
  uint64_t swept_ms; /* the last sweep */
} login_limiter_t;

int hd_users_hash_password(const char *password, char *out, size_t len) {
  if (len < crypto_pwhash_STRBYTES || sodium_init() < 0) return HD_EINVAL;
  return crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                           crypto_pwhash_MEMLIMIT_INTERACTIVE)
             ? HD_ENOMEM
             : 0;
}

/* --- sign-in ------------------------------------------------------------------------------ */

typedef struct {
  uv_work_t work;
  hd_app_t *app;
  hd_users_check_fn fn;
  void *arg;
  char addr[64];
  char password[HD_USERS_PASSWORD_MAX];
  char hash[HD_STORE_HASH_MAX];
  bool found, ok;
  bool counted;         /* holds a place in in_flight of its address (else the table was full) */
  hd_users_identity_t who;
} check_t;

/* The address a request came from, without the port. */
static void client_addr(hd_http_exchange_t *ex, char out[64]) {
  hd_conn_peer(ex->conn, out, 64);
  char *colon = strrchr(out, ':');
  if (colon) *colon = '\0';
}

/* True when f holds nothing any more: no sign-in being checked, no failure in its window. */
static bool stale(const login_limiter_t *l, const failures_t *f, uint64_t now) {
  return !f->in_flight && (!f->failures || now - f->window_start > l->window_ms);
}

static void collect_stale(void *value, void *arg) {
  struct { login_limiter_t *l; failures_t **out; size_t n; uint64_t now; } *c = arg;
  if (c->out && stale(c->l, value, c->now)) c->out[c->n++] = value;
}

/* Removes the stale entries; the caller holds the lock. */
static void sweep(login_limiter_t *l, uint64_t now) {
  l->swept_ms = now;
  struct { login_limiter_t *l; failures_t **out; size_t n; uint64_t now; } c = {
      l, l->by_addr.count ? malloc(l->by_addr.count * sizeof(failures_t *)) : NULL, 0, now};
  hd_map_each(&l->by_addr, collect_stale, &c);
  for (size_t i = 0; i < c.n; i++) {
    hd_map_del(&l->by_addr, c.out[i]->addr, strlen(c.out[i]->addr));
    free(c.out[i]);
  }
  free(c.out);
}

/* Forgets f when it holds nothing (a success, the last check of its address); the caller holds the lock. */
static void forget_if_idle(login_limiter_t *l, failures_t *f) {
  if (f->in_flight || f->failures) return;
  hd_map_del(&l->by_addr, f->addr, strlen(f->addr));
  free(f);
}

/* The failures of addr in the current window (created when asked: NULL when the table is full of
 * live entries or out of memory); the caller holds the lock. */
static failures_t *failures_of(login_limiter_t *l, const char *addr, bool create) {
  failures_t *f = hd_map_get(&l->by_addr, addr, strlen(addr));
  uint64_t now = hd_clock_mono_ms();
  if (f && now - f->window_start > l->window_ms) f->failures = 0, f->window_start = now;
  if (f || !create) return f;
  if (l->by_addr.count >= MAX_TRACKED_ADDRESSES || now - l->swept_ms >= l->window_ms) sweep(l, now);
  if (l->by_addr.count >= MAX_TRACKED_ADDRESSES) return NULL;
  if (!(f = calloc(1, sizeof(*f)))) return NULL;
  snprintf(f->addr, sizeof f->addr, "%s", addr);
  f->window_start = now;
  if (hd_map_put(&l->by_addr, f->addr, strlen(f->addr), f)) {
    free(f);
    return NULL;
  }
  return f;
}

static void verify_work(uv_work_t *w) {
  check_t *l = w->data;
  static const char dummy[] = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$5ivNh2r3eDrKkGbUDO1fIOf3UVdJfCB5mpN0jUOQPxs";
  /* an unknown user costs as much as a wrong password: no timing oracle for user names */
  int rc = crypto_pwhash_str_verify(l->found ? l->hash : dummy, l->password, strlen(l->password));
  l->ok = l->found && rc == 0;
  sodium_memzero(l->password, sizeof l->password);
}

/* Gives back the places hd_users_check took: the node's checking slot and the address's in-flight
 * count, which becomes a failure when `failed`. */
static void check_finish(check_t *l, bool failed) {
  login_limiter_t *lim = l->app->shared->login_limiter;
  uv_mutex_lock(&lim->mu);
  lim->checking--;
  failures_t *f = l->counted ? failures_of(lim, l->addr, false) : NULL;
  if (f && f->in_flight) f->in_flight--;
  if (failed && (f || (f = failures_of(lim, l->addr, true)))) f->failures++;
  if (f) forget_if_idle(lim, f);
  uv_mutex_unlock(&lim->mu);
}

/* Answers the check and frees it. */
static void check_answer(check_t *l, int status) {
  l->fn(l->arg, status, status ? NULL : &l->who);
  free(l);
}

static void verify_done(uv_work_t *w, int status) {
  check_t *l = w->data;
  check_finish(l, !l->ok);
  if (!l->ok) return check_answer(l, HD_ENOTFOUND);
  bool refused = l->who.disabled || (l->who.demo && !hd_user_states_loopback(l->app->shared->user_states));
  l->fn(l->arg, refused ? HD_EFORBIDDEN : 0, &l->who);
  free(l);
}

static void user_found(void *arg, int status, const hd_store_user_t *u) {
  check_t *l = arg;
  if (status && status != HD_ENOTFOUND) {
    check_finish(l, false);
    return check_answer(l, status);
  }
  if (u) {
    l->found = true;
    l->who.id = u->id;
    l->who.disabled = u->disabled;
    l->who.demo = u->demo;
    snprintf(l->hash, sizeof l->hash, "%s", u->password_hash);
    snprintf(l->who.name, sizeof l->who.name, "%s", u->name);
    snprintf(l->who.role, sizeof l->who.role, "%s", u->role);
    snprintf(l->who.display, sizeof l->who.display, "%s", u->display_name ? u->display_name : u->name);
  }
  l->work.data = l;
  if (uv_queue_work(l->app->srv->loop, &l->work, verify_work, verify_done)) {
    check_finish(l, false);
    check_answer(l, HD_ENOMEM);
  }
}

int hd_users_check(hd_app_t *app, const char *addr, const char *name, const char *password, hd_users_check_fn fn,
                   void *arg) {
  if (strlen(password) >= HD_USERS_PASSWORD_MAX) return HD_EINVAL;
  check_t *l = calloc(1, sizeof(*l));
  if (!l) return HD_ENOMEM;
  /* admission before any hashing: failures and sign-ins still being checked count against the
   * address's limit, and the node checks at most --login-concurrency at once */
  login_limiter_t *lim = app->shared->login_limiter;
  const hd_config_t *cfg = app->srv->cfg;
  uv_mutex_lock(&lim->mu);
  failures_t *f = failures_of(lim, addr, true);
  bool limited = f && f->failures + f->in_flight >= (uint32_t)cfg->login_max_failures;
  bool busy = !limited && (!f || lim->checking >= (uint32_t)cfg->login_concurrency); /* !f: the table is full */
  if (!limited && !busy) {
    lim->checking++;
    if (f) f->in_flight++;
  }
  uv_mutex_unlock(&lim->mu);
  if (limited || busy) {
    free(l);
    return limited ? HD_ERANGE : HD_EBUSY;
  }
  l->counted = true;
  l->app = app;
  l->fn = fn;
  l->arg = arg;
  snprintf(l->addr, sizeof l->addr, "%s", addr);
  snprintf(l->password, sizeof l->password, "%s", password);
  int rc = hd_store_user_get_by_name(app->store, name, user_found, l);
  if (rc == HD_EINVAL) user_found(l, HD_ENOTFOUND, NULL); /* an impossible name: just a wrong sign-in */
  else if (rc) {
    check_finish(l, false);
    free(l);
    return rc;
  }
  return 0;
}

/* --- POST /api/v4/auth/login --------------------------------------------------------------- */

typedef struct {
  hd_app_t *app;
  hd_http_exchange_t *ex;
} login_t;

static void login_checked(void *arg, int status, const hd_users_identity_t *who) {
  login_t *l = arg;
  hd_app_t *app = l->app;
  hd_http_exchange_t *ex = l->ex;
  free(l);
  if (status == HD_ENOTFOUND) return hd_http_respond_error(ex, 401, "wrong user name or password");
  if (status == HD_EFORBIDDEN)
    return hd_http_respond_error(ex, 403, who->disabled ? "this account is disabled"
                                                        : "demo account: its password must be changed (herald user "
                                                          "passwd NAME) before the server listens beyond loopback");
  if (status == HD_ENOMEM) return hd_http_respond_error(ex, 500, "cannot sign in now");
  if (status) return hd_rest_error(ex, status, "cannot sign in now");
  char *token = NULL;
  char sub[24];
  snprintf(sub, sizeof sub, "%lld", (long long)who->id);
  if (hd_jwt_sign(&app->shared->jwt, sub, who->role, app->srv->cfg->token_ttl, &token)) {
    hd_http_respond_error(ex, 500, "cannot sign a token");
  } else {
    hd_rest_json(ex, 200,
                 json_pack("{s:s, s:I, s:{s:I, s:s, s:s, s:s}}", "token", token, "expires_in",
                           (json_int_t)app->srv->cfg->token_ttl, "user", "id", (json_int_t)who->id, "name", who->name,
                           "role", who->role, "display_name", who->display));
  }
  free(token);
}

static void login(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  char addr[64];
  client_addr(ex, addr);
  json_t *body = hd_rest_body(ex, req, 4096);
  if (!body) return;
  json_t *name = json_object_get(body, "username");
  if (!name) name = json_object_get(body, "name");
  json_t *password = json_object_get(body, "password");
  if (!json_is_string(name) || !json_string_length(name) || !json_is_string(password) ||
      json_string_length(password) >= HD_USERS_PASSWORD_MAX) {
    json_decref(body);
    return hd_http_respond_error(ex, 400, "`username` and `password` (strings) are required");
  }
  login_t *l = malloc(sizeof(*l));
  if (!l) {
    json_decref(body);
    return hd_http_respond_error(ex, 500, "out of memory");
  }
  *l = (login_t){app, ex};
  hd_http_defer(ex);
  int rc = hd_users_check(app, addr, json_string_value(name), json_string_value(password), login_checked, l);
  json_decref(body);
  if (!rc) return;
  free(l);
  if (rc == HD_ERANGE) return hd_http_respond_error(ex, 429, "too many failed sign-ins from this address: wait a minute");
  if (rc == HD_EBUSY) {
    static const char busy_body[] = "{\"code\":503,\"message\":\"sign-in is busy: try again in a second\"}";
    return hd_http_respond(ex, 503, "application/json", busy_body, sizeof busy_body - 1, "Retry-After: 1\r\n");
  }
  if (rc == HD_ENOMEM) return hd_http_respond_error(ex, 500, "out of memory");
  hd_rest_error(ex, rc, "cannot sign in now");
}

/* GET /api/v4/auth/me: who the token belongs to. */
static void me(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_caller_t caller;
  if (!hd_rest_caller(udata, ex, req, false, &caller)) return;
  hd_rest_json(ex, 200, json_pack("{s:s, s:s, s:I}", "sub", caller.claims.sub, "role", caller.claims.role, "exp",
                                  (json_int_t)caller.claims.exp));
}

/* --- demo accounts ------------------------------------------------------------------------ */

typedef struct {
  hd_app_t *app;
} demo_t;

static void demo_created(void *arg, int status, const hd_store_user_t *u) {
  if (status) HD_WARN("users", "cannot create demo user", "err=%s", hd_errname(status));
  else HD_INFO("users", "demo user created", "name=%s role=%s", u->name, u->role);
}

static void demo_check(void *arg, int status, const hd_store_users_t *users) {
  hd_app_t *app = arg;
  if (status || users->count) return;
  if (!hd_user_states_loopback(app->shared->user_states)) {
    HD_WARN("users", "no users yet: create an admin with `herald user add NAME --role admin` (demo accounts are "
            "made only when the server listens on a loopback address)", "host=%s", app->srv->cfg->host);
    return;
  }
  static const char *accounts[][3] = {{"admin", "admin123", "admin"}, {"user", "user123", "user"}};
  for (size_t i = 0; i < 2; i++) {
    char hash[crypto_pwhash_STRBYTES];
    if (hd_users_hash_password(accounts[i][1], hash, sizeof hash)) continue;
    hd_store_user_create(app->store, accounts[i][0], accounts[i][2], hash, accounts[i][0], true, demo_created, NULL);
  }
  HD_INFO("users", "first start on loopback: demo accounts admin / admin123 (sign in at /admin/login.html) and "
          "user / user123 (/chat.html); they are refused beyond loopback until `herald user passwd NAME`",
          "port=%d", hd_server_port(app->srv));
}

/* --- registration ------------------------------------------------------------------------- */

int hd_users_register(hd_app_t *app) {
  if (sodium_init() < 0) return HD_EINVAL;
  if (!app->shared->login_limiter) { /* the first shard creates it for all */
    login_limiter_t *l = calloc(1, sizeof(*l));
    if (!l || uv_mutex_init(&l->mu)) {
      free(l);
      return HD_ENOMEM;
    }
    l->window_ms = (uint64_t)app->srv->cfg->login_window;
    l->swept_ms = hd_clock_mono_ms();
    app->shared->login_limiter = l;
  }
  int rc = hd_router_add(app->srv->router, "POST", "/api/v4/auth/login", login, app);
  if (!rc) rc = hd_router_add(app->srv->router, "GET", "/api/v4/auth/me", me, app);
  if (!rc && app->shard == 0) rc = hd_user_watch_start(app);
  if (!rc && app->shard == 0 && app->srv->cfg->demo_users) rc = hd_store_users_list(app->store, NULL, demo_check, app);
  return rc;
}

size_t hd_users_limiter_addresses(void *limiter) {
  login_limiter_t *l = limiter;
  if (!l) return 0;
  uv_mutex_lock(&l->mu);
  size_t n = l->by_addr.count;
  uv_mutex_unlock(&l->mu);
  return n;
}

static void free_failures(void *value, void *arg) { free(value); }

void hd_users_limiter_free(void *limiter) {
  login_limiter_t *l = limiter;
  if (!l) return;
  hd_map_each(&l->by_addr, free_failures, NULL);
  hd_map_free(&l->by_addr);
  uv_mutex_destroy(&l->mu);
  free(l);
}
