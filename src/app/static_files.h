/* Serves the web/ directory (admin pages, chat page) with ETag revalidation; file reads happen on
 * libuv's worker threads so the event loop never waits on disk. */
#ifndef HD_STATIC_FILES_H
#define HD_STATIC_FILES_H

#include "net/http_conn.h"

/* Route handler for GET/HEAD of any path not claimed by another route. */
void hd_static_files_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata);

#endif
