/* Unit tests for the cluster part of presence (app/presence_cluster.c): other nodes' entries read
 * from Redis are merged (an admin on two nodes once, sockets summed), this node's own entry is
 * skipped, malformed entries are ignored without a crash, and this node's description reads back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "app/app.h"
#include "app/presence.h"

typedef struct {
  hd_server_t srv;
  hd_app_shared_t shared;
  hd_app_t app;
} fixture_t;

static void noop_changed(void *arg) {}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  f->shared.presence = hd_presence_shared_new();
  memcpy(f->shared.node_tag, "me0", 4);
  hd_presence_shared_set_cluster(f->shared.presence, "me0", noop_changed, NULL);
  f->app.shared = &f->shared;
  f->app.srv = &f->srv;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  hd_presence_shared_free(f->shared.presence);
  free(f);
  return 0;
}

static hd_presence_entry_t entry(const char *tag, const char *text, uint64_t age) {
  return (hd_presence_entry_t){tag, text, strlen(text), age};
}

/* The listed identity with that sub in list, or NULL. */
static json_t *find(json_t *list, const char *sub) {
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v) if (!strcmp(json_string_value(json_object_get(v, "sub")), sub)) return v;
  return NULL;
}

static void test_merge_and_skip_self(void **state) {
  fixture_t *f = *state;
  hd_presence_entry_t e[] = {
      entry("me0", "{\"admins\":{\"99\":1},\"users_total\":0}", 0), /* this node: its live state counts, not this */
      entry("nA1", "{\"connections\":5,\"sockets\":{\"admin\":2,\"user\":1},\"admins\":{\"7\":2},\"users\":{\"42\":1},\"users_total\":1}", 300),
      entry("nB2", "{\"connections\":3,\"sockets\":{\"admin\":1,\"user\":0},\"admins\":{\"7\":1,\"8\":1},\"users\":{},\"users_total\":0}", 900),
  };
  hd_presence_shared_take(f->shared.presence, e, 3);
  json_t *p = hd_presence_json(&f->app, NULL);
  assert_string_equal(json_string_value(json_object_get(p, "scope")), "cluster");
  assert_int_equal(json_array_size(json_object_get(p, "nodes")), 3);
  json_t *a7 = find(json_object_get(p, "admins"), "7");
  assert_non_null(a7);
  assert_int_equal(json_integer_value(json_object_get(a7, "id")), 7);
  assert_int_equal(json_integer_value(json_object_get(a7, "sockets")), 3);
  assert_int_equal(json_array_size(json_object_get(a7, "nodes")), 2);
  assert_non_null(find(json_object_get(p, "admins"), "8"));
  assert_null(find(json_object_get(p, "admins"), "99"));
  assert_int_equal(json_integer_value(json_object_get(p, "admins_online")), 2);
  assert_int_equal(json_integer_value(json_object_get(p, "users_online")), 1);
  json_decref(p);
}

static void test_malformed_entries_are_ignored(void **state) {
  fixture_t *f = *state;
  char long_key[400];
  snprintf(long_key, sizeof long_key, "{\"admins\":{\"%0300d\":1,\"5\":1}}", 1);
  hd_presence_entry_t e[] = {
      entry("bad", "", 0),
      entry("bd2", "not json", 0),
      entry("bd3", "[1,2,3]", 0),
      entry("bd4", "{\"admins\":5,\"users\":\"x\",\"sockets\":[],\"connections\":-4}", 0),
      entry("bd5", "{\"admins\":{\"x\":-3,\"\":1,\"6\":\"a\",\"7\":99999999999999}}", 0),
      entry("bd6", long_key, 0),
  };
  hd_presence_shared_take(f->shared.presence, e, 6);
  json_t *p = hd_presence_json(&f->app, NULL);
  json_t *admins = json_object_get(p, "admins");
  assert_int_equal(json_array_size(json_object_get(p, "nodes")), 1 + 3); /* bd4, bd5, bd6 parse as objects */
  assert_null(find(admins, "x"));
  assert_null(find(admins, "6"));
  assert_non_null(find(admins, "5"));
  json_t *a7 = find(admins, "7");
  assert_non_null(a7);
  assert_int_equal(json_integer_value(json_object_get(a7, "sockets")), UINT32_MAX);
  assert_int_equal(json_array_size(admins), 2);
  json_decref(p);
  hd_presence_shared_take(f->shared.presence, NULL, 0); /* nobody else: back to this node alone */
  p = hd_presence_json(&f->app, NULL);
  assert_int_equal(json_array_size(json_object_get(p, "nodes")), 1);
  json_decref(p);
}

static void test_describe_reads_back(void **state) {
  fixture_t *f = *state;
  char *text = hd_presence_shared_describe(f->shared.presence, 17);
  assert_non_null(text);
  json_t *e = json_loads(text, 0, NULL);
  assert_non_null(e);
  assert_int_equal(json_integer_value(json_object_get(e, "connections")), 17);
  assert_true(json_is_object(json_object_get(e, "admins")));
  assert_int_equal(json_integer_value(json_object_get(e, "users_total")), 0);
  json_decref(e);
  hd_presence_entry_t in = entry("oth", text, 0);
  hd_presence_shared_take(f->shared.presence, &in, 1);
  json_t *p = hd_presence_json(&f->app, NULL);
  json_t *other = json_array_get(json_object_get(p, "nodes"), 1);
  assert_string_equal(json_string_value(json_object_get(other, "tag")), "oth");
  assert_int_equal(json_integer_value(json_object_get(other, "connections")), 17);
  json_decref(p);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_merge_and_skip_self, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed_entries_are_ignored, setup, teardown),
      cmocka_unit_test_setup_teardown(test_describe_reads_back, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
