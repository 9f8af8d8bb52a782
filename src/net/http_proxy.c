/* Forwarding one HTTP request to another server (see http_proxy.h). One `fwd_t` per forwarded
 * request: it owns the connection to the other server ("up"), a timer, and, for an upgrade, the
 * client's connection as a pipe (it is the client conn's handler state). It is freed once every
 * libuv callback that holds it has run (refs). */
#include "net/http_proxy.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/log.h"
#include "net/conn.h"

#define PIPE_HIGH (256 * 1024) /* at most this many bytes buffered one way of a pipe (half the backpressure limit) */
#define READ_SIZE 16384

typedef enum { RESOLVING, CONNECTING, WAITING, PIPING, DONE } phase_t;

struct hd_http_proxy {
  hd_server_t *srv;
  hd_http_proxy_limits_t limits;
  struct fwd *list; /* under way */
  uint32_t in_flight;
  int protocol;     /* metrics id of the pipes ("forwarded"), or -1 */
  size_t high;      /* bytes buffered one way of a pipe before reading the other side pauses */
};

typedef struct fwd {
  hd_http_proxy_t *p;
  struct fwd *prev, *next;
  phase_t phase;
  uint32_t refs;          /* the timer, the up handle, a name resolution, writes, a shutdown, the client pipe */
  bool pipe;              /* an upgrade: the client conn is a byte pipe to up */
  bool answered;          /* up sent its first bytes */
  bool up_paused;         /* reading up stops while the client has too much queued */
  bool client_eof;        /* the pipe's client half-closed: it is not read again */
  bool resolving;         /* gai is under way (its callback still to run) */
  bool unreachable;       /* connecting failed at once: the timer (due now) reports it */
  hd_conn_t *client;      /* a pipe's client, until its on_free */
  hd_http_exchange_t *ex; /* not a pipe: the deferred exchange, until answered */
  char peer[300];         /* host:port, for logs */
  int port;
  uv_getaddrinfo_t gai;
  uv_connect_t connect;
  uv_tcp_t up;
  uv_timer_t timer;
  hd_sbuf_t out;          /* bytes for up before it is connected */
  size_t up_pending;      /* bytes handed to uv_write and not written yet */
  uint64_t last_io_ms;
  /* the answer to an ordinary request */
  http_parser parser;
  size_t answer_len;
  bool complete, in_value;
  hd_sbuf_t name, value, headers, body;
  char content_type[128];
  char buf[READ_SIZE];
} fwd_t;

typedef struct {
  uv_write_t req;
  fwd_t *f;
  size_t len;
  char data[];
} write_t;

static const hd_conn_handler_t pipe_handler;

/* --- life ----------------------------------------------------------------------------------- */

static void release(fwd_t *f) {
  if (--f->refs) return;
  hd_sbuf_free(&f->out);
  hd_sbuf_free(&f->name);
  hd_sbuf_free(&f->value);
  hd_sbuf_free(&f->headers);
  hd_sbuf_free(&f->body);
  free(f);
}

static void on_handle_closed(uv_handle_t *h) { release(h->data); }

