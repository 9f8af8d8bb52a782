/* Unit tests for the /metrics building blocks: core/histogram (buckets, sums, text format) and
 * hub/traffic (namespaces by name, the "_other" overflow, adding shards up). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/histogram.h"
#include "hub/traffic.h"

static void test_histogram(void **state) {
  hd_histogram_t a = {0}, b = {0};
  hd_histogram_observe(&a, 0);        /* le 0.0001 */
  hd_histogram_observe(&a, 100);      /* a bound itself: its bucket */
  hd_histogram_observe(&a, 101);      /* le 0.00025 */
  hd_histogram_observe(&b, 20000000); /* past 10 s: +Inf only */
  hd_histogram_add(&a, &b);
  assert_int_equal(hd_histogram_count(&a), 4);
  hd_sbuf_t out = {0};
  hd_histogram_write(&out, "x_seconds", "", &a);
  assert_non_null(strstr(out.ptr, "x_seconds_bucket{le=\"0.0001\"} 2\n"));
  assert_non_null(strstr(out.ptr, "x_seconds_bucket{le=\"0.00025\"} 3\n"));
  assert_non_null(strstr(out.ptr, "x_seconds_bucket{le=\"10\"} 3\n"));
  assert_non_null(strstr(out.ptr, "x_seconds_bucket{le=\"+Inf\"} 4\n"));
  assert_non_null(strstr(out.ptr, "x_seconds_sum 20.000201\n"));
  assert_non_null(strstr(out.ptr, "x_seconds_count 4\n"));
  out.len = 0;
  hd_histogram_write(&out, "y_seconds", "shard=\"1\"", &b);
  assert_non_null(strstr(out.ptr, "y_seconds_bucket{shard=\"1\",le=\"+Inf\"} 1\n"));
  assert_non_null(strstr(out.ptr, "y_seconds_count{shard=\"1\"} 1\n"));
  hd_sbuf_free(&out);
}

/* Counts a message the way the protocols do: slot first. */
static void count(hd_traffic_t *t, hd_traffic_protocol_t p, const char *nsp) {
  hd_traffic_received(t, p, hd_traffic_slot(t, nsp, strlen(nsp)));
}

static void test_traffic(void **state) {
  static hd_traffic_t a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  count(&a, HD_TRAFFIC_SOCKETIO, "/chat");
  count(&a, HD_TRAFFIC_JSON, "/");
  count(&b, HD_TRAFFIC_SOCKETIO, "/");
  count(&b, HD_TRAFFIC_SOCKETIO, "/chat");
  b.delivered[hd_traffic_slot(&b, "/chat", 5)][HD_TRAFFIC_SOCKETIO] += 7;
  hd_traffic_add(&a, &b);
  assert_int_equal(a.count, 2);
  uint32_t chat = hd_traffic_slot(&a, "/chat", 5), root = hd_traffic_slot(&a, "/", 1);
  assert_int_equal(a.received[chat][HD_TRAFFIC_SOCKETIO], 2);
  assert_int_equal(a.received[root][HD_TRAFFIC_SOCKETIO], 1);
  assert_int_equal(a.received[root][HD_TRAFFIC_JSON], 1);
  assert_int_equal(a.delivered[chat][HD_TRAFFIC_SOCKETIO], 7);

  /* past the table's names, and names too long: "_other", which stays one slot */
  char name[80];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "/n%d", i);
    count(&a, HD_TRAFFIC_JSON, name);
  }
  memset(name, 'x', 70);
  name[70] = '\0';
  count(&a, HD_TRAFFIC_JSON, name);
  assert_int_equal(a.count, HD_TRAFFIC_NAMESPACES);
  uint32_t other = hd_traffic_slot(&a, "_other", 6);
  assert_string_equal(a.names[other], "_other");
  assert_int_equal(a.received[other][HD_TRAFFIC_JSON], 40 - (HD_TRAFFIC_NAMESPACES - 1 - 2) + 1);

  hd_sbuf_t out = {0};
  hd_traffic_write(&a, &out);
  assert_non_null(strstr(out.ptr, "herald_messages_received_total{protocol=\"socketio\",namespace=\"/chat\"} 2\n"));
  assert_non_null(strstr(out.ptr, "herald_messages_delivered_total{protocol=\"socketio\",namespace=\"/chat\"} 7\n"));
  assert_non_null(strstr(out.ptr, "# TYPE herald_messages_published_total counter\n"));
  hd_sbuf_free(&out);

  /* label values are escaped */
  static hd_traffic_t q;
  memset(&q, 0, sizeof q);
  count(&q, HD_TRAFFIC_SOCKETIO, "/a\"b\\c");
  hd_traffic_write(&q, &out);
  assert_non_null(strstr(out.ptr, "namespace=\"/a\\\"b\\\\c\"} 1\n"));
  hd_sbuf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_histogram), cmocka_unit_test(test_traffic)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
