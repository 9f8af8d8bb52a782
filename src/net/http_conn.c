/* HTTP/1.1 request handling on a connection (see http_conn.h). */
#include "net/http_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "net/server.h"
#include "net/tls.h"
#include "net/http_parse.h"

#define DRAIN_THRESHOLD (256 * 1024) /* stop reading pipelined requests above this many unsent bytes */
#define INLINE_BODY_MAX (16 * 1024)  /* bodies up to this size share the header buffer */
#define PIPELINE_MAX 32              /* requests of one connection being answered at once */
#define PIPELINE_BYTES (256 * 1024)  /* ... and their request and buffered response bytes */

typedef struct hd_http_conn hd_http_conn_t;

/* One request of a connection being answered: its own copy of the request (the parser moves on to
 * the next one), and its response while an earlier request of the connection is still unanswered
 * (responses leave in request order). */
typedef struct exchange {
  hd_http_exchange_t ex;   /* first: handlers see only this */
  hd_http_request_t req;
  struct exchange *next;
  hd_http_conn_t *h;       /* NULL once orphaned: the connection closed while it was deferred */
  hd_buf_t *head, *body;   /* the response, held until it is this exchange's turn */
  size_t bytes;            /* request + held response bytes, counted in h->queued_bytes */
  uint64_t started_ns;     /* uv_hrtime() when its request was complete (request duration histogram) */
  bool close;              /* its response ends the connection */
  bool in_handler;         /* its route handler is running: freed by dispatch, not by others */
} exchange_t;

struct hd_http_conn {
  hd_http_parser_t parser;
  hd_sbuf_t in;        /* received bytes not parsed yet (while busy or held back) */
  exchange_t *first, *last; /* requests being answered, oldest first */
  uint32_t count;      /* ... how many */
  size_t queued_bytes; /* ... their bytes */
  bool held;           /* processing paused until the write queue drains */
  bool close_after;    /* no new request: close once the queued responses are written */
  bool eof;            /* the client half-closed: close once buffered requests are answered */
  bool upgrade_waits;  /* an upgrade request waits in `in` until the earlier ones are answered */
  uint32_t handoff;    /* 1 + the shard this connection moves to with its current request, or 0 */
  uint32_t requests;   /* dispatched on this connection (0: a new one, its first request may be coming) */
};

static exchange_t *exchange_of(const hd_http_exchange_t *ex) { return (exchange_t *)ex; }

const char *hd_http_status_text(int status) {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
  }
  return "Unknown";
}

/* True when origin is named in list itself (a "*" entry does not count). */
static bool origin_listed(const char *list, hd_slice_t origin) {
  if (!list || !origin.ptr) return false;
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, ",");
    hd_slice_t item = hd_slice_trim((hd_slice_t){p, n});
    if (item.len == origin.len && item.len && !strncasecmp(item.ptr, origin.ptr, item.len)) return true;
    p += n + (p[n] == ',');
  }
  return false;
}

bool hd_origin_allowed(const char *list, hd_slice_t origin) {
  if (!list || !origin.ptr) return false;
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, ",");
    hd_slice_t item = hd_slice_trim((hd_slice_t){p, n});
    if (hd_slice_eq(item, "*") || (item.len == origin.len && item.len && !strncasecmp(item.ptr, origin.ptr, item.len)))
      return true;
    p += n + (p[n] == ',');
  }
  return false;
}

static bool is_http(const hd_conn_t *c) { return hd_conn_handler(c) == &hd_http_conn_handler; }

/* The HTTP state of c, NULL before its first bytes or once it is no longer HTTP. */
static hd_http_conn_t *http_of(hd_conn_t *c) { return is_http(c) ? hd_conn_udata(c) : NULL; }

hd_server_t *hd_http_server(const hd_http_exchange_t *ex) { return hd_conn_server(ex->conn); }

hd_slice_t hd_http_param(const hd_http_exchange_t *ex, const char *name) { return hd_route_param(&ex->match, name); }

