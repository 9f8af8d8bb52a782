/* Unit tests for the HTTP/1.1 request parser: splitting, pipelining, bodies, limits, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "net/http_parse.h"

static const hd_http_limits_t big = {8192, 16384, 64, 1 << 20};
/* Small limits for the boundary tests. */
static const hd_http_limits_t small = {100, 200, 5, 50};

#define S(lit) lit, sizeof(lit) - 1

static void assert_slice(hd_slice_t s, const char *want) {
  assert_int_equal(s.len, strlen(want));
  assert_memory_equal(s.ptr, want, s.len);
}

/* Feeds the whole buffer once; returns the feed result. */
static ssize_t feed(hd_http_parser_t *p, const char *data, size_t len, hd_http_request_t **req) {
  return hd_http_parser_feed(p, data, len, req);
}

static void test_simple_get(void **state) {
  hd_http_parser_t p;
  hd_http_request_t *req;
  const char in[] = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept:  */*  \r\n\r\n";
  hd_http_parser_init(&p, &big);
  assert_false(hd_http_parser_started(&p));
  assert_null(p.req.head.ptr); /* nothing allocated before bytes arrive */
  assert_int_equal(feed(&p, S(in), &req), sizeof(in) - 1);
  assert_non_null(req);
  assert_true(hd_http_parser_started(&p));
  assert_int_equal(req->method, HTTP_GET);
  assert_slice(req->method_name, "GET");
  assert_slice(req->target, "/index.html");
  assert_slice(req->path, "/index.html");
  assert_int_equal(req->query.len, 0);
  assert_int_equal(req->http_major, 1);
  assert_int_equal(req->http_minor, 1);
  assert_int_equal(req->header_count, 3);
  assert_slice(req->headers[0].name, "Host");
  assert_slice(req->headers[0].value, "example.com");
  assert_slice(hd_http_request_header(req, "user-agent"), "t");
  assert_slice(hd_http_request_header(req, "Accept"), "*/*");
  assert_null(hd_http_request_header(req, "Cookie").ptr);
  assert_true(req->keep_alive);
  assert_false(req->upgrade);
  assert_int_equal(req->body.len, 0);
  /* fed again before reset: the same request, nothing consumed */
  hd_http_request_t *again;
  assert_int_equal(feed(&p, S("GET"), &again), 0);
  assert_ptr_equal(again, req);
  hd_http_parser_free(&p);
}

static void test_byte_by_byte(void **state) {
  const char in[] = "POST /api/x?y=1 HTTP/1.1\r\nHost: h\r\nX-Long-Header-Name: some value here\r\nEmpty:\r\n"
                    "Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world";
  hd_http_parser_t whole, bytes;
  hd_http_request_t *a, *b = NULL;
  hd_http_parser_init(&whole, &big);
  hd_http_parser_init(&bytes, &big);
  assert_int_equal(feed(&whole, S(in), &a), sizeof(in) - 1);
  assert_non_null(a);
  for (size_t i = 0; i < sizeof(in) - 1; i++) {
    assert_null(b);
    assert_int_equal(feed(&bytes, in + i, 1, &b), 1);
  }
  assert_non_null(b);
  assert_int_equal(a->method, b->method);
  assert_slice(b->target, "/api/x?y=1");
  assert_slice(b->path, "/api/x");
  assert_slice(b->query, "y=1");
  assert_int_equal(a->header_count, b->header_count);
  assert_int_equal(b->header_count, 5);
  for (size_t i = 0; i < a->header_count; i++) {
    assert_int_equal(a->headers[i].name.len, b->headers[i].name.len);
    assert_memory_equal(a->headers[i].name.ptr, b->headers[i].name.ptr, a->headers[i].name.len);
    assert_int_equal(a->headers[i].value.len, b->headers[i].value.len);
    assert_memory_equal(a->headers[i].value.ptr, b->headers[i].value.ptr, a->headers[i].value.len);
  }
  assert_slice(hd_http_request_header(b, "x-long-header-name"), "some value here");
  assert_int_equal(hd_http_request_header(b, "Empty").len, 0);
  assert_int_equal(b->body.len, 11);
  assert_memory_equal(b->body.ptr, "hello world", 11);
  hd_http_parser_free(&whole);
  hd_http_parser_free(&bytes);
}

