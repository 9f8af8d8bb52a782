/* Connections per user over the node: a count per token subject, shared by the shards (a mutex
 * inside), so one user cannot open Socket.IO sockets without bound (--max-connections-per-user; the
 * JSON protocol counts its clients in proto/json_clients.c). A user's entry goes with their last
 * connection: memory follows the users connected, not those seen. */
#ifndef HD_USER_CONNS_H
#define HD_USER_CONNS_H

#include <stddef.h>
#include <stdint.h>

typedef struct hd_user_conns hd_user_conns_t;

/* A table allowing `max` connections per user (0: no cap). NULL when out of memory. */
hd_user_conns_t *hd_user_conns_new(uint32_t max);
/* Counts one more connection of sub: 0, or HD_ERANGE when sub has max already (not counted), HD_ENOMEM. */
int hd_user_conns_take(hd_user_conns_t *u, const char *sub);
/* Gives back one connection of sub taken with hd_user_conns_take. */
void hd_user_conns_give(hd_user_conns_t *u, const char *sub);
/* Users with at least one connection counted. */
size_t hd_user_conns_users(hd_user_conns_t *u);
void hd_user_conns_free(hd_user_conns_t *u);

#endif
