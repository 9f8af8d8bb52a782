/* A TCP connection of a shard: shared-buffer reads, a queue of refcounted buffers written in one
 * batch per loop iteration, backpressure limit, deferred close. It is served first as HTTP and may
 * be upgraded to WebSocket (see http_conn.h, ws_conn.h). */
#ifndef HD_CONN_H
#define HD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "net/server.h"

typedef struct hd_http_conn hd_http_conn_t;
typedef struct hd_ws hd_ws_t;

typedef enum { HD_CONN_HTTP, HD_CONN_WS } hd_conn_kind_t;

typedef struct {
  hd_buf_t *buf;
  size_t off; /* bytes of buf already written */
} hd_wq_entry_t;

struct hd_conn {
  uv_tcp_t tcp;
  hd_server_t *server;
  hd_conn_t *prev, *next;     /* server->conns */
  hd_conn_t *flush_next;      /* server->flush_list */
  hd_wq_entry_t *wq;          /* write queue: entries [wq_head, wq_len); wq_inline until it grows */
  uint32_t wq_head, wq_len, wq_cap;
  uint32_t inflight;          /* entries handed to a uv_write not yet completed */
  size_t pending_bytes;       /* queued, unwritten bytes */
  uint64_t last_read_ms;      /* monotonic ms of the last bytes received */
  uint64_t since_ms;          /* start of the current timed phase (request, close wait, linger) */
  uint64_t last_write_ms;     /* when queued bytes last made progress (or were first queued) */
  uint32_t refs;              /* 1 for the open handle + 1 per outstanding async operation */
  uint8_t kind;               /* hd_conn_kind_t */
  bool in_flush_list, closing, ending, reading, write_active, over_limit;
  bool lingering;             /* half-closed: reading and discarding until the peer closes */
  union {
    hd_http_conn_t *http;
    hd_ws_t *ws;              /* lives in the same allocation, right after the conn */
  } u;
  hd_wq_entry_t wq_inline[2]; /* most connections never queue more: no allocation for them */
};

/* The space reserved after a conn for its WebSocket state (zeroed), so an upgraded idle
 * connection is one allocation. */
hd_ws_t *hd_conn_ws_slot(hd_conn_t *c);

/* Accepts a pending connection on the listener into a new conn and starts serving HTTP.
 * over_limit: the server is full; the conn only answers 503 / close 1013. */
int hd_conn_accept(hd_server_t *s, bool over_limit);
/* Queues a reference to buf (the caller keeps its own) to be written in this iteration's batch.
 * Returns 0, HD_ECLOSED when the conn is closing, or HD_ETOOBIG when the queue would pass
 * max_backpressure (the caller closes the conn as a slow consumer). */
int hd_conn_write(hd_conn_t *c, hd_buf_t *buf);
/* Queues buf past the backpressure limit: a response body that must go out whole. 0 or HD_ECLOSED. */
int hd_conn_write_force(hd_conn_t *c, hd_buf_t *buf);
/* Queues buf past the backpressure limit (last words such as a close frame), then ends the conn. */
void hd_conn_write_final(hd_conn_t *c, hd_buf_t *buf);
/* Closes connections that linger too long or whose peer stopped reading; called by the sweep.
 * Returns true when the conn was closed. */
bool hd_conn_sweep(hd_conn_t *c, uint64_t now_ms);
/* Writes every queued buffer: try_write, then one uv_write for the rest. Called by the flusher. */
void hd_conn_flush(hd_conn_t *c);
/* Stops reading, writes what is queued, then closes the socket. */
void hd_conn_end(hd_conn_t *c);
/* Closes the socket now, dropping queued data. */
void hd_conn_abort(hd_conn_t *c);
/* Starts or stops reading from the socket. */
void hd_conn_set_reading(hd_conn_t *c, bool on);
/* Holds the conn across an async operation (its memory outlives the socket until released). */
void hd_conn_retain(hd_conn_t *c);
/* Drops a hold taken with hd_conn_retain; frees the conn when it was the last. */
void hd_conn_release(hd_conn_t *c);
/* Peer address as "ip:port" into out (for logs and rate limits). */
void hd_conn_peer(const hd_conn_t *c, char *out, size_t len);

#endif
