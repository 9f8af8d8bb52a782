/* Users: argon2id password hashes (libsodium), sign-in at POST /api/v4/auth/login with a per-address
 * limit on failures, and the demo accounts of a first start (`herald user` is users_cli.h). */
#ifndef HD_USERS_H
#define HD_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "store/store.h"

typedef struct hd_app hd_app_t;

/* Routes the auth endpoints and, with --demo-users, creates the demo accounts when there are no
 * users yet. 0 or HD_E*. */
int hd_users_register(hd_app_t *app);
/* Client addresses the sign-in limiter tracks now (any thread). */
size_t hd_users_limiter_addresses(void *limiter);
/* Frees the node-wide sign-in failure counts (app->shared->login_limiter). */
void hd_users_limiter_free(void *limiter);
#define HD_USERS_PASSWORD_MAX 256 /* bytes of a password, NUL included */

/* Who a checked password belongs to. */
typedef struct {
  int64_t id;
  bool disabled, demo;
  char name[HD_STORE_NAME_MAX * 4 + 1], role[16], display[HD_STORE_NAME_MAX * 4 + 1];
} hd_users_identity_t;

/* The answer of hd_users_check on the asking shard: 0 (who is the user), HD_ENOTFOUND (wrong name or
 * password), HD_EFORBIDDEN (who is disabled, or a demo account while the server listens beyond
 * loopback), another HD_E* when the store failed. who is borrowed for the call. */
typedef void (*hd_users_check_fn)(void *arg, int status, const hd_users_identity_t *who);
/* Checks a user name and password (argon2id on a worker thread) under the node's sign-in limits:
 * failures per address `addr` and --login-concurrency. 0 (fn will be called exactly once, maybe
 * before this returns), HD_ERANGE (too many failures from addr), HD_EBUSY (too many checks now),
 * HD_EINVAL (password too long), another HD_E* (fn not called). */
int hd_users_check(hd_app_t *app, const char *addr, const char *name, const char *password, hd_users_check_fn fn,
                   void *arg);
/* argon2id hash of password into out (crypto_pwhash_STRBYTES). Slow: not for the event loop. 0 or HD_E*. */
int hd_users_hash_password(const char *password, char *out, size_t len);

#endif
