/* Unit tests for the Engine.IO codec: every packet type over WebSocket, v4 and v3 polling payloads
 * (splitting, base64 binary, UTF-16 lengths with CJK and emoji), encoding exactness, round trips,
 * and malformed input of every kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "proto/eio_packet.h"

#define S(lit) lit, sizeof(lit) - 1

/* Renders decoded packets as "<type><data>" for text and "B<hex>" for binary, joined by '|'. */
typedef struct {
  char text[1024];
  int calls;
  int stop_after; /* fn fails on this call when > 0 */
} seen_t;

static int collect(const hd_eio_packet_t *p, void *arg) {
  seen_t *s = arg;
  size_t n = strlen(s->text);
  if (s->calls++) s->text[n++] = '|';
  if (p->binary) {
    assert_int_equal(p->type, HD_EIO_MESSAGE);
    s->text[n++] = 'B';
    for (size_t i = 0; i < p->data.len; i++) n += (size_t)sprintf(s->text + n, "%02x", (uint8_t)p->data.ptr[i]);
  } else {
    n += (size_t)sprintf(s->text + n, "%d%.*s", (int)p->type, (int)p->data.len, p->data.ptr);
  }
  s->text[n] = '\0';
  return s->stop_after && s->calls == s->stop_after ? -99 : 0;
}

static int decode(const char *body, size_t len, int version, seen_t *s) {
  memset(s, 0, sizeof *s);
  return hd_eio_payload_decode(body, len, version, collect, s);
}

static void expect_ok(const char *body, size_t len, int version, int count, const char *want) {
  seen_t s;
  int rc = decode(body, len, version, &s);
  if (rc != count) fail_msg("v%d %.*s: rc %d, want %d", version, (int)len, body, rc, count);
  assert_string_equal(s.text, want);
}

static void expect_bad(const char *body, size_t len, int version) {
  seen_t s;
  int rc = decode(body, len, version, &s);
  if (rc != HD_EPROTO) fail_msg("v%d [%.*s]: rc %d, want EPROTO", version, (int)len, body, rc);
}

static void test_ws_text_every_type(void **state) {
  static const char *const msgs[] = {"0{\"sid\":\"x\"}", "1", "2", "2probe", "3probe", "4hello", "5", "6"};
  for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++) {
    hd_eio_packet_t p;
    size_t n = strlen(msgs[i]);
    for (int v = 3; v <= 4; v++) {
      assert_int_equal(hd_eio_packet_decode_ws((const uint8_t *)msgs[i], n, false, v, &p), 0);
      assert_int_equal(p.type, msgs[i][0] - '0');
      assert_false(p.binary);
      assert_ptr_equal(p.data.ptr, msgs[i] + 1);
      assert_int_equal(p.data.len, n - 1);
    }
  }
}

static void test_ws_text_malformed(void **state) {
  static const char *const msgs[] = {"", "7", "9x", "x", "/", " 4", "b", "bAQID", "b4AQID"};
  hd_eio_packet_t p;
  for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++)
    for (int v = 3; v <= 4; v++)
      assert_int_equal(hd_eio_packet_decode_ws((const uint8_t *)msgs[i], strlen(msgs[i]), false, v, &p), HD_EPROTO);
}

static void test_ws_binary(void **state) {
  static const uint8_t bytes[] = {4, 1, 2, 0xff};
  hd_eio_packet_t p;
  assert_int_equal(hd_eio_packet_decode_ws(bytes, 4, true, 4, &p), 0); /* v4: the bytes as they are */
  assert_int_equal(p.type, HD_EIO_MESSAGE);
  assert_true(p.binary);
  assert_ptr_equal(p.data.ptr, bytes);
  assert_int_equal(p.data.len, 4);
  assert_int_equal(hd_eio_packet_decode_ws(bytes, 0, true, 4, &p), 0);
  assert_int_equal(p.data.len, 0);
  assert_int_equal(hd_eio_packet_decode_ws(bytes, 4, true, 3, &p), 0); /* v3: type byte stripped */
  assert_true(p.binary);
  assert_ptr_equal(p.data.ptr, bytes + 1);
  assert_int_equal(p.data.len, 3);
  assert_int_equal(hd_eio_packet_decode_ws(bytes, 1, true, 3, &p), 0);
  assert_int_equal(p.data.len, 0);
  assert_int_equal(hd_eio_packet_decode_ws(bytes, 0, true, 3, &p), HD_EPROTO);
  assert_int_equal(hd_eio_packet_decode_ws(bytes + 1, 3, true, 3, &p), HD_EPROTO); /* type 1 */
  assert_int_equal(hd_eio_packet_decode_ws((const uint8_t *)"4", 1, true, 3, &p), HD_EPROTO); /* '4' != 4 */
}

