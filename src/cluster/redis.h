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
/* Keeps the `handshake` of the sockets other nodes describe in fetchSockets answers (for the Admin
 * UI: the local sockets carry theirs too). Before start. */
void hd_redis_adapter_keep_handshakes(hd_adapter_t *a, bool keep);
/* Sets the hub that publishes what comes from Redis (shard 0's, on loop's thread). */
void hd_redis_adapter_set_hub(hd_adapter_t *a, hd_hub_t *hub);
/* Connects and subscribes (loop's thread); the connection is kept up until hd_redis_adapter_stop. */
void hd_redis_adapter_start(hd_adapter_t *a);
/* Disconnects for good and closes its handles (loop's thread); later broadcasts stay local. */
void hd_redis_adapter_stop(hd_adapter_t *a);
/* This node's uid on the wire (6 characters). */
const char *hd_redis_adapter_uid(const hd_adapter_t *a);

/* One Redis command for the other cluster modules (the node registry), on the adapter's command
 * connection: fn(reply, arg) runs on the loop's thread with the hiredis redisReply (NULL when the
 * connection went away before the answer). fmt and the arguments as redisAsyncCommand's. Call on the
 * loop's thread. 0 (fn will run once), HD_ECLOSED when Redis is not connected or the adapter stops,
 * HD_ENOMEM or HD_EIO (fn will not run). */
typedef void (*hd_redis_reply_fn)(void *reply, void *arg);
int hd_redis_adapter_command(hd_adapter_t *a, hd_redis_reply_fn fn, void *arg, const char *fmt, ...);

/* --- for cluster/redis_topics.c: binary-safe commands, one more subscription ------------------ */

struct redisAsyncContext;
/* hiredis's own reply callback: reply is a redisReply, or NULL when the connection went away. */
typedef void (*hd_redis_raw_reply_fn)(struct redisAsyncContext *c, void *reply, void *privdata);

/* True when both connections are up (any thread). */
bool hd_redis_adapter_connected(const hd_adapter_t *a);
/* Sends one command (argv with lengths, binary-safe) on the command connection; fn gets its reply
 * on the loop's thread (NULL reply: the connection went away). Loop's thread. 0, or HD_EIO when not
 * connected (fn not called). */
int hd_redis_adapter_command_argv(hd_adapter_t *a, hd_redis_raw_reply_fn fn, void *privdata, int argc,
                                  const char **argv, const size_t *lens);
/* Subscribes channel on every connection of the subscriber link from now on (call before
 * hd_redis_adapter_start): fn gets ["subscribe", channel, n], each ["message", channel, payload],
 * and NULL when the link goes. 0, HD_ERANGE past 4 channels, HD_ENOMEM. */
int hd_redis_adapter_subscribe(hd_adapter_t *a, const char *channel, hd_redis_raw_reply_fn fn, void *privdata);

#endif
