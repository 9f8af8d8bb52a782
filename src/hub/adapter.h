/* The adapter: how a publish reaches every shard of this node and, for a cluster adapter, the other
 * nodes — a struct of functions, like socket.io's Adapter. The local adapter (cluster/local.c)
 * delivers across this node's shards through their mailboxes; a Redis adapter plugs in behind the
 * same interface. */
#ifndef HD_ADAPTER_H
#define HD_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/hub.h"

/* What /health shows of the cluster. */
typedef struct {
  bool enabled;            /* a cluster adapter */
  bool connected;          /* its link to the other nodes is up */
  uint32_t nodes;          /* nodes seen, this one included */
  char where[300];         /* e.g. the Redis host:port */
} hd_adapter_health_t;

typedef struct {
  /* Delivers msg (its target inside) on every shard, from shard `from` (skip is a member of from, or
   * NULL), and, unless LOCAL or REMOTE, on the other nodes. Called under the hub's publish lock, so
   * messages leave in id order. on_count(arg, total) runs on from's thread once every shard of this
   * node delivered (NULL: nobody waits). With WANTS_ACKS, the other nodes' recipient counts and
   * their clients' answers reach msg->acks. 0 or HD_E*. */
  int (*broadcast)(hd_adapter_t *a, hd_hub_t *from, hd_hub_msg_t *msg, hd_hub_member_t *skip,
                   hd_hub_count_fn on_count, void *arg);
  /* Applies req (join/leave `room`, or disconnect) on every shard to the members of to's rooms minus
   * its except rooms (hd_hub_apply). 0 or HD_E*. */
  int (*request)(hd_adapter_t *a, hd_hub_t *from, hd_hub_req_t req, const hd_hub_target_t *to, const char *room);
  /* Gathers the descriptions of the members of to's rooms minus its except rooms on every shard
   * (hd_hub_describe); fn runs on from's thread once all have answered. 0 or HD_E*. */
  int (*fetch)(hd_adapter_t *a, hd_hub_t *from, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg);
  /* Gathers the room keys of the members of to's rooms minus its except rooms on every shard (and
   * node), each once (hd_hub_room_keys); fn runs on from's thread. 0 or HD_E*. */
  int (*all_rooms)(hd_adapter_t *a, hd_hub_t *from, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg);
  /* Sends a serverSideEmit to the other nodes (hd_hub_server_side_emit). 0 or HD_E*. */
  int (*server_side_emit)(hd_adapter_t *a, hd_hub_t *from, const char *nsp, const char *args_json,
                          hd_hub_answers_fn fn, void *arg);
  /* Nodes in the cluster, this one included (1 for the local adapter). */
  uint32_t (*server_count)(hd_adapter_t *a);
  void (*free)(hd_adapter_t *a);
  /* Optional (any thread): fills out for /health; absent = a single node. */
  void (*health)(hd_adapter_t *a, hd_adapter_health_t *out);
  /* Optional (any thread): appends its Prometheus series (herald_cluster_*) for /metrics. */
  void (*metrics)(hd_adapter_t *a, hd_sbuf_t *out);
} hd_adapter_ops_t;

struct hd_adapter {
  const hd_adapter_ops_t *ops;
};

#endif
