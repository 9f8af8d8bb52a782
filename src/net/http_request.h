/* A parsed HTTP/1.1 request and the limits that bound it. The request owns a copy of its
 * request-target and headers (`head`), so slices stay valid until the request is reset. */
#ifndef HD_HTTP_REQUEST_H
#define HD_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

typedef struct {
  size_t max_request_line; /* method + target + version, else HD_EURITOOLONG (414) */
  size_t max_header_size;  /* all header names + values, else HD_EHDRTOOBIG (431) */
  size_t max_header_count; /* else HD_EHDRTOOBIG (431) */
  size_t max_body_size;    /* decoded body bytes, else HD_EBODYTOOBIG (413) */
} hd_http_limits_t;

typedef struct {
  hd_slice_t name;
  hd_slice_t value;
} hd_http_header_t;

typedef struct {
  int method;              /* enum http_method of http_parser (HTTP_GET, ...) */
  hd_slice_t method_name;  /* "GET" */
  hd_slice_t target;       /* raw request-target, e.g. "/a%20b?x=1" */
  hd_slice_t path;         /* target before '?', still percent-encoded */
  hd_slice_t query;        /* target after '?', without it; empty when none */
  unsigned short http_major, http_minor;
  hd_http_header_t *headers; /* header_count entries, in arrival order, slices into head */
  size_t header_count;
  hd_sbuf_t body;          /* de-chunked body */
  bool keep_alive;         /* the connection may serve another request after this one */
  bool upgrade;            /* Connection: upgrade with an Upgrade header (or CONNECT) */
  hd_sbuf_t head;          /* owned storage behind target, path, query and headers */
} hd_http_request_t;

/* First header with this name (case-insensitive); empty slice with ptr NULL when absent. */
hd_slice_t hd_http_request_header(const hd_http_request_t *req, const char *name);
/* Value of query parameter `name`, percent-decoded into out (NUL-terminated, truncated to outlen);
 * returns its length, or HD_ENOTFOUND. */
int hd_http_request_query(const hd_http_request_t *req, const char *name, char *out, size_t outlen);

/* Frees what a request taken from its parser (hd_http_parser_take) owns. */
void hd_http_request_free(hd_http_request_t *req);

/* Appends req as HTTP/1.1 bytes that parse back to the same request (method, target, version,
 * headers in order, the de-chunked body with its Content-Length): for handing a request to another
 * shard. 0 or HD_ENOMEM. */
int hd_http_request_serialize(const hd_http_request_t *req, hd_sbuf_t *out);

#endif
