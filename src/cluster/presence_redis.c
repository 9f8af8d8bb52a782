/* Cluster-wide presence in Redis (see presence_redis.h). */
#include "cluster/presence_redis.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <hiredis.h>
#pragma GCC diagnostic pop

#include "cluster/heartbeats.h"
#include "cluster/redis.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"

#define KEY_TTL_MS 60000 /* both keys vanish when no node has touched them for this long */

/* KEYS: the hash, the heartbeat set. ARGV: tag, this node's entry ("" = unchanged), dead after ms,
 * key TTL ms. Removes the dead, writes the heartbeat (and the entry), and returns {now_ms, missing,
 * tag, seen_ms, entry, ...} on Redis's clock; missing = 1 when this node's entry is not there (Redis
 * restarted, or the node was silent too long): the heartbeat is then not written, the caller writes
 * the entry again. */
static const char script[] = HD_HEARTBEATS_LUA_HEAD
    "local flag = 0\n" /* missing */
    "if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "elseif redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then flag = 1 end\n"
    "if flag == 0 then\n"
    "  redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[4]); redis.call('PEXPIRE', KEYS[2], ARGV[4])\n"
    "end\n" HD_HEARTBEATS_LUA_TAIL;

/* KEYS: the hash, the heartbeat set. ARGV: tag. This node leaves. */
static const char leave_script[] =
    "redis.call('HDEL', KEYS[1], ARGV[1]); redis.call('ZREM', KEYS[2], ARGV[1]); return 0\n";

struct hd_presence_redis {
  hd_adapter_t *redis;
  uv_loop_t *loop;
  hd_sbuf_t hash_key, seen_key;
  char tag[4];
  hd_presence_redis_hooks_t hooks;
  uv_timer_t tick, soon;
  uv_async_t wake;
  uv_mutex_t lock;           /* started/closed against hd_presence_redis_changed on other threads */
  bool started, closed;      /* under lock */
  bool stopping, asking, registered;
  atomic_bool dirty;         /* the entry changed since it was last described */
  uint64_t written_at;       /* loop ms of the last entry written */
};

static void schedule_soon(hd_presence_redis_t *p);

static void on_reply(void *reply, void *arg) {
  hd_presence_redis_t *p = arg;
  const redisReply *rep = reply;
  p->asking = false;
  if (p->stopping) return;
  long long missing = 0;
  if (!hd_heartbeats_reply_ok(rep, &missing)) {
    if (rep && rep->type == REDIS_REPLY_ERROR) HD_WARN("cluster", "the presence script failed", "err=\"%s\"", rep->str);
    p->registered = false; /* written again once Redis answers */
    return;
  }
  if (missing) { /* our entry is gone: write it at once */
    p->registered = false;
    atomic_store(&p->dirty, true);
  }
  hd_presence_redis_entry_t *nodes = calloc(HD_PRESENCE_MAX_NODES, sizeof(*nodes));
  size_t n = nodes ? hd_heartbeats_entries(rep, nodes, HD_PRESENCE_MAX_NODES) : 0;
  if (nodes && p->hooks.on_snapshot) p->hooks.on_snapshot(p->hooks.arg, nodes, n);
  free(nodes);
  if (atomic_load(&p->dirty)) schedule_soon(p);
}

/* Sends the script: with this node's entry when it changed, was never written or is due. */
static void ask(hd_presence_redis_t *p) {
  if (p->stopping || p->asking) return;
  uint64_t now = uv_now(p->loop);
  bool write = atomic_exchange(&p->dirty, false) || !p->registered || now - p->written_at >= HD_PRESENCE_BEAT_MS;
  char *entry = write ? p->hooks.describe(p->hooks.arg) : NULL;
  if (write && !entry) atomic_store(&p->dirty, true); /* out of memory: a heartbeat only, the entry later */
  int rc = hd_redis_adapter_command(p->redis, on_reply, p, "EVAL %s 2 %b %b %s %s %d %d", script, p->hash_key.ptr,
                                    p->hash_key.len, p->seen_key.ptr, p->seen_key.len, p->tag, entry ? entry : "",
                                    HD_PRESENCE_DEAD_MS, KEY_TTL_MS);
  free(entry);
  if (rc) { /* Redis is away: everything is written again once it is back */
    p->registered = false;
    atomic_store(&p->dirty, true);
    return;
  }
  p->asking = true;
  if (entry) p->registered = true, p->written_at = now;
}

