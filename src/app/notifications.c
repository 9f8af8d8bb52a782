/* Notifications: send (to one admin or every admin), list, unread count, mark read (REST and
 * notification:mark_read) and read all, each stored before it is pushed (see notifications.h).
 *
 * Every handler validates on the loop thread, hands the request to the store and answers from the
 * store's callback: a 201 (or an ack) means the write is committed, and the push to the sockets
 * follows the answer. Pushes go to rooms joined by presence.c: `admin:<id>` (every tab of one admin)
 * and `admins`. */
#include "app/notifications.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/app.h"
#include "app/events.h"
#include "app/push.h"
#include "app/rest.h"
#include "core/error.h"
#include "core/log.h"

#define SEND_PATH "/api/v4/notifications/send"
/* Room for every field at its limit even when each character is a \uXXXX\uXXXX pair (12 bytes). */
#define SEND_BODY_MAX (256 * 1024)
#define LIST_DEFAULT 20

typedef struct {
  hd_app_t *app;
  hd_notifications_stats_t stats;
} notif_t;

static void send_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata);

/* The module\'s state. */
static notif_t *state_of(const hd_app_t *app) {
  return app ? app->notifications : NULL;
}

/* --- helpers ------------------------------------------------------------------------------ */

/* True when host (len bytes) is named in the comma-separated list (case-insensitive). */
static bool host_listed(const char *list, const char *host, size_t len) {
  for (const char *p = list ? list : ""; *p;) {
    size_t n = strcspn(p, ",");
    const char *a = p, *b = p + n;
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
    if ((size_t)(b - a) == len && len && !strncasecmp(a, host, len)) return true;
    p += n + (p[n] == ',');
  }
  return false;
}

/* A link a page can put in an href: a path on this site (`/…`, not `//host` nor `/\host`) or an
 * http(s) URL whose host (without userinfo; port allowed) is on the --link-hosts list; no control
 * characters, spaces or backslashes anywhere. */
static bool link_ok(const char *s, const char *hosts) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= 0x20 || *p == 0x7f || *p == '\\') return false;
  if (s[0] == '/') return s[1] != '/';
  const char *auth;
  if (!strncasecmp(s, "http://", 7)) auth = s + 7;
  else if (!strncasecmp(s, "https://", 8)) auth = s + 8;
  else return false;
  size_t n = strcspn(auth, "/?#");
  if (memchr(auth, '@', n)) return false; /* userinfo: https://trusted@evil */
  size_t host = n;
  if (auth[0] != '[') { /* strip :port */
    const char *colon = memchr(auth, ':', n);
    if (colon) {
      host = (size_t)(colon - auth);
      for (const char *d = colon + 1; d < auth + n; d++)
        if (*d < '0' || *d > '9') return false;
    }
  }
  return host > 0 && host_listed(hosts, auth, host);
}

/* A positive integer id from a JSON integer or a string of digits; 0 when it is neither. */
static int64_t json_id(json_t *v) {
  if (json_is_integer(v)) return json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
  if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 18) return 0;
  int64_t id = 0;
  for (const char *p = json_string_value(v); *p; p++) {
    if (*p < '0' || *p > '9') return 0;
    id = id * 10 + (*p - '0');
  }
  return id;
}

static json_t *id_or_null(int64_t id) { return id ? json_integer(id) : json_null(); }

/* NotificationData (a new reference), or NULL when out of memory: the contract's fields
 * (notification_id, type, title, content, link, created_at, is_read, target_user_id) plus `id` (the same
 * value, kept for older clients) and sender_id. */
static json_t *notification_json(const hd_app_t *app, const hd_store_notification_t *x) {
  return json_pack("{s:I, s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:b, s:o}", "notification_id", (json_int_t)x->id,
                   "id", (json_int_t)x->id, "type", x->type,
                   "title", x->title, "content", x->content ? x->content : "", "link",
                   x->link ? json_string(x->link) : json_null(), "sender_id", id_or_null(x->sender_id),
                   "target_user_id", id_or_null(x->target_user_id), "is_read", (int)x->is_read, "created_at",
                   hd_rest_time_json(app, x->created_at));
}

/* False once the server stops: its sockets are closing, and the store's last callbacks may run
 * after the Socket.IO server is freed (inside hd_store_close). Clients list what they missed. */
static bool can_push(const notif_t *n) { return !n->app->srv->stopping; }

static void count_pushes(void *arg, const hd_hub_msg_t *msg, size_t delivered, int status) { ((notif_t *)arg)->stats.pushes += delivered; }

