/* POST /api/v1/publish: backends (API key) and admins publish `{topic, params?, type, data, event?}`
 * to JSON-protocol subscribers and the Socket.IO room of the same name. */
#ifndef HD_PUBLISH_API_H
#define HD_PUBLISH_API_H

#include "net/http_conn.h"

/* Route handler; udata is the hd_app_t. */
void hd_publish_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata);

#endif
