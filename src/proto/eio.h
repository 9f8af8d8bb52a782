/* Engine.IO v4 server (and v3 with allow_eio3): sessions over HTTP long-polling and WebSocket, the
 * upgrade between them, server-driven heartbeat, errors as Engine.IO defines them. What travels in
 * message packets is the business of the layer above (Socket.IO), reached through callbacks. */
#ifndef HD_EIO_H
#define HD_EIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/addr_rate.h"
#include "core/buf.h"
#include "net/http_conn.h"
#include "net/server.h"

typedef struct hd_eio_server hd_eio_server_t;
typedef struct hd_eio_session hd_eio_session_t;

typedef struct {
  /* A session opened (its open packet is queued). Return non-zero to refuse it. */
  int (*on_open)(hd_eio_session_t *s, const hd_http_request_t *req, void *udata);
  /* A message packet arrived (text, or binary bytes). */
  void (*on_message)(hd_eio_session_t *s, const uint8_t *data, size_t len, bool binary);
  /* The session ended ("transport close", "ping timeout", "transport error", "forced close",
   * "server shutting down", "parse error"); the session is freed right after. */
  void (*on_close)(hd_eio_session_t *s, const char *reason);
  /* Optional: the session moved from long-polling to its WebSocket. */
  void (*on_upgrade)(hd_eio_session_t *s);
} hd_eio_callbacks_t;

/* Bounds on sessions not yet (or never) authenticated, shared by the node's Engine.IO servers. */
typedef struct {
  uint32_t max_sessions;        /* open sessions at most over every server sharing session_count (0 = no bound) */
  uint32_t *session_count;      /* atomic, shared by the node's servers; NULL: max_sessions bounds this server */
  hd_addr_rate_t *handshakes;   /* handshakes per client address (thread-safe), or NULL for no rate */
  size_t max_polling_bytes;     /* polling output waiting for a GET over every session sharing polling_bytes (0 = no
                                 * bound besides each session's 8 MiB): past it, the session pushing more is closed */
  size_t *polling_bytes;        /* atomic, shared by the node's servers; NULL: not counted */
  uint64_t *closed_count;       /* atomic: sessions closed since start, counted up by every server; NULL: not counted */
} hd_eio_limits_t;

typedef struct {
  const char *path;          /* e.g. "/socket.io/" */
  uint64_t ping_interval_ms; /* 25000 */
  uint64_t ping_timeout_ms;  /* 20000 */
  uint64_t upgrade_timeout_ms;
  size_t max_payload;        /* maxHttpBufferSize */
  bool allow_eio3;
  char node_tag[4];          /* 3 characters naming this node in session ids (after the shard) */
  hd_eio_limits_t limits;    /* a handshake past them gets 503 (sessions) or 429 (rate), JSON {code, message} */
  size_t session_ext_size;   /* zeroed bytes after each session for the server's user (hd_eio_session_ext) */
} hd_eio_options_t;

/* A new Engine.IO server on shard srv with options (copied) and callbacks (borrowed). NULL on OOM. */
hd_eio_server_t *hd_eio_server_new(hd_server_t *srv, const hd_eio_options_t *opt, const hd_eio_callbacks_t *cb,
                                   void *udata);
/* Routes GET/POST/OPTIONS under opt->path to the server. 0 or HD_E*. */
int hd_eio_server_route(hd_eio_server_t *eio, hd_router_t *router);
/* Closes every session (shutdown) and frees the server. */
void hd_eio_server_free(hd_eio_server_t *eio);
/* Open sessions. */
size_t hd_eio_session_count(const hd_eio_server_t *eio);

/* Sends a message packet (text or binary). 0, HD_ECLOSED, HD_ETOOBIG (slow consumer, closing). */
int hd_eio_send(hd_eio_session_t *s, const void *data, size_t len, bool binary);
/* Sends a text message packet given in both ready forms: `ws_frame` a complete WebSocket frame of
 * "4"+text, `text` the bare message text (for polling). Either may be built lazily by the caller's
 * cache; both are borrowed. Same returns as hd_eio_send. */
int hd_eio_send_prebuilt(hd_eio_session_t *s, hd_buf_t *ws_frame, const char *text, size_t len);
/* The WebSocket frame of a text message packet ("4" + text) for hd_eio_send_prebuilt, built once
 * and shared by every recipient; refs 1, or NULL when out of memory. */
hd_buf_t *hd_eio_message_frame_new(const void *text, size_t len);
/* Ends a write after what is queued (as Node's server sends the Socket.IO CONNECT answer): over a
 * WebSocket it is written now, in a write of its own, so what is sent next comes in a later read;
 * over polling the GET that carries it carries nothing sent later (that waits for the next GET). */
void hd_eio_flush(hd_eio_session_t *s);
/* True when the session writes through a WebSocket (prebuilt frames apply). */
bool hd_eio_is_websocket(const hd_eio_session_t *s);
/* The client's address without its port ("" when unknown): that of the request being handled (the
 * handshake in on_open, a polling POST in on_message), else the WebSocket transport's. */
void hd_eio_session_peer(const hd_eio_session_t *s, char *out, size_t len);
/* Closes the session (a close packet is sent); on_close follows. */
void hd_eio_close(hd_eio_session_t *s, const char *reason);
const char *hd_eio_session_id(const hd_eio_session_t *s);
/* 4, or 3 for an Engine.IO v3 client. */
int hd_eio_session_version(const hd_eio_session_t *s);
void *hd_eio_session_udata(const hd_eio_session_t *s);
/* The opt.session_ext_size bytes reserved in s's allocation (8-byte aligned, zeroed at the
 * handshake): they live as long as s, past on_close until s is freed on a later loop turn. */
void *hd_eio_session_ext(hd_eio_session_t *s);
void hd_eio_session_set_udata(hd_eio_session_t *s, void *udata);

#endif
