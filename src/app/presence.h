/* Who is online over Socket.IO: on connect a socket joins its identity's rooms (`admins` and
 * `admin:<id>` for admins, `user:<id>` for users); the node counts its online admins and users for
 * every shard; the legacy `register_user` event is accepted only when it names the token's identity.
 * Clustered (--redis-url), each node's presence is also in Redis (cluster/presence_redis.h): the
 * node describes its own (hd_presence_shared_describe) and takes the others' back about once a
 * second (hd_presence_shared_take), so the online admins (chat assignment) and the listing of
 * GET /api/v4/presence (presence_rest.c) are cluster-wide; this node's own part is always live. */
#ifndef HD_PRESENCE_H
#define HD_PRESENCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hd_app hd_app_t;
typedef struct hd_presence_shared hd_presence_shared_t;

/* The node-wide presence counts shared by every shard's app; NULL when out of memory. */
hd_presence_shared_t *hd_presence_shared_new(void);
void hd_presence_shared_free(hd_presence_shared_t *sh);

/* Clustered: this node's tag (3 characters, copied), and changed(arg), told of every change of this
 * node's presence from any shard's thread. Call before the shards run. */
void hd_presence_shared_set_cluster(hd_presence_shared_t *sh, const char *self_tag, void (*changed)(void *arg),
                                    void *arg);
/* This node's presence as its cluster entry, malloc'd JSON text (NULL when out of memory):
 * {connections, sockets: {admin, user}, admins: {id: sockets}, admins_total, users: {id: sockets}
 * (the first HD_PRESENCE_LIST_USERS), users_total}. Any thread. */
char *hd_presence_shared_describe(hd_presence_shared_t *sh, uint32_t connections);

/* A node's entry as read from Redis (borrowed). */
typedef struct {
  const char *tag; /* 3 characters */
  const char *entry;
  size_t len;
  uint64_t age_ms;
} hd_presence_entry_t;
/* Replaces the other nodes' view with these entries (this node's own tag is skipped; entries that do
 * not parse are ignored). Any thread. */
void hd_presence_shared_take(hd_presence_shared_t *sh, const hd_presence_entry_t *entries, size_t count);

/* Called when an admin's first socket connects (to assign waiting sessions). */
typedef void (*hd_presence_admin_fn)(hd_app_t *app, int64_t admin_id, void *arg);

/* Registers the connect/disconnect handlers on namespace "/" of this shard (counting into
 * app->shared->presence) and GET /api/v4/presence. 0 or HD_E*. */
int hd_presence_register(hd_app_t *app);
void hd_presence_free(hd_app_t *app);
/* Sets the one listener told when an admin comes online on this node. */
void hd_presence_on_admin_online(hd_app_t *app, hd_presence_admin_fn fn, void *arg);
/* Online admins' ids (numeric ones, on this node or, clustered, any node) into ids (at most max);
 * returns how many are online. */
size_t hd_presence_online_admins(const hd_app_t *app, int64_t *ids, size_t max);
/* Whether the admin is online on this node or, clustered, any node. */
bool hd_presence_admin_online(const hd_app_t *app, int64_t admin_id);
/* Sockets online on this node right now, by role. */
size_t hd_presence_count(const hd_app_t *app, const char *role);
/* Who is online, as GET /api/v4/presence answers it (new reference; see presence_cluster.c); urls is
 * the node registry's array of {tag, url} (borrowed) or NULL. */
json_t *hd_presence_json(const hd_app_t *app, json_t *urls);

/* GET /api/v4/presence (presence_rest.c). 0 or HD_E*. */
int hd_presence_rest_register(hd_app_t *app);

#endif
