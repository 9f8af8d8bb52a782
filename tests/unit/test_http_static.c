/* Unit tests for static files: path safety (traversal, encodings, symlinks), index files, ETags,
 * 304s, MIME types. Works in a fresh mkdtemp() directory holding root/ and a secret outside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/error.h"
#include "net/http_static.h"

static char tmp[64], root[128], root_real[4096];

static hd_slice_t sl(const char *s) { return (hd_slice_t){s, s ? strlen(s) : 0}; }

static void put(const char *rel, const char *content) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", tmp, rel);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
}

static void link_to(const char *target, const char *rel) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", tmp, rel);
  assert_int_equal(symlink(target, path), 0);
}

static void dir(const char *rel) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", tmp, rel);
  assert_int_equal(mkdir(path, 0755), 0);
}

static int setup(void **state) {
  strcpy(tmp, "/tmp/herald-static-XXXXXX");
  if (!mkdtemp(tmp)) return -1;
  snprintf(root, sizeof(root), "%s/root", tmp);
  dir("root");
  dir("root/sub");
  dir("root/noindex");
  dir("root/.git");
  put("secret.txt", "top secret");
  put("root/index.html", "<h1>home</h1>");
  put("root/a.txt", "0123456789");
  put("root/a b.txt", "spaced");
  put("root/app.js", "x()");
  put("root/.hidden", "hidden");
  put("root/.git/config", "cfg");
  put("root/sub/index.html", "<p>sub</p>");
  put("root/sub/page.html", "<p>page</p>");
  put("root/empty.txt", "");
  link_to("../secret.txt", "root/link_out");
  link_to("/etc/passwd", "root/link_abs_out");
  link_to("a.txt", "root/link_in.txt");
  link_to("../sub/page.html", "root/noindex/link_up_in.html");
  link_to("..", "root/dir_out");
  link_to("sub", "root/dir_in");
  link_to("nowhere", "root/dangling");
  char fifo[512];
  snprintf(fifo, sizeof(fifo), "%s/root/fifo", tmp);
  if (mkfifo(fifo, 0644) != 0) return -1;
  if (!realpath(root, root_real)) return -1;
  return 0;
}

static int teardown(void **state) {
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

static int safe(const char *url, char *out, size_t outlen) { return hd_static_safe_path(sl(url), out, outlen); }

static void test_traversal_refused(void **state) {
  const char *bad[] = {
      "/../etc/passwd", "/a/../../x",  "/%2e%2e/x",     "/%2E%2e/x", "/..%2fx", "/a%2f..%2f..%2fx",
      "/a%2Fb",         "/%00",        "/a%00.html",    "/a\\..\\x", "/a%5c..%5cx", "/.hidden",
      "/.git/config",   "/a/./b",      "/.",            "/..",       "/...",    "/%2e",
      "/sub/%2E%2E/..", "..",          "/a/..",         "/x/%2e%2e%2f",
  };
  char out[256];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (safe(bad[i], out, sizeof(out)) != HD_EFORBIDDEN) fail_msg("not refused: %s", bad[i]);
  }
}

static void test_safe_paths(void **state) {
  char out[256];
  assert_int_equal(safe("//etc/passwd", out, sizeof(out)), 0); /* stays relative to the root */
  assert_string_equal(out, "etc/passwd");
  assert_int_equal(safe("/", out, sizeof(out)), 0);
  assert_string_equal(out, "index.html");
  assert_int_equal(safe("", out, sizeof(out)), 0);
  assert_string_equal(out, "index.html");
  assert_int_equal(safe("/sub/", out, sizeof(out)), 0);
  assert_string_equal(out, "sub/index.html");
  assert_int_equal(safe("/a//b///c", out, sizeof(out)), 0);
  assert_string_equal(out, "a/b/c");
  assert_int_equal(safe("/a%20b.txt", out, sizeof(out)), 0);
  assert_string_equal(out, "a b.txt");
  assert_int_equal(safe("/a..", out, sizeof(out)), 0); /* dots inside a name are fine */
  assert_string_equal(out, "a..");
  assert_int_equal(safe("/a+b", out, sizeof(out)), 0); /* '+' is not a space in paths */
  assert_string_equal(out, "a+b");
  /* decoded once only: "%252e%252e" is the harmless literal name "%2e%2e" */
  assert_int_equal(safe("/%252e%252e/x", out, sizeof(out)), 0);
  assert_string_equal(out, "%2e%2e/x");
}

