/* Unit tests for frame headers: every length encoding, incomplete headers at each byte count,
 * the 64-bit top bit, masking at every offset and alignment, building, close frames, close codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/error.h"
#include "net/utf8.h"
#include "net/ws_frame.h"

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Writes a header with the length in the given encoding (0: 7-bit, 2: 16-bit, 8: 64-bit). */
static size_t put_header(uint8_t *out, uint8_t b0, bool masked, int enc, uint64_t len) {
  size_t n = 2;
  out[0] = b0;
  out[1] = (uint8_t)((masked ? 0x80 : 0) | (enc == 0 ? len : enc == 2 ? 126 : 127));
  for (int i = enc - 1; i >= 0; i--) out[n++] = (uint8_t)(len >> (8 * i));
  if (masked) memcpy(out + n, MASK, 4), n += 4;
  return n;
}

static void test_parse_lengths(void **state) {
  static const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 1u << 20, 0x7fffffffffffffffull};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
    for (int enc = 0; enc <= 8; enc += enc ? 6 : 2) {
      if ((enc == 0 && lens[i] > 125) || (enc == 2 && lens[i] > 65535)) continue;
      for (int masked = 0; masked <= 1; masked++) {
        uint8_t buf[HD_WS_MAX_HEADER];
        size_t n = put_header(buf, 0x81, masked, enc, lens[i]);
        hd_ws_frame_t f;
        for (size_t k = 0; k < n; k++) assert_int_equal(hd_ws_frame_parse_header(buf, k, &f), HD_EAGAIN);
        assert_int_equal(hd_ws_frame_parse_header(buf, n, &f), (int)n);
        assert_int_equal(f.header_len, n);
        assert_true(f.payload_len == lens[i]);
        assert_int_equal(f.masked, masked);
        assert_memory_equal(f.mask, masked ? MASK : (const uint8_t[4]){0}, 4);
        assert_true(f.fin);
        assert_int_equal(f.opcode, HD_WS_OP_TEXT);
      }
    }
}

static void test_parse_bits(void **state) {
  uint8_t buf[2] = {0x7a, 0x00}; /* RSV1..3 and opcode 0xA, no FIN */
  hd_ws_frame_t f;
  assert_int_equal(hd_ws_frame_parse_header(buf, 2, &f), 2);
  assert_false(f.fin);
  assert_true(f.rsv1 && f.rsv2 && f.rsv3);
  assert_int_equal(f.opcode, 0xa);
  buf[0] = 0x83; /* reserved opcodes are the reader's business */
  assert_int_equal(hd_ws_frame_parse_header(buf, 2, &f), 2);
  assert_true(f.fin && !f.rsv1 && !f.rsv2 && !f.rsv3);
  assert_int_equal(f.opcode, 3);
}

static void test_parse_top_bit(void **state) {
  uint8_t buf[HD_WS_MAX_HEADER];
  size_t n = put_header(buf, 0x82, true, 8, 0x8000000000000000ull);
  hd_ws_frame_t f;
  assert_int_equal(hd_ws_frame_parse_header(buf, 9, &f), HD_EAGAIN);
  assert_int_equal(hd_ws_frame_parse_header(buf, 10, &f), HD_EPROTO);
  assert_int_equal(hd_ws_frame_parse_header(buf, n, &f), HD_EPROTO);
  put_header(buf, 0x82, false, 8, 0xffffffffffffffffull);
  assert_int_equal(hd_ws_frame_parse_header(buf, 10, &f), HD_EPROTO);
}

static void test_mask(void **state) {
  uint8_t src[80], buf[88], want[80];
  for (size_t i = 0; i < sizeof(src); i++) src[i] = (uint8_t)(i * 7 + 3);
  for (uint64_t off = 0; off < 8; off++)
    for (size_t align = 0; align < 8; align++)
      for (size_t len = 0; len <= 72; len++) {
        for (size_t i = 0; i < len; i++) want[i] = src[i] ^ MASK[(off + i) % 4];
        memcpy(buf + align, src, len);
        hd_ws_mask(buf + align, len, MASK, off);
        assert_memory_equal(buf + align, want, len);
      }
  /* unmasking in pieces, each with its offset, equals unmasking at once */
  memcpy(buf, src, 80);
  for (size_t at = 0; at < 80; at += 13) hd_ws_mask(buf + at, at + 13 > 80 ? 80 - at : 13, MASK, at);
  hd_ws_mask(buf, 80, MASK, 0);
  assert_memory_equal(buf, src, 80);
  hd_ws_mask(buf, 10, MASK, (1ull << 40) + 2); /* only offset mod 4 matters */
  hd_ws_mask(buf, 10, MASK, 2);
  assert_memory_equal(buf, src, 80);
}