static void test_v4_payload(void **state) {
  expect_ok(S("4hello"), 4, 1, "4hello");
  expect_ok(S("2"), 4, 1, "2");
  expect_ok(S("4hello\x1e" "2\x1e" "4w\xc3\xa9rld"), 4, 3, "4hello|2|4w\xc3\xa9rld");
  expect_ok(S("0\x1e" "1\x1e" "2\x1e" "3\x1e" "4\x1e" "5\x1e" "6"), 4, 7, "0|1|2|3|4|5|6");
  expect_ok(S("bAQID"), 4, 1, "B010203");
  expect_ok(S("4a\x1e" "bAQID\x1e" "b\x1e" "bAA==\x1e" "bAAA=\x1e" "b/+8=\x1e" "6"), 4, 7,
            "4a|B010203|B|B00|B0000|Bffef|6");
  expect_ok(S("4:colon,comma\x1e" "4\x1e" "4"), 4, 3, "4:colon,comma|4|4");
}

static void test_v4_payload_malformed(void **state) {
  expect_bad(S(""), 4);
  expect_bad(S("\x1e"), 4);
  expect_bad(S("\x1e" "4a"), 4);
  expect_bad(S("4a\x1e"), 4);
  expect_bad(S("4a\x1e\x1e" "4b"), 4);
  expect_bad(S("7"), 4);
  expect_bad(S("x"), 4);
  expect_bad(S("4a\x1e" "9"), 4);
  expect_bad(S("4\xff"), 4);          /* invalid UTF-8 */
  expect_bad(S("4\xed\xa0\x80"), 4);  /* a surrogate */
  static const char *const bad64[] = {"bAQI", "bAQ=D", "bA===", "b====", "bAR==", "bAAB=", "bAQ-D", "bAQ_D",
                                      "bAQID\n", "b AQID", "bAQ==AQID", "bAQID=", "b=", "bA", "bAQ=", "bAQ*D"};
  for (size_t i = 0; i < sizeof bad64 / sizeof *bad64; i++) expect_bad(bad64[i], strlen(bad64[i]), 4);
}

static void test_v4_callback_order_and_stop(void **state) {
  seen_t s;
  assert_int_equal(decode(S("4a\x1e" "9\x1e" "4b"), 4, &s), HD_EPROTO); /* packets before the bad one are seen */
  assert_string_equal(s.text, "4a");
  memset(&s, 0, sizeof s);
  s.stop_after = 2;
  assert_int_equal(hd_eio_payload_decode(S("4a\x1e" "4b\x1e" "4c"), 4, collect, &s), -99);
  assert_string_equal(s.text, "4a|4b");
}

static void test_v3_payload(void **state) {
  expect_ok(S("6:4hello"), 3, 1, "4hello");
  expect_ok(S("6:4hello1:2"), 3, 2, "4hello|2");
  expect_ok(S("0:"), 3, 0, "");
  expect_ok(S("0:1:60:"), 3, 1, "6");
  expect_ok(S("06:4hello"), 3, 1, "4hello"); /* Number("06") == 6 */
  expect_ok(S("6:b4AQID2:3x"), 3, 2, "B010203|3x");
  expect_ok(S("2:b4"), 3, 1, "B");
  expect_ok(S("5:4a:b:"), 3, 1, "4a:b:");
  /* lengths count UTF-16 code units: CJK 1 each, emoji 2, accented Latin 1 */
  expect_ok(S("3:4\xe4\xbd\xa0\xe5\xa5\xbd"), 3, 1, "4\xe4\xbd\xa0\xe5\xa5\xbd");
  expect_ok(S("3:4\xf0\x9f\x98\x80"), 3, 1, "4\xf0\x9f\x98\x80");
  expect_ok(S("5:4\xf0\x9f\x98\x80\xc3\xa9\xe4\xb8\xad" "1:2"), 3, 2, "4\xf0\x9f\x98\x80\xc3\xa9\xe4\xb8\xad|2");
  expect_ok(S("5:4\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d"), 3, 1, "4\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d");
}

