/* The single node's topic history in the store (see topic_store.h). */
#include "app/topic_store.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "delivery/history.h"
#include "delivery/topic_entry.h"

#define SAVE_EVERY_MS 200

typedef struct {
  hd_app_t *app;
  uv_timer_t timer;
  bool lost;            /* something was not saved: the stop's save is not clean */
  uint64_t saved;       /* messages handed to the store */
} topic_store_t;

typedef struct {
  hd_app_t *app;
  bool done;
  int status;
  size_t restored;
  bool clean;
} load_t;

static int64_t cutoff(const hd_config_t *cfg) {
  return cfg->topic_history_age > 0 ? hd_clock_wall_ms() - cfg->topic_history_age : 0;
}

/* Saves msgs (references released) in requests of at most HD_STORE_BATCH_MAX; the last carries the
 * clean mark. */
static void save(topic_store_t *ts, hd_hub_msg_t **msgs, size_t n, bool stopping) {
  const hd_config_t *cfg = ts->app->srv->cfg;
  size_t done = 0;
  do {
    size_t k = n - done > HD_STORE_BATCH_MAX ? HD_STORE_BATCH_MAX : n - done;
    hd_store_topic_entry_t *items = k ? calloc(k, sizeof(*items)) : NULL;
    hd_sbuf_t *texts = k ? calloc(k, sizeof(*texts)) : NULL;
    size_t m = 0;
    for (size_t i = 0; items && texts && i < k; i++) {
      hd_hub_msg_t *msg = msgs[done + i];
      if (hd_topic_entry_encode(msg, true, &texts[m])) continue;
      items[m] = (hd_store_topic_entry_t){msg->rooms[0], (int64_t)msg->seq, msg->timestamp, texts[m].ptr, texts[m].len};
      m++;
    }
    if (k && (!items || !texts || m < k)) ts->lost = true;
    bool last = done + k == n;
    int rc = hd_store_topics_save(ts->app->store, items, m, cfg->topic_history, cutoff(cfg), last && stopping && !ts->lost,
                                  NULL, NULL);
    if (rc) {
      ts->lost = true;
      HD_WARN("app", "topic history not saved", "messages=%zu err=\"%s\"", m, hd_strerror(rc));
    } else {
      ts->saved += m;
    }
    for (size_t i = 0; texts && i < k; i++) hd_sbuf_free(&texts[i]);
    free(texts);
    free(items);
    done += k;
  } while (done < n);
  for (size_t i = 0; i < n; i++) hd_hub_msg_unref(msgs[i]);
  free(msgs);
}

static void flush(topic_store_t *ts, bool stopping) {
  hd_hub_msg_t **msgs;
  size_t n;
  bool lost;
  hd_history_take_unsaved(ts->app->shared->history, &msgs, &n, &lost);
  if (lost) ts->lost = true;
  if (n || stopping) save(ts, msgs, n, stopping);
  else free(msgs);
}

static void on_timer(uv_timer_t *t) { flush(t->data, false); }

static void on_loaded(void *arg, int status, const hd_store_topics_t *res) {
  load_t *ld = arg;
  ld->done = true;
  ld->status = status;
  if (status) return;
  ld->clean = res->clean;
  hd_history_t *h = ld->app->shared->history;
  for (size_t i = 0; i < res->count; i++) {
    hd_hub_msg_t *msg = hd_topic_entry_decode(ld->app->hub, res->items[i].entry, res->items[i].entry_len);
    if (msg && msg->seq == (uint64_t)res->items[i].seq && !hd_history_restore(h, msg, res->clean)) ld->restored++;
    hd_hub_msg_unref(msg);
  }
}

int hd_topic_store_start(hd_app_t *app) {
  const hd_config_t *cfg = app->srv->cfg;
  hd_history_t *h = app->shared->history;
  if (app->shard != 0 || !h || app->shared->hub.history != h || cfg->topic_history <= 0) return 0;
  load_t ld = {.app = app};
  int rc = hd_store_topics_load(app->store, cutoff(cfg), on_loaded, &ld);
  while (!rc && !ld.done) uv_run(app->srv->loop, UV_RUN_ONCE); /* start-up: nothing else runs yet */
  if (rc || ld.status) {
    HD_ERROR("app", "cannot read the topic history", "err=\"%s\"", hd_strerror(rc ? rc : ld.status));
    return rc ? rc : ld.status;
  }
  if (ld.restored)
    HD_INFO("app", "topic history restored", "messages=%zu after=%s", ld.restored, ld.clean ? "graceful stop" : "crash");
  topic_store_t *ts = calloc(1, sizeof(*ts));
  if (!ts) return HD_ENOMEM;
  ts->app = app;
  app->topic_store = ts;
  hd_history_set_saving(h, true);
  uv_timer_init(app->srv->loop, &ts->timer);
  ts->timer.data = ts;
  uv_timer_start(&ts->timer, on_timer, SAVE_EVERY_MS, SAVE_EVERY_MS);
  uv_unref((uv_handle_t *)&ts->timer);
  return 0;
}

static void free_store(uv_handle_t *h) { free(h->data); }

void hd_topic_store_stop(hd_app_t *app) {
  topic_store_t *ts = app->topic_store;
  if (!ts) return;
  app->topic_store = NULL;
  hd_history_set_saving(app->shared->history, false);
  flush(ts, true);
  uv_timer_stop(&ts->timer);
  uv_close((uv_handle_t *)&ts->timer, free_store);
}
