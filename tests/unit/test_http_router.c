/* Unit tests for the router: literals, params, prefix routes, precedence, 404/405, HEAD, patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "net/http_router.h"

/* Handlers are told apart by udata tags. */
static void h(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {}

static hd_slice_t sl(const char *s) { return (hd_slice_t){s, strlen(s)}; }

/* Matches and returns the udata tag, or the error code as a negative tag. */
static long route(hd_router_t *r, const char *method, const char *path, hd_route_match_t *m) {
  int rc = hd_router_match(r, sl(method), sl(path), m);
  return rc ? rc : (long)(intptr_t)m->udata;
}

#define TAG(n) ((void *)(intptr_t)(n))

static void assert_param(const hd_route_match_t *m, const char *name, const char *want) {
  hd_slice_t v = hd_route_param(m, name);
  assert_non_null(v.ptr);
  assert_int_equal(v.len, strlen(want));
  assert_memory_equal(v.ptr, want, v.len);
}

static void test_literals(void **state) {
  hd_router_t *r = hd_router_new();
  hd_route_match_t m;
  assert_int_equal(hd_router_add(r, "GET", "/", h, TAG(1)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/healthz", h, TAG(2)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/api/v4/users", h, TAG(3)), 0);
  assert_int_equal(route(r, "GET", "/", &m), 1);
  assert_ptr_equal(m.handler, h);
  assert_int_equal(m.param_count, 0);
  assert_int_equal(route(r, "GET", "/healthz", &m), 2);
  assert_int_equal(route(r, "GET", "/api/v4/users", &m), 3);
  assert_int_equal(route(r, "GET", "/api/v4", &m), HD_ENOTFOUND);
  assert_int_equal(route(r, "GET", "/api/v4/users/x", &m), HD_ENOTFOUND);
  assert_int_equal(route(r, "GET", "/healthzz", &m), HD_ENOTFOUND);
  assert_int_equal(route(r, "GET", "", &m), HD_ENOTFOUND);
  assert_int_equal(route(r, "GET", "*", &m), HD_ENOTFOUND);
  hd_router_free(r);
}

static void test_params(void **state) {
  hd_router_t *r = hd_router_new();
  hd_route_match_t m;
  assert_int_equal(hd_router_add(r, "POST", "/api/v4/notifications/:id/read", h, TAG(1)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/u/:user/c/:chan", h, TAG(2)), 0);
  assert_int_equal(route(r, "POST", "/api/v4/notifications/42/read", &m), 1);
  assert_int_equal(m.param_count, 1);
  assert_param(&m, "id", "42");
  assert_null(hd_route_param(&m, "nope").ptr);
  assert_int_equal(route(r, "GET", "/u/al%20ice/c/general", &m), 2);
  assert_param(&m, "user", "al%20ice"); /* still percent-encoded */
  assert_param(&m, "chan", "general");
  /* a param needs one non-empty segment */
  assert_int_equal(route(r, "POST", "/api/v4/notifications//read", &m), HD_ENOTFOUND);
  assert_int_equal(route(r, "GET", "/u/a/b/c/x", &m), HD_ENOTFOUND);
  hd_router_free(r);
}

static void test_prefix(void **state) {
  hd_router_t *r = hd_router_new();
  hd_route_match_t m;
  assert_int_equal(hd_router_add(r, "*", "/socket.io/*", h, TAG(1)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/*", h, TAG(2)), 0);
  assert_int_equal(route(r, "POST", "/socket.io/", &m), 1);
  assert_param(&m, "*", "");
  assert_int_equal(route(r, "GET", "/socket.io/a/b", &m), 1);
  assert_param(&m, "*", "a/b");
  /* the prefix route needs the slash after "/socket.io": without it the catch-all answers */
  assert_int_equal(route(r, "GET", "/socket.io", &m), 2);
  assert_param(&m, "*", "socket.io");
  assert_int_equal(route(r, "GET", "/", &m), 2);
  assert_param(&m, "*", "");
  assert_int_equal(route(r, "GET", "/x/y/z.js", &m), 2);
  assert_param(&m, "*", "x/y/z.js");
  hd_router_free(r);
}

static void test_precedence(void **state) {
  hd_router_t *r = hd_router_new();
  hd_route_match_t m;
  /* added in the least specific order on purpose */
  assert_int_equal(hd_router_add(r, "GET", "/a/*", h, TAG(1)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/a/:id", h, TAG(2)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/a/me", h, TAG(3)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/a/:id/x", h, TAG(4)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/a/b/*", h, TAG(5)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/:any/b/c", h, TAG(6)), 0);
  assert_int_equal(route(r, "GET", "/a/me", &m), 3);
  assert_int_equal(route(r, "GET", "/a/7", &m), 2);
  assert_param(&m, "id", "7");
  assert_int_equal(route(r, "GET", "/a/7/y", &m), 1);
  assert_int_equal(route(r, "GET", "/a/7/x", &m), 4);
  /* earliest segment decides: literal "a" beats ":any", then literal "b" beats ":id" */
  assert_int_equal(route(r, "GET", "/a/b/c", &m), 5);
  assert_param(&m, "*", "c");
  assert_int_equal(route(r, "GET", "/z/b/c", &m), 6);
  /* an exact method beats "*" on the same pattern */
  assert_int_equal(hd_router_add(r, "*", "/a/me", h, TAG(7)), 0);
  assert_int_equal(route(r, "GET", "/a/me", &m), 3);
  assert_int_equal(route(r, "DELETE", "/a/me", &m), 7);
  hd_router_free(r);
}

static void test_not_found_vs_method(void **state) {
  hd_router_t *r = hd_router_new();
  hd_route_match_t m;
  assert_int_equal(hd_router_add(r, "GET", "/things/:id", h, TAG(1)), 0);
  assert_int_equal(hd_router_add(r, "PUT", "/things/:id", h, TAG(2)), 0);
  assert_int_equal(hd_router_add(r, "DELETE", "/things/:tid", h, TAG(3)), 0);
  assert_int_equal(hd_router_add(r, "POST", "/things", h, TAG(4)), 0);
  assert_int_equal(route(r, "POST", "/things/1", &m), HD_EMETHOD);
  assert_string_equal(m.allow, "GET, HEAD, PUT, DELETE");
  assert_null(m.handler);
  assert_int_equal(route(r, "GET", "/things", &m), HD_EMETHOD);
  assert_string_equal(m.allow, "POST");
  assert_int_equal(route(r, "GET", "/other", &m), HD_ENOTFOUND);
  assert_string_equal(m.allow, "");
  /* a method-matching route wins over a more specific pattern for another method */
  assert_int_equal(hd_router_add(r, "POST", "/things/special", h, TAG(5)), 0);
  assert_int_equal(route(r, "GET", "/things/special", &m), 1);
  assert_string_equal(m.allow, "");
  hd_router_free(r);
}

static void test_head_via_get(void **state) {
  hd_router_t *r = hd_router_new();
  hd_route_match_t m;
  assert_int_equal(hd_router_add(r, "GET", "/f", h, TAG(1)), 0);
  assert_int_equal(route(r, "HEAD", "/f", &m), 1);
  /* an explicit HEAD route wins over GET */
  assert_int_equal(hd_router_add(r, "HEAD", "/f", h, TAG(2)), 0);
  assert_int_equal(route(r, "HEAD", "/f", &m), 2);
  assert_int_equal(route(r, "GET", "/f", &m), 1);
  assert_int_equal(route(r, "POST", "/f", &m), HD_EMETHOD);
  assert_string_equal(m.allow, "GET, HEAD"); /* listed once */
  hd_router_free(r);
}

static void test_duplicates(void **state) {
  hd_router_t *r = hd_router_new();
  assert_int_equal(hd_router_add(r, "GET", "/a/:id", h, NULL), 0);
  assert_int_equal(hd_router_add(r, "GET", "/a/:id", h, NULL), HD_EEXISTS);
  assert_int_equal(hd_router_add(r, "GET", "/a/:other", h, NULL), HD_EEXISTS); /* same shape */
  assert_int_equal(hd_router_add(r, "POST", "/a/:id", h, NULL), 0);
  assert_int_equal(hd_router_add(r, "GET", "/a/*", h, NULL), 0);
  assert_int_equal(hd_router_add(r, "GET", "/a/*", h, NULL), HD_EEXISTS);
  assert_int_equal(hd_router_add(r, "GET", "/a/b", h, NULL), 0);
  hd_router_free(r);
}

static void test_bad_patterns(void **state) {
  hd_router_t *r = hd_router_new();
  const char *bad[] = {"", "a", "a/b", "/a/*/b", "/a*", "/a/b*", "/:", "/a/:/b", "/:x/:x", "/a?b", "/a#b",
                       "/:a/:b/:c/:d/:e/:f/:g/:h/:i", "/:a/:b/:c/:d/:e/:f/:g/:h/*"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_int_equal(hd_router_add(r, "GET", bad[i], h, NULL), HD_EINVAL);
  assert_int_equal(hd_router_add(r, "GET", "/:a/:b/:c/:d/:e/:f/:g/*", h, NULL), 0); /* exactly 8 */
  assert_int_equal(hd_router_add(r, "", "/x", h, NULL), HD_EINVAL);
  assert_int_equal(hd_router_add(r, "get", "/x", h, NULL), HD_EINVAL);
  assert_int_equal(hd_router_add(r, "AVERYVERYLONGMETHOD", "/x", h, NULL), HD_EINVAL);
  assert_int_equal(hd_router_add(r, "GET", "/x", NULL, NULL), HD_EINVAL);
  assert_int_equal(hd_router_add(r, "GET", "/v1/x:batch", h, NULL), 0); /* ':' inside is literal */
  hd_route_match_t m;
  assert_int_equal(hd_router_match(r, sl("GET"), sl("/1/2/3/4/5/6/7/rest/of/it"), &m), 0);
  assert_int_equal(m.param_count, 8);
  assert_param(&m, "g", "7");
  assert_param(&m, "*", "rest/of/it");
  hd_router_free(r);
}

/* Documented: "/a/" and "/a" are different routes; a trailing slash is an empty last segment. */
static void test_trailing_slash(void **state) {
  hd_router_t *r = hd_router_new();
  hd_route_match_t m;
  assert_int_equal(hd_router_add(r, "GET", "/a", h, TAG(1)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/b/", h, TAG(2)), 0);
  assert_int_equal(hd_router_add(r, "GET", "/c/:id", h, TAG(3)), 0);
  assert_int_equal(route(r, "GET", "/a", &m), 1);
  assert_int_equal(route(r, "GET", "/a/", &m), HD_ENOTFOUND);
  assert_int_equal(route(r, "GET", "/b/", &m), 2);
  assert_int_equal(route(r, "GET", "/b", &m), HD_ENOTFOUND);
  assert_int_equal(route(r, "GET", "/c/1/", &m), HD_ENOTFOUND);
  assert_int_equal(route(r, "GET", "/c/", &m), HD_ENOTFOUND);
  assert_int_equal(route(r, "GET", "//a", &m), HD_ENOTFOUND);
  hd_router_free(r);
  hd_router_free(NULL);
}

static void test_many_routes(void **state) {
  hd_router_t *r = hd_router_new();
  hd_route_match_t m;
  char pat[32];
  for (int i = 0; i < 100; i++) {
    snprintf(pat, sizeof(pat), "/r%d/:id", i);
    assert_int_equal(hd_router_add(r, "GET", pat, h, TAG(i + 1)), 0);
  }
  assert_int_equal(route(r, "GET", "/r57/x", &m), 58);
  assert_int_equal(route(r, "GET", "/r100/x", &m), HD_ENOTFOUND);
  hd_router_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_literals),    cmocka_unit_test(test_params),
      cmocka_unit_test(test_prefix),      cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_not_found_vs_method), cmocka_unit_test(test_head_via_get),
      cmocka_unit_test(test_duplicates),  cmocka_unit_test(test_bad_patterns),
      cmocka_unit_test(test_trailing_slash), cmocka_unit_test(test_many_routes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
