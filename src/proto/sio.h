/* Socket.IO v5 server (v4 protocol for Engine.IO v3 clients) over Engine.IO: namespaces, a JWT
 * connection middleware, events and acks both ways, binary attachments, rooms in the shared hub,
 * broadcasts encoded once per wire form, and connection state recovery. Applications register
 * event handlers per namespace. */
#ifndef HD_SIO_H
#define HD_SIO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h" /* hd_claims_t only: tokens are verified by the authenticate callback */
#include "delivery/recovery.h"
#include "hub/hub.h"
#include "net/server.h"
#include "proto/eio.h"

typedef struct hd_sio_server hd_sio_server_t;
typedef struct hd_sio_socket hd_sio_socket_t;

/* An event from a client. args: the arguments after the event name (borrowed; with binary, the
 * placeholders are still in place and hd_sio_attachments() gives the bytes). ack_id: >= 0 when the
 * client waits for an answer (hd_sio_ack). */
typedef void (*hd_sio_event_fn)(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata);
/* A socket joined its namespace (after auth). auth: the CONNECT payload (may be NULL). */
typedef void (*hd_sio_connect_fn)(hd_sio_socket_t *s, json_t *auth, void *udata);
/* A socket left (reason as Socket.IO names it: "client namespace disconnect", "transport close",...). */
typedef void (*hd_sio_disconnect_fn)(hd_sio_socket_t *s, const char *reason, void *udata);
/* An answer to hd_sio_emit_with_ack: args (borrowed) or NULL on timeout / disconnect. */
typedef void (*hd_sio_ack_fn)(hd_sio_socket_t *s, json_t *args, void *arg);

typedef struct {
  const char *path;
  const char *namespaces;     /* comma-separated */
  uint64_t ping_interval_ms, ping_timeout_ms, upgrade_timeout_ms, connect_timeout_ms;
  size_t max_payload;
  bool allow_eio3;
  const char *node_tag;        /* 3 characters naming this node in Engine.IO session ids */
  hd_recovery_t *recovery;     /* connection state recovery shared by the shards; NULL = off */
  uint32_t max_rooms_per_socket;
  uint32_t max_attachments;
  bool auth_optional;          /* test mode: sockets without a valid auth.token are let in (anonymous) */
  /* Verifies a CONNECT's auth.token: 0 with *out filled, else a negative HD_E* with *why. */
  int (*authenticate)(void *arg, const char *token, hd_claims_t *out, const char **why);
  void *auth_arg;
  /* NULL, or: admits one more socket of an authenticated user (0), else refuses it (CONNECT_ERROR
   * with *why, data.code 429); release follows once for every socket admitted, when it goes. */
  int (*admit)(void *arg, const hd_claims_t *claims, const char **why);
  void (*release)(void *arg, const hd_claims_t *claims);
  void *admit_arg;
  hd_eio_limits_t eio_limits;  /* sessions and handshake rate (see eio.h) */
  bool keep_handshake;         /* keep each client's handshake (address, headers, query, url, time) for
                                * the Admin UI: fetchSockets then gives `handshake` and data._admin */
} hd_sio_options_t;

/* Where a broadcast goes: rooms of nsp (application names; none = every socket of nsp), minus the
 * sockets in except rooms; flags HD_MSG_* (volatile, local). */
typedef struct {
  const char *nsp;
  const char *const *rooms;
  size_t room_count;
  const char *const *except;
  size_t except_count;
  uint32_t flags;
} hd_sio_target_t;

/* A new Socket.IO server on srv using hub for rooms; NULL when out of memory or a namespace is invalid. */
hd_sio_server_t *hd_sio_server_new(hd_server_t *srv, hd_hub_t *hub, const hd_sio_options_t *opt);
/* Routes the Engine.IO endpoint. 0 or HD_E*. */
int hd_sio_server_route(hd_sio_server_t *sio, hd_router_t *router);
void hd_sio_server_free(hd_sio_server_t *sio);
/* Sockets connected (all namespaces) and Engine.IO sessions open. */
size_t hd_sio_socket_count(const hd_sio_server_t *sio);
size_t hd_sio_client_count(const hd_sio_server_t *sio);

