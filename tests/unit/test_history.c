/* Unit tests for the topic history's bounds: the node-wide byte bound drops the node's oldest
 * messages first (whatever their topic); a topic no one holds whose history is empty is forgotten,
 * a held one is not, and a forgotten topic made again never gives a sequence it gave before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/clock.h"
#include "delivery/history.h"
#include "hub/hub.h"

static hd_hub_shared_t shared;
static hd_hub_t *hub;

static int setup(void **state) {
  hd_hub_shared_init(&shared, 1);
  hd_hub_limits_t limits = {.max_rooms_per_member = 4};
  hub = hd_hub_new(&limits, &shared, 0, NULL);
  return hub ? 0 : -1;
}

static int teardown(void **state) {
  hd_hub_free(hub);
  hd_hub_shared_destroy(&shared);
  return 0;
}

/* Appends a message of 100 argument bytes to topic, stamped at ts (ms). Returns its sequence. */
static uint64_t append(hd_history_t *h, const char *topic, int64_t ts) {
  const char *rooms[] = {topic};
  hd_hub_target_t to = {"/", rooms, 1, NULL, 0, HD_MSG_SEQUENCED};
  char data[101];
  memset(data, 'x', 100);
  data[0] = '"', data[99] = '"', data[100] = '\0';
  hd_hub_msg_t *msg = hd_hub_msg_new_value(hub, &to, "data", data, 100);
  assert_non_null(msg);
  msg->timestamp = ts;
  assert_int_equal(hd_history_append(h, msg), 0);
  uint64_t seq = msg->seq;
  hd_hub_msg_unref(msg);
  return seq;
}

static void count_msg(hd_hub_msg_t *msg, void *arg) { ++*(int *)arg; }

static void test_byte_bound_drops_the_oldest_of_the_node(void **state) {
  hd_history_t *h = hd_history_new(100, 0);
  int64_t now = hd_clock_wall_ms();
  assert_int_equal(hd_history_keep(h, "a"), 0);
  assert_int_equal(hd_history_keep(h, "b"), 0);
  uint64_t a1 = append(h, "a", now);
  size_t one = hd_history_bytes(h);
  assert_true(one > 100);
  hd_history_set_max_bytes(h, 3 * one);
  uint64_t b1 = append(h, "b", now);
  append(h, "a", now);
  assert_int_equal(hd_history_bytes(h), 3 * one);
  append(h, "b", now); /* a1 is the node's oldest: it goes */
  assert_int_equal(hd_history_bytes(h), 3 * one);
  int n = 0;
  assert_false(hd_history_replay(h, "a", NULL, a1 - 1, count_msg, &n, NULL)); /* a1 is gone */
  assert_int_equal(n, 1);
  n = 0;
  assert_true(hd_history_replay(h, "a", NULL, a1, count_msg, &n, NULL));
  assert_int_equal(n, 1);
  n = 0;
  assert_true(hd_history_replay(h, "b", NULL, b1 - 1, count_msg, &n, NULL)); /* b lost nothing */
  assert_int_equal(n, 2);
  hd_history_free(h);
}

static void test_unheld_empty_topics_are_forgotten(void **state) {
  hd_history_t *h = hd_history_new(10, 1000);
  int64_t now = hd_clock_wall_ms();
  assert_int_equal(hd_history_hold(h, "gone"), 0);
  assert_int_equal(hd_history_hold(h, "held"), 0);
  append(h, "gone", now - 60000); /* past its age at the next sweep */
  uint64_t last = append(h, "gone", now - 60000);
  append(h, "held", now - 60000);
  hd_history_release(h, "gone");
  assert_int_equal(hd_history_topic_count(h), 2);
  assert_int_equal(hd_history_hold(h, "other"), 0);
  append(h, "other", now + 20000); /* a sweep: "gone" is empty, unheld and idle */
  assert_int_equal(hd_history_topic_count(h), 2);
  assert_true(hd_history_top(h, "held") > 0);
  assert_int_equal(hd_history_keep(h, "gone"), 0); /* made again: above what it gave */
  assert_true(hd_history_top(h, "gone") >= last);
  assert_true(append(h, "gone", now + 20001) > last);
  hd_history_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_byte_bound_drops_the_oldest_of_the_node),
      cmocka_unit_test(test_unheld_empty_topics_are_forgotten),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
