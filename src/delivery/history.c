/* Topic sequences and bounded history, shared by the shards of a node (see history.h). Each kept
 * message is an entry in its topic's queue (oldest first) and in the node-wide queue (oldest first,
 * doubly linked): a topic's own bounds drop its oldest, the byte bound drops the node's oldest. */
#include "delivery/history.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/map.h"

#define SWEEP_EVERY_MS 10000 /* topics past their age, unheld and empty, are looked for this often */
#define IDLE_MS 10000        /* an unheld, empty topic is forgotten once unused this long */
#define UNSAVED_MAX 100000   /* messages waiting for hd_history_take_unsaved; beyond them some are lost */

typedef struct entry entry_t;
typedef struct topic topic_t;

struct entry {
  hd_hub_msg_t *msg;
  topic_t *topic;
  entry_t *next_in_topic;
  entry_t *prev, *next;   /* node-wide, in append order */
  size_t bytes;
};

struct topic {
  uint64_t seq;           /* last sequence given */
  uint64_t evicted_seq;   /* highest sequence dropped (or never kept) */
  entry_t *head, *tail;   /* what is kept, oldest first */
  uint32_t len;
  uint32_t holders;       /* subscriptions (hd_history_hold) */
  bool keeps;             /* kept from now on (hd_history_keep) */
  int64_t used_ms;        /* last keep, hold, append or replay */
  char name[];
};

struct hd_history {
  uv_mutex_t mu;
  hd_map_t topics;        /* name -> topic_t */
  uint32_t count;
  uint64_t max_age_ms;
  size_t max_bytes, bytes;
  entry_t *oldest, *newest;
  uint64_t seq_base;      /* start time (ms) x 1000 */
  uint64_t seq_high;      /* highest sequence of a forgotten topic: a topic made again starts above it */
  int64_t swept_ms;
  bool saving;            /* kept messages also wait in unsaved (the node persists its history) */
  bool unsaved_lost;
  hd_hub_msg_t **unsaved;
  size_t unsaved_count, unsaved_cap;
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
  h->max_bytes = SIZE_MAX;
  h->seq_base = (uint64_t)hd_clock_wall_ms() * 1000;
  h->swept_ms = hd_clock_wall_ms();
  return h;
}

void hd_history_set_max_bytes(hd_history_t *h, size_t max_bytes) {
  uv_mutex_lock(&h->mu);
  h->max_bytes = max_bytes ? max_bytes : SIZE_MAX;
  uv_mutex_unlock(&h->mu);
}

/* Drops t's oldest entry. */
static void drop_oldest(hd_history_t *h, topic_t *t) {
  entry_t *e = t->head;
  t->head = e->next_in_topic;
  if (!t->head) t->tail = NULL;
  t->len--;
  if (e->msg->seq > t->evicted_seq) t->evicted_seq = e->msg->seq;
  if (e->prev) e->prev->next = e->next;
  else h->oldest = e->next;
  if (e->next) e->next->prev = e->prev;
  else h->newest = e->prev;
  h->bytes -= e->bytes;
  hd_hub_msg_unref(e->msg);
  free(e);
}

static void topic_free(void *value, void *arg) {
  topic_t *t = value;
  hd_history_t *h = arg;
  while (t->head) drop_oldest(h, t);
  free(t);
}

void hd_history_free(hd_history_t *h) {
  if (!h) return;
  for (size_t i = 0; i < h->unsaved_count; i++) hd_hub_msg_unref(h->unsaved[i]);
  free(h->unsaved);
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
  /* what came before this process (or before the topic was forgotten) is not here */
  t->seq = t->evicted_seq = h->seq_base > h->seq_high ? h->seq_base : h->seq_high;
  if (hd_map_put(&h->topics, t->name, len, t)) {
    free(t);
    return NULL;
  }
  return t;
}

static void prune(hd_history_t *h, topic_t *t, int64_t now) {
  while (h->max_age_ms && t->len && now - t->head->msg->timestamp > (int64_t)h->max_age_ms) drop_oldest(h, t);
}

typedef struct {
  hd_history_t *h;
  int64_t now;
  topic_t **gone;
  size_t n, cap;
} sweep_t;

