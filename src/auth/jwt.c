/* JWT verification and signing over libjwt (see jwt.h). */
#include "auth/jwt.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

#define MAX_TOKEN_LEN 8192

/* Copies a string or integer claim into out; 0 or HD_EINVAL. */
static int claim_text(json_t *claims, const char *name, char *out, size_t len) {
  json_t *v = json_object_get(claims, name);
  if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < len) {
    snprintf(out, len, "%s", json_string_value(v));
    return 0;
  }
  if (json_is_integer(v)) {
    snprintf(out, len, "%lld", (long long)json_integer_value(v));
    return 0;
  }
  return HD_EINVAL;
}

/* True when the aud claim (string or array of strings) names audience. */
static int audience_matches(json_t *aud, const char *audience) {
  if (json_is_string(aud)) return !strcmp(json_string_value(aud), audience);
  size_t i;
  json_t *v;
  json_array_foreach(aud, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), audience)) return 1;
  return 0;
}

static jwt_alg_t algorithm_of(const char *name) {
  if (!name || !*name || !strcmp(name, "HS256")) return JWT_ALG_HS256;
  if (!strcmp(name, "RS256")) return JWT_ALG_RS256;
  if (!strcmp(name, "ES256")) return JWT_ALG_ES256;
  return JWT_ALG_INVAL;
}

int hd_jwt_algorithm_valid(const char *algorithm) { return algorithm_of(algorithm) == JWT_ALG_INVAL ? HD_EINVAL : 0; }

int hd_jwt_sub_valid(const char *sub) {
  size_t n = sub ? strlen(sub) : 0;
  if (!n || n > 127) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)sub[i];
    if (c < 0x20 || c == 0x7f || c == '*' || c == '{' || c == '}' || c == ',') return 0;
  }
  return 1;
}

static int fail(const char **why, const char *reason, int code) {
  if (why) *why = reason;
  return code;
}

