/* A raw Engine.IO echo server (`--test-handlers`, at /engine.io/): every message packet comes back
 * as it came, text or binary, over polling and WebSocket — the server the engine.io protocol's own
 * test suite expects. */
#ifndef HD_EIO_ECHO_H
#define HD_EIO_ECHO_H

#include "proto/eio.h"

/* A new echo server on srv with opt (copied); route it with hd_eio_server_route and free it with
 * hd_eio_server_free. NULL when out of memory. */
hd_eio_server_t *hd_eio_echo_new(hd_server_t *srv, const hd_eio_options_t *opt);

#endif
