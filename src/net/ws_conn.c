/* WebSocket connections on top of conn.c (see ws_conn.h). */
#include "net/ws_conn.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "net/ws_handshake.h"

#define CLOSE_WAIT_MS 5000 /* how long to wait for the peer's close frame */

static int on_message(void *ud, uint8_t opcode, const uint8_t *data, size_t len) {
  hd_conn_t *c = ud;
  hd_ws_t *ws = c->u.ws;
  c->server->metrics.frames_in++;
  if (ws->close_sent) return 0; /* closing: input after our close frame is discarded */
  int rc = ws->handler->on_message ? ws->handler->on_message(c, opcode, data, len) : 0;
  if (rc && !c->closing) hd_ws_close(c, HD_WS_CLOSE_INTERNAL, "internal error");
  return c->closing || c->u.ws->close_sent ? 1 : 0;
}

static int on_ping(void *ud, const uint8_t *data, size_t len) {
  hd_conn_t *c = ud;
  c->server->metrics.frames_in++;
  if (c->u.ws->close_sent) return 0;
  hd_buf_t *pong = hd_ws_frame_build(HD_WS_OP_PONG, false, data, len);
  int rc = pong ? hd_ws_send_frame(c, pong) : HD_ENOMEM;
  hd_buf_unref(pong);
  return rc == HD_ETOOBIG ? 1 : 0;
}

static int on_pong(void *ud, const uint8_t *data, size_t len) {
  hd_conn_t *c = ud;
  c->server->metrics.frames_in++;
  return 0;
}

