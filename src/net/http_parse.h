/* Incremental HTTP/1.1 request parsing over http_parser with Herald's limits: request-line
 * length (414), header bytes and count (431), body size (413), chunked bodies, pipelining.
 * Pure: bytes in, a request or an error out. */
#ifndef HD_HTTP_PARSE_H
#define HD_HTTP_PARSE_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "net/http_request.h"

typedef struct {
  http_parser parser;
  http_parser_settings *settings;
  hd_http_limits_t limits;
  hd_http_request_t req;
  /* parser-internal progress (header field/value assembly, sizes seen so far) */
  size_t line_bytes, header_bytes;
  size_t header_cap;
  int last_cb;    /* which callback ran last: field or value */
  uint8_t line_state, line_pos; /* strict request-line check (http_parser is not built strict) */
  int error;      /* HD_E* recorded by a callback to fail the parse */
  bool started;   /* at least one byte of the current request arrived */
  bool headers_complete;
  bool complete;  /* the current request is complete and not yet reset */
} hd_http_parser_t;

/* Initialises a parser for requests under the given limits. */
void hd_http_parser_init(hd_http_parser_t *p, const hd_http_limits_t *limits);
/* Feeds bytes. Returns the number consumed (0..len). When a request completes, parsing stops right
 * after it and *out points at it (owned by the parser) until hd_http_parser_reset(); the caller
 * re-feeds the unconsumed rest afterwards (pipelining). For an upgrade request the request is
 * complete at the end of its headers and the rest belongs to the new protocol. Errors: HD_EURITOOLONG
 * (414), HD_EHDRTOOBIG (431), HD_EBODYTOOBIG (413), HD_EPROTO (400, malformed), HD_EMETHOD (501/400
 * unknown method). After an error the connection must be closed. */
ssize_t hd_http_parser_feed(hd_http_parser_t *p, const char *data, size_t len, hd_http_request_t **out);
/* Forgets the completed request, ready for the next one on the same connection. */
void hd_http_parser_reset(hd_http_parser_t *p);
/* Moves the completed request into *out (which then owns its buffers: free them with
 * hd_http_request_free) and gets ready for the next one, so a request can outlive the parsing of
 * those that follow it. */
void hd_http_parser_take(hd_http_parser_t *p, hd_http_request_t *out);
/* True once any byte of a request has arrived (header timeout applies rather than idle timeout). */
bool hd_http_parser_started(const hd_http_parser_t *p);
/* Frees what the parser owns. */
void hd_http_parser_free(hd_http_parser_t *p);
/* HTTP status that answers a parse error code (400, 413, 414, 431, 501). */
int hd_http_parse_error_status(int err);

#endif
