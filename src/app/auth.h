/* Authenticating REST requests: `Authorization: Bearer <JWT>` or, where allowed, the backend key in
 * `X-API-Key`. Shared by every endpoint that needs a caller identity. */
#ifndef HD_AUTH_H
#define HD_AUTH_H

#include <stdbool.h>

#include "auth/jwt.h"
#include "net/http_request.h"

typedef struct {
  bool api_key;       /* authenticated by the API key: a trusted backend, acts as admin */
  hd_claims_t claims; /* from the token (empty for the API key) */
} hd_caller_t;

/* Identifies the caller. Returns 0; or HD_EINVAL (no credentials), HD_EFORBIDDEN (bad key or token),
 * HD_ETIMEOUT (expired token) with *why set; answer those with 401. */
int hd_auth_request(const hd_http_request_t *req, const hd_jwt_config_t *jwt, const char *api_key, bool allow_api_key,
                    hd_caller_t *out, const char **why);
/* True for the API key or an admin token. */
bool hd_caller_is_admin(const hd_caller_t *c);

#endif
