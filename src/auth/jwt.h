/* JSON Web Tokens: verifying a client's token (HS256 with the configured secret by default, or
 * RS256/ES256 with a public key; `alg: none` and any other algorithm than the configured one refused;
 * exp/nbf checked with a small leeway; iss/aud when configured) and minting tokens for
 * `herald token` and the login endpoint. */
#ifndef HD_JWT_H
#define HD_JWT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *secret;      /* HS256 key */
  const char *issuer;      /* required `iss` when non-empty */
  const char *audience;    /* required `aud` when non-empty */
  int64_t leeway_s;        /* clock skew allowed on exp/nbf */
  const char *algorithm;   /* "HS256" (NULL or empty too), "RS256" or "ES256" */
  const char *public_key;  /* PEM, verifies RS256/ES256 tokens */
  const char *private_key; /* PEM, signs RS256/ES256 tokens; NULL: this server cannot mint them */
  int64_t max_ttl_s;       /* > 0: tokens need exp, at most this long after iat (or now); minted ones capped */
} hd_jwt_config_t;

/* 0 when algorithm names a supported algorithm (HS256, RS256, ES256; empty = HS256), else HD_EINVAL. */
int hd_jwt_algorithm_valid(const char *algorithm);

typedef struct {
  char sub[128];  /* user id (string or integer claim, as text) */
  char role[32];  /* "admin" or "user" (any string the issuer put there) */
  int64_t exp;    /* seconds since the epoch; 0 when absent */
  int64_t iat;
} hd_claims_t;

/* True when sub can name a user: 1-127 bytes, no control characters, none of the characters topic
 * patterns give meaning to (`*`, `{`, `}`, `,`), so a subject never widens a permission pattern. */
int hd_jwt_sub_valid(const char *sub);

/* Verifies token and extracts its claims. Returns 0; HD_EINVAL (missing or malformed token,
 * missing or invalid sub), HD_EFORBIDDEN (bad signature or algorithm, a `crit` header, wrong
 * iss/aud, no exp or a lifetime over max_ttl_s), HD_ETIMEOUT (expired or not yet valid). *why gets
 * a short human reason. */
int hd_jwt_verify(const hd_jwt_config_t *cfg, const char *token, hd_claims_t *out, const char **why);
/* Mints a token for sub/role valid ttl_s seconds (at most max_ttl_s when set) into a malloc'd string
 * (*out, caller frees). 0, HD_EINVAL (sub not hd_jwt_sub_valid, no key, ttl_s <= 0) or HD_ENOMEM. */
int hd_jwt_sign(const hd_jwt_config_t *cfg, const char *sub, const char *role, int64_t ttl_s, char **out);

#endif