/* "Date: ..." value, regenerated once per second (a cache per shard). */
static const char *http_date(hd_server_t *s) {
  time_t now = time(NULL);
  if (now != s->date_at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    s->date_at = now;
  }
  return s->date;
}

/* CORS response headers for an allowed Origin, appended to b. An origin named in --cors-origin is
 * reflected (with credentials when --cors-credentials); one allowed only by "*" gets
 * `Access-Control-Allow-Origin: *` and never credentials, so no site (nor `null`) reads answers
 * made with the user's cookies. */
static void cors_headers(hd_conn_t *c, const hd_http_request_t *req, hd_sbuf_t *b) {
  const hd_config_t *cfg = hd_conn_server(c)->cfg;
  hd_slice_t origin = req ? hd_http_request_header(req, "Origin") : (hd_slice_t){0};
  if (!origin.ptr || !hd_origin_allowed(cfg->cors_origin, origin)) return;
  if (!origin_listed(cfg->cors_origin, origin)) {
    hd_sbuf_puts(b, "Access-Control-Allow-Origin: *\r\n");
    return;
  }
  hd_sbuf_puts(b, "Access-Control-Allow-Origin: ");
  hd_sbuf_append(b, origin.ptr, origin.len);
  hd_sbuf_puts(b, "\r\nVary: Origin\r\n");
  if (cfg->cors_credentials) hd_sbuf_puts(b, "Access-Control-Allow-Credentials: true\r\n");
}

static void on_drain(hd_conn_t *c);

static void exchange_free(exchange_t *x) {
  hd_buf_unref(x->head);
  hd_buf_unref(x->body);
  hd_http_request_free(&x->req);
  free(x);
}

/* Removes the oldest exchange of h and frees it unless its handler is still running. */
static void exchange_pop(hd_http_conn_t *h) {
  exchange_t *x = h->first;
  h->first = x->next;
  if (!h->first) h->last = NULL;
  h->count--;
  h->queued_bytes -= x->bytes;
  if (x->in_handler) x->h = NULL; /* dispatch frees it */
  else exchange_free(x);
}

/* Writes the answered exchanges at the head of the queue, in order. False when c is ending. */
static bool flush_answers(hd_conn_t *c, hd_http_conn_t *h) {
  while (h->first && h->first->ex.responded && !h->first->ex.deferred) {
    exchange_t *x = h->first;
    /* HTTP output is bounded by DRAIN_THRESHOLD; a body is written whole, or not at all */
    int rc = x->head ? hd_conn_write_force(c, x->head) : 0;
    if (!rc && x->body) rc = hd_conn_write_force(c, x->body);
    bool close = x->close || (h->close_after && x == h->last);
    exchange_pop(h);
    if (rc) {
      hd_conn_abort(c);
      return false;
    }
    if (close) {
      h->close_after = true;
      hd_conn_end(c);
      return false;
    }
  }
  if (!h->first) hd_conn_mark_since(c);
  return true;
}

