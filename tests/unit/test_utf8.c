/* Unit tests for the UTF-8 validator: every valid and invalid class (Autobahn 6.x style), the
 * exact byte where it fails fast, chunked and byte-by-byte feeding, and an exhaustive comparison
 * with a code-point-arithmetic reference over all strings of up to three bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "net/utf8.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* Reference: true when p[0..n) is the prefix of some valid UTF-8 text. For a character cut
 * short, the code points its completions can reach form one interval, which must meet the
 * valid range for its length without lying inside the surrogates. */
static bool ref_prefix_ok(const uint8_t *p, size_t n) {
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < n) {
    uint8_t b = p[i];
    size_t len = b < 0x80 ? 1 : b < 0xc0 ? 0 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : b < 0xf8 ? 4 : 0;
    if (!len) return false;
    uint32_t lo = len == 1 ? b : b & (0x7f >> len), hi = lo;
    for (size_t k = 1; k < len; k++) {
      uint8_t c = i + k < n ? p[i + k] : 0;
      if (i + k < n && (c & 0xc0) != 0x80) return false;
      lo = lo << 6 | (i + k < n ? (c & 0x3fu) : 0);
      hi = hi << 6 | (i + k < n ? (c & 0x3fu) : 0x3f);
    }
    if (lo < min_cp[len]) lo = min_cp[len];
    if (hi > 0x10ffff) hi = 0x10ffff;
    if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

static bool ref_valid(const uint8_t *p, size_t n) {
  if (!ref_prefix_ok(p, n)) return false;
  size_t i = 0; /* also ends on a boundary */
  while (i < n) i += p[i] < 0x80 ? 1 : p[i] < 0xe0 ? 2 : p[i] < 0xf0 ? 3 : 4;
  return i == n;
}

static size_t encode(uint32_t cp, uint8_t *out) {
  if (cp < 0x80) return out[0] = (uint8_t)cp, 1;
  if (cp < 0x800) return out[0] = (uint8_t)(0xc0 | cp >> 6), out[1] = (uint8_t)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    out[0] = (uint8_t)(0xe0 | cp >> 12), out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (uint8_t)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (uint8_t)(0xf0 | cp >> 18), out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)), out[3] = (uint8_t)(0x80 | (cp & 0x3f));
  return 4;
}

/* Feeds byte by byte; returns the index of the byte that failed, or -1. */
static long fail_index(const uint8_t *p, size_t n) {
  hd_utf8_t v;
  hd_utf8_init(&v);
  for (size_t i = 0; i < n; i++)
    if (hd_utf8_feed(&v, p + i, 1)) return (long)i;
  return -1;
}

