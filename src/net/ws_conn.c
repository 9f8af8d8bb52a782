/* WebSocket connections on top of conn.c (see ws_conn.h). */
#include "net/ws_conn.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "net/server.h"
#include "net/ws_handshake.h"

#define CLOSE_WAIT_MS 5000 /* how long to wait for the peer's close frame */

/* The WebSocket state of a connection; it lives in the conn's extension space (hd_conn_ext). */
typedef struct hd_ws {
  hd_ws_reader_t reader;
  hd_ws_deflate_params_t deflate;
  uint8_t proto_id; /* metrics slot */
  bool ping_sent, close_sent, close_received, notified;
  const hd_ws_handler_t *handler;
  void *udata;      /* the protocol's per-connection state */
} hd_ws_t;

static const hd_conn_handler_t ws_conn_handler;

/* The WebSocket state of c; NULL when c is not (or no longer) a WebSocket. */
static hd_ws_t *ws_of(const hd_conn_t *c) {
  return hd_conn_handler(c) == &ws_conn_handler ? hd_conn_udata(c) : NULL;
}

static int on_message(void *ud, uint8_t opcode, const uint8_t *data, size_t len) {
  hd_conn_t *c = ud;
  hd_ws_t *ws = ws_of(c);
  hd_conn_server(c)->metrics.frames_in++;
  if (ws->close_sent) return 0; /* closing: input after our close frame is discarded */
  int rc = ws->handler->on_message ? ws->handler->on_message(c, opcode, data, len) : 0;
  if (rc && !hd_conn_is_closing(c)) hd_ws_close(c, HD_WS_CLOSE_INTERNAL, "internal error");
  return hd_conn_is_closing(c) || ws_of(c)->close_sent ? 1 : 0;
}

static int on_ping(void *ud, const uint8_t *data, size_t len) {
  hd_conn_t *c = ud;
  hd_conn_server(c)->metrics.frames_in++;
  if (ws_of(c)->close_sent) return 0;
  hd_buf_t *pong = hd_ws_frame_build(HD_WS_OP_PONG, false, data, len);
  int rc = pong ? hd_ws_send_frame(c, pong) : HD_ENOMEM;
  hd_buf_unref(pong);
  return rc == HD_ETOOBIG ? 1 : 0;
}

static int on_pong(void *ud, const uint8_t *data, size_t len) {
  hd_conn_t *c = ud;
  hd_conn_server(c)->metrics.frames_in++;
  return 0;
}

static int on_close_frame(void *ud, uint16_t code, const uint8_t *reason, size_t len) {
  hd_conn_t *c = ud;
  hd_ws_t *ws = ws_of(c);
  hd_conn_server(c)->metrics.frames_in++;
  ws->close_received = true;
  if (!ws->close_sent) { /* answer with the same code (none when the peer sent none) */
    hd_buf_t *f = code == HD_WS_CLOSE_NO_STATUS ? hd_ws_frame_build(HD_WS_OP_CLOSE, false, NULL, 0)
                                                : hd_ws_close_frame_build(code, NULL);
    ws->close_sent = true;
    if (f && !hd_conn_write(c, f)) hd_conn_server(c)->metrics.frames_out++;
    hd_buf_unref(f);
  }
  if (ws->handler->on_close && !ws->notified) {
    ws->notified = true;
    ws->handler->on_close(c, code);
  }
  hd_conn_end(c);
  return 1;
}

static const hd_ws_reader_callbacks_t reader_callbacks = {on_message, on_ping, on_pong, on_close_frame};

/* Writes the handshake response and turns the HTTP connection into a WebSocket one. */
static void switch_to_ws(hd_http_exchange_t *ex, hd_ws_t *ws, hd_buf_t *response) {
  hd_conn_t *c = ex->conn;
  hd_server_t *s = hd_conn_server(c);
  s->metrics.http_requests[101]++;
  ex->responded = true;
  hd_http_conn_free(c);
  s->metrics.conns_http--;
  s->metrics.conns_ws[ws->proto_id]++;
  hd_conn_set_handler(c, &ws_conn_handler, ws);
  hd_conn_touch_read(c);
  hd_ws_reader_init(&ws->reader, &reader_callbacks, c, (size_t)s->cfg->ws_max_message_size, &ws->deflate);
  if (hd_conn_write(c, response)) hd_conn_abort(c);
  else hd_conn_set_reading(c, true);
}

