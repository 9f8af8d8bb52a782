/* Users: argon2id password hashes (libsodium), sign-in at POST /api/v4/auth/login with a per-address
 * limit on failures, and the demo accounts of a first start (`herald user` is users_cli.h). */
#ifndef HD_USERS_H
#define HD_USERS_H

#include <stddef.h>

#include "core/config.h"

typedef struct hd_app hd_app_t;

/* Routes the auth endpoints and, with --demo-users, creates the demo accounts when there are no
 * users yet. 0 or HD_E*. */
int hd_users_register(hd_app_t *app);
/* Client addresses the sign-in limiter tracks now (any thread). */
size_t hd_users_limiter_addresses(void *limiter);
/* Frees the node-wide sign-in failure counts (app->shared->login_limiter). */
void hd_users_limiter_free(void *limiter);
/* argon2id hash of password into out (crypto_pwhash_STRBYTES). Slow: not for the event loop. 0 or HD_E*. */
int hd_users_hash_password(const char *password, char *out, size_t len);

#endif
