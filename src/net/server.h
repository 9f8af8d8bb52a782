/* One shard's network side: a libuv loop with its listeners (plain and/or TLS; SO_REUSEPORT when the
 * node runs several shards), connections, router, write batching, timeouts (one sweep timer for all connections),
 * metrics, graceful shutdown, and what it knows of the other shards (to hand a connection over).
 * All mutable state of a shard lives here and in its app; the node (src/node) runs N of them. */
#ifndef HD_SERVER_H
#define HD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "core/config.h"
#include "core/histogram.h"
#include "core/mailbox.h"
#include "net/http_router.h"
#include "net/ws_deflate.h"

typedef struct hd_conn hd_conn_t;
typedef struct hd_conn_handler hd_conn_handler_t; /* see conn.h */
typedef struct hd_tls_ctx hd_tls_ctx_t;           /* see tls.h */

#define HD_MAX_PROTOCOLS 8

/* Counters exported by /health and /metrics. */
typedef struct {
  uint64_t accepted, refused;          /* TCP connections */
  uint64_t frames_in, frames_out;      /* WebSocket messages and control frames */
  uint64_t bytes_in, bytes_out;        /* socket bytes */
  uint64_t http_requests[600];         /* by status code */
  uint64_t slow_consumers;             /* closed for passing max_backpressure */
  uint64_t accept_errors;              /* accept failed (out of descriptors): waiting connections shed */
  uint64_t loop_lag_ms, loop_lag_max_ms;
  uint64_t tls_handshakes;             /* completed */
  uint64_t tls_handshake_failures;     /* not TLS, no shared version or cipher, bad records */
  uint64_t tls_handshake_timeouts;     /* closed for passing --tls-handshake-timeout */
  uint64_t tls_handshakes_refused;     /* closed at accept: too many handshakes in flight */
  uint32_t conns_http;                 /* connections not upgraded (yet) */
  uint32_t conns_ws[HD_MAX_PROTOCOLS]; /* WebSocket connections by protocol id */
  const char *protocol_names[HD_MAX_PROTOCOLS];
  uint32_t protocol_count;
  hd_histogram_t http_duration;        /* request complete to response queued (polling GETs left out) */
  hd_histogram_t publish_to_write;     /* broadcast frames: publish to written to the socket, per recipient */
} hd_metrics_t;

typedef struct hd_server hd_server_t;

/* Another shard of the node, for handing a connection to it. */
typedef struct {
  hd_server_t *server;
  hd_mailbox_t *mailbox;
} hd_server_peer_t;

struct hd_server {
  uv_loop_t *loop;
  const hd_config_t *cfg;
  hd_router_t *router;
  uv_poll_t listener;         /* --port: plain, or TLS when tls_on_port (on listen_fd) */
  uv_poll_t tls_listener;     /* --tls-port beside a plain --port (tls_listening; on tls_listen_fd) */
  int listen_fd, tls_listen_fd; /* -1 until listening */
  int epfd;                   /* the shard's epoll set of connections (conn.c registers them) */
  uv_poll_t conns_ready;      /* readable when a connection in epfd is ready: conn.c serves it */
  int reserve_fd;             /* held open to be closed when out of descriptors (see accept) */
  hd_tls_ctx_t *tls_ctx;      /* this shard's reference on the TLS context, or NULL (plain only) */
  bool tls_on_port;           /* the --port listener speaks TLS (no --tls-port) */
  bool tls_listening, tls_accept_paused;
  uint32_t tls_handshakes;    /* handshakes in flight on this shard (conn.c counts them) */
  uint32_t *node_tls_handshakes; /* the same over every shard (atomic; set by the node), or NULL */
  uv_check_t flusher;        /* writes every connection's pending frames once per iteration */
  uv_idle_t waker;           /* keeps poll from blocking while writes are queued */
  struct {
    void (*fn)(void *arg);
    void *arg;
  } flush_hooks[8];          /* run by the flusher before connections are written */
  uint32_t flush_hook_count;
  struct {
    void (*fn)(void *arg);
    void *arg;
  } stop_hooks[8];           /* run when a graceful stop begins */
  uint32_t stop_hook_count;
  uv_timer_t sweeper;        /* timeouts, pings, loop-lag measurement */
  uv_timer_t grace;          /* shutdown deadline */
  uint32_t shard;            /* index of this shard in its node */
  const hd_server_peer_t *peers; /* every shard of the node, by index (set by the node), or NULL */
  uint32_t peer_count;
  char date[40];             /* the HTTP Date header's value, for the second date_at */
  time_t date_at;
  const hd_conn_handler_t *accept_handler; /* the kind of accepted connections (HTTP) */
  size_t conn_ext_size;      /* bytes reserved per connection for the kind it may switch to */
  hd_conn_t *conns;          /* all open connections (doubly linked; conn.c's business) */
  hd_conn_t *flush_list;     /* connections with queued, unflushed bytes (conn.c's business) */
  uint32_t conn_count;
  uint32_t *node_conn_count; /* the node's open connections over every shard (atomic; set by the node,
                              * else this shard's own count): --max-connections bounds it */
  /* Sends a request for something another node of the cluster owns (an Engine.IO session whose id
   * names node_tag, 3 characters) to that node; set by the node when clustered, else NULL. 0 when
   * it took the exchange; otherwise the caller answers as if the thing did not exist. */
  int (*forward)(void *arg, hd_http_exchange_t *ex, const char *node_tag);
  void *forward_arg;
  bool listening, stopping;
  bool accept_paused;        /* a connection waits in the listener's queue past the refusal budget
                              * or the descriptors: the listener is not watched until the sweep retries */
  uint32_t fd_conn_budget;   /* connections the open-file limit allows over the node (0: enough for
                              * --max-connections); past it accepting pauses rather than meet EMFILE */
  uint64_t accept_warned_ms; /* last accept-failure warning (rate-limited) */
  uint64_t started_ms;       /* monotonic */
  uint64_t sweep_expected_ms;
  char *web_root_real;       /* realpath of cfg->web_root, or NULL when absent */
  hd_ws_deflater_t *deflaters[16]; /* shared no-context-takeover compressors by window bits */
  hd_metrics_t metrics;
  char read_buf[65536];      /* shared by all reads: connections keep only leftovers */
  int exit_code;
};