/* Emits event with payload as its one argument to the sockets in room. */
static void push(notif_t *n, const char *room, const char *event, json_t *payload) {
  if (!can_push(n)) return;
  json_t *args = payload ? json_pack("[O]", payload) : NULL;
  char *text = args ? json_dumps(args, JSON_COMPACT) : NULL;
  if (text) hd_app_push(n->app, room, event, text, count_pushes, n);
  else HD_WARN("notifications", "cannot encode a push: out of memory", "event=%s room=%s", event, room);
  free(text);
  json_decref(args);
}

/* notification:update to every tab of the admin whose token subject is sub. */
static void push_update(notif_t *n, const char *sub, json_t *payload) {
  char room[160];
  snprintf(room, sizeof room, "admin:%s", sub);
  push(n, room, HD_EV_NOTIFICATION_UPDATE, payload);
}

/* The admin behind a per-admin request (list, count, read): an admin token with a numeric subject.
 * False after answering 401 or 403. */
static bool reader(notif_t *n, hd_http_exchange_t *ex, const hd_http_request_t *req, hd_caller_t *c, int64_t *id) {
  if (!hd_rest_caller(n->app, ex, req, true, c) || !hd_rest_require_admin(ex, c)) return false;
  if (c->api_key) {
    hd_http_respond_error(ex, 403, "the API key has no notifications of its own: use an admin's token");
    return false;
  }
  if (!(*id = hd_rest_caller_id(c))) {
    hd_http_respond_error(ex, 403, "notifications belong to admins with a numeric user id (the token's sub)");
    return false;
  }
  return true;
}

/* --- POST /api/v4/notifications/send ------------------------------------------------------ */

typedef struct {
  notif_t *n;
  hd_http_exchange_t *ex;
} send_t;

static void sent(void *arg, int status, const hd_store_notification_t *res) {
  send_t *s = arg;
  notif_t *n = s->n;
  if (status == HD_ENOTFOUND || status == HD_ERANGE) {
    hd_http_respond_error(s->ex, status == HD_ENOTFOUND ? 404 : 400,
                          status == HD_ENOTFOUND ? "`target_user_id` names no user"
                                                 : "`target_user_id` must name an admin (customers get no notifications)");
    free(s);
    return;
  }
  if (status) {
    n->stats.store_errors++;
    hd_rest_error(s->ex, status, status == HD_EINVAL ? "invalid notification" : "cannot store the notification now");
    free(s);
    return;
  }
  json_t *data = notification_json(n->app, res);
  hd_rest_json(s->ex, 201, data ? json_pack("{s:O}", "notification", data) : NULL);
  free(s);
  if (res->target_user_id) {
    n->stats.sent_direct++;
    char room[40];
    snprintf(room, sizeof room, "admin:%lld", (long long)res->target_user_id);
    push(n, room, HD_EV_NOTIFICATION_NEW, data);
  } else {
    n->stats.sent_broadcast++;
    push(n, "admins", HD_EV_NOTIFICATION_BROADCAST, data);
  }
  json_decref(data);
}

static void send_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  notif_t *n = udata;
  hd_caller_t caller;
  if (!hd_rest_caller(n->app, ex, req, true, &caller) || !hd_rest_require_admin(ex, &caller)) return;
  json_t *body = hd_rest_body(ex, req, SEND_BODY_MAX);
  if (!body) return;
  hd_store_notification_new_t in = {.sender_id = hd_rest_caller_id(&caller)};
  char msg[160] = "";
  json_t *target = json_object_get(body, "target_user_id");
  bool ok = hd_rest_text_field(body, "type", true, 1, HD_STORE_TYPE_MAX, &in.type, msg, sizeof msg) &&
            hd_rest_text_field(body, "title", true, 1, HD_STORE_TITLE_MAX, &in.title, msg, sizeof msg) &&
            hd_rest_text_field(body, "content", true, 0, HD_STORE_CONTENT_MAX, &in.content, msg, sizeof msg) &&
            hd_rest_text_field(body, "link", false, 0, HD_STORE_LINK_MAX, &in.link, msg, sizeof msg);
  if (ok && in.link && !*in.link) in.link = NULL; /* "" from an empty form field: no link */
  if (ok && in.link && !link_ok(in.link, n->app->srv->cfg->link_hosts)) {
    snprintf(msg, sizeof msg, "`link` must be a site path (/..., not //...) or an http(s) URL on --link-hosts");
    ok = false;
  }
  if (ok && target && !json_is_null(target)) {
    if (!json_is_integer(target) || json_integer_value(target) <= 0) {
      snprintf(msg, sizeof msg, "`target_user_id` must be a positive integer (or null for every admin)");
      ok = false;
    } else {
      in.target_user_id = (int64_t)json_integer_value(target);
    }
  }
  if (!ok) {
    json_decref(body);
    return hd_http_respond_error(ex, 400, msg);
  }
  send_t *s = malloc(sizeof(*s));
  int rc = s ? 0 : HD_ENOMEM;
  if (s) {
    *s = (send_t){n, ex};
    hd_http_defer(ex);
    rc = hd_store_notification_create(n->app->store, &in, sent, s); /* copies the strings */
  }
  json_decref(body);
  if (rc) {
    free(s);
    n->stats.store_errors++;
    hd_rest_error(ex, rc, rc == HD_EINVAL ? "invalid notification" : "cannot store the notification now");
  }
}