/* The client's answer when the other server gave none: JSON `{code, message}` with status. */
static void answer_error(fwd_t *f, int status, const char *message) {
  if (f->ex) {
    hd_http_exchange_t *ex = f->ex;
    f->ex = NULL;
    hd_http_respond_error(ex, status, message);
    return;
  }
  if (!f->client) return;
  hd_sbuf_t b = {0}, body = {0};
  hd_sbuf_printf(&body, "{\"code\":%d,\"message\":\"", status);
  hd_sbuf_json_escape(&body, message, strlen(message));
  hd_sbuf_puts(&body, "\"}");
  hd_sbuf_printf(&b, "HTTP/1.1 %d %s\r\nServer: herald\r\nContent-Type: application/json; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 status, hd_http_status_text(status), body.len);
  hd_sbuf_append(&b, body.ptr, body.len);
  hd_buf_t *out = b.ptr ? hd_buf_from(b.ptr, b.len) : NULL;
  if (out) hd_conn_write_final(f->client, out);
  else hd_conn_abort(f->client);
  hd_buf_unref(out);
  hd_sbuf_free(&b);
  hd_sbuf_free(&body);
}

/* Ends the forward: the client gets status/message unless answered (status 0: end quietly), the
 * handles close, f goes when the last callback holding it has run. */
static void finish(fwd_t *f, int status, const char *message) {
  if (f->phase == DONE) return;
  phase_t was = f->phase;
  f->phase = DONE;
  hd_http_proxy_t *p = f->p;
  if (f->prev) f->prev->next = f->next;
  else p->list = f->next;
  if (f->next) f->next->prev = f->prev;
  p->in_flight--;
  if (status && !f->answered) {
    HD_DEBUG("cluster", "forwarded request failed", "to=%s status=%d err=\"%s\"", f->peer, status, message);
    answer_error(f, status, message);
  } else if (f->ex) { /* answered in part only: the relayed answer is incomplete */
    answer_error(f, 502, "the owning node's answer was incomplete");
  } else if (f->client) {
    hd_conn_end(f->client); /* what up sent is queued: it goes out, then the client closes */
  }
  if (f->resolving) uv_cancel((uv_req_t *)&f->gai); /* its callback still runs, then releases */
  uv_timer_stop(&f->timer);
  uv_close((uv_handle_t *)&f->timer, on_handle_closed);
  if (was >= CONNECTING) uv_close((uv_handle_t *)&f->up, on_handle_closed);
}

static void on_timer(uv_timer_t *t) {
  fwd_t *f = t->data;
  hd_http_proxy_t *p = f->p;
  uint64_t now = uv_now(p->srv->loop);
  if (f->unreachable) return finish(f, 502, "the owning node cannot be reached");
  if (f->phase == RESOLVING || f->phase == CONNECTING)
    return finish(f, 502, "the owning node cannot be reached (connect timed out)");
  if (f->phase == WAITING) return finish(f, 504, "the owning node did not answer in time");
  if (f->phase == PIPING) {
    if (now - f->last_io_ms >= p->limits.idle_timeout_ms) return finish(f, 0, NULL);
    uv_timer_start(&f->timer, on_timer, f->last_io_ms + p->limits.idle_timeout_ms - now, 0);
  }
}

/* A failure while the request is being taken (inside the client's handler): reported from the
 * timer, so the client's connection is not answered from within its own dispatch. */
static void fail_soon(fwd_t *f) {
  f->unreachable = true;
  uv_timer_start(&f->timer, on_timer, 0, 0);
}

/* --- writing to up --------------------------------------------------------------------------- */

static void pipe_resume_client(fwd_t *f) {
  if (f->client && !f->client_eof && f->up_pending + f->out.len < f->p->high / 2) hd_conn_set_reading(f->client, true);
}

static void on_up_written(uv_write_t *req, int status) {
  write_t *w = (write_t *)req;
  fwd_t *f = w->f;
  f->up_pending -= w->len;
  free(w);
  if (status < 0) finish(f, 502, "the owning node closed the connection");
  else if (f->phase != DONE && f->pipe) pipe_resume_client(f);
  release(f);
}

static int up_write(fwd_t *f, const char *data, size_t len) {
  write_t *w = malloc(sizeof(*w) + len);
  if (!w) return HD_ENOMEM;
  w->f = f;
  w->len = len;
  memcpy(w->data, data, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&f->up, &b, 1, on_up_written)) {
    free(w);
    return HD_EIO;
  }
  f->refs++;
  f->up_pending += len;
  return 0;
}

/* --- the answer of an ordinary request -------------------------------------------------------- */

/* Hop-by-hop headers and those the exchange's own response writes. */
static bool dropped_answer_header(const char *name) {
  static const char *names[] = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-type",
                                "date", "server", "vary", "x-herald-shard", "proxy-connection", "trailer", "upgrade"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcasecmp(name, names[i])) return true;
  return !strncasecmp(name, "access-control-", 15);
}

static void commit_header(fwd_t *f) {
  if (!f->name.len) return;
  hd_sbuf_append(&f->name, "", 1), hd_sbuf_append(&f->value, "", 1);
  if (!strcasecmp(f->name.ptr, "content-type")) snprintf(f->content_type, sizeof f->content_type, "%s", f->value.ptr);
  else if (!dropped_answer_header(f->name.ptr)) hd_sbuf_printf(&f->headers, "%s: %s\r\n", f->name.ptr, f->value.ptr);
  f->name.len = f->value.len = 0;
  f->in_value = false;
}

static int on_header_field(http_parser *hp, const char *at, size_t len) {
  fwd_t *f = hp->data;
  if (f->in_value) commit_header(f);
  return hd_sbuf_append(&f->name, at, len);
}

static int on_header_value(http_parser *hp, const char *at, size_t len) {
  fwd_t *f = hp->data;
  f->in_value = true;
  return hd_sbuf_append(&f->value, at, len);
}

static int on_headers_complete(http_parser *hp) {
  commit_header(hp->data);
  return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len) { return hd_sbuf_append(&((fwd_t *)hp->data)->body, at, len); }

