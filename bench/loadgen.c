/* herald-loadgen: a single-threaded libuv WebSocket load generator for Herald's benchmarks.
 *
 * The engine opens N client connections at a bounded rate (at most --concurrency connects and
 * handshakes in flight, failed attempts retried), completes the RFC 6455 handshake, then runs
 * fixed phases: connect -> warm-up -> measure -> stop (close handshake) -> report. What travels
 * on the connections is up to a mode, a small struct of callbacks (lg_mode_t): raw WebSocket
 * `echo` and `idle`; Socket.IO v5 over Engine.IO v4 (`sio-fanout`, `sio-ack`, `sio-idle`,
 * `sio-connect`); Herald's JSON protocol (`json-fanout`, publishing over the WebSocket or the
 * HTTP publish API). Output: a human summary on stdout and, as its last line, one JSON object
 * for scripts. Traffic goes to --host only (to several ports of it with --port P1,P2,...: the
 * connections are spread over them, e.g. the nodes of a cluster). With --tls every connection
 * speaks TLS (OpenSSL over memory BIOs, full handshakes, no resumption, the certificate not
 * verified: a load generator, not a client to trust). */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "core/buf.h"
#include "core/error.h"

#define LG_READ_BUF (64 * 1024)
#define LG_MAX_MESSAGE (64u << 20)     /* largest server message accepted (bytes) */
#define LG_MAX_SEND_QUEUE (64u << 20)  /* bytes queued in libuv per connection before giving up */
#define LG_MAX_RESPONSE_HEAD 8192      /* handshake response header limit */
#define LG_TICK_MS 100
#define LG_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define LG_MAX_PORTS 16 /* --port P1,P2,...: servers the connections are spread over */
#define LG_MAX_PIDS 16  /* --server-pid / --aux-pid lists */

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xA };

/* Connection states. A connection is restarted (same struct, same handle memory) on retry. */
enum {
  ST_NEW,         /* never started */
  ST_CONNECTING,  /* TCP connect in flight */
  ST_HANDSHAKE,   /* upgrade request sent, waiting for 101 */
  ST_PROTO,       /* WebSocket open, the mode's own handshake under way (counts as connecting) */
  ST_OPEN,        /* open: WebSocket and, if any, the mode's handshake */
  ST_CLOSING,     /* close frame sent or received; waiting for the server's FIN */
  ST_CLOSED,      /* uv_close called; on_close pending */
  ST_RETRY,       /* attempt failed; queued for another */
  ST_FAILED,      /* out of attempts */
  ST_DONE,        /* closed for good */
};

/* PH_DRAIN: after the window, for modes with on_drain: nothing new is sent, in-flight traffic
 * is awaited (at most --close-timeout) so that totals can be checked exactly. */
enum { PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_STOP };

/* Error categories; one counter each, summed into "errors". */
#define LG_ERRORS(X)                                                   \
  X(connect, "connections that never opened (after retries)")          \
  X(closed, "open connections closed or reset by the server")          \
  X(protocol, "malformed or unexpected frames")                        \
  X(mismatch, "replies that did not match what was sent")             \
  X(write, "write failures")

enum {
#define LG_ERR_ENUM(name, help) LG_ERR_##name,
  LG_ERRORS(LG_ERR_ENUM)
#undef LG_ERR_ENUM
  LG_ERR_COUNT
};

/* Microsecond latency histogram: exact below 1024 us, then 512 buckets per power of two
 * (relative error under 0.2%), clamped at about 2^42 us. */
#define HIST_LINEAR 1024
#define HIST_SUB 512
#define HIST_LEVELS 32
#define HIST_N (HIST_LINEAR + HIST_LEVELS * HIST_SUB)

typedef struct {
  uint64_t counts[HIST_N];
  uint64_t total, sum_us, min_us, max_us;
} lg_hist_t;

typedef struct {
  const char *host;
  int port;                  /* the first of ports: the publisher's, the API's */
  int ports[LG_MAX_PORTS];   /* connection i (the publisher aside) goes to ports[i % n_ports] */
  int n_ports;
  const char *url;
  int connections;
  size_t size;
  int pipeline;
  bool binary;
  double duration, warmup, hold;
  int concurrency, retries;
  double connect_timeout, close_timeout;
  int server_pid;                  /* the first of server_pids (0: none) */
  int server_pids[LG_MAX_PIDS];    /* their CPU is summed as the server's */
  int n_server_pids;
  int aux_pids[LG_MAX_PIDS];       /* --aux-pid: CPU reported apart (e.g. a Redis the servers use) */
  int n_aux_pids;
  bool window_all;                 /* fan-out: a broadcast leaves the window once every member has it */
  const char *ready_file;
  bool quiet;
  int window;            /* fan-out: broadcasts in flight */
  double rate;           /* fan-out: broadcasts per second, sio-ack: emits per second, at most (0: no limit) */
  const char *token;     /* json-fanout: JWT of the subscribers (and of the publisher by default) */
  const char *pub_token; /* json-fanout: JWT of the publisher */
  const char *api_key;   /* json-fanout --via-api: X-API-Key */
  const char *topic;     /* json-fanout: topic */
  bool via_api;          /* json-fanout: publish with POST /api/v1/publish */
  bool tls;              /* wss:// (TLS under every WebSocket connection) */
} lg_opts_t;

typedef struct lg lg_t;
typedef struct lg_conn lg_conn_t;

/* A load pattern. The engine owns connections and phases; a mode decides what to send and how
 * to judge replies. Every callback may be NULL. */
typedef struct {
  const char *name;
  const char *help;
  const char *default_url;
  /* The connection is open only once the mode's own handshake is done: the mode calls
   * lg_conn_ready() (until then it counts against --concurrency and --connect-timeout). */
  bool handshake;
  /* Connection churn: from the warm-up on, a connection that closed normally is started again. */
  bool recycle;
  /* Checks options and builds shared state before any connection (it may change
   * o.connections); 0 or -1 (message printed). */
  int (*on_init)(lg_t *lg);
  /* One connection completed its WebSocket handshake (the mode's handshake starts here). */
  void (*on_open)(lg_conn_t *c);
  /* Every connection opened or failed for good: start the traffic. */
  void (*on_start)(lg_t *lg);
  /* A complete data message (text or binary) arrived; data is valid during the call only. */
  void (*on_message)(lg_conn_t *c, int opcode, const uint8_t *data, size_t len);
  /* Prints the mode's part of the summary and appends its JSON fields (",\"k\":v" ...). */
  void (*on_report)(lg_t *lg, hd_sbuf_t *json);
  /* Queues the protocol's goodbye on an open connection, before the engine's close frame. */
  void (*on_bye)(lg_conn_t *c);
  /* The window ended (figures are frozen): send nothing new. Returns true when nothing is in
   * flight; otherwise the mode calls lg_stop() once it is (the engine gives up after
   * --close-timeout). */
  bool (*on_drain)(lg_t *lg);
  /* The run stops: close the mode's own handles. */
  void (*on_stop)(lg_t *lg);
} lg_mode_t;

/* Fan-out modes: one publisher, every connection receives (see fan_* below). */
typedef struct {
  int receivers;          /* connections that only receive */
  int members;            /* copies of each broadcast that come back: receivers (+ the publisher) */
  lg_conn_t *pub;         /* the publishing connection, NULL with --via-api */
  int (*publish)(lg_t *lg, uint64_t seq, const char *payload, size_t len);
  uint64_t published;     /* broadcasts sent, whole run */
  uint64_t released;      /* broadcasts out of the window: own copy back (or HTTP answer) */
  uint64_t answers;       /* JSON acks or HTTP answers to the publisher */
  uint64_t reported;      /* sum of the server's "delivered" counts in those answers */
  uint64_t deliveries;    /* copies received, whole run */
  uint64_t other_events;  /* other Socket.IO events (e.g. Herald's test-handler `auth`) */
  bool answered;          /* the server answers each publish (JSON ack, HTTP response) */
  uint32_t *copies;       /* --window-all: copies of broadcast SEQ received so far, at SEQ % window */
  bool draining;
  hd_sbuf_t scratch;
  /* --via-api */
  uv_tcp_t http;
  uv_connect_t http_req;
  hd_sbuf_t http_in;
  hd_sbuf_t http_out; /* requests queued by this round of fan_pump, written at once */
  int http_state; /* 0 none, 1 connecting, 2 open, 3 closing */
} lg_fan_t;

/* --rate: item n+1 (a broadcast, an emit) may leave once n / rate seconds have passed since the
 * first; a 1 ms timer lets out what waited. */
typedef struct {
  uv_timer_t timer;
  uint64_t t0;
  bool on;
} lg_pace_t;

/* sio-ack with --rate: connections whose next emit waits for the pace (a ring, each at most once). */
typedef struct {
  uint64_t sent;       /* emits, whole run */
  uint32_t *waiting;
  uint32_t head, len;
} lg_ack_t;

struct lg_conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  lg_t *lg;
  uint32_t id;
  uint8_t state;
  uint8_t attempts;
  bool ever_open;
  bool attempt_failed; /* this close ends a failed attempt (retry candidate) */
  bool dirty;          /* on lg->dirty, out to be flushed before the next poll */
  bool in_frag;
  uint8_t frag_op;
  uint8_t pstate;       /* the mode's protocol state */
  uint8_t port_idx;     /* index in o.ports of the server it connects to */
  uint64_t t_attempt;   /* uv_hrtime of the attempt's start */
  uint64_t seq_out;     /* mode: last id or sequence sent */
  uint64_t seq_in;      /* mode: last id or sequence received */
  uint64_t deadline_ns; /* ST_CONNECTING/ST_HANDSHAKE: give up the attempt after this */
  uint64_t retry_ns;    /* ST_RETRY: earliest restart */
  char key[32];         /* Sec-WebSocket-Key (base64 of 16 bytes) */
  hd_sbuf_t in;         /* received bytes not yet parsed */
  hd_sbuf_t out;        /* frames queued this loop iteration */
  hd_sbuf_t frag;       /* fragmented message being reassembled */
  SSL *ssl;             /* --tls: this attempt's session (memory BIOs), NULL before connect */
  bool tls_done;        /* --tls: handshake complete, c->out may be encrypted */
  uint64_t *stamps;     /* FIFO of send times (ns) of messages awaiting a reply */
  uint32_t stamp_head, stamp_len, stamp_cap;
};

struct lg {
  uv_loop_t *loop;
  const lg_mode_t *mode;
  lg_opts_t o;
  struct sockaddr_storage addr[LG_MAX_PORTS]; /* one per --port */
  lg_conn_t *conns;
  lg_conn_t **dirty;
  uint32_t n_dirty;
  int phase;
  uv_timer_t phase_timer, tick_timer, stop_timer;
  uv_prepare_t flush_prep;
  uv_signal_t sig_int, sig_term;
  bool finished;
  bool complete; /* the stop came during the measurement (or hold), not before it */
  /* connection bookkeeping */
  int next_new;   /* index of the next never-started connection */
  int connecting; /* attempts in flight */
  int n_open;     /* currently open */
  int n_settled;  /* opened at least once, or failed for good */
  int n_failed;
  int n_handles;  /* tcp handles initialised and not yet closed */
  int open_at_stop;
  uint32_t *retry_q;
  uint32_t rq_head, rq_len;
  uint64_t retries;
  int closed_clean, closed_forced; /* after the stop: server answered and closed / we gave up */
  /* times (uv_hrtime ns) */
  uint64_t t_begin, t_settled, t_measure, t_end;
  uint64_t now_ns; /* set at the top of each read callback */
  uint64_t last_progress;
  /* counters: *_total over the whole run, the rest over the measurement window */
  uint64_t received, received_total; /* data messages accepted by the mode */
  uint64_t frames_in;                /* every frame received, control frames included */
  uint64_t counted_total;            /* sio-ack: acks, sio-connect: CONNECTs, whole run */
  uint64_t errors[LG_ERR_COUNT];
  char first_error[160];
  lg_hist_t hist;
  /* CPU: the loadgen itself and, with --server-pid, the server (clock ticks) */
  struct rusage ru_measure, ru_end;
  long long srv_ticks_measure, srv_ticks_end; /* summed over --server-pid */
  long long pid_ticks_measure[2 * LG_MAX_PIDS], pid_ticks_end[2 * LG_MAX_PIDS]; /* servers, then aux */
  uint64_t received_by_port[LG_MAX_PORTS]; /* fan-out: copies received in the window, per server */
  long long all_ticks_measure, all_ticks_end; /* every CPU of the machine, busy */
  int closed_recycled;              /* recycle modes: closes completed while churning */
  /* mode state */
  const char *last_url; /* if set, the URL of the last connection (a publisher) */
  lg_fan_t fan;
  lg_ack_t ack;
  lg_pace_t pace;
  uint8_t *payload; /* echo: the message every connection sends */
  size_t payload_len;
  uint64_t rng;
  SSL_CTX *tls;           /* --tls */
  uint64_t tls_handshakes; /* completed, whole run */
  char read_buf[LG_READ_BUF];
  char plain_buf[LG_READ_BUF]; /* --tls: decrypted input */
};

static void conn_close(lg_conn_t *c);
static void conn_start(lg_conn_t *c);
static void lg_stop(lg_t *lg, const char *why);
static void lg_pump(lg_t *lg);

/* ---- small utilities ------------------------------------------------------------------ */

static void die(const char *what, int err) {
  fprintf(stderr, "loadgen: %s: %s\n", what, uv_strerror(err));
  exit(1);
}

#define LG_CHECK(expr)                 \
  do {                                 \
    int rc_ = (expr);                  \
    if (rc_ < 0) die(#expr, rc_);      \
  } while (0)

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (!p) {
    fprintf(stderr, "loadgen: out of memory\n");
    exit(1);
  }
  return p;
}

static uint64_t rng_next(lg_t *lg) { /* xorshift64* */
  lg->rng ^= lg->rng >> 12;
  lg->rng ^= lg->rng << 25;
  lg->rng ^= lg->rng >> 27;
  return lg->rng * 2685821657736338717ull;
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }

/* Counts one error of category cat (who: "connection 12", ...); the first one's text is kept for
 * the summary. */
static void lg_error_at(lg_t *lg, const char *who, int cat, const char *what, int uverr) {
  if (lg->phase == PH_STOP) return;
  lg->errors[cat]++;
  if (!lg->first_error[0])
    snprintf(lg->first_error, sizeof lg->first_error, "%s: %s%s%s", who, what, uverr ? ": " : "",
             uverr ? uv_strerror(uverr) : "");
}

