/* Unit tests for per-address token buckets: separate addresses, refill, a slot shared by two
 * addresses passing to the new one only once idle, a clock a little behind another thread's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/addr_rate.h"

static void test_per_address(void **state) {
  hd_addr_rate_t *r = hd_addr_rate_new(1024, 10, 2);
  assert_non_null(r);
  assert_true(hd_addr_rate_take(r, "10.0.0.1", 1000));
  assert_true(hd_addr_rate_take(r, "10.0.0.1", 1000));
  assert_false(hd_addr_rate_take(r, "10.0.0.1", 1000));
  assert_true(hd_addr_rate_take(r, "10.0.0.1", 1100)); /* 10/s: a token per 100 ms */
  hd_addr_rate_free(r);
}

static void test_shared_slot(void **state) {
  hd_addr_rate_t *r = hd_addr_rate_new(1, 1, 2); /* one slot: every address shares it */
  assert_true(hd_addr_rate_take(r, "a", 0));
  assert_true(hd_addr_rate_take(r, "a", 0));
  assert_false(hd_addr_rate_take(r, "b", 500)); /* "a" is active: "b" shares its empty bucket */
  assert_true(hd_addr_rate_take(r, "b", 2000)); /* "a" idle for a whole refill: the slot is "b"'s, full */
  assert_true(hd_addr_rate_take(r, "b", 2000));
  assert_false(hd_addr_rate_take(r, "b", 2000));
  hd_addr_rate_free(r);
}

static void test_clock_behind(void **state) {
  hd_addr_rate_t *r = hd_addr_rate_new(1, 1, 1);
  assert_true(hd_addr_rate_take(r, "a", 5000));
  /* another thread's clock a little behind must not look like a long idle time (no reset) */
  assert_false(hd_addr_rate_take(r, "b", 4990));
  assert_false(hd_addr_rate_take(r, "a", 4990));
  hd_addr_rate_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_per_address),
      cmocka_unit_test(test_shared_slot),
      cmocka_unit_test(test_clock_behind),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
