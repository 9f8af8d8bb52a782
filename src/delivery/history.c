/* Topic sequences and bounded history, shared by the shards of a node (see history.h). */
#include "delivery/history.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/map.h"

typedef struct {
  uint64_t seq;           /* last sequence given */
  uint64_t evicted_seq;   /* highest sequence dropped from the ring */
  hd_hub_msg_t **ring;    /* the last `count` messages */
  uint32_t head, len;
  uint32_t holders;       /* subscribers holding it (hd_history_hold) */
  char name[];
} topic_t;

struct hd_history {
  uv_mutex_t mu;
  hd_map_t topics;        /* name -> topic_t */
  uint32_t count;
  uint64_t max_age_ms;
  uint64_t seq_base;      /* start time (ms) x 1000 */
};

hd_history_t *hd_history_new(uint32_t count, uint64_t max_age_ms) {
  hd_history_t *h = calloc(1, sizeof(*h));
  if (!h) return NULL;
  if (uv_mutex_init(&h->mu)) {
    free(h);
    return NULL;
  }
  h->count = count;
  h->max_age_ms = max_age_ms;
  h->seq_base = (uint64_t)hd_clock_wall_ms() * 1000;
  return h;
}

static void topic_free(void *value, void *arg) {
  topic_t *t = value;
  hd_history_t *h = arg;
  for (uint32_t i = 0; i < t->len; i++) hd_hub_msg_unref(t->ring[(t->head + i) % h->count]);
  free(t->ring);
  free(t);
}

void hd_history_free(hd_history_t *h) {
  if (!h) return;
  hd_map_each(&h->topics, topic_free, h);
  hd_map_free(&h->topics);
  uv_mutex_destroy(&h->mu);
  free(h);
}

static topic_t *topic_get(hd_history_t *h, const char *name, bool create) {
  size_t len = strlen(name);
  topic_t *t = hd_map_get(&h->topics, name, len);
  if (t || !create) return t;
  if (!(t = calloc(1, sizeof(*t) + len + 1))) return NULL;
  memcpy(t->name, name, len + 1);
  /* what came before this process (or before the topic was last freed) is not here */
  uint64_t now_base = (uint64_t)hd_clock_wall_ms() * 1000;
  t->seq = t->evicted_seq = now_base > h->seq_base ? now_base : h->seq_base;
  if (hd_map_put(&h->topics, t->name, len, t)) {
    topic_free(t, h);
    return NULL;
  }
  return t;
}

static void drop_oldest(hd_history_t *h, topic_t *t) {
  hd_hub_msg_t *oldest = t->ring[t->head];
  t->evicted_seq = oldest->seq;
  hd_hub_msg_unref(oldest);
  t->head = (t->head + 1) % h->count;
  t->len--;
}

static void prune(hd_history_t *h, topic_t *t, int64_t now) {
  while (h->max_age_ms && t->len && now - t->ring[t->head]->timestamp > (int64_t)h->max_age_ms) drop_oldest(h, t);
}

int hd_history_keep(hd_history_t *h, const char *topic) {
  uv_mutex_lock(&h->mu);
  topic_t *t = topic_get(h, topic, true);
  int rc = t ? 0 : HD_ENOMEM;
  if (t && h->count && !t->ring) {
    if (!(t->ring = calloc(h->count, sizeof(*t->ring)))) rc = HD_ENOMEM;
    else t->evicted_seq = t->seq; /* what was sequenced before was not kept */
  }
  uv_mutex_unlock(&h->mu);
  return rc;
}

int hd_history_hold(hd_history_t *h, const char *topic) {
  int rc = hd_history_keep(h, topic);
  if (rc) return rc;
  uv_mutex_lock(&h->mu);
  topic_t *t = topic_get(h, topic, false);
  if (t) t->holders++;
  uv_mutex_unlock(&h->mu);
  return t ? 0 : HD_ENOMEM;
}

/* Frees t when nobody holds it and nothing replayable is left; the caller holds the lock. */
static bool drop_if_unused(hd_history_t *h, topic_t *t, int64_t now) {
  if (t->holders) return false;
  if (t->ring) prune(h, t, now);
  if (t->len) return false;
  hd_map_del(&h->topics, t->name, strlen(t->name));
  topic_free(t, h);
  return true;
}

void hd_history_release(hd_history_t *h, const char *topic) {
  uv_mutex_lock(&h->mu);
  topic_t *t = topic_get(h, topic, false);
  if (t && t->holders) t->holders--;
  if (t) drop_if_unused(h, t, hd_clock_wall_ms());
  uv_mutex_unlock(&h->mu);
}

size_t hd_history_sweep(hd_history_t *h) {
  size_t freed = 0;
  int64_t now = hd_clock_wall_ms();
  uv_mutex_lock(&h->mu);
  for (size_t i = 0; i < h->topics.cap; i++) {
    if (!h->topics.slots[i].hash) continue;
    if (drop_if_unused(h, h->topics.slots[i].value, now)) {
      freed++;
      i--; /* the map's backward shift may have moved another entry into this slot */
    }
  }
  uv_mutex_unlock(&h->mu);
  return freed;
}

int hd_history_append(hd_history_t *h, hd_hub_msg_t *msg) {
  uv_mutex_lock(&h->mu);
  topic_t *t = topic_get(h, msg->rooms[0], false);
  if (!t) { /* not a topic anyone subscribed or published to: no sequence */
    uv_mutex_unlock(&h->mu);
    return 0;
  }
  msg->seq = ++t->seq;
  if (t->ring) {
    prune(h, t, msg->timestamp);
    if (t->len == h->count) drop_oldest(h, t);
    t->ring[(t->head + t->len) % h->count] = hd_hub_msg_ref(msg);
    t->len++;
  }
  uv_mutex_unlock(&h->mu);
  return 0;
}

uint64_t hd_history_top(hd_history_t *h, const char *topic) {
  uv_mutex_lock(&h->mu);
  topic_t *t = topic_get(h, topic, false);
  uint64_t seq = t ? t->seq : h->seq_base;
  uv_mutex_unlock(&h->mu);
  return seq;
}

bool hd_history_replay(hd_history_t *h, const char *topic, const char *member_room, uint64_t after_seq,
                       void (*fn)(hd_hub_msg_t *msg, void *arg), void *arg, uint64_t *top) {
  uv_mutex_lock(&h->mu);
  topic_t *t = topic_get(h, topic, false);
  if (!t) {
    if (top) *top = h->seq_base;
    uv_mutex_unlock(&h->mu);
    return after_seq == 0;
  }
  if (t->ring) prune(h, t, hd_clock_wall_ms());
  bool complete = after_seq >= t->evicted_seq && after_seq <= t->seq;
  if (top) *top = t->seq;
  hd_hub_msg_t **picked = fn && t->len ? malloc(t->len * sizeof(*picked)) : NULL;
  uint32_t n = 0;
  for (uint32_t i = 0; picked && i < t->len; i++) {
    hd_hub_msg_t *msg = t->ring[(t->head + i) % h->count];
    if (msg->seq <= after_seq) continue;
    if (!member_room || hd_hub_msg_targets(msg, member_room)) picked[n++] = hd_hub_msg_ref(msg);
  }
  uv_mutex_unlock(&h->mu);
  for (uint32_t i = 0; i < n; i++) {
    fn(picked[i], arg);
    hd_hub_msg_unref(picked[i]);
  }
  free(picked);
  return complete;
}

size_t hd_history_topic_count(hd_history_t *h) {
  uv_mutex_lock(&h->mu);
  size_t n = h->topics.count;
  uv_mutex_unlock(&h->mu);
  return n;
}
