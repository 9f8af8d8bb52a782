/* The single-node topic log: this node's in-memory history, answered at once (see topic_log.h). */
#include "delivery/topic_log.h"

#include <stdlib.h>

#include "core/error.h"
#include "delivery/history.h"

typedef struct {
  hd_topic_log_t base;
  hd_history_t *history;
} local_log_t;

static int publish(hd_topic_log_t *log, hd_hub_t *from, hd_hub_msg_t *msg, hd_hub_count_fn on_count, void *arg) {
  local_log_t *l = (local_log_t *)log;
  int rc = hd_history_keep(l->history, msg->rooms[0]);
  return rc ? rc : hd_hub_publish(from, msg, NULL, on_count, arg);
}

typedef struct {
  hd_hub_msg_t **msgs;
  size_t count, cap;
} picked_t;

static void pick(hd_hub_msg_t *msg, void *arg) {
  picked_t *p = arg;
  if (p->count == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    hd_hub_msg_t **m = realloc(p->msgs, cap * sizeof(*m));
    if (!m) return;
    p->msgs = m;
    p->cap = cap;
  }
  p->msgs[p->count++] = hd_hub_msg_ref(msg);
}

static int read_log(hd_topic_log_t *log, hd_hub_t *from, const char *topic, const char *member_room, bool replay,
                    uint64_t after, hd_topic_read_fn fn, void *arg) {
  local_log_t *l = (local_log_t *)log;
  int rc = hd_history_keep(l->history, topic);
  if (rc) return rc;
  hd_topic_read_t result = {0};
  picked_t p = {0};
  if (replay) {
    result.complete = hd_history_replay(l->history, topic, member_room, after, pick, &p, &result.top);
  } else {
    result.top = hd_history_top(l->history, topic);
    result.complete = true;
  }
  result.msgs = p.msgs;
  result.count = p.count;
  fn(arg, &result);
  for (size_t i = 0; i < p.count; i++) hd_hub_msg_unref(p.msgs[i]);
  free(p.msgs);
  return 0;
}

static void hold(hd_topic_log_t *log, const char *topic) { hd_history_hold(((local_log_t *)log)->history, topic); }

static void release(hd_topic_log_t *log, const char *topic) {
  hd_history_release(((local_log_t *)log)->history, topic);
}

static void log_free(hd_topic_log_t *log) { free(log); }

static const hd_topic_log_ops_t local_ops = {publish, read_log, hold, release, log_free};

hd_topic_log_t *hd_topic_log_local_new(hd_history_t *history) {
  local_log_t *l = calloc(1, sizeof(*l));
  if (!l) return NULL;
  l->base.ops = &local_ops;
  l->history = history;
  return &l->base;
}
