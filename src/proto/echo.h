/* The raw WebSocket echo protocol (/ws/echo, --echo-endpoint): every message is sent back with its
 * opcode. Conformance tests and raw benchmarks use it. */
#ifndef HD_ECHO_H
#define HD_ECHO_H

#include "net/http_conn.h"

/* Route handler: upgrades the request to an echo WebSocket. */
void hd_echo_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata);

#endif
