/* The Socket.IO Admin UI's server side (see admin_ui.h), matching @socket.io/admin-ui 0.5.1's
 * dist/index.js: what instrument() emits in "development" mode, each node one server. */
#include "app/admin_ui.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/figures.h"
#include "app/user_states.h"
#include "app/users.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/path.h"

#define STATS_INTERVAL_MS 2000 /* as admin-ui's initStatsEmitter */
#define UI_PREFIX "/socket-admin"
/* The pages' policy, plus the two stylesheets (Roboto, Material Design Icons) and their fonts that
 * the stock index.html links from Google Fonts and jsDelivr. Connections: this origin only. */
#define UI_SECURITY_HEADERS                                                                            \
  "Content-Security-Policy: default-src 'self'; script-src 'self'; "                                   \
  "style-src 'self' 'unsafe-inline' https://fonts.googleapis.com https://cdn.jsdelivr.net; "           \
  "font-src 'self' https://fonts.gstatic.com https://cdn.jsdelivr.net; img-src 'self' data:; "         \
  "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'\r\n" \
  "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: same-origin\r\n"

#define QUEUE_MAX 65536 /* events for the admins queued in one loop turn, at most */

typedef struct {
  const char *event;         /* static */
  char *args;                /* JSON array text */
} queued_t;

typedef struct {
  hd_app_t *app;
  hd_static_root_t root;     /* the stock UI's files */
  queued_t *queued;          /* events for the admins, sent by the flush hook */
  uint32_t queued_count, queued_cap;
  uint64_t dropped;
  uv_timer_t *stats_timer;   /* shard 0: server_stats */
  uint64_t last_opened, last_closed, last_bytes_in, last_bytes_out; /* shard 0: at the last stats */
  char server_id[300], hostname[256];
} admin_ui_t;

/* What instrument() announces: the actions (unless readonly), then what the mode sends. */
#define ACTION_FEATURES "\"EMIT\",\"JOIN\",\"LEAVE\",\"DISCONNECT\",\"MJOIN\",\"MLEAVE\",\"MDISCONNECT\","
static const char *const config_json[2][2] = {
    /* [readonly][production] */
    {"[{\"supportedFeatures\":[" ACTION_FEATURES "\"AGGREGATED_EVENTS\",\"ALL_EVENTS\"]}]",
     "[{\"supportedFeatures\":[" ACTION_FEATURES "\"AGGREGATED_EVENTS\"]}]"},
    {"[{\"supportedFeatures\":[\"AGGREGATED_EVENTS\",\"ALL_EVENTS\"]}]", "[{\"supportedFeatures\":[\"AGGREGATED_EVENTS\"]}]"},
};

/* admin-ui's mode "production": server stats only. */
static bool production(const hd_app_t *app) { return !strcmp(app->srv->cfg->admin_ui_mode, "production"); }

/* --- helpers ------------------------------------------------------------------------------ */

/* Now as JSON.stringify(new Date()) writes it. */
static json_t *iso_now(void) {
  int64_t ms = hd_clock_wall_ms();
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  char when[40];
  gmtime_r(&secs, &tm);
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%03dZ", (int)(ms % 1000));
  return json_string(when);
}

/* Queues event with args (taken) for every Admin UI socket of the cluster; the flush hook sends
 * it. Never published at once: a publish may run this shard's mailbox, whose tasks may close the
 * very socket the caller (a socket's connect, join or close) is working on. */
static void tell_admins(hd_app_t *app, const char *event, json_t *args) {
  admin_ui_t *ui = app->admin_ui;
  char *text = ui && args ? json_dumps(args, JSON_COMPACT) : NULL;
  json_decref(args);
  if (!text) return;
  if (ui->queued_count == QUEUE_MAX) { /* the admins miss some: bounded memory first */
    ui->dropped++;
    free(text);
    return;
  }
  if (ui->queued_count == ui->queued_cap) {
    uint32_t cap = ui->queued_cap ? ui->queued_cap * 2 : 16;
    queued_t *q = realloc(ui->queued, cap * sizeof(*q));
    if (!q) {
      free(text);
      return;
    }
    ui->queued = q, ui->queued_cap = cap;
  }
  ui->queued[ui->queued_count++] = (queued_t){event, text};
  hd_server_wake(app->srv);
}