static void test_v3_payload_malformed(void **state) {
  expect_bad(S(""), 3);
  expect_bad(S("6:4hell"), 3);    /* truncated */
  expect_bad(S("2:4hi"), 3);      /* length too short: the rest "i" is not a record */
  expect_bad(S("6:4hello1"), 3);  /* a length without ':' */
  expect_bad(S(":4"), 3);         /* empty length */
  expect_bad(S("a:4"), 3);        /* non-digit length */
  expect_bad(S("1a:4"), 3);
  expect_bad(S(" 1:4"), 3);
  expect_bad(S("-1:4"), 3);
  expect_bad(S("4hello"), 3);     /* a v4 body */
  expect_bad(S("99999999999999999999999:4"), 3);
  expect_bad(S("1:7"), 3);        /* unknown type */
  expect_bad(S("1:x"), 3);
  expect_bad(S("2:4\xf0\x9f\x98\x80"), 3); /* the length splits a surrogate pair */
  expect_bad(S("4:4\xf0\x9f\x98\x80"), 3); /* one unit more than there is */
  expect_bad(S("2:4\xff"), 3);             /* invalid UTF-8 */
  expect_bad(S("5:bAQID"), 3);             /* v3 binary needs its type digit */
  expect_bad(S("6:b2AQID"), 3);            /* binary that is not a message */
  expect_bad(S("5:b4AQI"), 3);             /* bad base64 */
  expect_bad(S("1:b"), 3);
  seen_t s;
  assert_int_equal(decode(S("2:4a1:9"), 3, &s), HD_EPROTO);
  assert_string_equal(s.text, "4a");
}

static void test_encode(void **state) {
  hd_sbuf_t b = {0};
  assert_int_equal(hd_eio_packet_encode_text(&b, HD_EIO_PONG, "probe", 5), 0);
  assert_string_equal(b.ptr, "3probe");
  b.len = 0;
  assert_int_equal(hd_eio_packet_encode_text(&b, HD_EIO_NOOP, NULL, 0), 0);
  assert_string_equal(b.ptr, "6");
  b.len = 0;
  assert_int_equal(hd_eio_payload_append(&b, HD_EIO_MESSAGE, "hello", 5, false, 4, true), 0);
  assert_int_equal(hd_eio_payload_append(&b, HD_EIO_MESSAGE, "\x01\x02\x03", 3, true, 4, false), 0);
  assert_int_equal(hd_eio_payload_append(&b, HD_EIO_PING, NULL, 0, false, 4, false), 0);
  assert_int_equal(hd_eio_payload_append(&b, HD_EIO_MESSAGE, "", 0, true, 4, false), 0);
  assert_string_equal(b.ptr, "4hello\x1e" "bAQID\x1e" "2\x1e" "b");
  expect_ok(b.ptr, b.len, 4, 4, "4hello|B010203|2|B");
  b.len = 0;
  assert_int_equal(hd_eio_payload_append(&b, HD_EIO_MESSAGE, "hello", 5, false, 3, true), 0);
  assert_int_equal(hd_eio_payload_append(&b, HD_EIO_MESSAGE, "\x01\x02\x03", 3, true, 3, false), 0);
  assert_int_equal(hd_eio_payload_append(&b, HD_EIO_MESSAGE, S("\xf0\x9f\x98\x80\xe4\xb8\xad"), false, 3, false), 0);
  assert_int_equal(hd_eio_payload_append(&b, HD_EIO_PING, NULL, 0, false, 3, false), 0);
  assert_int_equal(hd_eio_payload_append(&b, HD_EIO_MESSAGE, "\xff", 1, true, 3, false), 0);
  assert_string_equal(b.ptr, "6:4hello6:b4AQID4:4\xf0\x9f\x98\x80\xe4\xb8\xad" "1:26:b4/w==");
  expect_ok(b.ptr, b.len, 3, 5, "4hello|B010203|4\xf0\x9f\x98\x80\xe4\xb8\xad|2|Bff");
  hd_sbuf_free(&b);
}

static void test_base64_round_trip(void **state) {
  uint8_t bytes[300];
  for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 37 + 11);
  for (int v = 3; v <= 4; v++)
    for (size_t n = 0; n <= sizeof bytes; n += n < 10 ? 1 : 29) {
      hd_sbuf_t b = {0};
      char want[700] = "B";
      for (size_t i = 0; i < n; i++) sprintf(want + 1 + 2 * i, "%02x", bytes[i]);
      assert_int_equal(hd_eio_payload_append(&b, HD_EIO_MESSAGE, bytes, n, true, v, true), 0);
      expect_ok(b.ptr, b.len, v, 1, want);
      hd_sbuf_free(&b);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ws_text_every_type),
      cmocka_unit_test(test_ws_text_malformed),
      cmocka_unit_test(test_ws_binary),
      cmocka_unit_test(test_v4_payload),
      cmocka_unit_test(test_v4_payload_malformed),
      cmocka_unit_test(test_v4_callback_order_and_stop),
      cmocka_unit_test(test_v3_payload),
      cmocka_unit_test(test_v3_payload_malformed),
      cmocka_unit_test(test_encode),
      cmocka_unit_test(test_base64_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