static void lg_error(lg_conn_t *c, int cat, const char *what, int uverr) {
  char who[32];
  snprintf(who, sizeof who, "connection %u", (unsigned)c->id);
  lg_error_at(c->lg, who, cat, what, uverr);
}

static uint64_t lg_errors_total(const lg_t *lg) {
  uint64_t n = 0;
  for (int i = 0; i < LG_ERR_COUNT; i++) n += lg->errors[i];
  return n;
}

/* utime + stime of a process in clock ticks, or -1. */
static long long proc_cpu_ticks(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
  if (!p) return -1;
  unsigned long long utime, stime;
  /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return -1;
  return (long long)(utime + stime);
}

/* Reads the CPU ticks of every --server-pid, then every --aux-pid, into ticks[]; returns the
 * servers' sum, or -1 when one of them could not be read (or there is none). */
static long long pids_cpu_ticks(lg_t *lg, long long *ticks) {
  long long sum = 0;
  for (int i = 0; i < lg->o.n_server_pids + lg->o.n_aux_pids; i++) {
    bool server = i < lg->o.n_server_pids;
    ticks[i] = proc_cpu_ticks(server ? lg->o.server_pids[i] : lg->o.aux_pids[i - lg->o.n_server_pids]);
    if (server && (sum < 0 || ticks[i] < 0)) sum = -1;
    else if (server) sum += ticks[i];
  }
  return lg->o.n_server_pids ? sum : -1;
}

/* Busy time of the whole machine (all CPUs, /proc/stat) in clock ticks, or -1. */
static long long machine_busy_ticks(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return -1;
  unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
                 &iowait, &irq, &softirq, &steal);
  fclose(f);
  if (n != 8) return -1;
  return (long long)(user + nice + sys + irq + softirq + steal);
}

static double rusage_cpu_s(const struct rusage *a, const struct rusage *b) {
  double ua = (double)a->ru_utime.tv_sec + (double)a->ru_utime.tv_usec / 1e6;
  double sa = (double)a->ru_stime.tv_sec + (double)a->ru_stime.tv_usec / 1e6;
  double ub = (double)b->ru_utime.tv_sec + (double)b->ru_utime.tv_usec / 1e6;
  double sb = (double)b->ru_stime.tv_sec + (double)b->ru_stime.tv_usec / 1e6;
  return (ub + sb) - (ua + sa);
}

/* ---- histogram -------------------------------------------------------------------------- */

static size_t hist_index(uint64_t us) {
  if (us < HIST_LINEAR) return (size_t)us;
  int e = 63 - __builtin_clzll(us); /* >= 10 */
  int level = e - 10;
  if (level >= HIST_LEVELS) return HIST_N - 1;
  return HIST_LINEAR + (size_t)level * HIST_SUB + (size_t)((us >> (e - 9)) - HIST_SUB);
}

/* Highest value that lands in bucket i. */
static uint64_t hist_bucket_max(size_t i) {
  if (i < HIST_LINEAR) return i;
  size_t level = (i - HIST_LINEAR) / HIST_SUB, sub = (i - HIST_LINEAR) % HIST_SUB;
  int shift = (int)level + 1;
  return (((uint64_t)(HIST_SUB + sub) + 1) << shift) - 1;
}

static void hist_add(lg_hist_t *h, uint64_t us) {
  h->counts[hist_index(us)]++;
  if (h->total == 0 || us < h->min_us) h->min_us = us;
  if (us > h->max_us) h->max_us = us;
  h->total++;
  h->sum_us += us;
}

/* The q-quantile (0 < q <= 1) in microseconds, as the top of its bucket (exact below 1 ms). */
static uint64_t hist_quantile(const lg_hist_t *h, double q) {
  if (h->total == 0) return 0;
  uint64_t rank = (uint64_t)ceil(q * (double)h->total), seen = 0;
  if (rank < 1) rank = 1;
  for (size_t i = 0; i < HIST_N; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      uint64_t v = hist_bucket_max(i);
      return v > h->max_us ? h->max_us : v;
    }
  }
  return h->max_us;
}

/* ---- per-connection send-time FIFO (round-trip latency) ---------------------------------- */

static bool lg_stamp_push(lg_conn_t *c, uint64_t t) {
  if (c->stamp_len == c->stamp_cap) return false;
  c->stamps[(c->stamp_head + c->stamp_len) % c->stamp_cap] = t;
  c->stamp_len++;
  return true;
}

static bool lg_stamp_pop(lg_conn_t *c, uint64_t *t) {
  if (c->stamp_len == 0) return false;
  *t = c->stamps[c->stamp_head];
  c->stamp_head = (c->stamp_head + 1) % c->stamp_cap;
  c->stamp_len--;
  return true;
}

/* ---- output: frames are appended to c->out and written once per loop iteration ----------- */

static void mark_dirty(lg_conn_t *c) {
  if (c->dirty) return;
  c->dirty = true;
  c->lg->dirty[c->lg->n_dirty++] = c;
}

static void mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t m[4]) {
  uint64_t m8;
  memcpy(&m8, m, 4);
  memcpy((uint8_t *)&m8 + 4, m, 4);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    memcpy(&v, src + i, 8);
    v ^= m8;
    memcpy(dst + i, &v, 8);
  }
  for (; i < len; i++) dst[i] = src[i] ^ m[i & 3];
}

/* Queues one masked, unfragmented client frame; 0 or HD_ENOMEM. Copies data. */
static int lg_send(lg_conn_t *c, int opcode, const void *data, size_t len) {
  uint8_t hdr[14];
  size_t h = 0;
  hdr[h++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    hdr[h++] = (uint8_t)(0x80 | len);
  } else if (len <= 0xffff) {
    hdr[h++] = 0x80 | 126;
    hdr[h++] = (uint8_t)(len >> 8);
    hdr[h++] = (uint8_t)len;
  } else {
    hdr[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  uint32_t key = (uint32_t)rng_next(c->lg);
  memcpy(hdr + h, &key, 4);
  h += 4;
  if (hd_sbuf_reserve(&c->out, h + len)) return HD_ENOMEM;
  uint8_t *p = (uint8_t *)c->out.ptr + c->out.len;
  memcpy(p, hdr, h);
  mask_copy(p + h, data, len, hdr + h - 4);
  c->out.len += h + len;
  c->out.ptr[c->out.len] = '\0';
  mark_dirty(c);
  return 0;
}

typedef struct {
  uv_write_t req;
  size_t len;
  char data[];
} lg_write_t;

static void on_write(uv_write_t *req, int status) {
  lg_write_t *w = (lg_write_t *)req;
  lg_conn_t *c = req->handle->data;
  free(w);
  if (status < 0 && status != UV_ECANCELED && c->state != ST_CLOSED) {
    lg_error(c, LG_ERR_write, "write", status);
    conn_close(c);
  }
}

/* Writes len bytes at ptr on the socket: uv_try_write first, the rest through uv_write with a
 * copy. 0, or -1 when the connection was closed for an error. */
static int raw_write(lg_conn_t *c, const char *ptr, size_t len) {
  uv_buf_t b = uv_buf_init((char *)ptr, (unsigned)len);
  int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (r < 0 && r != UV_EAGAIN) {
    lg_error(c, LG_ERR_write, "write", r);
    conn_close(c);
    return -1;
  }
  size_t done = r > 0 ? (size_t)r : 0;
  if (done < len) {
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > LG_MAX_SEND_QUEUE) {
      lg_error(c, LG_ERR_write, "send queue over limit (server not reading)", 0);
      conn_close(c);
      return -1;
    }
    lg_write_t *w = malloc(sizeof *w + (len - done));
    if (!w) {
      lg_error(c, LG_ERR_write, "out of memory", 0);
      conn_close(c);
      return -1;
    }
    w->len = len - done;
    memcpy(w->data, ptr + done, w->len);
    uv_buf_t wb = uv_buf_init(w->data, (unsigned)w->len);
    r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &wb, 1, on_write);
    if (r < 0) {
      free(w);
      lg_error(c, LG_ERR_write, "write", r);
      conn_close(c);
      return -1;
    }
  }
  return 0;
}

/* --tls: sends what the session has produced (handshake, records, alerts). 0 or -1 (closed). */
static int tls_send_pending(lg_conn_t *c) {
  BIO *out = SSL_get_wbio(c->ssl);
  char *ptr;
  long len = BIO_get_mem_data(out, &ptr);
  if (len <= 0) return 0;
  int rc = raw_write(c, ptr, (size_t)len);
  if (c->ssl) (void)BIO_reset(out);
  return rc;
}

/* Writes c->out (encrypted first with --tls; kept until the TLS handshake is done). */
static void conn_flush(lg_conn_t *c) {
  size_t len = c->out.len;
  if (c->ssl) {
    if (c->tls_done && len) {
      size_t n;
      for (size_t off = 0; off < len; off += n)
        if (!SSL_write_ex(c->ssl, c->out.ptr + off, len - off, &n)) {
          ERR_clear_error();
          lg_error(c, LG_ERR_write, "TLS write", 0);
          conn_close(c);
          return;
        }
      hd_sbuf_consume(&c->out, len);
    }
    tls_send_pending(c);
    return;
  }
  if (len == 0) return;
  if (raw_write(c, c->out.ptr, len) == 0) hd_sbuf_consume(&c->out, len);
}

/* Runs just before the loop polls: every connection written to since gets one write. */
static void on_flush_prepare(uv_prepare_t *h) {
  lg_t *lg = h->data;
  for (uint32_t i = 0; i < lg->n_dirty; i++) {
    lg_conn_t *c = lg->dirty[i];
    c->dirty = false;
    if (c->state == ST_HANDSHAKE || c->state == ST_PROTO || c->state == ST_OPEN || c->state == ST_CLOSING)
      conn_flush(c);
  }
  lg->n_dirty = 0;
}

/* ---- connection life cycle ------------------------------------------------------------- */

static void lg_check_settled(lg_t *lg);

static void on_conn_close(uv_handle_t *h) {
  lg_conn_t *c = h->data;
  lg_t *lg = c->lg;
  lg->n_handles--;
  SSL_free(c->ssl);
  c->ssl = NULL;
  c->tls_done = false;
  c->in.len = 0;
  c->out.len = 0;
  c->frag.len = 0;
  c->in_frag = false;
  c->stamp_len = 0;
  if (c->attempt_failed) {
    c->attempt_failed = false;
    if (lg->phase != PH_STOP && c->attempts <= lg->o.retries) {
      c->state = ST_RETRY;
      c->retry_ns = uv_hrtime() + (uint64_t)c->attempts * 100000000ull; /* 100 ms per attempt */
      lg->retry_q[(lg->rq_head + lg->rq_len) % (uint32_t)lg->o.connections] = c->id;
      lg->rq_len++;
      lg->retries++;
    } else {
      c->state = ST_FAILED;
      if (lg->phase != PH_STOP) {
        lg->errors[LG_ERR_connect]++;
        lg->n_failed++;
        lg->n_settled++;
        lg_check_settled(lg);
      }
    }
  } else if (lg->mode->recycle && (lg->phase == PH_WARMUP || lg->phase == PH_MEASURE)) {
    c->state = ST_RETRY; /* churn: the same slot connects again at once */
    c->attempts = 0;
    c->retry_ns = 0;
    lg->retry_q[(lg->rq_head + lg->rq_len) % (uint32_t)lg->o.connections] = c->id;
    lg->rq_len++;
  } else {
    c->state = ST_DONE;
  }
  if (lg->phase == PH_STOP) {
    if (lg->n_handles == 0) lg_stop(lg, NULL); /* finishes */
  } else {
    lg_pump(lg);
  }
}

/* Closes the socket now (deferred free in on_conn_close); idempotent. */
static void conn_close(lg_conn_t *c) {
  lg_t *lg = c->lg;
  switch (c->state) {
    case ST_CONNECTING:
    case ST_HANDSHAKE:
    case ST_PROTO: lg->connecting--; break;
    case ST_OPEN:
    case ST_CLOSING: lg->n_open--; break;
    default: return; /* no live handle */
  }
  c->state = ST_CLOSED;
  uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

/* An attempt (connect or handshake) failed: close it and let on_conn_close decide on a retry. */
static void conn_fail(lg_conn_t *c, const char *what, int uverr) {
  lg_t *lg = c->lg;
  if (lg->phase != PH_STOP && !lg->first_error[0] && c->attempts > lg->o.retries)
    snprintf(lg->first_error, sizeof lg->first_error, "connection %u: %s%s%s", (unsigned)c->id,
             what, uverr ? ": " : "", uverr ? uv_strerror(uverr) : "");
  c->attempt_failed = true;
  conn_close(c);
}

/* The connection is open (after the mode's own handshake, if it has one). */
static void lg_conn_ready(lg_conn_t *c) {
  lg_t *lg = c->lg;
  if (c->state != ST_PROTO) return;
  lg->connecting--;
  lg->n_open++;
  c->state = ST_OPEN;
  if (!c->ever_open) {
    c->ever_open = true;
    lg->n_settled++;
    lg_check_settled(lg);
  }
  lg_pump(lg);
}

/* A protocol error on c: counted, and the connection closed. During the mode's handshake the
 * attempt fails for good (no retry: a protocol error is not transient), so connecting settles. */
static void lg_conn_error(lg_conn_t *c, int cat, const char *what) {
  lg_error(c, cat, what, 0);
  if (c->state == ST_PROTO) {
    c->attempts = (uint8_t)(c->lg->o.retries + 1);
    conn_fail(c, what, 0);
  } else {
    conn_close(c);
  }
}

/* Starts the close handshake on an open connection: the mode's goodbye, then a close frame. */
static void lg_conn_bye(lg_conn_t *c) {
  static const uint8_t normal[2] = {1000 >> 8, 1000 & 0xff};
  if (c->state != ST_OPEN) return;
  if (c->lg->mode->on_bye) c->lg->mode->on_bye(c);
  if (c->state != ST_OPEN) return;
  if (lg_send(c, OP_CLOSE, normal, 2)) {
    conn_close(c);
    return;
  }
  c->state = ST_CLOSING;
  c->deadline_ns = uv_hrtime() + (uint64_t)(c->lg->o.close_timeout * 1e9);
}

/* The WebSocket handshake is done: the mode's own starts, or the connection is open. */
static void conn_opened(lg_conn_t *c) {
  c->state = ST_PROTO;
  if (c->lg->mode->on_open) c->lg->mode->on_open(c);
  if (!c->lg->mode->handshake) lg_conn_ready(c);
}

/* Validates the 101 response head (head_len bytes, ending in CRLF CRLF); 0 or -1. */
static int check_handshake(lg_conn_t *c, const char *head, size_t head_len) {
  const char *eol = memchr(head, '\r', head_len);
  hd_slice_t status = {head, (size_t)(eol - head)};
  if (status.len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "handshake: got \"%.*s\"", (int)(status.len > 60 ? 60 : status.len),
             head);
    conn_fail(c, msg, 0);
    return -1;
  }
  bool upgrade = false, connection = false, accept_ok = false, extensions = false;
  unsigned char digest[EVP_MAX_MD_SIZE], want[64];
  unsigned dlen = 0;
  char src[64];
  int n = snprintf(src, sizeof src, "%s" LG_WS_GUID, c->key);
  if (!EVP_Digest(src, (size_t)n, digest, &dlen, EVP_sha1(), NULL)) {
    conn_fail(c, "handshake: SHA-1 unavailable", 0);
    return -1;
  }
  int wlen = EVP_EncodeBlock(want, digest, (int)dlen);
  const char *p = eol + 2, *end = head + head_len;
  while (p < end) {
    const char *e = memchr(p, '\r', (size_t)(end - p));
    if (!e || e == p) break;
    const char *colon = memchr(p, ':', (size_t)(e - p));
    if (colon) {
      hd_slice_t name = hd_slice_trim((hd_slice_t){p, (size_t)(colon - p)});
      hd_slice_t value = hd_slice_trim((hd_slice_t){colon + 1, (size_t)(e - colon - 1)});
      if (hd_slice_eq_nocase(name, "upgrade")) upgrade = hd_slice_eq_nocase(value, "websocket");
      else if (hd_slice_eq_nocase(name, "connection")) connection = hd_slice_has_token(value, "upgrade");
      else if (hd_slice_eq_nocase(name, "sec-websocket-extensions")) extensions = true;
      else if (hd_slice_eq_nocase(name, "sec-websocket-accept"))
        accept_ok = value.len == (size_t)wlen && memcmp(value.ptr, want, value.len) == 0;
    }
    p = e + 2;
  }
  const char *bad = !upgrade ? "handshake: no Upgrade: websocket"
                    : !connection ? "handshake: no Connection: upgrade"
                    : !accept_ok ? "handshake: bad Sec-WebSocket-Accept"
                    : extensions ? "handshake: extension accepted though none offered"
                                 : NULL;
  if (bad) {
    conn_fail(c, bad, 0);
    return -1;
  }
  return 0;
}

