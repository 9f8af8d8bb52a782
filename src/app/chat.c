/* Customer-service chat (see chat.h): data shapes, pushes, least-loaded assignment and the waiting
 * queue, posting a message, and the Socket.IO events chat:send_message and chat:typing. The REST
 * routes are in chat_rest.c.
 *
 * Everything is persisted before it is pushed or acknowledged: each step runs in a store callback.
 * The module keeps no state of its own between requests: each request carries a context freed by its
 * last callback (the store runs every callback exactly once, the last ones inside hd_store_close).
 * Assignment: a new session goes to the online admin with the fewest active sessions (ties: lowest
 * id) — online on any node of the cluster with --redis-url (presence.h; the loads are the store's, so
 * the nodes must share it: docs/cluster-presence.md) — else it waits; when an admin comes online, the waiting sessions (oldest first) are spread over
 * every online admin the same way, so a lone admin takes them all and several stay balanced. Two
 * sessions started at the same instant may both see the same loads (no reservation is kept). Every
 * automatic assignment (a new session, the waiting-queue round, an admin answering a waiting session)
 * is a claim that succeeds only while the session still waits, so a session is assigned and
 * announced exactly once even when those race, on one node or on several sharing one store.
 *
 * A closed session takes no message (409). chat:send_message is acknowledged after the message is
 * stored, with {success, data | error, code} (code 429 past --max-socket-store-requests waiting on
 * the socket); chat:typing is relayed to the other party only (the
 * user, or the session's admin), at most TYPING_PER_SECOND per socket and second. */
#include "app/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/events.h"
#include "app/push.h"
#include "app/presence.h"
#include "app/rest.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

#define WAITING_BATCH 100   /* waiting sessions assigned per round when an admin comes online */
#define TYPING_PER_SECOND 5 /* chat:typing relayed per socket and second; the rest are dropped */

/* hd_app_free frees presence right after the Socket.IO server, before closing the store (which runs
 * the callbacks still queued): without presence nothing may be pushed. */
static bool pushing(const hd_app_t *app) { return app->presence && app->sio; }

/* --- shapes ------------------------------------------------------------------------------------- */

bool hd_chat_visible(hd_chat_actor_t who, const hd_store_session_t *s) { return who.admin || s->user_id == who.id; }

static json_t *id_or_null(int64_t id) { return id ? json_integer((json_int_t)id) : json_null(); }

int hd_chat_priority(int stored) {
  if (stored < HD_CHAT_PRIORITY_MIN) return HD_CHAT_PRIORITY_DEFAULT;
  return stored > HD_CHAT_PRIORITY_MAX ? HD_CHAT_PRIORITY_MAX : stored;
}

json_t *hd_chat_session_json(const hd_app_t *app, const hd_store_session_t *s, bool admin_view) {
  return json_pack("{s:I, s:I, s:I, s:o, s:s, s:i, s:o, s:o, s:I, s:I, s:I, s:o, s:o, s:o}", "session_id",
                   (json_int_t)s->id, "id", (json_int_t)s->id, "user_id", (json_int_t)s->user_id, "admin_id",
                   id_or_null(s->admin_id), "status", s->status, "priority", hd_chat_priority(s->priority),
                   "last_message", s->last_message && s->last_message_at ? json_string(s->last_message) : json_null(),
                   "last_message_at", hd_rest_time_json(app, s->last_message_at), "unread_count",
                   (json_int_t)(admin_view ? s->admin_unread : s->user_unread), "user_unread",
                   (json_int_t)s->user_unread, "admin_unread", (json_int_t)s->admin_unread, "created_at",
                   hd_rest_time_json(app, s->created_at), "updated_at", hd_rest_time_json(app, s->updated_at),
                   "closed_at", hd_rest_time_json(app, s->closed_at));
}

json_t *hd_chat_message_json(const hd_app_t *app, const hd_store_message_t *m) {
  return json_pack("{s:I, s:I, s:I, s:s, s:I, s:s, s:s, s:o}", "message_id", (json_int_t)m->id, "id",
                   (json_int_t)m->id, "session_id", (json_int_t)m->session_id, "sender_type", m->sender_role,
                   "sender_id", (json_int_t)m->sender_id, "message_content", m->content, "message_type",
                   m->message_type, "created_at", hd_rest_time_json(app, m->created_at));
}

