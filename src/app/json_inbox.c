/* The JSON-protocol inbox in the store, puts batched per loop iteration (see json_inbox.h). */
#include "app/json_inbox.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

static void drop_entries(hd_store_inbox_entry_t *e, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free((char *)e[i].user_sub);
    free((char *)e[i].message_id);
    free((char *)e[i].frame);
  }
}

/* One flush: its waiters are told once each of its store requests is answered. */
typedef struct {
  hd_json_inbox_t *in;             /* lives until the store handle is closed */
  hd_json_inbox_waiter_t *waiters;
  size_t count;
  size_t remaining;                /* store requests not answered yet, +1 while sending */
  int status;                      /* the first failure */
} flush_t;

static void flush_answered(flush_t *f, int status) {
  if (status && !f->status) f->status = status;
  if (--f->remaining) return;
  for (size_t i = 0; i < f->count; i++) f->waiters[i].done(f->waiters[i].arg, f->status);
  free(f->waiters);
  free(f);
}

static void put_answered(void *arg, int status, const hd_store_inbox_puts_t *res) {
  flush_t *f = arg;
  if (!status) f->in->dropped += (uint64_t)res->dropped;
  flush_answered(f, status);
}

void hd_json_inbox_flush(void *arg) {
  hd_json_inbox_t *in = arg;
  if (!in->count && !in->waiter_count) return;
  flush_t *f = malloc(sizeof(*f)); /* NULL: sent all the same, its drops not counted */
  if (f) {
    *f = (flush_t){in, in->waiters, in->waiter_count, 1, in->lost};
    in->waiters = NULL;
    in->waiter_count = in->waiter_cap = 0;
  }
  int failed = in->lost;
  for (size_t off = 0; off < in->count;) {
    size_t n = in->count - off < HD_STORE_BATCH_MAX ? in->count - off : HD_STORE_BATCH_MAX;
    int rc = hd_store_inbox_put_many(in->store, in->pending + off, n, in->max, f ? put_answered : NULL, f);
    if (rc) {
      HD_WARN("json", "inbox entries not stored", "count=%zu err=%s", n, hd_errname(rc));
      failed = rc;
    } else {
      in->batches++, in->entries += n;
      if (f) f->remaining++;
    }
    off += n;
  }
  drop_entries(in->pending, in->count);
  in->count = 0;
  in->lost = 0;
  if (f) flush_answered(f, failed);
  for (size_t i = 0; i < in->waiter_count; i++) in->waiters[i].done(in->waiters[i].arg, HD_ENOMEM); /* no flush_t */
  in->waiter_count = 0;
}

int hd_json_inbox_persisted(void *arg, void (*done)(void *done_arg, int status), void *done_arg) {
  hd_json_inbox_t *in = arg;
  if (!in->count && !in->lost) return HD_ENOTFOUND;
  if (in->waiter_count == in->waiter_cap) {
    size_t cap = in->waiter_cap ? in->waiter_cap * 2 : 8;
    hd_json_inbox_waiter_t *w = realloc(in->waiters, cap * sizeof(*w));
    if (!w) return HD_ENOMEM;
    in->waiters = w;
    in->waiter_cap = cap;
  }
  in->waiters[in->waiter_count++] = (hd_json_inbox_waiter_t){done, done_arg};
  if (in->srv) hd_server_wake(in->srv); /* the flush runs in this loop turn's check phase, or the next */
  return 0;
}

void hd_json_inbox_close(hd_json_inbox_t *in) {
  if (in->store) hd_json_inbox_flush(in);
  free(in->pending);
  in->pending = NULL;
  in->cap = 0;
  free(in->waiters);
  in->waiters = NULL;
  in->waiter_cap = 0;
}

static void put(void *arg, const char *sub, const char *message_id, const char *frame, size_t len) {
  hd_json_inbox_t *in = arg;
  if (in->count == in->cap) {
    size_t cap = in->cap ? in->cap * 2 : 16;
    hd_store_inbox_entry_t *p = realloc(in->pending, cap * sizeof(*p));
    if (!p) {
      in->lost = HD_ENOMEM;
      return;
    }
    in->pending = p;
    in->cap = cap;
  }
  hd_store_inbox_entry_t e = {strdup(sub), strdup(message_id), strndup(frame, len), len};
  if (!e.user_sub || !e.message_id || !e.frame) {
    drop_entries(&e, 1);
    in->lost = HD_ENOMEM;
    return;
  }
  in->pending[in->count++] = e;
}

static void remove_one(void *arg, const char *sub, const char *message_id) {
  hd_store_inbox_remove(((hd_json_inbox_t *)arg)->store, sub, message_id, NULL, NULL);
}

typedef struct {
  hd_jp_inbox_cb cb;
  void *arg;
} taking_t;

static void taken(void *arg, int status, const hd_store_inbox_t *res) {
  taking_t *t = arg;
  hd_jp_inbox_item_t *items = !status && res->count ? calloc(res->count, sizeof(*items)) : NULL;
  size_t n = items ? res->count : 0;
  for (size_t i = 0; i < n; i++)
    items[i] = (hd_jp_inbox_item_t){res->items[i].message_id, res->items[i].frame, res->items[i].frame_len};
  t->cb(t->arg, status ? status : (res->count && !items ? HD_ENOMEM : 0), items, n);
  free(items);
  free(t);
}

static int take(void *arg, const char *sub, size_t limit, hd_jp_inbox_cb cb, void *cb_arg) {
  hd_json_inbox_t *in = arg;
  hd_json_inbox_flush(in); /* what this iteration delivered is in the inbox before it is read */
  taking_t *t = malloc(sizeof(*t));
  if (!t) return HD_ENOMEM;
  *t = (taking_t){cb, cb_arg};
  int rc = hd_store_inbox_take_page(in->store, sub, (int64_t)limit, taken, t);
  if (rc) free(t);
  return rc;
}

typedef struct {
  hd_json_inbox_t *in;
  void (*done)(void *arg, int status);
  void *arg;
} keeping_t;

static void kept(void *arg, int status, const hd_store_inbox_puts_t *res) {
  keeping_t *k = arg;
  if (!status) k->in->dropped += (uint64_t)res->dropped;
  k->done(k->arg, status);
  free(k);
}

static int keep(void *arg, const char *sub, const char *message_id, const char *frame, size_t len,
                void (*done)(void *done_arg, int status), void *done_arg) {
  hd_json_inbox_t *in = arg;
  keeping_t *k = malloc(sizeof(*k));
  if (!k) return HD_ENOMEM;
  *k = (keeping_t){in, done, done_arg};
  hd_store_inbox_entry_t e = {sub, message_id, frame, len};
  int rc = hd_store_inbox_put_many(in->store, &e, 1, in->max, kept, k);
  if (rc) free(k);
  return rc;
}

hd_jp_inbox_t hd_json_inbox(hd_json_inbox_t *in) {
  if (!in->max) return (hd_jp_inbox_t){0};
  return (hd_jp_inbox_t){put, remove_one, take, keep, in};
}