/* Handles one complete frame. Returns 0, or -1 when the connection was closed. */
static int on_frame(lg_conn_t *c, bool fin, int op, const uint8_t *p, size_t len) {
  lg_t *lg = c->lg;
  lg->frames_in++;
  if (op >= 0x8) {
    if (!fin || len > 125) {
      lg_error(c, LG_ERR_protocol, "bad control frame", 0);
      conn_close(c);
      return -1;
    }
    if (op == OP_PING) {
      if ((c->state == ST_OPEN || c->state == ST_PROTO) && lg_send(c, OP_PONG, p, len)) {
        lg_error(c, LG_ERR_write, "out of memory", 0);
        conn_close(c);
        return -1;
      }
    } else if (op == OP_CLOSE) {
      if (c->state == ST_PROTO) {
        lg_conn_error(c, LG_ERR_closed, "server sent close during the protocol handshake");
        return -1;
      }
      if (c->state == ST_OPEN) { /* server-initiated: answer, then wait for its FIN */
        char what[64];
        snprintf(what, sizeof what, "server sent close %d", len >= 2 ? (p[0] << 8 | p[1]) : 1005);
        lg_error(c, LG_ERR_closed, what, 0);
        lg_send(c, OP_CLOSE, p, len >= 2 ? 2 : 0);
        c->state = ST_CLOSING;
      }
    } else if (op != OP_PONG) {
      lg_error(c, LG_ERR_protocol, "unknown control opcode", 0);
      conn_close(c);
      return -1;
    }
    return 0;
  }
  if (op == OP_CONT) {
    if (!c->in_frag) goto bad;
    if (c->frag.len + len > LG_MAX_MESSAGE || hd_sbuf_append(&c->frag, p, len)) goto big;
    if (!fin) return 0;
    c->in_frag = false;
    op = c->frag_op;
    p = (const uint8_t *)c->frag.ptr;
    len = c->frag.len;
  } else if (op == OP_TEXT || op == OP_BINARY) {
    if (c->in_frag) goto bad;
    if (!fin) {
      c->in_frag = true;
      c->frag_op = (uint8_t)op;
      c->frag.len = 0;
      if (hd_sbuf_append(&c->frag, p, len)) goto big;
      return 0;
    }
  } else {
    goto bad;
  }
  if (c->state == ST_OPEN || c->state == ST_PROTO) {
    lg->received_total++;
    if (lg->mode->on_message) lg->mode->on_message(c, op, p, len);
  }
  if (!c->in_frag) c->frag.len = 0; /* a reassembled message is delivered; drop it */
  return c->state == ST_CLOSED ? -1 : 0;
bad:
  lg_error(c, LG_ERR_protocol, "unexpected data opcode", 0);
  conn_close(c);
  return -1;
big:
  lg_error(c, LG_ERR_protocol, "message too large", 0);
  conn_close(c);
  return -1;
}

/* Parses data[0..len): the 101 head while handshaking, then frames. Returns bytes consumed, or
 * -1 when the connection was closed. */
static ssize_t conn_parse(lg_conn_t *c, const uint8_t *data, size_t len) {
  size_t pos = 0;
  if (c->state == ST_HANDSHAKE) {
    const uint8_t *end = memmem(data, len, "\r\n\r\n", 4);
    if (!end) {
      if (len > LG_MAX_RESPONSE_HEAD) {
        conn_fail(c, "handshake: response head too large", 0);
        return -1;
      }
      return 0;
    }
    pos = (size_t)(end - data) + 4;
    if (check_handshake(c, (const char *)data, pos) < 0) return -1;
    conn_opened(c);
    if (c->state == ST_CLOSED) return -1;
  }
  while (len - pos >= 2) {
    const uint8_t *p = data + pos;
    size_t avail = len - pos, hl = 2;
    bool fin = p[0] & 0x80;
    int op = p[0] & 0x0f;
    if (p[1] & 0x80) {
      lg_error(c, LG_ERR_protocol, "masked frame from server", 0);
      conn_close(c);
      return -1;
    }
    if (p[0] & 0x70) {
      lg_error(c, LG_ERR_protocol, "RSV bits set without an extension", 0);
      conn_close(c);
      return -1;
    }
    uint64_t plen = p[1] & 0x7f;
    if (plen == 126) {
      if (avail < 4) break;
      plen = (uint64_t)p[2] << 8 | p[3];
      hl = 4;
    } else if (plen == 127) {
      if (avail < 10) break;
      plen = 0;
      for (int i = 0; i < 8; i++) plen = plen << 8 | p[2 + i];
      hl = 10;
    }
    if (plen > LG_MAX_MESSAGE) {
      lg_error(c, LG_ERR_protocol, "frame too large", 0);
      conn_close(c);
      return -1;
    }
    if (avail - hl < plen) break;
    if (on_frame(c, fin, op, p + hl, (size_t)plen) < 0) return -1;
    pos += hl + (size_t)plen;
  }
  return (ssize_t)pos;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  lg_conn_t *c = h->data;
  /* One buffer serves every connection: libuv reads and calls back before the next alloc. */
  *buf = uv_buf_init(c->lg->read_buf, LG_READ_BUF);
}

static void conn_input(lg_conn_t *c, const uint8_t *data, size_t len);

/* --tls: ciphertext in; the handshake advanced, records decrypted and parsed. */
static void tls_input(lg_conn_t *c, const char *data, size_t len) {
  lg_t *lg = c->lg;
  BIO_write(SSL_get_rbio(c->ssl), data, (int)len);
  if (!c->tls_done) {
    int rc = SSL_do_handshake(c->ssl);
    if (rc != 1) {
      int e = SSL_get_error(c->ssl, rc);
      ERR_clear_error();
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        conn_fail(c, "TLS handshake", 0);
        return;
      }
      tls_send_pending(c);
      return;
    }
    c->tls_done = true;
    lg->tls_handshakes++;
    mark_dirty(c); /* the upgrade request waits in c->out */
  }
  size_t n;
  while (c->ssl && c->state != ST_CLOSED && SSL_read_ex(c->ssl, lg->plain_buf, sizeof lg->plain_buf, &n))
    conn_input(c, (const uint8_t *)lg->plain_buf, n);
  ERR_clear_error();
  if (c->ssl && c->state != ST_CLOSED && BIO_ctrl_pending(SSL_get_wbio(c->ssl))) mark_dirty(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  lg_conn_t *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    int err = nread == UV_EOF ? 0 : (int)nread;
    if (c->state == ST_HANDSHAKE) conn_fail(c, "handshake: connection closed", err);
    else if (c->state == ST_PROTO) conn_fail(c, "connection closed during the protocol handshake", err);
    else if (c->state == ST_OPEN) {
      lg_error(c, LG_ERR_closed, "connection closed by server", err);
      conn_close(c);
    } else { /* ST_CLOSING: the server's FIN ends the close handshake */
      if (c->lg->phase == PH_STOP) c->lg->closed_clean++;
      else c->lg->closed_recycled++;
      conn_close(c);
    }
    return;
  }
  c->lg->now_ns = uv_hrtime();
  if (c->ssl) tls_input(c, buf->base, (size_t)nread);
  else conn_input(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* Parses received (plaintext) bytes, keeping an incomplete tail for the next read. */
static void conn_input(lg_conn_t *c, const uint8_t *data, size_t len) {
  if (c->in.len) {
    if (hd_sbuf_append(&c->in, data, len)) goto oom;
    data = (const uint8_t *)c->in.ptr;
    len = c->in.len;
  }
  ssize_t used = conn_parse(c, data, len);
  if (used < 0) return;
  if (c->in.len) {
    hd_sbuf_consume(&c->in, (size_t)used);
  } else if ((size_t)used < len && hd_sbuf_append(&c->in, data + used, len - (size_t)used)) {
    goto oom;
  }
  return;
oom:
  lg_error(c, LG_ERR_protocol, "out of memory buffering input", 0);
  conn_close(c);
}

static void on_connect(uv_connect_t *req, int status) {
  lg_conn_t *c = req->data;
  if (status == UV_ECANCELED || c->state != ST_CONNECTING) return; /* closed meanwhile */
  if (status < 0) {
    conn_fail(c, "connect", status);
    return;
  }
  int r = uv_tcp_nodelay(&c->tcp, 1);
  if (r == 0) r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (r < 0) {
    conn_fail(c, "read start", r);
    return;
  }
  lg_t *lg = c->lg;
  if (lg->tls) { /* the ClientHello goes out with the first flush; the upgrade request after the handshake */
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    c->ssl = SSL_new(lg->tls);
    if (!c->ssl || !in || !out) die("TLS session", UV_ENOMEM);
    BIO_set_mem_eof_return(in, -1);
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(c->ssl, in, out);
    SSL_set_connect_state(c->ssl);
    SSL_set_tlsext_host_name(c->ssl, lg->o.host);
    SSL_do_handshake(c->ssl);
    ERR_clear_error();
  }
  uint8_t raw[16];
  for (int i = 0; i < 16; i += 8) {
    uint64_t v = rng_next(lg);
    memcpy(raw + i, &v, 8);
  }
  EVP_EncodeBlock((unsigned char *)c->key, raw, 16);
  c->state = ST_HANDSHAKE;
  const char *url = lg->last_url && c->id == (uint32_t)lg->o.connections - 1 ? lg->last_url : lg->o.url;
  if (hd_sbuf_printf(&c->out,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "User-Agent: herald-loadgen\r\n\r\n",
                     url, lg->addr[0].ss_family == AF_INET6 ? "[" : "", lg->o.host,
                     lg->addr[0].ss_family == AF_INET6 ? "]" : "", lg->o.ports[c->port_idx], c->key)) {
    conn_fail(c, "out of memory", 0);
    return;
  }
  mark_dirty(c);
}

/* Starts one attempt: TCP connect, then the upgrade request from on_connect. */
static void conn_start(lg_conn_t *c) {
  lg_t *lg = c->lg;
  c->attempts++;
  c->t_attempt = uv_hrtime();
  int r = uv_tcp_init(lg->loop, &c->tcp);
  if (r < 0) die("uv_tcp_init", r);
  c->tcp.data = c;
  c->connect_req.data = c;
  lg->n_handles++;
  lg->connecting++;
  c->state = ST_CONNECTING;
  c->deadline_ns = uv_hrtime() + (uint64_t)(lg->o.connect_timeout * 1e9);
  r = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&lg->addr[c->port_idx], on_connect);
  if (r < 0) conn_fail(c, "connect", r); /* e.g. EMFILE, EADDRNOTAVAIL */
}

/* Starts attempts until --concurrency are in flight: due retries first, then new connections. */
static void lg_pump(lg_t *lg) {
  if (lg->phase == PH_STOP) return;
  uint64_t now = uv_hrtime();
  uint32_t n = (uint32_t)lg->o.connections;
  while (lg->connecting < lg->o.concurrency) {
    if (lg->rq_len && lg->conns[lg->retry_q[lg->rq_head]].retry_ns <= now) {
      lg_conn_t *c = &lg->conns[lg->retry_q[lg->rq_head]];
      lg->rq_head = (lg->rq_head + 1) % n;
      lg->rq_len--;
      conn_start(c);
    } else if (lg->next_new < lg->o.connections) {
      conn_start(&lg->conns[lg->next_new++]);
    } else {
      break;
    }
  }
}

/* ---- phases ---------------------------------------------------------------------------- */

static void on_phase_timer(uv_timer_t *t);

static void lg_measure_begin(lg_t *lg) {
  lg->phase = PH_MEASURE;
  lg->received = 0;
  memset(&lg->hist, 0, sizeof lg->hist);
  lg->t_measure = uv_hrtime();
  if (getrusage(RUSAGE_SELF, &lg->ru_measure) < 0) memset(&lg->ru_measure, 0, sizeof lg->ru_measure);
  lg->srv_ticks_measure = pids_cpu_ticks(lg, lg->pid_ticks_measure);
  lg->all_ticks_measure = machine_busy_ticks();
  if (lg->o.duration > 0)
    LG_CHECK(uv_timer_start(&lg->phase_timer, on_phase_timer, (uint64_t)(lg->o.duration * 1000), 0));
}

