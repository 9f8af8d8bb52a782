/* The JSON-protocol inbox in the store (see json_inbox.h). */
#include "app/json_inbox.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static void put(void *arg, const char *sub, const char *message_id, const char *frame, size_t len) {
  hd_json_inbox_t *in = arg;
  char *copy = strndup(frame, len); /* the store takes NUL-terminated text */
  if (copy) hd_store_inbox_put(in->store, sub, message_id, copy, len, in->max, NULL, NULL);
  free(copy);
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

static int take(void *arg, const char *sub, hd_jp_inbox_cb cb, void *cb_arg) {
  taking_t *t = malloc(sizeof(*t));
  if (!t) return HD_ENOMEM;
  *t = (taking_t){cb, cb_arg};
  int rc = hd_store_inbox_take(((hd_json_inbox_t *)arg)->store, sub, taken, t);
  if (rc) free(t);
  return rc;
}

hd_jp_inbox_t hd_json_inbox(hd_json_inbox_t *in) {
  if (!in->max) return (hd_jp_inbox_t){0};
  return (hd_jp_inbox_t){put, remove_one, take, in};
}
