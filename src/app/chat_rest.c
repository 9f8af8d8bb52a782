/* Customer-service REST routes under /api/v4/customer-service/sessions (see chat.h, docs/app.md).
 * Every handler checks its input, defers, and answers from the last store callback, after the
 * change is durable; the pushes go out at the same point.
 *
 * Callers: a Bearer token with a numeric `sub` and role "user" or "admin" (no API key: a chat has a
 * person on each side). A user sees only their own sessions: another user's session answers 404, the
 * same as a missing one, so ids reveal nothing. Admins read and write every session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/chat.h"
#include "app/events.h"
#include "app/presence.h"
#include "app/rest.h"
#include "core/error.h"

#define BODY_MAX (128 * 1024) /* 10000 characters, each escaped as a \uXXXX surrogate pair, fit */
#define LIST_DEFAULT 50
#define PREFIX "/api/v4/customer-service/sessions"

/* One deferred request. */
typedef struct {
  hd_app_t *app;
  hd_http_exchange_t *ex;
  hd_chat_actor_t who;
  int64_t session_id;
  int64_t target;       /* assign: the admin to take it */
  int64_t prev_admin;   /* assign: who had it */
  int64_t before;       /* messages: page before this id */
  int limit;
  json_t *message;      /* start: the first message, for the answer and the pushes */
  json_t *session;      /* start: the session as created (waiting), user view */
} req_t;

/* The caller as a chat actor; false after answering 401 or 403. */
static bool actor(hd_app_t *app, hd_http_exchange_t *ex, const hd_http_request_t *req, hd_chat_actor_t *out) {
  hd_caller_t caller;
  if (!hd_rest_caller(app, ex, req, false, &caller)) return false;
  bool admin = !strcmp(caller.claims.role, "admin");
  if (!admin && strcmp(caller.claims.role, "user")) {
    hd_http_respond_error(ex, 403, "customer service needs a token with role user or admin");
    return false;
  }
  *out = (hd_chat_actor_t){hd_rest_caller_id(&caller), admin};
  if (out->id > 0) return true;
  hd_http_respond_error(ex, 403, "customer service needs a token whose subject is a numeric user id");
  return false;
}

static req_t *begin(hd_app_t *app, hd_http_exchange_t *ex, hd_chat_actor_t who, int64_t session_id) {
  req_t *r = calloc(1, sizeof(*r));
  if (!r) {
    hd_http_respond_error(ex, 500, "out of memory");
    return NULL;
  }
  *r = (req_t){.app = app, .ex = ex, .who = who, .session_id = session_id};
  hd_http_defer(ex);
  return r;
}

static void req_free(req_t *r) {
  json_decref(r->message);
  json_decref(r->session);
  free(r);
}

static void finish(req_t *r, int status, json_t *body) {
  hd_rest_json(r->ex, status, body);
  req_free(r);
}

static void fail_status(req_t *r, int status, const char *message) {
  hd_http_respond_error(r->ex, status, message);
  req_free(r);
}

static void fail(req_t *r, int err) {
  const char *message;
  int status = hd_chat_store_status(err, &message);
  fail_status(r, status, message);
}

/* A store call that could not be queued: its callback will not run. */
static void queued(req_t *r, int rc) {
  if (rc) fail(r, rc);
}

/* --- POST /sessions: a user opens a session with its first message -------------------------------- */

static void start_assigned(void *arg, const hd_store_session_t *assigned) {
  req_t *r = arg;
  if (assigned) { /* chat.c pushed session_assigned and session_update to both sides */
    json_decref(r->session);
    r->session = hd_chat_session_json(r->app, assigned, false);
  } else {
    hd_chat_emit(r->app, r->who.id, 0, HD_EV_CHAT_SESSION_UPDATE, json_incref(r->session));
  }
  hd_chat_emit(r->app, r->who.id, assigned ? assigned->admin_id : 0, HD_EV_CHAT_NEW_MESSAGE, json_incref(r->message));
  finish(r, 201, json_pack("{s:O, s:O}", "session", r->session, "message", r->message));
}

