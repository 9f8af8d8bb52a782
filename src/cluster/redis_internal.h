/* What the files of the Redis adapter (redis.h) share: its state and the calls between them.
 *   redis.c           the connections (hiredis on shard 0's loop), their life, the adapter's table;
 *   redis_broadcast.c Socket.IO broadcasts both ways (and a broadcast with acks leaving as request 7);
 *   redis_requests.c  requests of other nodes (types 0-7 on the request channel), answered once;
 *   redis_asks.c      this node's requests (1, 2-4, 5, 6, 7) and the answers they wait for;
 *   redis_stats.c     the link's counters, the publish-to-delivery lag and their /metrics text.
 * Everything runs on shard 0's thread (the loop the connections live on) unless its comment says
 * "any thread"; other shards reach it through shard 0's mailbox. Not for use outside src/cluster. */
#ifndef HD_REDIS_INTERNAL_H
#define HD_REDIS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/redis.h"
#include "cluster/redis_codec.h"
#include "core/buf.h"
#include "core/mailbox.h"
#include "hub/hub.h"

#define HD_REDIS_REQUEST_TIMEOUT_MS 5000 /* requestsTimeout of the adapter */
#define HD_REDIS_MAX_ROOMS 64            /* rooms of one broadcast or request at most */
#define HD_REDIS_MAX_EXCEPT 16

#define HD_REDIS_LAG_BUCKETS 12       /* upper bounds of the lag histogram (redis_stats.c), +Inf apart */
#define HD_REDIS_LAG_RING 256         /* this node's broadcasts waiting for their own echo */

typedef struct hd_redis_ask hd_redis_ask_t;
struct redisAsyncContext;

/* What crosses the link, counted per kind of channel. */
typedef enum { HD_REDIS_BROADCAST, HD_REDIS_REQUEST, HD_REDIS_RESPONSE, HD_REDIS_KINDS } hd_redis_kind_t;

/* The link's counters for /metrics: written on shard 0 (dropped_down on any shard), read on any
 * thread, every field through relaxed atomics. */
typedef struct {
  uint64_t out[HD_REDIS_KINDS], in[HD_REDIS_KINDS]; /* messages published / received (own echoes too) */
  uint64_t bytes_out;
  uint64_t decode_errors;      /* received messages dropped as undecodable or malformed */
  uint64_t encode_errors;      /* this node's messages that could not be encoded */
  uint64_t dropped_full;       /* not published: the outgoing queue was at --redis-max-queue */
  uint64_t dropped_down;       /* not published: the link was down */
  uint64_t reconnects;         /* the link came back after it was lost */
  uint64_t losses;             /* the link was lost (closed, refused or timed out) */
  uint64_t timeouts;           /* Redis did not answer a PING or a connect in --redis-timeout */
  uint64_t requests_failed;    /* this node's requests finished early because the link was lost */
  uint64_t queued;             /* gauge: bytes of PUBLISH commands sent and not yet answered */
  uint64_t ping_us;            /* gauge: the last PING's round trip */
  uint64_t lag_le[HD_REDIS_LAG_BUCKETS + 1], lag_sum_us; /* own broadcasts back from Redis */
} hd_redis_stats_t;

/* This node's broadcasts on their way through Redis: when each left, and a fingerprint to know its
 * echo by (shard 0 only). */
typedef struct {
  struct { uint64_t at_ns; uint32_t len, hash; } slot[HD_REDIS_LAG_RING];
  uint32_t head, count;
} hd_redis_lag_ring_t;

typedef struct {
  hd_adapter_t base;
  hd_adapter_t *local;
  hd_redis_url_t url;
  char *prefix;
  char uid[8];
  char **nsps;
  uint32_t nsp_count;
  bool keep_handshakes;        /* fetchSockets answers keep the handshake of each socket (Admin UI) */
  uv_loop_t *loop;             /* shard 0's: everything below the atomics runs on its thread */
  hd_mailbox_t *mailbox;
  hd_hub_t *hub;
  struct redisAsyncContext *pub, *sub;
  bool pub_up, sub_up, started, stopping, resolving;
  bool ever_connected;         /* the link was up once: the next time it comes up is a reconnect */
  uint32_t subscribed;         /* confirmations of the sub connection's (P)SUBSCRIBEs so far */
  uv_timer_t timer;
  uv_getaddrinfo_t gai;
  uint32_t ticks;
  uint64_t backoff_ms, retry_at;
  uint64_t attempt_at;         /* when the connections being opened were opened (loop ms), 0: none */
  uint64_t ping_at_ns;         /* when the PING waiting for its answer left (hrtime), 0: none */
  uint64_t max_queue;          /* --redis-max-queue: bytes of unanswered PUBLISHes at most */
  uint64_t timeout_ms;         /* --redis-timeout: a connect or PING unanswered this long = Redis hangs */
  hd_redis_stats_t stats;
  hd_redis_lag_ring_t lag;
  char addr[256];              /* the host resolved */
  uint32_t connected;          /* atomic: both connections up */
  uint32_t nodes;              /* atomic: PUBSUB NUMSUB of the request channel of "/" */
  uint32_t stopped;            /* atomic: posts refused */
  hd_redis_ask_t *asks;        /* this node's requests waiting for answers */
  uint64_t next_request;       /* atomic: request ids */
  struct extra_sub {           /* channels other modules subscribe (hd_redis_adapter_subscribe) */
    char *channel;
    hd_redis_raw_reply_fn fn;
    void *privdata;
  } extra[4];
  uint32_t extra_count;
} hd_redis_t;

/* --- redis.c --------------------------------------------------------------------------------- */

