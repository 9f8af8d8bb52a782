/* The RFC 6455 opening handshake, server side: request checks, Sec-WebSocket-Accept and the
 * 101 response (see ws_handshake.h). */
#include "net/ws_handshake.h"

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define KEY_LEN 24 /* base64 of 16 bytes: 22 characters and "==" */

static bool is_b64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static bool key_valid(hd_slice_t k) {
  if (k.len != KEY_LEN || k.ptr[22] != '=' || k.ptr[23] != '=') return false;
  for (size_t i = 0; i < 22; i++)
    if (!is_b64(k.ptr[i])) return false;
  return true;
}

static int refuse(int err, const char **why, const char *msg) {
  *why = msg;
  return err;
}

int hd_ws_handshake_check(const hd_http_request_t *req, hd_slice_t *key, const char **why) {
  if (req->method != HTTP_GET) return refuse(HD_EMETHOD, why, "WebSocket upgrade requires GET");
  if (req->http_major < 1 || (req->http_major == 1 && req->http_minor < 1))
    return refuse(HD_EPROTO, why, "WebSocket upgrade requires HTTP/1.1");
  if (!hd_slice_has_token(hd_http_request_header(req, "Upgrade"), "websocket"))
    return refuse(HD_EPROTO, why, "missing Upgrade: websocket");
  if (!hd_slice_has_token(hd_http_request_header(req, "Connection"), "upgrade"))
    return refuse(HD_EPROTO, why, "missing Connection: upgrade");
  hd_slice_t version = hd_http_request_header(req, "Sec-WebSocket-Version");
  if (!version.ptr) return refuse(HD_EPROTO, why, "missing Sec-WebSocket-Version");
  if (!hd_slice_eq(hd_slice_trim(version), "13")) return refuse(HD_EVERSION, why, "unsupported Sec-WebSocket-Version");
  hd_slice_t k = hd_slice_trim(hd_http_request_header(req, "Sec-WebSocket-Key"));
  if (!key_valid(k)) return refuse(HD_EPROTO, why, "Sec-WebSocket-Key must be the base64 of 16 bytes");
  *key = k;
  return 0;
}

/* Keys longer than a valid one (24 characters) are cut at 64; they never pass the check. */
void hd_ws_accept_key(hd_slice_t key, char out[HD_WS_ACCEPT_LEN + 1]) {
  unsigned char buf[64 + sizeof(WS_GUID)], md[SHA_DIGEST_LENGTH];
  size_t n = key.len < 64 ? key.len : 64;
  if (n) memcpy(buf, key.ptr, n);
  memcpy(buf + n, WS_GUID, sizeof(WS_GUID) - 1);
  SHA1(buf, n + sizeof(WS_GUID) - 1, md);
  EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* A new buffer holding the formatted text (without its NUL), or NULL. */
__attribute__((format(printf, 1, 2))) static hd_buf_t *buf_printf(const char *fmt, ...) {
  va_list ap, copy;
  va_start(ap, fmt);
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  hd_buf_t *b = n < 0 ? NULL : hd_buf_new((size_t)n + 1);
  if (b) b->len = (size_t)vsnprintf((char *)b->data, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return b;
}

hd_buf_t *hd_ws_handshake_response(const char *accept, const char *extensions, const char *protocol) {
  return buf_printf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n%s%s%s%s%s%s\r\n",
                    accept, extensions ? "Sec-WebSocket-Extensions: " : "", extensions ? extensions : "",
                    extensions ? "\r\n" : "", protocol ? "Sec-WebSocket-Protocol: " : "", protocol ? protocol : "",
                    protocol ? "\r\n" : "");
}
