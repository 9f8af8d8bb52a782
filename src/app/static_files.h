/* Serves the web/ directory (admin pages, chat page) with ETag revalidation; file reads happen on
 * libuv's worker threads so the event loop never waits on disk. */
#ifndef HD_STATIC_FILES_H
#define HD_STATIC_FILES_H

#include "net/http_conn.h"

/* Another directory to serve: files under root, the first `strip` characters of the request path
 * dropped (e.g. "/socket.io" so /socket.io/socket.io.js maps to root/socket.io.js). */
typedef struct {
  const char *root; /* a realpath */
  size_t strip;
  const char *security_headers; /* CSP and friends for these files ("...\r\n" lines), NULL: the pages' */
} hd_static_root_t;

/* Route handler for GET/HEAD: files under the web root (udata NULL) or under a hd_static_root_t. */
void hd_static_files_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata);

#endif