void hd_http_respond_buf(hd_http_exchange_t *ex, int status, const char *content_type, hd_buf_t *body,
                         const char *extra_headers) {
  hd_conn_t *c = ex->conn;
  exchange_t *x = exchange_of(ex);
  if (ex->responded) return;
  ex->responded = true;
  bool was_deferred = ex->deferred;
  ex->deferred = false;
  hd_http_conn_t *h = x->h;
  if (!h) { /* the client went away while we worked */
    if (!x->in_handler) exchange_free(x);
    if (was_deferred) hd_conn_release(c);
    return;
  }
  if (status >= 100 && status < 600) hd_conn_server(c)->metrics.http_requests[status]++;
  if (!ex->long_poll && x->started_ns)
    hd_histogram_observe(&hd_conn_server(c)->metrics.http_duration, (uv_hrtime() - x->started_ns) / 1000);
  hd_http_request_t *req = ex->req;
  if (hd_conn_server(c)->stopping || hd_conn_is_over_limit(c)) h->close_after = true;
  bool keep = req && req->keep_alive && !req->upgrade && !(h->close_after && x == h->last);
  x->close = !keep;
  size_t body_len = body ? body->len : 0;
  hd_sbuf_t head = {0};
  hd_sbuf_printf(&head, "HTTP/1.1 %d %s\r\nServer: herald\r\nDate: %s\r\n", status, hd_http_status_text(status),
                 http_date(hd_conn_server(c)));
  if (content_type) hd_sbuf_printf(&head, "Content-Type: %s\r\n", content_type);
  if (status != 304 && status != 204 && status >= 200) hd_sbuf_printf(&head, "Content-Length: %zu\r\n", body_len);
  hd_sbuf_puts(&head, keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  if (hd_conn_server(c)->peer_count > 1) hd_sbuf_printf(&head, "X-Herald-Shard: %u\r\n", hd_conn_server(c)->shard);
  cors_headers(c, req, &head);
  if (extra_headers) hd_sbuf_puts(&head, extra_headers);
  hd_sbuf_puts(&head, "\r\n");
  bool send_body = body && body_len && !ex->head_only && status != 304 && status != 204;
  if (send_body && body_len <= INLINE_BODY_MAX) hd_sbuf_append(&head, body->data, body_len);
  x->head = head.ptr ? hd_buf_from(head.ptr, head.len) : NULL;
  hd_sbuf_free(&head);
  if (!x->head) {
    hd_conn_abort(c);
  } else {
    if (send_body && body_len > INLINE_BODY_MAX) x->body = hd_buf_ref(body);
    size_t out = x->head->len + (x->body ? x->body->len : 0);
    x->bytes += out;
    h->queued_bytes += out;
    if (x == h->first && flush_answers(c, h) && was_deferred) on_drain(c); /* resume what was held back */
  }
  if (was_deferred) hd_conn_release(c);
}

void hd_http_respond(hd_http_exchange_t *ex, int status, const char *content_type, const void *body, size_t len,
                     const char *extra_headers) {
  hd_buf_t *b = body ? hd_buf_from(body, len) : NULL;
  hd_http_respond_buf(ex, status, content_type, b, extra_headers);
  hd_buf_unref(b);
}

void hd_http_respond_json(hd_http_exchange_t *ex, int status, const char *json) {
  hd_http_respond(ex, status, "application/json; charset=utf-8", json, strlen(json), NULL);
}

void hd_http_respond_error(hd_http_exchange_t *ex, int status, const char *message) {
  hd_sbuf_t b = {0};
  hd_sbuf_printf(&b, "{\"code\":%d,\"message\":\"", status);
  hd_sbuf_json_escape(&b, message, strlen(message));
  hd_sbuf_puts(&b, "\"}");
  hd_http_respond_json(ex, status, b.ptr ? b.ptr : "{}");
  hd_sbuf_free(&b);
}

bool hd_http_exchange_alive(const hd_http_exchange_t *ex) {
  return exchange_of(ex)->h && !hd_conn_is_closing(ex->conn);
}

void hd_http_defer(hd_http_exchange_t *ex) {
  if (ex->deferred || ex->responded) return;
  ex->deferred = true;
  hd_conn_retain(ex->conn);
}

/* Answers a CORS preflight; returns true when req was one. */
static bool preflight(hd_http_exchange_t *ex, const hd_http_request_t *req) {
  hd_slice_t origin = hd_http_request_header(req, "Origin");
  hd_slice_t method = hd_http_request_header(req, "Access-Control-Request-Method");
  if (req->method != HTTP_OPTIONS || !origin.ptr || !method.ptr) return false;
  if (!hd_origin_allowed(hd_conn_server(ex->conn)->cfg->cors_origin, origin)) {
    hd_http_respond_error(ex, 403, "origin not allowed by CORS");
    return true;
  }
  hd_slice_t want = hd_http_request_header(req, "Access-Control-Request-Headers");
  hd_sbuf_t h = {0};
  hd_sbuf_puts(&h, "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n"
                   "Access-Control-Max-Age: 600\r\n");
  if (want.ptr && want.len < 1024) {
    hd_sbuf_puts(&h, "Access-Control-Allow-Headers: ");
    hd_sbuf_append(&h, want.ptr, want.len);
    hd_sbuf_puts(&h, "\r\n");
  }
  hd_http_respond(ex, 204, NULL, NULL, 0, h.ptr);
  hd_sbuf_free(&h);
  return true;
}

/* Routes one request. */
static void route(hd_conn_t *c, hd_http_exchange_t *ex, hd_http_request_t *req) {
  bool websocket = req->upgrade && hd_http_request_header(req, "Sec-WebSocket-Key").ptr;
  /* over the limit /health still answers (then the conn closes): operators and load balancers see the node */
  bool health = (req->method == HTTP_GET || req->method == HTTP_HEAD) && hd_slice_eq(req->path, "/health");
  if ((hd_conn_is_over_limit(c) && !health && !websocket) || (hd_conn_server(c)->stopping && !websocket)) { /* WebSocket routes refuse in their own terms */
    hd_http_respond_error(ex, 503, hd_conn_is_over_limit(c) ? "server full: too many connections" : "server shutting down");
    return;
  }
  if (preflight(ex, req)) return;
  if (req->method == HTTP_OPTIONS && hd_slice_eq(req->target, "*")) { /* the server as a whole */
    hd_http_respond(ex, 204, NULL, NULL, 0, "Allow: GET, HEAD, POST, OPTIONS\r\n");
    return;
  }
  int rc = hd_router_match(hd_conn_server(c)->router, req->method_name, req->path, &ex->match);
  if (rc == HD_ENOTFOUND) {
    hd_http_respond_error(ex, 404, "no such resource");
  } else if (rc == HD_EMETHOD) {
    char allow[160];
    snprintf(allow, sizeof allow, "Allow: %s\r\n", ex->match.allow);
    if (req->method == HTTP_OPTIONS) {
      hd_http_respond(ex, 204, NULL, NULL, 0, allow);
    } else {
      hd_sbuf_t b = {0};
      hd_sbuf_printf(&b, "{\"code\":405,\"message\":\"method not allowed (allowed: %s)\"}", ex->match.allow);
      hd_http_respond(ex, 405, "application/json; charset=utf-8", b.ptr, b.len, allow);
      hd_sbuf_free(&b);
    }
  } else if (rc < 0) {
    hd_http_respond_error(ex, 500, "routing failed");
  } else {
    ex->match.handler(ex, req, ex->match.udata);
  }
}

/* A new exchange at the end of h's queue (its request not filled in yet); NULL when out of memory. */
static exchange_t *exchange_push(hd_conn_t *c, hd_http_conn_t *h) {
  exchange_t *x = calloc(1, sizeof(*x));
  if (!x) return NULL;
  x->ex.conn = c;
  x->h = h;
  x->started_ns = uv_hrtime();
  if (h->last) h->last->next = x;
  else h->first = x;
  h->last = x;
  h->count++;
  return x;
}

/* Takes the request the parser completed into a new exchange and routes it. */
static void dispatch(hd_conn_t *c, hd_http_conn_t *h) {
  exchange_t *x = exchange_push(c, h);
  if (!x) {
    hd_conn_abort(c);
    return;
  }
  hd_http_parser_take(&h->parser, &x->req);
  x->ex.req = &x->req;
  x->ex.head_only = x->req.method == HTTP_HEAD;
  x->bytes = x->req.head.len + x->req.body.len;
  h->queued_bytes += x->bytes;
  h->requests++;
  if (!x->req.keep_alive) h->close_after = true; /* the client's last request */
  x->in_handler = true;
  route(c, &x->ex, &x->req);
  x->in_handler = false;
  if (!x->h && !x->ex.deferred) exchange_free(x); /* answered and written, or its connection is gone */
}

/* True when h may start on another request now. */
static bool may_take_request(const hd_http_conn_t *h) {
  if (!h->count) return true;
  return !h->held && !h->handoff && !h->close_after && !h->upgrade_waits && h->count < PIPELINE_MAX &&
         h->queued_bytes < PIPELINE_BYTES;
}

/* Parses and answers requests from data; returns bytes consumed. Requests are answered in order;
 * while earlier ones are deferred, later ones are parsed and routed already (pipelining), up to
 * PIPELINE_MAX requests and PIPELINE_BYTES. Stops at a held connection, a hand-over, an upgrade (the
 * rest is handed to the new protocol; one that arrives behind unanswered requests waits in `in`
 * until they are answered) or an error (the conn is ending). */
static size_t process(hd_conn_t *c, char *data, size_t len) {
  size_t off = 0;
  while (off < len && is_http(c) && !hd_conn_is_ending(c)) {
    hd_http_conn_t *h = hd_conn_udata(c);
    if (h->held || !may_take_request(h)) break;
    if (hd_conn_pending_bytes(c) > DRAIN_THRESHOLD) {
      h->held = true;
      break;
    }
    if (!hd_http_parser_started(&h->parser)) hd_conn_mark_since(c);
    hd_http_request_t *req = NULL;
    ssize_t n = hd_http_parser_feed(&h->parser, data + off, len - off, &req);
    if (n < 0) {
      int status = hd_http_parse_error_status((int)n);
      HD_DEBUG("http", "bad request", "status=%d err=%s", status, hd_errname((int)n));
      exchange_t *x = exchange_push(c, h);
      h->close_after = true;
      if (!x) hd_conn_abort(c);
      else hd_http_respond_error(&x->ex, status, status == 501 ? "method not implemented" : hd_strerror((int)n));
      return len;
    }
    off += (size_t)n;
    if (!req) break; /* the parser keeps partial requests itself */
    if (req->upgrade && h->count) { /* waits, as bytes again, until the connection is its alone */
      h->upgrade_waits = true;
      int rc = hd_http_request_serialize(req, &h->in);
      hd_http_parser_reset(&h->parser);
      if (rc) hd_conn_abort(c);
      break;
    }
    dispatch(c, h);
    if (!is_http(c)) { /* upgraded: the rest is the new protocol's data */
      if (off < len && !hd_conn_is_closing(c)) hd_conn_handler(c)->on_data(c, data + off, len - off);
      return len;
    }
  }
  return off;
}

/* --- handing a connection to another shard ------------------------------------------------ */

typedef struct {
  hd_server_t *server; /* the receiving shard */
  int fd;
  hd_tls_t *tls;       /* the connection's TLS session (it moves with the socket), or NULL */
  hd_sbuf_t bytes;     /* the request being handed over, then whatever followed it */
} handoff_t;

/* On the receiving shard: the socket (and its TLS session) becomes one of its connections, which
 * reads the bytes again, then what the session still holds. */
static void run_adopt(void *arg, bool cancelled) {
  handoff_t *t = arg;
  hd_conn_t *c = NULL;
  if (cancelled || hd_conn_adopt(t->server, t->fd, &hd_http_conn_handler, NULL, &c)) {
    close(t->fd);
    hd_tls_free(t->tls);
  } else {
    if (t->tls) hd_conn_attach_tls(c, t->tls);
    hd_conn_retain(c);
    if (t->bytes.len) hd_http_conn_handler.on_data(c, t->bytes.ptr, t->bytes.len);
    if (!hd_conn_is_closing(c)) hd_conn_tls_pump(c);
    hd_conn_release(c);
  }
  hd_sbuf_free(&t->bytes);
  free(t);
}

/* Moves c, its last request and its unread input to the shard named by h->handoff, once the
 * requests before it are answered and nothing it wrote is still queued. */
static void try_handoff(hd_conn_t *c, hd_http_conn_t *h) {
  if (hd_conn_pending_bytes(c) || h->count != 1) return; /* on_drain comes back here */
  hd_server_t *s = hd_conn_server(c);
  handoff_t *t = calloc(1, sizeof(*t));
  if (!t || hd_http_request_serialize(&h->last->req, &t->bytes) || hd_sbuf_append(&t->bytes, h->in.ptr, h->in.len)) {
    if (t) hd_sbuf_free(&t->bytes);
    free(t);
    hd_conn_abort(c);
    return;
  }
  const hd_server_peer_t *to = &s->peers[h->handoff - 1];
  t->server = to->server;
  HD_DEBUG("http", "connection handed to the shard of its request", "from=%u to=%u tls=%d", s->shard, h->handoff - 1,
           hd_conn_is_tls(c));
  t->tls = hd_conn_take_tls(c);
  t->fd = hd_conn_take_fd(c); /* c is gone from here on */
  if (t->fd < 0 || hd_mailbox_post(to->mailbox, run_adopt, t)) {
    if (t->fd >= 0) close(t->fd);
    hd_tls_free(t->tls);
    hd_sbuf_free(&t->bytes);
    free(t);
  }
}

int hd_http_handoff(hd_http_exchange_t *ex, uint32_t shard) {
  hd_server_t *s = hd_http_server(ex);
  hd_http_conn_t *h = exchange_of(ex)->h;
  if (!h || !s->peers || shard >= s->peer_count || shard == s->shard || ex->deferred || ex->responded || !ex->req)
    return HD_EINVAL;
  h->handoff = shard + 1;
  return 0;
}

/* Keeps the unconsumed tail of data for later. */
static void keep_rest(hd_conn_t *c, const char *data, size_t len, size_t used) {
  if (hd_conn_is_closing(c) || !is_http(c) || used >= len) return;
  hd_http_conn_t *h = hd_conn_udata(c);
  if (hd_sbuf_append(&h->in, data + used, len - used)) hd_conn_abort(c);
  else hd_conn_set_reading(c, false); /* resumed when the current request is answered */
}

static void on_drain(hd_conn_t *c);

/* The HTTP state of a connection, created with its first bytes; NULL when out of memory (c aborted). */
static hd_http_conn_t *http_state(hd_conn_t *c) {
  hd_http_conn_t *h = hd_conn_udata(c);
  if (h) return h;
  if (!(h = calloc(1, sizeof(*h)))) {
    hd_conn_abort(c);
    return NULL;
  }
  hd_conn_set_handler(c, &hd_http_conn_handler, h);
  const hd_config_t *cfg = hd_conn_server(c)->cfg;
  hd_http_limits_t limits = {(size_t)cfg->max_request_line, (size_t)cfg->max_header_size,
                             (size_t)cfg->max_header_count, (size_t)cfg->max_body_size};
  hd_http_parser_init(&h->parser, &limits);
  return h;
}

static void on_data(hd_conn_t *c, char *data, size_t len) {
  hd_http_conn_t *h = http_state(c);
  if (!h) return;
  if (h->in.len) { /* older bytes first */
    if (hd_sbuf_append(&h->in, data, len)) {
      hd_conn_abort(c);
      return;
    }
    on_drain(c);
    return;
  }
  size_t used = process(c, data, len);
  keep_rest(c, data, len, used);
  if (!hd_conn_is_closing(c) && is_http(c) && h->handoff) try_handoff(c, h);
}

/* Continues with buffered input once the connection may take requests again. */
static void on_drain(hd_conn_t *c) {
  hd_http_conn_t *h = http_of(c);
  if (h && h->handoff && !hd_conn_is_ending(c)) return try_handoff(c, h);
  if (!h || hd_conn_is_ending(c)) return;
  if (h->held && hd_conn_pending_bytes(c) > DRAIN_THRESHOLD) return;
  h->held = false;
  if (h->upgrade_waits) {
    if (h->count) return;
    h->upgrade_waits = false;
  }
  if (!may_take_request(h)) return;
  if (h->in.len) {
    hd_sbuf_t in = h->in; /* process() may append to h->in; work on the taken buffer */
    h->in = (hd_sbuf_t){0};
    size_t used = process(c, in.ptr, in.len);
    keep_rest(c, in.ptr, in.len, used);
    hd_sbuf_free(&in);
    if (!hd_conn_is_closing(c) && is_http(c) && h->handoff) return try_handoff(c, h);
  }
  if (hd_conn_is_closing(c) || !is_http(c)) return;
  h = hd_conn_udata(c);
  if (h->count || h->held || h->in.len) return;
  if (h->eof) hd_conn_end(c);
  else hd_conn_set_reading(c, true);
}

/* The request (header) and keep-alive timeouts. */
static void on_sweep(hd_conn_t *c, uint64_t now_ms) {
  hd_http_conn_t *h = hd_conn_udata(c);
  const hd_config_t *cfg = hd_conn_server(c)->cfg;
  if (hd_conn_is_ending(c)) return;
  bool started = h && hd_http_parser_started(&h->parser);
  if (h && h->count) return;
  if (started && now_ms - hd_conn_since_ms(c) > (uint64_t)cfg->header_timeout) {
    exchange_t *x = exchange_push(c, h);
    h->close_after = true;
    if (x) hd_http_respond_error(&x->ex, 408, "request not received in time");
    else hd_conn_abort(c);
  } else if (!started && hd_conn_pending_bytes(c) == 0 && now_ms - hd_conn_since_ms(c) > (uint64_t)cfg->keepalive_timeout) {
    hd_conn_abort(c);
  }
}

/* The client half-closed: answer what is being answered, then close. A read error closes now. */
static void on_eof(hd_conn_t *c, int err) {
  hd_http_conn_t *h = hd_conn_udata(c);
  if (err) {
    hd_conn_abort(c);
    return;
  }
  hd_conn_set_reading(c, false);
  if (h && (h->count || h->in.len)) h->eof = true;
  else hd_conn_end(c);
}

/* Stops an idle connection at shutdown; busy ones, and new ones whose first bytes have arrived but
 * were not read yet (accepted just before the stop), close after their responses. */
static void on_shutdown(hd_conn_t *c) {
  hd_http_conn_t *h = hd_conn_udata(c);
  if (!h && hd_conn_unread_bytes(c) > 0 && !(h = http_state(c))) return;
  if (!h || (!h->count && !hd_http_parser_started(&h->parser) && h->requests)) hd_conn_end(c);
  else h->close_after = true;
}

void hd_http_conn_free(hd_conn_t *c) {
  hd_http_conn_t *h = http_of(c);
  if (!h) return;
  hd_conn_set_handler(c, &hd_http_conn_handler, NULL);
  for (exchange_t *x = h->first, *next; x; x = next) {
    next = x->next;
    x->h = NULL; /* orphaned: a deferred one is freed by its responder, a running one by dispatch */
    x->next = NULL;
    if (!x->ex.deferred && !x->in_handler) exchange_free(x);
  }
  hd_http_parser_free(&h->parser);
  hd_sbuf_free(&h->in);
  free(h);
}

static void on_open(hd_conn_t *c) { hd_conn_server(c)->metrics.conns_http++; }

static void on_free(hd_conn_t *c) {
  hd_conn_server(c)->metrics.conns_http--;
  hd_http_conn_free(c);
}

const hd_conn_handler_t hd_http_conn_handler = {
    .name = "http",
    .on_open = on_open,
    .on_data = on_data,
    .on_eof = on_eof,
    .on_drain = on_drain,
    .on_sweep = on_sweep,
    .on_shutdown = on_shutdown,
    .on_free = on_free,
};
