/* The node registry in Redis (see registry.h). */
#include "cluster/registry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <hiredis.h>
#pragma GCC diagnostic pop

#include "cluster/heartbeats.h"
#include "cluster/redis.h"
#include "core/error.h"
#include "core/log.h"

#define MAX_NODES 256

/* KEYS: the hash, the heartbeat set. ARGV: tag, this node's entry ("" = no heartbeat this time),
 * dead after ms, uid. Removes the dead, writes the heartbeat unless another live node holds the tag,
 * and returns {now_ms, conflict, tag, seen_ms, entry, ...} on Redis's clock. */
static const char script[] = HD_HEARTBEATS_LUA_HEAD
    "local flag = 0\n" /* conflict */
    "if ARGV[2] ~= '' then\n"
    "  local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "  if old then\n"
    "    local ok, o = pcall(cjson.decode, old)\n"
    "    if ok and type(o) == 'table' and o.uid ~= ARGV[4] then flag = 1 end\n"
    "  end\n"
    "  if flag == 0 then\n"
    "    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "    redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
    "  end\n"
    "end\n" HD_HEARTBEATS_LUA_TAIL;

/* KEYS: the hash, the heartbeat set. ARGV: tag, uid. Removes this node's entry if it is its own. */
static const char leave_script[] =
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if old then\n"
    "  local ok, o = pcall(cjson.decode, old)\n"
    "  if ok and type(o) == 'table' and o.uid == ARGV[2] then\n"
    "    redis.call('HDEL', KEYS[1], ARGV[1]); redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "  end\n"
    "end\n"
    "return 0\n";

typedef struct {
  char tag[4];
  char url[256];
  char version[32];
  uint32_t shards;
  int64_t started_ms; /* wall clock of the node's start */
  uint64_t age_ms;    /* since its last heartbeat, when the snapshot was read */
} node_t;

struct hd_registry {
  hd_adapter_t *redis;
  uv_loop_t *loop;
  hd_sbuf_t hash_key, seen_key;
  hd_registry_self_t self;
  char uid[16];
  char *entry;             /* this node's JSON */
  uv_timer_t timer;
  bool started, stopping, asking, registered, conflict_logged;
  uint64_t beat_at;        /* loop ms of the last heartbeat written */
  uv_mutex_t lock;         /* the snapshot below */
  node_t nodes[MAX_NODES];
  uint32_t count;
  uint64_t read_ns;        /* uv_hrtime of the snapshot */
};

/* Replaces the snapshot with the script's answer. */
static void take_snapshot(hd_registry_t *reg, const redisReply *rep) {
  hd_heartbeat_entry_t *seen = calloc(MAX_NODES, sizeof(*seen));
  node_t *nodes = calloc(MAX_NODES, sizeof(*nodes));
  size_t count = seen && nodes ? hd_heartbeats_entries(rep, seen, MAX_NODES) : 0;
  uint32_t n = 0;
  for (size_t i = 0; i < count; i++) {
    json_t *e = json_loadb(seen[i].entry, seen[i].len, 0, NULL);
    const char *url = json_string_value(json_object_get(e, "url"));
    const char *version = json_string_value(json_object_get(e, "version"));
    if (url && strlen(url) < sizeof nodes[n].url) {
      node_t *d = &nodes[n++];
      memcpy(d->tag, seen[i].tag, sizeof d->tag);
      snprintf(d->url, sizeof d->url, "%s", url);
      snprintf(d->version, sizeof d->version, "%s", version ? version : "");
      d->shards = (uint32_t)json_integer_value(json_object_get(e, "shards"));
      d->started_ms = (int64_t)json_integer_value(json_object_get(e, "started"));
      d->age_ms = seen[i].age_ms;
    }
    json_decref(e);
  }
  if (nodes && seen) {
    uv_mutex_lock(&reg->lock);
    memcpy(reg->nodes, nodes, n * sizeof(*nodes));
    reg->count = n;
    reg->read_ns = uv_hrtime();
    uv_mutex_unlock(&reg->lock);
  }
  free(nodes);
  free(seen);
}

static void on_reply(void *reply, void *arg) {
  hd_registry_t *reg = arg;
  const redisReply *rep = reply;
  reg->asking = false;
  if (reg->stopping) return;
  long long conflict = 0;
  if (!hd_heartbeats_reply_ok(rep, &conflict)) {
    if (rep && rep->type == REDIS_REPLY_ERROR)
      HD_WARN("cluster", "the node registry script failed", "err=\"%s\"", rep->str);
    reg->registered = false; /* written again once Redis answers */
    return;
  }
  if (conflict) {
    if (!reg->conflict_logged)
      HD_ERROR("cluster", "another live node has this node's tag: its sessions cannot be forwarded here; restart this node",
               "tag=%s", reg->self.tag);
    reg->conflict_logged = true;
  }
  take_snapshot(reg, rep);
}

