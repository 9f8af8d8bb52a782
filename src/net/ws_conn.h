/* A connection upgraded to WebSocket: the handshake (checks, Origin allow-list, permessage-deflate
 * negotiation), reading through hd_ws_reader_t, sending (compressed above a threshold), the close
 * handshake, server pings and the idle timeout. Protocols (echo, Engine.IO, JSON) plug in through
 * hd_ws_handler_t. */
#ifndef HD_WS_CONN_H
#define HD_WS_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "net/conn.h"
#include "net/http_conn.h"
#include "net/ws_reader.h"

/* What a protocol does with a WebSocket connection. */
typedef struct {
  const char *name; /* for metrics: "echo", "json", "socketio" */
  /* After the 101 response was queued; non-zero closes the connection with 1011. */
  int (*on_open)(hd_conn_t *c, void *udata);
  /* A complete message; non-zero closes with 1011 unless the handler already closed. */
  int (*on_message)(hd_conn_t *c, uint8_t opcode, const uint8_t *data, size_t len);
  /* The connection is gone (after a close handshake, an error or EOF); code as received or 1006. */
  void (*on_close)(hd_conn_t *c, uint16_t code);
  /* Optional: the client broke a rule (err: HD_ETOOBIG, HD_EUTF8, HD_EPROTO); called before the
   * close frame is queued so the protocol can send its own error message first. */
  void (*on_violation)(hd_conn_t *c, int err);
  /* Optional: the server is full or stopping; called after the handshake, before close 1013/1001,
   * so the protocol can say why in its own terms. */
  void (*on_refused)(hd_conn_t *c, void *udata);
} hd_ws_handler_t;

/* Upgrades the exchange's connection: validates the handshake and Origin (else answers 400, 403,
 * 405 or 426 with a JSON body and returns a negative HD_E*), negotiates deflate, queues the 101
 * and switches the conn to WebSocket with handler. udata is passed to on_open. When the server is
 * full (or stopping) the handshake completes only to call on_refused and close with 1013 (1001). */
int hd_ws_upgrade(hd_http_exchange_t *ex, const hd_ws_handler_t *handler, void *udata);
/* Builds a message frame (compressed when negotiated and len >= ws-deflate-threshold) and queues
 * it. 0, HD_ECLOSED, HD_ENOMEM; a slow consumer is closed with 1008 and HD_ETOOBIG returned. */
int hd_ws_send(hd_conn_t *c, uint8_t opcode, const void *data, size_t len);
/* hd_ws_send of the byte `prefix` followed by data[0..len) (an Engine.IO packet's type and data),
 * built straight into the frame unless it is to be compressed. */
int hd_ws_send_prefixed(hd_conn_t *c, uint8_t opcode, char prefix, const void *data, size_t len);
/* Queues a prebuilt frame shared with other connections; same returns as hd_ws_send. */
int hd_ws_send_frame(hd_conn_t *c, hd_buf_t *frame);
/* Starts the close handshake (idempotent); the socket closes when the peer answers or after 5 s. */
void hd_ws_close(hd_conn_t *c, uint16_t code, const char *reason);
/* Lowers or raises the message size limit of this connection (default ws-max-message-size). */
void hd_ws_set_max_message(hd_conn_t *c, size_t max);
/* The protocol state given to hd_ws_upgrade (or set later). */
void *hd_ws_udata(const hd_conn_t *c);
void hd_ws_set_udata(hd_conn_t *c, void *udata);

/* Serves every connection s accepts as HTTP that may be upgraded to WebSocket (room for the
 * WebSocket state is reserved in each connection's allocation). Call before hd_server_listen. */
void hd_ws_serve(hd_server_t *s);

#endif
