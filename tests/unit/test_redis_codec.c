/* Unit tests for the redis-adapter codec: the CLUSTER.md example byte for byte, notepack's number
 * and string forms, attachments as bin both ways, what Node and the emitter send, channels, and
 * malformed input refused (truncated, trailing bytes, wrong shapes, huge counts, deep nesting); any
 * value (requests 7, responses 9) both ways with bin as placeholders. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/redis_codec.h"
#include "core/error.h"

/* Bytes from a description: "quoted" parts are their characters, the rest hex pairs. */
static size_t bytes(const char *desc, uint8_t *out) {
  size_t n = 0;
  for (const char *p = desc; *p;) {
    if (*p == ' ') p++;
    else if (*p == '"') {
      for (p++; *p != '"'; p++) out[n++] = (uint8_t)*p;
      p++;
    } else {
      unsigned v;
      sscanf(p, "%2x", &v);
      out[n++] = (uint8_t)v;
      p += 2;
    }
  }
  return n;
}

static const char *EXAMPLE =
    "93 a6\"abc123\" 83 a4\"type\"02 a4\"data\"92 a5\"hello\" a5\"world\" a3\"nsp\" a1\"/\" "
    "83 a5\"rooms\"91 a5\"room1\" a6\"except\"90 a5\"flags\"81 a8\"volatile\"c3";

static void encode_example(void **state) {
  char *rooms[] = {"room1"};
  hd_redis_bcast_t b = {"abc123", "/", "hello", "[\"world\"]", 9, NULL, 0, rooms, 1, NULL, 0, HD_REDIS_VOLATILE, 0};
  uint8_t want[256], *got;
  size_t n = bytes(EXAMPLE, want), len;
  assert_int_equal(hd_redis_encode_bcast(&b, &got, &len), 0);
  assert_int_equal(len, n);
  assert_memory_equal(got, want, n);
  free(got);
}

static void decode_example(void **state) {
  uint8_t in[256];
  size_t n = bytes(EXAMPLE, in);
  hd_redis_bcast_t b;
  assert_int_equal(hd_redis_decode_bcast(in, n, &b), 0);
  assert_string_equal(b.uid, "abc123");
  assert_string_equal(b.nsp, "/");
  assert_string_equal(b.event, "hello");
  assert_string_equal(b.args, "[\"world\"]");
  assert_int_equal(b.room_count, 1);
  assert_string_equal(b.rooms[0], "room1");
  assert_int_equal(b.except_count, 0);
  assert_int_equal(b.flags, HD_REDIS_VOLATILE);
  assert_int_equal(b.attachment_count, 0);
  hd_redis_bcast_free(&b);
  assert_null(b.uid);
}

/* Herald's recovery offset rides in opts.heraldOffset (a decimal string socket.io nodes ignore), both
 * ways; without it the bytes are the adapter's exactly (encode_example); a malformed one is ignored. */
static void recovery_offset(void **state) {
  char *rooms[] = {"room1"};
  hd_redis_bcast_t b = {"abc123", "/", "hello", "[\"world\"]", 9, NULL, 0, rooms, 1, NULL, 0, 0, 18446744073709551615ull};
  uint8_t *got;
  size_t len;
  assert_int_equal(hd_redis_encode_bcast(&b, &got, &len), 0);
  assert_non_null(memmem(got, len, "\x84\xacheraldOffset\xb4" "18446744073709551615", 35));
  hd_redis_bcast_t d;
  assert_int_equal(hd_redis_decode_bcast(got, len, &d), 0);
  assert_true(d.offset == 18446744073709551615ull);
  assert_string_equal(d.rooms[0], "room1");
  hd_redis_bcast_free(&d);
  free(got);
  uint8_t in[256];
  size_t n = bytes("93 a1\"u\" 82 a4\"type\"02 a4\"data\"91 a1\"e\" 82 ac\"heraldOffset\" a2\"1x\" a5\"rooms\"90", in);
  assert_int_equal(hd_redis_decode_bcast(in, n, &d), 0);
  assert_true(d.offset == 0);
  hd_redis_bcast_free(&d);
}

/* Encodes args, checks the data part's bytes (after the event), decodes and compares the JSON. */
static void number_forms(void **state) {
  hd_redis_bcast_t b = {"u", "/", "e", "[0,127,128,255,256,65536,4294967296,-1,-32,-33,-129,-32769,0.5,2.0,\"x\"]",
                        0, NULL, 0, NULL, 0, NULL, 0, 0, 0};
  b.args_len = strlen(b.args);
  uint8_t *got, want[128];
  size_t len;
  assert_int_equal(hd_redis_encode_bcast(&b, &got, &len), 0);
  size_t n = bytes("a4\"data\"dc0010 a1\"e\" 00 7f cc80 ccff cd0100 ce00010000 cf0000000100000000 ff e0 d0df "
                   "d1ff7f d2ffff7fff cb3fe0000000000000 02 a1\"x\"", want);
  assert_non_null(memmem(got, len, want, n));
  hd_redis_bcast_t d;
  assert_int_equal(hd_redis_decode_bcast(got, len, &d), 0);
  assert_string_equal(d.args, "[0,127,128,255,256,65536,4294967296,-1,-32,-33,-129,-32769,0.5,2,\"x\"]");
  hd_redis_bcast_free(&d);
  free(got);
}