/* Flush hook (once per loop turn): publishes what was queued, in order. */
static void flush_queued(void *arg) {
  hd_app_t *app = arg;
  admin_ui_t *ui = app->admin_ui;
  if (!ui || !ui->queued_count) return;
  queued_t *q = ui->queued; /* what the publishes queue meanwhile waits for the next turn */
  uint32_t n = ui->queued_count;
  ui->queued = NULL, ui->queued_count = ui->queued_cap = 0;
  if (ui->dropped) {
    HD_WARN("admin-ui", "events for the Admin UI dropped (too many in one loop turn)", "dropped=%llu",
            (unsigned long long)ui->dropped);
    ui->dropped = 0;
  }
  hd_sio_target_t to = {HD_ADMIN_UI_NAMESPACE, NULL, 0, NULL, 0, 0};
  for (uint32_t i = 0; i < n; i++) {
    int rc = app->admin_ui ? hd_sio_broadcast(app->sio, &to, NULL, q[i].event, q[i].args, NULL, NULL) : 0;
    if (rc) HD_DEBUG("admin-ui", "cannot tell the admins", "event=%s err=%s", q[i].event, hd_errname(rc));
    free(q[i].args);
  }
  free(q);
}

/* A socket as fetchSockets describes it (proto/sio.h) turned into admin-ui's serialize(): {id,
 * clientId, transport, nsp, data (without _admin), handshake (address from cf-connecting-ip or
 * x-forwarded-for first), rooms}. A new object, or NULL. */
static json_t *admin_shape(json_t *d) {
  json_t *data = json_deep_copy(json_object_get(d, "data"));
  if (!json_is_object(data)) json_decref(data), data = json_object();
  json_t *admin = json_object_get(data, "_admin");
  json_t *client_id = json_incref(json_object_get(admin, "clientId")), *transport = json_incref(json_object_get(admin, "transport"));
  json_object_del(data, "_admin");
  json_t *handshake = json_deep_copy(json_object_get(d, "handshake"));
  if (!json_is_object(handshake)) json_decref(handshake), handshake = json_object();
  json_t *headers = json_object_get(handshake, "headers");
  json_t *forwarded = json_object_get(headers, "cf-connecting-ip");
  if (!json_is_string(forwarded)) forwarded = json_object_get(headers, "x-forwarded-for");
  if (json_is_string(forwarded)) json_object_set(handshake, "address", forwarded);
  json_t *rooms = json_object_get(d, "rooms");
  return json_pack("{s:O, s:o, s:o, s:O, s:o, s:o, s:o}", "id", json_object_get(d, "id"), "clientId",
                   client_id ? client_id : json_incref(json_object_get(d, "id")), "transport",
                   transport ? transport : json_string("polling"), "nsp", json_object_get(d, "nsp"), "data", data,
                   "handshake", handshake, "rooms", json_is_array(rooms) ? json_incref(rooms) : json_array());
}

/* s described (fetchSockets' form), or NULL. */
static json_t *describe(hd_sio_socket_t *s) {
  hd_sbuf_t out = {0};
  hd_sio_socket_describe(s, &out);
  json_t *d = out.ptr ? json_loadb(out.ptr, out.len, 0, NULL) : NULL;
  hd_sbuf_free(&out);
  return d;
}

static bool is_admin_nsp(const char *nsp) { return !strcmp(nsp, HD_ADMIN_UI_NAMESPACE); }

/* --- what happens to sockets (every namespace, the admins' own included) ----------------------- */