/* Every split point of a two-part feed gives the same request. */
static void test_every_split(void **state) {
  const char in[] = "GET /s?q=1 HTTP/1.1\r\nHost: h\r\nCookie: a=b; c=d\r\n\r\n";
  for (size_t cut = 0; cut < sizeof(in) - 1; cut++) {
    hd_http_parser_t p;
    hd_http_request_t *req = NULL;
    hd_http_parser_init(&p, &big);
    ssize_t n = feed(&p, in, cut, &req);
    assert_int_equal(n, cut);
    assert_null(req);
    assert_int_equal(feed(&p, in + cut, sizeof(in) - 1 - cut, &req), sizeof(in) - 1 - cut);
    assert_non_null(req);
    assert_slice(req->path, "/s");
    assert_slice(hd_http_request_header(req, "cookie"), "a=b; c=d");
    hd_http_parser_free(&p);
  }
}

static void test_pipelined(void **state) {
  const char in[] = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                    "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const char *paths[] = {"/1", "/2", "/3"};
  hd_http_parser_t p;
  hd_http_parser_init(&p, &big);
  size_t off = 0;
  for (int i = 0; i < 3; i++) {
    hd_http_request_t *req;
    ssize_t n = feed(&p, in + off, sizeof(in) - 1 - off, &req);
    assert_true(n > 0);
    assert_non_null(req);
    assert_slice(req->path, paths[i]);
    assert_int_equal(req->keep_alive, i < 2);
    if (i == 1) assert_memory_equal(req->body.ptr, "abc", 3);
    off += (size_t)n;
    hd_http_parser_reset(&p);
  }
  assert_int_equal(off, sizeof(in) - 1);
  hd_http_parser_free(&p);
}

static void test_post_body(void **state) {
  const char in[] = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n12345";
  hd_http_parser_t p;
  hd_http_request_t *req;
  hd_http_parser_init(&p, &big);
  /* headers and part of the body: not complete yet */
  assert_int_equal(feed(&p, in, sizeof(in) - 3, &req), sizeof(in) - 3);
  assert_null(req);
  assert_int_equal(feed(&p, in + sizeof(in) - 3, 2, &req), 2);
  assert_non_null(req);
  assert_int_equal(req->method, HTTP_POST);
  assert_int_equal(req->body.len, 5);
  assert_string_equal(req->body.ptr, "12345");
  hd_http_parser_free(&p);
}

