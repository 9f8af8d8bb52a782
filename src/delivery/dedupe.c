/* Duplicate suppression (see dedupe.h): a map of client key -> ring of ids, under one mutex. */
#include "delivery/dedupe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/map.h"

struct hd_dedupe_client {
  char key[HD_DEDUPE_KEY_MAX + 1];
  char **seen;         /* ring of the last `window` ids, allocated on first remember */
  uint32_t next, count;
  uint32_t refs;       /* connections holding it */
  uint64_t released_ms;
};

struct hd_dedupe {
  uv_mutex_t lock;
  hd_map_t clients;    /* key -> hd_dedupe_client_t */
  uint32_t window;
  uint64_t keep_ms;
};

hd_dedupe_t *hd_dedupe_new(uint32_t window, uint64_t keep_ms) {
  hd_dedupe_t *d = calloc(1, sizeof(*d));
  if (!d) return NULL;
  if (uv_mutex_init(&d->lock)) {
    free(d);
    return NULL;
  }
  d->window = window ? window : 1;
  d->keep_ms = keep_ms;
  return d;
}

static void client_free(void *value, void *arg) {
  hd_dedupe_client_t *c = value;
  for (uint32_t i = 0; c->seen && i < c->count; i++) free(c->seen[i]);
  free(c->seen);
  free(c);
}

void hd_dedupe_free(hd_dedupe_t *d) {
  if (!d) return;
  hd_map_each(&d->clients, client_free, NULL);
  hd_map_free(&d->clients);
  uv_mutex_destroy(&d->lock);
  free(d);
}

hd_dedupe_client_t *hd_dedupe_acquire(hd_dedupe_t *d, const char *key) {
  size_t len = strlen(key);
  if (len > HD_DEDUPE_KEY_MAX) return NULL;
  uv_mutex_lock(&d->lock);
  hd_dedupe_client_t *c = hd_map_get(&d->clients, key, len);
  if (!c && (c = calloc(1, sizeof(*c)))) {
    memcpy(c->key, key, len + 1);
    if (hd_map_put(&d->clients, c->key, len, c)) {
      free(c);
      c = NULL;
    }
  }
  if (c) c->refs++;
  uv_mutex_unlock(&d->lock);
  return c;
}

bool hd_dedupe_seen(hd_dedupe_t *d, hd_dedupe_client_t *c, const char *id) {
  if (!c) return false;
  bool seen = false;
  uv_mutex_lock(&d->lock);
  for (uint32_t i = 0; !seen && i < c->count; i++) seen = !strcmp(c->seen[i], id);
  uv_mutex_unlock(&d->lock);
  return seen;
}

void hd_dedupe_remember(hd_dedupe_t *d, hd_dedupe_client_t *c, const char *id) {
  if (!c) return;
  char *copy = strdup(id);
  if (!copy) return;
  uv_mutex_lock(&d->lock);
  if (!c->seen) c->seen = calloc(d->window, sizeof(*c->seen));
  if (c->seen) {
    free(c->seen[c->next]);
    c->seen[c->next] = copy;
    copy = NULL;
    c->next = (c->next + 1) % d->window;
    if (c->count < d->window) c->count++;
  }
  uv_mutex_unlock(&d->lock);
  free(copy);
}

void hd_dedupe_release(hd_dedupe_t *d, hd_dedupe_client_t *c, uint64_t now_ms) {
  if (!c) return;
  uv_mutex_lock(&d->lock);
  if (!--c->refs) c->released_ms = now_ms;
  uv_mutex_unlock(&d->lock);
}

size_t hd_dedupe_expire(hd_dedupe_t *d, uint64_t now_ms) {
  size_t freed = 0;
  uv_mutex_lock(&d->lock);
  for (size_t i = 0; i < d->clients.cap; i++) {
    hd_dedupe_client_t *c = d->clients.slots[i].value;
    if (d->clients.slots[i].hash && !c->refs && now_ms > c->released_ms &&
        now_ms - c->released_ms > d->keep_ms) {
      hd_map_del(&d->clients, c->key, strlen(c->key));
      client_free(c, NULL);
      freed++;
      i--; /* the backward shift may have moved another entry here */
    }
  }
  uv_mutex_unlock(&d->lock);
  return freed;
}

size_t hd_dedupe_count(hd_dedupe_t *d) {
  uv_mutex_lock(&d->lock);
  size_t n = d->clients.count;
  uv_mutex_unlock(&d->lock);
  return n;
}
