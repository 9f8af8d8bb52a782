/* Forwarding one HTTP request to another server (a reverse proxy of that one request), without
 * blocking the shard's loop. An ordinary request (an Engine.IO polling GET or POST) goes over a
 * connection of its own (Connection: close) and the answer becomes the exchange's response; an
 * upgrade request (WebSocket) turns the client's connection into a byte pipe to the other server,
 * which answers the handshake itself (101, or its error) and then carries the frames both ways.
 * X-Forwarded-For gets the client's address appended. Everything is bounded: requests in flight per
 * shard, response bytes, bytes buffered each way of a pipe, and connect / answer / idle timeouts. A
 * server that cannot be reached or does not answer in time gets the client a 502 / 504 JSON error. */
#ifndef HD_HTTP_PROXY_H
#define HD_HTTP_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "net/http_conn.h"
#include "net/server.h"

typedef struct hd_http_proxy hd_http_proxy_t;

typedef struct {
  uint32_t max_in_flight;       /* forwarded requests and pipes open at once on this shard */
  uint64_t connect_timeout_ms;  /* name resolution and TCP connect */
  uint64_t answer_timeout_ms;   /* request sent -> complete answer (a pipe: -> first answer bytes) */
  uint64_t idle_timeout_ms;     /* a pipe with no bytes either way is closed */
  size_t max_response;          /* bytes of a relayed answer (head and body), else 502 */
} hd_http_proxy_limits_t;

/* A forwarder for shard srv (borrowed; must outlive it) with limits (copied). It closes what it has
 * in flight when srv begins a graceful stop. NULL when out of memory or srv has no stop hook left. */
hd_http_proxy_t *hd_http_proxy_new(hd_server_t *srv, const hd_http_proxy_limits_t *limits);
/* Frees the forwarder (after srv's loop has ended: nothing is in flight then). */
void hd_http_proxy_free(hd_http_proxy_t *p);
/* Forwards ex's request (call from its handler, instead of answering) to host:port, an IP literal
 * or a name resolved off the loop, adding extra_headers ("Name: value\r\n" lines, copied). 0 when
 * taken: ex is answered later (or its connection becomes a pipe); HD_EBUSY when max_in_flight are
 * already under way, HD_EINVAL for a request that cannot be forwarded, HD_ENOMEM: the caller answers. */
int hd_http_proxy_forward(hd_http_proxy_t *p, hd_http_exchange_t *ex, const char *host, int port,
                          const char *extra_headers);
/* Requests and pipes under way (this shard's thread). */
uint32_t hd_http_proxy_in_flight(const hd_http_proxy_t *p);

#endif