/* Freezes the window's figures. */
static void lg_measure_end(lg_t *lg) {
  lg->t_end = uv_hrtime();
  if (getrusage(RUSAGE_SELF, &lg->ru_end) < 0) memset(&lg->ru_end, 0, sizeof lg->ru_end);
  lg->srv_ticks_end = pids_cpu_ticks(lg, lg->pid_ticks_end);
  lg->all_ticks_end = machine_busy_ticks();
}

static void on_phase_timer(uv_timer_t *t) {
  lg_t *lg = t->data;
  if (lg->phase == PH_WARMUP) {
    lg_measure_begin(lg);
  } else if (lg->phase == PH_MEASURE && lg->mode->on_drain) {
    lg_measure_end(lg);
    lg->phase = PH_DRAIN;
    if (lg->mode->on_drain(lg)) lg_stop(lg, NULL);
    else LG_CHECK(uv_timer_start(&lg->phase_timer, on_phase_timer, (uint64_t)(lg->o.close_timeout * 1000), 0));
  } else if (lg->phase == PH_MEASURE || lg->phase == PH_DRAIN) {
    lg_stop(lg, NULL);
  }
}

static void lg_check_settled(lg_t *lg) {
  if (lg->phase != PH_CONNECT || lg->n_settled < lg->o.connections) return;
  lg->t_settled = uv_hrtime();
  if (!lg->mode->recycle) LG_CHECK(uv_timer_stop(&lg->tick_timer)); /* churn needs the timeouts */
  if (!lg->o.quiet)
    fprintf(stderr, "loadgen: %d/%d connections open (%d failed, %" PRIu64 " retries) in %.2f s\n",
            lg->n_open, lg->o.connections, lg->n_failed, lg->retries,
            secs(lg->t_settled - lg->t_begin));
  if (lg->n_open == 0) {
    lg_stop(lg, "no connection could be opened");
    return;
  }
  lg->phase = PH_WARMUP;
  if (lg->mode->on_start) lg->mode->on_start(lg);
  if (lg->phase != PH_WARMUP) return;
  if (lg->o.warmup > 0)
    LG_CHECK(uv_timer_start(&lg->phase_timer, on_phase_timer, (uint64_t)(lg->o.warmup * 1000), 0));
  else
    lg_measure_begin(lg);
}

/* Every LG_TICK_MS while connecting: expire slow attempts, start due retries, show progress. */
static void on_tick(uv_timer_t *t) {
  lg_t *lg = t->data;
  uint64_t now = uv_hrtime();
  for (int i = 0; i < lg->next_new; i++) {
    lg_conn_t *c = &lg->conns[i];
    if ((c->state == ST_CONNECTING || c->state == ST_HANDSHAKE || c->state == ST_PROTO) &&
        now > c->deadline_ns)
      conn_fail(c, c->state == ST_CONNECTING ? "connect timed out"
                   : c->state == ST_HANDSHAKE ? "handshake timed out"
                                              : "protocol handshake timed out", 0);
    else if (c->state == ST_CLOSING && lg->phase != PH_STOP && now > c->deadline_ns) {
      lg_error(c, LG_ERR_closed, "server did not close after our close frame", 0);
      conn_close(c);
    }
  }
  lg_pump(lg);
  if (!lg->o.quiet && lg->phase == PH_CONNECT && now - lg->last_progress >= 1000000000ull &&
      now - lg->t_begin >= 1000000000ull) {
    lg->last_progress = now;
    fprintf(stderr, "loadgen: connecting: %d open, %d failed, %d in flight, %u awaiting retry\n",
            lg->n_open, lg->n_failed, lg->connecting, (unsigned)lg->rq_len);
  }
}

static void on_stop_timer(uv_timer_t *t) {
  lg_t *lg = t->data;
  for (int i = 0; i < lg->o.connections; i++) { /* stragglers */
    lg_conn_t *c = &lg->conns[i];
    if (c->state == ST_OPEN || c->state == ST_CLOSING) lg->closed_forced++;
    conn_close(c);
  }
}

static void close_if_open(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Ends the run: freezes the figures, starts the close handshake on every connection and, once
 * every socket is closed (or --close-timeout passed), closes the engine's own handles. */
static void lg_stop(lg_t *lg, const char *why) {
  if (lg->finished) return;
  if (lg->phase != PH_STOP) {
    if (why) fprintf(stderr, "loadgen: stopping: %s\n", why);
    if (lg->phase == PH_MEASURE) lg_measure_end(lg);
    lg->open_at_stop = lg->n_open;
    lg->complete = lg->phase == PH_MEASURE || lg->phase == PH_DRAIN;
    lg->phase = PH_STOP;
    LG_CHECK(uv_timer_stop(&lg->phase_timer));
    LG_CHECK(uv_timer_stop(&lg->tick_timer));
    if (lg->mode->on_stop) lg->mode->on_stop(lg);
    for (int i = 0; i < lg->o.connections; i++) {
      lg_conn_t *c = &lg->conns[i];
      if (c->state == ST_OPEN) lg_conn_bye(c);
      else if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE || c->state == ST_PROTO) conn_close(c);
    }
    LG_CHECK(uv_timer_start(&lg->stop_timer, on_stop_timer, (uint64_t)(lg->o.close_timeout * 1000), 0));
  }
  if (lg->n_handles > 0) return;
  lg->finished = true;
  close_if_open((uv_handle_t *)&lg->phase_timer);
  close_if_open((uv_handle_t *)&lg->tick_timer);
  close_if_open((uv_handle_t *)&lg->stop_timer);
  close_if_open((uv_handle_t *)&lg->flush_prep);
  close_if_open((uv_handle_t *)&lg->sig_int);
  close_if_open((uv_handle_t *)&lg->sig_term);
}

static void on_signal(uv_signal_t *s, int signum) {
  lg_t *lg = s->data;
  if (lg->phase == PH_STOP) { /* second signal: do not wait for close handshakes */
    on_stop_timer(&lg->stop_timer);
    return;
  }
  lg_stop(lg, signum == SIGINT ? "interrupted" : "terminated");
}

/* ---- mode: echo ------------------------------------------------------------------------ */

static int echo_init(lg_t *lg) {
  if (lg->o.size > LG_MAX_MESSAGE) {
    fprintf(stderr, "loadgen: --size must be at most %u\n", LG_MAX_MESSAGE);
    return -1;
  }
  if (lg->o.pipeline < 1 || lg->o.pipeline > 4096) {
    fprintf(stderr, "loadgen: --pipeline must be 1..4096\n");
    return -1;
  }
  lg->payload = xcalloc(1, lg->o.size + 1);
  for (size_t i = 0; i < lg->o.size; i++)
    lg->payload[i] = lg->o.binary ? (uint8_t)rng_next(lg) : (uint8_t)('a' + i % 26);
  return 0;
}

static void echo_send(lg_conn_t *c) {
  lg_t *lg = c->lg;
  if (lg->phase == PH_STOP) return;
  if (lg_send(c, lg->o.binary ? OP_BINARY : OP_TEXT, lg->payload, lg->o.size)) {
    lg_error(c, LG_ERR_write, "out of memory", 0);
    conn_close(c);
    return;
  }
  lg_stamp_push(c, uv_hrtime());
}

static void echo_start(lg_t *lg) {
  for (int i = 0; i < lg->o.connections; i++) {
    lg_conn_t *c = &lg->conns[i];
    for (int k = 0; k < lg->o.pipeline && c->state == ST_OPEN; k++) echo_send(c);
  }
}

static void echo_message(lg_conn_t *c, int opcode, const uint8_t *data, size_t len) {
  lg_t *lg = c->lg;
  uint64_t sent_ns;
  if (!lg_stamp_pop(c, &sent_ns)) {
    lg_error(c, LG_ERR_mismatch, "message with nothing in flight", 0);
    return;
  }
  if (opcode != (lg->o.binary ? OP_BINARY : OP_TEXT) || len != lg->o.size ||
      memcmp(data, lg->payload, len) != 0) {
    lg_error(c, LG_ERR_mismatch, "echo differs from the message sent", 0);
  } else if (lg->phase == PH_MEASURE) {
    lg->received++;
    hist_add(&lg->hist, (lg->now_ns - sent_ns) / 1000);
  }
  echo_send(c);
}

static void echo_report(lg_t *lg, hd_sbuf_t *json) {
  double dur = lg->t_end > lg->t_measure && lg->t_measure ? secs(lg->t_end - lg->t_measure) : 0;
  double rate = dur > 0 ? (double)lg->received / dur : 0;
  const lg_hist_t *h = &lg->hist;
  double mean = h->total ? (double)h->sum_us / (double)h->total : 0;
  uint64_t p50 = hist_quantile(h, 0.50), p99 = hist_quantile(h, 0.99), p999 = hist_quantile(h, 0.999);
  printf("  messages   %zu-byte %s, pipeline %d; ", lg->o.size, lg->o.binary ? "binary" : "text",
         lg->o.pipeline);
  if (!lg->complete) {
    printf("not measured: the run stopped before the measurement window\n");
  } else {
    printf("%" PRIu64 " echoed in %.2f s (after %.2f s warm-up)\n", lg->received, dur, lg->o.warmup);
    printf("  throughput %.0f msgs/s\n", rate);
    printf("  latency    p50 %" PRIu64 " us, p99 %" PRIu64 " us, p99.9 %" PRIu64 " us, max %" PRIu64
           " us, mean %.0f us\n", p50, p99, p999, h->max_us, mean);
  }
  hd_sbuf_printf(json,
                 ",\"size\":%zu,\"binary\":%s,\"pipeline\":%d,\"duration_s\":%.3f,\"messages\":%" PRIu64
                 ",\"messages_total\":%" PRIu64 ",\"msgs_per_s\":%.1f,\"p50_us\":%" PRIu64
                 ",\"p99_us\":%" PRIu64 ",\"p999_us\":%" PRIu64 ",\"max_us\":%" PRIu64
                 ",\"mean_us\":%.1f",
                 lg->o.size, lg->o.binary ? "true" : "false", lg->o.pipeline, dur, lg->received,
                 lg->received_total, rate, p50, p99, p999, h->max_us, mean);
}

/* ---- mode: idle ------------------------------------------------------------------------ */

static int idle_init(lg_t *lg) {
  lg->o.warmup = 0;
  lg->o.duration = lg->o.hold; /* 0: until SIGINT/SIGTERM */
  return 0;
}

static void idle_start(lg_t *lg) {
  if (!lg->o.quiet)
    fprintf(stderr, "loadgen: holding %d connections %s\n", lg->n_open,
            lg->o.hold > 0 ? "(--hold)" : "until SIGINT/SIGTERM");
  if (!lg->o.ready_file) return;
  /* written then renamed, so a reader never sees half a file */
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", lg->o.ready_file);
  FILE *f = fopen(tmp, "w");
  if (!f || fprintf(f, "open=%d failed=%d\n", lg->n_open, lg->n_failed) < 0 || fclose(f) != 0 ||
      rename(tmp, lg->o.ready_file) != 0) {
    fprintf(stderr, "loadgen: cannot write %s: %s\n", lg->o.ready_file, strerror(errno));
    lg_stop(lg, "ready file");
  }
}

static void idle_report(lg_t *lg, hd_sbuf_t *json) {
  double connect_s = lg->t_settled ? secs(lg->t_settled - lg->t_begin) : 0;
  double held = lg->t_end > lg->t_measure && lg->t_measure ? secs(lg->t_end - lg->t_measure) : 0;
  int opened = lg->n_settled - lg->n_failed;
  if (lg->t_settled)
    printf("  opened     %d of %d in %.2f s (%.0f/s), %d failed, %" PRIu64 " retries\n", opened,
           lg->o.connections, connect_s, connect_s > 0 ? opened / connect_s : 0, lg->n_failed,
           lg->retries);
  else
    printf("  opened     %d of %d, %d failed, %" PRIu64 " retries: stopped while connecting\n", opened,
           lg->o.connections, lg->n_failed, lg->retries);
  printf("  held       %.2f s; %d still open at the end\n", held, lg->open_at_stop);
  hd_sbuf_printf(json, ",\"failed\":%d,\"retries\":%" PRIu64 ",\"connect_s\":%.3f,\"held_s\":%.3f",
                 lg->n_failed, lg->retries, connect_s, held);
}

/* ---- shared by the modes below ---------------------------------------------------------- */

/* Prints and appends the rate and latency of what the mode counts in lg->received ("unit":
 * deliveries, acks, connections). JSON: duration_s, messages, msgs_per_s, p50/p99/p999/max/mean. */
static void report_rate(lg_t *lg, hd_sbuf_t *json, const char *unit, const char *latency) {
  double dur = lg->t_end > lg->t_measure && lg->t_measure ? secs(lg->t_end - lg->t_measure) : 0;
  double rate = dur > 0 ? (double)lg->received / dur : 0;
  const lg_hist_t *h = &lg->hist;
  double mean = h->total ? (double)h->sum_us / (double)h->total : 0;
  uint64_t p50 = hist_quantile(h, 0.50), p99 = hist_quantile(h, 0.99), p999 = hist_quantile(h, 0.999);
  if (!lg->complete) {
    printf("  %-10s not measured: the run stopped before the measurement window\n", unit);
  } else {
    printf("  %-10s %" PRIu64 " in %.2f s (after %.2f s warm-up): %.0f/s\n", unit, lg->received, dur,
           lg->o.warmup, rate);
    printf("  latency    %s: p50 %" PRIu64 " us, p99 %" PRIu64 " us, p99.9 %" PRIu64 " us, max %" PRIu64
           " us, mean %.0f us\n", latency, p50, p99, p999, h->max_us, mean);
  }
  hd_sbuf_printf(json,
                 ",\"duration_s\":%.3f,\"messages\":%" PRIu64 ",\"messages_total\":%" PRIu64
                 ",\"msgs_per_s\":%.1f,\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"p999_us\":%" PRIu64
                 ",\"max_us\":%" PRIu64 ",\"mean_us\":%.1f",
                 dur, lg->received, lg->received_total, rate, p50, p99, p999, h->max_us, mean);
}

/* Sends a text message; false (error counted, connection closed) when out of memory. */
static bool send_text(lg_conn_t *c, const void *data, size_t len) {
  if (lg_send(c, OP_TEXT, data, len) == 0) return true;
  lg_error(c, LG_ERR_write, "out of memory", 0);
  conn_close(c);
  return false;
}