/* Checks the handshake; answers the error itself. Returns 0 and the accept key, or HD_E*. */
static int check(hd_http_exchange_t *ex, char accept[HD_WS_ACCEPT_LEN + 1]) {
  const hd_http_request_t *req = ex->req;
  hd_slice_t key;
  const char *why = "bad WebSocket handshake";
  int rc = hd_ws_handshake_check(req, &key, &why);
  if (rc == HD_EVERSION) {
    const char *msg = "{\"code\":426,\"message\":\"unsupported WebSocket version (use 13)\"}";
    hd_http_respond(ex, 426, "application/json; charset=utf-8", msg, strlen(msg), "Sec-WebSocket-Version: 13\r\n");
    return rc;
  }
  if (rc) {
    hd_http_respond_error(ex, rc == HD_EMETHOD ? 405 : 400, why);
    return rc;
  }
  const char *origins = hd_conn_server(ex->conn)->cfg->ws_origins;
  hd_slice_t origin = hd_http_request_header(req, "Origin");
  if (*origins && origin.ptr && !hd_origin_allowed(origins, origin)) {
    hd_http_respond_error(ex, 403, "origin not allowed");
    return HD_EFORBIDDEN;
  }
  hd_ws_accept_key(key, accept);
  return 0;
}

static const hd_ws_handler_t refused_handler = {.name = "refused"};

static void refuse(hd_conn_t *c, const hd_ws_handler_t *handler, void *udata) {
  bool full = hd_conn_is_over_limit(c);
  if (handler->on_refused) handler->on_refused(c, udata);
  hd_ws_close(c, full ? HD_WS_CLOSE_TRY_AGAIN : HD_WS_CLOSE_GOING_AWAY, full ? "server full" : "server shutting down");
}

int hd_ws_upgrade(hd_http_exchange_t *ex, const hd_ws_handler_t *handler, void *udata) {
  char accept[HD_WS_ACCEPT_LEN + 1];
  int rc = check(ex, accept);
  if (rc) return rc;
  hd_conn_t *c = ex->conn;
  const hd_config_t *cfg = hd_conn_server(c)->cfg;
  if (hd_conn_server(c)->conn_ext_size < sizeof(hd_ws_t)) { /* the server was not set up with hd_ws_serve */
    hd_http_respond_error(ex, 500, "WebSocket not enabled");
    return HD_EINVAL;
  }
  hd_ws_t *ws = hd_conn_ext(c); /* in the conn's allocation: an idle WebSocket is one block */
  char ext[256] = "";
  if (cfg->ws_deflate) {
    /* all offers, joined, in case the client sent several header lines */
    hd_sbuf_t offers = {0};
    for (size_t i = 0; i < ex->req->header_count; i++) {
      if (!hd_slice_eq_nocase(ex->req->headers[i].name, "Sec-WebSocket-Extensions")) continue;
      if (offers.len) hd_sbuf_puts(&offers, ", ");
      hd_sbuf_append(&offers, ex->req->headers[i].value.ptr, ex->req->headers[i].value.len);
    }
    if (offers.len)
      hd_ws_deflate_negotiate((hd_slice_t){offers.ptr, offers.len}, (int)cfg->ws_deflate_window_bits, &ws->deflate,
                              ext, sizeof ext);
    hd_sbuf_free(&offers);
  }
  hd_buf_t *resp = hd_ws_handshake_response(accept, ws->deflate.enabled ? ext : NULL, NULL);
  const hd_server_t *srv = hd_conn_server(ex->conn);
  if (resp && srv->peer_count > 1) { /* name the shard, as every HTTP response does */
    hd_buf_t *named = hd_buf_new(resp->len + 32);
    if (named)
      named->len = (size_t)snprintf((char *)named->data, named->cap, "%.*sX-Herald-Shard: %u\r\n\r\n",
                                    (int)resp->len - 2, (const char *)resp->data, srv->shard);
    hd_buf_unref(resp);
    resp = named;
  }
  if (!resp) {
    memset(ws, 0, sizeof(*ws));
    hd_http_respond_error(ex, 500, "out of memory");
    return HD_ENOMEM;
  }
  ws->handler = handler;
  ws->udata = udata;
  ws->proto_id = (uint8_t)hd_server_protocol_id(hd_conn_server(c), handler->name);
  bool refused = hd_conn_is_over_limit(c) || hd_conn_server(c)->stopping;
  if (refused) ws->handler = &refused_handler; /* no protocol callbacks for a refused connection */
  switch_to_ws(ex, ws, resp);
  hd_buf_unref(resp);
  if (hd_conn_is_closing(c)) return 0;
  if (refused) refuse(c, handler, udata);
  else if (handler->on_open && handler->on_open(c, udata)) hd_ws_close(c, HD_WS_CLOSE_INTERNAL, "internal error");
  return 0;
}