static int on_close_frame(void *ud, uint16_t code, const uint8_t *reason, size_t len) {
  hd_conn_t *c = ud;
  hd_ws_t *ws = c->u.ws;
  c->server->metrics.frames_in++;
  ws->close_received = true;
  if (!ws->close_sent) { /* answer with the same code (none when the peer sent none) */
    hd_buf_t *f = code == HD_WS_CLOSE_NO_STATUS ? hd_ws_frame_build(HD_WS_OP_CLOSE, false, NULL, 0)
                                                : hd_ws_close_frame_build(code, NULL);
    ws->close_sent = true;
    if (f && !hd_conn_write(c, f)) c->server->metrics.frames_out++;
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
  hd_server_t *s = c->server;
  s->metrics.http_requests[101]++;
  ex->responded = true;
  hd_http_conn_free(c);
  s->metrics.conns_http--;
  s->metrics.conns_ws[ws->proto_id]++;
  c->kind = HD_CONN_WS;
  c->u.ws = ws;
  c->last_read_ms = uv_now(s->loop);
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
  const char *origins = ex->conn->server->cfg->ws_origins;
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
  bool full = c->over_limit;
  if (handler->on_refused) handler->on_refused(c, udata);
  hd_ws_close(c, full ? HD_WS_CLOSE_TRY_AGAIN : HD_WS_CLOSE_GOING_AWAY, full ? "server full" : "server shutting down");
}

int hd_ws_upgrade(hd_http_exchange_t *ex, const hd_ws_handler_t *handler, void *udata) {
  char accept[HD_WS_ACCEPT_LEN + 1];
  int rc = check(ex, accept);
  if (rc) return rc;
  hd_conn_t *c = ex->conn;
  const hd_config_t *cfg = c->server->cfg;
  hd_ws_t *ws = hd_conn_ws_slot(c);
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
  if (!resp) {
    memset(ws, 0, sizeof(*ws));
    hd_http_respond_error(ex, 500, "out of memory");
    return HD_ENOMEM;
  }
  ws->handler = handler;
  ws->udata = udata;
  ws->proto_id = (uint8_t)hd_server_protocol_id(c->server, handler->name);
  bool refused = c->over_limit || c->server->stopping;
  if (refused) ws->handler = &refused_handler; /* no protocol callbacks for a refused connection */
  switch_to_ws(ex, ws, resp);
  hd_buf_unref(resp);
  if (c->closing) return 0;
  if (refused) refuse(c, handler, udata);
  else if (handler->on_open && handler->on_open(c, udata)) hd_ws_close(c, HD_WS_CLOSE_INTERNAL, "internal error");
  return 0;
}

/* The peer cannot keep up: last words (1008), then the socket closes. */
static int slow_consumer(hd_conn_t *c) {
  hd_ws_t *ws = c->u.ws;
  c->server->metrics.slow_consumers++;
  char peer[64];
  hd_conn_peer(c, peer, sizeof peer);
  HD_WARN("ws", "slow consumer disconnected", "peer=%s pending=%zu", peer, c->pending_bytes);
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
  if (c->closing || c->kind != HD_CONN_WS || c->u.ws->close_sent) return HD_ECLOSED;
  int rc = hd_conn_write(c, frame);
  if (rc == HD_ETOOBIG) return slow_consumer(c);
  if (!rc) c->server->metrics.frames_out++;
  return rc;
}

int hd_ws_send(hd_conn_t *c, uint8_t opcode, const void *data, size_t len) {
  if (c->closing || c->kind != HD_CONN_WS) return HD_ECLOSED;
  hd_ws_t *ws = c->u.ws;
  hd_buf_t *frame = NULL;
  if (ws->deflate.enabled && len >= (size_t)c->server->cfg->ws_deflate_threshold) {
    hd_ws_deflater_t *d = hd_server_deflater(c->server, ws->deflate.server_max_window_bits);
    if (d) frame = hd_ws_deflater_frame(d, opcode, data, len);
  }
  if (!frame) frame = hd_ws_frame_build(opcode, false, data, len);
  if (!frame) return HD_ENOMEM;
  int rc = hd_ws_send_frame(c, frame);
  hd_buf_unref(frame);
  return rc;
}

void hd_ws_close(hd_conn_t *c, uint16_t code, const char *reason) {
  if (c->closing || c->kind != HD_CONN_WS) return;
  hd_ws_t *ws = c->u.ws;
  if (ws->close_sent) return;
  ws->close_sent = true;
  c->since_ms = uv_now(c->server->loop);
  hd_buf_t *f = hd_ws_close_frame_build(code, reason);
  if (!f || hd_conn_write(c, f)) {
    hd_buf_unref(f);
    hd_conn_abort(c);
    return;
  }
  hd_buf_unref(f);
  c->server->metrics.frames_out++;
  if (ws->close_received) hd_conn_end(c);
  /* else keep reading until the peer's close frame arrives (or CLOSE_WAIT_MS passes) */
}

void hd_ws_set_max_message(hd_conn_t *c, size_t max) {
  if (c->kind == HD_CONN_WS) c->u.ws->reader.max_message = max;
}

void *hd_ws_udata(const hd_conn_t *c) { return c->kind == HD_CONN_WS ? c->u.ws->udata : NULL; }

void hd_ws_set_udata(hd_conn_t *c, void *udata) {
  if (c->kind == HD_CONN_WS) c->u.ws->udata = udata;
}

void hd_ws_on_data(hd_conn_t *c, uint8_t *data, size_t len) {
  hd_ws_t *ws = c->u.ws;
  ws->ping_sent = false;
  int rc = hd_ws_reader_feed(&ws->reader, data, len);
  if (rc < 0 && !c->closing) {
    char peer[64];
    hd_conn_peer(c, peer, sizeof peer);
    HD_DEBUG("ws", "protocol violation", "peer=%s err=%s code=%u", peer, hd_errname(rc), ws->reader.close_code);
    const char *why = rc == HD_EUTF8 ? "invalid UTF-8" : rc == HD_ETOOBIG ? "message too big" : "protocol error";
    if (ws->handler->on_violation && !ws->close_sent) ws->handler->on_violation(c, rc);
    hd_ws_close(c, ws->reader.close_code ? ws->reader.close_code : HD_WS_CLOSE_PROTOCOL, why);
    if (!c->closing) hd_conn_end(c); /* no more reading after a protocol error */
  }
}

void hd_ws_on_eof(hd_conn_t *c) {
  hd_ws_t *ws = c->u.ws;
  if (ws && ws->handler->on_close && !ws->notified) {
    ws->notified = true;
    ws->handler->on_close(c, HD_WS_CLOSE_ABNORMAL);
  }
}

void hd_ws_sweep(hd_conn_t *c, uint64_t now_ms) {
  hd_ws_t *ws = c->u.ws;
  const hd_config_t *cfg = c->server->cfg;
  if (ws->close_sent || c->ending) {
    if (now_ms - c->since_ms > CLOSE_WAIT_MS) hd_conn_abort(c);
    return;
  }
  uint64_t silent = now_ms - c->last_read_ms;
  if (cfg->ws_idle_timeout && silent > (uint64_t)cfg->ws_idle_timeout) {
    hd_ws_close(c, HD_WS_CLOSE_GOING_AWAY, "idle timeout");
  } else if (cfg->ws_ping_interval && silent > (uint64_t)cfg->ws_ping_interval && !ws->ping_sent) {
    ws->ping_sent = true;
    hd_buf_t *ping = hd_ws_frame_build(HD_WS_OP_PING, false, NULL, 0);
    if (ping) hd_ws_send_frame(c, ping);
    hd_buf_unref(ping);
  }
}

void hd_ws_free(hd_conn_t *c) {
  hd_ws_t *ws = c->u.ws;
  if (!ws) return;
  hd_ws_on_eof(c);
  c->server->metrics.conns_ws[ws->proto_id]--;
  hd_ws_reader_free(&ws->reader);
  c->u.ws = NULL; /* the state lives in the conn's allocation */
}