static void start_created(void *arg, int status, const hd_store_chat_post_t *res) {
  req_t *r = arg;
  if (status == HD_ERANGE) {
    char why[160];
    snprintf(why, sizeof why, "too many open sessions: close one first (at most %lld open, --chat-max-open-sessions)",
             (long long)r->app->srv->cfg->chat_max_open_sessions);
    return fail_status(r, 429, why);
  }
  if (status) return fail(r, status);
  r->app->counters.chat_sessions++;
  r->app->counters.chat_messages++;
  r->message = hd_chat_message_json(r->app, &res->message);
  r->session = hd_chat_session_json(r->app, &res->session, false);
  if (!r->message || !r->session) return fail_status(r, 500, "out of memory");
  hd_chat_assign_least_loaded(r->app, res->session.id, start_assigned, r);
}

static void start(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  hd_chat_actor_t who;
  if (!actor(app, ex, req, &who)) return;
  if (who.admin) return hd_http_respond_error(ex, 403, "only customers (role user) start sessions");
  json_t *body = hd_rest_body(ex, req, BODY_MAX);
  if (!body) return;
  const char *content, *type, *why = hd_chat_check_message(body, false, &content, &type);
  json_t *priority = json_object_get(body, "priority");
  if (!why && priority && !json_is_null(priority)) { /* the staff decides how urgent a session is */
    json_decref(body);
    return hd_http_respond_error(ex, 403, "`priority` is set by the service staff (POST " PREFIX "/:id/priority, admins), "
                                          "not by customers: leave it out");
  }
  if (why) {
    json_decref(body);
    return hd_http_respond_error(ex, 400, why);
  }
  int level = HD_CHAT_PRIORITY_DEFAULT;
  if (!hd_chat_rate_take(app, who)) {
    json_decref(body);
    return hd_http_respond_error(ex, 429, HD_CHAT_RATE_MESSAGE);
  }
  req_t *r = begin(app, ex, who, 0);
  if (r)
    queued(r, hd_store_session_create_capped(app->store, who.id, content, type, level,
                                             (int)app->srv->cfg->chat_max_open_sessions, start_created, r));
  json_decref(body);
}

/* --- GET /sessions ------------------------------------------------------------------------------- */

static void listed(void *arg, int status, const hd_store_sessions_t *list) {
  req_t *r = arg;
  if (status) return fail(r, status);
  json_t *items = json_array();
  for (size_t i = 0; i < list->count; i++)
    json_array_append_new(items, hd_chat_session_json(r->app, &list->items[i], r->who.admin));
  finish(r, 200, json_pack("{s:o}", "items", items));
}

static void list(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  hd_chat_actor_t who;
  int64_t limit;
  char status[16] = "";
  if (!actor(app, ex, req, &who)) return;
  if (hd_http_request_query(req, "status", status, sizeof status) < 0) status[0] = '\0';
  if (*status && strcmp(status, "waiting") && strcmp(status, "active") && strcmp(status, "closed"))
    return hd_http_respond_error(ex, 400, "`status` must be waiting, active or closed");
  if (!hd_rest_query_int(ex, req, "limit", LIST_DEFAULT, 1, HD_STORE_LIST_MAX, &limit)) return;
  req_t *r = begin(app, ex, who, 0);
  if (r) queued(r, hd_store_sessions_list(app->store, who.id, who.admin ? "admin" : "user", *status ? status : NULL,
                                          (int)limit, listed, r));
}

/* --- handlers on one session: read the session, check who asks, then act ------------------------ */

/* Starts a handler on /sessions/:id: the caller and the id, then the deferred request. */
static req_t *on_session(hd_app_t *app, hd_http_exchange_t *ex, const hd_http_request_t *req, hd_chat_actor_t *who,
                         int64_t *id) {
  if (!actor(app, ex, req, who)) return NULL;
  return hd_rest_param_id(ex, "id", id) ? begin(app, ex, *who, *id) : NULL;
}

/* The session_get answer of a handler on one session: true when the caller may see it; otherwise
 * answered (404 for another user's session, as for a missing one) and freed. */
static bool visible(req_t *r, int status, const hd_store_session_t *s) {
  if (status) {
    fail(r, status);
    return false;
  }
  if (!hd_chat_visible(r->who, s)) {
    fail_status(r, 404, "session not found");
    return false;
  }
  return true;
}

/* GET /sessions/:id/messages?before=&limit= */
static void messages_listed(void *arg, int status, const hd_store_messages_t *list) {
  req_t *r = arg;
  if (status) return fail(r, status);
  json_t *items = json_array();
  for (size_t i = 0; i < list->count; i++) json_array_append_new(items, hd_chat_message_json(r->app, &list->items[i]));
  finish(r, 200, json_pack("{s:o}", "items", items));
}