static void test_header_write(void **state) {
  static const struct {
    uint64_t len;
    size_t size;
  } cases[] = {{0, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10}, {1u << 20, 10}, {1ull << 40, 10}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    for (int bits = 0; bits < 4; bits++) {
      uint8_t out[10];
      bool fin = bits & 1, rsv1 = bits & 2;
      size_t n = hd_ws_frame_header_write(out, fin, rsv1, HD_WS_OP_BINARY, cases[i].len);
      assert_int_equal(n, cases[i].size);
      hd_ws_frame_t f;
      assert_int_equal(hd_ws_frame_parse_header(out, n, &f), (int)n);
      assert_true(f.payload_len == cases[i].len);
      assert_int_equal(f.fin, fin);
      assert_int_equal(f.rsv1, rsv1);
      assert_false(f.masked || f.rsv2 || f.rsv3);
      assert_int_equal(f.opcode, HD_WS_OP_BINARY);
    }
}

static void test_frame_build(void **state) {
  static uint8_t big[70000];
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)i;
  static const size_t lens[] = {0, 5, 125, 126, 65535, 65536, sizeof(big)};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    hd_buf_t *b = hd_ws_frame_build(HD_WS_OP_TEXT, i & 1, big, lens[i]);
    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    hd_ws_frame_t f;
    int n = hd_ws_frame_parse_header(b->data, b->len, &f);
    assert_true(n > 0);
    assert_true(f.fin && !f.masked);
    assert_int_equal(f.rsv1, i & 1);
    assert_int_equal(f.opcode, HD_WS_OP_TEXT);
    assert_true(f.payload_len == lens[i]);
    assert_int_equal(b->len, (size_t)n + lens[i]);
    assert_memory_equal(b->data + n, big, lens[i]);
    hd_buf_unref(b);
  }
}

/* The protocols' builders: plain and with a one-byte prefix, at each length encoding boundary. */
static void test_frame_new(void **state) {
  static uint8_t big[70000];
  memset(big, 'x', sizeof big);
  static const size_t lens[] = {0, 1, 124, 125, 126, 65534, 65535, 65536, sizeof big};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    for (int prefixed = 0; prefixed <= 1; prefixed++) {
      hd_buf_t *b = prefixed ? hd_ws_frame_new_prefixed(HD_WS_OP_TEXT, '4', big, lens[i])
                             : hd_ws_frame_new(HD_WS_OP_BINARY, big, lens[i]);
      assert_non_null(b);
      assert_int_equal(b->refs, 1);
      hd_ws_frame_t f;
      int n = hd_ws_frame_parse_header(b->data, b->len, &f);
      assert_true(n > 0);
      assert_true(f.fin && !f.masked && !f.rsv1);
      assert_int_equal(f.opcode, prefixed ? HD_WS_OP_TEXT : HD_WS_OP_BINARY);
      assert_true(f.payload_len == lens[i] + (size_t)prefixed);
      assert_int_equal(b->len, (size_t)n + lens[i] + (size_t)prefixed);
      if (prefixed) assert_int_equal(b->data[n], '4');
      assert_memory_equal(b->data + n + prefixed, big, lens[i]);
      hd_slice_t payload = hd_ws_frame_payload(b); /* and back: what the protocols read of it */
      assert_ptr_equal(payload.ptr, (const char *)b->data + n);
      assert_int_equal(payload.len, lens[i] + (size_t)prefixed);
      hd_buf_unref(b);
    }
  }
}

static hd_buf_t *check_close(uint16_t code, const char *reason, size_t want_reason) {
  hd_buf_t *b = hd_ws_close_frame_build(code, reason);
  assert_non_null(b);
  assert_int_equal(b->data[0], 0x88);
  assert_int_equal(b->data[1], 2 + want_reason);
  assert_int_equal(b->len, 4 + want_reason);
  assert_int_equal(b->data[2] << 8 | b->data[3], code);
  assert_memory_equal(b->data + 4, reason, want_reason);
  assert_int_equal(hd_utf8_validate(b->data + 4, want_reason), 0);
  return b;
}

static void test_close_frame(void **state) {
  hd_buf_unref(check_close(1000, "bye", 3));
  hd_buf_unref(check_close(1001, "", 0));
  hd_buf_unref(check_close(4000, NULL, 0));
  char reason[200];
  memset(reason, 'a', sizeof(reason));
  reason[199] = '\0';
  hd_buf_unref(check_close(1011, reason, 123));
  memcpy(reason + 122, "\xc3\xa9", 2); /* a 2-byte character across the limit */
  hd_buf_unref(check_close(1002, reason, 122));
  memcpy(reason + 121, "\xe2\x82\xac", 3); /* 3 bytes, ending past the limit */
  hd_buf_unref(check_close(1002, reason, 121));
  memcpy(reason + 120, "\xf0\x9f\x98\x80", 4); /* 4 bytes: 120..123 */
  hd_buf_unref(check_close(1002, reason, 120));
  memcpy(reason + 119, "\xf0\x9f\x98\x80" "a", 5); /* 4 bytes ending exactly at the limit */
  hd_buf_unref(check_close(1002, reason, 123));
  hd_buf_t *b = hd_ws_close_frame_build(HD_WS_CLOSE_NO_STATUS, "ignored");
  assert_non_null(b);
  assert_int_equal(b->len, 2);
  assert_memory_equal(b->data, "\x88\x00", 2);
  hd_buf_unref(b);
}

static void test_close_codes(void **state) {
  static const uint16_t valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                   1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
  static const uint16_t invalid[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
  for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) assert_true(hd_ws_close_code_valid(valid[i]));
  for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
    assert_false(hd_ws_close_code_valid(invalid[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_lengths), cmocka_unit_test(test_parse_bits),
      cmocka_unit_test(test_parse_top_bit), cmocka_unit_test(test_mask),
      cmocka_unit_test(test_header_write),  cmocka_unit_test(test_frame_build),
      cmocka_unit_test(test_frame_new),
      cmocka_unit_test(test_close_frame),   cmocka_unit_test(test_close_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