/* The peer cannot keep up: last words (1008), then the socket closes. */
static int slow_consumer(hd_conn_t *c) {
  hd_ws_t *ws = ws_of(c);
  hd_conn_server(c)->metrics.slow_consumers++;
  char peer[64];
  hd_conn_peer(c, peer, sizeof peer);
  HD_WARN("ws", "slow consumer disconnected", "peer=%s pending=%zu", peer, hd_conn_pending_bytes(c));
  if (!ws->close_sent) {
    ws->close_sent = true;
    hd_buf_t *f = hd_ws_close_frame_build(HD_WS_CLOSE_POLICY, "send queue limit exceeded");
    if (f) hd_conn_write_final(c, f); /* past the limit, so a client that catches up learns why */
    hd_buf_unref(f);
  }
  hd_conn_end(c);
  return HD_ETOOBIG;
}

int hd_ws_send_frame(hd_conn_t *c, hd_buf_t *frame) {
  if (hd_conn_is_closing(c) || !ws_of(c) || ws_of(c)->close_sent) return HD_ECLOSED;
  int rc = hd_conn_write(c, frame);
  if (rc == HD_ETOOBIG) return slow_consumer(c);
  if (!rc) hd_conn_server(c)->metrics.frames_out++;
  return rc;
}

int hd_ws_send(hd_conn_t *c, uint8_t opcode, const void *data, size_t len) {
  hd_ws_t *ws = ws_of(c);
  if (hd_conn_is_closing(c) || !ws) return HD_ECLOSED;
  hd_buf_t *frame = NULL;
  if (ws->deflate.enabled && len >= (size_t)hd_conn_server(c)->cfg->ws_deflate_threshold) {
    hd_ws_deflater_t *d = hd_server_deflater(hd_conn_server(c), ws->deflate.server_max_window_bits);
    if (d) frame = hd_ws_deflater_frame(d, opcode, data, len);
  }
  if (!frame) frame = hd_ws_frame_build(opcode, false, data, len);
  if (!frame) return HD_ENOMEM;
  int rc = hd_ws_send_frame(c, frame);
  hd_buf_unref(frame);
  return rc;
}

int hd_ws_send_prefixed(hd_conn_t *c, uint8_t opcode, char prefix, const void *data, size_t len) {
  hd_ws_t *ws = ws_of(c);
  if (hd_conn_is_closing(c) || !ws) return HD_ECLOSED;
  if (ws->deflate.enabled && len + 1 >= (size_t)hd_conn_server(c)->cfg->ws_deflate_threshold) {
    uint8_t *joined = malloc(len + 1); /* the compressor takes one piece */
    if (!joined) return HD_ENOMEM;
    joined[0] = (uint8_t)prefix;
    if (len) memcpy(joined + 1, data, len);
    int rc = hd_ws_send(c, opcode, joined, len + 1);
    free(joined);
    return rc;
  }
  hd_buf_t *frame = hd_ws_frame_new_prefixed(opcode, prefix, data, len);
  if (!frame) return HD_ENOMEM;
  int rc = hd_ws_send_frame(c, frame);
  hd_buf_unref(frame);
  return rc;
}

void hd_ws_close(hd_conn_t *c, uint16_t code, const char *reason) {
  hd_ws_t *ws = ws_of(c);
  if (hd_conn_is_closing(c) || !ws || ws->close_sent) return;
  ws->close_sent = true;
  hd_conn_mark_since(c);
  hd_buf_t *f = hd_ws_close_frame_build(code, reason);
  if (!f || hd_conn_write(c, f)) {
    hd_buf_unref(f);
    hd_conn_abort(c);
    return;
  }
  hd_buf_unref(f);
  hd_conn_server(c)->metrics.frames_out++;
  if (ws->close_received) hd_conn_end(c);
  /* else keep reading until the peer's close frame arrives (or CLOSE_WAIT_MS passes) */
}