static void messages_session(void *arg, int status, const hd_store_session_t *s) {
  req_t *r = arg;
  if (visible(r, status, s))
    queued(r, hd_store_messages_list(r->app->store, r->session_id, r->before, r->limit, messages_listed, r));
}

static void messages(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  hd_chat_actor_t who;
  int64_t id, before, limit;
  if (!actor(app, ex, req, &who) || !hd_rest_param_id(ex, "id", &id) ||
      !hd_rest_query_int(ex, req, "before", 0, 0, INT64_MAX, &before) ||
      !hd_rest_query_int(ex, req, "limit", LIST_DEFAULT, 1, HD_STORE_LIST_MAX, &limit))
    return;
  req_t *r = begin(app, ex, who, id);
  if (!r) return;
  r->before = before;
  r->limit = (int)limit;
  queued(r, hd_store_session_get(app->store, id, messages_session, r));
}

/* POST /sessions/:id/messages {content, message_type?} */
static void posted(void *arg, int status, const char *error, const hd_store_message_t *m) {
  req_t *r = arg;
  if (status) return fail_status(r, status, error);
  finish(r, 201, json_pack("{s:o}", "message", hd_chat_message_json(r->app, m)));
}

static void post_message(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  hd_chat_actor_t who;
  int64_t id;
  if (!actor(app, ex, req, &who) || !hd_rest_param_id(ex, "id", &id)) return;
  json_t *body = hd_rest_body(ex, req, BODY_MAX);
  if (!body) return;
  const char *content, *type, *why = hd_chat_check_message(body, who.admin, &content, &type);
  req_t *r = why ? NULL : begin(app, ex, who, id);
  if (why) hd_http_respond_error(ex, 400, why);
  else if (r) hd_chat_post(app, who, id, content, type, posted, r);
  json_decref(body);
}

/* POST /sessions/:id/read: the caller's side has read everything. */
static void read_done(void *arg, int status, const hd_store_session_t *s) {
  req_t *r = arg;
  if (status) return fail(r, status);
  /* the reader's other tabs: the user, or the calling admin and the session's admin */
  hd_chat_push_session_to(r->app, s, r->who.admin, r->who.id);
  if (r->who.admin && s->admin_id && s->admin_id != r->who.id) hd_chat_push_session_to(r->app, s, true, s->admin_id);
  finish(r, 200, json_pack("{s:o}", "session", hd_chat_session_json(r->app, s, r->who.admin)));
}

static void read_session(void *arg, int status, const hd_store_session_t *s) {
  req_t *r = arg;
  if (visible(r, status, s))
    queued(r, hd_store_session_mark_read(r->app->store, r->session_id, r->who.admin ? "admin" : "user", read_done, r));
}

static void mark_read(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_chat_actor_t who;
  int64_t id;
  req_t *r = on_session(udata, ex, req, &who, &id);
  if (r) queued(r, hd_store_session_get(r->app->store, id, read_session, r));
}

/* POST /sessions/:id/assign {admin_id?}: an admin gives the session to admin_id (default: themself). */
static void assign_done(void *arg, int status, const hd_store_session_t *s) {
  req_t *r = arg;
  if (status == HD_EINVAL) return fail_status(r, 409, "the session is closed");
  if (status) return fail(r, status);
  if (s->admin_id != r->prev_admin) hd_chat_push_assigned(r->app, s);
  hd_chat_push_session(r->app, s, r->prev_admin);
  finish(r, 200, json_pack("{s:o}", "session", hd_chat_session_json(r->app, s, true)));
}

static void assign_session(void *arg, int status, const hd_store_session_t *s) {
  req_t *r = arg;
  if (!visible(r, status, s)) return;
  if (!strcmp(s->status, "closed")) return fail_status(r, 409, "the session is closed");
  r->prev_admin = s->admin_id;
  queued(r, hd_store_session_assign(r->app->store, r->session_id, r->target, assign_done, r));
}

/* The account a session is to be given to: an enabled admin account of the store (admins signed in
 * with tokens minted elsewhere have none: they qualify while online as admins). */
static void assign_target(void *arg, int status, const hd_store_user_t *u) {
  req_t *r = arg;
  bool admin = !status ? !strcmp(u->role, "admin") : status == HD_ENOTFOUND && hd_presence_admin_online(r->app, r->target);
  if (status && status != HD_ENOTFOUND) return fail(r, status);
  if (!admin) return fail_status(r, 400, "`admin_id` must be the id of an admin account (or of an admin online)");
  if (!status && u->disabled) return fail_status(r, 400, "`admin_id` names a disabled admin account: enable it first");
  queued(r, hd_store_session_get(r->app->store, r->session_id, assign_session, r));
}