static int on_message_complete(http_parser *hp) {
  ((fwd_t *)hp->data)->complete = true;
  return 0;
}

static const http_parser_settings answer_settings = {.on_header_field = on_header_field,
                                                     .on_header_value = on_header_value,
                                                     .on_headers_complete = on_headers_complete,
                                                     .on_body = on_body,
                                                     .on_message_complete = on_message_complete};

/* Relays the parsed answer as the exchange's response. */
static void relay_answer(fwd_t *f) {
  hd_http_exchange_t *ex = f->ex;
  f->ex = NULL;
  int status = (int)f->parser.status_code;
  if (status < 200 || status > 599) {
    hd_http_respond_error(ex, 502, "the owning node's answer was not understood");
    return;
  }
  hd_http_respond(ex, status, *f->content_type ? f->content_type : NULL, f->body.ptr, f->body.len, f->headers.ptr);
}

/* Bytes of the answer (len 0: the other server closed). */
static void answer_bytes(fwd_t *f, const char *data, size_t len) {
  if ((f->answer_len += len) > f->p->limits.max_response) return finish(f, 502, "the owning node's answer is too large");
  size_t n = http_parser_execute(&f->parser, &answer_settings, data, len);
  if (f->complete) {
    relay_answer(f);
    return finish(f, 0, NULL);
  }
  if (n != len || HTTP_PARSER_ERRNO(&f->parser) != HPE_OK)
    return finish(f, 502, "the owning node's answer was not understood");
  if (!len) finish(f, 502, "the owning node closed the connection before answering");
}

/* --- reading from up ------------------------------------------------------------------------- */

static void on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  fwd_t *f = h->data;
  *buf = uv_buf_init(f->buf, sizeof f->buf);
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  fwd_t *f = s->data;
  if (nread == 0 || f->phase == DONE) return;
  if (nread < 0) {
    if (!f->pipe) return answer_bytes(f, NULL, 0);
    return finish(f, 502, "the owning node closed the connection before answering");
  }
  f->last_io_ms = uv_now(f->p->srv->loop);
  if (!f->pipe) return answer_bytes(f, buf->base, (size_t)nread);
  f->answered = true;
  if (f->phase == WAITING) { /* the handshake's answer: from now on a pipe with an idle timeout */
    f->phase = PIPING;
    uv_timer_start(&f->timer, on_timer, f->p->limits.idle_timeout_ms, 0);
  }
  if (!f->client) return finish(f, 0, NULL);
  hd_buf_t *b = hd_buf_from(buf->base, (size_t)nread);
  int rc = b ? hd_conn_write(f->client, b) : HD_ENOMEM;
  hd_buf_unref(b);
  if (rc) {
    hd_conn_abort(f->client); /* a slow consumer: its on_free finishes f */
    return;
  }
  if (hd_conn_pending_bytes(f->client) > f->p->high) {
    uv_read_stop((uv_stream_t *)&f->up);
    f->up_paused = true;
  }
}

static void on_up_connected(uv_connect_t *req, int status) {
  fwd_t *f = req->data;
  if (f->phase == DONE) return release(f);
  if (status < 0) {
    HD_WARN("cluster", "cannot reach the owning node", "to=%s err=\"%s\"", f->peer, uv_strerror(status));
    finish(f, 502, "the owning node cannot be reached");
    return release(f);
  }
  f->phase = WAITING;
  f->last_io_ms = uv_now(f->p->srv->loop);
  uv_timer_start(&f->timer, on_timer, f->p->limits.answer_timeout_ms, 0);
  int rc = up_write(f, f->out.ptr, f->out.len);
  hd_sbuf_free(&f->out);
  if (!rc) rc = uv_read_start((uv_stream_t *)&f->up, on_up_alloc, on_up_read);
  if (rc) finish(f, 502, "the owning node cannot be reached");
  else if (f->pipe) pipe_resume_client(f);
  release(f);
}

static void connect_to(fwd_t *f, const struct sockaddr *addr) {
  f->phase = CONNECTING;
  uv_tcp_init(f->p->srv->loop, &f->up);
  f->up.data = f;
  f->refs++; /* the up handle */
  f->connect.data = f;
  int rc = uv_tcp_connect(&f->connect, &f->up, addr, on_up_connected);
  if (rc) {
    fail_soon(f);
    return;
  }
  f->refs++; /* the connect request */
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  fwd_t *f = req->data;
  f->resolving = false;
  if (f->phase == RESOLVING) {
    if (status || !res) finish(f, 502, "the owning node's address cannot be resolved");
    else {
      if (res->ai_family == AF_INET) ((struct sockaddr_in *)res->ai_addr)->sin_port = htons((uint16_t)f->port);
      else ((struct sockaddr_in6 *)res->ai_addr)->sin6_port = htons((uint16_t)f->port);
      connect_to(f, res->ai_addr);
    }
  }
  uv_freeaddrinfo(res);
  release(f);
}

