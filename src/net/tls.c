/* TLS contexts and per-connection sessions over memory BIOs (see tls.h). */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* A context is an SSL_CTX under another name: its own refcount (SSL_CTX_up_ref) is the context's. */
#define SSL_OF(ctx) ((SSL_CTX *)(ctx))

struct hd_tls {
  SSL *ssl;
  BIO *in, *out; /* memory BIOs: ciphertext from the peer, ciphertext to the peer */
  bool done, notified;
};

static const unsigned char ALPN_HTTP11[] = "\x08http/1.1";

/* ALPN: http/1.1 when the client offers it; a client that offers only other protocols gets none
 * (the handshake goes on, as with a client that sends no ALPN). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, ALPN_HTTP11, sizeof ALPN_HTTP11 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* The first queued OpenSSL error as text (or fallback), into out; clears the queue. */
static void ssl_error_text(char *out, size_t len, const char *fallback) {
  unsigned long e = ERR_get_error();
  if (e) ERR_error_string_n(e, out, len);
  else snprintf(out, len, "%s", fallback);
  ERR_clear_error();
}

bool hd_tls_version_valid(const char *s) { return !strcmp(s, "1.2") || !strcmp(s, "1.3"); }

/* Refuses a certificate outside its validity period; 0 or HD_EINVAL with err. */
static int check_validity(SSL_CTX *ssl, const char *path, char *err, size_t errlen) {
  X509 *cert = SSL_CTX_get0_certificate(ssl);
  if (!cert) {
    snprintf(err, errlen, "no certificate in --tls-cert '%s'", path);
    return HD_EINVAL;
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
    snprintf(err, errlen, "certificate '%s' has expired", path);
    return HD_EINVAL;
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
    snprintf(err, errlen, "certificate '%s' is not valid yet", path);
    return HD_EINVAL;
  }
  return 0;
}

int hd_tls_ctx_load(const char *cert_path, const char *key_path, const char *min_version, hd_tls_ctx_t **out,
                    char *err, size_t errlen) {
  char why[256];
  if (!*cert_path || !*key_path) {
    snprintf(err, errlen, "TLS needs both --tls-cert and --tls-key");
    return HD_EINVAL;
  }
  if (!hd_tls_version_valid(min_version)) {
    snprintf(err, errlen, "invalid --tls-min-version '%s': expected 1.2 or 1.3", min_version);
    return HD_EINVAL;
  }
  ERR_clear_error();
  SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
  if (!ssl) {
    ERR_clear_error();
    snprintf(err, errlen, "out of memory");
    return HD_ENOMEM;
  }
  SSL_CTX_set_min_proto_version(ssl, strcmp(min_version, "1.3") ? TLS1_2_VERSION : TLS1_3_VERSION);
  /* memory BIOs: a record may be written from a buffer that moved; no renegotiation */
  SSL_CTX_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_clear_options(ssl, SSL_OP_NO_TICKET); /* session tickets on (stateless resumption) */
  SSL_CTX_set_session_id_context(ssl, (const unsigned char *)"herald", 6);
  SSL_CTX_set_alpn_select_cb(ssl, select_alpn, NULL);
  if (SSL_CTX_use_certificate_chain_file(ssl, cert_path) != 1) {
    ssl_error_text(why, sizeof why, "unreadable");
    snprintf(err, errlen, "cannot load --tls-cert '%s': %s", cert_path, why);
  } else if (SSL_CTX_use_PrivateKey_file(ssl, key_path, SSL_FILETYPE_PEM) != 1) {
    bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    ssl_error_text(why, sizeof why, "unreadable");
    if (mismatch) snprintf(err, errlen, "--tls-key '%s' does not match the certificate of --tls-cert '%s'", key_path, cert_path);
    else snprintf(err, errlen, "cannot load --tls-key '%s': %s", key_path, why);
  } else if (SSL_CTX_check_private_key(ssl) != 1) {
    ERR_clear_error();
    snprintf(err, errlen, "--tls-key '%s' does not match the certificate of --tls-cert '%s'", key_path, cert_path);
  } else if (!check_validity(ssl, cert_path, err, errlen)) {
    *out = (hd_tls_ctx_t *)ssl;
    return 0;
  }
  SSL_CTX_free(ssl);
  return HD_EINVAL;
}

