/* Client message-id windows shared by the shards of a node (see dedupe.h). */
#include "delivery/dedupe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/clock.h"
#include "core/map.h"

struct hd_dedupe_window {
  char key[208];
  char **seen;          /* ring of the last `window` ids (allocated on first use) */
  uint32_t next, count;
  uint32_t refs;        /* connections holding it */
  uint64_t released_ms;
};

struct hd_dedupe {
  uv_mutex_t mu;
  hd_map_t windows;     /* key -> hd_dedupe_window_t */
  uint32_t window;
  uint64_t keep_ms;
};

hd_dedupe_t *hd_dedupe_new(uint32_t window, uint64_t keep_ms) {
  hd_dedupe_t *d = calloc(1, sizeof(*d));
  if (!d) return NULL;
  if (uv_mutex_init(&d->mu)) {
    free(d);
    return NULL;
  }
  d->window = window ? window : 1;
  d->keep_ms = keep_ms;
  return d;
}

static void window_free(void *value, void *arg) {
  hd_dedupe_window_t *w = value;
  for (uint32_t i = 0; w->seen && i < w->count; i++) free(w->seen[i]);
  free(w->seen);
  free(w);
}

void hd_dedupe_free(hd_dedupe_t *d) {
  if (!d) return;
  hd_map_each(&d->windows, window_free, NULL);
  hd_map_free(&d->windows);
  uv_mutex_destroy(&d->mu);
  free(d);
}

hd_dedupe_window_t *hd_dedupe_acquire(hd_dedupe_t *d, const char *key) {
  uv_mutex_lock(&d->mu);
  hd_dedupe_window_t *w = hd_map_get(&d->windows, key, strlen(key));
  if (!w && (w = calloc(1, sizeof(*w)))) {
    snprintf(w->key, sizeof w->key, "%s", key);
    if (hd_map_put(&d->windows, w->key, strlen(w->key), w)) {
      free(w);
      w = NULL;
    }
  }
  if (w) w->refs++;
  uv_mutex_unlock(&d->mu);
  return w;
}

void hd_dedupe_release(hd_dedupe_t *d, hd_dedupe_window_t *w) {
  if (!w) return;
  uv_mutex_lock(&d->mu);
  if (!--w->refs) w->released_ms = hd_clock_mono_ms();
  uv_mutex_unlock(&d->mu);
}

bool hd_dedupe_seen(hd_dedupe_t *d, hd_dedupe_window_t *w, const char *id) {
  if (!w) return false;
  bool seen = false;
  uv_mutex_lock(&d->mu);
  for (uint32_t i = 0; i < w->count && !seen; i++) seen = !strcmp(w->seen[i], id);
  uv_mutex_unlock(&d->mu);
  return seen;
}

void hd_dedupe_remember(hd_dedupe_t *d, hd_dedupe_window_t *w, const char *id) {
  char *copy = w ? strdup(id) : NULL;
  if (!copy) return;
  uv_mutex_lock(&d->mu);
  if (!w->seen && !(w->seen = calloc(d->window, sizeof(*w->seen)))) {
    uv_mutex_unlock(&d->mu);
    free(copy);
    return;
  }
  free(w->seen[w->next]);
  w->seen[w->next] = copy;
  w->next = (w->next + 1) % d->window;
  if (w->count < d->window) w->count++;
  uv_mutex_unlock(&d->mu);
}

void hd_dedupe_expire(hd_dedupe_t *d) {
  uint64_t now = hd_clock_mono_ms();
  uv_mutex_lock(&d->mu);
  for (size_t i = 0; i < d->windows.cap; i++) {
    hd_dedupe_window_t *w = d->windows.slots[i].value;
    if (d->windows.slots[i].hash && !w->refs && now - w->released_ms > d->keep_ms) {
      hd_map_del(&d->windows, w->key, strlen(w->key));
      window_free(w, NULL);
      i--; /* backward shift may have moved another entry here */
    }
  }
  uv_mutex_unlock(&d->mu);
}

size_t hd_dedupe_count(hd_dedupe_t *d) {
  uv_mutex_lock(&d->mu);
  size_t n = d->windows.count;
  uv_mutex_unlock(&d->mu);
  return n;
}
