/* Unit tests for the TLS layer (net/tls.c) without sockets: contexts refused for the right reasons
 * (missing file, key mismatch, expired, bad version), and a server session driven through its
 * memory BIOs against an OpenSSL client: handshake, ALPN, records both ways (larger than one
 * record), close_notify both ways, garbage instead of a ClientHello. Certificates are made with
 * the `openssl` command in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "net/tls.h"

static char dir[64];
static char path_buf[8][256];

/* dir/name, in one of a few rotating buffers. */
static const char *at(const char *name) {
  static int next;
  char *p = path_buf[next++ % 8];
  snprintf(p, sizeof path_buf[0], "%s/%s", dir, name);
  return p;
}

static int make_certs(void **state) {
  snprintf(dir, sizeof dir, "/tmp/herald-tls-unit-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "cd %s && for n in good other; do openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout $n.key -out $n.pem -days 1 -subj /CN=localhost >/dev/null 2>&1 || exit 1; done && "
           "openssl req -new -key good.key -out old.csr -subj /CN=old >/dev/null 2>&1 && "
           "openssl x509 -req -in old.csr -signkey good.key -days -1 -out old.pem >/dev/null 2>&1",
           dir);
  return system(cmd) == 0 ? 0 : -1;
}

static int remove_certs(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static hd_tls_ctx_t *load_good(void) {
  hd_tls_ctx_t *ctx = NULL;
  char err[512];
  assert_int_equal(hd_tls_ctx_load(at("good.pem"), at("good.key"), "1.2", &ctx, err, sizeof err), 0);
  return ctx;
}

static void test_ctx_refusals(void **state) {
  hd_tls_ctx_t *ctx = NULL;
  char err[512];
  assert_int_equal(hd_tls_ctx_load(at("missing.pem"), at("good.key"), "1.2", &ctx, err, sizeof err), HD_EINVAL);
  assert_non_null(strstr(err, "cannot load --tls-cert"));
  assert_int_equal(hd_tls_ctx_load(at("good.pem"), at("other.key"), "1.2", &ctx, err, sizeof err), HD_EINVAL);
  assert_non_null(strstr(err, "does not match the certificate"));
  assert_int_equal(hd_tls_ctx_load(at("old.pem"), at("good.key"), "1.2", &ctx, err, sizeof err), HD_EINVAL);
  assert_non_null(strstr(err, "has expired"));
  assert_int_equal(hd_tls_ctx_load(at("good.pem"), at("good.key"), "1.1", &ctx, err, sizeof err), HD_EINVAL);
  assert_non_null(strstr(err, "tls-min-version"));
  assert_int_equal(hd_tls_ctx_load("", at("good.key"), "1.2", &ctx, err, sizeof err), HD_EINVAL);
  assert_null(ctx);
  ctx = load_good();
  char desc[512];
  hd_tls_ctx_describe(ctx, desc, sizeof desc);
  assert_non_null(strstr(desc, "subject=\"/CN=localhost\""));
  assert_non_null(strstr(desc, "sha256="));
  hd_tls_ctx_unref(hd_tls_ctx_ref(ctx)); /* a reference taken and dropped leaves ours */
  hd_tls_ctx_unref(ctx);
}

typedef struct {
  SSL_CTX *cctx;
  SSL *client;
  hd_tls_t *server;
  char plain[65536];
  size_t plain_len;
  bool finished;
  long last; /* the server's last hd_tls_read result */
} pair_t;

static pair_t *pair_new(hd_tls_ctx_t *ctx, const char *alpn, size_t alpn_len) {
  pair_t *p = calloc(1, sizeof(*p));
  p->cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(p->cctx, SSL_VERIFY_NONE, NULL);
  if (alpn) SSL_CTX_set_alpn_protos(p->cctx, (const unsigned char *)alpn, (unsigned)alpn_len);
  p->client = SSL_new(p->cctx);
  SSL_set_bio(p->client, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_connect_state(p->client);
  p->server = hd_tls_new(ctx);
  assert_non_null(p->server);
  return p;
}

static void pair_free(pair_t *p) {
  hd_tls_free(p->server);
  SSL_free(p->client);
  SSL_CTX_free(p->cctx);
  free(p);
}

/* Moves bytes both ways until neither side has anything to say; server plaintext into p->plain. */
static void pump(pair_t *p) {
  for (int round = 0; round < 50; round++) {
    bool moved = false;
    SSL_do_handshake(p->client);
    ERR_clear_error();
    char buf[65536];
    int n;
    while ((n = BIO_read(SSL_get_wbio(p->client), buf, sizeof buf)) > 0) {
      assert_int_equal(hd_tls_feed(p->server, buf, (size_t)n), 0);
      moved = true;
    }
    long got;
    while ((got = hd_tls_read(p->server, p->plain + p->plain_len, sizeof p->plain - p->plain_len, &p->finished)) > 0)
      p->plain_len += (size_t)got;
    p->last = got;
    int err;
    hd_buf_t *out;
    while ((out = hd_tls_take(p->server, &err))) {
      BIO_write(SSL_get_rbio(p->client), out->data, (int)out->len);
      hd_buf_unref(out);
      moved = true;
    }
    if (!moved) return;
  }
}

static void test_handshake_alpn_records(void **state) {
  hd_tls_ctx_t *ctx = load_good();
  pair_t *p = pair_new(ctx, "\x02h2\x08http/1.1", 12);
  hd_tls_ctx_unref(ctx); /* the session keeps the context alive */
  assert_false(hd_tls_handshake_done(p->server));
  assert_int_equal(hd_tls_write(p->server, "early", 5), HD_EPROTO); /* no records before the handshake */
  pump(p);
  assert_true(p->finished);
  assert_true(hd_tls_handshake_done(p->server));
  assert_int_equal(SSL_is_init_finished(p->client), 1);
  const unsigned char *proto;
  unsigned len;
  SSL_get0_alpn_selected(p->client, &proto, &len);
  assert_int_equal(len, 8);
  assert_memory_equal(proto, "http/1.1", 8);

  /* client to server */
  assert_int_equal(SSL_write(p->client, "GET / HTTP/1.1\r\n\r\n", 18), 18);
  pump(p);
  assert_int_equal(p->plain_len, 18);
  assert_memory_equal(p->plain, "GET / HTTP/1.1\r\n\r\n", 18);

  /* server to client: more than one record's worth */
  static char big[40000], back[40000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
  assert_int_equal(hd_tls_write(p->server, big, sizeof big), 0);
  assert_true(hd_tls_pending(p->server) > sizeof big);
  pump(p);
  size_t got = 0;
  int n;
  while (got < sizeof back && (n = SSL_read(p->client, back + got, (int)(sizeof back - got))) > 0) got += (size_t)n;
  assert_int_equal(got, sizeof big);
  assert_memory_equal(back, big, sizeof big);

  /* close_notify from the server, then from the client */
  hd_tls_close_notify(p->server);
  pump(p);
  assert_int_equal(SSL_read(p->client, back, 1), 0);
  assert_int_equal(SSL_get_error(p->client, 0), SSL_ERROR_ZERO_RETURN);
  assert_int_equal(hd_tls_write(p->server, "late", 4), HD_EPROTO);
  SSL_shutdown(p->client);
  pump(p);
  assert_int_equal(p->last, HD_ECLOSED);
  pair_free(p);
}

static void test_no_alpn_is_fine(void **state) {
  hd_tls_ctx_t *ctx = load_good();
  pair_t *p = pair_new(ctx, "\x02h2", 3); /* only a protocol we do not speak: no ALPN, handshake goes on */
  pump(p);
  assert_true(hd_tls_handshake_done(p->server));
  const unsigned char *proto;
  unsigned len;
  SSL_get0_alpn_selected(p->client, &proto, &len);
  assert_int_equal(len, 0);
  pair_free(p);
  hd_tls_ctx_unref(ctx);
}

static void test_garbage_fails_the_handshake(void **state) {
  hd_tls_ctx_t *ctx = load_good();
  hd_tls_t *t = hd_tls_new(ctx);
  const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(hd_tls_feed(t, junk, strlen(junk)), 0);
  char out[64];
  bool finished = false;
  assert_int_equal(hd_tls_read(t, out, sizeof out, &finished), HD_EPROTO);
  assert_false(finished);
  char why[160];
  hd_tls_last_error(why, sizeof why);
  assert_true(strlen(why) > 0);
  hd_tls_free(t);
  /* a partial ClientHello is not an error: more bytes are awaited */
  t = hd_tls_new(ctx);
  assert_int_equal(hd_tls_feed(t, "\x16\x03\x01\x00\x80\x01", 6), 0);
  assert_int_equal(hd_tls_read(t, out, sizeof out, &finished), 0);
  hd_tls_free(t);
  hd_tls_ctx_unref(ctx);
}

static void test_min_version_13(void **state) {
  hd_tls_ctx_t *ctx = NULL;
  char err[512];
  assert_int_equal(hd_tls_ctx_load(at("good.pem"), at("good.key"), "1.3", &ctx, err, sizeof err), 0);
  pair_t *p = pair_new(ctx, NULL, 0);
  SSL_set_max_proto_version(p->client, TLS1_2_VERSION);
  pump(p);
  assert_false(hd_tls_handshake_done(p->server));
  assert_int_equal(p->last, HD_EPROTO);
  pair_free(p);
  hd_tls_ctx_unref(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ctx_refusals),
      cmocka_unit_test(test_handshake_alpn_records),
      cmocka_unit_test(test_no_alpn_is_fine),
      cmocka_unit_test(test_garbage_fails_the_handshake),
      cmocka_unit_test(test_min_version_13),
  };
  return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