hd_tls_ctx_t *hd_tls_ctx_ref(hd_tls_ctx_t *ctx) {
  SSL_CTX_up_ref(SSL_OF(ctx));
  return ctx;
}

void hd_tls_ctx_unref(hd_tls_ctx_t *ctx) { SSL_CTX_free(SSL_OF(ctx)); /* NULL is ignored */ }

void hd_tls_ctx_describe(const hd_tls_ctx_t *ctx, char *out, size_t len) {
  X509 *cert = SSL_CTX_get0_certificate(SSL_OF(ctx));
  char subject[256] = "?", not_after[64] = "?", hex[65] = "?";
  if (cert) {
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    BIO *b = BIO_new(BIO_s_mem());
    if (b && ASN1_TIME_print(b, X509_get0_notAfter(cert))) {
      int n = BIO_read(b, not_after, sizeof not_after - 1);
      not_after[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (X509_digest(cert, EVP_sha256(), md, &mdlen) && mdlen == 32)
      for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  }
  snprintf(out, len, "subject=\"%s\" not_after=\"%s\" sha256=%s", subject, not_after, hex);
}

hd_tls_t *hd_tls_new(hd_tls_ctx_t *ctx) {
  hd_tls_t *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  t->ssl = SSL_new(SSL_OF(ctx)); /* the session holds its own reference on the context */
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->in || !t->out) {
    BIO_free(t->in);
    BIO_free(t->out);
    SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    return NULL;
  }
  BIO_set_mem_eof_return(t->in, -1); /* empty: "retry", not end of file */
  BIO_set_mem_eof_return(t->out, -1);
  SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both BIOs now */
  SSL_set_accept_state(t->ssl);
  return t;
}

void hd_tls_free(hd_tls_t *t) {
  if (!t) return;
  SSL_free(t->ssl);
  free(t);
}

bool hd_tls_handshake_done(const hd_tls_t *t) { return t->done; }

int hd_tls_feed(hd_tls_t *t, const void *data, size_t len) {
  size_t written = 0;
  if (len && (!BIO_write_ex(t->in, data, len, &written) || written != len)) return HD_ENOMEM;
  return 0;
}

long hd_tls_read(hd_tls_t *t, char *out, size_t cap, bool *handshake_finished) {
  ERR_clear_error();
  if (!t->done) {
    int rc = SSL_do_handshake(t->ssl);
    if (rc != 1) {
      int e = SSL_get_error(t->ssl, rc);
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : HD_EPROTO;
    }
    t->done = true;
    *handshake_finished = true;
  }
  size_t n = 0;
  if (SSL_read_ex(t->ssl, out, cap, &n)) return (long)n;
  switch (SSL_get_error(t->ssl, 0)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return 0;
    case SSL_ERROR_ZERO_RETURN: return HD_ECLOSED;
    default: return HD_EPROTO;
  }
}

int hd_tls_write(hd_tls_t *t, const void *data, size_t len) {
  ERR_clear_error();
  if (!t->done || t->notified) return HD_EPROTO;
  /* memory BIO output never blocks: everything is written, a record (partial write) at a time */
  for (size_t off = 0, n; off < len; off += n)
    if (!SSL_write_ex(t->ssl, (const char *)data + off, len - off, &n) || !n) return HD_EPROTO;
  return 0;
}

void hd_tls_close_notify(hd_tls_t *t) {
  if (t->notified || !t->done) return;
  t->notified = true;
  SSL_shutdown(t->ssl);
  ERR_clear_error();
}

size_t hd_tls_pending(const hd_tls_t *t) { return BIO_ctrl_pending(t->out); }

hd_buf_t *hd_tls_take(hd_tls_t *t, int *err) {
  size_t n = BIO_ctrl_pending(t->out);
  *err = 0;
  if (!n) return NULL;
  hd_buf_t *b = hd_buf_new(n);
  if (!b) {
    *err = HD_ENOMEM;
    return NULL;
  }
  size_t got = 0;
  BIO_read_ex(t->out, b->data, n, &got);
  b->len = got;
  return b;
}

void hd_tls_last_error(char *out, size_t len) { ssl_error_text(out, len, "unexpected message"); }