int hd_jwt_verify(const hd_jwt_config_t *cfg, const char *token, hd_claims_t *out, const char **why) {
  memset(out, 0, sizeof(*out));
  if (!token || !*token) return fail(why, "token missing", HD_EINVAL);
  if (strlen(token) > MAX_TOKEN_LEN) return fail(why, "token too long", HD_EINVAL);
  jwt_alg_t alg = algorithm_of(cfg->algorithm);
  const char *key = alg == JWT_ALG_HS256 ? cfg->secret : cfg->public_key;
  if (alg == JWT_ALG_INVAL || !key || !*key) return fail(why, "no verification key configured", HD_EFORBIDDEN);
  /* the token must use the configured algorithm: no `none`, no switch (e.g. RS256 -> HS256) */
  jwt_t *jwt = NULL;
  int rc = jwt_decode(&jwt, token, (const unsigned char *)key, (int)strlen(key));
  if (rc || !jwt) {
    jwt_free(jwt);
    return fail(why, rc == EINVAL ? "invalid token signature or format" : "invalid token", HD_EFORBIDDEN);
  }
  if (jwt_get_alg(jwt) != alg) {
    jwt_free(jwt);
    return fail(why, "token algorithm not allowed", HD_EFORBIDDEN);
  }
  /* no extension is understood here, so a token naming any critical one is refused (RFC 7515 4.1.11) */
  char *crit = jwt_get_headers_json(jwt, "crit");
  if (crit) {
    free(crit);
    jwt_free(jwt);
    return fail(why, "token crit header not supported", HD_EFORBIDDEN);
  }
  char *grants = jwt_get_grants_json(jwt, NULL);
  jwt_free(jwt);
  json_t *claims = grants ? json_loads(grants, 0, NULL) : NULL;
  free(grants);
  if (!json_is_object(claims)) {
    json_decref(claims);
    return fail(why, "token claims malformed", HD_EINVAL);
  }
  int64_t now = (int64_t)time(NULL);
  json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
  json_t *iat = json_object_get(claims, "iat");
  rc = 0;
  /* lifetime: from iat (or now, whichever is earlier) to exp */
  int64_t from = json_is_number(iat) && json_number_value(iat) > 0 && json_number_value(iat) < (double)now
                     ? (int64_t)json_number_value(iat)
                     : now;
  if (claim_text(claims, "sub", out->sub, sizeof out->sub)) rc = fail(why, "token has no subject", HD_EINVAL);
  else if (!hd_jwt_sub_valid(out->sub)) rc = fail(why, "token subject has invalid characters", HD_EINVAL);
  else if (exp && (!json_is_number(exp) || json_number_value(exp) < 0 || json_number_value(exp) > 1e15))
    rc = fail(why, "token exp malformed", HD_EINVAL); /* also keeps the casts to int64_t defined */
  else if (!exp && cfg->max_ttl_s > 0) rc = fail(why, "token has no exp", HD_EFORBIDDEN);
  else if (exp && (int64_t)json_number_value(exp) + cfg->leeway_s < now) rc = fail(why, "token expired", HD_ETIMEOUT);
  else if (exp && cfg->max_ttl_s > 0 && (int64_t)json_number_value(exp) - from > cfg->max_ttl_s + cfg->leeway_s)
    rc = fail(why, "token lifetime exceeds --jwt-max-ttl", HD_EFORBIDDEN);
  else if (nbf && (!json_is_number(nbf) || (int64_t)json_number_value(nbf) - cfg->leeway_s > now))
    rc = fail(why, "token not yet valid", HD_ETIMEOUT);
  else if (cfg->issuer && *cfg->issuer &&
           (!json_is_string(json_object_get(claims, "iss")) ||
            strcmp(json_string_value(json_object_get(claims, "iss")), cfg->issuer)))
    rc = fail(why, "token issuer not accepted", HD_EFORBIDDEN);
  else if (cfg->audience && *cfg->audience && !audience_matches(json_object_get(claims, "aud"), cfg->audience))
    rc = fail(why, "token audience not accepted", HD_EFORBIDDEN);
  if (!rc) {
    if (claim_text(claims, "role", out->role, sizeof out->role)) snprintf(out->role, sizeof out->role, "user");
    out->exp = exp ? (int64_t)json_number_value(exp) : 0;
    out->iat = json_is_number(iat) && fabs(json_number_value(iat)) < 1e15 ? (int64_t)json_number_value(iat) : 0;
  }
  json_decref(claims);
  return rc;
}

int hd_jwt_sign(const hd_jwt_config_t *cfg, const char *sub, const char *role, int64_t ttl_s, char **out) {
  *out = NULL;
  jwt_alg_t alg = algorithm_of(cfg->algorithm);
  const char *key = alg == JWT_ALG_HS256 ? cfg->secret : cfg->private_key;
  if (alg == JWT_ALG_INVAL || !key || !*key || !hd_jwt_sub_valid(sub) || !role || ttl_s <= 0) return HD_EINVAL;
  if (cfg->max_ttl_s > 0 && ttl_s > cfg->max_ttl_s) ttl_s = cfg->max_ttl_s;
  int64_t now = (int64_t)time(NULL);
  json_t *claims = json_pack("{s:s, s:s, s:I, s:I}", "sub", sub, "role", role, "iat", (json_int_t)now, "exp",
                             (json_int_t)(now + ttl_s));
  if (claims && cfg->issuer && *cfg->issuer) json_object_set_new(claims, "iss", json_string(cfg->issuer));
  if (claims && cfg->audience && *cfg->audience) json_object_set_new(claims, "aud", json_string(cfg->audience));
  char *claims_json = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
  json_decref(claims);
  jwt_t *jwt = NULL;
  int rc = HD_ENOMEM;
  if (claims_json && jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, claims_json) == 0 &&
      jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)) == 0) {
    *out = jwt_encode_str(jwt);
    rc = *out ? 0 : HD_ENOMEM;
  }
  jwt_free(jwt);
  free(claims_json);
  return rc;
}