/* Any thread: connected and not stopped. */
bool hd_redis_up(hd_redis_t *r);
/* Nodes in the cluster, this one included (any thread). */
uint32_t hd_redis_server_count(hd_adapter_t *a);
/* PUBLISH data on channel, a channel of kind (nothing when not connected; dropped and counted when
 * the outgoing queue is full). 0, HD_ECLOSED (not connected) or HD_EBUSY (queue full). */
int hd_redis_publish(hd_redis_t *r, hd_redis_kind_t kind, const char *channel, size_t channel_len, const void *data,
                     size_t len);
/* PUBLISH data on <prefix>-<kind>#<nsp># (kind "request" or "response"). 0 or HD_E* (as
 * hd_redis_publish). */
int hd_redis_publish_on(hd_redis_t *r, const char *kind, const char *nsp, const void *data, size_t len);
/* Called with the nodes subscribed to a namespace's request channel, this one included (1 when the
 * link is down or went down before the answer). */
typedef void (*hd_redis_count_fn)(hd_redis_t *r, uint32_t nodes, void *arg);
/* Asks Redis how many nodes will answer a request of nsp now (PUBSUB NUMSUB of its request channel,
 * as the adapter does before each request), then calls fn (at once when the link is down). */
void hd_redis_count_nodes(hd_redis_t *r, const char *nsp, hd_redis_count_fn fn, void *arg);
/* A new request id, unique in the cluster (any thread). */
void hd_redis_request_id(hd_redis_t *r, char out[32]);

/* --- redis_broadcast.c ----------------------------------------------------------------------- */

/* The adapter's broadcast (any shard, under the publish lock). */
int hd_redis_broadcast(hd_adapter_t *a, hd_hub_t *from, hd_hub_msg_t *msg, hd_hub_member_t *skip,
                       hd_hub_count_fn on_count, void *arg);
/* Publishes b (from another node; its attachments taken over) to this node's sockets of nsp through
 * shard 0's hub, marked REMOTE; with acks, as a broadcast with acks (on_count: this node's recipients).
 * 0 or HD_E* (then on_count is not called). */
int hd_redis_deliver(hd_redis_t *r, const char *nsp, hd_redis_bcast_t *b, hd_hub_acks_t *acks,
                     hd_hub_count_fn on_count, void *arg);
/* A message on a broadcast channel (PSUBSCRIBE <prefix>#<nsp>#*). */
void hd_redis_got_broadcast(hd_redis_t *r, const char *channel, size_t channel_len, const char *data, size_t len);

/* --- redis_requests.c ------------------------------------------------------------------------ */

/* A message on a request channel. */
void hd_redis_got_request(hd_redis_t *r, const char *channel, size_t channel_len, const char *data, size_t len);
/* The namespace of `<prefix>-<kind>#<nsp>#` (kind "request" or "response"), NULL when none of ours. */
const char *hd_redis_channel_nsp(hd_redis_t *r, const char *kind, const char *ch, size_t len);
/* Hub room keys of opts {rooms, except} of nsp into t (missing or empty rooms: the whole namespace).
 * 0 or HD_EINVAL. */
typedef struct {
  char keys[HD_REDIS_MAX_ROOMS][300], ekeys[HD_REDIS_MAX_EXCEPT][300];
  const char *rk[HD_REDIS_MAX_ROOMS], *ek[HD_REDIS_MAX_EXCEPT];
  hd_hub_target_t to;
} hd_redis_target_t;
int hd_redis_target(const char *nsp, json_t *opts, hd_redis_target_t *t);
/* The application name of a hub room key of nsp; NULL for the namespace's all-room. */
const char *hd_redis_room_name(const char *nsp, const char *key);
/* {rooms, except} of a hub target, by application names (new reference, NULL when out of memory). */
json_t *hd_redis_opts_of(const hd_hub_target_t *to);

/* --- redis_asks.c ---------------------------------------------------------------------------- */

int hd_redis_request(hd_adapter_t *a, hd_hub_t *from, hd_hub_req_t req, const hd_hub_target_t *to, const char *room);
int hd_redis_fetch(hd_adapter_t *a, hd_hub_t *from, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg);
int hd_redis_all_rooms(hd_adapter_t *a, hd_hub_t *from, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg);
int hd_redis_server_side_emit(hd_adapter_t *a, hd_hub_t *from, const char *nsp, const char *args_json,
                              hd_hub_answers_fn fn, void *arg);
/* Waits for the answers to this node's broadcast with acks request_id (types 8 and 9) until
 * timeout_ms, handing them to acks (a reference is taken). */
void hd_redis_ask_acks(hd_redis_t *r, const char *request_id, hd_hub_acks_t *acks, uint64_t timeout_ms);
/* A message on a response channel. */
void hd_redis_got_response(hd_redis_t *r, const char *data, size_t len);
/* Finishes every waiting request with what it has (the adapter stops, or the link was lost: nobody
 * will answer them). Returns how many were waiting. */
uint32_t hd_redis_asks_stop(hd_redis_t *r);

/* --- redis_stats.c --------------------------------------------------------------------------- */

/* Adds n to a counter of r->stats (any thread). */
#define HD_REDIS_COUNT(r, field, n) __atomic_fetch_add(&(r)->stats.field, (uint64_t)(n), __ATOMIC_RELAXED)
/* This node's broadcast of len bytes left on channel now: its echo will tell the lag. */
void hd_redis_lag_sent(hd_redis_t *r, const void *data, size_t len);
/* This node's broadcast came back from Redis: the time since it left goes to the histogram. */
void hd_redis_lag_echo(hd_redis_t *r, const void *data, size_t len);
/* Forgets the broadcasts on their way (the link was lost: their echoes will not come). */
void hd_redis_lag_reset(hd_redis_t *r);
/* Appends the adapter's Prometheus series to out (any thread). */
void hd_redis_metrics(hd_adapter_t *a, hd_sbuf_t *out);

#endif
