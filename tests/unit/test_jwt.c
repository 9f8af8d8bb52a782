/* Unit tests for JWT verification: valid tokens, every refusal (signature, alg none, algorithm
 * switch, expiry, nbf, iss, aud, malformed, crit header, missing exp or too long a lifetime under
 * max_ttl_s, subjects with pattern or control characters), integer subjects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/jwt.h"
#include "core/error.h"

static const hd_jwt_config_t cfg = {.secret = "test-secret", .leeway_s = 5};

/* base64url without padding */
static void b64url(const char *in, size_t len, char *out) {
  unsigned char tmp[2048];
  int n = EVP_EncodeBlock(tmp, (const unsigned char *)in, (int)len);
  int j = 0;
  for (int i = 0; i < n; i++) {
    if (tmp[i] == '=') break;
    out[j++] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : (char)tmp[i];
  }
  out[j] = '\0';
}

/* Builds header.payload.signature by hand (HS256 with key, or unsigned when key is NULL). */
static char *make_token(const char *header, const char *payload, const char *key) {
  static char token[4096];
  char h[1024], p[2048], sig[256] = "";
  b64url(header, strlen(header), h);
  b64url(payload, strlen(payload), p);
  snprintf(token, sizeof token, "%s.%s", h, p);
  if (key) {
    unsigned char mac[64];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)token, strlen(token), mac, &mlen);
    b64url((char *)mac, mlen, sig);
  }
  strcat(token, ".");
  strcat(token, sig);
  return token;
}

static void test_sign_and_verify(void **state) {
  char *token = NULL;
  assert_int_equal(hd_jwt_sign(&cfg, "42", "admin", 60, &token), 0);
  hd_claims_t c;
  assert_int_equal(hd_jwt_verify(&cfg, token, &c, NULL), 0);
  assert_string_equal(c.sub, "42");
  assert_string_equal(c.role, "admin");
  assert_true(c.exp > time(NULL));
  hd_jwt_config_t other = {.secret = "another-secret"};
  assert_int_equal(hd_jwt_verify(&other, token, &c, NULL), HD_EFORBIDDEN);
  free(token);
}

static void test_refusals(void **state) {
  hd_claims_t c;
  const char *why = NULL;
  char payload[256];
  long now = (long)time(NULL);
  snprintf(payload, sizeof payload, "{\"sub\":7,\"role\":\"user\",\"exp\":%ld}", now + 60);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, "test-secret"), &c, &why), 0);
  assert_string_equal(c.sub, "7"); /* integer subjects are accepted as text */
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"none\"}", payload, NULL), &c, &why), HD_EFORBIDDEN);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS512\"}", payload, "test-secret"), &c, &why), HD_EFORBIDDEN);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"RS256\"}", payload, "test-secret"), &c, &why), HD_EFORBIDDEN);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\"}", payload, "wrong"), &c, &why), HD_EFORBIDDEN);
  snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"exp\":%ld}", now - 60);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\"}", payload, "test-secret"), &c, &why), HD_ETIMEOUT);
  assert_string_equal(why, "token expired");
  snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"nbf\":%ld}", now + 600);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\"}", payload, "test-secret"), &c, &why), HD_ETIMEOUT);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\"}", "{\"role\":\"admin\"}", "test-secret"), &c, &why),
                   HD_EINVAL); /* no subject */
  assert_int_equal(hd_jwt_verify(&cfg, "", &c, &why), HD_EINVAL);
  assert_int_equal(hd_jwt_verify(&cfg, NULL, &c, &why), HD_EINVAL);
  assert_int_equal(hd_jwt_verify(&cfg, "a.b", &c, &why), HD_EFORBIDDEN);
  assert_int_equal(hd_jwt_verify(&cfg, "not a token at all", &c, &why), HD_EFORBIDDEN);
}

static void test_issuer_audience(void **state) {
  hd_jwt_config_t strict = {.secret = "test-secret", .issuer = "herald", .audience = "console"};
  char *token = NULL;
  assert_int_equal(hd_jwt_sign(&strict, "1", "user", 60, &token), 0);
  hd_claims_t c;
  assert_int_equal(hd_jwt_verify(&strict, token, &c, NULL), 0);
  free(token);
  assert_int_equal(hd_jwt_sign(&cfg, "1", "user", 60, &token), 0); /* no iss/aud */
  assert_int_equal(hd_jwt_verify(&strict, token, &c, NULL), HD_EFORBIDDEN);
  free(token);
  assert_int_equal(hd_jwt_verify(&strict, make_token("{\"alg\":\"HS256\"}",
                                                     "{\"sub\":\"1\",\"iss\":\"herald\",\"aud\":[\"x\",\"console\"]}",
                                                     "test-secret"), &c, NULL), 0);
}