static void str8_from_32(void **state) {
  char args[64];
  snprintf(args, sizeof args, "[\"%s\"]", "0123456789012345678901234567890X"); /* 32 bytes */
  hd_redis_bcast_t b = {"u", "/", "e", args, strlen(args), NULL, 0, NULL, 0, NULL, 0, 0, 0};
  uint8_t *got;
  size_t len;
  assert_int_equal(hd_redis_encode_bcast(&b, &got, &len), 0);
  assert_non_null(memmem(got, len, "\xd9\x20" "0123", 6));
  free(got);
}

static void attachments_round_trip(void **state) {
  hd_buf_t *att[2] = {hd_buf_from("\x00\x01\xff", 3), hd_buf_from("zz", 2)};
  const char *args = "[\"f\",{\"_placeholder\":true,\"num\":0},{\"n\":{\"_placeholder\":true,\"num\":1}}]";
  char *except[] = {"a", "b"};
  hd_redis_bcast_t b = {"abcdef", "/custom", "file", (char *)args, strlen(args), att, 2, NULL, 0, except, 2, 0, 0};
  uint8_t *got;
  size_t len;
  assert_int_equal(hd_redis_encode_bcast(&b, &got, &len), 0);
  assert_non_null(memmem(got, len, "\xc4\x03\x00\x01\xff", 5));
  assert_non_null(memmem(got, len, "\xc4\x02zz", 4));
  assert_null(memmem(got, len, "_placeholder", 12));
  hd_redis_bcast_t d;
  assert_int_equal(hd_redis_decode_bcast(got, len, &d), 0);
  assert_string_equal(d.nsp, "/custom");
  assert_string_equal(d.args, args);
  assert_int_equal(d.attachment_count, 2);
  assert_int_equal(d.attachments[0]->len, 3);
  assert_memory_equal(d.attachments[0]->data, "\x00\x01\xff", 3);
  assert_memory_equal(d.attachments[1]->data, "zz", 2);
  assert_int_equal(d.except_count, 2);
  assert_string_equal(d.except[1], "b");
  hd_redis_bcast_free(&d);
  free(got);
  hd_buf_unref(att[0]);
  hd_buf_unref(att[1]);
}

/* As the emitter writes it: keys in another order, no nsp, undefined (fixext1 0) and ext 0. */
static void emitter_shape(void **state) {
  uint8_t in[256];
  size_t n = bytes("93 a7\"emitter\" 82 a4\"type\"02 a4\"data\"95 a2\"ev\" d40000 81a1\"k\"d40000 c7020061 62 cb4004000000000000 "
                   "83 a5\"rooms\"90 a5\"flags\"80 a6\"except\"91 a1\"x\"", in);
  hd_redis_bcast_t b;
  assert_int_equal(hd_redis_decode_bcast(in, n, &b), 0);
  assert_string_equal(b.uid, "emitter");
  assert_string_equal(b.nsp, "/");
  assert_string_equal(b.event, "ev");
  assert_string_equal(b.args, "[null,{},{\"_placeholder\":true,\"num\":0},2.5]");
  assert_int_equal(b.attachment_count, 1);
  assert_memory_equal(b.attachments[0]->data, "ab", 2);
  assert_int_equal(b.room_count, 0);
  assert_int_equal(b.except_count, 1);
  hd_redis_bcast_free(&b);
}

static void refuse(const char *desc) {
  uint8_t in[256];
  size_t n = bytes(desc, in);
  hd_redis_bcast_t b;
  int rc = hd_redis_decode_bcast(in, n, &b);
  if (!rc) fail_msg("accepted: %s", desc);
  assert_null(b.uid);
}

