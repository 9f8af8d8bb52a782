/* Gathering every shard's figures through the mailboxes (see figures.h). */
#include "app/figures.h"

#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "core/error.h"

typedef struct {
  hd_app_t *origin;
  uint32_t count, remaining;
  hd_figures_fn fn;
  void *arg;
  hd_shard_figures_t figs[];
} gather_t;

typedef struct {
  gather_t *g;
  uint32_t shard;
} ask_t;

static void copy_figures(const hd_app_t *app, hd_shard_figures_t *f) {
  const hd_server_t *s = app->srv;
  f->answered = true;
  f->net = s->metrics;
  f->connections = s->conn_count;
  f->stopping = s->stopping;
  f->uptime_ms = hd_server_uptime_ms(s);
  f->rooms = hd_hub_room_count(app->hub);
  f->sio_sessions = hd_sio_client_count(app->sio);
  f->sio_sockets = hd_sio_socket_count(app->sio);
  if (s->cfg->admin_ui) f->sio_polling = hd_sio_polling_client_count(app->sio); /* a walk: only for its stats */
  hd_sio_client_totals(app->sio, &f->sio_opened, &f->sio_closed);
  for (int i = 0; i < hd_sio_namespace_count(app->sio) && i < HD_FIGURES_NAMESPACES; i++)
    f->nsp_sockets[i] = hd_sio_namespace_sockets(app->sio, i);
  f->json_connections = hd_jp_connection_count(app->jp);
  f->chat_sessions = app->counters.chat_sessions;
  f->chat_messages = app->counters.chat_messages;
  f->inbox_entries = app->json_inbox.entries;
  f->inbox_dropped = app->json_inbox.dropped;
  hd_notifications_stats(app, &f->notifications);
  hd_system_events_stats(app, &f->system);
  f->traffic = *hd_hub_traffic(app->hub);
}

static void one_done(gather_t *g) {
  if (--g->remaining) return;
  g->fn(g->origin, g->figs, g->count, g->arg);
  free(g);
}

/* On the asking shard: a shard's figures are in. Cancelled tasks (the node's teardown, every loop
 * stopped) still complete the gather, so its callback runs and frees what it holds. */
static void run_answered(void *arg, bool cancelled) {
  ask_t *a = arg;
  one_done(a->g);
  free(a);
}

/* On the asked shard: copy, then hand back. */
static void run_ask(void *arg, bool cancelled) {
  ask_t *a = arg;
  hd_app_t *app = a->g->origin->shared->apps[a->shard];
  if (!cancelled && app) copy_figures(app, &a->g->figs[a->shard]);
  if (cancelled || hd_mailbox_post(a->g->origin->mailbox, run_answered, a)) run_answered(a, true);
}

int hd_figures_collect(hd_app_t *app, hd_figures_fn fn, void *arg) {
  uint32_t n = app->shared->shard_count;
  gather_t *g = calloc(1, sizeof(*g) + n * sizeof(g->figs[0]));
  if (!g) return HD_ENOMEM;
  *g = (gather_t){app, n, n + 1, fn, arg}; /* +1: held until every shard was asked */
  for (uint32_t i = 0; i < n; i++) {
    hd_app_t *other = app->shared->apps[i];
    ask_t *a = other && other != app ? malloc(sizeof(*a)) : NULL;
    if (other == app) copy_figures(app, &g->figs[i]);
    if (a) *a = (ask_t){g, i};
    if (!a || hd_mailbox_post(other->mailbox, run_ask, a)) {
      free(a);
      g->remaining--;
    }
  }
  one_done(g);
  return 0;
}