static void test_crit_ttl_sub(void **state) {
  hd_claims_t c;
  const char *why = NULL;
  char payload[256];
  long now = (long)time(NULL);
  snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"exp\":%ld}", now + 60);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":true}", payload,
                                                  "test-secret"), &c, &why), HD_EFORBIDDEN);
  assert_string_equal(why, "token crit header not supported");
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\",\"crit\":[]}", payload, "test-secret"), &c, &why),
                   HD_EFORBIDDEN);
  /* max_ttl_s: exp required, exp - min(iat, now) at most the cap (plus leeway) */
  hd_jwt_config_t capped = {.secret = "test-secret", .leeway_s = 5, .max_ttl_s = 3600};
  assert_int_equal(hd_jwt_verify(&capped, make_token("{\"alg\":\"HS256\"}", "{\"sub\":\"1\"}", "test-secret"), &c, &why),
                   HD_EFORBIDDEN);
  assert_string_equal(why, "token has no exp");
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\"}", "{\"sub\":\"1\"}", "test-secret"), &c, &why),
                   0); /* no cap: no exp needed */
  snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"exp\":%ld}", now + 7200);
  assert_int_equal(hd_jwt_verify(&capped, make_token("{\"alg\":\"HS256\"}", payload, "test-secret"), &c, &why), HD_EFORBIDDEN);
  assert_string_equal(why, "token lifetime exceeds --jwt-max-ttl");
  snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"iat\":%ld,\"exp\":%ld}", now - 3000, now + 1000);
  assert_int_equal(hd_jwt_verify(&capped, make_token("{\"alg\":\"HS256\"}", payload, "test-secret"), &c, &why), HD_EFORBIDDEN);
  snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"iat\":%ld,\"exp\":%ld}", now + 5000, now + 7000);
  assert_int_equal(hd_jwt_verify(&capped, make_token("{\"alg\":\"HS256\"}", payload, "test-secret"), &c, &why), HD_EFORBIDDEN);
  snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"iat\":%ld,\"exp\":%ld}", now - 100, now + 3000);
  assert_int_equal(hd_jwt_verify(&capped, make_token("{\"alg\":\"HS256\"}", payload, "test-secret"), &c, &why), 0);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\"}", "{\"sub\":\"1\",\"exp\":1e300}", "test-secret"), &c, &why),
                   HD_EINVAL);
  assert_int_equal(hd_jwt_verify(&capped, make_token("{\"alg\":\"HS256\"}", "{\"sub\":\"1\",\"iat\":-1e300,\"exp\":1}", "test-secret"),
                                 &c, &why), HD_ETIMEOUT);
  char *token = NULL; /* minted tokens are capped, so they pass */
  assert_int_equal(hd_jwt_sign(&capped, "1", "user", 86400, &token), 0);
  assert_int_equal(hd_jwt_verify(&capped, token, &c, &why), 0);
  assert_true(c.exp <= now + 3600 + 2);
  free(token);
  /* subjects: no pattern characters, no controls, bounded length */
  const char *bad[] = {"*", "a*", "{sub}", "a}", "1,2", "a\\u0001b", "a\\u007f", ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snprintf(payload, sizeof payload, "{\"sub\":\"%s\",\"exp\":%ld}", bad[i], now + 60);
    assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\"}", payload, "test-secret"), &c, &why), HD_EINVAL);
  }
  snprintf(payload, sizeof payload, "{\"sub\":\"user:7 \\u00e9\",\"exp\":%ld}", now + 60);
  assert_int_equal(hd_jwt_verify(&cfg, make_token("{\"alg\":\"HS256\"}", payload, "test-secret"), &c, &why), 0);
  assert_false(hd_jwt_sub_valid("a*"));
  assert_false(hd_jwt_sub_valid(NULL));
  char longsub[200];
  memset(longsub, 'a', sizeof longsub - 1);
  longsub[sizeof longsub - 1] = '\0';
  assert_false(hd_jwt_sub_valid(longsub));
  longsub[127] = '\0';
  assert_true(hd_jwt_sub_valid(longsub));
  assert_int_equal(hd_jwt_sign(&cfg, "a,b", "user", 60, &token), HD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sign_and_verify),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_issuer_audience),
      cmocka_unit_test(test_crit_ttl_sub),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
