/* Unit tests for the Socket.IO codec: every packet type with and without namespace and ack id,
 * attachments, payload shapes per type, malformed text of every kind, binary placeholders, and
 * encodings byte for byte as socket.io-parser writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "proto/sio_packet.h"

static const hd_sio_limits_t limits = {.max_attachments = 10, .max_nsp_len = 64};

static int dec(const char *text, size_t len, hd_sio_packet_t *p) { return hd_sio_packet_decode(text, len, &limits, p); }

/* Decodes text and checks every field; want_data is the compact JSON of the payload or NULL. */
static void expect_packet(const char *text, hd_sio_type_t type, const char *nsp, int64_t ack, uint32_t att,
                          const char *want_data) {
  hd_sio_packet_t p;
  int rc = dec(text, strlen(text), &p);
  if (rc) fail_msg("%s: %s", text, hd_errname(rc));
  assert_int_equal(p.type, type);
  assert_string_equal(p.nsp, nsp);
  assert_int_equal(p.ack_id, ack);
  assert_int_equal(p.attachments, att);
  if (!want_data) {
    assert_null(p.data);
  } else {
    char *got = json_dumps(p.data, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal(got, want_data);
    free(got);
  }
  hd_sio_packet_free(&p);
  assert_null(p.data);
}

static void expect_err_len(const char *text, size_t len, int want) {
  hd_sio_packet_t p;
  int rc = dec(text, len, &p);
  if (rc != want) fail_msg("[%.*s]: %s, want %s", (int)len, text, hd_errname(rc), hd_errname(want));
  assert_null(p.data);
}

static void expect_err(const char *text, int want) { expect_err_len(text, strlen(text), want); }

static void test_connect_disconnect(void **state) {
  expect_packet("0", HD_SIO_CONNECT, "/", HD_SIO_NO_ACK, 0, NULL);
  expect_packet("0{\"token\":\"abc\"}", HD_SIO_CONNECT, "/", HD_SIO_NO_ACK, 0, "{\"token\":\"abc\"}");
  expect_packet("0/admin,", HD_SIO_CONNECT, "/admin", HD_SIO_NO_ACK, 0, NULL);
  expect_packet("0/admin", HD_SIO_CONNECT, "/admin", HD_SIO_NO_ACK, 0, NULL);
  expect_packet("0/admin,{\"token\":\"abc\"}", HD_SIO_CONNECT, "/admin", HD_SIO_NO_ACK, 0, "{\"token\":\"abc\"}");
  expect_packet("0/admin?token=x,", HD_SIO_CONNECT, "/admin?token=x", HD_SIO_NO_ACK, 0, NULL); /* protocol v4 */
  expect_packet("0/,{}", HD_SIO_CONNECT, "/", HD_SIO_NO_ACK, 0, "{}");
  expect_packet("1", HD_SIO_DISCONNECT, "/", HD_SIO_NO_ACK, 0, NULL);
  expect_packet("1/admin,", HD_SIO_DISCONNECT, "/admin", HD_SIO_NO_ACK, 0, NULL);
}

static void test_event_ack_error(void **state) {
  expect_packet("2[\"ev\"]", HD_SIO_EVENT, "/", HD_SIO_NO_ACK, 0, "[\"ev\"]");
  expect_packet("2[\"ev\",1,{\"a\":[true,null,1.5]}]", HD_SIO_EVENT, "/", HD_SIO_NO_ACK, 0,
                "[\"ev\",1,{\"a\":[true,null,1.5]}]");
  expect_packet("2/admin,[\"ev\"]", HD_SIO_EVENT, "/admin", HD_SIO_NO_ACK, 0, "[\"ev\"]");
  expect_packet("212[\"ev\"]", HD_SIO_EVENT, "/", 12, 0, "[\"ev\"]");
  expect_packet("2/admin,12[\"ev\"]", HD_SIO_EVENT, "/admin", 12, 0, "[\"ev\"]");
  expect_packet("20[\"ev\"]", HD_SIO_EVENT, "/", 0, 0, "[\"ev\"]");
  expect_packet("2007[\"ev\"]", HD_SIO_EVENT, "/", 7, 0, "[\"ev\"]");
  expect_packet("29007199254740991[\"ev\"]", HD_SIO_EVENT, "/", 9007199254740991LL, 0, "[\"ev\"]");
  expect_packet("2[1,\"x\"]", HD_SIO_EVENT, "/", HD_SIO_NO_ACK, 0, "[1,\"x\"]"); /* a number name, as the reference */
  expect_packet("2[\"connect\"]", HD_SIO_EVENT, "/", HD_SIO_NO_ACK, 0, "[\"connect\"]"); /* reserved: server's call */
  expect_packet("2 [\"ev\"] \n", HD_SIO_EVENT, "/", HD_SIO_NO_ACK, 0, "[\"ev\"]");  /* JSON.parse whitespace */
  expect_packet("2[\"\xc3\xa9\xf0\x9f\x98\x80\",\"\\u00e9\"]", HD_SIO_EVENT, "/", HD_SIO_NO_ACK, 0,
                "[\"\xc3\xa9\xf0\x9f\x98\x80\",\"\xc3\xa9\"]");
  expect_packet("2[\"a\\u0000b\"]", HD_SIO_EVENT, "/", HD_SIO_NO_ACK, 0, "[\"a\\u0000b\"]");
  expect_packet("3[]", HD_SIO_ACK, "/", HD_SIO_NO_ACK, 0, "[]");
  expect_packet("30[]", HD_SIO_ACK, "/", 0, 0, "[]");
  expect_packet("312[\"ok\",{}]", HD_SIO_ACK, "/", 12, 0, "[\"ok\",{}]");
  expect_packet("3/admin,5[1]", HD_SIO_ACK, "/admin", 5, 0, "[1]");
  expect_packet("4{\"message\":\"m\"}", HD_SIO_CONNECT_ERROR, "/", HD_SIO_NO_ACK, 0, "{\"message\":\"m\"}");
  expect_packet("4/admin,{\"message\":\"m\",\"data\":{}}", HD_SIO_CONNECT_ERROR, "/admin", HD_SIO_NO_ACK, 0,
                "{\"message\":\"m\",\"data\":{}}");
  expect_packet("4\"Invalid namespace\"", HD_SIO_CONNECT_ERROR, "/", HD_SIO_NO_ACK, 0, "\"Invalid namespace\"");
}

static void test_binary(void **state) {
  expect_packet("51-[\"ev\",{\"_placeholder\":true,\"num\":0}]", HD_SIO_BINARY_EVENT, "/", HD_SIO_NO_ACK, 1,
                "[\"ev\",{\"_placeholder\":true,\"num\":0}]");
  expect_packet("52-/admin,7[\"ev\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
                HD_SIO_BINARY_EVENT, "/admin", 7, 2,
                "[\"ev\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
  expect_packet("50-[\"ev\"]", HD_SIO_BINARY_EVENT, "/", HD_SIO_NO_ACK, 0, "[\"ev\"]");
  expect_packet("510-[\"ev\"]", HD_SIO_BINARY_EVENT, "/", HD_SIO_NO_ACK, 10, "[\"ev\"]"); /* at the limit */
  expect_packet("61-[{\"_placeholder\":true,\"num\":0}]", HD_SIO_BINARY_ACK, "/", HD_SIO_NO_ACK, 1,
                "[{\"_placeholder\":true,\"num\":0}]");
  expect_packet("61-/admin,3[{\"_placeholder\":true,\"num\":0}]", HD_SIO_BINARY_ACK, "/admin", 3, 1,
                "[{\"_placeholder\":true,\"num\":0}]");
  expect_packet("603-12[]", HD_SIO_BINARY_ACK, "/", 12, 3, "[]");
}

static void test_malformed(void **state) {
  static const char *const bad[] = {
      "", "7", "9[]", "x", " 2[\"ev\"]", "-1", "/", /* type */
      "5[\"ev\"]", "51[\"ev\"]", "5-[\"ev\"]", "5a-[\"ev\"]", "51", "5", "6", "6/admin,1-[]", /* attachments */
      "2/admin[\"ev\"]", "2/admin\"x\"", "2/admin", "2/a\xff,[\"ev\"]",                   /* namespace */
      "2[\"ev\"", "2[\"ev\"]x", "2[\"ev\"] [1]", "2{", "2[\"\xff\"]", "2[\"\\ud800\"]", "2[\"ev\",]",
      "2[\"ev\",NaN]", "2['ev']", "2 ", "2,[\"ev\"]", /* JSON */
      "0[]", "0\"s\"", "0null", "0 1", "0true",                       /* CONNECT shape */
      "1{}", "1[]", "1\"x\"", "1/admin,{}",                            /* DISCONNECT shape */
      "2{}", "2[]", "2[{}]", "2[null]", "2[true]", "2[[\"x\"]]", "2\"ev\"", "2", "25", "2/admin,", /* EVENT */
      "3{}", "3\"x\"", "3", "31", "3null",                                                     /* ACK */
      "4[]", "41", "4", "4null", "4true",                                                      /* CONNECT_ERROR */
      "51-{}", "51-[]", "51-[{}]", "51-", "61-{}", "61-",                                     /* binary shapes */
      "29007199254740992[\"ev\"]", "2999999999999999999999999[\"ev\"]", "3/admin,99999999999999999[]", /* ack id */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect_err(bad[i], HD_EPROTO);
  expect_err_len("2[\"ev\"]\0", 8, HD_EPROTO);
  expect_err_len("2/a\0b,[\"ev\"]", 12, HD_EPROTO);
  expect_err("511-[\"ev\"]", HD_ETOOBIG);
  expect_err("599999999999999999999999-[\"ev\"]", HD_ETOOBIG);
  expect_err("64294967296-[]", HD_ETOOBIG);
}

static void test_namespace_length(void **state) {
  char text[400] = "2/";
  memset(text + 2, 'n', 63);
  strcpy(text + 65, ",[\"ev\"]");
  hd_sio_packet_t p;
  assert_int_equal(dec(text, strlen(text), &p), 0); /* 64 bytes with the slash */
  assert_int_equal(strlen(p.nsp), 64);
  hd_sio_packet_free(&p);
  memset(text + 2, 'n', 64);
  strcpy(text + 66, ",[\"ev\"]");
  expect_err(text, HD_EPROTO);
  hd_sio_limits_t big = {.max_attachments = 10, .max_nsp_len = 1000};
  memset(text + 2, 'n', 254);
  strcpy(text + 256, ",[\"ev\"]");
  assert_int_equal(hd_sio_packet_decode(text, strlen(text), &big, &p), 0); /* 255 fits nsp[256] */
  hd_sio_packet_free(&p);
  memset(text + 2, 'n', 255);
  strcpy(text + 257, ",[\"ev\"]");
  assert_int_equal(hd_sio_packet_decode(text, strlen(text), &big, &p), HD_EPROTO);
}

static int placeholders(const char *text) {
  hd_sio_packet_t p;
  int rc = dec(text, strlen(text), &p);
  if (rc) fail_msg("%s: %s", text, hd_errname(rc));
  rc = hd_sio_packet_check_placeholders(&p);
  hd_sio_packet_free(&p);
  return rc;
}

#define PH(n) "{\"_placeholder\":true,\"num\":" #n "}"

static void test_placeholders(void **state) {
  assert_int_equal(placeholders("51-[\"ev\"," PH(0) "]"), 0);
  assert_int_equal(placeholders("52-[\"ev\",{\"a\":[" PH(1) "],\"b\":" PH(0) "}]"), 0);
  assert_int_equal(placeholders("51-[\"ev\"," PH(0) "," PH(0) "]"), 0); /* referenced twice: fine */
  assert_int_equal(placeholders("52-[\"ev\"," PH(1.0) "," PH(0) "]"), 0); /* a number, as Number() sees it */
  assert_int_equal(placeholders("51-[\"ev\",{\"_placeholder\":true,\"num\":0,\"x\":{\"y\":1}}]"), 0);
  assert_int_equal(placeholders("50-[\"ev\",{\"_placeholder\":false,\"num\":5}]"), 0);
  assert_int_equal(placeholders("50-[\"ev\",{\"_placeholder\":\"true\",\"num\":5}]"), 0);
  assert_int_equal(placeholders("50-[\"ev\",{\"num\":5}]"), 0);
  assert_int_equal(placeholders("61-[" PH(0) "]"), 0);
  assert_int_equal(placeholders("2[\"ev\"," PH(3) "]"), 0); /* not a binary packet: plain data */
  assert_int_equal(placeholders("52-[\"ev\"," PH(0) "]"), HD_EPROTO); /* attachment 1 unreferenced */
  assert_int_equal(placeholders("51-[\"ev\"]"), HD_EPROTO);
  assert_int_equal(placeholders("51-[\"ev\"," PH(1) "]"), HD_EPROTO);
  assert_int_equal(placeholders("51-[\"ev\"," PH(-1) "]"), HD_EPROTO);
  assert_int_equal(placeholders("52-[\"ev\"," PH(0.5) "," PH(1) "]"), HD_EPROTO);
  assert_int_equal(placeholders("51-[\"ev\"," PH("0") "]"), HD_EPROTO);
  assert_int_equal(placeholders("51-[\"ev\"," PH(null) "]"), HD_EPROTO);
  assert_int_equal(placeholders("51-[\"ev\"," PH(true) "]"), HD_EPROTO);
  assert_int_equal(placeholders("51-[\"ev\",{\"_placeholder\":true}]"), HD_EPROTO);
  assert_int_equal(placeholders("51-[\"ev\"," PH(4294967296) "]"), HD_EPROTO);
  assert_int_equal(placeholders("50-[\"ev\"," PH(0) "]"), HD_EPROTO);
  assert_int_equal(placeholders("61-[{\"a\":[[" PH(2) "]]}]"), HD_EPROTO);
}

#define J(lit) lit, strlen(lit)

static void expect_encoded(hd_sbuf_t *b, int rc, const char *want) {
  assert_int_equal(rc, 0);
  assert_string_equal(b->ptr, want);
  hd_sio_packet_t p; /* and it decodes */
  assert_int_equal(dec(b->ptr, b->len, &p), 0);
  hd_sio_packet_free(&p);
  b->len = 0;
}

static void test_encode(void **state) {
  hd_sbuf_t b = {0};
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_EVENT, "/", HD_SIO_NO_ACK, 0, J("[\"ev\",1]")), "2[\"ev\",1]");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_EVENT, "/admin", -1, 0, J("[\"ev\"]")), "2/admin,[\"ev\"]");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_ACK, "/admin", 5, 0, J("[1]")), "3/admin,5[1]");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_ACK, NULL, 0, 0, J("[]")), "30[]");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_BINARY_EVENT, "/", -1, 1, J("[\"ev\"," PH(0) "]")),
                 "51-[\"ev\"," PH(0) "]");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_BINARY_ACK, "/admin", 3, 1, J("[" PH(0) "]")),
                 "61-/admin,3[" PH(0) "]");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_BINARY_EVENT, "/", -1, 0, J("[\"ev\"]")), "50-[\"ev\"]");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_CONNECT, "/", -1, 0, J("{\"sid\":\"x\"}")), "0{\"sid\":\"x\"}");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_CONNECT, "/admin", -1, 0, J("{\"sid\":\"x\"}")),
                 "0/admin,{\"sid\":\"x\"}");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_CONNECT_ERROR, "/", -1, 0, J("{\"message\":\"m\"}")),
                 "4{\"message\":\"m\"}");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_DISCONNECT, "/admin", -1, 0, NULL, 0), "1/admin,");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_DISCONNECT, "", -1, 0, NULL, 0), "1");
  expect_encoded(&b, hd_sio_packet_encode(&b, HD_SIO_CONNECT, NULL, -1, 0, NULL, 0), "0");

  expect_encoded(&b, hd_sio_event_encode(&b, "/", -1, "ev", J("[1,\"a\"]")), "2[\"ev\",1,\"a\"]");
  expect_encoded(&b, hd_sio_event_encode(&b, "/chat", 7, "msg", J("[]")), "2/chat,7[\"msg\"]");
  expect_encoded(&b, hd_sio_event_encode(&b, NULL, -1, "ev", NULL, 0), "2[\"ev\"]");
  expect_encoded(&b, hd_sio_event_encode(&b, NULL, -1, "ev", J(" [ ] ")), "2[\"ev\"]");
  expect_encoded(&b, hd_sio_event_encode(&b, NULL, -1, "ev", J("[{\"a\":[1]}]")), "2[\"ev\",{\"a\":[1]}]");
  expect_encoded(&b, hd_sio_event_encode(&b, NULL, 0, "a\"b\\c\n\r\t\b\f\x01\x1f/\xc3\xa9", J("[]")),
                 "20[\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\xc3\xa9\"]"); /* as JSON.stringify */
  assert_int_equal(hd_sio_event_encode(&b, NULL, -1, "ev", J("{}")), HD_EINVAL);
  assert_int_equal(hd_sio_event_encode(&b, NULL, -1, "ev", J("[")), HD_EINVAL);
  assert_int_equal(hd_sio_event_encode(&b, NULL, -1, NULL, J("[]")), HD_EINVAL);
  hd_sbuf_free(&b);

  /* the head at its longest fits HD_SIO_HEAD_MAX: every count and id at its limit, a 127-byte namespace */
  char nsp[128], head[HD_SIO_HEAD_MAX(127) + 1], want[256];
  nsp[0] = '/';
  memset(nsp + 1, 'n', 126);
  nsp[127] = '\0';
  memset(head, '#', sizeof head);
  size_t n = hd_sio_packet_head(head, HD_SIO_BINARY_ACK, nsp, 9007199254740991LL, UINT32_MAX);
  snprintf(want, sizeof want, "64294967295-%s,9007199254740991", nsp);
  assert_int_equal(n, strlen(want));
  assert_true(n <= HD_SIO_HEAD_MAX(127));
  assert_memory_equal(head, want, n);
  assert_int_equal(head[n], '#');
  assert_int_equal(hd_sio_packet_head(head, HD_SIO_ACK, "/", 0, 0), 2);
  assert_memory_equal(head, "30", 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_disconnect),
      cmocka_unit_test(test_event_ack_error),
      cmocka_unit_test(test_binary),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_namespace_length),
      cmocka_unit_test(test_placeholders),
      cmocka_unit_test(test_encode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
