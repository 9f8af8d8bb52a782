/* Which users' tokens are refused now, node-wide: a table (user id -> disabled, deleted, demo,
 * tokens_after) rebuilt from the store's hd_store_user_states whenever the users change, read by
 * every shard under a read lock at each connect and each REST request (one hash lookup). A token is
 * refused when its user is deleted or disabled, is a demo account while the server listens beyond
 * loopback, or was issued (iat) before the user's last password change. Subjects that are not ids
 * of this database (tokens minted by another backend) are never refused here. */
#ifndef HD_USER_STATES_H
#define HD_USER_STATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "store/store.h"

typedef struct hd_user_states hd_user_states_t;

/* An empty table; loopback: the server listens on a loopback address only (demo accounts allowed).
 * NULL when out of memory. */
hd_user_states_t *hd_user_states_new(bool loopback);
void hd_user_states_free(hd_user_states_t *us);
/* 0 when the token's user may act; HD_EFORBIDDEN with a short English reason in *why otherwise. */
int hd_user_states_check(hd_user_states_t *us, const hd_claims_t *claims, const char **why);
/* True when a user (by id) is refused whatever its token: deleted, disabled, or a demo account
 * beyond loopback. */
bool hd_user_states_blocked(hd_user_states_t *us, int64_t id);
/* Replaces the table with users (from hd_store_user_states). Calls on_refused(arg, id, reason) for
 * every user refused now who was not before (blocked, or a later tokens_after): their live
 * connections must go. 0 or HD_ENOMEM (the table is then unchanged). */
int hd_user_states_replace(hd_user_states_t *us, const hd_store_users_t *users,
                           void (*on_refused)(void *arg, int64_t id, const char *reason), void *arg);
/* Whether the server listens on loopback only. */
bool hd_user_states_loopback(const hd_user_states_t *us);

#endif