/* The benchmark payload, a JSON-safe string "hb:SEQ:T:xxx..." padded to --size characters (when
 * longer than its head): SEQ numbers the message, T is when it was sent (us since the run began). */
static size_t hb_format(lg_t *lg, char *out, size_t cap, uint64_t seq) {
  uint64_t t_us = (uv_hrtime() - lg->t_begin) / 1000;
  int n = snprintf(out, cap, "hb:%" PRIu64 ":%" PRIu64 ":", seq, t_us);
  size_t len = (size_t)n;
  while (len < lg->o.size && len + 1 < cap) out[len++] = 'x';
  out[len] = '\0';
  return len;
}

/* Finds "hb:SEQ:T: in data; false when absent or malformed. */
static bool hb_parse(const uint8_t *data, size_t len, uint64_t *seq, uint64_t *t_us) {
  const uint8_t *p = memmem(data, len, "\"hb:", 4), *end = data + len;
  if (!p) return false;
  p += 4;
  uint64_t v[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    const uint8_t *start = p;
    while (p < end && *p >= '0' && *p <= '9') v[i] = v[i] * 10 + (uint64_t)(*p++ - '0');
    if (p == start || p == end || *p++ != ':') return false;
  }
  *seq = v[0];
  *t_us = v[1];
  return true;
}

#define LG_MAX_PAYLOAD 16384 /* --size limit of the Socket.IO and JSON modes */

static int payload_init(lg_t *lg) {
  if (lg->o.size > LG_MAX_PAYLOAD - 64) {
    fprintf(stderr, "loadgen: --size must be at most %d in this mode\n", LG_MAX_PAYLOAD - 64);
    return -1;
  }
  return 0;
}

/* ---- Socket.IO v5 over Engine.IO v4, WebSocket transport only ---------------------------- *
 * GET /socket.io/?EIO=4&transport=websocket; the server sends the open packet 0{"sid":...};
 * we send 40 (CONNECT to "/") and wait for 40{"sid":...}. Engine.IO pings (2) are answered (3).
 * Inside an Engine.IO message (4), Socket.IO packets: 2 EVENT, 3 ACK, 1 DISCONNECT, 4 CONNECT_ERROR. */

enum { SIO_WAIT_OPEN, SIO_WAIT_CONNECT, SIO_CONNECTED };
enum { SIO_CONSUMED, SIO_JUST_CONNECTED, SIO_PACKET };

static void sio_open(lg_conn_t *c) { c->pstate = SIO_WAIT_OPEN; }

static void sio_bye(lg_conn_t *c) {
  if (c->pstate == SIO_CONNECTED) send_text(c, "41", 2); /* DISCONNECT from "/" */
}

/* Handles Engine.IO packets and the namespace handshake. Returns SIO_PACKET, with *data and
 * *len moved to the Socket.IO packet (its type digit first), for a packet of a connected
 * socket; SIO_JUST_CONNECTED when the CONNECT was acknowledged; SIO_CONSUMED otherwise (also
 * after an error, which closed the connection). */
static int sio_frame(lg_conn_t *c, int opcode, const uint8_t **data, size_t *len) {
  const uint8_t *d = *data;
  size_t n = *len;
  const char *bad;
  if (opcode != OP_TEXT || n == 0) {
    bad = "binary or empty Engine.IO packet";
    goto fail;
  }
  switch (d[0]) {
    case '0': /* open */
      if (c->pstate != SIO_WAIT_OPEN || !memmem(d, n, "\"sid\"", 5)) {
        bad = "unexpected or malformed Engine.IO open packet";
        goto fail;
      }
      c->pstate = SIO_WAIT_CONNECT;
      send_text(c, "40", 2);
      return SIO_CONSUMED;
    case '2': { /* ping: pong with the same data */
      char pong[128];
      if (n > sizeof pong) {
        bad = "Engine.IO ping too long";
        goto fail;
      }
      pong[0] = '3';
      memcpy(pong + 1, d + 1, n - 1);
      send_text(c, pong, n);
      return SIO_CONSUMED;
    }
    case '6': return SIO_CONSUMED; /* noop */
    case '1':
      lg_conn_error(c, LG_ERR_closed, "Engine.IO close packet from the server");
      return SIO_CONSUMED;
    case '4':
      if (n >= 2 && d[1] == '0') {
        if (c->pstate != SIO_WAIT_CONNECT || !memmem(d, n, "\"sid\"", 5)) {
          bad = "unexpected or malformed Socket.IO CONNECT";
          goto fail;
        }
        c->pstate = SIO_CONNECTED;
        return SIO_JUST_CONNECTED;
      }
      if (n >= 2 && d[1] == '4') {
        bad = "Socket.IO CONNECT_ERROR";
        goto fail;
      }
      if (n >= 2 && d[1] == '1') {
        lg_conn_error(c, LG_ERR_closed, "Socket.IO DISCONNECT from the server");
        return SIO_CONSUMED;
      }
      if (c->pstate != SIO_CONNECTED || n < 2) {
        bad = "Socket.IO packet before CONNECT";
        goto fail;
      }
      *data = d + 1;
      *len = n - 1;
      return SIO_PACKET;
    default: bad = "unknown Engine.IO packet type"; goto fail;
  }
fail:
  lg_conn_error(c, LG_ERR_protocol, bad);
  return SIO_CONSUMED;
}

/* True when the Socket.IO EVENT packet p (type digit first) is event `name` (no ack id). */
static bool sio_is_event(const uint8_t *p, size_t n, const char *name) {
  size_t k = strlen(name);
  return n >= k + 4 && p[0] == '2' && p[1] == '[' && p[2] == '"' && memcmp(p + 3, name, k) == 0 &&
         p[3 + k] == '"';
}

/* ---- mode: sio-idle -------------------------------------------------------------------- */

static void sio_idle_message(lg_conn_t *c, int opcode, const uint8_t *data, size_t len) {
  int r = sio_frame(c, opcode, &data, &len);
  if (r == SIO_JUST_CONNECTED) lg_conn_ready(c);
  /* other packets (Herald's test-handler `auth` event) are ignored */
}

/* ---- --rate ----------------------------------------------------------------------------- */

/* Items --rate allows by now, counted from the first call (UINT64_MAX without --rate); the first
 * call starts the 1 ms timer that calls `tick`. */
static uint64_t pace_allowed(lg_t *lg, uv_timer_cb tick) {
  lg_pace_t *p = &lg->pace;
  if (lg->o.rate <= 0) return UINT64_MAX;
  uint64_t now = uv_hrtime();
  if (!p->on) {
    LG_CHECK(uv_timer_init(lg->loop, &p->timer));
    p->timer.data = lg;
    LG_CHECK(uv_timer_start(&p->timer, tick, 1, 1));
    p->on = true;
    p->t0 = now;
  }
  return (uint64_t)(lg->o.rate * (double)(now - p->t0) / 1e9) + 1;
}

static void pace_stop(lg_t *lg) {
  if (lg->pace.on && !uv_is_closing((uv_handle_t *)&lg->pace.timer)) uv_close((uv_handle_t *)&lg->pace.timer, NULL);
}

/* ---- mode: sio-ack --------------------------------------------------------------------- *
 * Every connection: 42ID["echo","hb:..."], wait for 43ID["hb:..."], next id. The payload is the
 * same for every emit; the ack must carry it back byte for byte. */

static int sio_ack_init(lg_t *lg) {
  if (payload_init(lg)) return -1;
  char buf[LG_MAX_PAYLOAD];
  size_t n = hb_format(lg, buf, sizeof buf, 0);
  hd_sbuf_t b = {0};
  hd_sbuf_printf(&b, "[\"%.*s\"]", (int)n, buf); /* the ack's arguments */
  lg->payload = (uint8_t *)b.ptr;
  lg->payload_len = b.len;
  lg->o.pipeline = 1;
  if (lg->o.rate > 0) lg->ack.waiting = xcalloc((size_t)lg->o.connections, sizeof *lg->ack.waiting);
  return 0;
}

static void on_ack_pace(uv_timer_t *t);

static void sio_ack_send(lg_conn_t *c) {
  lg_t *lg = c->lg;
  if (lg->phase != PH_WARMUP && lg->phase != PH_MEASURE) return;
  lg_ack_t *a = &lg->ack;
  if (a->sent >= pace_allowed(lg, on_ack_pace)) { /* --rate: wait for the pace */
    a->waiting[(a->head + a->len++) % (uint32_t)lg->o.connections] = c->id;
    return;
  }
  a->sent++;
  char buf[LG_MAX_PAYLOAD + 64];
  c->seq_out++;
  /* 42ID["echo", + the payload string + ] */
  int n = snprintf(buf, sizeof buf, "42%" PRIu64 "[\"echo\",%.*s", c->seq_out, (int)(lg->payload_len - 1),
                   (const char *)lg->payload + 1);
  if (send_text(c, buf, (size_t)n)) lg_stamp_push(c, uv_hrtime());
}

/* --rate: the emits that waited, as many as the pace allows now, longest waiting first. */
static void on_ack_pace(uv_timer_t *t) {
  lg_t *lg = t->data;
  lg_ack_t *a = &lg->ack;
  uint64_t allowed = pace_allowed(lg, on_ack_pace);
  while (a->len && a->sent < allowed) {
    lg_conn_t *c = &lg->conns[a->waiting[a->head]];
    a->head = (a->head + 1) % (uint32_t)lg->o.connections;
    a->len--;
    if (c->state == ST_OPEN) sio_ack_send(c);
  }
}

static void sio_ack_start(lg_t *lg) {
  for (int i = 0; i < lg->o.connections; i++)
    if (lg->conns[i].state == ST_OPEN) sio_ack_send(&lg->conns[i]);
}

static void sio_ack_message(lg_conn_t *c, int opcode, const uint8_t *p, size_t n) {
  lg_t *lg = c->lg;
  int r = sio_frame(c, opcode, &p, &n);
  if (r == SIO_JUST_CONNECTED) lg_conn_ready(c);
  if (r != SIO_PACKET) return;
  if (p[0] == '2') { /* an event: not ours (Herald's test handlers emit `auth` on connect) */
    lg->fan.other_events++;
    return;
  }
  uint64_t id = 0, sent_ns;
  size_t i = 1;
  while (i < n && p[i] >= '0' && p[i] <= '9') id = id * 10 + (uint64_t)(p[i++] - '0');
  if (p[0] != '3' || i == 1) {
    lg_conn_error(c, LG_ERR_protocol, "unexpected Socket.IO packet");
    return;
  }
  if (!lg_stamp_pop(c, &sent_ns) || id != c->seq_out) {
    lg_error(c, LG_ERR_mismatch, "ack for an id not in flight", 0);
    return;
  }
  lg->counted_total++;
  if (n - i != lg->payload_len || memcmp(p + i, lg->payload, lg->payload_len) != 0) {
    lg_error(c, LG_ERR_mismatch, "ack arguments differ from the emitted payload", 0);
  } else if (lg->phase == PH_MEASURE) {
    lg->received++;
    hist_add(&lg->hist, (lg->now_ns - sent_ns) / 1000);
  }
  sio_ack_send(c);
}

static void sio_ack_report(lg_t *lg, hd_sbuf_t *json) {
  report_rate(lg, json, "acks", "emit to ack");
  hd_sbuf_printf(json, ",\"rate\":%g,\"size\":%zu,\"acks_total\":%" PRIu64 ",\"other_events\":%" PRIu64, lg->o.rate, lg->o.size,
                 lg->counted_total, lg->fan.other_events);
}

/* ---- mode: sio-connect ----------------------------------------------------------------- *
 * Connection churn: each of --connections slots connects (TCP, WebSocket, Engine.IO open,
 * Socket.IO CONNECT), says goodbye (41 and a close frame) as soon as the CONNECT is acked, waits
 * for the server to close, and starts again. Counted: CONNECTs acked in the window; latency from
 * the TCP connect to the CONNECT ack. */

static void sio_connect_message(lg_conn_t *c, int opcode, const uint8_t *data, size_t len) {
  lg_t *lg = c->lg;
  if (sio_frame(c, opcode, &data, &len) != SIO_JUST_CONNECTED) return;
  lg_conn_ready(c);
  lg->counted_total++;
  if (lg->phase != PH_WARMUP && lg->phase != PH_MEASURE) return; /* held until every slot is up */
  if (lg->phase == PH_MEASURE) {
    lg->received++;
    hist_add(&lg->hist, (lg->now_ns - c->t_attempt) / 1000);
  }
  lg_conn_bye(c);
}

static void sio_connect_start(lg_t *lg) {
  for (int i = 0; i < lg->o.connections; i++) lg_conn_bye(&lg->conns[i]);
}

static void sio_connect_report(lg_t *lg, hd_sbuf_t *json) {
  report_rate(lg, json, "connects", "TCP connect to CONNECT ack");
  printf("  churn      %d closes completed by the server, %d slots failed for good, %" PRIu64 " retries\n",
         lg->closed_recycled, lg->n_failed, lg->retries);
  hd_sbuf_printf(json, ",\"connects_total\":%" PRIu64 ",\"closes\":%d,\"failed\":%d,\"retries\":%" PRIu64,
                 lg->counted_total, lg->closed_recycled, lg->n_failed, lg->retries);
}

/* ---- fan-out (sio-fanout, json-fanout) ---------------------------------------------------- *
 * --connections receivers plus one publisher (none with --via-api). The publisher keeps
 * --window broadcasts in flight: one leaves the window when the publisher receives its own copy
 * (Socket.IO io.emit reaches the sender too; the JSON publisher is subscribed to the topic) or,
 * with --via-api, when the HTTP answer arrives; with --window-all, once every member has its copy
 * (a cluster: receivers on other nodes than the publisher's may lag it). Each copy carries "hb:SEQ:T": every connection
 * must see SEQ 1, 2, 3... in order, and the latency is receipt time - T. After the window the
 * publisher stops and the run drains: every broadcast must reach every member exactly once. */

static void api_flush(lg_t *lg);
static void fan_pump(lg_t *lg);

static void on_fan_pace(uv_timer_t *t) { fan_pump(t->data); }

/* Broadcasts --rate allows by now (all of them without --rate). */
static uint64_t fan_allowed(lg_t *lg) { return pace_allowed(lg, on_fan_pace); }

/* Publishes until --window are in flight (and, with --rate, no sooner than the rate allows). Like the WebSocket publishers' frames (one write per
 * loop iteration), the HTTP requests of one round go out in one write. */