static void on_connect(hd_sio_socket_t *s, void *arg) {
  hd_app_t *app = arg;
  json_t *d = describe(s);
  json_t *shape = d ? admin_shape(d) : NULL;
  json_decref(d);
  if (shape) tell_admins(app, "socket_connected", json_pack("[o, o]", shape, iso_now()));
}

static void on_disconnect(hd_sio_socket_t *s, const char *reason, void *arg) {
  hd_app_t *app = arg;
  const char *nsp = hd_sio_socket_nsp(s), *id = hd_sio_socket_id(s);
  tell_admins(app, "socket_disconnected", json_pack("[s, s, s, o]", nsp, id, reason, iso_now()));
  /* then each room it leaves, as the adapter's leave-room events after it */
  json_t *d = describe(s);
  size_t i;
  json_t *room;
  json_array_foreach(json_object_get(d, "rooms"), i, room) {
    tell_admins(app, "room_left", json_pack("[s, O, s, o]", nsp, room, id, iso_now()));
  }
  json_decref(d);
}

static void on_room(hd_sio_socket_t *s, const char *room, bool joined, void *arg) {
  tell_admins(arg, joined ? "room_joined" : "room_left",
              json_pack("[s, s, s, o]", hd_sio_socket_nsp(s), room, hd_sio_socket_id(s), iso_now()));
}

static void on_event(hd_sio_socket_t *s, const char *args_json, bool incoming, void *arg) {
  if (is_admin_nsp(hd_sio_socket_nsp(s))) return; /* as admin-ui: not the admins' own traffic */
  json_t *args = json_loads(args_json, 0, NULL);
  if (!args) return;
  tell_admins(arg, incoming ? "event_received" : "event_sent",
              json_pack("[s, s, o, o]", hd_sio_socket_nsp(s), hd_sio_socket_id(s), args, iso_now()));
}

/* As admin-ui's listener of the Engine.IO `upgrade` event. */
static void on_upgrade(hd_sio_socket_t *s, void *arg) {
  tell_admins(arg, "socket_updated", json_pack("[{s:s, s:s, s:s}]", "id", hd_sio_socket_id(s), "nsp",
                                               hd_sio_socket_nsp(s), "transport", "websocket"));
}

static const hd_sio_monitor_t monitor = {on_connect, on_disconnect, on_room, on_event, on_upgrade};

/* --- sign-in ------------------------------------------------------------------------------ */

static void checked(void *arg, int status, const hd_users_identity_t *who) {
  hd_sio_admission_t *a = arg;
  if (status == HD_ENOTFOUND) return hd_sio_admission_done(a, NULL, "invalid credentials");
  if (status == HD_EFORBIDDEN)
    return hd_sio_admission_done(a, NULL, who->disabled ? "this account is disabled"
                                                        : "demo account: change its password before the server "
                                                          "listens beyond loopback");
  if (status) return hd_sio_admission_done(a, NULL, "cannot sign in now");
  if (strcmp(who->role, "admin")) return hd_sio_admission_done(a, NULL, "admin role required");
  hd_claims_t claims = {.iat = hd_clock_wall_ms() / 1000};
  snprintf(claims.sub, sizeof claims.sub, "%lld", (long long)who->id);
  snprintf(claims.role, sizeof claims.role, "%s", who->role);
  hd_sio_admission_done(a, &claims, NULL);
}

/* Lets in an admin: auth {username, password} (a Herald user with the admin role), {sessionId} (the
 * token a password sign-in handed out in `session`) or {token} (any admin token). */
