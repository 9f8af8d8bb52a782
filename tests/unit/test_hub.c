/* Unit tests for the hub: join/leave bookkeeping, fan-out once per member across rooms, except
 * rooms, per-room sequence and bounded history with replay, encoded-frame caching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"
#include "hub/hub.h"

typedef struct {
  hd_hub_member_t member; /* first: the deliver callback casts back */
  int received;
  uint64_t last_seq;
} test_member_t;

static void deliver(hd_hub_member_t *m, hd_hub_msg_t *msg) {
  test_member_t *t = (test_member_t *)m;
  t->received++;
  t->last_seq = msg->seq;
}

#define JOIN(hub, m, name) assert_int_equal(hd_hub_join(hub, &(m)->member, name, strlen(name)), 0)

static hd_hub_limits_t limits = {.history_count = 3, .history_max_age_ms = 0, .max_rooms_per_member = 4};

static size_t publish(hd_hub_t *hub, const char *room, const char *const *rooms, size_t n, const char *const *except,
                      size_t ne) {
  hd_hub_msg_t *msg = hd_hub_msg_new(hub, room, "ev", "{}", 2);
  size_t d = hd_hub_publish(hub, msg, rooms, n, except, ne, NULL);
  hd_hub_msg_unref(msg);
  return d;
}

static void test_join_leave(void **state) {
  hd_hub_t *hub = hd_hub_new(&limits);
  test_member_t a = {0}, b = {0}, c = {0};
  hd_hub_member_init(&a.member, deliver);
  hd_hub_member_init(&b.member, deliver);
  hd_hub_member_init(&c.member, deliver);
  JOIN(hub, &a, "r1");
  JOIN(hub, &a, "r1"); /* idempotent */
  JOIN(hub, &b, "r1");
  JOIN(hub, &c, "r1");
  JOIN(hub, &a, "r2");
  assert_int_equal(hd_hub_room(hub, "r1", 2)->count, 3);
  assert_int_equal(a.member.room_count, 2);
  /* leave from the middle keeps the others' indexes right */
  assert_int_equal(hd_hub_leave(hub, &b.member, "r1", 2), 0);
  assert_int_equal(hd_hub_leave(hub, &b.member, "r1", 2), HD_ENOTFOUND);
  assert_true(hd_hub_member_in(&c.member, "r1", 2));
  assert_int_equal(hd_hub_leave(hub, &c.member, "r1", 2), 0);
  assert_int_equal(hd_hub_leave(hub, &a.member, "r1", 2), 0);
  assert_null(hd_hub_room(hub, "r1", 2)); /* empty rooms are dropped */
  assert_int_equal(hd_hub_room_count(hub), 1);
  /* room limit per member */
  JOIN(hub, &a, "x1");
  JOIN(hub, &a, "x2");
  JOIN(hub, &a, "x3");
  assert_int_equal(hd_hub_join(hub, &a.member, "x4", 2), HD_ERANGE);
  hd_hub_leave_all(hub, &a.member);
  hd_hub_leave_all(hub, &b.member);
  hd_hub_leave_all(hub, &c.member);
  assert_int_equal(hd_hub_room_count(hub), 0);
  hd_hub_free(hub);
}

static void test_fanout_once_and_except(void **state) {
  hd_hub_t *hub = hd_hub_new(&limits);
  test_member_t m[3] = {0};
  for (int i = 0; i < 3; i++) hd_hub_member_init(&m[i].member, deliver);
  JOIN(hub, &m[0], "a");
  JOIN(hub, &m[0], "b");
  JOIN(hub, &m[1], "b");
  JOIN(hub, &m[2], "c");
  JOIN(hub, &m[2], "b");
  const char *ab[] = {"a", "b", "nobody"};
  assert_int_equal(publish(hub, NULL, ab, 3, NULL, 0), 3); /* m0 once although in a and b */
  assert_int_equal(m[0].received, 1);
  const char *except[] = {"c"};
  assert_int_equal(publish(hub, NULL, ab, 2, except, 1), 2);
  assert_int_equal(m[2].received, 1);
  for (int i = 0; i < 3; i++) hd_hub_leave_all(hub, &m[i].member);
  hd_hub_free(hub);
}

static void collect(hd_hub_msg_t *msg, void *arg) { ((uint64_t *)arg)[((uint64_t *)arg)[0]++ + 1] = msg->seq; }

static void test_history_and_replay(void **state) {
  hd_hub_t *hub = hd_hub_new(&limits);
  test_member_t a = {0};
  hd_hub_member_init(&a.member, deliver);
  assert_int_equal(hd_hub_room_keep_history(hub, "t", 1), 0);
  const char *t[] = {"t"};
  for (int i = 0; i < 2; i++) publish(hub, "t", t, 1, NULL, 0); /* nobody online: kept anyway */
  JOIN(hub, &a, "t");
  publish(hub, "t", t, 1, NULL, 0);
  uint64_t base = a.last_seq - 3; /* sequences start at a per-process base */
  assert_true(base > 1000000000000000ULL && a.last_seq < (1ULL << 53));
  uint64_t got[8] = {0};
  assert_true(hd_hub_replay(hub, "t", 1, NULL, base + 1, collect, got));
  assert_int_equal(got[0], 2);
  assert_int_equal(got[1], base + 2);
  assert_int_equal(got[2], base + 3);
  publish(hub, "t", t, 1, NULL, 0); /* seq 4 evicts seq 1 (history of 3) */
  memset(got, 0, sizeof got);
  assert_false(hd_hub_replay(hub, "t", 1, NULL, base, collect, got)); /* seq 1 is gone */
  assert_int_equal(got[0], 3);
  memset(got, 0, sizeof got);
  assert_true(hd_hub_replay(hub, "t", 1, NULL, base + 1, collect, got));
  memset(got, 0, sizeof got);
  assert_false(hd_hub_replay(hub, "t", 1, NULL, base - 5, collect, got)); /* from before this process */
  memset(got, 0, sizeof got);
  assert_false(hd_hub_replay(hub, "t", 1, NULL, base + 99, collect, got)); /* from the future */
  hd_hub_leave_all(hub, &a.member);
  assert_non_null(hd_hub_room(hub, "t", 1)); /* history keeps the room */
  hd_hub_free(hub);
}

static int encodes;
static hd_buf_t *encode(const hd_hub_msg_t *msg, void *arg) {
  encodes++;
  return hd_buf_from(msg->data, msg->data_len);
}

static void test_encoded_cache(void **state) {
  hd_hub_t *hub = hd_hub_new(&limits);
  int enc = hd_hub_encoding_id(hub, "test/plain");
  assert_int_equal(hd_hub_encoding_id(hub, "test/plain"), enc);
  hd_hub_msg_t *msg = hd_hub_msg_new(hub, "r", "ev", "[1]", 3);
  for (int i = 0; i < 100; i++) assert_memory_equal(hd_hub_msg_encoded(msg, enc, encode, NULL)->data, "[1]", 3);
  assert_int_equal(encodes, 1);
  assert_string_not_equal(msg->message_id, "");
  hd_hub_msg_unref(msg);
  hd_hub_free(hub);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_join_leave),
      cmocka_unit_test(test_fanout_once_and_except),
      cmocka_unit_test(test_history_and_replay),
      cmocka_unit_test(test_encoded_cache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
