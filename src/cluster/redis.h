/* The Redis adapter: the local adapter plus the other nodes of a cluster through Redis pub/sub, in
 * the wire format of @socket.io/redis-adapter 8.x (classic) and @socket.io/redis-emitter 5.x
 * (cluster/redis_codec.h, ../shared/CLUSTER.md). Socket.IO broadcasts leave on the broadcast channel
 * of their namespace (or of their one room); what other nodes publish is published locally through
 * the hub of shard 0 (node-wide ids, recovery records) marked HD_MSG_REMOTE, so it is never sent
 * back. hiredis async runs on shard 0's loop only (two connections: commands and (P)SUBSCRIBE);
 * other shards reach it through shard 0's mailbox. Redis gone or hung (a PING unanswered):
 * broadcasts stay local, this node's requests finish at once with what they have, reconnects with
 * backoff and subscribes again; /health says "degraded", /metrics counts it all. Every request type 0-9 is answered once per node and sent where socket.io sends it
 * (redis_internal.h lists the files and who does what). */
#ifndef HD_REDIS_ADAPTER_H
#define HD_REDIS_ADAPTER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/mailbox.h"
#include "hub/adapter.h"

/* Where Redis is: redis://[[user]:password@]host[:port][/db]. */
typedef struct {
  char host[256];
  char user[128];
  char password[256];
  int port;
  int db;
} hd_redis_url_t;

/* Parses a redis:// URL into out (port 6379, db 0 by default). 0 or HD_EINVAL. */
int hd_redis_url_parse(const char *url, hd_redis_url_t *out);

/* A Redis adapter around local (taken over: freed with it), for the Socket.IO namespaces nsps
 * (comma-separated), with channel prefix `prefix`, running on loop/mailbox (shard 0's). NULL when out
 * of memory. */
hd_adapter_t *hd_redis_adapter_new(hd_adapter_t *local, const hd_redis_url_t *url, const char *prefix,
                                   const char *nsps, uv_loop_t *loop, hd_mailbox_t *mailbox);
#define HD_REDIS_DEFAULT_MAX_QUEUE (8u << 20) /* bytes of unanswered PUBLISHes (--redis-max-queue) */
#define HD_REDIS_DEFAULT_TIMEOUT_MS 3000      /* an unanswered connect or PING (--redis-timeout) */

/* Bounds the PUBLISHes sent and not yet answered to max_queue bytes (beyond: dropped, counted) and
 * takes a connect or PING unanswered for timeout_ms as a hung Redis (before start). */
void hd_redis_adapter_set_limits(hd_adapter_t *a, uint64_t max_queue, uint64_t timeout_ms);
/* Sets the hub that publishes what comes from Redis (shard 0's, on loop's thread). */
void hd_redis_adapter_set_hub(hd_adapter_t *a, hd_hub_t *hub);
/* Connects and subscribes (loop's thread); the connection is kept up until hd_redis_adapter_stop. */
void hd_redis_adapter_start(hd_adapter_t *a);
/* Disconnects for good and closes its handles (loop's thread); later broadcasts stay local. */
void hd_redis_adapter_stop(hd_adapter_t *a);
/* This node's uid on the wire (6 characters). */
const char *hd_redis_adapter_uid(const hd_adapter_t *a);

#endif