static void admit(hd_sio_admission_t *a, json_t *auth, void *arg) {
  hd_app_t *app = arg;
  const char *token = json_string_value(json_object_get(auth, "sessionId"));
  if (!token || !*token) token = json_string_value(json_object_get(auth, "token"));
  const char *name = json_string_value(json_object_get(auth, "username"));
  const char *password = json_string_value(json_object_get(auth, "password"));
  if (token && *token) {
    hd_claims_t claims;
    const char *why = NULL;
    int rc = hd_jwt_verify(&app->shared->jwt, token, &claims, &why);
    if (!rc) rc = hd_user_states_check(app->shared->user_states, &claims, &why);
    if (rc) return hd_sio_admission_done(a, NULL, "invalid credentials");
    if (strcmp(claims.role, "admin")) return hd_sio_admission_done(a, NULL, "admin role required");
    return hd_sio_admission_done(a, &claims, NULL);
  }
  if (!name || !*name || !password) return hd_sio_admission_done(a, NULL, "invalid credentials");
  int rc = hd_users_check(app, hd_sio_admission_address(a), name, password, checked, a);
  if (rc == HD_ERANGE) hd_sio_admission_done(a, NULL, "too many failed sign-ins from this address: wait a minute");
  else if (rc == HD_EBUSY) hd_sio_admission_done(a, NULL, "sign-in is busy: try again in a second");
  else if (rc == HD_EINVAL) hd_sio_admission_done(a, NULL, "invalid credentials");
  else if (rc) hd_sio_admission_done(a, NULL, "cannot sign in now");
}

/* --- an admin connected: session, config, all_sockets ----------------------------------------- */

/* Emits to the admin socket `id` if it is still there (an emit may run this shard's mailbox, whose
 * tasks may close it: keep the id, not the pointer). */
static void emit_to(hd_app_t *app, const char *id, const char *event, const char *args_json) {
  hd_sio_socket_t *s = app->admin_ui ? hd_sio_socket_find(app->sio, HD_ADMIN_UI_NAMESPACE, id) : NULL;
  if (s) hd_sio_emit(s, event, args_json);
}

typedef struct {
  hd_app_t *app;      /* lives as long as its shard; app->admin_ui NULL once stopped */
  char id[80];        /* the admin socket (it may be gone when the answers are in) */
  int remaining;
  json_t *sockets;
} gather_t;

static void gather_one(gather_t *g) {
  if (--g->remaining) return;
  /* the answers of a teardown come back cancelled, maybe once this shard's server is gone */
  json_t *args = g->app->admin_ui ? json_pack("[o]", g->sockets) : (json_decref(g->sockets), NULL);
  char *text = args ? json_dumps(args, JSON_COMPACT) : NULL;
  if (text) emit_to(g->app, g->id, "all_sockets", text);
  free(text);
  json_decref(args);
  free(g);
}

static void fetched(void *arg, const char *members_json, size_t count) {
  gather_t *g = arg;
  json_t *members = json_loads(members_json, 0, NULL);
  size_t i;
  json_t *d;
  json_array_foreach(members, i, d) {
    json_t *shape = admin_shape(d);
    if (shape) json_array_append_new(g->sockets, shape);
  }
  json_decref(members);
  gather_one(g);
}

static void admin_connected(hd_sio_socket_t *s, json_t *auth, void *arg) {
  hd_app_t *app = arg;
  const hd_claims_t *claims = hd_sio_socket_claims(s);
  char id[80], *session = NULL;
  snprintf(id, sizeof id, "%s", hd_sio_socket_id(s));
  if (claims) { /* so a disabled or deleted admin's UI is closed with the rest (user_watch.c) */
    char room[160];
    snprintf(room, sizeof room, "admin:%s", claims->sub);
    hd_sio_join(s, room);
  }
  if (claims && json_is_string(json_object_get(auth, "password"))) { /* the session id reconnects use */
    char *token = NULL;
    json_t *args = !hd_jwt_sign(&app->shared->jwt, claims->sub, claims->role, app->srv->cfg->token_ttl, &token)
                       ? json_pack("[s]", token)
                       : NULL;
    session = args ? json_dumps(args, JSON_COMPACT) : NULL;
    json_decref(args);
    free(token);
  }
  /* s may be gone from here on */
  if (session) emit_to(app, id, "session", session);
  free(session);
  emit_to(app, id, "config", config_json[app->srv->cfg->admin_ui_readonly][production(app)]);
  if (production(app)) return;
  gather_t *g = calloc(1, sizeof(*g));
  if (!g || !(g->sockets = json_array())) return free(g);
  g->app = app;
  snprintf(g->id, sizeof g->id, "%s", id);
  int n = hd_sio_namespace_count(app->sio);
  g->remaining = n + 1; /* +1: held until every namespace was asked */
  for (int i = 0; i < n; i++) {
    hd_sio_target_t to = {hd_sio_namespace_name(app->sio, i), NULL, 0, NULL, 0, 0};
    if (hd_sio_fetch_sockets(app->sio, &to, fetched, g)) g->remaining--;
  }
  gather_one(g);
}