static void test_bad_encoding_and_length(void **state) {
  char out[64];
  assert_int_equal(safe("/%zz", out, sizeof(out)), HD_EINVAL);
  assert_int_equal(safe("/%4", out, sizeof(out)), HD_EINVAL);
  assert_int_equal(safe("/a%", out, sizeof(out)), HD_EINVAL);
  assert_int_equal(safe("/%g0", out, sizeof(out)), HD_EINVAL);
  assert_int_equal(safe("/abc", out, 3), HD_EINVAL);
  assert_int_equal(safe("/abc", out, 4), 0);
  assert_int_equal(safe("/", out, 10), HD_EINVAL); /* no room for "index.html" */
  assert_int_equal(safe("/", out, 11), 0);
  assert_int_equal(safe("/a", out, 0), HD_EINVAL);
  char *longp = malloc(100001);
  memset(longp, 'a', 100000);
  longp[0] = '/';
  longp[100000] = '\0';
  assert_int_equal(safe(longp, out, sizeof(out)), HD_EINVAL);
  hd_static_result_t r;
  hd_static_load(root_real, sl(longp), sl(NULL), 1 << 20, &r);
  assert_int_equal(r.status, 404);
  for (size_t i = 1; i < 100000; i += 2) longp[i] = '/';
  hd_static_load(root_real, sl(longp), sl(NULL), 1 << 20, &r);
  assert_int_equal(r.status, 404);
  free(longp);
}

static hd_static_result_t load(const char *url, const char *inm) {
  hd_static_result_t r;
  hd_static_load(root_real, sl(url), sl(inm), 1 << 20, &r);
  if (r.status != 200) assert_null(r.body);
  return r;
}

static void assert_body(hd_static_result_t *r, const char *want) {
  assert_int_equal(r->status, 200);
  assert_non_null(r->body);
  assert_int_equal(r->body->len, strlen(want));
  assert_memory_equal(r->body->data, want, r->body->len);
  hd_buf_unref(r->body);
  r->body = NULL;
}

static void test_load(void **state) {
  hd_static_result_t r = load("/a.txt", NULL);
  assert_string_equal(r.mime, "text/plain; charset=utf-8");
  assert_true(r.etag[0] == '"' && r.etag[strlen(r.etag) - 1] == '"' && strchr(r.etag, '-'));
  assert_true(strncmp(r.etag, "\"a-", 3) == 0); /* size 10 in hex */
  assert_true(r.mtime > 0);
  assert_body(&r, "0123456789");
  r = load("/a%20b.txt", NULL);
  assert_body(&r, "spaced");
  r = load("/app.js", NULL);
  assert_string_equal(r.mime, "text/javascript; charset=utf-8");
  assert_body(&r, "x()");
  r = load("/empty.txt", NULL);
  assert_body(&r, "");
  r = load("/missing.txt", NULL);
  assert_int_equal(r.status, 404);
  r = load("/sub/missing/deeper", NULL);
  assert_int_equal(r.status, 404);
  r = load("/a.txt/x", NULL);
  assert_int_equal(r.status, 404);
  r = load("/%zz", NULL);
  assert_int_equal(r.status, 404);
  r = load("/fifo", NULL); /* not a regular file, and must not block */
  assert_int_equal(r.status, 404);
  r = load("/dangling", NULL);
  assert_int_equal(r.status, 404);
}

static void test_index(void **state) {
  hd_static_result_t r = load("/", NULL);
  assert_string_equal(r.mime, "text/html; charset=utf-8");
  assert_body(&r, "<h1>home</h1>");
  r = load("/sub/", NULL);
  assert_body(&r, "<p>sub</p>");
  r = load("/sub", NULL); /* a directory without the slash: redirected to it (relative links need it) */
  assert_int_equal(r.status, 301);
  assert_null(r.body);
  r = load("/noindex/", NULL);
  assert_int_equal(r.status, 404);
  r = load("/noindex", NULL); /* no index.html: nothing to redirect to */
  assert_int_equal(r.status, 404);
}

static void test_traversal_load(void **state) {
  const char *bad[] = {"/../secret.txt", "/a/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                       "/.hidden",       "/.git/config",        "/a.txt%00.html",     "/..\\secret.txt"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    hd_static_result_t r = load(bad[i], NULL);
    if (r.status != 403) fail_msg("%s: status %d", bad[i], r.status);
  }
}

static void test_symlinks(void **state) {
  hd_static_result_t r = load("/link_out", NULL); /* -> ../secret.txt, outside the root */
  assert_int_equal(r.status, 403);
  r = load("/link_abs_out", NULL);
  assert_int_equal(r.status, 403);
  r = load("/dir_out/secret.txt", NULL);
  assert_int_equal(r.status, 403);
  r = load("/dir_out/root/a.txt", NULL); /* out and back in: resolves inside, allowed */
  assert_body(&r, "0123456789");
  r = load("/link_in.txt", NULL);
  assert_body(&r, "0123456789");
  r = load("/noindex/link_up_in.html", NULL);
  assert_body(&r, "<p>page</p>");
  r = load("/dir_in/page.html", NULL);
  assert_body(&r, "<p>page</p>");
  r = load("/dir_in/", NULL);
  assert_body(&r, "<p>sub</p>");
}