/* --- GET /api/v4/notifications ------------------------------------------------------------ */

typedef struct {
  notif_t *n;
  hd_http_exchange_t *ex;
  int64_t admin_id;
  bool unread;
  int limit;
  json_t *items;
} list_t;

static void list_finish(list_t *l, int status, bool has_more) {
  if (status) {
    l->n->stats.store_errors++;
    hd_rest_error(l->ex, status, "cannot list notifications now");
    json_decref(l->items);
  } else {
    hd_rest_json(l->ex, 200, json_pack("{s:o, s:b}", "items", l->items, "has_more", (int)has_more));
  }
  free(l);
}

/* The probe after a full page of HD_STORE_LIST_MAX: is there anything older? */
static void listed_more(void *arg, int status, const hd_store_notifications_t *res) {
  list_finish(arg, status, !status && res->count > 0);
}

static void listed(void *arg, int status, const hd_store_notifications_t *res) {
  list_t *l = arg;
  if (status) return list_finish(l, status, false);
  for (size_t i = 0; i < res->count && i < (size_t)l->limit; i++) {
    json_t *item = notification_json(l->n->app, &res->items[i]);
    if (!item || json_array_append_new(l->items, item)) return list_finish(l, HD_ENOMEM, false);
  }
  if (res->count > (size_t)l->limit) return list_finish(l, 0, true);
  if (res->count < (size_t)l->limit || l->limit < HD_STORE_LIST_MAX) return list_finish(l, 0, false);
  /* a full page of the store's maximum: it could not be asked for limit + 1 */
  int rc = hd_store_notifications_list(l->n->app->store, l->admin_id, l->unread, 1, res->items[res->count - 1].id,
                                       listed_more, l);
  if (rc) list_finish(l, rc, false);
}

static void list_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  notif_t *n = udata;
  hd_caller_t caller;
  int64_t admin_id, limit, before;
  if (!reader(n, ex, req, &caller, &admin_id)) return;
  char unread[8];
  int len = hd_http_request_query(req, "unread", unread, sizeof unread);
  bool unread_only = false;
  if (len >= 0) {
    if (len < (int)sizeof unread && (!strcmp(unread, "true") || !strcmp(unread, "1"))) unread_only = true;
    else if (len >= (int)sizeof unread || (strcmp(unread, "false") && strcmp(unread, "0") && *unread))
      return hd_http_respond_error(ex, 400, "`unread` must be true or false");
  }
  if (!hd_rest_query_int(ex, req, "limit", LIST_DEFAULT, 1, HD_STORE_LIST_MAX, &limit) ||
      !hd_rest_query_int(ex, req, "before", 0, 0, INT64_MAX, &before))
    return;
  list_t *l = calloc(1, sizeof(*l));
  json_t *items = json_array();
  if (!l || !items) {
    free(l);
    json_decref(items);
    return hd_http_respond_error(ex, 500, "out of memory");
  }
  *l = (list_t){n, ex, admin_id, unread_only, (int)limit, items};
  hd_http_defer(ex);
  int ask = limit < HD_STORE_LIST_MAX ? (int)limit + 1 : HD_STORE_LIST_MAX; /* one more tells has_more */
  int rc = hd_store_notifications_list(n->app->store, admin_id, unread_only, ask, before, listed, l);
  if (rc) list_finish(l, rc, false);
}

/* --- GET /api/v4/notifications/unread-count and POST /api/v4/notifications/read-all ------- */

typedef struct {
  notif_t *n;
  hd_http_exchange_t *ex;
  char sub[sizeof(((hd_claims_t *)0)->sub)]; /* read-all: the reader's rooms */
} count_t;