/* --- actions ------------------------------------------------------------------------------ */

/* The target of an action: namespace args[0], optionally narrowed to the room in args[filter_at]. */
static bool action_target(json_t *args, size_t filter_at, hd_sio_target_t *to, const char **filter) {
  const char *nsp = json_string_value(json_array_get(args, 0));
  *filter = json_string_value(json_array_get(args, filter_at));
  if (!nsp) return false;
  *to = (hd_sio_target_t){nsp, *filter && **filter ? filter : NULL, *filter && **filter ? 1 : 0, NULL, 0, 0};
  return true;
}

/* join / leave (nsp, room, filter?): socketsJoin / socketsLeave. */
static void on_join_leave(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *arg) {
  hd_app_t *app = arg;
  hd_sio_target_t to;
  const char *filter, *room = json_string_value(json_array_get(args, 1));
  if (!room || !action_target(args, 2, &to, &filter)) return;
  int rc = hd_sio_sockets_request(app->sio, &to, !strcmp(event, "join") ? HD_HUB_REQ_JOIN : HD_HUB_REQ_LEAVE, room);
  if (rc) HD_DEBUG("admin-ui", "action refused", "action=%s nsp=%s err=%s", event, to.nsp, hd_errname(rc));
}

/* _disconnect (nsp, close, filter?): disconnectSockets(close). */
static void on_disconnect_action(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *arg) {
  hd_app_t *app = arg;
  hd_sio_target_t to;
  const char *filter;
  if (!action_target(args, 2, &to, &filter)) return;
  bool close = json_is_true(json_array_get(args, 1));
  int rc = hd_sio_sockets_request(app->sio, &to, close ? HD_HUB_REQ_CLOSE : HD_HUB_REQ_DISCONNECT, NULL);
  if (rc) HD_DEBUG("admin-ui", "action refused", "action=%s nsp=%s err=%s", event, to.nsp, hd_errname(rc));
}

/* emit (nsp, filter, event, ...args): io.of(nsp).in(filter).emit(event, ...args). */
static void on_emit(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *arg) {
  hd_app_t *app = arg;
  hd_sio_target_t to;
  const char *filter, *name = json_string_value(json_array_get(args, 2));
  if (!name || !action_target(args, 1, &to, &filter)) return;
  json_t *rest = json_array();
  for (size_t i = 3; i < json_array_size(args); i++) json_array_append(rest, json_array_get(args, i));
  char *text = json_dumps(rest, JSON_COMPACT);
  json_decref(rest);
  int rc = text ? hd_sio_broadcast(app->sio, &to, NULL, name, text, NULL, NULL) : HD_ENOMEM;
  if (rc) HD_DEBUG("admin-ui", "action refused", "action=emit nsp=%s err=%s", to.nsp, hd_errname(rc));
  free(text);
}

/* --- server_stats (shard 0, every 2 s) -------------------------------------------------------- */

static void aggregated(json_t *list, int64_t second_ms, const char *type, uint64_t count) {
  if (count) json_array_append_new(list, json_pack("{s:I, s:s, s:I}", "timestamp", (json_int_t)second_ms, "type", type,
                                                   "count", (json_int_t)count));
}