static void fan_pump(lg_t *lg) {
  lg_fan_t *f = &lg->fan;
  char buf[LG_MAX_PAYLOAD];
  if (lg->phase != PH_WARMUP && lg->phase != PH_MEASURE) return;
  uint64_t allowed = fan_allowed(lg);
  while ((lg->phase == PH_WARMUP || lg->phase == PH_MEASURE) &&
         f->published - f->released < (uint64_t)lg->o.window && f->published < allowed) {
    size_t n = hb_format(lg, buf, sizeof buf, f->published + 1);
    if (f->publish(lg, f->published + 1, buf, n) < 0) break;
    f->published++;
  }
  if (lg->o.via_api) api_flush(lg);
}

/* Every copy of every broadcast arrived, and every answer to the publisher (JSON modes). */
static bool fan_drained(lg_t *lg) {
  const lg_fan_t *f = &lg->fan;
  return f->deliveries >= f->published * (uint64_t)f->members && (!f->answered || f->answers >= f->published);
}

static void fan_check_drained(lg_t *lg) {
  if (lg->phase == PH_DRAIN && fan_drained(lg)) lg_stop(lg, NULL);
}

/* One copy of broadcast SEQ (found in data) reached c. */
static void fan_delivery(lg_conn_t *c, const uint8_t *data, size_t len) {
  lg_t *lg = c->lg;
  lg_fan_t *f = &lg->fan;
  uint64_t seq, t_us;
  if (!hb_parse(data, len, &seq, &t_us)) {
    lg_conn_error(c, LG_ERR_protocol, "broadcast without a benchmark payload");
    return;
  }
  if (seq != c->seq_in + 1) {
    char what[96];
    snprintf(what, sizeof what, "broadcast %" PRIu64 " after %" PRIu64 " (lost, repeated or reordered)", seq,
             c->seq_in);
    lg_error(c, LG_ERR_mismatch, what, 0);
  }
  if (seq > c->seq_in) c->seq_in = seq;
  f->deliveries++;
  if (lg->phase == PH_MEASURE) {
    lg->received++;
    lg->received_by_port[c->port_idx]++;
    uint64_t now_us = (lg->now_ns - lg->t_begin) / 1000;
    hist_add(&lg->hist, now_us > t_us ? now_us - t_us : 0);
  }
  if (f->copies) {
    if (seq > f->released && seq <= f->published) f->copies[seq % (uint64_t)lg->o.window]++;
    bool moved = false;
    while (f->released < f->published && f->copies[(f->released + 1) % (uint64_t)lg->o.window] >= (uint32_t)f->members) {
      f->copies[(f->released + 1) % (uint64_t)lg->o.window] = 0;
      f->released++;
      moved = true;
    }
    if (moved) fan_pump(lg);
  } else if (c == f->pub && !lg->o.via_api) {
    f->released = seq > f->released ? seq : f->released;
    fan_pump(lg);
  }
  fan_check_drained(lg);
}

static int fan_init(lg_t *lg, bool publisher_listens) {
  if (payload_init(lg)) return -1;
  if (lg->o.window < 1) {
    fprintf(stderr, "loadgen: --window must be at least 1\n");
    return -1;
  }
  lg->fan.receivers = lg->o.connections;
  lg->fan.members = lg->o.connections + (publisher_listens ? 1 : 0);
  if (lg->o.window_all) lg->fan.copies = xcalloc((size_t)lg->o.window, sizeof *lg->fan.copies);
  if (publisher_listens) lg->o.connections++; /* the publisher is the last connection */
  return 0;
}

static void fan_start(lg_t *lg) { fan_pump(lg); }

static void fan_stop(lg_t *lg) { pace_stop(lg); }

static bool fan_drain(lg_t *lg) {
  lg->fan.draining = true;
  return fan_drained(lg);
}

static void fan_report(lg_t *lg, hd_sbuf_t *json) {
  lg_fan_t *f = &lg->fan;
  uint64_t expected = f->published * (uint64_t)f->members;
  uint64_t missing = expected > f->deliveries ? expected - f->deliveries : 0;
  if (f->draining && missing) { /* the drain timed out: copies were lost */
    lg->errors[LG_ERR_mismatch] += missing;
    if (!lg->first_error[0])
      snprintf(lg->first_error, sizeof lg->first_error, "%" PRIu64 " copies never arrived", missing);
  }
  printf("  fan-out    %d receivers%s, window %d; %" PRIu64 " broadcasts, %" PRIu64 " copies of %" PRIu64
         " expected (%d per broadcast)%s\n",
         f->receivers, f->members > f->receivers ? " + the publisher" : "", lg->o.window, f->published,
         f->deliveries, expected, f->members, f->draining ? ", drained" : "");
  report_rate(lg, json, "deliveries", "publish to receipt");
  if (f->answers)
    printf("  publisher  %" PRIu64 " answers, the server reported %" PRIu64 " deliveries\n", f->answers,
           f->reported);
  hd_sbuf_printf(json,
                 ",\"receivers\":%d,\"members\":%d,\"window\":%d,\"rate\":%g,\"size\":%zu,\"broadcasts\":%" PRIu64
                 ",\"deliveries_total\":%" PRIu64 ",\"deliveries_expected\":%" PRIu64 ",\"drained\":%s"
                 ",\"answers\":%" PRIu64 ",\"server_reported\":%" PRIu64 ",\"other_events\":%" PRIu64,
                 f->receivers, f->members, lg->o.window, lg->o.rate, lg->o.size, f->published, f->deliveries, expected,
                 f->draining && !missing ? "true" : "false", f->answers, f->reported, f->other_events);
  if (lg->o.window_all) hd_sbuf_puts(json, ",\"window_all\":true");
  if (lg->o.n_ports > 1) {
    printf("  per server");
    hd_sbuf_puts(json, ",\"deliveries_by_port\":[");
    for (int i = 0; i < lg->o.n_ports; i++) {
      int members = 0;
      for (int k = 0; k < lg->o.connections; k++) members += lg->conns[k].port_idx == i;
      printf("%s port %d: %d connections, %" PRIu64 " copies in the window", i ? ";" : "", lg->o.ports[i], members,
             lg->received_by_port[i]);
      hd_sbuf_printf(json, "%s%" PRIu64, i ? "," : "", lg->received_by_port[i]);
    }
    printf("\n");
    hd_sbuf_puts(json, "]");
  }
}

/* ---- mode: sio-fanout ------------------------------------------------------------------ *
 * The publisher emits 42["broadcast","hb:..."]; the server sends 42["msg","hb:..."] to every
 * socket of "/" (Herald with a recovery window appends an offset argument: ignored). */

static int sio_publish(lg_t *lg, uint64_t seq, const char *payload, size_t len) {
  (void)seq;
  lg_conn_t *pub = lg->fan.pub;
  if (pub->state != ST_OPEN) return -1;
  hd_sbuf_t *b = &lg->fan.scratch;
  b->len = 0;
  if (hd_sbuf_printf(b, "42[\"broadcast\",\"%.*s\"]", (int)len, payload)) return -1;
  return send_text(pub, b->ptr, b->len) ? 0 : -1;
}

static int sio_fanout_init(lg_t *lg) {
  lg->fan.publish = sio_publish;
  return fan_init(lg, true);
}

static void sio_fanout_message(lg_conn_t *c, int opcode, const uint8_t *p, size_t n) {
  int r = sio_frame(c, opcode, &p, &n);
  if (r == SIO_JUST_CONNECTED) lg_conn_ready(c);
  if (r != SIO_PACKET) return;
  if (sio_is_event(p, n, "msg")) fan_delivery(c, p, n);
  else if (p[0] == '2') c->lg->fan.other_events++;
  else lg_conn_error(c, LG_ERR_protocol, "unexpected Socket.IO packet");
}

/* ---- mode: json-fanout ----------------------------------------------------------------- *
 * Herald's JSON protocol: every connection authenticates with ?token=JWT, waits for the
 * `connect` frame, subscribes to --topic and waits for the ack. The publisher (an admin token,
 * subscribed too) sends {"type":"data","topic":T,"data":{"v":"hb:..."},"messageId":"pSEQ"} and
 * gets an ack with the server's delivery count; with --via-api it is an HTTP keep-alive
 * connection sending POST /api/v1/publish (pipelined, --window in flight) with X-API-Key. */

enum { JP_WAIT_CONNECT, JP_WAIT_SUB, JP_READY };

static bool has_prefix(const uint8_t *p, size_t n, const char *prefix) {
  size_t k = strlen(prefix);
  return n >= k && memcmp(p, prefix, k) == 0;
}

/* The number after "key": in p, or -1. */
static long long json_number(const uint8_t *p, size_t n, const char *key) {
  char pat[64];
  int k = snprintf(pat, sizeof pat, "\"%s\":", key);
  const uint8_t *q = memmem(p, n, pat, (size_t)k);
  if (!q) return -1;
  q += k;
  long long v = 0;
  const uint8_t *start = q;
  while (q < p + n && *q >= '0' && *q <= '9') v = v * 10 + (*q++ - '0');
  return q == start ? -1 : v;
}

static void json_open(lg_conn_t *c) { c->pstate = JP_WAIT_CONNECT; }

/* One answer to the publisher (JSON ack or HTTP response) reporting `delivered` copies. */
static void json_answer(lg_t *lg, long long delivered, const char *who) {
  lg_fan_t *f = &lg->fan;
  f->answers++;
  if (delivered < 0 || delivered != f->members) {
    char what[96];
    snprintf(what, sizeof what, "server reported %lld deliveries, expected %d", delivered, f->members);
    lg_error_at(lg, who, LG_ERR_mismatch, what, 0);
  }
  if (delivered > 0) f->reported += (uint64_t)delivered;
}

static void json_message(lg_conn_t *c, int opcode, const uint8_t *p, size_t n) {
  lg_t *lg = c->lg;
  if (opcode != OP_TEXT) {
    lg_conn_error(c, LG_ERR_protocol, "binary frame from the JSON protocol");
    return;
  }
  if (has_prefix(p, n, "{\"type\":\"data\"")) {
    if (c->pstate == JP_READY) fan_delivery(c, p, n);
    else lg_conn_error(c, LG_ERR_protocol, "data before the subscription was acked");
  } else if (has_prefix(p, n, "{\"type\":\"ack\"")) {
    if (c->pstate == JP_WAIT_SUB && memmem(p, n, "\"messageId\":\"s1\"", 16)) {
      c->pstate = JP_READY;
      lg_conn_ready(c);
    } else if (c->pstate == JP_READY && c == lg->fan.pub) {
      json_answer(lg, json_number(p, n, "delivered"), "publisher");
      fan_check_drained(lg);
    } else {
      lg_conn_error(c, LG_ERR_protocol, "unexpected ack");
    }
  } else if (has_prefix(p, n, "{\"type\":\"connect\"")) {
    if (c->pstate != JP_WAIT_CONNECT) {
      lg_conn_error(c, LG_ERR_protocol, "unexpected connect frame");
      return;
    }
    c->pstate = JP_WAIT_SUB;
    hd_sbuf_t *b = &lg->fan.scratch;
    b->len = 0;
    hd_sbuf_printf(b, "{\"type\":\"subscribe\",\"data\":{\"topic\":\"%s\"},\"messageId\":\"s1\"}", lg->o.topic);
    send_text(c, b->ptr, b->len);
  } else {
    char what[120];
    snprintf(what, sizeof what, "unexpected frame: %.80s", (const char *)p);
    lg_conn_error(c, LG_ERR_protocol, what);
  }
}

static int json_publish_ws(lg_t *lg, uint64_t seq, const char *payload, size_t len) {
  lg_conn_t *pub = lg->fan.pub;
  if (pub->state != ST_OPEN) return -1;
  hd_sbuf_t *b = &lg->fan.scratch;
  b->len = 0;
  if (hd_sbuf_printf(b, "{\"type\":\"data\",\"topic\":\"%s\",\"data\":{\"v\":\"%.*s\"},\"messageId\":\"p%" PRIu64 "\"}",
                     lg->o.topic, (int)len, payload, seq))
    return -1;
  return send_text(pub, b->ptr, b->len) ? 0 : -1;
}

/* --via-api: one keep-alive HTTP/1.1 connection, requests pipelined. */

static void api_on_write(uv_write_t *req, int status) {
  lg_t *lg = req->handle->data;
  free(req);
  if (status < 0 && status != UV_ECANCELED) lg_error_at(lg, "publish API", LG_ERR_write, "write", status);
}

static void api_closed(uv_handle_t *h) {
  lg_t *lg = h->data;
  lg->fan.http_state = 0;
}

static void api_close(lg_t *lg) {
  if (lg->fan.http_state == 0 || lg->fan.http_state == 3) return;
  lg->fan.http_state = 3;
  uv_close((uv_handle_t *)&lg->fan.http, api_closed);
}

/* Queues one publish request on http_out (written by api_flush). */
static int json_publish_api(lg_t *lg, uint64_t seq, const char *payload, size_t len) {
  (void)seq;
  if (lg->fan.http_state != 2) return -1;
  char body[LG_MAX_PAYLOAD + 128];
  int bn = snprintf(body, sizeof body, "{\"topic\":\"%s\",\"type\":\"data\",\"data\":{\"v\":\"%.*s\"}}", lg->o.topic,
                    (int)len, payload);
  return hd_sbuf_printf(&lg->fan.http_out,
                        "POST /api/v1/publish HTTP/1.1\r\nHost: %s:%d\r\nX-API-Key: %s\r\n"
                        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                        lg->o.host, lg->o.port, lg->o.api_key, bn, body)
             ? -1
             : 0;
}

/* Writes the queued requests in one call (a copy owned by the write request). */
static void api_flush(lg_t *lg) {
  hd_sbuf_t *out = &lg->fan.http_out;
  if (!out->len || lg->fan.http_state != 2) return;
  uv_write_t *w = malloc(sizeof *w + out->len);
  if (!w) {
    lg_error_at(lg, "publish API", LG_ERR_write, "out of memory", 0);
    api_close(lg);
    return;
  }
  char *copy = (char *)(w + 1);
  memcpy(copy, out->ptr, out->len);
  uv_buf_t b = uv_buf_init(copy, (unsigned)out->len);
  out->len = 0;
  int r = uv_write(w, (uv_stream_t *)&lg->fan.http, &b, 1, api_on_write);
  if (r < 0) {
    free(w);
    lg_error_at(lg, "publish API", LG_ERR_write, "write", r);
    api_close(lg);
  }
}

