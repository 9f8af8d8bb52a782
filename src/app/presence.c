/* Socket.IO presence and identity rooms (see presence.h): this node's sockets, counted node-wide
 * under one mutex; the queries merge in the other nodes' view (presence_cluster.c) when clustered. */
#include "app/presence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/events.h"
#include "app/presence_internal.h"
#include "core/error.h"
#include "core/log.h"

/* One shard's view: the shared counts and this shard's listener. */
typedef struct {
  hd_presence_shared_t *shared;
  hd_presence_admin_fn on_admin;
  void *on_admin_arg;
} presence_t;

static presence_t *state(const hd_app_t *app) { return app->presence; }

hd_presence_shared_t *hd_presence_shared_new(void) {
  hd_presence_shared_t *sh = calloc(1, sizeof(*sh));
  if (sh && uv_mutex_init(&sh->mu)) {
    free(sh);
    return NULL;
  }
  return sh;
}

static void free_ident(void *value, void *arg) { free(value); }

void hd_presence_shared_free(hd_presence_shared_t *sh) {
  if (!sh) return;
  hd_map_each(&sh->admins, free_ident, NULL);
  hd_map_free(&sh->admins);
  hd_map_each(&sh->users, free_ident, NULL);
  hd_map_free(&sh->users);
  hd_presence_remote_free(sh->remote);
  uv_mutex_destroy(&sh->mu);
  free(sh);
}

void hd_presence_shared_set_cluster(hd_presence_shared_t *sh, const char *self_tag, void (*changed)(void *arg),
                                    void *arg) {
  memcpy(sh->self_tag, self_tag, 3);
  sh->changed = changed;
  sh->changed_arg = arg;
}

static int64_t numeric_id(const char *sub) {
  char *end;
  long long v = strtoll(sub, &end, 10);
  return *sub && !*end && v > 0 ? v : 0;
}

/* One more socket of identity sub in map (under mu); true when it is the identity's first. */
static bool add_socket(hd_map_t *map, const char *sub) {
  size_t len = strlen(sub);
  if (len >= HD_PRESENCE_KEY_MAX) return false; /* counted by role only */
  hd_presence_ident_t *a = hd_map_get(map, sub, len);
  if (!a && (a = calloc(1, sizeof(*a)))) {
    memcpy(a->key, sub, len + 1);
    a->id = numeric_id(sub);
    if (hd_map_put(map, a->key, len, a)) free(a), a = NULL;
  }
  return a && a->sockets++ == 0;
}

/* One socket fewer of identity sub in map (under mu). */
static void remove_socket(hd_map_t *map, const char *sub) {
  size_t len = strlen(sub);
  hd_presence_ident_t *a = len < HD_PRESENCE_KEY_MAX ? hd_map_get(map, sub, len) : NULL;
  if (a && --a->sockets == 0) {
    hd_map_del(map, a->key, len);
    free(a);
  }
}

static void tell_cluster(hd_presence_shared_t *sh) {
  if (sh->changed) sh->changed(sh->changed_arg);
}

static void on_connect(hd_sio_socket_t *s, json_t *auth, void *udata) {
  hd_app_t *app = udata;
  presence_t *p = state(app);
  const hd_claims_t *c = hd_sio_socket_claims(s);
  if (!c) return; /* anonymous (test handlers): no identity rooms */
  char room[160];
  hd_presence_shared_t *sh = p->shared;
  bool admin = !strcmp(c->role, "admin");
  if (admin) {
    hd_sio_join(s, "admins");
    snprintf(room, sizeof room, "admin:%s", c->sub);
  } else {
    snprintf(room, sizeof room, "user:%s", c->sub);
  }
  hd_sio_join(s, room);
  uv_mutex_lock(&sh->mu);
  bool first = add_socket(admin ? &sh->admins : &sh->users, c->sub);
  if (admin) sh->sockets_admin++;
  else sh->sockets_user++;
  uv_mutex_unlock(&sh->mu);
  tell_cluster(sh);
  int64_t id = numeric_id(c->sub);
  if (admin && first && id && p->on_admin) p->on_admin(app, id, p->on_admin_arg);
}

