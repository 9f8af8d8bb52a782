/* Request authentication (see auth.h). */
#include "app/auth.h"

#include <openssl/crypto.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

int hd_auth_request(const hd_http_request_t *req, const hd_jwt_config_t *jwt, const char *api_key, bool allow_api_key,
                    hd_caller_t *out, const char **why) {
  memset(out, 0, sizeof(*out));
  hd_slice_t key = hd_http_request_header(req, "X-API-Key");
  if (key.ptr && allow_api_key) {
    size_t n = api_key ? strlen(api_key) : 0;
    if (!n || key.len != n || CRYPTO_memcmp(key.ptr, api_key, n)) {
      *why = "invalid API key";
      return HD_EFORBIDDEN;
    }
    out->api_key = true;
    return 0;
  }
  hd_slice_t auth = hd_http_request_header(req, "Authorization");
  if (!auth.ptr) {
    *why = allow_api_key ? "credentials required: Authorization: Bearer <token> or X-API-Key"
                         : "credentials required: Authorization: Bearer <token>";
    return HD_EINVAL;
  }
  char token[8192];
  if (auth.len <= 7 || strncasecmp(auth.ptr, "Bearer ", 7) || auth.len - 7 >= sizeof token) {
    *why = "Authorization must be `Bearer <token>`";
    return HD_EINVAL;
  }
  memcpy(token, auth.ptr + 7, auth.len - 7);
  token[auth.len - 7] = '\0';
  return hd_jwt_verify(jwt, token, &out->claims, why);
}

bool hd_caller_is_admin(const hd_caller_t *c) { return c->api_key || !strcmp(c->claims.role, "admin"); }
