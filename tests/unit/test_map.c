/* Unit tests for the string hash map: put/get/replace/delete under growth and collisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/map.h"

static char keys[5000][24];

static void test_put_get_delete(void **state) {
  hd_map_t m = {0};
  for (int i = 0; i < 5000; i++) {
    snprintf(keys[i], sizeof keys[i], "room:%d", i);
    assert_int_equal(hd_map_put(&m, keys[i], strlen(keys[i]), (void *)(intptr_t)(i + 1)), 0);
  }
  assert_int_equal(m.count, 5000);
  for (int i = 0; i < 5000; i++) assert_int_equal((intptr_t)hd_map_get(&m, keys[i], strlen(keys[i])), i + 1);
  assert_null(hd_map_get(&m, "room:5000", 9));
  /* delete every other key; the rest must stay reachable (backward shift keeps probe runs intact) */
  for (int i = 0; i < 5000; i += 2) assert_int_equal((intptr_t)hd_map_del(&m, keys[i], strlen(keys[i])), i + 1);
  assert_null(hd_map_del(&m, keys[0], strlen(keys[0])));
  assert_int_equal(m.count, 2500);
  for (int i = 0; i < 5000; i++) {
    void *v = hd_map_get(&m, keys[i], strlen(keys[i]));
    if (i % 2) assert_int_equal((intptr_t)v, i + 1);
    else assert_null(v);
  }
  hd_map_free(&m);
}

static void test_replace_and_binary_keys(void **state) {
  hd_map_t m = {0};
  assert_int_equal(hd_map_put(&m, "a\0b", 3, (void *)1), 0);
  assert_int_equal(hd_map_put(&m, "a\0c", 3, (void *)2), 0);
  assert_int_equal(hd_map_put(&m, "a\0b", 3, (void *)3), 0);
  assert_int_equal(m.count, 2);
  assert_int_equal((intptr_t)hd_map_get(&m, "a\0b", 3), 3);
  assert_int_equal((intptr_t)hd_map_get(&m, "a\0c", 3), 2);
  assert_null(hd_map_get(&m, "a", 1));
  assert_null(hd_map_get(&m, "", 0));
  hd_map_free(&m);
  assert_null(hd_map_get(&m, "x", 1)); /* empty map after free */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_get_delete),
      cmocka_unit_test(test_replace_and_binary_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