static void malformed(void **state) {
  uint8_t in[256];
  size_t n = bytes(EXAMPLE, in);
  hd_redis_bcast_t b;
  for (size_t i = 0; i < n; i++) assert_int_not_equal(hd_redis_decode_bcast(in, i, &b), 0); /* every truncation */
  in[n] = 0xc0;
  assert_int_equal(hd_redis_decode_bcast(in, n + 1, &b), HD_EPROTO); /* trailing byte */
  refuse("");
  refuse("c0");
  refuse("92 a1\"u\" 80");                                       /* two elements */
  refuse("93 01 81a4\"type\"02 80");                             /* uid not a string */
  refuse("93 a1\"u\" 82 a4\"type\"01 a4\"data\"91a1\"e\" 80");   /* not an EVENT */
  refuse("93 a1\"u\" 81 a4\"type\"02 80");                       /* no data */
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"91 01 80");       /* event not a string */
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"90 80");          /* empty data */
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"91a1\"e\" 81 a5\"rooms\"91 01"); /* room not a string */
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"91a1\"e\" 81 a5\"flags\"c401 00"); /* bin outside data */
  refuse("93 c40175 82 a4\"type\"02 a4\"data\"91a1\"e\" 80");    /* uid as bin */
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"92a1\"e\" a2c328 80"); /* invalid UTF-8 */
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"92a1\"e\" dd ffffffff 80"); /* a count past the bytes */
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"92a1\"e\" df 7fffffff 80");
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"92a1\"e\" 81 01 02 80"); /* map key not a string */
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"92a1\"e\" c1 80");  /* never used */
  refuse("93 a1\"u\" 82 a4\"type\"02 a4\"data\"92a1\"e\" 82 a1\"k\"c40101 a1\"k\"02 80"); /* a key twice (its bin would dangle) */
  refuse("93 a1\"u\" 83 a4\"type\"02 a4\"data\"92a1\"e\"c40101 a4\"data\"91a1\"e\" 80"); /* packet data twice */
  /* nesting deeper than HD_REDIS_MAX_DEPTH */
  size_t k = bytes("93 a1\"u\" 82 a4\"type\"02 a4\"data\"92a1\"e\"", in);
  for (int i = 0; i < 40; i++) in[k++] = 0x91;
  in[k++] = 0xc0;
  in[k++] = 0x80;
  assert_int_equal(hd_redis_decode_bcast(in, k, &b), HD_EPROTO);
}

static void encode_refuses(void **state) {
  uint8_t *got;
  size_t len;
  hd_redis_bcast_t b = {"u", "/", "e", "{}", 2, NULL, 0, NULL, 0, NULL, 0, 0, 0};
  assert_int_equal(hd_redis_encode_bcast(&b, &got, &len), HD_EINVAL);
  b.args = "[{\"_placeholder\":true,\"num\":0}]"; /* no attachment 0 */
  b.args_len = strlen(b.args);
  assert_int_equal(hd_redis_encode_bcast(&b, &got, &len), HD_EINVAL);
}

static void channels(void **state) {
  hd_sbuf_t s = {0};
  assert_int_equal(hd_redis_channel(&s, "socket.io", "/", NULL), 0);
  assert_string_equal(s.ptr, "socket.io#/#");
  s.len = 0;
  assert_int_equal(hd_redis_channel(&s, "k", "/chat", "room 1"), 0);
  assert_string_equal(s.ptr, "k#/chat#room 1#");
  hd_sbuf_free(&s);
}

/* Requests 7 and responses 9: any msgpack value, bin anywhere as placeholders, and back. */
static void any_value(void **state) {
  /* {"type":9,"requestId":"ab","packet":<bin 01 ff>} as notepack writes it */
  uint8_t in[64];
  size_t n = bytes("83 a4\"type\"09 a9\"requestId\"a2\"ab\" a6\"packet\"c4 02 01ff", in);
  json_t *v = NULL;
  hd_buf_t **att = NULL;
  uint32_t natt = 0;
  assert_int_equal(hd_redis_decode_value(in, n, &v, &att, &natt), 0);
  assert_int_equal(natt, 1);
  assert_int_equal(att[0]->len, 2);
  char *text = json_dumps(v, JSON_COMPACT);
  assert_string_equal(text, "{\"type\":9,\"requestId\":\"ab\",\"packet\":{\"_placeholder\":true,\"num\":0}}");
  uint8_t *out = NULL;
  size_t len = 0;
  assert_int_equal(hd_redis_encode_value(v, att, natt, &out, &len), 0);
  assert_int_equal(len, n);
  assert_memory_equal(out, in, n);
  free(out);
  free(text);
  json_decref(v);
  hd_buf_unref(att[0]);
  free(att);
  /* refused: trailing bytes, truncated, undefined alone, a reserved byte */
  static const char *const bad[] = {"c0 c0", "82 a1\"a\"", "d4 00 00", "c1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    n = bytes(bad[i], in);
    assert_int_equal(hd_redis_decode_value(in, n, &v, &att, &natt), HD_EPROTO);
    assert_null(v);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(encode_example),  cmocka_unit_test(decode_example),        cmocka_unit_test(number_forms),
      cmocka_unit_test(str8_from_32),    cmocka_unit_test(attachments_round_trip), cmocka_unit_test(emitter_shape),
      cmocka_unit_test(malformed),       cmocka_unit_test(encode_refuses),        cmocka_unit_test(channels),
      cmocka_unit_test(any_value),       cmocka_unit_test(recovery_offset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