static bool blank(const char *s) {
  for (; *s; s++)
    if (!strchr(" \t\r\n", *s)) return false;
  return true;
}

const char *hd_chat_check_message(json_t *obj, bool admin, const char **content, const char **type) {
  json_t *c = json_object_get(obj, "content"), *t = json_object_get(obj, "message_type");
  if (!json_is_string(c)) return "`content` (a string) is required";
  size_t len = json_string_length(c);
  if (strlen(json_string_value(c)) != len) return "`content` must not contain NUL characters";
  if (!len || blank(json_string_value(c))) return "`content` must not be empty";
  if (hd_rest_chars(json_string_value(c)) > HD_STORE_CONTENT_MAX) return "`content` is longer than 10000 characters";
  *content = json_string_value(c);
  *type = "text";
  if (t && !json_is_null(t)) {
    static const char *const types[] = {"text", "image", "file", "system"};
    const char *v = json_is_string(t) ? json_string_value(t) : "";
    size_t i = 0;
    while (i < 4 && strcmp(v, types[i])) i++;
    if (i == 4) return "`message_type` must be one of text, image, file, system";
    if (i == 3 && !admin) return "only admins send `system` messages";
    *type = types[i];
  }
  return NULL;
}

int hd_chat_store_status(int err, const char **message) {
  switch (err) {
    case HD_ENOTFOUND: *message = "session not found"; return 404;
    case HD_EINVAL: *message = "invalid request"; return 400;
    case HD_EBUSY:
    case HD_ECLOSED: *message = "the server is busy or stopping, try again"; return 503;
    case HD_EIO: *message = "the store cannot write now (disk full?): nothing was saved, try again later"; return 503;
    default: *message = "internal error"; return 500;
  }
}

/* --- pushes ------------------------------------------------------------------------------------- */

/* Broadcasts event with payload (stolen) as its one argument to the rooms. */
static void emit(hd_app_t *app, const char *const *rooms, size_t n, const char *event, json_t *payload) {
  char *text = NULL;
  if (pushing(app) && n && payload) {
    json_t *args = json_pack("[O]", payload);
    text = args ? json_dumps(args, JSON_COMPACT) : NULL;
    json_decref(args);
  }
  for (size_t i = 0; text && i < n; i++) hd_app_push(app, rooms[i], event, text, NULL, NULL); /* a topic each */
  free(text);
  json_decref(payload);
}

static void room_of(char out[48], bool admin, int64_t id) {
  snprintf(out, 48, "%s:%lld", admin ? "admin" : "user", (long long)id);
}

void hd_chat_push_session_to(hd_app_t *app, const hd_store_session_t *s, bool admin_side, int64_t id) {
  char room[48];
  room_of(room, admin_side, id);
  const char *rooms[] = {room};
  if (id > 0) emit(app, rooms, 1, HD_EV_CHAT_SESSION_UPDATE, hd_chat_session_json(app, s, admin_side));
}

void hd_chat_push_session(hd_app_t *app, const hd_store_session_t *s, int64_t prev_admin) {
  hd_chat_push_session_to(app, s, false, s->user_id);
  char rooms[2][48];
  const char *list[2];
  size_t n = 0;
  if (s->admin_id) room_of(rooms[n], true, s->admin_id), list[n] = rooms[n], n++;
  if (prev_admin && prev_admin != s->admin_id) room_of(rooms[n], true, prev_admin), list[n] = rooms[n], n++;
  if (n) emit(app, list, n, HD_EV_CHAT_SESSION_UPDATE, hd_chat_session_json(app, s, true));
}

void hd_chat_push_assigned(hd_app_t *app, const hd_store_session_t *s) {
  char room[48];
  room_of(room, true, s->admin_id);
  const char *rooms[] = {room};
  if (s->admin_id)
    emit(app, rooms, 1, HD_EV_CHAT_SESSION_ASSIGNED,
         json_pack("{s:I, s:I, s:i}", "session_id", (json_int_t)s->id, "user_id", (json_int_t)s->user_id, "priority",
                   hd_chat_priority(s->priority)));
}