/* --- the client side of a pipe (an upgrade) ---------------------------------------------------- */

static void pipe_data(hd_conn_t *c, char *data, size_t len) {
  fwd_t *f = hd_conn_udata(c);
  if (f->phase == DONE) return;
  f->last_io_ms = uv_now(f->p->srv->loop);
  int rc = f->phase >= WAITING ? up_write(f, data, len) : hd_sbuf_append(&f->out, data, len);
  if (rc) return finish(f, 502, "out of memory");
  if (f->up_pending + f->out.len > f->p->high) hd_conn_set_reading(c, false); /* resumed as up takes them */
}

static void on_up_shutdown(uv_shutdown_t *req, int status) {
  fwd_t *f = req->data;
  free(req);
  release(f);
}

/* The client half-closed: so does up once what the client sent is written; a read error ends both. */
static void pipe_eof(hd_conn_t *c, int err) {
  fwd_t *f = hd_conn_udata(c);
  f->client_eof = true;
  hd_conn_set_reading(c, false);
  if (err || f->phase < WAITING) {
    hd_conn_abort(c);
    return;
  }
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req && f->phase != DONE) {
    req->data = f;
    if (!uv_shutdown(req, (uv_stream_t *)&f->up, on_up_shutdown)) {
      f->refs++;
      return;
    }
  }
  free(req);
  if (f->phase != DONE) hd_conn_abort(c);
}

static void pipe_drain(hd_conn_t *c) {
  fwd_t *f = hd_conn_udata(c);
  if (f->phase == DONE || !f->up_paused || hd_conn_pending_bytes(c) > f->p->high / 2) return;
  f->up_paused = false;
  if (uv_read_start((uv_stream_t *)&f->up, on_up_alloc, on_up_read)) finish(f, 0, NULL);
}

static void pipe_sweep(hd_conn_t *c, uint64_t now_ms) {} /* the forward's own timer applies */

static void pipe_shutdown(hd_conn_t *c) { finish(hd_conn_udata(c), 503, "server shutting down"); }

static void pipe_free(hd_conn_t *c) {
  fwd_t *f = hd_conn_udata(c);
  hd_server_t *s = hd_conn_server(c);
  if (f->p->protocol >= 0) s->metrics.conns_ws[f->p->protocol]--;
  f->client = NULL;
  finish(f, 0, NULL);
  release(f);
}

static const hd_conn_handler_t pipe_handler = {
    .name = "forwarded",
    .on_data = pipe_data,
    .on_eof = pipe_eof,
    .on_drain = pipe_drain,
    .on_sweep = pipe_sweep,
    .on_shutdown = pipe_shutdown,
    .on_free = pipe_free,
};

/* --- the request ------------------------------------------------------------------------------ */

