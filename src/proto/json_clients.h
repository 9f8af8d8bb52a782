/* Which shard holds the connection of each JSON-protocol client (identity + clientId): a new
 * connection of the same client on any shard replaces the old one, as on one shard. Shared by the
 * shards of a node, under its own lock; the replaced connection is told on its own shard (a task in
 * that shard's mailbox). */
#ifndef HD_JSON_CLIENTS_H
#define HD_JSON_CLIENTS_H

#include <stdint.h>

#include "core/mailbox.h"

typedef struct hd_jp_clients hd_jp_clients_t;
typedef struct hd_jp_server hd_jp_server_t;

/* A registry for shard_count shards; NULL when out of memory. */
hd_jp_clients_t *hd_jp_clients_new(uint32_t shard_count);
void hd_jp_clients_free(hd_jp_clients_t *c);
/* Registers shard's JSON server and mailbox (before it serves). */
void hd_jp_clients_attach(hd_jp_clients_t *c, uint32_t shard, hd_jp_server_t *jp, hd_mailbox_t *mailbox);
/* Records that `shard` now holds key's connection (key: user id + 0x1f + clientId) and sets *gen to
 * its generation (> 0); a connection of key held on another shard is replaced there
 * (hd_jp_replace). A key not held yet is refused with HD_ERANGE when its user already holds
 * max_per_user keys (0 = no cap); HD_ENOMEM; else 0. */
int hd_jp_clients_claim(hd_jp_clients_t *c, const char *key, uint32_t shard, uint32_t max_per_user, uint64_t *gen);
/* Forgets key when generation gen still holds it (its connection closed). */
void hd_jp_clients_release(hd_jp_clients_t *c, const char *key, uint64_t gen);

#endif
