/* Serving HTTP/1.1 on a connection: feeding the parser, CORS, routing to handlers, responses with
 * keep-alive and pipelining (later requests are routed while earlier ones wait for a deferred answer;
 * answers leave in request order), request and idle timeouts. */
#ifndef HD_HTTP_CONN_H
#define HD_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "net/conn.h"
#include "net/http_router.h"

/* One request being answered. Handlers answer with hd_http_respond*() before returning, or call
 * hd_http_defer() and answer later from any callback on the same loop. */
struct hd_http_exchange {
  hd_conn_t *conn;
  hd_http_request_t *req;
  hd_route_match_t match;
  bool responded, deferred, head_only;
  bool long_poll; /* held until there is something to send (Engine.IO polling GET): left out of the
                   * request duration histogram, whose figures it would only stretch */
};

/* The HTTP kind of connection: the handler accepted connections start with (hd_server_set_accept).
 * Its per-conn state is allocated at the first bytes received. */
extern const hd_conn_handler_t hd_http_conn_handler;
/* Stops serving HTTP on c (before an upgrade switches its handler); a deferred exchange stays
 * valid. Does not touch the metrics (the upgrading layer moves c from conns_http itself). */
void hd_http_conn_free(hd_conn_t *c);

/* Hands the exchange's connection, with this request and whatever the client sent after it, to
 * shard `shard` of the node, which serves the request as if it had arrived there (an Engine.IO
 * request for a session that lives on that shard), once the requests before it are answered. Call
 * from the handler instead of answering.
 * 0, or HD_EINVAL (no such other shard, or the exchange is already answered or deferred). */
int hd_http_handoff(hd_http_exchange_t *ex, uint32_t shard);
/* Marks the exchange as answered later (from any callback on the same loop). Requests behind it on
 * the connection are routed meanwhile; their answers wait until this one is sent. */
void hd_http_defer(hd_http_exchange_t *ex);
/* False once the client of a deferred exchange has gone away (the answer would be dropped). */
bool hd_http_exchange_alive(const hd_http_exchange_t *ex);
/* Sends a complete response. extra_headers: "Name: value\r\n" lines or NULL. body is copied. */
void hd_http_respond(hd_http_exchange_t *ex, int status, const char *content_type, const void *body, size_t len,
                     const char *extra_headers);
/* Same, taking a reference to a prepared body buffer instead of copying it (body may be NULL). */
void hd_http_respond_buf(hd_http_exchange_t *ex, int status, const char *content_type, hd_buf_t *body,
                         const char *extra_headers);
/* A JSON response from a NUL-terminated JSON text. */
void hd_http_respond_json(hd_http_exchange_t *ex, int status, const char *json);
/* The error body `{"code": status, "message": message}` with that status. */
void hd_http_respond_error(hd_http_exchange_t *ex, int status, const char *message);
/* A route parameter of the matched route (`:id`); ptr NULL when absent. */
hd_slice_t hd_http_param(const hd_http_exchange_t *ex, const char *name);
/* The shard serving this exchange. */
hd_server_t *hd_http_server(const hd_http_exchange_t *ex);
/* Reason phrase of a status code ("Not Found"). */
const char *hd_http_status_text(int status);
/* True when origin is in a comma-separated allow list ("*" allows any). Empty list allows none. */
bool hd_origin_allowed(const char *list, hd_slice_t origin);

#endif