/* Prepares a shard on loop with cfg (borrowed, must outlive the server). 0 or HD_E*. */
int hd_server_init(hd_server_t *s, uv_loop_t *loop, const hd_config_t *cfg);
/* Serves accepted connections with handler h, reserving ext_size bytes in each connection's
 * allocation for the state of a kind it may switch to (see hd_conn_ext). Call before listening. */
void hd_server_set_accept(hd_server_t *s, const hd_conn_handler_t *h, size_t ext_size);
/* Binds and listens on cfg host and `port` (0 = any free port), with SO_REUSEPORT when `shared` so
 * the shards of a node listen on one port side by side. 0 or a negative uv/HD error (HD_EINVAL
 * when no accept handler was set). */
int hd_server_listen(hd_server_t *s, int port, bool shared);
/* The port actually bound (useful with --port 0). */
int hd_server_port(const hd_server_t *s);
/* Serves TLS with ctx (a reference of the shard's own is taken; the one it held is dropped), for
 * connections accepted from now on; those already open keep the context of their handshake. Call
 * on the shard's thread, before listening or at a live reload. */
void hd_server_set_tls(hd_server_t *s, hd_tls_ctx_t *ctx);
/* Listens for TLS on `port`: beside the plain listener (separate) or as the --port listener itself
 * (!separate: call instead of hd_server_listen). The context must be set. 0 or a uv/HD error. */
int hd_server_listen_tls(hd_server_t *s, int port, bool shared, bool separate);
/* The port the TLS listener bound, or -1 when there is none. */
int hd_server_tls_port(const hd_server_t *s);
/* Begins a graceful stop: no new connections, WebSocket close 1001 to everyone, in-flight HTTP
 * responses finish; the loop ends when every connection is gone or the grace period expires. */
void hd_server_stop(hd_server_t *s);
/* Releases what init allocated; call after the loop has ended. */
void hd_server_free(hd_server_t *s);
/* Registers a WebSocket protocol name for metrics; returns its id (0..HD_MAX_PROTOCOLS-1). */
int hd_server_protocol_id(hd_server_t *s, const char *name);
/* The shared deflater for window_bits (created on first use), or NULL when out of memory. */
hd_ws_deflater_t *hd_server_deflater(hd_server_t *s, int window_bits);
/* Registers fn to run once per loop iteration just before queued writes go out (protocols batch
 * their own output there, e.g. long-polling responses). 0 or HD_ERANGE. */
int hd_server_add_flush_hook(hd_server_t *s, void (*fn)(void *arg), void *arg);
/* Registers fn to run when a graceful stop begins (protocols close their sessions). 0 or HD_ERANGE. */
int hd_server_add_stop_hook(hd_server_t *s, void (*fn)(void *arg), void *arg);
/* At start: raises the soft open-file limit (up to the hard one) to what --max-connections needs
 * with `shards` shards. 0 when enough; else, after a warning naming the shortfall, how many
 * connections the descriptors allow over the node (for fd_conn_budget). */
uint32_t hd_server_raise_fd_limit(const hd_config_t *cfg, unsigned shards);
/* Open connections of the whole node (every shard), for the connection limit. */
uint32_t hd_server_node_connections(const hd_server_t *s);
/* Makes sure the loop flushes soon even when nothing else is pending (called by conn.c). */
void hd_server_wake(hd_server_t *s);
/* Milliseconds since the server started. */
uint64_t hd_server_uptime_ms(const hd_server_t *s);

#endif