static void api_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  lg_t *lg = h->data;
  *buf = uv_buf_init(lg->read_buf, LG_READ_BUF);
}

/* Parses complete responses out of http_in: each must be 200 with the delivery count, and
 * releases a window slot. */
static void api_parse(lg_t *lg) {
  lg_fan_t *f = &lg->fan;
  while (f->http_in.len) {
    const char *p = f->http_in.ptr, *end = memmem(p, f->http_in.len, "\r\n\r\n", 4);
    if (!end) return;
    size_t head = (size_t)(end - p) + 4;
    long long clen = -1;
    for (const char *q = p; q < end;) {
      const char *e = memmem(q, (size_t)(end - q) + 2, "\r\n", 2);
      if (!e) break;
      if (e - q > 15 && strncasecmp(q, "content-length:", 15) == 0) clen = strtoll(q + 15, NULL, 10);
      q = e + 2;
    }
    if (clen < 0) {
      lg_error_at(lg, "publish API", LG_ERR_protocol, "response without Content-Length", 0);
      api_close(lg);
      return;
    }
    if (f->http_in.len < head + (size_t)clen) return;
    if (f->http_in.len < 12 || memcmp(p, "HTTP/1.1 200", 12) != 0) {
      char what[120];
      snprintf(what, sizeof what, "publish answered \"%.*s\"", (int)(clen > 80 ? 80 : clen), p + head);
      lg_error_at(lg, "publish API", LG_ERR_protocol, what, 0);
      f->answers++;
    } else {
      json_answer(lg, json_number((const uint8_t *)p + head, (size_t)clen, "delivered"), "publish API");
    }
    hd_sbuf_consume(&f->http_in, head + (size_t)clen);
    f->released++;
  }
}

static void api_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  lg_t *lg = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    lg_error_at(lg, "publish API", LG_ERR_closed, "connection closed by the server",
                nread == UV_EOF ? 0 : (int)nread);
    api_close(lg);
    return;
  }
  lg->now_ns = uv_hrtime();
  if (hd_sbuf_append(&lg->fan.http_in, buf->base, (size_t)nread)) {
    lg_error_at(lg, "publish API", LG_ERR_protocol, "out of memory", 0);
    api_close(lg);
    return;
  }
  api_parse(lg);
  fan_pump(lg); /* once for every answer of this read, so the next requests share a write */
  fan_check_drained(lg);
}

static void api_connected(uv_connect_t *req, int status) {
  lg_t *lg = req->data;
  if (status == UV_ECANCELED || lg->fan.http_state != 1) return;
  int r = status < 0 ? status : uv_tcp_nodelay(&lg->fan.http, 1);
  if (r == 0) r = uv_read_start((uv_stream_t *)&lg->fan.http, api_alloc, api_read);
  if (r < 0) {
    lg_error_at(lg, "publish API", LG_ERR_connect, "connect", r);
    api_close(lg);
    return;
  }
  lg->fan.http_state = 2;
  fan_pump(lg);
}

static int json_fanout_init(lg_t *lg) {
  if (!lg->o.token) {
    fprintf(stderr, "loadgen: json-fanout needs --token JWT (an admin token, or one that may subscribe)\n");
    return -1;
  }
  if (lg->o.via_api && !lg->o.api_key) {
    fprintf(stderr, "loadgen: --via-api needs --api-key KEY\n");
    return -1;
  }
  if (fan_init(lg, !lg->o.via_api)) return -1;
  lg->fan.publish = lg->o.via_api ? json_publish_api : json_publish_ws;
  lg->fan.answered = true;
  /* the URLs stay allocated for the whole run */
  hd_sbuf_t u = {0}, pu = {0};
  const char *base = lg->o.url ? lg->o.url : "/api/v1/ws";
  hd_sbuf_printf(&u, "%s%stoken=%s", base, strchr(base, '?') ? "&" : "?", lg->o.token);
  hd_sbuf_printf(&pu, "%s%stoken=%s", base, strchr(base, '?') ? "&" : "?",
                 lg->o.pub_token ? lg->o.pub_token : lg->o.token);
  lg->o.url = u.ptr;
  if (!lg->o.via_api) lg->last_url = pu.ptr;
  else hd_sbuf_free(&pu);
  return 0;
}

static void json_fanout_start(lg_t *lg) {
  if (!lg->o.via_api) {
    fan_start(lg);
    return;
  }
  lg_fan_t *f = &lg->fan;
  LG_CHECK(uv_tcp_init(lg->loop, &f->http));
  f->http.data = lg;
  f->http_req.data = lg;
  f->http_state = 1;
  int r = uv_tcp_connect(&f->http_req, &f->http, (const struct sockaddr *)&lg->addr[0], api_connected);
  if (r < 0) {
    lg_error_at(lg, "publish API", LG_ERR_connect, "connect", r);
    api_close(lg);
  }
}

static void json_fanout_stop(lg_t *lg) {
  fan_stop(lg);
  api_close(lg);
}

/* ---- modes table ------------------------------------------------------------------------ */

#define SIO_URL "/socket.io/?EIO=4&transport=websocket"

static const lg_mode_t lg_modes[] = {
    {.name = "echo", .help = "closed-loop round trips: send --size bytes, wait for the echo, repeat",
     .default_url = "/ws/echo", .on_init = echo_init, .on_start = echo_start, .on_message = echo_message,
     .on_report = echo_report},
    {.name = "idle", .help = "open --connections, hold them --hold seconds (0: until signalled)",
     .default_url = "/ws/echo", .on_init = idle_init, .on_start = idle_start, .on_report = idle_report},
    {.name = "sio-fanout",
     .help = "--connections Socket.IO receivers + 1 publisher emitting `broadcast`, --window in flight",
     .default_url = SIO_URL, .handshake = true, .on_init = sio_fanout_init, .on_open = sio_open,
     .on_start = fan_start, .on_message = sio_fanout_message, .on_report = fan_report, .on_bye = sio_bye,
     .on_drain = fan_drain, .on_stop = fan_stop},
    {.name = "sio-ack", .help = "closed-loop `echo` emits with ack, one in flight per connection",
     .default_url = SIO_URL, .handshake = true, .on_init = sio_ack_init, .on_open = sio_open,
     .on_start = sio_ack_start, .on_message = sio_ack_message, .on_report = sio_ack_report, .on_bye = sio_bye,
     .on_stop = pace_stop},
    {.name = "sio-idle", .help = "Socket.IO sockets connected to \"/\" and held (like idle)",
     .default_url = SIO_URL, .handshake = true, .on_init = idle_init, .on_open = sio_open,
     .on_start = idle_start, .on_message = sio_idle_message, .on_report = idle_report, .on_bye = sio_bye},
    {.name = "sio-connect",
     .help = "connection churn: --connections slots each connect, CONNECT, close, again",
     .default_url = SIO_URL, .handshake = true, .recycle = true, .on_open = sio_open,
     .on_start = sio_connect_start, .on_message = sio_connect_message, .on_report = sio_connect_report,
     .on_bye = sio_bye},
    {.name = "json-fanout",
     .help = "--connections JSON-protocol subscribers + 1 publisher (or --via-api), --window in flight",
     .default_url = "/api/v1/ws", .handshake = true, .on_init = json_fanout_init, .on_open = json_open,
     .on_start = json_fanout_start, .on_message = json_message, .on_report = fan_report,
     .on_drain = fan_drain, .on_stop = json_fanout_stop},
};

/* ---- command line ----------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: herald-loadgen MODE --port PORT [options]\n"
          "modes:\n");
  for (size_t i = 0; i < sizeof lg_modes / sizeof lg_modes[0]; i++)
    fprintf(f, "  %-11s %s\n", lg_modes[i].name, lg_modes[i].help);
  fprintf(f,
          "options:\n"
          "  --host ADDR            server address, IPv4 or IPv6 literal (127.0.0.1)\n"
          "  --port PORT[,PORT...]  server port (required); with several (up to 16, e.g. the nodes of a\n"
          "                         cluster) connection i goes to the (i mod n)-th, the publisher to the first\n"
          "  --url PATH             WebSocket path (the mode's default: /ws/echo, " SIO_URL ",\n"
          "                         /api/v1/ws)\n"
          "  --connections N        connections to open (100); fan-out: receivers (+1 publisher);\n"
          "                         sio-connect: slots churning at once\n"
          "  --size BYTES           echo: message size; sio-*, json-*: payload string length (32)\n"
          "  --binary               echo: send binary instead of text messages\n"
          "  --pipeline K           echo: messages in flight per connection (1)\n"
          "  --warmup S             seconds of traffic before measuring (2)\n"
          "  --duration S           seconds measured (10)\n"
          "  --hold S               idle: seconds to hold once all are open; 0 = until signalled (10)\n"
          "  --concurrency C        connects + handshakes in flight at once (500)\n"
          "  --retries R            extra attempts for a failed connection (3)\n"
          "  --connect-timeout S    limit for one connect + handshake attempt (10)\n"
          "  --close-timeout S      wait for close handshakes at the end, and fan-out's drain (3)\n"
          "  --server-pid PID[,PID...]  read the server's CPU time over the measured window (several:\n"
          "                         summed, and each one reported in server_cpu_s_each)\n"
          "  --aux-pid PID[,PID...] CPU over the window reported apart (aux_cpu_s_each), e.g. a Redis\n"
          "  --ready-file PATH      idle, sio-idle: write PATH once every connection is settled\n"
          "  --window K             fan-out: broadcasts in flight (4); one leaves the window when the\n"
          "                         publisher receives its own copy (--via-api: the HTTP answer)\n"
          "  --window-all           fan-out: a broadcast leaves the window once every connection has\n"
          "                         its copy (for servers, e.g. cluster nodes, that may lag the publisher's)\n"
          "  --rate R               fan-out: at most R broadcasts per second; sio-ack: at most R emits per\n"
          "                         second over all connections (paced every 1 ms; 0 = no limit) (0)\n"
          "  --token JWT            json-fanout: subscribers' token (query ?token=)\n"
          "  --pub-token JWT        json-fanout: the publisher's token (--token); must be admin\n"
          "  --topic NAME           json-fanout: topic (bench)\n"
          "  --via-api              json-fanout: publish with POST /api/v1/publish (keep-alive, pipelined)\n"
          "  --api-key KEY          json-fanout --via-api: X-API-Key\n"
          "  --tls                  wss://: TLS under every connection (full handshakes, certificate not verified)\n"
          "  --quiet                no progress on stderr\n"
          "The last line of stdout is a JSON summary. SIGINT/SIGTERM end the run early.\n"
          "Errors, counted apart and summed into \"errors\":\n");
#define LG_ERR_HELP(name, help) fprintf(f, "  %-9s %s\n", #name, help);
  LG_ERRORS(LG_ERR_HELP)
#undef LG_ERR_HELP
}

static int parse_num(const char *name, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "loadgen: %s: expected a number in [%g, %g], got \"%s\"\n", name, lo, hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

/* A comma-separated list of 1 to max whole numbers in [1, hi] into out[] (appended: the option
 * may be repeated); 0 or -1 (message printed). */
static int parse_list(const char *name, const char *s, long hi, int *out, int *n, int max) {
  const char *p = s;
  do {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || end == p || (*end && *end != ',') || v < 1 || v > hi || *n >= max) {
      fprintf(stderr, "loadgen: %s: expected up to %d numbers in [1, %ld] separated by commas, got \"%s\"\n", name,
              max, hi, s);
      return -1;
    }
    out[(*n)++] = (int)v;
    p = *end ? end + 1 : end;
  } while (*p);
  return p[-1] == ',' ? (fprintf(stderr, "loadgen: %s: trailing comma in \"%s\"\n", name, s), -1) : 0;
}

