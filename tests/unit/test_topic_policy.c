/* Unit tests for topic permissions: exact and prefix patterns, {sub} expansion, admins, spacing and
 * empty items, a user id that looks like a wildcard, separate subscribe and publish lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "app/topic_policy.h"

static hd_claims_t user(const char *sub) {
  hd_claims_t c = {0};
  snprintf(c.sub, sizeof c.sub, "%s", sub);
  snprintf(c.role, sizeof c.role, "user");
  return c;
}

static void test_default_subscribe_patterns(void **state) {
  hd_topic_policy_t *p = hd_topic_policy_new("user:{sub},user:{sub}:*,public,public:*,system,system:*", "");
  assert_non_null(p);
  hd_claims_t a = user("alice");
  assert_true(hd_topic_policy_may_subscribe(p, &a, "user:alice"));
  assert_true(hd_topic_policy_may_subscribe(p, &a, "user:alice:orders"));
  assert_true(hd_topic_policy_may_subscribe(p, &a, "public"));
  assert_true(hd_topic_policy_may_subscribe(p, &a, "public:news"));
  assert_true(hd_topic_policy_may_subscribe(p, &a, "system:"));
  assert_false(hd_topic_policy_may_subscribe(p, &a, "user:bob"));
  assert_false(hd_topic_policy_may_subscribe(p, &a, "user:alicex"));
  assert_false(hd_topic_policy_may_subscribe(p, &a, "user:alic"));
  assert_false(hd_topic_policy_may_subscribe(p, &a, "publicity"));
  assert_false(hd_topic_policy_may_subscribe(p, &a, "admin"));
  assert_false(hd_topic_policy_may_publish(p, &a, "public")); /* empty publish list */
  hd_topic_policy_free(p);
}

static void test_admin_everywhere(void **state) {
  hd_topic_policy_t *p = hd_topic_policy_new(NULL, NULL);
  hd_claims_t admin = user("root");
  snprintf(admin.role, sizeof admin.role, "admin");
  hd_claims_t u = user("u1");
  assert_true(hd_topic_policy_may_subscribe(p, &admin, "anything:at:all"));
  assert_true(hd_topic_policy_may_publish(p, &admin, "user:someone"));
  assert_false(hd_topic_policy_may_subscribe(p, &u, "anything"));
  hd_topic_policy_free(p);
}

static void test_spacing_and_forms(void **state) {
  hd_topic_policy_t *p = hd_topic_policy_new(" , chat:{sub}:* ,,  *  ", "room:{sub}-{sub},news*,{sub}");
  hd_claims_t a = user("7");
  assert_true(hd_topic_policy_may_subscribe(p, &a, "whatever")); /* a lone * allows every topic */
  assert_true(hd_topic_policy_may_publish(p, &a, "room:7-{sub}")); /* only the first {sub} expands */
  assert_false(hd_topic_policy_may_publish(p, &a, "room:7-7"));
  assert_true(hd_topic_policy_may_publish(p, &a, "news"));
  assert_true(hd_topic_policy_may_publish(p, &a, "newsroom"));
  assert_true(hd_topic_policy_may_publish(p, &a, "7"));
  assert_false(hd_topic_policy_may_publish(p, &a, "70"));
  hd_topic_policy_free(p);
}

static void test_user_id_is_not_a_pattern(void **state) {
  hd_topic_policy_t *p = hd_topic_policy_new("user:{sub}", "");
  hd_claims_t star = user("a*");
  assert_true(hd_topic_policy_may_subscribe(p, &star, "user:a*"));
  assert_false(hd_topic_policy_may_subscribe(p, &star, "user:abc")); /* the * in an id is literal */
  hd_topic_policy_free(p);
}

static void test_long_pattern_ignored(void **state) {
  char list[600];
  memset(list, 'x', 300);
  snprintf(list + 300, sizeof list - 300, ",ok");
  hd_topic_policy_t *p = hd_topic_policy_new(list, "");
  hd_claims_t a = user("a");
  assert_true(hd_topic_policy_may_subscribe(p, &a, "ok"));
  list[300] = '\0';
  assert_false(hd_topic_policy_may_subscribe(p, &a, list));
  hd_topic_policy_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_subscribe_patterns),
      cmocka_unit_test(test_admin_everywhere),
      cmocka_unit_test(test_spacing_and_forms),
      cmocka_unit_test(test_user_id_is_not_a_pattern),
      cmocka_unit_test(test_long_pattern_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
