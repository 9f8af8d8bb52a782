/* What presence.c (this node's sockets) and presence_cluster.c (the other nodes, from Redis) share:
 * the node-wide presence state, under one mutex. Private to the presence files. */
#ifndef HD_PRESENCE_INTERNAL_H
#define HD_PRESENCE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "app/presence.h"
#include "core/map.h"

#define HD_PRESENCE_KEY_MAX 128      /* a token's sub longer than this is not tracked by id */
#define HD_PRESENCE_LIST_USERS 1000  /* users listed per node entry (all are counted) */
#define HD_PRESENCE_LIST_ADMINS 10000 /* admins listed per node entry */
#define HD_PRESENCE_STALE_MS 10000   /* other nodes' entries count for this long after the last read */

/* One identity online: its id as text (the token's sub), as a number (0 when not numeric), sockets. */
typedef struct {
  char key[HD_PRESENCE_KEY_MAX];
  int64_t id;
  uint32_t sockets;
} hd_presence_ident_t;

/* Another node's entry as last read from Redis. */
typedef struct {
  char tag[4];
  uint64_t age_ms;
  uint64_t connections, sockets_admin, sockets_user, users_total;
  bool users_truncated;
  size_t admin_count, user_count;
  hd_presence_ident_t *admins, *users; /* listed ones */
} hd_presence_node_t;

/* The other nodes, as of one read. */
typedef struct {
  size_t count;
  hd_presence_node_t *nodes;
  hd_map_t admins; /* admin id text -> hd_presence_ident_t (sockets summed over the nodes; keys in nodes) */
  hd_presence_ident_t *merged; /* the values of admins */
} hd_presence_remote_t;

struct hd_presence_shared {
  uv_mutex_t mu;
  hd_map_t admins, users; /* this node: id text -> hd_presence_ident_t with at least one socket */
  size_t sockets_admin, sockets_user;
  /* clustered (set before the shards run): told of every change; the other nodes under mu */
  void (*changed)(void *arg);
  void *changed_arg;
  char self_tag[4];
  hd_presence_remote_t *remote; /* NULL: none read yet */
  uint64_t remote_ns;           /* uv_hrtime of the read */
};

/* The other nodes' view if it is fresh enough to count (under mu), else NULL. */
const hd_presence_remote_t *hd_presence_remote_fresh(const hd_presence_shared_t *sh);
void hd_presence_remote_free(hd_presence_remote_t *r);

#endif
