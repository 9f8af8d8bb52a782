/* The users API (see users_api.h). */
#include "app/users_api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/rest.h"
#include "core/error.h"

#define SEARCH_DEFAULT 20
#define NAMES_MAX HD_STORE_LIST_MAX

/* A deferred request: its exchange and what the answer needs. */
typedef struct {
  hd_http_exchange_t *ex;
  bool full;         /* admin caller: names and states too */
  int64_t self;      /* the caller's id (a customer sees themself) */
} pending_t;

/* {id, name, display_name, role, disabled} (full) or {id, display_name, role}; display_name falls
 * back to the name. */
static json_t *user_json(const hd_store_user_t *u, bool full) {
  const char *shown = u->display_name && *u->display_name ? u->display_name : u->name;
  if (!full) return json_pack("{s:I, s:s, s:s}", "id", (json_int_t)u->id, "display_name", shown, "role", u->role);
  return json_pack("{s:I, s:s, s:s, s:s, s:b}", "id", (json_int_t)u->id, "name", u->name, "display_name", shown, "role",
                   u->role, "disabled", (int)u->disabled);
}

static pending_t *defer(hd_http_exchange_t *ex, bool full, int64_t self) {
  pending_t *p = malloc(sizeof(*p));
  if (!p) {
    hd_http_respond_error(ex, 500, "out of memory");
    return NULL;
  }
  *p = (pending_t){ex, full, self};
  hd_http_defer(ex);
  return p;
}

/* Answers a store submission that failed (p is freed). */
static void not_queued(pending_t *p, int rc) {
  hd_rest_error(p->ex, rc, rc == HD_EINVAL ? "invalid request" : "cannot read the users now");
  free(p);
}

static void listed(void *arg, int status, const hd_store_users_t *users) {
  pending_t *p = arg;
  if (status) {
    hd_rest_error(p->ex, status, "cannot read the users now");
    free(p);
    return;
  }
  json_t *items = json_array();
  for (size_t i = 0; items && i < users->count; i++) {
    const hd_store_user_t *u = &users->items[i];
    if (!p->full && strcmp(u->role, "admin") && u->id != p->self) continue; /* customers see agents and themselves */
    json_array_append_new(items, user_json(u, p->full));
  }
  hd_rest_json(p->ex, 200, items ? json_pack("{s:o}", "users", items) : NULL);
  free(p);
}

/* GET /api/v4/users?q=&role=&limit= */
static void search(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  hd_caller_t caller;
  if (!hd_rest_caller(app, ex, req, true, &caller) || !hd_rest_require_admin(ex, &caller)) return;
  char q[4 * HD_STORE_NAME_MAX + 2] = "", role[16] = "";
  int64_t limit;
  if (!hd_rest_query_int(ex, req, "limit", SEARCH_DEFAULT, 1, HD_STORE_LIST_MAX, &limit)) return;
  int qn = hd_http_request_query(req, "q", q, sizeof q), rn = hd_http_request_query(req, "role", role, sizeof role);
  if (qn >= (int)sizeof q - 1 || (qn > 0 && (size_t)qn != strlen(q)))
    return hd_http_respond_error(ex, 400, "`q` has 64 characters at most");
  if (rn > 0 && strcmp(role, "admin") && strcmp(role, "user"))
    return hd_http_respond_error(ex, 400, "`role` must be admin or user");
  pending_t *p = defer(ex, true, 0);
  if (!p) return;
  int rc = hd_store_users_search(app->store, qn > 0 ? q : "", rn > 0 ? role : NULL, (int)limit, listed, p);
  if (rc) not_queued(p, rc);
}

/* GET /api/v4/users/names?ids=1,2,3 */
static void names(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  hd_caller_t caller;
  if (!hd_rest_caller(app, ex, req, true, &caller)) return;
  char text[NAMES_MAX * 21 + 2];
  int n = hd_http_request_query(req, "ids", text, sizeof text);
  int64_t ids[NAMES_MAX];
  size_t count = 0;
  bool ok = n > 0 && (size_t)n == strlen(text) && (size_t)n < sizeof text - 1;
  for (char *p = text, *end; ok && *p; p = end + (*end == ',')) {
    long long v = strtoll(p, &end, 10);
    ok = end != p && v > 0 && (*end == ',' || !*end) && count < NAMES_MAX && *p >= '0' && *p <= '9';
    if (ok) ids[count++] = v;
  }
  if (!ok || !count) return hd_http_respond_error(ex, 400, "`ids` must list 1 to 100 user ids, comma-separated");
  pending_t *p = defer(ex, hd_caller_is_admin(&caller), hd_rest_caller_id(&caller));
  if (!p) return;
  int rc = hd_store_users_get_many(app->store, ids, count, listed, p);
  if (rc) not_queued(p, rc);
}

/* GET /api/v4/users/online-admins */
static void online_admins(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  hd_caller_t caller;
  if (!hd_rest_caller(app, ex, req, true, &caller) || !hd_rest_require_admin(ex, &caller)) return;
  int64_t ids[NAMES_MAX];
  size_t n = hd_presence_online_admins(app, ids, NAMES_MAX);
  if (n > NAMES_MAX) n = NAMES_MAX;
  if (!n) return hd_rest_json(ex, 200, json_pack("{s:[]}", "users"));
  pending_t *p = defer(ex, true, 0);
  if (!p) return;
  int rc = hd_store_users_get_many(app->store, ids, n, listed, p);
  if (rc) not_queued(p, rc);
}

static void renamed(void *arg, int status, const hd_store_user_t *u) {
  pending_t *p = arg;
  if (status) hd_rest_error(p->ex, status, status == HD_ENOTFOUND ? "no user with that id" : "cannot rename now");
  else hd_rest_json(p->ex, 200, json_pack("{s:o}", "user", user_json(u, true)));
  free(p);
}

/* PATCH /api/v4/users/:id {display_name} */
static void rename_user(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  hd_caller_t caller;
  int64_t id;
  if (!hd_rest_caller(app, ex, req, true, &caller) || !hd_rest_require_admin(ex, &caller) ||
      !hd_rest_param_id(ex, "id", &id))
    return;
  json_t *body = hd_rest_body(ex, req, 4096);
  if (!body) return;
  const char *display = NULL;
  char msg[160] = "";
  if (!hd_rest_text_field(body, "display_name", true, 1, HD_STORE_NAME_MAX, &display, msg, sizeof msg)) {
    json_decref(body);
    return hd_http_respond_error(ex, 400, msg);
  }
  for (const unsigned char *c = (const unsigned char *)display; *c; c++)
    if (*c < 0x20 || *c == 0x7f) {
      json_decref(body);
      return hd_http_respond_error(ex, 400, "`display_name` may not hold control characters");
    }
  pending_t *p = defer(ex, true, 0);
  hd_store_user_change_t change = {.display_name = display, .disabled = -1};
  int rc = p ? hd_store_user_update(app->store, id, NULL, &change, renamed, p) : 0;
  json_decref(body);
  if (rc) not_queued(p, rc);
}

int hd_users_api_register(hd_app_t *app) {
  hd_router_t *r = app->srv->router;
  int rc = hd_router_add(r, "GET", "/api/v4/users", search, app);
  if (!rc) rc = hd_router_add(r, "GET", "/api/v4/users/names", names, app);
  if (!rc) rc = hd_router_add(r, "GET", "/api/v4/users/online-admins", online_admins, app);
  if (!rc) rc = hd_router_add(r, "PATCH", "/api/v4/users/:id", rename_user, app);
  return rc;
}