static void test_chunked(void **state) {
  const char in[] = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;name=value\r\nhello\r\n6 ; x=\"y\"\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"
                    "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  hd_http_parser_t p;
  hd_http_request_t *req;
  hd_http_parser_init(&p, &big);
  ssize_t n = feed(&p, S(in), &req);
  assert_non_null(req);
  assert_int_equal(req->body.len, 11);
  assert_memory_equal(req->body.ptr, "hello world", 11);
  assert_int_equal(req->header_count, 2); /* trailers are not kept */
  assert_slice(hd_http_request_header(req, "Transfer-Encoding"), "chunked");
  assert_string_equal(in + n, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
  hd_http_parser_reset(&p);
  assert_int_equal(feed(&p, in + n, sizeof(in) - 1 - (size_t)n, &req), sizeof(in) - 1 - (size_t)n);
  assert_slice(req->path, "/next");
  hd_http_parser_free(&p);
}

/* Parses in under limits and returns the result of one feed. */
static ssize_t parse_with(const hd_http_limits_t *l, const char *in, size_t len) {
  hd_http_parser_t p;
  hd_http_request_t *req;
  hd_http_parser_init(&p, l);
  ssize_t n = feed(&p, in, len, &req);
  if (n >= 0) assert_non_null(req);
  hd_http_parser_free(&p);
  return n;
}

static void make_line(char *buf, size_t target_len, const char *rest) {
  /* "GET " target " HTTP/1.1" is target_len + 13 bytes */
  strcpy(buf, "GET /");
  memset(buf + 5, 'a', target_len - 1);
  sprintf(buf + 4 + target_len, " HTTP/1.1\r\n%s", rest);
}

static void test_limit_request_line(void **state) {
  char buf[512];
  make_line(buf, 87, "Host: h\r\n\r\n");
  assert_int_equal(parse_with(&small, buf, strlen(buf)), strlen(buf));
  make_line(buf, 88, "Host: h\r\n\r\n");
  assert_int_equal(parse_with(&small, buf, strlen(buf)), HD_EURITOOLONG);
  /* detected while the target is still arriving */
  make_line(buf, 300, "");
  assert_int_equal(parse_with(&small, buf, 150), HD_EURITOOLONG);
  assert_int_equal(hd_http_parse_error_status(HD_EURITOOLONG), 414);
}

static void test_limit_header_size(void **state) {
  /* names + values: "Host" "h" "X-Pad" pad = 10 + pad */
  char buf[512], pad[256];
  memset(pad, 'p', 190);
  pad[190] = '\0';
  snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: %s\r\n\r\n", pad);
  assert_int_equal(parse_with(&small, buf, strlen(buf)), strlen(buf));
  pad[190] = 'p';
  pad[191] = '\0';
  snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: %s\r\n\r\n", pad);
  assert_int_equal(parse_with(&small, buf, strlen(buf)), HD_EHDRTOOBIG);
  assert_int_equal(hd_http_parse_error_status(HD_EHDRTOOBIG), 431);
}

static void test_limit_header_count(void **state) {
  const char five[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
  const char six[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
  assert_int_equal(parse_with(&small, S(five)), sizeof(five) - 1);
  assert_int_equal(parse_with(&small, S(six)), HD_EHDRTOOBIG);
  /* many headers under the big limits: array growth */
  char buf[4096] = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 63; i++) sprintf(buf + strlen(buf), "H%d: %d\r\n", i, i);
  strcat(buf, "\r\n");
  hd_http_parser_t p;
  hd_http_request_t *req;
  hd_http_parser_init(&p, &big);
  assert_int_equal(feed(&p, buf, strlen(buf), &req), strlen(buf));
  assert_int_equal(req->header_count, 64);
  assert_slice(hd_http_request_header(req, "H62"), "62");
  hd_http_parser_free(&p);
  strcpy(buf + strlen(buf) - 2, "H63: x\r\n\r\n");
  assert_int_equal(parse_with(&big, buf, strlen(buf)), HD_EHDRTOOBIG);
}

static void test_limit_body(void **state) {
  char buf[512];
  char body[64];
  memset(body, 'b', sizeof(body));
  snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\n%.50s", body);
  assert_int_equal(parse_with(&small, buf, strlen(buf)), strlen(buf));
  /* a declared length over the limit fails at the headers, before any body byte */
  const char over[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 51\r\n\r\n";
  assert_int_equal(parse_with(&small, S(over)), HD_EBODYTOOBIG);
  const char huge[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n";
  assert_int_equal(parse_with(&small, S(huge)), HD_EBODYTOOBIG);
  /* chunked: 50 passes, 51 fails as it arrives */
  snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n19\r\n%.25s\r\n19\r\n%.25s\r\n0\r\n\r\n",
           body, body);
  assert_int_equal(parse_with(&small, buf, strlen(buf)), strlen(buf));
  snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n19\r\n%.25s\r\n1a\r\n%.26s",
           body, body);
  assert_int_equal(parse_with(&small, buf, strlen(buf)), HD_EBODYTOOBIG);
  assert_int_equal(hd_http_parse_error_status(HD_EBODYTOOBIG), 413);
}

static void test_errors(void **state) {
  assert_int_equal(parse_with(&big, S("FOO / HTTP/1.1\r\nHost: h\r\n\r\n")), HD_EMETHOD);
  assert_int_equal(hd_http_parse_error_status(HD_EMETHOD), 501);
  /* garbage after a valid method is a protocol error */
  assert_int_equal(parse_with(&big, S("GET / XTTP/1.1\r\n\r\n")), HD_EPROTO);
  /* the request line is checked strictly even though http_parser is not built strict */
  assert_int_equal(parse_with(&big, S("GET / HTTX/1.1\r\nHost: h\r\n\r\n")), HD_EPROTO);
  assert_int_equal(parse_with(&big, S("GET / HTTP-1.1\r\nHost: h\r\n\r\n")), HD_EPROTO);
  assert_int_equal(parse_with(&big, S(" GET / HTTP/1.1\r\nHost: h\r\n\r\n")), HD_EPROTO);
  assert_int_equal(parse_with(&big, S("/ HTTP/1.1\r\nHost: h\r\n\r\n")), HD_EPROTO);
  assert_int_equal(parse_with(&big, S("get / HTTP/1.1\r\nHost: h\r\n\r\n")), HD_EPROTO);
  assert_true(parse_with(&big, S("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")) > 0); /* empty lines first are fine */
  assert_int_equal(parse_with(&big, S("GET / HTTP/1.1\r\nHost h\r\n\r\n")), HD_EPROTO);
  assert_int_equal(parse_with(&big, S("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n")), HD_EPROTO);
  /* binary garbage where a method should be: the request-line check refuses it (400) */
  assert_int_equal(parse_with(&big, S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")), HD_EPROTO);
  /* NUL and bare CR in header values */
  assert_int_equal(parse_with(&big, S("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n")), HD_EPROTO);
  assert_int_equal(parse_with(&big, S("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n")), HD_EPROTO);
  assert_int_equal(parse_with(&big, S("GET / HTTP/1.1\r\nHo\0st: h\r\n\r\n")), HD_EPROTO);
  /* unsupported major version, conflicting lengths */
  assert_int_equal(parse_with(&big, S("GET / HTTP/2.0\r\nHost: h\r\n\r\n")), HD_EPROTO);
  assert_int_equal(parse_with(&big, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")),
                   HD_EPROTO);
  assert_int_equal(hd_http_parse_error_status(HD_EPROTO), 400);
  /* the error sticks */
  hd_http_parser_t p;
  hd_http_request_t *req;
  hd_http_parser_init(&p, &big);
  assert_int_equal(feed(&p, S("BREW / HTTP/1.1\r\n"), &req), HD_EMETHOD);
  assert_int_equal(feed(&p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &req), HD_EMETHOD);
  assert_null(req);
  hd_http_parser_free(&p);
}

static void test_host(void **state) {
  assert_int_equal(parse_with(&big, S("GET / HTTP/1.1\r\nX: y\r\n\r\n")), HD_EPROTO);
  assert_int_equal(parse_with(&big, S("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")), HD_EPROTO);
  /* HTTP/1.0 needs no Host */
  assert_true(parse_with(&big, S("GET / HTTP/1.0\r\n\r\n")) > 0);
}

static bool keep_alive_of(const char *in) {
  hd_http_parser_t p;
  hd_http_request_t *req;
  hd_http_parser_init(&p, &big);
  assert_int_equal(feed(&p, in, strlen(in), &req), strlen(in));
  bool ka = req->keep_alive;
  hd_http_parser_free(&p);
  return ka;
}

static void test_keep_alive(void **state) {
  assert_false(keep_alive_of("GET / HTTP/1.0\r\n\r\n"));
  assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  assert_true(keep_alive_of("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert_false(keep_alive_of("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
}

static void test_upgrade(void **state) {
  const char head[] = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  char in[512];
  memcpy(in, head, sizeof(head) - 1);
  memcpy(in + sizeof(head) - 1, "\x81\x85XYZW", 6); /* a WebSocket frame follows at once */
  hd_http_parser_t p;
  hd_http_request_t *req;
  hd_http_parser_init(&p, &big);
  assert_int_equal(feed(&p, in, sizeof(head) - 1 + 6, &req), sizeof(head) - 1);
  assert_non_null(req);
  assert_true(req->upgrade);
  assert_slice(req->path, "/ws");
  assert_slice(hd_http_request_header(req, "upgrade"), "websocket");
  hd_http_parser_free(&p);
  /* without Connection: upgrade it is an ordinary request */
  hd_http_parser_init(&p, &big);
  assert_true(feed(&p, S("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"), &req) > 0);
  assert_false(req->upgrade);
  hd_http_parser_free(&p);
}

static void test_query_split(void **state) {
  hd_http_parser_t p;
  hd_http_request_t *req;
  char v[32];
  hd_http_parser_init(&p, &big);
  assert_true(feed(&p, S("GET /a/b%20c?x=1&y=%20z&e HTTP/1.1\r\nHost: h\r\n\r\n"), &req) > 0);
  assert_slice(req->path, "/a/b%20c");
  assert_slice(req->query, "x=1&y=%20z&e");
  assert_int_equal(hd_http_request_query(req, "y", v, sizeof(v)), 2);
  assert_string_equal(v, " z");
  assert_int_equal(hd_http_request_query(req, "e", v, sizeof(v)), 0);
  assert_int_equal(hd_http_request_query(req, "nope", v, sizeof(v)), HD_ENOTFOUND);
  hd_http_parser_reset(&p);
  assert_true(feed(&p, S("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n"), &req) > 0);
  assert_slice(req->path, "/a");
  assert_int_equal(req->query.len, 0);
  hd_http_parser_free(&p);
}

static void test_reset_reuse(void **state) {
  hd_http_parser_t p;
  hd_http_request_t *req;
  hd_http_parser_init(&p, &small);
  for (int i = 0; i < 3; i++) {
    assert_true(feed(&p, S("POST /r HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"), &req) > 0);
    assert_non_null(req);
    assert_string_equal(req->body.ptr, "ok");
    hd_http_parser_reset(&p);
    assert_false(hd_http_parser_started(&p));
    assert_null(p.req.head.ptr); /* idle again: nothing held */
    assert_int_equal(p.limits.max_body_size, 50);
  }
  /* CRLF between requests is tolerated and starts the header clock */
  assert_int_equal(feed(&p, S("\r\n"), &req), 2);
  assert_true(hd_http_parser_started(&p));
  assert_null(req);
  assert_true(feed(&p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &req) > 0);
  assert_non_null(req);
  hd_http_parser_free(&p);
  hd_http_parser_free(&p); /* idempotent */
}

/* Absolute-form targets (RFC 9112 3.2.2) are served by their path and query. */
static void test_absolute_form(void **state) {
  hd_http_limits_t l = {8192, 16384, 64, 1024};
  const char *cases[][3] = {{"GET http://h:1/a/b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", "/a/b", "x=1"},
                            {"GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", "/", ""},
                            {"GET HTTP://h?q HTTP/1.1\r\nHost: h\r\n\r\n", "/", "q"}};
  for (size_t i = 0; i < 3; i++) {
    hd_http_parser_t p;
    hd_http_request_t *req = NULL;
    hd_http_parser_init(&p, &l);
    assert_true(hd_http_parser_feed(&p, cases[i][0], strlen(cases[i][0]), &req) > 0);
    assert_non_null(req);
    assert_true(hd_slice_eq(req->path, cases[i][1]));
    assert_true(hd_slice_eq(req->query, cases[i][2]));
    hd_http_parser_free(&p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_absolute_form),
      cmocka_unit_test(test_simple_get),      cmocka_unit_test(test_byte_by_byte),
      cmocka_unit_test(test_every_split),     cmocka_unit_test(test_pipelined),
      cmocka_unit_test(test_post_body),       cmocka_unit_test(test_chunked),
      cmocka_unit_test(test_limit_request_line), cmocka_unit_test(test_limit_header_size),
      cmocka_unit_test(test_limit_header_count), cmocka_unit_test(test_limit_body),
      cmocka_unit_test(test_errors),          cmocka_unit_test(test_host),
      cmocka_unit_test(test_keep_alive),      cmocka_unit_test(test_upgrade),
      cmocka_unit_test(test_query_split),     cmocka_unit_test(test_reset_reuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