void hd_ws_set_max_message(hd_conn_t *c, size_t max) {
  hd_ws_t *ws = ws_of(c);
  if (ws) ws->reader.max_message = max > UINT32_MAX ? UINT32_MAX : (uint32_t)max;
}

void *hd_ws_udata(const hd_conn_t *c) {
  hd_ws_t *ws = ws_of(c);
  return ws ? ws->udata : NULL;
}

void hd_ws_set_udata(hd_conn_t *c, void *udata) {
  hd_ws_t *ws = ws_of(c);
  if (ws) ws->udata = udata;
}

static void on_data(hd_conn_t *c, char *bytes, size_t len) {
  uint8_t *data = (uint8_t *)bytes;
  hd_ws_t *ws = ws_of(c);
  ws->ping_sent = false;
  int rc = hd_ws_reader_feed(&ws->reader, data, len);
  if (rc < 0 && !hd_conn_is_closing(c)) {
    char peer[64];
    hd_conn_peer(c, peer, sizeof peer);
    HD_DEBUG("ws", "protocol violation", "peer=%s err=%s code=%u", peer, hd_errname(rc), ws->reader.close_code);
    const char *why = rc == HD_EUTF8 ? "invalid UTF-8" : rc == HD_ETOOBIG ? "message too big" : "protocol error";
    if (ws->handler->on_violation && !ws->close_sent) ws->handler->on_violation(c, rc);
    hd_ws_close(c, ws->reader.close_code ? ws->reader.close_code : HD_WS_CLOSE_PROTOCOL, why);
    if (!hd_conn_is_closing(c)) hd_conn_end(c); /* no more reading after a protocol error */
  }
}

/* Tells the protocol the connection is gone (once). */
static void notify_closed(hd_conn_t *c) {
  hd_ws_t *ws = ws_of(c);
  if (ws && ws->handler->on_close && !ws->notified) {
    ws->notified = true;
    ws->handler->on_close(c, HD_WS_CLOSE_ABNORMAL);
  }
}

/* The peer went away (FIN or a read error): the protocol hears 1006, the socket closes. */
static void on_eof(hd_conn_t *c, int err) {
  notify_closed(c);
  hd_conn_abort(c);
}

/* The close handshake's deadline, the idle timeout and server pings. */
static void on_sweep(hd_conn_t *c, uint64_t now_ms) {
  hd_ws_t *ws = ws_of(c);
  const hd_config_t *cfg = hd_conn_server(c)->cfg;
  if (ws->close_sent || hd_conn_is_ending(c)) {
    if (now_ms - hd_conn_since_ms(c) > CLOSE_WAIT_MS) hd_conn_abort(c);
    return;
  }
  uint64_t silent = now_ms - hd_conn_last_read_ms(c);
  if (cfg->ws_idle_timeout && silent > (uint64_t)cfg->ws_idle_timeout) {
    hd_ws_close(c, HD_WS_CLOSE_GOING_AWAY, "idle timeout");
  } else if (cfg->ws_ping_interval && silent > (uint64_t)cfg->ws_ping_interval && !ws->ping_sent) {
    ws->ping_sent = true;
    hd_buf_t *ping = hd_ws_frame_build(HD_WS_OP_PING, false, NULL, 0);
    if (ping) hd_ws_send_frame(c, ping);
    hd_buf_unref(ping);
  }
}

/* The connection closes: the protocol hears 1006 unless told already; the state lives on in the
 * conn's allocation, which goes with the conn. */
static void on_free(hd_conn_t *c) {
  hd_ws_t *ws = ws_of(c);
  if (!ws) return;
  notify_closed(c);
  hd_conn_server(c)->metrics.conns_ws[ws->proto_id]--;
  hd_ws_reader_free(&ws->reader);
  hd_conn_set_handler(c, &ws_conn_handler, NULL);
}

static void on_shutdown(hd_conn_t *c) { hd_ws_close(c, HD_WS_CLOSE_GOING_AWAY, "server shutting down"); }

static const hd_conn_handler_t ws_conn_handler = {
    .name = "ws",
    .on_data = on_data,
    .on_eof = on_eof,
    .on_sweep = on_sweep,
    .on_shutdown = on_shutdown,
    .on_free = on_free,
};

void hd_ws_serve(hd_server_t *s) { hd_server_set_accept(s, &hd_http_conn_handler, sizeof(hd_ws_t)); }