void hd_chat_emit(hd_app_t *app, int64_t user_id, int64_t admin_id, const char *event, json_t *payload) {
  char rooms[2][48];
  const char *list[2];
  size_t n = 0;
  if (user_id > 0) room_of(rooms[n], false, user_id), list[n] = rooms[n], n++;
  if (admin_id > 0) room_of(rooms[n], true, admin_id), list[n] = rooms[n], n++;
  emit(app, list, n, event, payload);
}

void hd_chat_push_message(hd_app_t *app, const hd_store_session_t *s, const hd_store_message_t *m) {
  hd_chat_emit(app, s->user_id, s->admin_id, HD_EV_CHAT_NEW_MESSAGE, hd_chat_message_json(app, m));
}

/* --- assignment --------------------------------------------------------------------------------- */

typedef struct {
  int64_t id, load;
} admin_load_t;

/* The online admins with their active-session counts (malloc'd, *n of them; NULL when none). */
static admin_load_t *online_loads(hd_app_t *app, const hd_store_admin_loads_t *loads, size_t *n) {
  *n = 0;
  size_t online = pushing(app) ? hd_presence_online_admins(app, NULL, 0) : 0;
  int64_t *ids = online ? malloc(online * sizeof(*ids)) : NULL;
  admin_load_t *out = online ? calloc(online, sizeof(*out)) : NULL;
  if (ids && out) {
    online = hd_presence_online_admins(app, ids, online);
    for (size_t i = 0; i < online; i++) {
      out[i].id = ids[i];
      for (size_t j = 0; loads && j < loads->count; j++)
        if (loads->items[j].admin_id == ids[i]) out[i].load = loads->items[j].open_count;
    }
    *n = online;
  }
  free(ids);
  if (!*n) free(out), out = NULL;
  return out;
}

/* The least loaded of admins (ties: the lowest id). */
static admin_load_t *least_loaded(admin_load_t *admins, size_t n) {
  admin_load_t *best = NULL;
  for (size_t i = 0; i < n; i++)
    if (!best || admins[i].load < best->load || (admins[i].load == best->load && admins[i].id < best->id))
      best = &admins[i];
  return best;
}

typedef struct {
  hd_app_t *app;
  int64_t session_id;
  hd_chat_assigned_fn fn;
  void *arg;
} assign_t;

static void assign_done(void *arg, int status, const hd_store_session_t *s) {
  assign_t *a = arg;
  if (status == HD_EEXISTS) {
    HD_DEBUG("chat", "session already taken", "session=%lld", (long long)a->session_id);
  } else if (status) {
    HD_WARN("chat", "cannot assign a new session: it waits", "session=%lld err=%s", (long long)a->session_id,
            hd_errname(status));
  } else {
    hd_chat_push_assigned(a->app, s);
    hd_chat_push_session(a->app, s, 0);
  }
  a->fn(a->arg, status ? NULL : s);
  free(a);
}

static void assign_loads(void *arg, int status, const hd_store_admin_loads_t *loads) {
  assign_t *a = arg;
  size_t n = 0;
  admin_load_t *admins = status ? NULL : online_loads(a->app, loads, &n);
  admin_load_t *best = least_loaded(admins, n);
  int rc = best ? hd_store_session_claim(a->app->store, a->session_id, best->id, assign_done, a) : HD_ENOTFOUND;
  free(admins);
  if (rc) {
    a->fn(a->arg, NULL);
    free(a);
  }
}

void hd_chat_assign_least_loaded(hd_app_t *app, int64_t session_id, hd_chat_assigned_fn fn, void *arg) {
  assign_t *a = pushing(app) && hd_presence_online_admins(app, NULL, 0) ? malloc(sizeof(*a)) : NULL;
  if (a) *a = (assign_t){app, session_id, fn, arg};
  if (!a || hd_store_admin_open_session_counts(app->store, assign_loads, a)) {
    free(a);
    fn(arg, NULL);
  }
}

/* One round of the waiting queue: up to WAITING_BATCH sessions, oldest first. */
typedef struct {
  hd_app_t *app;
  size_t count, pending, assigned;
  int64_t ids[WAITING_BATCH];
} batch_t;

