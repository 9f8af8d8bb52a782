/* Unit tests for the RFC 6455 opening handshake: accept key, every refusal, the 101 response. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <http_parser.h>
#include <string.h>

#include "core/error.h"
#include "net/ws_handshake.h"

#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="

typedef struct {
  hd_http_request_t req;
  hd_http_header_t headers[8];
} request_t;

/* A valid upgrade request; tests then break one thing. */
static void make_request(request_t *r) {
  memset(r, 0, sizeof(*r));
  r->req.method = HTTP_GET;
  r->req.method_name = HD_SLICE_LIT("GET");
  r->req.target = r->req.path = HD_SLICE_LIT("/ws");
  r->req.http_major = 1;
  r->req.http_minor = 1;
  r->req.headers = r->headers;
  r->headers[0] = (hd_http_header_t){HD_SLICE_LIT("Host"), HD_SLICE_LIT("example.com")};
  r->headers[1] = (hd_http_header_t){HD_SLICE_LIT("Upgrade"), HD_SLICE_LIT("websocket")};
  r->headers[2] = (hd_http_header_t){HD_SLICE_LIT("Connection"), HD_SLICE_LIT("Upgrade")};
  r->headers[3] = (hd_http_header_t){HD_SLICE_LIT("Sec-WebSocket-Key"), HD_SLICE_LIT(SAMPLE_KEY)};
  r->headers[4] = (hd_http_header_t){HD_SLICE_LIT("Sec-WebSocket-Version"), HD_SLICE_LIT("13")};
  r->req.header_count = 5;
}

static void set_header(request_t *r, size_t i, const char *value) {
  r->headers[i].value = (hd_slice_t){value, strlen(value)};
}

static void drop_header(request_t *r, size_t i) {
  r->headers[i] = r->headers[--r->req.header_count];
}

static int check(request_t *r, const char **why) {
  hd_slice_t key = {0};
  *why = NULL;
  return hd_ws_handshake_check(&r->req, &key, why);
}

static void expect_refusal(request_t *r, int err) {
  const char *why;
  assert_int_equal(check(r, &why), err);
  assert_non_null(why);
  assert_true(strlen(why) > 0);
}

static void test_accept_key_rfc_sample(void **state) {
  char out[HD_WS_ACCEPT_LEN + 1];
  hd_ws_accept_key(HD_SLICE_LIT(SAMPLE_KEY), out);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_valid_request(void **state) {
  request_t r;
  make_request(&r);
  hd_slice_t key = {0};
  const char *why = NULL;
  assert_int_equal(hd_ws_handshake_check(&r.req, &key, &why), 0);
  assert_true(hd_slice_eq(key, SAMPLE_KEY));
}

static void test_tokens_case_insensitive(void **state) {
  request_t r;
  make_request(&r);
  set_header(&r, 1, "WebSocket");
  set_header(&r, 2, "keep-alive, Upgrade");
  r.headers[3].name = HD_SLICE_LIT("sec-websocket-key");
  const char *why;
  assert_int_equal(check(&r, &why), 0);
  set_header(&r, 1, "h2c, WEBSOCKET");
  set_header(&r, 2, "UPGRADE");
  assert_int_equal(check(&r, &why), 0);
  r.req.http_major = 2;
  r.req.http_minor = 0;
  assert_int_equal(check(&r, &why), 0);
}

static void test_refuse_method(void **state) {
  request_t r;
  make_request(&r);
  r.req.method = HTTP_POST;
  r.req.method_name = HD_SLICE_LIT("POST");
  expect_refusal(&r, HD_EMETHOD);
}

static void test_refuse_http10(void **state) {
  request_t r;
  make_request(&r);
  r.req.http_minor = 0;
  expect_refusal(&r, HD_EPROTO);
}

static void test_refuse_upgrade(void **state) {
  request_t r;
  make_request(&r);
  set_header(&r, 1, "h2c");
  expect_refusal(&r, HD_EPROTO);
  set_header(&r, 1, "websockets");
  expect_refusal(&r, HD_EPROTO);
  make_request(&r);
  drop_header(&r, 1);
  expect_refusal(&r, HD_EPROTO);
}

static void test_refuse_connection(void **state) {
  request_t r;
  make_request(&r);
  set_header(&r, 2, "keep-alive");
  expect_refusal(&r, HD_EPROTO);
  set_header(&r, 2, "upgrades");
  expect_refusal(&r, HD_EPROTO);
  make_request(&r);
  drop_header(&r, 2);
  expect_refusal(&r, HD_EPROTO);
}

static void test_refuse_version(void **state) {
  request_t r;
  make_request(&r);
  set_header(&r, 4, "8");
  expect_refusal(&r, HD_EVERSION);
  set_header(&r, 4, "13, 8");
  expect_refusal(&r, HD_EVERSION);
  set_header(&r, 4, "");
  expect_refusal(&r, HD_EVERSION);
  make_request(&r);
  drop_header(&r, 4);
  expect_refusal(&r, HD_EPROTO);
}

static void test_refuse_key(void **state) {
  request_t r;
  make_request(&r);
  set_header(&r, 3, "AAECAwQFBgcICQoLDA0O");  /* 15 bytes */
  expect_refusal(&r, HD_EPROTO);
  set_header(&r, 3, "AAECAwQFBgcICQoLDA0ODxA="); /* 17 bytes */
  expect_refusal(&r, HD_EPROTO);
  set_header(&r, 3, "dGhlIHNhbXBsZSBub25jZQ");   /* padding missing */
  expect_refusal(&r, HD_EPROTO);
  set_header(&r, 3, "dGhlIHNhbXBsZSBub25jZ*==");
  expect_refusal(&r, HD_EPROTO);
  set_header(&r, 3, "");
  expect_refusal(&r, HD_EPROTO);
  drop_header(&r, 3);
  expect_refusal(&r, HD_EPROTO);
  make_request(&r);
  set_header(&r, 3, "AAECAwQFBgcICQoLDA0ODw=="); /* exactly 16 bytes */
  const char *why;
  assert_int_equal(check(&r, &why), 0);
}

static void test_response(void **state) {
  hd_buf_t *b = hd_ws_handshake_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", NULL, NULL);
  assert_non_null(b);
  const char *plain = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  assert_int_equal(b->len, strlen(plain));
  assert_memory_equal(b->data, plain, b->len);
  assert_int_equal(b->refs, 1);
  hd_buf_unref(b);

  b = hd_ws_handshake_response("x", "permessage-deflate; server_no_context_takeover", "chat");
  assert_non_null(b);
  const char *full = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: x\r\n"
                     "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
                     "Sec-WebSocket-Protocol: chat\r\n\r\n";
  assert_int_equal(b->len, strlen(full));
  assert_memory_equal(b->data, full, b->len);
  hd_buf_unref(b);

  b = hd_ws_handshake_response("x", NULL, "chat");
  assert_non_null(b);
  assert_non_null(strstr((const char *)b->data, "\r\nSec-WebSocket-Protocol: chat\r\n\r\n"));
  assert_null(strstr((const char *)b->data, "Extensions"));
  hd_buf_unref(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_key_rfc_sample),
      cmocka_unit_test(test_valid_request),
      cmocka_unit_test(test_tokens_case_insensitive),
      cmocka_unit_test(test_refuse_method),
      cmocka_unit_test(test_refuse_http10),
      cmocka_unit_test(test_refuse_upgrade),
      cmocka_unit_test(test_refuse_connection),
      cmocka_unit_test(test_refuse_version),
      cmocka_unit_test(test_refuse_key),
      cmocka_unit_test(test_response),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