/* Handlers of a namespace (it must be configured). event "*" catches events without a handler. */
int hd_sio_on(hd_sio_server_t *sio, const char *nsp, const char *event, hd_sio_event_fn fn, void *udata);
/* Adds a connect (disconnect) listener; up to 4 per namespace, called in registration order. */
int hd_sio_on_connect(hd_sio_server_t *sio, const char *nsp, hd_sio_connect_fn fn, void *udata);
int hd_sio_on_disconnect(hd_sio_server_t *sio, const char *nsp, hd_sio_disconnect_fn fn, void *udata);

/* Emits an event to one socket. args_json: a JSON array text of the arguments ("[]" for none). */
int hd_sio_emit(hd_sio_socket_t *s, const char *event, const char *args_json);
/* Same, waiting for the client's ack up to timeout_ms; fn is called exactly once. */
int hd_sio_emit_with_ack(hd_sio_socket_t *s, const char *event, const char *args_json, uint64_t timeout_ms,
                         hd_sio_ack_fn fn, void *arg);
/* Re-emits the current event's binary attachments with a new event name (test handlers). */
int hd_sio_emit_binary(hd_sio_socket_t *s, const char *event, json_t *args);
/* Answers a client's ack request with args_json (a JSON array text). */
int hd_sio_ack(hd_sio_socket_t *s, int64_t ack_id, const char *args_json);
/* Same with the current event's binary attachments (BINARY_ACK). */
int hd_sio_ack_binary(hd_sio_socket_t *s, int64_t ack_id, json_t *args);
/* Broadcasts event with args_json (a JSON array text) to `to` on every shard, skipping `skip` (may
 * be NULL), through the hub's one publish path: encoded once per wire form and shard. on_count (may
 * be NULL) gets the total deliveries on this shard's thread once every shard delivered. 0 or HD_E*. */
int hd_sio_broadcast(hd_sio_server_t *sio, const hd_sio_target_t *to, hd_sio_socket_t *skip, const char *event,
                     const char *args_json, hd_hub_count_fn on_count, void *arg);
/* hd_sio_broadcast as a broadcast with acks (socket.io's broadcastWithAck): every recipient, on
 * every node, asks its client for an ack and hands the answer to acks (hub.h; a reference is kept).
 * on_count gets this node's recipients. proto/sio_cluster.h gathers the answers. 0 or HD_E*. */
int hd_sio_broadcast_acked(hd_sio_server_t *sio, const hd_sio_target_t *to, const char *event, const char *args_json,
                           hd_hub_acks_t *acks, hd_hub_count_fn on_count, void *arg);
/* The hub of this server's shard, and its loop. */
hd_hub_t *hd_sio_hub(const hd_sio_server_t *sio);
uv_loop_t *hd_sio_loop(const hd_sio_server_t *sio);
/* socket.io's io.in(rooms).except(except).socketsJoin(room) / socketsLeave(room) /
 * disconnectSockets() (req HD_HUB_REQ_JOIN, _LEAVE, _DISCONNECT; room NULL for the last), applied on
 * every shard. 0 or HD_E*. */
int hd_sio_sockets_request(hd_sio_server_t *sio, const hd_sio_target_t *to, hd_hub_req_t req, const char *room);
/* socket.io's fetchSockets(): fn gets a JSON array of {id, nsp, rooms, data: {sub, role}} of the
 * matching sockets of every shard, on this shard's thread. 0 or HD_E*. */
int hd_sio_fetch_sockets(hd_sio_server_t *sio, const hd_sio_target_t *to, hd_hub_fetch_fn fn, void *arg);
/* Room membership of a socket (room names as the application sees them). */
int hd_sio_join(hd_sio_socket_t *s, const char *room);
int hd_sio_leave(hd_sio_socket_t *s, const char *room);
/* Disconnects the socket from its namespace (close_client: the whole Engine.IO session too).
 * A socket closed while an application callback runs on it stays valid until that callback
 * returns (an emit may run the shard's mailbox, which may close it): the calls above then answer
 * HD_ECLOSED or do nothing. */
void hd_sio_disconnect(hd_sio_socket_t *s, bool close_client);

/* The connected socket with this id in nsp (in its own room), or NULL (for answers that arrive
 * after a socket may have gone: keep the id, not the pointer). */
