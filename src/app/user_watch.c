/* Polling the users change counter and closing refused users' connections (see user_watch.h). */
#include "app/user_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/admin_ui.h"
#include "app/app.h"
#include "app/user_states.h"
#include "core/error.h"
#include "core/log.h"

typedef struct {
  uv_timer_t timer;
  hd_app_t *app;
  int64_t seen;   /* the counter the table was loaded at */
  bool asking;    /* a version or states request is out */
  bool stopped;
} watch_t;

/* A close order for one shard's JSON-protocol connections of a user. */
typedef struct {
  hd_app_shared_t *shared;
  uint32_t shard;
  char sub[24];
  char reason[128];
} close_task_t;

static void run_close(void *arg, bool cancelled) {
  close_task_t *t = arg;
  hd_app_t *app = cancelled ? NULL : t->shared->apps[t->shard];
  if (app && app->jp) hd_jp_close_sub(app->jp, t->sub, t->reason);
  free(t);
}

/* Closes every live connection of user id on this node. */
static void close_user(void *arg, int64_t id, const char *reason) {
  hd_app_t *app = arg;
  char admin_room[40], user_room[40];
  snprintf(admin_room, sizeof admin_room, "admin:%lld", (long long)id);
  snprintf(user_room, sizeof user_room, "user:%lld", (long long)id);
  const char *rooms[] = {admin_room, user_room};
  hd_sio_target_t to = {.nsp = "/", .rooms = rooms, .room_count = 2, .flags = HD_MSG_LOCAL};
  int rc = hd_sio_sockets_request(app->sio, &to, HD_HUB_REQ_DISCONNECT, NULL);
  if (!rc && app->srv->cfg->admin_ui) { /* and their Admin UI sockets (admin_ui.c joins them to admin:<id>) */
    to.nsp = HD_ADMIN_UI_NAMESPACE;
    to.rooms = rooms, to.room_count = 1;
    rc = hd_sio_sockets_request(app->sio, &to, HD_HUB_REQ_DISCONNECT, NULL);
  }
  if (rc) HD_WARN("users", "cannot disconnect a refused user's sockets", "id=%lld err=%s", (long long)id, hd_errname(rc));
  for (uint32_t i = 0; i < app->shared->shard_count; i++) {
    close_task_t *t = calloc(1, sizeof(*t));
    hd_app_t *other = app->shared->apps[i];
    if (!t || !other) {
      free(t);
      continue;
    }
    *t = (close_task_t){.shared = app->shared, .shard = i};
    snprintf(t->sub, sizeof t->sub, "%lld", (long long)id);
    snprintf(t->reason, sizeof t->reason, "%s", reason);
    if (hd_mailbox_post(other->mailbox, run_close, t)) free(t);
  }
  HD_INFO("users", "connections of a refused user closed", "id=%lld reason=\"%s\"", (long long)id, reason);
}

static void on_states(void *arg, int status, const hd_store_users_t *users) {
  watch_t *w = arg;
  w->asking = false;
  if (w->stopped) return;
  if (status || hd_user_states_replace(w->app->shared->user_states, users, close_user, w->app))
    HD_WARN("users", "cannot reload the user states", "err=%s", hd_errname(status ? status : HD_ENOMEM));
}

static void on_version(void *arg, int status, const hd_store_count_t *res) {
  watch_t *w = arg;
  w->asking = false;
  if (w->stopped || status || res->count == w->seen) return;
  int64_t seen = res->count; /* changes after this read move it again: the next poll reloads */
  if (!hd_store_user_states(w->app->store, on_states, w)) w->asking = true, w->seen = seen;
}

static void poll_now(watch_t *w) {
  if (w->asking || w->stopped) return;
  if (!hd_store_users_version(w->app->store, on_version, w)) w->asking = true;
}

static void on_tick(uv_timer_t *t) { poll_now(t->data); }

/* --- the first load, before the loop runs ----------------------------------------------------- */

typedef struct {
  bool done;
  int status;
  int64_t version;
  hd_user_states_t *states;
} first_t;

static void first_states(void *arg, int status, const hd_store_users_t *users) {
  first_t *f = arg;
  f->done = true;
  for (size_t i = 0; !status && !hd_user_states_loopback(f->states) && i < users->count; i++)
    if (users->items[i].demo && !users->items[i].deleted)
      HD_WARN("users", "demo account refused beyond loopback: set its password with `herald user passwd NAME`",
              "name=%s", users->items[i].name);
  f->status = status ? status : hd_user_states_replace(f->states, users, NULL, NULL);
}

static void first_version(void *arg, int status, const hd_store_count_t *res) {
  first_t *f = arg;
  f->status = status;
  if (!status) f->version = res->count;
}

/* Reads the counter, then the states, through a handle on a private loop. */
static int load_first(hd_app_t *app, int64_t *version) {
  uv_loop_t loop;
  if (uv_loop_init(&loop)) return HD_ENOMEM;
  hd_store_t *st = hd_store_attach(app->store, &loop);
  first_t f = {.states = app->shared->user_states};
  int rc = st ? hd_store_users_version(st, first_version, &f) : HD_ENOMEM;
  if (!rc) rc = hd_store_user_states(st, first_states, &f);
  while (!rc && !f.done && uv_run(&loop, UV_RUN_ONCE)) {}
  if (st) hd_store_close(st);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  *version = f.version;
  return rc ? rc : f.status;
}

int hd_user_watch_start(hd_app_t *app) {
  watch_t *w = calloc(1, sizeof(*w));
  if (!w) return HD_ENOMEM;
  w->app = app;
  int rc = load_first(app, &w->seen);
  if (rc) {
    HD_ERROR("users", "cannot load the user states", "err=%s", hd_errname(rc));
    free(w);
    return rc;
  }
  uv_timer_init(app->srv->loop, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, on_tick, HD_USER_WATCH_PERIOD_MS, HD_USER_WATCH_PERIOD_MS);
  app->user_watch = w;
  return 0;
}

void hd_user_watch_poke(hd_app_t *app) {
  hd_app_t *first = app->shared->apps[0];
  if (first == app && app->user_watch) poll_now(app->user_watch);
}

static void free_watch(uv_handle_t *h) { free(h->data); }

void hd_user_watch_stop(hd_app_t *app) {
  watch_t *w = app->user_watch;
  if (!w) return;
  app->user_watch = NULL;
  w->stopped = true;
  uv_timer_stop(&w->timer);
  uv_close((uv_handle_t *)&w->timer, free_watch);
}