static void stats_ready(hd_app_t *app, const hd_shard_figures_t *figs, uint32_t count, void *arg) {
  admin_ui_t *ui = app->admin_ui;
  if (!ui || !app->sio) return; /* stopping */
  uint64_t clients = 0, polling = 0, opened = 0, closed = 0, bytes_in = 0, bytes_out = 0, uptime_ms = 0;
  int nsps = hd_sio_namespace_count(app->sio);
  size_t per_nsp[HD_FIGURES_NAMESPACES] = {0};
  for (uint32_t i = 0; i < count; i++) {
    const hd_shard_figures_t *f = &figs[i];
    if (!f->answered) continue;
    clients += f->sio_sessions, polling += f->sio_polling, opened += f->sio_opened, closed += f->sio_closed;
    bytes_in += f->net.bytes_in, bytes_out += f->net.bytes_out;
    if (f->uptime_ms > uptime_ms) uptime_ms = f->uptime_ms;
    for (int j = 0; j < nsps && j < HD_FIGURES_NAMESPACES; j++) per_nsp[j] += f->nsp_sockets[j];
  }
  json_t *events = json_array(), *namespaces = json_array();
  int64_t second = hd_clock_wall_ms() / 1000 * 1000;
  aggregated(events, second, "rawConnection", opened - ui->last_opened);
  aggregated(events, second, "rawDisconnection", closed - ui->last_closed);
  aggregated(events, second, "bytesIn", bytes_in - ui->last_bytes_in);
  aggregated(events, second, "bytesOut", bytes_out - ui->last_bytes_out);
  ui->last_opened = opened, ui->last_closed = closed, ui->last_bytes_in = bytes_in, ui->last_bytes_out = bytes_out;
  for (int j = 0; j < nsps && j < HD_FIGURES_NAMESPACES; j++)
    json_array_append_new(namespaces, json_pack("{s:s, s:I}", "name", hd_sio_namespace_name(app->sio, j),
                                                "socketsCount", (json_int_t)per_nsp[j]));
  json_t *stats = json_pack("{s:s, s:s, s:I, s:f, s:I, s:I, s:o, s:o}", "serverId", ui->server_id, "hostname",
                            ui->hostname, "pid", (json_int_t)getpid(), "uptime", (double)uptime_ms / 1000.0,
                            "clientsCount", (json_int_t)clients, "pollingClientsCount", (json_int_t)polling,
                            "aggregatedEvents", events, "namespaces", namespaces);
  if (stats) tell_admins(app, "server_stats", json_pack("[o]", stats));
}

static void on_stats_timer(uv_timer_t *t) {
  hd_app_t *app = t->data;
  int rc = hd_figures_collect(app, stats_ready, NULL);
  if (rc) HD_DEBUG("admin-ui", "no server_stats this time", "err=%s", hd_errname(rc));
}

static void free_timer(uv_handle_t *h) { free(h); }

/* --- set-up ------------------------------------------------------------------------------- */

/* GET /socket-admin: the UI's relative asset paths need the trailing slash. */
static void redirect(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_http_respond(ex, 301, NULL, NULL, 0, "Location: " UI_PREFIX "/\r\n");
}

