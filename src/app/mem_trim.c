/* Memory trim (see mem_trim.h): a timer on one shard compares the node's count of closed Engine.IO
 * sessions (hd_app_shared_t.eio_closed, counted by eio.c) with its value at the last tick. Trimming
 * walks every malloc arena, so it runs only after a wave of closes, never on a steady trickle. */
#include "app/mem_trim.h"

#include <malloc.h>
#include <stdlib.h>

#include "app/app.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

typedef struct {
  hd_app_t *app;
  uv_timer_t timer;
  uint64_t closed_seen; /* eio_closed at the last tick */
} mem_trim_t;

static void on_tick(uv_timer_t *t) {
  mem_trim_t *m = t->data;
  hd_app_shared_t *sh = m->app->shared;
  uint64_t closed = __atomic_load_n(&sh->eio_closed, __ATOMIC_RELAXED);
  uint64_t gone = closed - m->closed_seen;
  m->closed_seen = closed;
  if (gone < HD_MEM_TRIM_MIN_CLOSED || gone < __atomic_load_n(&sh->eio_sessions, __ATOMIC_RELAXED)) return;
#ifdef __GLIBC__
  uint64_t t0 = hd_clock_mono_ms();
  int released = malloc_trim(0);
  __atomic_add_fetch(&sh->mem_trims, 1, __ATOMIC_RELAXED);
  HD_DEBUG("app", "memory trimmed after sessions closed", "closed=%llu released=%d ms=%lld", (unsigned long long)gone,
           released, (long long)(hd_clock_mono_ms() - t0));
#endif
}

int hd_mem_trim_start(hd_app_t *app) {
  mem_trim_t *m = calloc(1, sizeof *m);
  if (!m) return HD_ENOMEM;
  m->app = app;
  m->timer.data = m;
  uv_timer_init(app->srv->loop, &m->timer);
  uv_timer_start(&m->timer, on_tick, HD_MEM_TRIM_PERIOD_MS, HD_MEM_TRIM_PERIOD_MS);
  uv_unref((uv_handle_t *)&m->timer); /* never keeps the loop alive at shutdown */
  app->mem_trim = m;
  return 0;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void hd_mem_trim_stop(hd_app_t *app) {
  mem_trim_t *m = app->mem_trim;
  if (!m) return;
  app->mem_trim = NULL;
  uv_timer_stop(&m->timer);
  uv_close((uv_handle_t *)&m->timer, on_closed);
}
