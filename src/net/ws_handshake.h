/* The server side of the RFC 6455 opening handshake: request checks and the 101 response. */
#ifndef HD_WS_HANDSHAKE_H
#define HD_WS_HANDSHAKE_H

#include "core/buf.h"
#include "net/http_request.h"

#define HD_WS_ACCEPT_LEN 28

/* Checks an upgrade request (RFC 6455 4.2.1): GET, HTTP/1.1 or later, Upgrade: websocket and
 * Connection: upgrade as case-insensitive tokens, Sec-WebSocket-Key the base64 of 16 bytes,
 * Sec-WebSocket-Version 13. Returns 0 with the key in *key; HD_EMETHOD (answer 405), HD_EVERSION
 * (answer 426 with Sec-WebSocket-Version: 13) or HD_EPROTO (answer 400) with a reason in *why. */
int hd_ws_handshake_check(const hd_http_request_t *req, hd_slice_t *key, const char **why);
/* Writes the Sec-WebSocket-Accept value for key (28 chars + NUL) into out. */
void hd_ws_accept_key(hd_slice_t key, char out[HD_WS_ACCEPT_LEN + 1]);
/* The complete 101 Switching Protocols response, with Sec-WebSocket-Extensions when extensions is
 * non-NULL and Sec-WebSocket-Protocol when protocol is non-NULL; refs 1, or NULL. */
hd_buf_t *hd_ws_handshake_response(const char *accept, const char *extensions, const char *protocol);

#endif