static void assign_waiting(hd_app_t *app, int64_t admin_id, void *arg);

static void batch_finish(batch_t *b) {
  hd_app_t *app = b->app;
  bool again = b->count == WAITING_BATCH && b->assigned && pushing(app);
  free(b);
  if (again) assign_waiting(app, 0, NULL);
}

static void batch_assigned(void *arg, int status, const hd_store_session_t *s) {
  batch_t *b = arg;
  if (!status) {
    b->assigned++;
    hd_chat_push_assigned(b->app, s);
    hd_chat_push_session(b->app, s, 0);
  }
  if (--b->pending == 0) batch_finish(b);
}

static void batch_loads(void *arg, int status, const hd_store_admin_loads_t *loads) {
  batch_t *b = arg;
  size_t n = 0;
  admin_load_t *admins = status ? NULL : online_loads(b->app, loads, &n);
  b->pending = 1; /* held until every assignment is queued */
  for (size_t i = 0; admins && i < b->count; i++) {
    admin_load_t *best = least_loaded(admins, n);
    if (hd_store_session_claim(b->app->store, b->ids[i], best->id, batch_assigned, b)) break;
    best->load++;
    b->pending++;
  }
  free(admins);
  if (--b->pending == 0) batch_finish(b);
}

static void batch_waiting(void *arg, int status, const hd_store_sessions_t *list) {
  batch_t *b = arg;
  for (size_t i = 0; !status && i < list->count && i < WAITING_BATCH; i++) b->ids[b->count++] = list->items[i].id;
  if (!b->count || !pushing(b->app) || hd_store_admin_open_session_counts(b->app->store, batch_loads, b)) free(b);
}

/* An admin came online: spread the waiting sessions over the online admins. */
static void assign_waiting(hd_app_t *app, int64_t admin_id, void *arg) {
  batch_t *b = calloc(1, sizeof(*b));
  if (!b) return;
  b->app = app;
  if (hd_store_sessions_waiting(app->store, WAITING_BATCH, batch_waiting, b)) free(b);
}

/* --- posting a message -------------------------------------------------------------------------- */

typedef struct {
  hd_app_t *app;
  hd_chat_actor_t who;
  int64_t session_id;
  char type[8];
  hd_chat_posted_fn fn;
  void *arg;
  char content[]; /* copied */
} post_t;

static void post_finish(post_t *p, int status, const char *error, const hd_store_message_t *m) {
  p->fn(p->arg, status, error, m);
  free(p);
}

/* A store error after the checks: the session vanished or closed meanwhile, or the store failed. */
static void post_fail(post_t *p, int err) {
  const char *msg;
  int status = hd_chat_store_status(err, &msg);
  if (err == HD_EINVAL) status = 409, msg = "the session is closed: start a new session";
  post_finish(p, status, msg, NULL);
}

static void post_created(void *arg, int status, const hd_store_chat_post_t *res) {
  post_t *p = arg;
  if (status) return post_fail(p, status);
  p->app->counters.chat_messages++;
  hd_chat_push_message(p->app, &res->session, &res->message);
  hd_chat_push_session(p->app, &res->session, 0);
  post_finish(p, 0, NULL, &res->message);
}

static void post_store(post_t *p) {
  int rc = hd_store_message_create(p->app->store, p->session_id, p->who.id, p->who.admin ? "admin" : "user",
                                   p->content, p->type, post_created, p);
  if (rc) post_fail(p, rc == HD_EINVAL ? HD_EIO : rc); /* the input was checked: EINVAL is ours */
}

static void post_assigned(void *arg, int status, const hd_store_session_t *s) {
  post_t *p = arg;
  if (status == HD_EEXISTS) return post_store(p); /* another admin or node took it meanwhile: just answer */
  if (status) return post_fail(p, status);
  hd_chat_push_assigned(p->app, s);
  hd_chat_push_session(p->app, s, 0);
  post_store(p);
}

