/* Method + path routing with parameters (`/api/v4/notifications/:id/read`) and prefix routes
 * (`/socket.io/` followed by `*`). Every endpoint of the server is registered here. */
#ifndef HD_HTTP_ROUTER_H
#define HD_HTTP_ROUTER_H

#include <stddef.h>

#include "core/buf.h"
#include "net/http_request.h"

#define HD_ROUTE_MAX_PARAMS 8

typedef struct hd_http_exchange hd_http_exchange_t; /* one request/response; defined by the server */
typedef struct hd_router hd_router_t;

typedef struct {
  hd_slice_t name;  /* without the ':'; "*" for the rest of a prefix route */
  hd_slice_t value; /* slice of the request path (still percent-encoded) */
} hd_route_param_t;

typedef void (*hd_http_handler_fn)(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata);

typedef struct {
  hd_http_handler_fn handler;
  void *udata;
  hd_route_param_t params[HD_ROUTE_MAX_PARAMS];
  size_t param_count;
  char allow[128]; /* on HD_EMETHOD: the allowed methods, e.g. "GET, HEAD" */
} hd_route_match_t;

/* A new, empty router, or NULL. */
hd_router_t *hd_router_new(void);
/* Adds a route. method: "GET", "POST", ... or "*" for any; a GET route also answers HEAD.
 * pattern: literal segments, `:name` segments (one non-empty segment each), and an optional
 * final `*` matching the rest (possibly empty). Returns 0, HD_EINVAL (bad pattern), HD_EEXISTS
 * (same method and pattern), HD_ENOMEM. */
int hd_router_add(hd_router_t *r, const char *method, const char *pattern, hd_http_handler_fn fn, void *udata);
/* Finds the route for method + path. Literal segments win over `:param`, which wins over `*`.
 * Returns 0 with out filled; HD_ENOTFOUND when no pattern matches the path; HD_EMETHOD when some
 * pattern matches the path but not the method (out->allow lists the methods that would). */
int hd_router_match(const hd_router_t *r, hd_slice_t method, hd_slice_t path, hd_route_match_t *out);
/* Value of a named parameter in a match; ptr NULL when absent. */
hd_slice_t hd_route_param(const hd_route_match_t *m, const char *name);
void hd_router_free(hd_router_t *r);

#endif
