/* The Herald JSON protocol at /api/v1/ws (contract: PROTOCOL.md): envelopes, heartbeat, topic
 * subscriptions with params, replay from the topic history, client publishes, and the connection's
 * lifecycle. What it does not decide itself reaches it from the app: who a token is and what it may
 * subscribe or publish to (hd_jp_policy_t), where unacknowledged notifications wait (hd_jp_inbox_t),
 * and the delivery guarantees shared by the shards (acks, dedupe, history, client registry). */
#ifndef HD_JSON_PROTO_H
#define HD_JSON_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h" /* hd_claims_t only */
#include "delivery/dedupe.h"
#include "hub/hub.h"
#include "net/server.h"
#include "proto/json_clients.h"

typedef struct hd_jp_server hd_jp_server_t;

/* Who a token is and what it may do: installed by the app. */
typedef struct {
  /* Verifies a token: 0 with *out filled, else a negative HD_E* and a short reason in *why. */
  int (*authenticate)(void *arg, const char *token, hd_claims_t *out, const char **why);
  void *auth_arg;
  bool (*may_subscribe)(void *arg, const hd_claims_t *claims, const char *topic);
  bool (*may_publish)(void *arg, const hd_claims_t *claims, const char *topic);
  void *policy_arg;
} hd_jp_policy_t;

/* A notification waiting in a user's inbox. */
typedef struct {
  const char *message_id;
  const char *frame; /* the envelope text as it was delivered */
  size_t frame_len;
} hd_jp_inbox_item_t;

/* What waited for a user (items borrowed for the call), or a negative status. */
typedef void (*hd_jp_inbox_cb)(void *arg, int status, const hd_jp_inbox_item_t *items, size_t n);

/* The durable inbox, installed by the app (all NULL: none; unacknowledged notifications are then
 * lost after their retries). A notification is put at its delivery and removed at its ack, so
 * whatever is unacknowledged when a connection goes is already there for the next one. */
typedef struct {
  void (*put)(void *arg, const char *sub, const char *message_id, const char *frame, size_t len);
  void (*remove)(void *arg, const char *sub, const char *message_id);
  /* The oldest `limit` entries (a page); answers cb later on this shard; 0, or HD_E* (cb is not called). */
  int (*take)(void *arg, const char *sub, size_t limit, hd_jp_inbox_cb cb, void *cb_arg);
  /* Stores one entry now and answers done(done_arg, status) once the store has (0: stored);
   * 0, or HD_E* (done is not called). */
  int (*keep)(void *arg, const char *sub, const char *message_id, const char *frame, size_t len,
              void (*done)(void *done_arg, int status), void *done_arg);
  void *arg;
} hd_jp_inbox_t;

typedef struct {
  uint64_t ack_timeout_ms;
  uint32_t ack_retries;
  uint32_t max_subscriptions;
  size_t max_message;
  uint32_t rate, burst;          /* frames per second, bucket size */
  hd_jp_policy_t policy;         /* required */
  hd_jp_inbox_t inbox;
  uint32_t inbox_page;           /* inbox entries sent at once; the next page once these are acked */
  uint32_t max_per_user;         /* clients (clientIds) one user may have connected at once over the node (0: no cap) */
  hd_dedupe_t *dedupe;           /* the node's client messageId windows (required) */
  hd_jp_clients_t *clients;      /* the node's client registry (NULL: replacement on this shard only) */
} hd_jp_options_t;

/* A notification published to `user:{sub}` (or `user:{sub}:...`) that reached no connection of this
 * node is kept in sub's inbox for the user's next connection: done(arg, status) follows once stored
 * (0) or not (HD_E*). Returns 0 (done will be called), HD_ENOTFOUND when msg is not such a
 * notification or there is no inbox (done is not called), or HD_E*. */
int hd_jp_keep_for_offline_user(hd_jp_server_t *jp, hd_hub_msg_t *msg, void (*done)(void *arg, int status), void *arg);

/* A JSON-protocol server on srv sharing hub; NULL when out of memory. */
hd_jp_server_t *hd_jp_server_new(hd_server_t *srv, hd_hub_t *hub, const hd_jp_options_t *opt);
/* Routes GET /api/v1/ws. 0 or HD_E*. */
int hd_jp_server_route(hd_jp_server_t *jp, hd_router_t *router);
void hd_jp_server_free(hd_jp_server_t *jp);
size_t hd_jp_connection_count(const hd_jp_server_t *jp);

/* Publishes `type` with data_json to topic (+ params, may be NULL) on every shard: to JSON-protocol
 * subscribers of the topic and of the topic with exactly these params, and to Socket.IO sockets in
 * the room of the same name (event `event`, or type when NULL). Returns 0, HD_EINVAL for a bad topic
 * or params, HD_ENOMEM; on_count (may be NULL) then gets the message (its sequence and message id)
 * and the total deliveries on this shard's thread once every shard delivered. */
int hd_jp_publish(hd_jp_server_t *jp, const char *topic, const json_t *params, const char *type,
                  const char *data_json, const char *event, hd_hub_count_fn on_count, void *arg);
/* Tells the connection of client key with generation gen on this shard to go: a newer connection
 * of the client replaced it on another shard (json_clients.h). */
void hd_jp_replace(hd_jp_server_t *jp, const char *key, uint64_t gen);
/* Closes (policy violation, with a `disconnect` frame saying reason) every connection on this shard
 * whose token names sub: the app refuses that user now. Returns how many. */
size_t hd_jp_close_sub(hd_jp_server_t *jp, const char *sub, const char *reason);

#endif
