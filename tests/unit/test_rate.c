/* Unit tests for the token bucket: burst, refill at the rate, cap at the burst, clock going back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/rate.h"

static void test_burst_then_refill(void **state) {
  hd_rate_t r;
  hd_rate_init(&r, 10, 3, 1000);
  for (int i = 0; i < 3; i++) assert_true(hd_rate_take(&r, 1000));
  assert_false(hd_rate_take(&r, 1000));
  assert_false(hd_rate_take(&r, 1050)); /* half a token */
  assert_true(hd_rate_take(&r, 1100));  /* 10/s: one token per 100 ms */
  assert_false(hd_rate_take(&r, 1100));
}

static void test_capped_at_burst(void **state) {
  hd_rate_t r;
  hd_rate_init(&r, 1000, 2, 0);
  assert_true(hd_rate_take(&r, 0));
  assert_true(hd_rate_take(&r, 0));
  /* an hour idle refills two tokens, not 3.6 million */
  assert_true(hd_rate_take(&r, 3600000));
  assert_true(hd_rate_take(&r, 3600000));
  assert_false(hd_rate_take(&r, 3600000));
}

static void test_clock_going_back(void **state) {
  hd_rate_t r;
  hd_rate_init(&r, 1, 1, 5000);
  assert_true(hd_rate_take(&r, 5000));
  assert_false(hd_rate_take(&r, 4000)); /* no refill from an earlier time */
  assert_false(hd_rate_take(&r, 5500));
  assert_true(hd_rate_take(&r, 6000));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_then_refill),
      cmocka_unit_test(test_capped_at_burst),
      cmocka_unit_test(test_clock_going_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
