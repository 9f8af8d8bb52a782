/* A TCP connection of a shard: a descriptor in the shard's epoll set (no libuv handle of its own),
 * shared-buffer reads, a queue of refcounted buffers written with one writev per loop iteration,
 * backpressure limit, deferred release. What the bytes mean is up to the
 * connection's kind, a table of callbacks (hd_conn_handler_t): HTTP at accept, switched to
 * WebSocket on upgrade (see http_conn.h, ws_conn.h). conn.c knows no kind by name. */
#ifndef HD_CONN_H
#define HD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"

typedef struct hd_conn hd_conn_t;     /* opaque: only conn.c sees the fields */
typedef struct hd_server hd_server_t; /* see server.h */
typedef struct hd_tls_ctx hd_tls_ctx_t; /* see tls.h */
typedef struct hd_tls hd_tls_t;

/* What the kind of a connection (HTTP, WebSocket) does with it, as in uSockets: conn.c calls the
 * layers above only through this table. Switching handler (hd_conn_set_handler) is how an HTTP
 * connection becomes a WebSocket. */
typedef struct hd_conn_handler {
  const char *name;
  /* Optional: the conn was accepted or adopted with this handler (not called on a switch). */
  void (*on_open)(hd_conn_t *c);
  /* Bytes received (data is the shard's read buffer, valid until return; may be modified). */
  void (*on_data)(hd_conn_t *c, char *data, size_t len);
  /* The peer closed its side (err 0) or the read failed (err < 0): end or abort the conn. */
  void (*on_eof)(hd_conn_t *c, int err);
  /* Optional: the write queue drained (and the conn is not ending). */
  void (*on_drain)(hd_conn_t *c);
  /* Timeouts of the kind, called by the server's sweep for conns still open. */
  void (*on_sweep)(hd_conn_t *c, uint64_t now_ms);
  /* A graceful stop began: close politely or finish the work under way. */
  void (*on_shutdown)(hd_conn_t *c);
  /* The conn is closing (aborted): release the kind's state. Called once. */
  void (*on_free)(hd_conn_t *c);
} hd_conn_handler_t;

/* The shard serving c. */
hd_server_t *hd_conn_server(const hd_conn_t *c);
/* True once c is closed (aborted): nothing more is written or read; its memory stays until released. */
bool hd_conn_is_closing(const hd_conn_t *c);
/* True once c is ending (hd_conn_end: queued bytes go out, then it closes) or closing. */
bool hd_conn_is_ending(const hd_conn_t *c);
/* True when c was accepted past max-connections: it only answers 503 / close 1013. */
bool hd_conn_is_over_limit(const hd_conn_t *c);
/* Bytes queued and not yet written. */
size_t hd_conn_pending_bytes(const hd_conn_t *c);
/* Monotonic ms of the last bytes received (accept or hd_conn_touch_read count as reads). */
uint64_t hd_conn_last_read_ms(const hd_conn_t *c);
/* Restarts the read-silence clock now (e.g. a new protocol starts on the conn). */
void hd_conn_touch_read(hd_conn_t *c);
/* Start of the kind's current timed phase (request, close wait, ...); accept starts the first. */
uint64_t hd_conn_since_ms(const hd_conn_t *c);
/* Starts a new timed phase now. */
void hd_conn_mark_since(hd_conn_t *c);
/* The handler's per-conn state, as given to hd_conn_set_handler (NULL at accept). */
void *hd_conn_udata(const hd_conn_t *c);
/* The current handler. */
const hd_conn_handler_t *hd_conn_handler(const hd_conn_t *c);
/* Switches the conn to handler h with state udata; the old handler's on_free is not called (the
 * switching layer releases the old state itself). */
void hd_conn_set_handler(hd_conn_t *c, const hd_conn_handler_t *h, void *udata);
/* The zeroed space of s->conn_ext_size bytes reserved after the conn in its allocation (the
 * state of a kind switched to later, e.g. WebSocket, so an upgraded idle conn is one allocation). */
void *hd_conn_ext(hd_conn_t *c);

/* Serves fd, a connection just accepted (non-blocking), as a new conn served by h, and starts
 * reading. over_limit: the server is full; the conn only answers 503 / close 1013. tls: a TLS
 * listener's context (the conn gets a session of it and h sees plaintext), or NULL. 0, or HD_E*
 * (then the fd is still the caller's). */
