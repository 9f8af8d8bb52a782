/* TLS for connections (OpenSSL): a context loaded from PEM files (certificate chain, key, minimum
 * version, ALPN http/1.1, session tickets), and per connection a session over memory BIOs, so the
 * bytes move through the connection's own libuv socket and nothing ever blocks. conn.c is the only
 * user of sessions: the layers above a connection (http, ws, Engine.IO) never see TLS.
 * A context is shared read-only by the shards (each holds a reference); a session belongs to one
 * thread at a time (it moves with its connection when a shard hands the connection over). */
#ifndef HD_TLS_H
#define HD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

typedef struct hd_tls_ctx hd_tls_ctx_t; /* the certificate, key and settings; refcounted */
typedef struct hd_tls hd_tls_t;         /* one connection's TLS session */

/* Loads cert_path (PEM: the certificate, then its chain) and key_path (PEM) with TLS min_version
 * ("1.2" or "1.3") into a new context. Refuses, with the cause in err, unreadable files, a key that
 * does not match the certificate, and a certificate that is expired or not valid yet. 0 and *out
 * (one reference, the caller's), or HD_EINVAL. */
int hd_tls_ctx_load(const char *cert_path, const char *key_path, const char *min_version, hd_tls_ctx_t **out,
                    char *err, size_t errlen);
/* Takes one more reference on ctx (any thread); returns ctx. */
hd_tls_ctx_t *hd_tls_ctx_ref(hd_tls_ctx_t *ctx);
/* Drops a reference (any thread); the last one frees the context. NULL is ignored. Sessions keep
 * the context they were made with alive on their own. */
void hd_tls_ctx_unref(hd_tls_ctx_t *ctx);
/* "subject=... not_after=... sha256=..." of ctx's certificate, into out (for logs). */
void hd_tls_ctx_describe(const hd_tls_ctx_t *ctx, char *out, size_t len);
/* True when s is a valid --tls-min-version ("1.2" or "1.3"). */
bool hd_tls_version_valid(const char *s);

/* A new server-side session of ctx, or NULL when out of memory. */
hd_tls_t *hd_tls_new(hd_tls_ctx_t *ctx);
/* Frees a session (NULL is ignored). */
void hd_tls_free(hd_tls_t *t);
/* True once the handshake has completed. */
bool hd_tls_handshake_done(const hd_tls_t *t);
/* Hands ciphertext received from the peer to the session (copied). 0 or HD_ENOMEM. */
int hd_tls_feed(hd_tls_t *t, const void *data, size_t len);
/* Advances the handshake and decrypts what was fed into out (at most cap bytes). Returns the
 * plaintext length (0: nothing more until more bytes are fed), HD_EPROTO for a failed handshake or
 * a broken record, HD_ECLOSED once the peer sent close_notify. Call it until it returns 0 or less.
 * *handshake_finished is set true on the call that completes the handshake. */
long hd_tls_read(hd_tls_t *t, char *out, size_t cap, bool *handshake_finished);
/* Encrypts len bytes of plaintext (the session must have completed its handshake). 0, or HD_EPROTO. */
int hd_tls_write(hd_tls_t *t, const void *data, size_t len);
/* Queues the close_notify alert (once). */
void hd_tls_close_notify(hd_tls_t *t);
/* Ciphertext waiting to be sent (handshake, records, alerts), in bytes. */
size_t hd_tls_pending(const hd_tls_t *t);
/* Takes the waiting ciphertext as a new buffer (refs 1, the caller's), or NULL when there is none
 * or out of memory (then *err is HD_ENOMEM). */
hd_buf_t *hd_tls_take(hd_tls_t *t, int *err);
/* Why the last hd_tls_read failed, as OpenSSL tells it (for debug logs), into out. */
void hd_tls_last_error(char *out, size_t len);

#endif
