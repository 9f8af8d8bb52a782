/* The node registry: which Herald nodes are in the cluster and where each is reached. Every node
 * keeps its entry in a Redis hash `<prefix>#herald#nodes` (node tag -> JSON {url, shards, started,
 * version, uid}) with its last heartbeat in a sorted set `<prefix>#herald#nodes#seen` (tag -> ms of
 * Redis's clock), rewritten every HD_REGISTRY_BEAT_MS; any node removes entries silent for more
 * than HD_REGISTRY_DEAD_MS, so a node killed with kill -9 drops out by itself. One Lua script does
 * the clean-up, the heartbeat and the read in one round trip, once a second, through the Redis
 * adapter's command connection on shard 0's loop; the snapshot it reads is what every shard looks
 * node tags up in (under a mutex), to forward Engine.IO requests to their owner (cluster/forward.h). */
#ifndef HD_REGISTRY_H
#define HD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hub/adapter.h"

#define HD_REGISTRY_REFRESH_MS 1000 /* the snapshot is read this often */
#define HD_REGISTRY_BEAT_MS 3000    /* a node rewrites its entry this often */
#define HD_REGISTRY_DEAD_MS 10000   /* an entry this old is removed */

typedef struct hd_registry hd_registry_t;

/* This node, as it registers itself. */
typedef struct {
  char tag[4];     /* the node tag of its Engine.IO session ids */
  char url[256];   /* where the other nodes reach it (--advertise-url) */
  uint32_t shards;
  const char *uid; /* its Redis adapter uid (tells a tag collision from its own entry) */
} hd_registry_self_t;

/* A registry for self (copied) in the cluster of redis (a Redis adapter, borrowed), keys under
 * prefix, on loop (shard 0's, where the adapter runs). NULL when out of memory. */
hd_registry_t *hd_registry_new(hd_adapter_t *redis, uv_loop_t *loop, const char *prefix, const hd_registry_self_t *self);
/* Starts the heartbeat and the refreshes (loop's thread; the first ones once Redis is connected). */
void hd_registry_start(hd_registry_t *reg);
/* Removes this node's entry (best effort, before the adapter disconnects) and stops (loop's thread). */
void hd_registry_stop(hd_registry_t *reg);
/* Frees the registry once the loop has ended and the adapter is gone. */
void hd_registry_free(hd_registry_t *reg);
/* The advertised URL of the live node named by tag (3 characters) into url (any thread). 0, or
 * HD_ENOTFOUND when no live node has that tag in the last snapshot (this node's own tag included). */
int hd_registry_lookup(hd_registry_t *reg, const char *tag, char *url, size_t cap);
/* The live nodes as a JSON array of {tag, url, shards, started, version, age_ms, self} (any thread;
 * a jansson json_t *, new reference), or NULL when out of memory. */
void *hd_registry_nodes_json(hd_registry_t *reg);

#endif