static void on_disconnect(hd_sio_socket_t *s, const char *reason, void *udata) {
  hd_presence_shared_t *sh = state(udata)->shared;
  const hd_claims_t *c = hd_sio_socket_claims(s);
  if (!c) return;
  bool admin = !strcmp(c->role, "admin");
  uv_mutex_lock(&sh->mu);
  remove_socket(admin ? &sh->admins : &sh->users, c->sub);
  if (admin) sh->sockets_admin--;
  else sh->sockets_user--;
  uv_mutex_unlock(&sh->mu);
  tell_cluster(sh);
}

/* register_user {user_id, role?}: only the token's own identity is accepted. */
static void on_register_user(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  const hd_claims_t *c = hd_sio_socket_claims(s);
  json_t *data = json_array_get(args, 0), *id = json_object_get(data, "user_id");
  char given[64] = "";
  if (json_is_integer(id)) snprintf(given, sizeof given, "%lld", (long long)json_integer_value(id));
  else if (json_is_string(id)) snprintf(given, sizeof given, "%s", json_string_value(id));
  bool ok = c && *given && !strcmp(given, c->sub);
  if (ack_id >= 0)
    hd_sio_ack(s, ack_id, ok ? "[{\"success\":true}]" : "[{\"success\":false,\"error\":\"user_id does not match the token\"}]");
  if (!ok) HD_WARN("presence", "register_user refused: identity differs from the token", "socket=%s", hd_sio_socket_id(s));
}

int hd_presence_register(hd_app_t *app) {
  presence_t *p = calloc(1, sizeof(presence_t));
  if (!p) return HD_ENOMEM;
  p->shared = app->shared->presence;
  app->presence = p;
  int rc = hd_sio_on_connect(app->sio, "/", on_connect, app);
  if (!rc) rc = hd_sio_on_disconnect(app->sio, "/", on_disconnect, app);
  if (!rc) rc = hd_sio_on(app->sio, "/", "register_user", on_register_user, app); /* legacy name */
  if (!rc) rc = hd_sio_on(app->sio, "/", HD_EV_SYSTEM_REGISTER_USER, on_register_user, app);
  return rc ? rc : hd_presence_rest_register(app);
}

void hd_presence_free(hd_app_t *app) {
  free(app->presence);
  app->presence = NULL;
}

void hd_presence_on_admin_online(hd_app_t *app, hd_presence_admin_fn fn, void *arg) {
  state(app)->on_admin = fn;
  state(app)->on_admin_arg = arg;
}

size_t hd_presence_online_admins(const hd_app_t *app, int64_t *ids, size_t max) {
  hd_presence_shared_t *sh = state(app)->shared;
  size_t n = 0;
  uv_mutex_lock(&sh->mu);
  for (size_t i = 0; i < sh->admins.cap; i++) {
    const hd_presence_ident_t *a = sh->admins.slots[i].value;
    if (sh->admins.slots[i].hash && a->id) {
      if (n < max) ids[n] = a->id;
      n++;
    }
  }
  const hd_presence_remote_t *r = hd_presence_remote_fresh(sh);
  for (size_t i = 0; r && i < r->admins.cap; i++) { /* the other nodes' admins not online here */
    const hd_presence_ident_t *a = r->admins.slots[i].value;
    if (r->admins.slots[i].hash && a->id && !hd_map_get(&sh->admins, a->key, strlen(a->key))) {
      if (n < max) ids[n] = a->id;
      n++;
    }
  }
  uv_mutex_unlock(&sh->mu);
  return n;
}

bool hd_presence_admin_online(const hd_app_t *app, int64_t admin_id) {
  hd_presence_shared_t *sh = state(app)->shared;
  char key[32];
  snprintf(key, sizeof key, "%lld", (long long)admin_id);
  uv_mutex_lock(&sh->mu);
  const hd_presence_remote_t *r = hd_presence_remote_fresh(sh);
  bool online = hd_map_get(&sh->admins, key, strlen(key)) || (r && hd_map_get(&r->admins, key, strlen(key)));
  uv_mutex_unlock(&sh->mu);
  return online;
}

size_t hd_presence_count(const hd_app_t *app, const char *role) {
  hd_presence_shared_t *sh = state(app)->shared;
  uv_mutex_lock(&sh->mu);
  size_t n = !strcmp(role, "admin") ? sh->sockets_admin : sh->sockets_user;
  uv_mutex_unlock(&sh->mu);
  return n;
}