static int parse_args(lg_t *lg, int argc, char **argv) {
  enum { O_HOST = 256, O_PORT, O_URL, O_CONN, O_SIZE, O_BIN, O_PIPE, O_WARM, O_DUR, O_HOLD,
         O_CONC, O_RETR, O_CTO, O_CLTO, O_PID, O_READY, O_QUIET, O_HELP, O_WIN, O_TOKEN, O_PTOKEN,
         O_TOPIC, O_VIA_API, O_API_KEY, O_RATE, O_AUX, O_WALL, O_TLS };
  static const struct option opts[] = {
      {"host", 1, 0, O_HOST}, {"port", 1, 0, O_PORT}, {"url", 1, 0, O_URL},
      {"connections", 1, 0, O_CONN}, {"size", 1, 0, O_SIZE}, {"binary", 0, 0, O_BIN},
      {"pipeline", 1, 0, O_PIPE}, {"warmup", 1, 0, O_WARM}, {"duration", 1, 0, O_DUR},
      {"hold", 1, 0, O_HOLD}, {"concurrency", 1, 0, O_CONC}, {"retries", 1, 0, O_RETR},
      {"connect-timeout", 1, 0, O_CTO}, {"close-timeout", 1, 0, O_CLTO},
      {"server-pid", 1, 0, O_PID}, {"ready-file", 1, 0, O_READY}, {"quiet", 0, 0, O_QUIET},
      {"help", 0, 0, O_HELP}, {"window", 1, 0, O_WIN}, {"token", 1, 0, O_TOKEN},
      {"pub-token", 1, 0, O_PTOKEN}, {"topic", 1, 0, O_TOPIC}, {"via-api", 0, 0, O_VIA_API},
      {"api-key", 1, 0, O_API_KEY}, {"rate", 1, 0, O_RATE}, {"aux-pid", 1, 0, O_AUX},
      {"window-all", 0, 0, O_WALL}, {"tls", 0, 0, O_TLS}, {0, 0, 0, 0}};
  lg_opts_t *o = &lg->o;
  *o = (lg_opts_t){.host = "127.0.0.1", .connections = 100, .size = 32, .pipeline = 1,
                   .duration = 10, .warmup = 2, .hold = 10, .concurrency = 500, .retries = 3,
                   .connect_timeout = 10, .close_timeout = 3, .window = 4, .topic = "bench"};
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
      usage(stdout);
      exit(0);
    }
    usage(stderr);
    return -1;
  }
  for (size_t i = 0; i < sizeof lg_modes / sizeof lg_modes[0]; i++)
    if (!strcmp(argv[1], lg_modes[i].name)) lg->mode = &lg_modes[i];
  if (!lg->mode) {
    fprintf(stderr, "loadgen: unknown mode \"%s\"\n", argv[1]);
    usage(stderr);
    return -1;
  }
  optind = 2;
  int ch;
  double v;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
      case O_HOST: o->host = optarg; break;
      case O_PORT: if (parse_list("--port", optarg, 65535, o->ports, &o->n_ports, LG_MAX_PORTS)) return -1; break;
      case O_URL: o->url = optarg; break;
      case O_CONN: if (parse_num("--connections", optarg, 1, 1000000, &v)) return -1; o->connections = (int)v; break;
      case O_SIZE: if (parse_num("--size", optarg, 0, LG_MAX_MESSAGE, &v)) return -1; o->size = (size_t)v; break;
      case O_BIN: o->binary = true; break;
      case O_PIPE: if (parse_num("--pipeline", optarg, 1, 4096, &v)) return -1; o->pipeline = (int)v; break;
      case O_WARM: if (parse_num("--warmup", optarg, 0, 86400, &o->warmup)) return -1; break;
      case O_DUR: if (parse_num("--duration", optarg, 0.001, 86400, &o->duration)) return -1; break;
      case O_HOLD: if (parse_num("--hold", optarg, 0, 86400 * 7, &o->hold)) return -1; break;
      case O_CONC: if (parse_num("--concurrency", optarg, 1, 100000, &v)) return -1; o->concurrency = (int)v; break;
      case O_RETR: if (parse_num("--retries", optarg, 0, 100, &v)) return -1; o->retries = (int)v; break;
      case O_CTO: if (parse_num("--connect-timeout", optarg, 0.001, 3600, &o->connect_timeout)) return -1; break;
      case O_CLTO: if (parse_num("--close-timeout", optarg, 0, 3600, &o->close_timeout)) return -1; break;
      case O_PID: if (parse_list("--server-pid", optarg, 1 << 30, o->server_pids, &o->n_server_pids, LG_MAX_PIDS)) return -1; break;
      case O_AUX: if (parse_list("--aux-pid", optarg, 1 << 30, o->aux_pids, &o->n_aux_pids, LG_MAX_PIDS)) return -1; break;
      case O_WALL: o->window_all = true; break;
      case O_TLS: o->tls = true; break;
      case O_READY: o->ready_file = optarg; break;
      case O_QUIET: o->quiet = true; break;
      case O_HELP: usage(stdout); exit(0);
      case O_WIN: if (parse_num("--window", optarg, 1, 100000, &v)) return -1; o->window = (int)v; break;
      case O_TOKEN: o->token = optarg; break;
      case O_PTOKEN: o->pub_token = optarg; break;
      case O_TOPIC: o->topic = optarg; break;
      case O_VIA_API: o->via_api = true; break;
      case O_API_KEY: o->api_key = optarg; break;
      case O_RATE: if (parse_num("--rate", optarg, 0, 1e9, &o->rate)) return -1; break;
      default: usage(stderr); return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "loadgen: unexpected argument \"%s\"\n", argv[optind]);
    return -1;
  }
  if (!o->n_ports) {
    fprintf(stderr, "loadgen: --port is required\n");
    return -1;
  }
  if (o->tls && o->via_api) {
    fprintf(stderr, "loadgen: --tls is for the WebSocket connections; --via-api speaks plain HTTP\n");
    return -1;
  }
  if (o->window_all && o->via_api) {
    fprintf(stderr, "loadgen: --window-all needs a listening publisher (not --via-api)\n");
    return -1;
  }
  o->port = o->ports[0];
  o->server_pid = o->n_server_pids ? o->server_pids[0] : 0;
  if (!o->url) o->url = lg->mode->default_url;
  for (int i = 0; i < o->n_ports; i++) {
    if (strchr(o->host, ':')) {
      if (uv_ip6_addr(o->host, o->ports[i], (struct sockaddr_in6 *)&lg->addr[i]) < 0) goto bad_host;
    } else if (uv_ip4_addr(o->host, o->ports[i], (struct sockaddr_in *)&lg->addr[i]) < 0) {
      goto bad_host;
    }
  }
  return 0;
bad_host:
  fprintf(stderr, "loadgen: --host must be a numeric address, got \"%s\"\n", o->host);
  return -1;
}

/* ---- main ------------------------------------------------------------------------------- */

static void report(lg_t *lg) {
  hd_sbuf_t json = {0};
  const char *tok = strstr(lg->o.url, "token=");
  int url_len = tok ? (int)(tok - lg->o.url) + 6 : (int)strlen(lg->o.url);
  printf("%s: %d connections to %s:%d%.*s%s, %d open at the end of the run\n", lg->mode->name,
         lg->o.connections, lg->o.host, lg->o.port, url_len, lg->o.url, tok ? "..." : "", lg->open_at_stop);
  hd_sbuf_printf(&json, "{\"mode\":\"%s\",\"connections\":%d,\"open\":%d,\"complete\":%s",
                 lg->mode->name, lg->o.connections, lg->open_at_stop, lg->complete ? "true" : "false");
  if (lg->mode->on_report) lg->mode->on_report(lg, &json);
  if (lg->tls) {
    printf("  tls        %" PRIu64 " handshakes completed (full, no resumption)\n", lg->tls_handshakes);
    hd_sbuf_printf(&json, ",\"tls\":true,\"tls_handshakes\":%" PRIu64, lg->tls_handshakes);
  }
  uint64_t errors = lg_errors_total(lg);
  printf("  errors     %" PRIu64, errors);
  const char *sep = " (";
  static const char *names[] = {
#define LG_ERR_NAME(name, help) #name,
      LG_ERRORS(LG_ERR_NAME)
#undef LG_ERR_NAME
  };
  for (int i = 0; i < LG_ERR_COUNT; i++) {
    if (!lg->errors[i]) continue;
    printf("%s%s %" PRIu64, sep, names[i], lg->errors[i]);
    sep = ", ";
  }
  printf("%s\n", errors ? ")" : "");
  if (lg->first_error[0]) printf("  first      %s\n", lg->first_error);
  printf("  closing    %d closed by the server after our close frame, %d closed by us (timeout)\n",
         lg->closed_clean, lg->closed_forced);
  double window = lg->t_end > lg->t_measure && lg->t_measure ? secs(lg->t_end - lg->t_measure) : 0;
  double self_cpu = window > 0 ? rusage_cpu_s(&lg->ru_measure, &lg->ru_end) : 0;
  double cpu_pct = window > 0 ? 100 * self_cpu / window : 0;
  double tick = (double)sysconf(_SC_CLK_TCK);
  double srv_cpu = -1;
  if (window > 0 && lg->o.server_pid && lg->srv_ticks_measure >= 0 &&
      lg->srv_ticks_end >= lg->srv_ticks_measure) {
    srv_cpu = (double)(lg->srv_ticks_end - lg->srv_ticks_measure) / tick;
    printf("  server     pid %d%s: %.2f s CPU in the window (%.0f%% of a core)", lg->o.server_pid,
           lg->o.n_server_pids > 1 ? " and the others" : "", srv_cpu, 100 * srv_cpu / window);
    hd_sbuf_printf(&json, ",\"server_cpu_s\":%.2f", srv_cpu);
    if (lg->o.n_server_pids > 1) {
      hd_sbuf_puts(&json, ",\"server_cpu_s_each\":[");
      for (int i = 0; i < lg->o.n_server_pids; i++)
        hd_sbuf_printf(&json, "%s%.2f", i ? "," : "", (double)(lg->pid_ticks_end[i] - lg->pid_ticks_measure[i]) / tick);
      hd_sbuf_puts(&json, "]");
    }
    if (lg->received > 0) {
      double per = srv_cpu * 1e6 / (double)lg->received;
      printf(", %.2f us per message", per);
      hd_sbuf_printf(&json, ",\"server_cpu_us_per_msg\":%.3f", per);
    }
    printf("\n");
  }
  if (window > 0)
    printf("  loadgen    %.0f%% of one core during the measured window%s\n", cpu_pct,
           cpu_pct > 90 ? " (saturated: figures may be the generator's limit)" : "");
  double aux_cpu = 0; /* --aux-pid: reported apart, and not counted as "other" */
  if (window > 0 && lg->o.n_aux_pids) {
    hd_sbuf_puts(&json, ",\"aux_cpu_s_each\":[");
    for (int i = 0; i < lg->o.n_aux_pids; i++) {
      int k = lg->o.n_server_pids + i;
      double s = lg->pid_ticks_measure[k] >= 0 && lg->pid_ticks_end[k] >= lg->pid_ticks_measure[k]
                     ? (double)(lg->pid_ticks_end[k] - lg->pid_ticks_measure[k]) / tick
                     : 0;
      aux_cpu += s;
      printf("%s pid %d: %.2f s", i ? "," : "  aux       ", lg->o.aux_pids[i], s);
      hd_sbuf_printf(&json, "%s%.2f", i ? "," : "", s);
    }
    printf(" CPU in the window\n");
    hd_sbuf_puts(&json, "]");
  }
  double other_pct = -1;
  if (window > 0 && lg->all_ticks_measure >= 0 && lg->all_ticks_end >= lg->all_ticks_measure) {
    double busy = (double)(lg->all_ticks_end - lg->all_ticks_measure) / tick;
    other_pct = 100 * (busy - self_cpu - (srv_cpu > 0 ? srv_cpu : 0) - aux_cpu) / window;
    if (other_pct < 0) other_pct = 0; /* tick granularity */
    printf("  machine    %.0f%% of a core used by %s during the window%s\n", other_pct,
           srv_cpu >= 0 ? "processes other than loadgen and server" : "processes other than loadgen",
           other_pct > 10 && srv_cpu >= 0 ? " (busy machine: figures are disturbed)" : "");
  }
  hd_sbuf_printf(&json, ",\"frames_in\":%" PRIu64 ",\"errors\":%" PRIu64, lg->frames_in, errors);
  for (int i = 0; i < LG_ERR_COUNT; i++)
    hd_sbuf_printf(&json, ",\"errors_%s\":%" PRIu64, names[i], lg->errors[i]);
  hd_sbuf_printf(&json, ",\"closed_forced\":%d,\"loadgen_cpu_pct\":%.1f", lg->closed_forced, cpu_pct);
  if (other_pct >= 0) hd_sbuf_printf(&json, ",\"other_cpu_pct\":%.1f", other_pct);
  hd_sbuf_puts(&json, "}");
  printf("%s\n", json.ptr ? json.ptr : "{}");
  fflush(stdout);
  hd_sbuf_free(&json);
}

int main(int argc, char **argv) {
  static lg_t lg; /* large (read buffer, histogram): not on the stack */
  if (parse_args(&lg, argc, argv) < 0) return 2;
  signal(SIGPIPE, SIG_IGN);
  lg.rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
  if (lg.mode->on_init && lg.mode->on_init(&lg) < 0) return 2;
  if (lg.o.tls) {
    lg.tls = SSL_CTX_new(TLS_client_method());
    if (!lg.tls) die("SSL_CTX_new", UV_ENOMEM);
    SSL_CTX_set_verify(lg.tls, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(lg.tls, SSL_SESS_CACHE_OFF); /* every handshake a full one */
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(lg.tls, alpn, sizeof alpn - 1);
  }
  lg.conns = xcalloc((size_t)lg.o.connections, sizeof *lg.conns);
  lg.dirty = xcalloc((size_t)lg.o.connections, sizeof *lg.dirty);
  lg.retry_q = xcalloc((size_t)lg.o.connections, sizeof *lg.retry_q);
  for (int i = 0; i < lg.o.connections; i++) {
    lg_conn_t *c = &lg.conns[i];
    c->lg = &lg;
    c->id = (uint32_t)i;
    c->port_idx = (uint8_t)(i % lg.o.n_ports);
    c->stamp_cap = (uint32_t)lg.o.pipeline;
    c->stamps = xcalloc(c->stamp_cap, sizeof *c->stamps);
  }
  if (lg.fan.receivers) lg.fan.pub = lg.fan.members > lg.fan.receivers ? &lg.conns[lg.o.connections - 1] : NULL;
  if (lg.fan.pub) lg.fan.pub->port_idx = 0; /* the publisher talks to the first server */

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < (rlim_t)lg.o.connections + 64)
    fprintf(stderr, "loadgen: warning: open-file limit %llu is below --connections + 64 (ulimit -n)\n",
            (unsigned long long)rl.rlim_cur);

  lg.loop = uv_default_loop();
  if (!lg.loop) die("uv_default_loop", UV_ENOMEM);
  LG_CHECK(uv_timer_init(lg.loop, &lg.phase_timer));
  LG_CHECK(uv_timer_init(lg.loop, &lg.tick_timer));
  LG_CHECK(uv_timer_init(lg.loop, &lg.stop_timer));
  LG_CHECK(uv_prepare_init(lg.loop, &lg.flush_prep));
  LG_CHECK(uv_signal_init(lg.loop, &lg.sig_int));
  LG_CHECK(uv_signal_init(lg.loop, &lg.sig_term));
  lg.phase_timer.data = lg.tick_timer.data = lg.stop_timer.data = &lg;
  lg.flush_prep.data = lg.sig_int.data = lg.sig_term.data = &lg;
  LG_CHECK(uv_prepare_start(&lg.flush_prep, on_flush_prepare));
  LG_CHECK(uv_signal_start(&lg.sig_int, on_signal, SIGINT));
  LG_CHECK(uv_signal_start(&lg.sig_term, on_signal, SIGTERM));
  LG_CHECK(uv_timer_start(&lg.tick_timer, on_tick, LG_TICK_MS, LG_TICK_MS));

  lg.phase = PH_CONNECT;
  lg.t_begin = uv_hrtime();
  lg_pump(&lg);
  LG_CHECK(uv_run(lg.loop, UV_RUN_DEFAULT));
  int rc = uv_loop_close(lg.loop);
  if (rc < 0) fprintf(stderr, "loadgen: uv_loop_close: %s\n", uv_strerror(rc));

  report(&lg);
  for (int i = 0; i < lg.o.connections; i++) {
    hd_sbuf_free(&lg.conns[i].in);
    hd_sbuf_free(&lg.conns[i].out);
    hd_sbuf_free(&lg.conns[i].frag);
    free(lg.conns[i].stamps);
  }
  free(lg.conns);
  free(lg.dirty);
  free(lg.retry_q);
  free(lg.payload);
  free(lg.fan.copies);
  hd_sbuf_free(&lg.fan.scratch);
  hd_sbuf_free(&lg.fan.http_in);
  hd_sbuf_free(&lg.fan.http_out);
  SSL_CTX_free(lg.tls);
  if (!lg.complete || lg.open_at_stop == 0 || rc < 0) return 1;
  return lg_errors_total(&lg) ? 1 : 0;
}