static int route_ui(hd_app_t *app, admin_ui_t *ui) {
  const hd_config_t *cfg = app->srv->cfg;
  char real[PATH_MAX];
  if (hd_path_resolve(cfg->admin_ui_root, real)) {
    if (app->shard == 0)
      HD_WARN("admin-ui", "the Admin UI's files are missing: /socket-admin/ is not served (npm ci installs "
              "@socket.io/admin-ui; or set --admin-ui-root to its ui/dist)", "dir=%s", cfg->admin_ui_root);
    return 0;
  }
  if (!(ui->root.root = strdup(real))) return HD_ENOMEM;
  ui->root.strip = strlen(UI_PREFIX);
  ui->root.security_headers = UI_SECURITY_HEADERS;
  int rc = hd_router_add(app->srv->router, "GET", UI_PREFIX "/*", hd_static_files_handle, &ui->root);
  if (!rc) rc = hd_router_add(app->srv->router, "GET", UI_PREFIX, redirect, NULL);
  if (!rc && app->shard == 0) HD_INFO("admin-ui", "serving the Socket.IO Admin UI", "path=" UI_PREFIX "/ dir=%s", real);
  return rc;
}

int hd_admin_ui_register(hd_app_t *app) {
  const hd_config_t *cfg = app->srv->cfg;
  if (!cfg->admin_ui) return 0;
  admin_ui_t *ui = calloc(1, sizeof(*ui));
  if (!ui) return HD_ENOMEM;
  ui->app = app;
  app->admin_ui = ui;
  gethostname(ui->hostname, sizeof ui->hostname - 1);
  if (cfg->admin_ui_server_id && *cfg->admin_ui_server_id)
    snprintf(ui->server_id, sizeof ui->server_id, "%s", cfg->admin_ui_server_id);
  else snprintf(ui->server_id, sizeof ui->server_id, "%s#%d", ui->hostname, (int)getpid());
  hd_sio_server_t *sio = app->sio;
  int rc = hd_sio_set_admission(sio, HD_ADMIN_UI_NAMESPACE, admit, app);
  if (!rc) rc = hd_sio_on_connect(sio, HD_ADMIN_UI_NAMESPACE, admin_connected, app);
  if (!cfg->admin_ui_readonly) {
    if (!rc) rc = hd_sio_on(sio, HD_ADMIN_UI_NAMESPACE, "join", on_join_leave, app);
    if (!rc) rc = hd_sio_on(sio, HD_ADMIN_UI_NAMESPACE, "leave", on_join_leave, app);
    if (!rc) rc = hd_sio_on(sio, HD_ADMIN_UI_NAMESPACE, "_disconnect", on_disconnect_action, app);
    if (!rc) rc = hd_sio_on(sio, HD_ADMIN_UI_NAMESPACE, "emit", on_emit, app);
  }
  if (rc) {
    HD_ERROR("admin-ui", "cannot set up the /admin namespace", "err=%s", hd_errname(rc));
    return rc;
  }
  if (!production(app)) hd_sio_set_monitor(sio, &monitor, app);
  if ((rc = hd_server_add_flush_hook(app->srv, flush_queued, app))) return rc;
  if (app->shard == 0) {
    if (!(ui->stats_timer = malloc(sizeof(*ui->stats_timer)))) return HD_ENOMEM;
    uv_timer_init(app->srv->loop, ui->stats_timer);
    ui->stats_timer->data = app;
    uv_timer_start(ui->stats_timer, on_stats_timer, STATS_INTERVAL_MS, STATS_INTERVAL_MS);
    uv_unref((uv_handle_t *)ui->stats_timer);
    HD_INFO("admin-ui", "Admin UI protocol on", "namespace=" HD_ADMIN_UI_NAMESPACE " server_id=%s mode=%s readonly=%d",
            ui->server_id, cfg->admin_ui_mode, cfg->admin_ui_readonly);
  }
  return route_ui(app, ui);
}

void hd_admin_ui_free(hd_app_t *app) {
  admin_ui_t *ui = app->admin_ui;
  if (!ui) return;
  if (app->sio) hd_sio_set_monitor(app->sio, NULL, NULL);
  if (ui->stats_timer) uv_close((uv_handle_t *)ui->stats_timer, free_timer);
  for (uint32_t i = 0; i < ui->queued_count; i++) free(ui->queued[i].args);
  free(ui->queued);
  free((char *)ui->root.root);
  free(ui);
  app->admin_ui = NULL;
}