static bool hop_by_hop(hd_slice_t name) {
  static const char *names[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                                "upgrade", "content-length", "x-forwarded-for"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (hd_slice_eq_nocase(name, names[i])) return true;
  return false;
}

/* The request as it goes to the other server: its headers minus the hop-by-hop ones, X-Forwarded-For
 * with the client's address appended, Connection: close (or the upgrade), the body, extra headers. */
static int serialize(const hd_http_request_t *req, hd_conn_t *client, const char *extra, hd_sbuf_t *out) {
  char peer[128];
  hd_conn_peer(client, peer, sizeof peer);
  char *colon = strrchr(peer, ':');
  if (colon) *colon = '\0';
  hd_sbuf_append(out, req->method_name.ptr, req->method_name.len);
  hd_sbuf_puts(out, " ");
  hd_sbuf_append(out, req->target.ptr, req->target.len);
  hd_sbuf_puts(out, " HTTP/1.1\r\n");
  hd_sbuf_t xff = {0};
  for (size_t i = 0; i < req->header_count; i++) {
    const hd_http_header_t *h = &req->headers[i];
    if (hd_slice_eq_nocase(h->name, "x-forwarded-for")) {
      hd_sbuf_append(&xff, h->value.ptr, h->value.len);
      hd_sbuf_puts(&xff, ", ");
    }
    if (hop_by_hop(h->name)) continue;
    hd_sbuf_append(out, h->name.ptr, h->name.len);
    hd_sbuf_puts(out, ": ");
    hd_sbuf_append(out, h->value.ptr, h->value.len);
    hd_sbuf_puts(out, "\r\n");
  }
  hd_sbuf_printf(out, "X-Forwarded-For: %.*s%s\r\n", (int)xff.len, xff.ptr ? xff.ptr : "", peer);
  hd_sbuf_free(&xff);
  if (req->upgrade) {
    hd_slice_t up = hd_http_request_header(req, "Upgrade");
    hd_sbuf_puts(out, "Connection: Upgrade\r\nUpgrade: ");
    hd_sbuf_append(out, up.ptr, up.len);
    hd_sbuf_puts(out, "\r\n");
  } else {
    hd_sbuf_puts(out, "Connection: close\r\n");
  }
  if (req->body.len || req->method == HTTP_POST) hd_sbuf_printf(out, "Content-Length: %zu\r\n", req->body.len);
  if (extra) hd_sbuf_puts(out, extra);
  int rc = hd_sbuf_puts(out, "\r\n");
  if (req->body.len) rc = hd_sbuf_append(out, req->body.ptr, req->body.len);
  return rc ? HD_ENOMEM : 0;
}

int hd_http_proxy_forward(hd_http_proxy_t *p, hd_http_exchange_t *ex, const char *host, int port,
                          const char *extra_headers) {
  const hd_http_request_t *req = ex->req;
  if (!req || ex->deferred || ex->responded || port < 1 || port > 65535 || !*host) return HD_EINVAL;
  if (req->upgrade && !hd_http_request_header(req, "Upgrade").ptr) return HD_EINVAL;
  if (p->in_flight >= p->limits.max_in_flight) return HD_EBUSY;
  fwd_t *f = calloc(1, sizeof(*f));
  if (!f) return HD_ENOMEM;
  f->p = p;
  f->port = port;
  f->pipe = req->upgrade;
  snprintf(f->peer, sizeof f->peer, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
  if (serialize(req, ex->conn, extra_headers, &f->out)) {
    hd_sbuf_free(&f->out);
    free(f);
    return HD_ENOMEM;
  }
  http_parser_init(&f->parser, HTTP_RESPONSE);
  f->parser.data = f;
  uv_timer_init(p->srv->loop, &f->timer);
  f->timer.data = f;
  f->refs = 1; /* the timer */
  f->next = p->list;
  if (p->list) p->list->prev = f;
  p->list = f;
  p->in_flight++;
  if (f->pipe) { /* the client's connection is ours from here on: its next bytes are WebSocket frames */
    hd_conn_t *c = ex->conn;
    hd_server_t *s = hd_conn_server(c);
    hd_http_conn_free(c);
    s->metrics.conns_http--;
    if (p->protocol >= 0) s->metrics.conns_ws[p->protocol]++;
    hd_conn_set_handler(c, &pipe_handler, f);
    f->client = c;
    f->refs++; /* until the client's on_free */
    hd_conn_set_reading(c, false); /* until up is connected */
  } else {
    hd_http_defer(ex);
    f->ex = ex;
  }
  uv_timer_start(&f->timer, on_timer, p->limits.connect_timeout_ms, 0);
  struct sockaddr_storage addr;
  if (!uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) || !uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)) {
    connect_to(f, (struct sockaddr *)&addr);
    return 0;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  f->gai.data = f;
  if (uv_getaddrinfo(p->srv->loop, &f->gai, on_resolved, host, NULL, &hints)) {
    fail_soon(f);
    return 0;
  }
  f->refs++; /* the resolution */
  f->resolving = true;
  return 0;
}

/* --- the forwarder ---------------------------------------------------------------------------- */

/* The shard begins a graceful stop: everything under way ends (503 where nothing was answered). */
static void on_stop(void *arg) {
  hd_http_proxy_t *p = arg;
  while (p->list) finish(p->list, 503, "server shutting down");
}

hd_http_proxy_t *hd_http_proxy_new(hd_server_t *srv, const hd_http_proxy_limits_t *limits) {
  hd_http_proxy_t *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->srv = srv;
  p->limits = *limits;
  if (hd_server_add_stop_hook(srv, on_stop, p)) {
    free(p);
    return NULL;
  }
  p->protocol = hd_server_protocol_id(srv, "forwarded");
  p->high = (size_t)srv->cfg->max_backpressure / 2 < PIPE_HIGH ? (size_t)srv->cfg->max_backpressure / 2 : PIPE_HIGH;
  return p;
}

void hd_http_proxy_free(hd_http_proxy_t *p) { free(p); }

uint32_t hd_http_proxy_in_flight(const hd_http_proxy_t *p) { return p->in_flight; }
