/* Unit tests for core/log_fields: fields split from a printf-formatted logfmt format, escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/log_fields.h"

/* Collects fields as `key|value|n` lines (n: numeric) into an sbuf. */
static void collect(void *arg, const char *key, size_t key_len, const char *value, size_t len, bool numeric) {
  hd_sbuf_t *out = arg;
  hd_sbuf_printf(out, "%.*s|%.*s|%d\n", (int)key_len, key, (int)len, value, numeric ? 1 : 0);
}

static void fields_of(hd_sbuf_t *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  assert_int_equal(hd_log_fields_each(fmt, &ap, collect, out), 0);
  va_end(ap);
}

static void test_fields(void **state) {
  hd_sbuf_t out = {0};
  fields_of(&out, "host=%s port=%d err=\"%s\" n=%llu z=%zu lag=%.3f", "0.0.0.0", 3000, "no \"such\" file",
            (unsigned long long)18446744073709551615ULL, (size_t)7, 0.25);
  assert_string_equal(out.ptr, "host|0.0.0.0|0\nport|3000|1\nerr|no \"such\" file|0\nn|18446744073709551615|1\n"
                               "z|7|1\nlag|0.250|1\n");
  out.len = 0;
  fields_of(&out, "channel=%.*s redis=%s:%d id=%016llx pct=100%% word", 3, "abcdef", "h", 6379, 255ULL);
  assert_string_equal(out.ptr, "channel|abc|0\nredis|h:6379|0\nid|00000000000000ff|0\npct|100%|0\nextra|word|0\n");
  out.len = 0;
  fields_of(&out, "path=%s empty=%s", "/a b=c\n", "");
  assert_string_equal(out.ptr, "path|/a b=c\n|0\nempty||0\n");
  hd_sbuf_free(&out);
}

static void test_escape(void **state) {
  hd_sbuf_t out = {0};
  const char raw[] = "a\"b\\c\n\x01\x7f\xff\xc3\xa9\xed\xa0\x80\xe4\xb8\xad";
  assert_int_equal(hd_log_escape(&out, raw, sizeof raw - 1), 0);
  assert_string_equal(out.ptr, "a\\\"b\\\\c\\n\\u0001\\u007f\\ufffd\xc3\xa9\\ufffd\\ufffd\\ufffd\xe4\xb8\xad");
  hd_sbuf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_fields), cmocka_unit_test(test_escape)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
