/* The application: everything a shard serves on top of the network core — its hub, Socket.IO and
 * JSON-protocol servers, the services and routes (health, metrics, echo, static pages, the client
 * bundles) — and what the shards of a node share (hd_app_shared_t: keys, the publish path's shared
 * part, topic history, Socket.IO recovery, presence), which the node creates once. */
#ifndef HD_APP_H
#define HD_APP_H

#include "app/json_inbox.h"
#include "app/presence.h"
#include "app/retention.h"
#include "app/static_files.h"
#include "app/topic_policy.h"
#include "core/mailbox.h"
#include "delivery/dedupe.h"
#include "delivery/history.h"
#include "delivery/recovery.h"
#include "hub/hub.h"
#include "net/server.h"
#include "proto/json_proto.h"
#include "proto/sio.h"
#include "store/store.h"

/* The key material behind a hd_jwt_config_t (owned). */
typedef struct {
  char secret[129];
  char *public_key, *private_key; /* PEM text read from the configured files */
} hd_app_keys_t;

/* The ack error (code 429) of a Socket.IO event that writes to the store, past
 * --max-socket-store-requests waiting on its socket (chat.c, notifications.c). */
#define HD_APP_INFLIGHT_MESSAGE "too many requests in flight on this connection (--max-socket-store-requests)"

#define DEDUPE_KEEP_MS (10 * 60 * 1000) /* a JSON client's processed messageIds outlive its connection */

/* What every shard's app shares; created by the node before the shards, freed after them. */
typedef struct hd_app_shared {
  const hd_config_t *cfg;
  uint32_t shard_count;
  char node_tag[4];             /* names this node in Engine.IO session ids (random per process) */
  hd_app_keys_t keys;
  hd_jwt_config_t jwt;
  hd_hub_shared_t hub;          /* publish lock, ids, adapter (set by the node), history, observer */
  hd_history_t *history;
  hd_recovery_t *recovery;      /* NULL with --recovery-window 0 */
  hd_presence_shared_t *presence;
  hd_topic_policy_t *topics;    /* JSON protocol: topic rules */
  hd_dedupe_t *dedupe;          /* JSON protocol: client messageIds, whatever shard they reconnect to */
  hd_jp_clients_t *json_clients; /* JSON protocol: which shard holds each client's connection */
  struct hd_user_conns *sio_users; /* Socket.IO sockets per user over the node (user_conns.h) */
  void *login_limiter;          /* users.c: failed sign-ins per address */
  struct hd_user_states *user_states; /* whose tokens are refused (user_states.h) */
  uint32_t eio_sessions;        /* Engine.IO sessions open over every shard (atomic), for --max-eio-sessions */
  size_t eio_polling_bytes;     /* polling output waiting for GETs over every shard (atomic), for --max-polling-bytes */
  uint64_t eio_closed;          /* Engine.IO sessions closed since start over every shard (atomic), for mem_trim.c */
  uint64_t mem_trims;           /* malloc_trim calls made by mem_trim.c (atomic), for /metrics */
  hd_addr_rate_t *eio_handshakes; /* Engine.IO handshakes per address (--eio-handshake-rate), or NULL */
  hd_addr_rate_t *chat_senders; /* chat messages per customer (--chat-rate), or NULL */
  struct hd_app **apps;         /* every shard's app, by shard index (for node-wide figures) */
  void *(*cluster_nodes)(void *arg); /* clustered: the registry's nodes for /health (a new jansson array) */
  void *cluster_nodes_arg;
  hd_retention_counts_t retention; /* retention.c: what this node pruned */
  struct hd_last_status *last_status; /* system_events.c: the last status posted on this node */
} hd_app_shared_t;

/* Builds what the shards share from cfg for shard_count shards. 0, or HD_E* with a logged reason. */
int hd_app_shared_init(hd_app_shared_t *sh, const hd_config_t *cfg, uint32_t shard_count);
void hd_app_shared_free(hd_app_shared_t *sh);

typedef struct hd_app {
  hd_app_shared_t *shared;
  uint32_t shard;
  hd_mailbox_t *mailbox;        /* this shard's */
  hd_server_t *srv;
  hd_hub_t *hub;
  hd_sio_server_t *sio;
  hd_eio_server_t *eio_echo;    /* --test-handlers: raw Engine.IO echo at /engine.io/ */
  hd_jp_server_t *jp;
  hd_json_inbox_t json_inbox;   /* the JSON protocol's inbox in this shard's store handle */
  hd_store_t *store;
  void *presence;               /* presence.c: online sockets and admins */
  void *user_watch;             /* shard 0: user_watch.c's poll */
  void *notifications;          /* notifications.c: counters */
  void *system_events;          /* system_events.c: counters */
  void *retention;              /* retention.c: the pruning timer (shard 0 only) */
  void *mem_trim;               /* mem_trim.c: the trim timer (shard 0 only) */
  struct {
    uint64_t chat_sessions, chat_messages; /* stored since start, for /metrics */
  } counters;
  hd_static_root_t client_root; /* socket.io-client dist files */
  hd_static_root_t js_root;     /* clients/js: herald-client.js */
  void *admin_ui;               /* admin_ui.c (--admin-ui), or NULL */
  void *topic_store;            /* topic_store.c (shard 0 of a single node): history kept across restarts */
} hd_app_t;

/* Builds the application of shard `shard` on srv (its mailbox and store handle borrowed) and
 * registers every route. 0, or HD_E* with a logged reason. */
int hd_app_init(hd_app_t *app, hd_app_shared_t *shared, uint32_t shard, hd_server_t *srv, hd_mailbox_t *mailbox,
                hd_store_t *store);
/* Builds the JWT configuration from cfg: HS256 with --jwt-secret, else <data-dir>/jwt-secret
 * (created on first use); RS256/ES256 with the PEM files named by --jwt-public-key and
 * --jwt-private-key. keys holds the material jwt points into. 0, or HD_E* with a logged reason. */
int hd_app_jwt_setup(const hd_config_t *cfg, hd_app_keys_t *keys, hd_jwt_config_t *jwt);
/* Frees what hd_app_jwt_setup read. */
void hd_app_keys_free(hd_app_keys_t *keys);
/* Closes sessions and frees the application (before hd_server_free). */
void hd_app_free(hd_app_t *app);

#endif
