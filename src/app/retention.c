/* Retention (see retention.h): a timer on one shard starts a round every --retention-interval ms;
 * a round walks the kinds in order (notifications, then messages of long-closed sessions, then those
 * emptied sessions), each as store requests of BATCH rows, the next batch queued when the previous
 * one answers and came back full. One batch is one short transaction: pruning never holds the store
 * for long, and requests of the shards interleave with it. */
#include "app/retention.h"

#include <stdlib.h>

#include "app/app.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

#define BATCH 500
#define DAY_MS (24LL * 3600 * 1000)

typedef struct {
  hd_app_t *app;
  uv_timer_t timer;
  int kind;                        /* the kind being pruned in this round: hd_store_prune_t, or -1 idle */
  int64_t cutoff[3];               /* per kind: rows older than this go (0: kind kept forever) */
  bool stopped;
} retention_t;

static atomic_uint_least64_t *counter(hd_retention_counts_t *c, int kind) {
  return kind == HD_STORE_PRUNE_NOTIFICATIONS ? &c->notifications
         : kind == HD_STORE_PRUNE_CHAT_MESSAGES ? &c->chat_messages
                                                : &c->chat_sessions;
}

static void next_batch(retention_t *r);

static void pruned(void *arg, int status, const hd_store_count_t *res) {
  retention_t *r = arg;
  hd_retention_counts_t *c = &r->app->shared->retention;
  if (status) {
    atomic_fetch_add(&c->failures, 1);
    HD_WARN("retention", "prune batch failed", "kind=%d err=%s", r->kind, hd_errname(status));
    r->kind = -1; /* the next round tries again */
  } else {
    atomic_fetch_add(counter(c, r->kind), (uint64_t)res->count);
    if (res->count < BATCH) r->kind++; /* this kind is done */
  }
  if (r->stopped) {
    free(r);
    return;
  }
  next_batch(r);
}

/* Queues the next batch of the round, skipping kinds kept forever; ends the round after the last. */
static void next_batch(retention_t *r) {
  while (r->kind >= 0 && r->kind <= HD_STORE_PRUNE_CHAT_SESSIONS && !r->cutoff[r->kind]) r->kind++;
  if (r->kind < 0 || r->kind > HD_STORE_PRUNE_CHAT_SESSIONS) {
    if (r->kind > 0) atomic_fetch_add(&r->app->shared->retention.rounds, 1);
    r->kind = -1;
    return;
  }
  int rc = hd_store_prune(r->app->store, (hd_store_prune_t)r->kind, r->cutoff[r->kind], BATCH, pruned, r);
  if (rc) {
    atomic_fetch_add(&r->app->shared->retention.failures, 1);
    r->kind = -1;
  }
}

static void on_tick(uv_timer_t *t) {
  retention_t *r = t->data;
  if (r->kind >= 0) return; /* the previous round is still going */
  const hd_config_t *cfg = r->app->srv->cfg;
  int64_t now = hd_clock_wall_ms();
  r->cutoff[HD_STORE_PRUNE_NOTIFICATIONS] =
      cfg->retention_notifications_days ? now - cfg->retention_notifications_days * DAY_MS : 0;
  r->cutoff[HD_STORE_PRUNE_CHAT_MESSAGES] = r->cutoff[HD_STORE_PRUNE_CHAT_SESSIONS] =
      cfg->retention_chat_days ? now - cfg->retention_chat_days * DAY_MS : 0;
  r->kind = HD_STORE_PRUNE_NOTIFICATIONS;
  next_batch(r);
}

int hd_retention_start(hd_app_t *app) {
  const hd_config_t *cfg = app->srv->cfg;
  if (!cfg->retention_notifications_days && !cfg->retention_chat_days) return 0;
  retention_t *r = calloc(1, sizeof *r);
  if (!r) return HD_ENOMEM;
  r->app = app;
  r->kind = -1;
  r->timer.data = r;
  uv_timer_init(app->srv->loop, &r->timer);
  uv_timer_start(&r->timer, on_tick, (uint64_t)cfg->retention_interval, (uint64_t)cfg->retention_interval);
  uv_unref((uv_handle_t *)&r->timer); /* never keeps the loop alive at shutdown */
  app->retention = r;
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  retention_t *r = h->data;
  if (r->kind < 0) free(r); /* else the batch in flight frees it when answered */
  else r->stopped = true;
}

void hd_retention_stop(hd_app_t *app) {
  retention_t *r = app->retention;
  if (!r) return;
  app->retention = NULL;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

void hd_retention_metrics(const hd_retention_counts_t *c, hd_sbuf_t *b) {
  hd_sbuf_printf(b,
                 "# HELP herald_retention_pruned_total Rows deleted by retention (--retention-*-days), by kind.\n"
                 "# TYPE herald_retention_pruned_total counter\n"
                 "herald_retention_pruned_total{kind=\"notifications\"} %llu\n"
                 "herald_retention_pruned_total{kind=\"chat_messages\"} %llu\n"
                 "herald_retention_pruned_total{kind=\"chat_sessions\"} %llu\n"
                 "# HELP herald_retention_rounds_total Pruning rounds finished.\n"
                 "# TYPE herald_retention_rounds_total counter\nherald_retention_rounds_total %llu\n"
                 "# HELP herald_retention_failures_total Pruning batches that failed (retried next round).\n"
                 "# TYPE herald_retention_failures_total counter\nherald_retention_failures_total %llu\n",
                 (unsigned long long)atomic_load(&c->notifications), (unsigned long long)atomic_load(&c->chat_messages),
                 (unsigned long long)atomic_load(&c->chat_sessions), (unsigned long long)atomic_load(&c->rounds),
                 (unsigned long long)atomic_load(&c->failures));
}
