/* Unit tests for the acknowledgement tracker: ack, resend schedule, give-up after the retries, the
 * in-flight cap, and that every item's reference is released exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"
#include "delivery/acks.h"

typedef struct {
  char id[16];
  int refs;
  int resent;
} item_t;

static item_t items[8];
static int released;

static void release(void *p) {
  ((item_t *)p)->refs--;
  released++;
}

static void resend(void *p, void *arg) {
  ((item_t *)p)->resent++;
  (*(int *)arg)++;
}

static int setup(void **state) {
  memset(items, 0, sizeof items);
  for (int i = 0; i < 8; i++) snprintf(items[i].id, sizeof items[i].id, "m%d", i);
  released = 0;
  return 0;
}

static void track(hd_acks_t *a, int i, uint64_t now) {
  items[i].refs++;
  assert_int_equal(hd_acks_track(a, items[i].id, &items[i], now), 0);
}

static void test_ack(void **state) {
  hd_acks_limits_t lim = {.timeout_ms = 100, .retries = 2, .max = 10, .release = release};
  hd_acks_t a;
  hd_acks_init(&a, &lim);
  track(&a, 0, 0);
  track(&a, 1, 0);
  track(&a, 2, 0);
  assert_true(hd_acks_pending(&a, "m1"));
  assert_true(hd_acks_ack(&a, "m1")); /* middle */
  assert_false(hd_acks_ack(&a, "m1"));
  assert_false(hd_acks_pending(&a, "m1"));
  assert_true(hd_acks_ack(&a, "m2")); /* tail: a later track must still append */
  track(&a, 3, 0);
  assert_int_equal(a.count, 2);
  assert_true(hd_acks_ack(&a, "m0"));
  assert_true(hd_acks_ack(&a, "m3"));
  assert_int_equal(a.count, 0);
  assert_null(a.head);
  assert_null(a.tail);
  assert_int_equal(released, 4);
  for (int i = 0; i < 4; i++) assert_int_equal(items[i].refs, 0);
}

static void test_resend_then_give_up(void **state) {
  hd_acks_limits_t lim = {.timeout_ms = 100, .retries = 2, .max = 10, .release = release};
  hd_acks_t a;
  hd_acks_init(&a, &lim);
  int calls = 0;
  track(&a, 0, 0);
  track(&a, 1, 50);
  assert_int_equal(hd_acks_due(&a, 99, resend, &calls), 0);
  assert_int_equal(calls, 0);
  assert_int_equal(hd_acks_due(&a, 100, resend, &calls), 0); /* m0 due, m1 not yet */
  assert_int_equal(items[0].resent, 1);
  assert_int_equal(items[1].resent, 0);
  assert_int_equal(hd_acks_due(&a, 150, resend, &calls), 0);
  assert_int_equal(items[1].resent, 1);
  assert_int_equal(hd_acks_due(&a, 200, resend, &calls), 0); /* m0: third send */
  assert_int_equal(items[0].resent, 2);
  assert_int_equal(hd_acks_due(&a, 300, resend, &calls), 1); /* m0 sent 1 + 2 times: given up */
  assert_int_equal(items[0].refs, 0);
  assert_false(hd_acks_pending(&a, "m0"));
  assert_true(hd_acks_pending(&a, "m1"));
  assert_int_equal(hd_acks_due(&a, 400, resend, &calls), 1);
  assert_int_equal(calls, 4);
  assert_int_equal(a.count, 0);
  track(&a, 2, 400); /* the emptied list still appends */
  assert_int_equal(a.count, 1);
  hd_acks_clear(&a);
  assert_int_equal(released, 3);
}

static void test_cap_drops_oldest(void **state) {
  hd_acks_limits_t lim = {.timeout_ms = 100, .retries = 1, .max = 3, .release = release};
  hd_acks_t a;
  hd_acks_init(&a, &lim);
  for (int i = 0; i < 5; i++) track(&a, i, 0);
  assert_int_equal(a.count, 3);
  assert_false(hd_acks_pending(&a, "m0"));
  assert_false(hd_acks_pending(&a, "m1"));
  for (int i = 2; i < 5; i++) assert_true(hd_acks_pending(&a, items[i].id));
  assert_int_equal(released, 2);
  hd_acks_clear(&a);
  assert_int_equal(a.count, 0);
  for (int i = 0; i < 5; i++) assert_int_equal(items[i].refs, 0);
  hd_acks_clear(&a); /* twice is harmless */
  assert_int_equal(released, 5);
}

static void test_retries_zero(void **state) {
  hd_acks_limits_t lim = {.timeout_ms = 10, .retries = 0, .max = 3, .release = NULL};
  hd_acks_t a;
  hd_acks_init(&a, &lim);
  int calls = 0;
  assert_int_equal(hd_acks_track(&a, "x", &items[0], 0), 0);
  assert_int_equal(hd_acks_due(&a, 10, resend, &calls), 1); /* never resent */
  assert_int_equal(calls, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_ack, setup),
      cmocka_unit_test_setup(test_resend_then_give_up, setup),
      cmocka_unit_test_setup(test_cap_drops_oldest, setup),
      cmocka_unit_test_setup(test_retries_zero, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