static void counted(void *arg, int status, const hd_store_count_t *res) {
  count_t *c = arg;
  if (status) {
    c->n->stats.store_errors++;
    hd_rest_error(c->ex, status, "cannot count notifications now");
  } else {
    hd_rest_json(c->ex, 200, json_pack("{s:I}", "count", (json_int_t)res->count));
  }
  free(c);
}

static void all_read(void *arg, int status, const hd_store_count_t *res) {
  count_t *c = arg;
  notif_t *n = c->n;
  if (status) {
    n->stats.store_errors++;
    hd_rest_error(c->ex, status, "cannot mark notifications read now");
  } else {
    hd_rest_json(c->ex, 200, json_pack("{s:I}", "count", (json_int_t)res->count));
    n->stats.marked_read += (uint64_t)res->count;
    if (res->count) {
      json_t *update = json_pack("{s:b, s:b, s:I}", "all", 1, "is_read", 1, "count", (json_int_t)res->count);
      push_update(n, c->sub, update);
      json_decref(update);
    }
  }
  free(c);
}

static void count_request(hd_http_exchange_t *ex, const hd_http_request_t *req, notif_t *n, bool mark_all) {
  hd_caller_t caller;
  int64_t admin_id;
  if (!reader(n, ex, req, &caller, &admin_id)) return;
  count_t *c = malloc(sizeof(*c));
  if (!c) return hd_http_respond_error(ex, 500, "out of memory");
  c->n = n;
  c->ex = ex;
  memcpy(c->sub, caller.claims.sub, sizeof c->sub);
  hd_http_defer(ex);
  int rc = mark_all ? hd_store_notifications_mark_all_read(n->app->store, admin_id, all_read, c)
                    : hd_store_notifications_unread_count(n->app->store, admin_id, counted, c);
  if (rc) (mark_all ? all_read : counted)(c, rc, NULL);
}

static void unread_count_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  count_request(ex, req, udata, false);
}

static void read_all_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  count_request(ex, req, udata, true);
}

/* --- POST /api/v4/notifications/:id/read and notification:mark_read ----------------------- */

typedef struct {
  notif_t *n;
  hd_http_exchange_t *ex;     /* the REST request, or NULL for a socket */
  char sid[64];               /* the socket that asked, found again by its id */
  int64_t ack_id;             /* < 0: the socket wants no answer */
  char sub[sizeof(((hd_claims_t *)0)->sub)];
} read_t;

/* The socket that asked, if it is still connected. */
static hd_sio_socket_t *asker(const read_t *r) { return hd_sio_socket_find(r->n->app->sio, "/", r->sid); }

static void ack(read_t *r, json_t *answer) {
  char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
  hd_sio_socket_t *s = text && r->ack_id >= 0 && can_push(r->n) ? asker(r) : NULL;
  if (s) hd_sio_ack(s, r->ack_id, text);
  free(text);
  json_decref(answer);
}

static void ack_error(read_t *r, const char *error) {
  ack(r, json_pack("[{s:b, s:s}]", "success", 0, "error", error));
}

static void marked(void *arg, int status, const hd_store_notification_read_t *res) {
  read_t *r = arg;
  notif_t *n = r->n;
  hd_sio_socket_t *s = !r->ex && can_push(n) ? asker(r) : NULL;
  if (s) hd_sio_socket_inflight_done(s);
  if (status) {
    if (status != HD_ENOTFOUND) n->stats.store_errors++;
    const char *why = status == HD_ENOTFOUND ? "notification not found" : "cannot mark the notification read now";
    if (r->ex) hd_rest_error(r->ex, status, why);
    else ack_error(r, why);
    free(r);
    return;
  }
  json_t *data = json_pack("{s:I, s:b}", "notification_id", (json_int_t)res->notification_id, "is_read", 1);
  if (r->ex) hd_rest_json(r->ex, 200, json_incref(data));
  else ack(r, data ? json_pack("[{s:b, s:O}]", "success", 1, "data", data) : NULL);
  if (res->changed) {
    n->stats.marked_read++;
    push_update(n, r->sub, data);
  }
  json_decref(data);
  free(r);
}

static void read_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  notif_t *n = udata;
  hd_caller_t caller;
  int64_t admin_id, id;
  if (!reader(n, ex, req, &caller, &admin_id) || !hd_rest_param_id(ex, "id", &id)) return;
  read_t *r = calloc(1, sizeof(*r));
  if (!r) return hd_http_respond_error(ex, 500, "out of memory");
  r->n = n;
  r->ex = ex;
  memcpy(r->sub, caller.claims.sub, sizeof r->sub);
  hd_http_defer(ex);
  int rc = hd_store_notification_mark_read(n->app->store, admin_id, id, marked, r);
  if (rc) marked(r, rc, NULL);
}

