/* Connections per user over the node (see user_conns.h). */
#include "app/user_conns.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/error.h"
#include "core/map.h"

typedef struct {
  uint32_t count;
  char sub[]; /* the map's key */
} entry_t;

struct hd_user_conns {
  uv_mutex_t mu;
  uint32_t max;
  hd_map_t by_sub; /* sub -> entry_t (under mu) */
};

hd_user_conns_t *hd_user_conns_new(uint32_t max) {
  hd_user_conns_t *u = calloc(1, sizeof(*u));
  if (!u) return NULL;
  if (uv_mutex_init(&u->mu)) {
    free(u);
    return NULL;
  }
  u->max = max;
  return u;
}

int hd_user_conns_take(hd_user_conns_t *u, const char *sub) {
  size_t len = strlen(sub);
  int rc = 0;
  uv_mutex_lock(&u->mu);
  entry_t *e = hd_map_get(&u->by_sub, sub, len);
  if (e && u->max && e->count >= u->max) {
    rc = HD_ERANGE;
  } else if (e) {
    e->count++;
  } else if (!(e = malloc(sizeof(*e) + len + 1))) {
    rc = HD_ENOMEM;
  } else {
    e->count = 1;
    memcpy(e->sub, sub, len + 1);
    if (hd_map_put(&u->by_sub, e->sub, len, e)) {
      free(e);
      rc = HD_ENOMEM;
    }
  }
  uv_mutex_unlock(&u->mu);
  return rc;
}

void hd_user_conns_give(hd_user_conns_t *u, const char *sub) {
  size_t len = strlen(sub);
  uv_mutex_lock(&u->mu);
  entry_t *e = hd_map_get(&u->by_sub, sub, len);
  if (e && --e->count == 0) free(hd_map_del(&u->by_sub, sub, len));
  uv_mutex_unlock(&u->mu);
}

size_t hd_user_conns_users(hd_user_conns_t *u) {
  uv_mutex_lock(&u->mu);
  size_t n = u->by_sub.count;
  uv_mutex_unlock(&u->mu);
  return n;
}

static void free_entry(void *value, void *arg) { free(value); }

void hd_user_conns_free(hd_user_conns_t *u) {
  if (!u) return;
  hd_map_each(&u->by_sub, free_entry, NULL);
  hd_map_free(&u->by_sub);
  uv_mutex_destroy(&u->mu);
  free(u);
}
