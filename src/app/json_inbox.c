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

void hd_json_inbox_flush(void *arg) {
  hd_json_inbox_t *in = arg;
  for (size_t off = 0; off < in->count;) {
    size_t n = in->count - off < HD_STORE_BATCH_MAX ? in->count - off : HD_STORE_BATCH_MAX;
    int rc = hd_store_inbox_put_many(in->store, in->pending + off, n, in->max, NULL, NULL);
    if (rc) HD_WARN("json", "inbox entries not stored", "count=%zu err=%s", n, hd_errname(rc));
    else in->batches++, in->entries += n;
    off += n;
  }
  drop_entries(in->pending, in->count);
  in->count = 0;
}

void hd_json_inbox_close(hd_json_inbox_t *in) {
  if (in->store) hd_json_inbox_flush(in);
  free(in->pending);
  in->pending = NULL;
  in->cap = 0;
}

static void put(void *arg, const char *sub, const char *message_id, const char *frame, size_t len) {
  hd_json_inbox_t *in = arg;
  if (in->count == in->cap) {
    size_t cap = in->cap ? in->cap * 2 : 16;
    hd_store_inbox_entry_t *p = realloc(in->pending, cap * sizeof(*p));
    if (!p) return;
    in->pending = p;
    in->cap = cap;
  }
  hd_store_inbox_entry_t e = {strdup(sub), strdup(message_id), strndup(frame, len), len};
  if (!e.user_sub || !e.message_id || !e.frame) {
    drop_entries(&e, 1);
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
  void (*done)(void *arg, int status);
  void *arg;
} keeping_t;

static void kept(void *arg, int status, const hd_store_count_t *res) {
  keeping_t *k = arg;
  k->done(k->arg, status);
  free(k);
}

static int keep(void *arg, const char *sub, const char *message_id, const char *frame, size_t len,
                void (*done)(void *done_arg, int status), void *done_arg) {
  hd_json_inbox_t *in = arg;
  keeping_t *k = malloc(sizeof(*k));
  if (!k) return HD_ENOMEM;
  *k = (keeping_t){done, done_arg};
  hd_store_inbox_entry_t e = {sub, message_id, frame, len};
  int rc = hd_store_inbox_put_many(in->store, &e, 1, in->max, kept, k);
  if (rc) free(k);
  return rc;
}

hd_jp_inbox_t hd_json_inbox(hd_json_inbox_t *in) {
  if (!in->max) return (hd_jp_inbox_t){0};
  return (hd_jp_inbox_t){put, remove_one, take, keep, in};
}
