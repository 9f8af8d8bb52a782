/* Cluster-wide presence in Redis: every node keeps one entry (an opaque JSON text that the
 * application describes: who is online on it) in the hash `<prefix>#herald#presence` (node tag ->
 * entry), with its last heartbeat in the sorted set `<prefix>#herald#presence#seen` (tag -> ms of
 * Redis's clock). One Lua script removes the entries silent for more than HD_PRESENCE_DEAD_MS (so
 * the users of a node killed with kill -9 vanish by themselves), writes this node's heartbeat and,
 * when it changed, its entry, and reads every node's entry back — one round trip, through the Redis
 * adapter's command connection on shard 0's loop, never blocking it. It runs every
 * HD_PRESENCE_REFRESH_MS, and soon after a change (coalesced: at most one command in flight, at
 * most one entry write per HD_PRESENCE_MIN_GAP_MS); the entry is rewritten at least every
 * HD_PRESENCE_BEAT_MS. What it reads is handed to the application's on_snapshot. */
#ifndef HD_PRESENCE_REDIS_H
#define HD_PRESENCE_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/heartbeats.h"
#include "hub/adapter.h"

#define HD_PRESENCE_REFRESH_MS 1000 /* every node's entries are read this often */
#define HD_PRESENCE_BEAT_MS 3000    /* this node's entry is rewritten at least this often */
#define HD_PRESENCE_DEAD_MS 10000   /* an entry without a heartbeat for this long is removed */
#define HD_PRESENCE_MIN_GAP_MS 100  /* a change is written at most this often */
#define HD_PRESENCE_MAX_NODES 256   /* entries read back; the rest are ignored */

typedef struct hd_presence_redis hd_presence_redis_t;

/* One node's entry as read from Redis (borrowed from the reply: valid during the call only). */
typedef hd_heartbeat_entry_t hd_presence_redis_entry_t;

/* What the application provides; both run on the loop's thread. */
typedef struct {
  /* This node's entry now: malloc'd JSON text (freed by the caller), or NULL when out of memory. */
  char *(*describe)(void *arg);
  /* Every live node's entry (this node's included), after each read. */
  void (*on_snapshot)(void *arg, const hd_presence_redis_entry_t *nodes, size_t count);
  void *arg;
} hd_presence_redis_hooks_t;

/* Presence for the node named tag (3 characters) in the cluster of redis (a Redis adapter,
 * borrowed), keys under prefix, on loop (shard 0's, where the adapter runs). NULL when out of memory. */
hd_presence_redis_t *hd_presence_redis_new(hd_adapter_t *redis, uv_loop_t *loop, const char *prefix, const char *tag,
                                           const hd_presence_redis_hooks_t *hooks);
/* Starts the heartbeat and the reads (loop's thread; the first ones once Redis is connected). */
void hd_presence_redis_start(hd_presence_redis_t *p);
/* This node's presence changed: its entry is written soon (any thread; nothing after stop). */
void hd_presence_redis_changed(hd_presence_redis_t *p);
/* Removes this node's entry (best effort, before the adapter disconnects) and stops (loop's thread). */
void hd_presence_redis_stop(hd_presence_redis_t *p);
/* Frees it once the loop has ended and the adapter is gone. */
void hd_presence_redis_free(hd_presence_redis_t *p);

#endif