int hd_conn_accept(hd_server_t *s, int fd, const hd_conn_handler_t *h, bool over_limit, hd_tls_ctx_t *tls);
/* Takes over fd, an already connected TCP socket (e.g. handed over by another shard), as a new
 * conn of s served by h with state udata, and starts reading. 0 and *out, or HD_E* (then the fd
 * is still the caller's). */
int hd_conn_adopt(hd_server_t *s, int fd, const hd_conn_handler_t *h, void *udata, hd_conn_t **out);
/* Queues a reference to buf (the caller keeps its own) to be written in this iteration's batch.
 * Returns 0, HD_ECLOSED when the conn is closing, or HD_ETOOBIG when the queue would pass
 * max_backpressure (the caller closes the conn as a slow consumer). */
int hd_conn_write(hd_conn_t *c, hd_buf_t *buf);
/* Queues buf past the backpressure limit: a response body that must go out whole. 0 or HD_ECLOSED. */
int hd_conn_write_force(hd_conn_t *c, hd_buf_t *buf);
/* Queues buf past the backpressure limit (last words such as a close frame), then ends the conn. */
void hd_conn_write_final(hd_conn_t *c, hd_buf_t *buf);
/* Writes what is queued now, in a write of its own, instead of with this iteration's batch (a
 * protocol answer that must reach the peer before what follows it, e.g. Socket.IO's CONNECT). */
void hd_conn_flush_now(hd_conn_t *c);
/* Stops reading, writes what is queued, then closes the socket. */
void hd_conn_end(hd_conn_t *c);
/* Closes the socket now, dropping queued data. */
void hd_conn_abort(hd_conn_t *c);
/* Hands the socket over (to another shard): returns its descriptor, which the caller owns from
 * now on, and closes the conn without sending anything; queued data is dropped. HD_EIO when the
 * conn is already closed. */
int hd_conn_take_fd(hd_conn_t *c);
/* True when c speaks TLS (its kind still sees plaintext only). */
bool hd_conn_is_tls(const hd_conn_t *c);
/* Puts TLS session t (owned by c from now on) under c: what c reads is decrypted for its kind and
 * what it queues is encrypted. A session still in its handshake counts in the handshakes in flight. */
void hd_conn_attach_tls(hd_conn_t *c, hd_tls_t *t);
/* Detaches c's TLS session (or NULL) and gives it to the caller, e.g. to move it to another shard
 * with the descriptor (hd_conn_take_fd next): one owner thread at a time. */
hd_tls_t *hd_conn_take_tls(hd_conn_t *c);
/* Decrypts what c's TLS session holds already and hands it to the kind (a session that was moved
 * here may carry records read on the other shard). No-op on plain conns. */
void hd_conn_tls_pump(hd_conn_t *c);
/* Bytes received by the kernel and not read yet (0 when unknown). */
size_t hd_conn_unread_bytes(const hd_conn_t *c);
/* Starts or stops reading from the socket. */
void hd_conn_set_reading(hd_conn_t *c, bool on);
/* Holds the conn across an async operation (its memory outlives the socket until released). */
void hd_conn_retain(hd_conn_t *c);
/* Drops a hold taken with hd_conn_retain; frees the conn when it was the last. */
void hd_conn_release(hd_conn_t *c);
/* Peer address as "ip:port" into out (for logs and rate limits). */
void hd_conn_peer(const hd_conn_t *c, char *out, size_t len);


/* The server's connections as a whole (the list and the flush list are conn.c's). */
/* Reads from and writes to the conns whose sockets are ready, as the shard's epoll set reports
 * them (called when its descriptor is readable). */
void hd_conn_serve_ready(hd_server_t *s);
/* Writes every conn's queued buffers, one batch each, and lets closed conns go (the flusher, once
 * per loop iteration, after the events of the iteration). */
void hd_conn_flush_all(hd_server_t *s);
/* Closes conns that linger too long or whose peer stopped reading, then runs each kind's sweep. */
void hd_conn_sweep_all(hd_server_t *s, uint64_t now_ms);
/* Asks every conn's kind to stop gracefully (on_shutdown). */
void hd_conn_shutdown_all(hd_server_t *s);
/* Closes every conn now, queued data dropped; memory goes as the close callbacks run. */
void hd_conn_abort_all(hd_server_t *s);

#endif