static void assign(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_chat_actor_t who;
  int64_t id, target;
  if (!actor(udata, ex, req, &who)) return;
  if (!who.admin) return hd_http_respond_error(ex, 403, "only admins assign sessions");
  if (!hd_rest_param_id(ex, "id", &id)) return;
  target = who.id;
  if (req->body.len) {
    json_t *body = hd_rest_body(ex, req, BODY_MAX);
    if (!body) return;
    json_t *v = json_object_get(body, "admin_id");
    bool ok = !v || json_is_null(v) || (json_is_integer(v) && json_integer_value(v) > 0);
    if (json_is_integer(v)) target = (int64_t)json_integer_value(v);
    json_decref(body);
    if (!ok) return hd_http_respond_error(ex, 400, "`admin_id` must be a positive integer");
  }
  req_t *r = begin(udata, ex, who, id);
  if (!r) return;
  r->target = target;
  if (target == who.id) queued(r, hd_store_session_get(r->app->store, id, assign_session, r));
  else queued(r, hd_store_user_get(r->app->store, target, assign_target, r)); /* only to an existing admin */
}

/* POST /sessions/:id/priority {priority}: an admin sets how urgent a session is (1..5); both sides
 * get chat:session_update. */
static void priority_done(void *arg, int status, const hd_store_session_t *s) {
  req_t *r = arg;
  if (status) return fail(r, status);
  hd_chat_push_session(r->app, s, 0);
  finish(r, 200, json_pack("{s:o}", "session", hd_chat_session_json(r->app, s, true)));
}

static void set_priority(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_chat_actor_t who;
  int64_t id;
  if (!actor(udata, ex, req, &who)) return;
  if (!who.admin) return hd_http_respond_error(ex, 403, "only admins set a session's priority");
  if (!hd_rest_param_id(ex, "id", &id)) return;
  json_t *body = hd_rest_body(ex, req, BODY_MAX);
  if (!body) return;
  json_t *v = json_object_get(body, "priority");
  bool ok = json_is_integer(v) && json_integer_value(v) >= HD_CHAT_PRIORITY_MIN && json_integer_value(v) <= HD_CHAT_PRIORITY_MAX;
  int level = ok ? (int)json_integer_value(v) : 0;
  json_decref(body);
  if (!ok) return hd_http_respond_error(ex, 400, "`priority` must be an integer from 1 (lowest) to 5 (most urgent)");
  req_t *r = begin(udata, ex, who, id);
  if (r) queued(r, hd_store_session_set_priority(r->app->store, id, level, priority_done, r));
}

/* POST /sessions/:id/close: a participant ends the session; closing twice answers the same session. */
static void close_done(void *arg, int status, const hd_store_session_close_t *res) {
  req_t *r = arg;
  if (status) return fail(r, status);
  if (res->changed) hd_chat_push_session(r->app, &res->session, r->who.admin ? r->who.id : 0); /* + the closing admin */
  finish(r, 200, json_pack("{s:o}", "session", hd_chat_session_json(r->app, &res->session, r->who.admin)));
}

static void close_session(void *arg, int status, const hd_store_session_t *s) {
  req_t *r = arg;
  if (visible(r, status, s)) queued(r, hd_store_session_close(r->app->store, r->session_id, close_done, r));
}

static void close_(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_chat_actor_t who;
  int64_t id;
  req_t *r = on_session(udata, ex, req, &who, &id);
  if (r) queued(r, hd_store_session_get(r->app->store, id, close_session, r));
}

int hd_chat_rest_register(hd_app_t *app) {
  static const struct {
    const char *method, *path;
    hd_http_handler_fn fn;
  } routes[] = {
      {"POST", PREFIX, start},
      {"GET", PREFIX, list},
      {"GET", PREFIX "/:id/messages", messages},
      {"POST", PREFIX "/:id/messages", post_message},
      {"POST", PREFIX "/:id/read", mark_read},
      {"POST", PREFIX "/:id/assign", assign},
      {"POST", PREFIX "/:id/priority", set_priority},
      {"POST", PREFIX "/:id/close", close_},
  };
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    int rc = hd_router_add(app->srv->router, routes[i].method, routes[i].path, routes[i].fn, app);
    if (rc) return rc;
  }
  return 0;
}
