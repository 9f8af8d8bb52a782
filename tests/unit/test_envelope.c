/* Unit tests for JSON-protocol envelopes: parsing and every refusal, encoding, params keys, topics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"
#include "proto/envelope.h"

static int parse(const char *text, const char **why) {
  hd_envelope_t e;
  int rc = hd_envelope_parse(text, strlen(text), &e, why);
  hd_envelope_free(&e);
  return rc;
}

static void test_parse_ok(void **state) {
  hd_envelope_t e;
  const char *text = "{\"type\":\"subscribe\",\"data\":{\"topic\":\"t\"},\"timestamp\":1,\"messageId\":\"m1\"}";
  assert_int_equal(hd_envelope_parse(text, strlen(text), &e, NULL), 0);
  assert_string_equal(e.type, "subscribe");
  assert_string_equal(e.message_id, "m1");
  assert_string_equal(json_string_value(json_object_get(e.data, "topic")), "t");
  hd_envelope_free(&e);
  text = "{\"type\":\"heartbeat\"}"; /* data, messageId, timestamp optional */
  assert_int_equal(hd_envelope_parse(text, strlen(text), &e, NULL), 0);
  assert_null(e.message_id);
  assert_null(e.data);
  hd_envelope_free(&e);
}

static void test_parse_refusals(void **state) {
  const char *why = NULL;
  const char *bad[] = {
      "", "not json", "[1,2]", "\"type\"", "null", "{}", "{\"type\":1}", "{\"type\":\"\"}",
      "{\"type\":\"x\",\"messageId\":5}", "{\"type\":\"x\",\"messageId\":\"\"}", "{\"type\":\"x\",\"timestamp\":\"now\"}",
      "{\"type\":\"x\",\"type\":\"y\"}", /* duplicate keys */
      "{\"type\":\"x\"} trailing", "{\"type\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why = NULL;
    assert_int_equal(parse(bad[i], &why), HD_EPROTO);
    assert_non_null(why);
  }
  char id[200] = "{\"type\":\"x\",\"messageId\":\"";
  memset(id + strlen(id), 'a', 129);
  strcat(id, "\"}");
  assert_int_equal(parse(id, &why), HD_EPROTO);
  /* invalid UTF-8 is refused by the JSON parser */
  assert_int_equal(parse("{\"type\":\"\xff\"}", &why), HD_EPROTO);
}

static void test_encode(void **state) {
  hd_sbuf_t b = {0};
  assert_int_equal(hd_envelope_encode(&b, "notification", "{\"a\":1}", 1700000000000, "id\"1", 42, "user:7",
                                      "{\"k\":\"v\"}"),
                   0);
  assert_string_equal(b.ptr, "{\"type\":\"notification\",\"data\":{\"a\":1},\"timestamp\":1700000000000,"
                             "\"messageId\":\"id\\\"1\",\"sequence\":42,\"topic\":\"user:7\",\"params\":{\"k\":\"v\"}}");
  hd_sbuf_free(&b);
  assert_int_equal(hd_envelope_encode(&b, "connect", NULL, 5, "m", 0, NULL, NULL), 0);
  assert_string_equal(b.ptr, "{\"type\":\"connect\",\"data\":null,\"timestamp\":5,\"messageId\":\"m\"}");
  hd_sbuf_free(&b);
}

static void test_params_key(void **state) {
  hd_sbuf_t a = {0}, b = {0};
  json_t *p1 = json_loads("{\"b\":\"x\",\"a\":1}", 0, NULL), *p2 = json_loads("{\"a\":1,\"b\":\"x\"}", 0, NULL);
  assert_int_equal(hd_params_key(p1, &a), 0);
  assert_int_equal(hd_params_key(p2, &b), 0);
  assert_string_equal(a.ptr, b.ptr); /* order of keys does not matter */
  assert_string_equal(a.ptr, "{\"a\":1,\"b\":\"x\"}");
  hd_sbuf_free(&a);
  json_t *nested = json_loads("{\"a\":{\"b\":1}}", 0, NULL), *arr = json_loads("[1]", 0, NULL);
  assert_int_equal(hd_params_key(nested, &a), HD_EINVAL);
  assert_int_equal(hd_params_key(arr, &a), HD_EINVAL);
  assert_int_equal(hd_params_key(NULL, &a), 0);
  assert_int_equal(a.len, 0);
  json_decref(p1), json_decref(p2), json_decref(nested), json_decref(arr);
  hd_sbuf_free(&a);
  hd_sbuf_free(&b);
}

static void test_topics(void **state) {
  assert_true(hd_topic_valid("user:7"));
  assert_true(hd_topic_valid("public"));
  assert_false(hd_topic_valid(""));
  assert_false(hd_topic_valid("a\nb"));
  char longt[300];
  memset(longt, 'a', sizeof longt - 1);
  longt[sizeof longt - 1] = '\0';
  assert_false(hd_topic_valid(longt));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_ok), cmocka_unit_test(test_parse_refusals), cmocka_unit_test(test_encode),
      cmocka_unit_test(test_params_key), cmocka_unit_test(test_topics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
