/* Unit tests for the advertised URL of a node (cluster/forward.h): --advertise-url as given, else
 * the listen address with the wildcard hosts replaced by loopback, IPv6 in brackets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/forward.h"
#include "core/error.h"

static const char *url_of(const char *host, const char *advertise, int port) {
  static char out[300];
  hd_config_t cfg = {0};
  cfg.host = (char *)host;
  cfg.advertise_url = (char *)advertise;
  if (hd_forward_advertise_url(&cfg, port, out, sizeof out)) return "(error)";
  return out;
}

static void test_default_from_listen_address(void **state) {
  assert_string_equal(url_of("0.0.0.0", "", 3000), "http://127.0.0.1:3000");
  assert_string_equal(url_of("", "", 3001), "http://127.0.0.1:3001");
  assert_string_equal(url_of("10.0.0.5", "", 80), "http://10.0.0.5:80");
  assert_string_equal(url_of("::", "", 3000), "http://[::1]:3000");
  assert_string_equal(url_of("fd00::5", "", 3000), "http://[fd00::5]:3000");
}

static void test_given_url_wins(void **state) {
  assert_string_equal(url_of("0.0.0.0", "http://node-a.internal:3000", 4000), "http://node-a.internal:3000");
}

static void test_too_long(void **state) {
  hd_config_t cfg = {0};
  cfg.host = "0.0.0.0";
  cfg.advertise_url = "";
  char small[10];
  assert_int_equal(hd_forward_advertise_url(&cfg, 3000, small, sizeof small), HD_ERANGE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_from_listen_address),
      cmocka_unit_test(test_given_url_wins),
      cmocka_unit_test(test_too_long),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