static void test_valid(void **state) {
  static const struct {
    const char *s;
  } cases[] = {
      {""},
      {"hello, world"},
      {"\x7f"},
      {"\xc2\x80"},             /* U+0080 */
      {"\xdf\xbf"},             /* U+07FF */
      {"\xe0\xa0\x80"},         /* U+0800 */
      {"\xed\x9f\xbf"},         /* U+D7FF, below the surrogates */
      {"\xee\x80\x80"},         /* U+E000, above them */
      {"\xef\xbf\xbd"},         /* U+FFFD */
      {"\xef\xbf\xbe\xef\xbf\xbf"}, /* noncharacters are valid */
      {"\xf0\x90\x80\x80"},     /* U+10000 */
      {"\xf4\x8f\xbf\xbf"},     /* U+10FFFF */
      {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"}, /* Autobahn 6.2: kosme */
      {"0123456789abcdef0123456789\xc3\xa9\xc3\xa9 0123456789abcdef\xf0\x9f\x98\x80xyz"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const uint8_t *p = (const uint8_t *)cases[i].s;
    size_t n = strlen(cases[i].s);
    assert_int_equal(hd_utf8_validate(p, n), 0);
    assert_int_equal(fail_index(p, n), -1);
  }
  assert_int_equal(hd_utf8_validate(NULL, 0), 0);
}

static void test_every_code_point(void **state) {
  uint8_t buf[4];
  for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
    size_t n = encode(cp, buf);
    bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
    assert_int_equal(hd_utf8_validate(buf, n), surrogate ? HD_EUTF8 : 0);
  }
  for (uint32_t cp = 0x80; cp < 0x10000; cp++) { /* every overlong 4-byte form */
    uint8_t o[4] = {0xf0, (uint8_t)(0x80 | cp >> 12), (uint8_t)(0x80 | ((cp >> 6) & 0x3f)),
                    (uint8_t)(0x80 | (cp & 0x3f))};
    assert_int_equal(fail_index(o, 4), 1);
  }
}

/* Invalid texts and the byte at which they must fail (-1: only at the end, truncated). */
static void test_invalid_fails_fast(void **state) {
  static const struct {
    const char *s;
    long at;
  } cases[] = {
      {"\x80", 0},
      {"\xbf", 0},
      {"a\x80\x80", 1},
      {"\xc0\x80", 0}, /* overlong NUL, 2 bytes */
      {"\xc1\xbf", 0},
      {"\xe0\x80\x80", 1}, /* overlong NUL, 3 bytes */
      {"\xe0\x9f\xbf", 1},
      {"\xf0\x80\x80\x80", 1}, /* overlong NUL, 4 bytes */
      {"\xf0\x8f\xbf\xbf", 1},
      {"\xed\xa0\x80", 1}, /* U+D800 */
      {"\xed\xbf\xbf", 1}, /* U+DFFF */
      {"\xed\xa0\x80\xed\xb0\x80", 1}, /* a surrogate pair */
      {"\xf4\x90\x80\x80", 1}, /* U+110000 */
      {"\xf5\x80\x80\x80", 0},
      {"\xf7\xbf\xbf\xbf", 0},
      {"\xf8\x88\x80\x80\x80", 0}, /* 5-byte form */
      {"\xfc\x84\x80\x80\x80\x80", 0}, /* 6-byte form */
      {"\xfe", 0},
      {"\xff", 0},
      {"\xc2\x41", 1},
      {"\xc2\xc2\x80", 1},
      {"\xe1\x80\x41", 2},
      {"\xf1\x80\x80\x41", 3},
      {"\xf1\x80\x80\xf1", 3},
      {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", 12}, /* Autobahn 6.3.1 */
      {"0123456789abcdef\x80", 16}, /* inside and after the ASCII fast path */
      {"0123456\x80", 7},
      {"012345678\xff", 9},
      {"\xc2", -1},
      {"\xe1\x80", -1},
      {"\xf1\x80\x80", -1},
      {"abc\xe0\xa0", -1},
      {"\xf4\x8f\xbf", -1},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const uint8_t *p = (const uint8_t *)cases[i].s;
    size_t n = strlen(cases[i].s);
    assert_int_equal(hd_utf8_validate(p, n), HD_EUTF8);
    assert_int_equal(fail_index(p, n), cases[i].at);
    hd_utf8_t v;
    hd_utf8_init(&v);
    if (cases[i].at < 0) {
      assert_int_equal(hd_utf8_feed(&v, p, n), 0);
      assert_int_equal(hd_utf8_finish(&v), HD_EUTF8);
    } else {
      assert_int_equal(hd_utf8_feed(&v, p, (size_t)cases[i].at), 0);
      assert_int_equal(hd_utf8_feed(&v, p + cases[i].at, n - (size_t)cases[i].at), HD_EUTF8);
      assert_int_equal(hd_utf8_feed(&v, S("ok")), HD_EUTF8); /* the error is sticky */
    }
  }
}

/* Every split of a text into two or three chunks gives the one-shot answer. */
static void test_chunk_boundaries(void **state) {
  static const char *texts[] = {
      "ab\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 0123456789 \xf0\x9f\x98\x80\xf4\x8f\xbf\xbf",
      "0123456789\xce\xba\xe1\xbd\xb9\xed\xa0\x80 tail",
      "prefix that is long enough \xf4\x90\x80\x80",
      "truncated at the end \xf0\x9f\x98",
  };
  for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
    const uint8_t *p = (const uint8_t *)texts[t];
    size_t n = strlen(texts[t]);
    int want = hd_utf8_validate(p, n);
    assert_int_equal(want, ref_valid(p, n) ? 0 : HD_EUTF8);
    for (size_t a = 0; a <= n; a++)
      for (size_t b = a; b <= n; b++) {
        hd_utf8_t v;
        hd_utf8_init(&v);
        int rc = hd_utf8_feed(&v, p, a);
        if (!rc) rc = hd_utf8_feed(&v, p + a, b - a);
        if (!rc) rc = hd_utf8_feed(&v, p + b, n - b);
        if (!rc) rc = hd_utf8_finish(&v);
        assert_int_equal(rc, want);
      }
  }
}

/* All strings of 1..3 bytes: feed accepts exactly the completable prefixes, validate exactly
 * the valid texts. Longer strings are sampled. */
static void test_exhaustive_against_reference(void **state) {
  uint8_t s[8];
  for (uint32_t x = 0; x < (1u << 24); x++) {
    size_t n = x < 256 ? 1 : x < 65536 ? 2 : 3;
    for (size_t k = 0; k < n; k++) s[k] = (uint8_t)(x >> (8 * (n - 1 - k)));
    hd_utf8_t v;
    hd_utf8_init(&v);
    bool ok = hd_utf8_feed(&v, s, n) == 0;
    if (ok != ref_prefix_ok(s, n)) fail_msg("feed disagrees on %06x (n=%zu)", x, n);
    if ((ok && !hd_utf8_finish(&v)) != ref_valid(s, n)) fail_msg("finish disagrees on %06x", x);
  }
  srand(1);
  static const uint8_t pick[] = {0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2,
                                 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xf0, 0xf1, 0xf4, 0xf5, 0xff};
  for (int i = 0; i < 1000000; i++) {
    size_t n = 4 + (size_t)(rand() % 5);
    for (size_t k = 0; k < n; k++) s[k] = rand() % 4 ? pick[rand() % sizeof(pick)] : (uint8_t)rand();
    long at = fail_index(s, n);
    bool ok = at < 0;
    assert_int_equal(ok, ref_prefix_ok(s, n));
    if (!ok) assert_false(ref_prefix_ok(s, (size_t)at + 1)), assert_true(ref_prefix_ok(s, (size_t)at));
    assert_int_equal(hd_utf8_validate(s, n) == 0, ref_valid(s, n));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_every_code_point),
      cmocka_unit_test(test_invalid_fails_fast),
      cmocka_unit_test(test_chunk_boundaries),
      cmocka_unit_test(test_exhaustive_against_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