static void on_tick(uv_timer_t *t) { ask(t->data); }

static void on_soon(uv_timer_t *t) { ask(t->data); }

/* A change to write: at once, or when the last write is HD_PRESENCE_MIN_GAP_MS old; the answer to
 * the command in flight calls again. */
static void schedule_soon(hd_presence_redis_t *p) {
  if (p->stopping || p->asking || uv_is_active((uv_handle_t *)&p->soon)) return;
  uint64_t now = uv_now(p->loop), next = p->written_at + HD_PRESENCE_MIN_GAP_MS;
  uv_timer_start(&p->soon, on_soon, next > now ? next - now : 0, 0);
}

static void on_wake(uv_async_t *a) { schedule_soon(a->data); }

hd_presence_redis_t *hd_presence_redis_new(hd_adapter_t *redis, uv_loop_t *loop, const char *prefix, const char *tag,
                                           const hd_presence_redis_hooks_t *hooks) {
  hd_presence_redis_t *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->redis = redis;
  p->loop = loop;
  p->hooks = *hooks;
  memcpy(p->tag, tag, 3);
  atomic_init(&p->dirty, true);
  if (hd_sbuf_printf(&p->hash_key, "%s#herald#presence", prefix) ||
      hd_sbuf_printf(&p->seen_key, "%s#herald#presence#seen", prefix) || uv_mutex_init(&p->lock)) {
    hd_sbuf_free(&p->hash_key);
    hd_sbuf_free(&p->seen_key);
    free(p);
    return NULL;
  }
  return p;
}

void hd_presence_redis_start(hd_presence_redis_t *p) {
  if (p->started) return;
  uv_timer_init(p->loop, &p->tick);
  uv_timer_init(p->loop, &p->soon);
  uv_async_init(p->loop, &p->wake, on_wake);
  p->tick.data = p->soon.data = p->wake.data = p;
  uv_mutex_lock(&p->lock);
  p->started = true;
  uv_mutex_unlock(&p->lock);
  uv_timer_start(&p->tick, on_tick, 50, HD_PRESENCE_REFRESH_MS); /* the first soon after Redis connects */
}

void hd_presence_redis_changed(hd_presence_redis_t *p) {
  atomic_store(&p->dirty, true);
  uv_mutex_lock(&p->lock);
  if (p->started && !p->closed) uv_async_send(&p->wake);
  uv_mutex_unlock(&p->lock);
}

static void on_left(void *reply, void *arg) {}

void hd_presence_redis_stop(hd_presence_redis_t *p) {
  if (!p->started || p->stopping) return;
  p->stopping = true;
  uv_mutex_lock(&p->lock);
  p->closed = true;
  uv_mutex_unlock(&p->lock);
  uv_close((uv_handle_t *)&p->tick, NULL);
  uv_close((uv_handle_t *)&p->soon, NULL);
  uv_close((uv_handle_t *)&p->wake, NULL);
  hd_redis_adapter_command(p->redis, on_left, p, "EVAL %s 2 %b %b %s", leave_script, p->hash_key.ptr, p->hash_key.len,
                           p->seen_key.ptr, p->seen_key.len, p->tag);
}

void hd_presence_redis_free(hd_presence_redis_t *p) {
  if (!p) return;
  uv_mutex_destroy(&p->lock);
  hd_sbuf_free(&p->hash_key);
  hd_sbuf_free(&p->seen_key);
  free(p);
}