hd_sio_socket_t *hd_sio_socket_find(hd_sio_server_t *sio, const char *nsp, const char *id);
const char *hd_sio_socket_id(const hd_sio_socket_t *s);
const char *hd_sio_socket_nsp(const hd_sio_socket_t *s);
/* The verified token claims, or NULL for an anonymous socket. */
const hd_claims_t *hd_sio_socket_claims(const hd_sio_socket_t *s);
/* Binary attachments of the event being handled (count in *n), or NULL. */
hd_buf_t *const *hd_sio_attachments(const hd_sio_socket_t *s, size_t *n);
void *hd_sio_socket_udata(const hd_sio_socket_t *s);
void hd_sio_socket_set_udata(hd_sio_socket_t *s, void *udata);
/* Application requests in flight on the socket (events whose answer waits for a store write, say):
 * take counts one more and returns true while fewer than limit are in flight, else false (nothing
 * counted); done counts one less when its answer comes (never below 0: a socket recovered under the
 * same id starts from 0). A socket that goes takes its count with it. */
bool hd_sio_socket_inflight_take(hd_sio_socket_t *s, uint32_t limit);
void hd_sio_socket_inflight_done(hd_sio_socket_t *s);
/* --- watching every namespace, and admitting a namespace's CONNECTs (the Admin UI) ------------ */

/* Told of what happens to the sockets of every namespace, on their shard's thread. */
typedef struct {
  /* s is connected (its CONNECT answered, fresh or recovered). */
  void (*on_connect)(hd_sio_socket_t *s, void *arg);
  /* s is leaving (reason as Socket.IO names it); it is still in its rooms. */
  void (*on_disconnect)(hd_sio_socket_t *s, const char *reason, void *arg);
  /* A connected s joined (joined true) or left an application room. */
  void (*on_room)(hd_sio_socket_t *s, const char *room, bool joined, void *arg);
  /* An event from s's client (incoming) or emitted to s alone (hd_sio_emit*): args_json is the JSON
   * array text of [event, ...args] (binary attachments as placeholders). */
  void (*on_event)(hd_sio_socket_t *s, const char *args_json, bool incoming, void *arg);
  /* s's connection moved from long-polling to WebSocket. */
  void (*on_upgrade)(hd_sio_socket_t *s, void *arg);
} hd_sio_monitor_t;

/* Sets the watcher of every namespace (m borrowed, NULL: none). */
void hd_sio_set_monitor(hd_sio_server_t *sio, const hd_sio_monitor_t *m, void *arg);

/* A CONNECT waiting for its namespace's admission callback. */
typedef struct hd_sio_admission hd_sio_admission_t;
/* Decides a CONNECT to the namespace in place of the token check: auth is the CONNECT's payload
 * (borrowed for the call, may be NULL); the callback calls hd_sio_admission_done exactly once, now
 * or later on this shard's thread. */
typedef void (*hd_sio_admit_fn)(hd_sio_admission_t *a, json_t *auth, void *arg);
/* Installs nsp's admission callback. 0 or HD_ENOTFOUND. */
int hd_sio_set_admission(hd_sio_server_t *sio, const char *nsp, hd_sio_admit_fn fn, void *arg);
/* Ends an admission: claims (copied) let the socket in, NULL refuses it with CONNECT_ERROR `why`
 * (data.code 1001). Frees a; when the client went meanwhile, nothing else happens. */
void hd_sio_admission_done(hd_sio_admission_t *a, const hd_claims_t *claims, const char *why);
/* The client's address (the Engine.IO handshake's, without its port) of a pending admission. */
const char *hd_sio_admission_address(const hd_sio_admission_t *a);

/* Appends s as fetchSockets describes it (a JSON object, see hd_sio_fetch_sockets; with
 * keep_handshake also `handshake` and data._admin {clientId, transport}). */
void hd_sio_socket_describe(hd_sio_socket_t *s, hd_sbuf_t *out);
/* The namespaces (count, then each name) and the sockets connected to each on this shard. */
int hd_sio_namespace_count(const hd_sio_server_t *sio);
const char *hd_sio_namespace_name(const hd_sio_server_t *sio, int i);
size_t hd_sio_namespace_sockets(const hd_sio_server_t *sio, int i);
/* Engine.IO sessions this shard opened and closed since it started. */
void hd_sio_client_totals(const hd_sio_server_t *sio, uint64_t *opened, uint64_t *closed);
/* Engine.IO sessions of this shard still on long-polling (walks the connected sockets). */
size_t hd_sio_polling_client_count(const hd_sio_server_t *sio);

/* The hub room key of an application room in nsp ("/" shares names with JSON-protocol topics). */
int hd_sio_room_key(const char *nsp, const char *room, char *out, size_t len);

#endif