/* Prunes t by age and collects it when it can be forgotten (the map is not changed while walked). */
static void sweep_one(void *value, void *arg) {
  sweep_t *sw = arg;
  topic_t *t = value;
  prune(sw->h, t, sw->now);
  if (t->holders || t->len || sw->now - t->used_ms < IDLE_MS) return;
  if (sw->n == sw->cap) {
    size_t cap = sw->cap ? sw->cap * 2 : 16;
    topic_t **g = realloc(sw->gone, cap * sizeof(*g));
    if (!g) return;
    sw->gone = g;
    sw->cap = cap;
  }
  sw->gone[sw->n++] = t;
}

/* Forgets topics nobody holds whose history is empty (after their age bound), unused for IDLE_MS. */
static void sweep(hd_history_t *h, int64_t now) {
  sweep_t sw = {h, now, NULL, 0, 0};
  h->swept_ms = now;
  hd_map_each(&h->topics, sweep_one, &sw);
  for (size_t i = 0; i < sw.n; i++) {
    topic_t *t = sw.gone[i];
    if (t->seq > h->seq_high) h->seq_high = t->seq;
    hd_map_del(&h->topics, t->name, strlen(t->name));
    topic_free(t, h);
  }
  free(sw.gone);
}

static void maybe_sweep(hd_history_t *h, int64_t now) {
  if (now - h->swept_ms >= SWEEP_EVERY_MS) sweep(h, now);
}

int hd_history_keep(hd_history_t *h, const char *topic) {
  int64_t now = hd_clock_wall_ms();
  uv_mutex_lock(&h->mu);
  maybe_sweep(h, now);
  topic_t *t = topic_get(h, topic, true);
  if (t && !t->keeps) {
    t->keeps = true;
    t->evicted_seq = t->seq; /* what was sequenced before was not kept */
  }
  if (t) t->used_ms = now;
  uv_mutex_unlock(&h->mu);
  return t ? 0 : HD_ENOMEM;
}

int hd_history_hold(hd_history_t *h, const char *topic) {
  int rc = hd_history_keep(h, topic);
  uv_mutex_lock(&h->mu);
  topic_t *t = rc ? NULL : topic_get(h, topic, true);
  if (t) t->holders++;
  uv_mutex_unlock(&h->mu);
  return t ? 0 : HD_ENOMEM;
}

void hd_history_release(hd_history_t *h, const char *topic) {
  uv_mutex_lock(&h->mu);
  topic_t *t = topic_get(h, topic, false);
  if (t && t->holders) {
    t->holders--;
    t->used_ms = hd_clock_wall_ms();
    if (!t->holders && !t->len) { /* nothing to replay and nobody left: forgotten now */
      if (t->seq > h->seq_high) h->seq_high = t->seq;
      hd_map_del(&h->topics, t->name, strlen(t->name));
      topic_free(t, h);
    }
  }
  uv_mutex_unlock(&h->mu);
}

/* What a kept message costs, roughly: the message, its arguments and one encoded frame of them. */
static size_t msg_bytes(const hd_hub_msg_t *msg) {
  return sizeof(*msg) + (size_t)msg->rows * HD_HUB_ENCODINGS * sizeof(void *) + 2 * msg->args_len + 256;
}

/* Keeps msg (its sequence set) as t's newest; false when out of memory. */
static bool keep_entry(hd_history_t *h, topic_t *t, hd_hub_msg_t *msg) {
  entry_t *e = calloc(1, sizeof(*e));
  if (!e) return false;
  prune(h, t, msg->timestamp);
  if (t->len == h->count) drop_oldest(h, t);
  *e = (entry_t){hd_hub_msg_ref(msg), t, NULL, h->newest, NULL, msg_bytes(msg)};
  if (t->tail) t->tail->next_in_topic = e;
  else t->head = e;
  t->tail = e;
  t->len++;
  if (h->newest) h->newest->next = e;
  else h->oldest = e;
  h->newest = e;
  h->bytes += e->bytes;
  while (h->bytes > h->max_bytes && h->oldest != e) drop_oldest(h, h->oldest->topic);
  return true;
}

/* Queues msg for hd_history_take_unsaved. */
static void remember_unsaved(hd_history_t *h, hd_hub_msg_t *msg) {
  if (h->unsaved_count == h->unsaved_cap) {
    size_t cap = h->unsaved_cap ? h->unsaved_cap * 2 : 64;
    hd_hub_msg_t **u = cap <= UNSAVED_MAX ? realloc(h->unsaved, cap * sizeof(*u)) : NULL;
    if (!u) {
      h->unsaved_lost = true;
      return;
    }
    h->unsaved = u;
    h->unsaved_cap = cap;
  }
  h->unsaved[h->unsaved_count++] = hd_hub_msg_ref(msg);
}