/* notification:mark_read {notification_id}: marks it read for the socket's admin, then acks
 * {success, data: {notification_id, is_read}} and pushes notification:update to all their tabs.
 * Past --max-socket-store-requests waiting on the socket the ack is {success: false, error, code: 429}
 * and nothing is stored. */
static void on_mark_read(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  notif_t *n = udata;
  const hd_claims_t *c = hd_sio_socket_claims(s);
  read_t *r = calloc(1, sizeof(*r));
  if (!r) return;
  r->n = n;
  r->ack_id = ack_id;
  snprintf(r->sid, sizeof r->sid, "%s", hd_sio_socket_id(s));
  int64_t admin_id = 0, id = json_id(json_object_get(json_array_get(args, 0), "notification_id"));
  if (c) {
    memcpy(r->sub, c->sub, sizeof r->sub);
    char *end;
    long long v = strtoll(c->sub, &end, 10);
    if (!strcmp(c->role, "admin") && *c->sub && !*end && v > 0) admin_id = v;
  }
  const char *problem = !admin_id ? "only admins (with a numeric user id) have notifications"
                        : !id     ? "`notification_id` must be a positive integer"
                                  : NULL;
  if (!problem && !hd_sio_socket_inflight_take(s, (uint32_t)n->app->shared->cfg->max_socket_store_requests)) {
    ack(r, json_pack("[{s:b, s:s, s:i}]", "success", 0, "error", HD_APP_INFLIGHT_MESSAGE, "code", 429));
    free(r);
    return;
  }
  int rc = problem ? 0 : hd_store_notification_mark_read(n->app->store, admin_id, id, marked, r);
  if (rc) return marked(r, rc, NULL); /* gives the slot back */
  if (problem) {
    ack_error(r, problem);
    free(r);
  }
}

/* --- registration, counters --------------------------------------------------------------- */

int hd_notifications_register(hd_app_t *app) {
  notif_t *n = calloc(1, sizeof(*n));
  if (!n) return HD_ENOMEM;
  n->app = app;
  app->notifications = n;
  hd_router_t *r = app->srv->router;
  int rc = hd_router_add(r, "POST", SEND_PATH, send_handle, n);
  if (!rc) rc = hd_router_add(r, "GET", "/api/v4/notifications", list_handle, n);
  if (!rc) rc = hd_router_add(r, "GET", "/api/v4/notifications/unread-count", unread_count_handle, n);
  if (!rc) rc = hd_router_add(r, "POST", "/api/v4/notifications/read-all", read_all_handle, n);
  if (!rc) rc = hd_router_add(r, "POST", "/api/v4/notifications/:id/read", read_handle, n);
  if (!rc) rc = hd_sio_on(app->sio, "/", HD_EV_NOTIFICATION_MARK_READ, on_mark_read, n);
  return rc;
}

void hd_notifications_stats(const hd_app_t *app, hd_notifications_stats_t *out) {
  const notif_t *n = state_of(app);
  if (n) *out = n->stats;
  else memset(out, 0, sizeof(*out));
}

void hd_notifications_metrics(const hd_notifications_stats_t *s, hd_sbuf_t *out) {
  hd_sbuf_printf(out,
                 "# HELP herald_notifications_sent_total Notifications stored, by target.\n"
                 "# TYPE herald_notifications_sent_total counter\n"
                 "herald_notifications_sent_total{target=\"admin\"} %llu\n"
                 "herald_notifications_sent_total{target=\"broadcast\"} %llu\n"
                 "# HELP herald_notifications_read_total Notifications newly marked read.\n"
                 "# TYPE herald_notifications_read_total counter\nherald_notifications_read_total %llu\n"
                 "# HELP herald_notifications_pushes_total Socket.IO deliveries of notification events.\n"
                 "# TYPE herald_notifications_pushes_total counter\nherald_notifications_pushes_total %llu\n"
                 "# HELP herald_notifications_store_errors_total Notification requests the store failed.\n"
                 "# TYPE herald_notifications_store_errors_total counter\n"
                 "herald_notifications_store_errors_total %llu\n",
                 (unsigned long long)s->sent_direct, (unsigned long long)s->sent_broadcast,
                 (unsigned long long)s->marked_read, (unsigned long long)s->pushes,
                 (unsigned long long)s->store_errors);
}

void hd_notifications_free(hd_app_t *app) {
  free(app->notifications);
  app->notifications = NULL;
}