static void post_session(void *arg, int status, const hd_store_session_t *s) {
  post_t *p = arg;
  if (status) return post_fail(p, status);
  if (!hd_chat_visible(p->who, s)) return post_finish(p, 404, "session not found", NULL);
  if (!strcmp(s->status, "closed")) return post_fail(p, HD_EINVAL);
  if (!p->who.admin || s->admin_id) return post_store(p);
  /* an admin answering a waiting session takes it */
  int rc = hd_store_session_claim(p->app->store, p->session_id, p->who.id, post_assigned, p);
  if (rc) post_fail(p, rc == HD_EINVAL ? HD_EIO : rc);
}

bool hd_chat_rate_take(hd_app_t *app, hd_chat_actor_t who) {
  hd_addr_rate_t *senders = app->shared->chat_senders;
  if (who.admin || !senders) return true;
  char key[32];
  snprintf(key, sizeof key, "%lld", (long long)who.id);
  return hd_addr_rate_take(senders, key, hd_clock_mono_ms());
}

void hd_chat_post(hd_app_t *app, hd_chat_actor_t who, int64_t session_id, const char *content, const char *type,
                  hd_chat_posted_fn fn, void *arg) {
  if (!hd_chat_rate_take(app, who)) return fn(arg, 429, HD_CHAT_RATE_MESSAGE, NULL);
  size_t len = strlen(content);
  post_t *p = malloc(sizeof(*p) + len + 1);
  if (!p) return fn(arg, 500, "out of memory", NULL);
  *p = (post_t){.app = app, .who = who, .session_id = session_id, .fn = fn, .arg = arg};
  snprintf(p->type, sizeof p->type, "%s", type);
  memcpy(p->content, content, len + 1);
  int rc = hd_store_session_get(app->store, session_id, post_session, p);
  if (rc) post_fail(p, rc == HD_EINVAL ? HD_ENOTFOUND : rc);
}

/* --- Socket.IO ---------------------------------------------------------------------------------- */

/* The socket's identity; false for an anonymous socket or a token without a numeric id and role. */
static bool socket_actor(hd_sio_socket_t *s, hd_chat_actor_t *out) {
  const hd_claims_t *c = hd_sio_socket_claims(s);
  if (!c || (strcmp(c->role, "admin") && strcmp(c->role, "user"))) return false;
  char *end;
  long long id = strtoll(c->sub, &end, 10);
  *out = (hd_chat_actor_t){id, !strcmp(c->role, "admin")};
  return *c->sub && !*end && id > 0;
}

static int64_t session_id_of(json_t *data) {
  json_t *v = json_object_get(data, "session_id");
  if (json_is_integer(v)) return json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
  if (!json_is_string(v)) return 0;
  char *end;
  long long id = strtoll(json_string_value(v), &end, 10);
  return *json_string_value(v) && !*end && id > 0 ? id : 0;
}

/* A chat:send_message waiting for its ack. The socket may be gone when the store answers: it is
 * found again by its id. */
typedef struct {
  hd_app_t *app;
  int64_t ack_id;
  char sid[64];
} send_t;

static hd_sio_socket_t *send_socket(const send_t *x) {
  return pushing(x->app) ? hd_sio_socket_find(x->app->sio, "/", x->sid) : NULL;
}

static void ack_error(hd_sio_socket_t *s, int64_t ack_id, int status, const char *error) {
  json_t *v = json_pack("[{s:b, s:s, s:i}]", "success", 0, "error", error, "code", status);
  char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
  if (text && ack_id >= 0) hd_sio_ack(s, ack_id, text);
  free(text);
  json_decref(v);
}

static void send_done(void *arg, int status, const char *error, const hd_store_message_t *m) {
  send_t *x = arg;
  hd_sio_socket_t *s = send_socket(x);
  if (s) hd_sio_socket_inflight_done(s);
  if (x->ack_id < 0) s = NULL;
  if (s && status) {
    ack_error(s, x->ack_id, status, error);
  } else if (s) {
    json_t *v = json_pack("[{s:b, s:o}]", "success", 1, "data", hd_chat_message_json(x->app, m));
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    if (text) hd_sio_ack(s, x->ack_id, text);
    free(text);
    json_decref(v);
  }
  free(x);
}