static void on_tick(uv_timer_t *t) {
  hd_registry_t *reg = t->data;
  if (reg->stopping || reg->asking) return;
  uint64_t now = uv_now(reg->loop);
  bool beat = !reg->registered || now - reg->beat_at >= HD_REGISTRY_BEAT_MS;
  int rc = hd_redis_adapter_command(reg->redis, on_reply, reg, "EVAL %s 2 %b %b %s %s %d %s", script,
                                    reg->hash_key.ptr, reg->hash_key.len, reg->seen_key.ptr, reg->seen_key.len,
                                    reg->self.tag, beat ? reg->entry : "", HD_REGISTRY_DEAD_MS, reg->uid);
  if (rc) {
    reg->registered = false; /* Redis is away: the snapshot stays as it was */
    return;
  }
  reg->asking = true;
  if (beat) reg->registered = true, reg->beat_at = now;
}

hd_registry_t *hd_registry_new(hd_adapter_t *redis, uv_loop_t *loop, const char *prefix, const hd_registry_self_t *self) {
  hd_registry_t *reg = calloc(1, sizeof(*reg));
  if (!reg) return NULL;
  reg->redis = redis;
  reg->loop = loop;
  reg->self = *self;
  reg->self.uid = NULL;
  snprintf(reg->uid, sizeof reg->uid, "%s", self->uid ? self->uid : "");
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  json_t *e = json_pack("{s:s, s:i, s:I, s:s, s:s}", "url", self->url, "shards", (int)self->shards, "started",
                        (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "version", HERALD_VERSION, "uid", reg->uid);
  reg->entry = e ? json_dumps(e, JSON_COMPACT) : NULL;
  json_decref(e);
  if (!reg->entry || hd_sbuf_printf(&reg->hash_key, "%s#herald#nodes", prefix) ||
      hd_sbuf_printf(&reg->seen_key, "%s#herald#nodes#seen", prefix) || uv_mutex_init(&reg->lock)) {
    free(reg->entry);
    hd_sbuf_free(&reg->hash_key);
    hd_sbuf_free(&reg->seen_key);
    free(reg);
    return NULL;
  }
  return reg;
}

void hd_registry_start(hd_registry_t *reg) {
  if (reg->started) return;
  reg->started = true;
  uv_timer_init(reg->loop, &reg->timer);
  reg->timer.data = reg;
  uv_timer_start(&reg->timer, on_tick, 50, HD_REGISTRY_REFRESH_MS); /* the first soon after Redis connects */
}

static void on_left(void *reply, void *arg) {}

void hd_registry_stop(hd_registry_t *reg) {
  if (!reg->started || reg->stopping) return;
  reg->stopping = true;
  uv_timer_stop(&reg->timer);
  uv_close((uv_handle_t *)&reg->timer, NULL);
  hd_redis_adapter_command(reg->redis, on_left, reg, "EVAL %s 2 %b %b %s %s", leave_script, reg->hash_key.ptr,
                           reg->hash_key.len, reg->seen_key.ptr, reg->seen_key.len, reg->self.tag, reg->uid);
}

void hd_registry_free(hd_registry_t *reg) {
  if (!reg) return;
  uv_mutex_destroy(&reg->lock);
  free(reg->entry);
  hd_sbuf_free(&reg->hash_key);
  hd_sbuf_free(&reg->seen_key);
  free(reg);
}

int hd_registry_lookup(hd_registry_t *reg, const char *tag, char *url, size_t cap) {
  int rc = HD_ENOTFOUND;
  uv_mutex_lock(&reg->lock);
  for (uint32_t i = 0; i < reg->count; i++)
    if (!memcmp(reg->nodes[i].tag, tag, 3)) {
      rc = strlen(reg->nodes[i].url) < cap ? 0 : HD_ERANGE;
      if (!rc) memcpy(url, reg->nodes[i].url, strlen(reg->nodes[i].url) + 1);
      break;
    }
  uv_mutex_unlock(&reg->lock);
  return rc;
}

void *hd_registry_nodes_json(hd_registry_t *reg) {
  json_t *out = json_array();
  uv_mutex_lock(&reg->lock);
  uint64_t since = reg->count ? (uv_hrtime() - reg->read_ns) / 1000000 : 0;
  for (uint32_t i = 0; out && i < reg->count; i++) {
    const node_t *n = &reg->nodes[i];
    json_array_append_new(out, json_pack("{s:s, s:s, s:i, s:I, s:s, s:I, s:b}", "tag", n->tag, "url", n->url, "shards",
                                         (int)n->shards, "started", (json_int_t)n->started_ms, "version", n->version,
                                         "age_ms", (json_int_t)(n->age_ms + since), "self",
                                         !memcmp(n->tag, reg->self.tag, 3)));
  }
  uv_mutex_unlock(&reg->lock);
  return out;
}
