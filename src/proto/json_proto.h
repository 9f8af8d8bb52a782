/* The Herald JSON protocol at /api/v1/ws (contract: PROTOCOL.md): token auth at connect, heartbeat,
 * topic subscriptions with params and permission rules, per-topic sequences with replay, notifications
 * redelivered until acknowledged and kept in the user's inbox, duplicate suppression, rate and size
 * limits, and publishing to JSON-protocol and Socket.IO subscribers alike through the hub. */
#ifndef HD_JSON_PROTO_H
#define HD_JSON_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "hub/hub.h"
#include "net/server.h"
#include "store/store.h"

typedef struct hd_jp_server hd_jp_server_t;

typedef struct {
  uint64_t ack_timeout_ms;
  uint32_t ack_retries;
  uint32_t max_subscriptions;
  size_t max_message;
  uint32_t rate, burst;          /* frames per second, bucket size */
  const char *subscribe_user;    /* topic patterns a user may subscribe to */
  const char *publish_user;      /* topic patterns a user may publish to */
  uint32_t inbox_max;
  uint32_t dedupe_window;
  hd_jwt_config_t jwt;
  hd_store_t *store;             /* durable inbox; NULL keeps it in memory */
} hd_jp_options_t;

typedef struct {
  uint64_t sequence;
  size_t delivered;
  char message_id[40];
} hd_jp_publish_result_t;

/* A JSON-protocol server on srv sharing hub; NULL when out of memory. */
hd_jp_server_t *hd_jp_server_new(hd_server_t *srv, hd_hub_t *hub, const hd_jp_options_t *opt);
/* Routes GET /api/v1/ws. 0 or HD_E*. */
int hd_jp_server_route(hd_jp_server_t *jp, hd_router_t *router);
void hd_jp_server_free(hd_jp_server_t *jp);
size_t hd_jp_connection_count(const hd_jp_server_t *jp);

/* Publishes `type` with data_json to topic (+ params, may be NULL): to JSON-protocol subscribers of
 * the topic and of the topic with exactly these params, and to Socket.IO sockets in the room of the
 * same name (event sio_event, or type when NULL). Returns 0 with res filled, HD_EINVAL for a bad
 * topic or params, HD_ENOMEM. */
int hd_jp_publish(hd_jp_server_t *jp, const char *topic, const json_t *params, const char *type,
                  const char *data_json, const char *sio_event, hd_jp_publish_result_t *res);
/* True when a token with these claims may publish to topic (admins always). */
int hd_jp_may_publish(const hd_jp_server_t *jp, const hd_claims_t *claims, const char *topic);

#endif