/* chat:send_message {session_id, content, message_type?}: stored, pushed, then acknowledged. At most
 * --max-socket-store-requests of them wait for the store per socket: beyond, the ack is a 429 error
 * and nothing is stored (admins included). */
static void on_send_message(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  hd_app_t *app = udata;
  hd_chat_actor_t who;
  json_t *data = json_array_get(args, 0);
  const char *content, *type, *why;
  int64_t session_id = session_id_of(data);
  if (!socket_actor(s, &who)) return ack_error(s, ack_id, 401, "a user or admin token is required");
  if (!json_is_object(data)) return ack_error(s, ack_id, 400, "the argument must be {session_id, content, message_type?}");
  if (!session_id) return ack_error(s, ack_id, 400, "`session_id` must be a positive integer");
  if ((why = hd_chat_check_message(data, who.admin, &content, &type))) return ack_error(s, ack_id, 400, why);
  if (!hd_sio_socket_inflight_take(s, (uint32_t)app->shared->cfg->max_socket_store_requests))
    return ack_error(s, ack_id, 429, HD_APP_INFLIGHT_MESSAGE);
  send_t *x = malloc(sizeof(*x));
  if (!x) {
    hd_sio_socket_inflight_done(s);
    return ack_error(s, ack_id, 500, "out of memory");
  }
  *x = (send_t){.app = app, .ack_id = ack_id};
  snprintf(x->sid, sizeof x->sid, "%s", hd_sio_socket_id(s));
  hd_chat_post(app, who, session_id, content, type, send_done, x);
}

typedef struct {
  hd_app_t *app;
  hd_chat_actor_t who;
} typing_t;

static void typing_session(void *arg, int status, const hd_store_session_t *s) {
  typing_t *t = arg;
  /* relayed to the other party only: the user, or the session's admin when it has one */
  if (!status && hd_chat_visible(t->who, s) && strcmp(s->status, "closed") && (t->who.admin || s->admin_id)) {
    char room[48];
    room_of(room, !t->who.admin, t->who.admin ? s->user_id : s->admin_id);
    const char *rooms[] = {room};
    emit(t->app, rooms, 1, HD_EV_CHAT_TYPING,
         json_pack("{s:I, s:I, s:s}", "session_id", (json_int_t)s->id, "user_id", (json_int_t)t->who.id, "role",
                   t->who.admin ? "admin" : "user"));
  }
  free(t);
}

/* At most TYPING_PER_SECOND per socket and second. The count lives in the socket's udata, encoded as
 * (second << 8 | count), so nothing is allocated per socket and nothing is left when it goes. */
static bool typing_allowed(hd_app_t *app, hd_sio_socket_t *s) {
  uintptr_t second = (uintptr_t)(uv_now(app->srv->loop) / 1000 + 1) & (UINTPTR_MAX >> 8);
  uintptr_t v = (uintptr_t)hd_sio_socket_udata(s), count = (v >> 8) == second ? (v & 0xFF) : 0;
  if (count >= TYPING_PER_SECOND) return false;
  hd_sio_socket_set_udata(s, (void *)(second << 8 | (count + 1)));
  return true;
}

/* chat:typing {session_id}: relayed as {session_id, user_id, role} to the other party. */
static void on_typing(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  hd_app_t *app = udata;
  hd_chat_actor_t who;
  int64_t session_id = session_id_of(json_array_get(args, 0));
  if (!socket_actor(s, &who) || !session_id || !typing_allowed(app, s)) return;
  typing_t *t = malloc(sizeof(*t));
  if (!t) return;
  *t = (typing_t){app, who};
  if (hd_store_session_get(app->store, session_id, typing_session, t)) free(t);
}

/* --- registration ------------------------------------------------------------------------------- */

int hd_chat_register(hd_app_t *app) {
  int rc = hd_sio_on(app->sio, "/", HD_EV_CHAT_SEND_MESSAGE, on_send_message, app);
  if (!rc) rc = hd_sio_on(app->sio, "/", HD_EV_CHAT_TYPING, on_typing, app);
  if (!rc) hd_presence_on_admin_online(app, assign_waiting, NULL);
  return rc ? rc : hd_chat_rest_register(app);
}