static void test_max_size(void **state) {
  hd_static_result_t r;
  hd_static_load(root_real, sl("/a.txt"), sl(NULL), 9, &r);
  assert_int_equal(r.status, 500);
  assert_null(r.body);
  hd_static_load(root_real, sl("/a.txt"), sl(NULL), 10, &r);
  assert_body(&r, "0123456789");
}

static void test_not_modified(void **state) {
  hd_static_result_t r = load("/a.txt", NULL);
  char etag[48], list[160];
  strcpy(etag, r.etag);
  hd_buf_unref(r.body);
  r = load("/a.txt", etag);
  assert_int_equal(r.status, 304);
  assert_string_equal(r.etag, etag);
  assert_string_equal(r.mime, "text/plain; charset=utf-8");
  snprintf(list, sizeof(list), "\"nope\", W/%s", etag);
  r = load("/a.txt", list);
  assert_int_equal(r.status, 304);
  r = load("/a.txt", "*");
  assert_int_equal(r.status, 304);
  r = load("/a.txt", "\"nope\", W/\"other\"");
  assert_body(&r, "0123456789");
  /* a newer file gets a new tag */
  char path[4200];
  snprintf(path, sizeof(path), "%s/a.txt", root_real);
  struct timespec ts[2] = {{0, UTIME_OMIT}, {1000000, 123}};
  assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
  r = load("/a.txt", etag);
  assert_int_equal(r.status, 200);
  assert_string_not_equal(r.etag, etag);
  hd_buf_unref(r.body);
}

static void test_etag_matches(void **state) {
  const char *e = "\"a-1f\"";
  assert_true(hd_static_etag_matches(sl("\"a-1f\""), e));
  assert_true(hd_static_etag_matches(sl("W/\"a-1f\""), e));
  assert_true(hd_static_etag_matches(sl(" \"x\" ,\"y\",  W/\"a-1f\" "), e));
  assert_true(hd_static_etag_matches(sl("\"x,y\", \"a-1f\""), e)); /* comma inside a tag */
  assert_true(hd_static_etag_matches(sl(" * "), e));
  assert_true(hd_static_etag_matches(sl("\"a-1f\""), "W/\"a-1f\""));
  assert_false(hd_static_etag_matches(sl("\"a-1e\""), e));
  assert_false(hd_static_etag_matches(sl("a-1f"), e));
  assert_false(hd_static_etag_matches(sl("\"a-1f"), e));
  assert_false(hd_static_etag_matches(sl("W/"), e));
  assert_false(hd_static_etag_matches(sl(""), e));
  assert_false(hd_static_etag_matches(sl(NULL), e));
  assert_false(hd_static_etag_matches(sl("\"*\""), e));
}

static void test_mime(void **state) {
  struct {
    const char *name, *mime;
  } cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"A.HTML", "text/html; charset=utf-8"},
      {"s.css", "text/css; charset=utf-8"},
      {"a.js", "text/javascript; charset=utf-8"},
      {"m.mjs", "text/javascript; charset=utf-8"},
      {"d.json", "application/json"},
      {"a.js.map", "application/json"},
      {"i.svg", "image/svg+xml"},
      {"i.png", "image/png"},
      {"i.jpg", "image/jpeg"},
      {"i.jpeg", "image/jpeg"},
      {"i.gif", "image/gif"},
      {"favicon.ico", "image/x-icon"},
      {"i.webp", "image/webp"},
      {"f.woff", "font/woff"},
      {"f.woff2", "font/woff2"},
      {"r.txt", "text/plain; charset=utf-8"},
      {"m.wasm", "application/wasm"},
      {"x.xml", "application/xml"},
      {"d.pdf", "application/pdf"},
      {"x.tar.gz", "application/octet-stream"},
      {"noext", "application/octet-stream"},
      {"dir.html/file", "application/octet-stream"},
      {"/root/sub/page.html", "text/html; charset=utf-8"},
      {"trailingdot.", "application/octet-stream"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) assert_string_equal(hd_static_mime_type(cases[i].name), cases[i].mime);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_traversal_refused), cmocka_unit_test(test_safe_paths),
      cmocka_unit_test(test_bad_encoding_and_length), cmocka_unit_test(test_load),
      cmocka_unit_test(test_index),             cmocka_unit_test(test_traversal_load),
      cmocka_unit_test(test_symlinks),          cmocka_unit_test(test_max_size),
      cmocka_unit_test(test_not_modified),      cmocka_unit_test(test_etag_matches),
      cmocka_unit_test(test_mime),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