int hd_history_append(hd_history_t *h, hd_hub_msg_t *msg) {
  uv_mutex_lock(&h->mu);
  maybe_sweep(h, msg->timestamp);
  topic_t *t = topic_get(h, msg->rooms[0], false);
  if (!t) { /* not a topic anyone subscribed or published to: no sequence */
    uv_mutex_unlock(&h->mu);
    return 0;
  }
  msg->seq = ++t->seq;
  t->used_ms = msg->timestamp;
  if (h->count && t->keeps && h->saving) remember_unsaved(h, msg);
  if (h->count && t->keeps && !keep_entry(h, t, msg)) { /* out of memory: not kept, so not replayable */
    while (t->head) drop_oldest(h, t);
    t->evicted_seq = msg->seq;
  }
  uv_mutex_unlock(&h->mu);
  return 0;
}

void hd_history_set_saving(hd_history_t *h, bool on) {
  uv_mutex_lock(&h->mu);
  h->saving = on;
  uv_mutex_unlock(&h->mu);
}

void hd_history_take_unsaved(hd_history_t *h, hd_hub_msg_t ***out, size_t *n, bool *lost) {
  uv_mutex_lock(&h->mu);
  *out = h->unsaved;
  *n = h->unsaved_count;
  *lost = h->unsaved_lost;
  h->unsaved = NULL;
  h->unsaved_count = h->unsaved_cap = 0;
  h->unsaved_lost = false;
  uv_mutex_unlock(&h->mu);
}

int hd_history_restore(hd_history_t *h, hd_hub_msg_t *msg, bool clean) {
  uv_mutex_lock(&h->mu);
  topic_t *t = msg->room_count && msg->seq ? topic_get(h, msg->rooms[0], true) : NULL;
  if (!t) {
    uv_mutex_unlock(&h->mu);
    return msg->room_count && msg->seq ? HD_ENOMEM : HD_EINVAL;
  }
  if (!t->keeps) { /* the topic's first: what came before it is not here */
    t->keeps = true;
    t->evicted_seq = msg->seq - 1;
  }
  t->used_ms = hd_clock_wall_ms();
  if ((!t->tail || msg->seq > t->tail->msg->seq) && h->count) {
    keep_entry(h, t, msg);
    if (clean) t->seq = msg->seq; /* everything given before the stop was saved: no gap */
    else if (msg->seq > t->seq) t->seq = msg->seq;
    if (!clean) t->evicted_seq = t->seq; /* what came last before a crash may be missing */
  }
  uv_mutex_unlock(&h->mu);
  return 0;
}

uint64_t hd_history_top(hd_history_t *h, const char *topic) {
  uv_mutex_lock(&h->mu);
  topic_t *t = topic_get(h, topic, false);
  uint64_t seq = t ? t->seq : h->seq_base > h->seq_high ? h->seq_base : h->seq_high;
  uv_mutex_unlock(&h->mu);
  return seq;
}

bool hd_history_replay(hd_history_t *h, const char *topic, const char *member_room, uint64_t after_seq,
                       void (*fn)(hd_hub_msg_t *msg, void *arg), void *arg, uint64_t *top) {
  uv_mutex_lock(&h->mu);
  topic_t *t = topic_get(h, topic, false);
  if (!t) {
    if (top) *top = h->seq_base > h->seq_high ? h->seq_base : h->seq_high;
    uv_mutex_unlock(&h->mu);
    return after_seq == 0;
  }
  int64_t now = hd_clock_wall_ms();
  prune(h, t, now);
  t->used_ms = now;
  bool complete = after_seq >= t->evicted_seq && after_seq <= t->seq;
  if (top) *top = t->seq;
  hd_hub_msg_t **picked = fn && t->len ? malloc(t->len * sizeof(*picked)) : NULL;
  uint32_t n = 0;
  for (entry_t *e = picked ? t->head : NULL; e; e = e->next_in_topic) {
    if (e->msg->seq <= after_seq) continue;
    if (!member_room || hd_hub_msg_targets(e->msg, member_room)) picked[n++] = hd_hub_msg_ref(e->msg);
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

size_t hd_history_bytes(hd_history_t *h) {
  uv_mutex_lock(&h->mu);
  size_t n = h->bytes;
  uv_mutex_unlock(&h->mu);
  return n;
}
