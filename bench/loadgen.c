/* herald-loadgen: a single-threaded libuv WebSocket load generator for Herald's benchmarks.
 *
 * The engine opens N client connections at a bounded rate (at most --concurrency connects and
 * handshakes in flight, failed attempts retried), completes the RFC 6455 handshake, then runs
 * fixed phases: connect -> warm-up -> measure -> stop (close handshake) -> report. What travels
 * on the connections is up to a mode, a small struct of callbacks (lg_mode_t); `echo` and `idle`
 * exist, Socket.IO and Herald JSON modes plug in beside them. Output: a human summary on stdout
 * and, as its last line, one JSON object for scripts. Traffic goes to --host only. */
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

#include <openssl/evp.h>
#include <uv.h>

#include "core/buf.h"
#include "core/error.h"

#define LG_READ_BUF (64 * 1024)
#define LG_MAX_MESSAGE (64u << 20)     /* largest server message accepted (bytes) */
#define LG_MAX_SEND_QUEUE (64u << 20)  /* bytes queued in libuv per connection before giving up */
#define LG_MAX_RESPONSE_HEAD 8192      /* handshake response header limit */
#define LG_TICK_MS 100
#define LG_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xA };

/* Connection states. A connection is restarted (same struct, same handle memory) on retry. */
enum {
  ST_NEW,         /* never started */
  ST_CONNECTING,  /* TCP connect in flight */
  ST_HANDSHAKE,   /* upgrade request sent, waiting for 101 */
  ST_OPEN,        /* WebSocket open */
  ST_CLOSING,     /* close frame sent or received; waiting for the server's FIN */
  ST_CLOSED,      /* uv_close called; on_close pending */
  ST_RETRY,       /* attempt failed; queued for another */
  ST_FAILED,      /* out of attempts */
  ST_DONE,        /* closed for good */
};

enum { PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_STOP };

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
  int port;
  const char *url;
  int connections;
  size_t size;
  int pipeline;
  bool binary;
  double duration, warmup, hold;
  int concurrency, retries;
  double connect_timeout, close_timeout;
  int server_pid;
  const char *ready_file;
  bool quiet;
} lg_opts_t;

typedef struct lg lg_t;
typedef struct lg_conn lg_conn_t;

/* A load pattern. The engine owns connections and phases; a mode decides what to send and how
 * to judge replies. Every callback may be NULL. */
typedef struct {
  const char *name;
  const char *help;
  const char *default_url;
  /* Checks options and builds shared state before any connection; 0 or -1 (message printed). */
  int (*on_init)(lg_t *lg);
  /* One connection completed its handshake (protocol-level set-up goes here). */
  void (*on_open)(lg_conn_t *c);
  /* Every connection opened or failed for good: start the traffic. */
  void (*on_start)(lg_t *lg);
  /* A complete data message (text or binary) arrived; data is valid during the call only. */
  void (*on_message)(lg_conn_t *c, int opcode, const uint8_t *data, size_t len);
  /* Prints the mode's part of the summary and appends its JSON fields (",\"k\":v" ...). */
  void (*on_report)(lg_t *lg, hd_sbuf_t *json);
} lg_mode_t;

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
  uint64_t deadline_ns; /* ST_CONNECTING/ST_HANDSHAKE: give up the attempt after this */
  uint64_t retry_ns;    /* ST_RETRY: earliest restart */
  char key[32];         /* Sec-WebSocket-Key (base64 of 16 bytes) */
  hd_sbuf_t in;         /* received bytes not yet parsed */
  hd_sbuf_t out;        /* frames queued this loop iteration */
  hd_sbuf_t frag;       /* fragmented message being reassembled */
  uint64_t *stamps;     /* FIFO of send times (ns) of messages awaiting a reply */
  uint32_t stamp_head, stamp_len, stamp_cap;
};

struct lg {
  uv_loop_t *loop;
  const lg_mode_t *mode;
  lg_opts_t o;
  struct sockaddr_storage addr;
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
  uint64_t errors[LG_ERR_COUNT];
  char first_error[160];
  lg_hist_t hist;
  /* CPU: the loadgen itself and, with --server-pid, the server (clock ticks) */
  struct rusage ru_measure, ru_end;
  long long srv_ticks_measure, srv_ticks_end;
  long long all_ticks_measure, all_ticks_end; /* every CPU of the machine, busy */
  /* mode state */
  uint8_t *payload; /* echo: the message every connection sends */
  uint64_t rng;
  char read_buf[LG_READ_BUF];
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

/* Counts one error of category cat; the first one's text is kept for the summary. */
static void lg_error(lg_conn_t *c, int cat, const char *what, int uverr) {
  lg_t *lg = c->lg;
  if (lg->phase == PH_STOP) return;
  lg->errors[cat]++;
  if (!lg->first_error[0])
    snprintf(lg->first_error, sizeof lg->first_error, "connection %u: %s%s%s", (unsigned)c->id,
             what, uverr ? ": " : "", uverr ? uv_strerror(uverr) : "");
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

/* Writes c->out: uv_try_write first, the rest (if any) through uv_write with a copy. */
static void conn_flush(lg_conn_t *c) {
  size_t len = c->out.len;
  if (len == 0) return;
  uv_buf_t b = uv_buf_init(c->out.ptr, (unsigned)len);
  int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (r < 0 && r != UV_EAGAIN) {
    lg_error(c, LG_ERR_write, "write", r);
    conn_close(c);
    return;
  }
  size_t done = r > 0 ? (size_t)r : 0;
  if (done < len) {
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > LG_MAX_SEND_QUEUE) {
      lg_error(c, LG_ERR_write, "send queue over limit (server not reading)", 0);
      conn_close(c);
      return;
    }
    lg_write_t *w = malloc(sizeof *w + (len - done));
    if (!w) {
      lg_error(c, LG_ERR_write, "out of memory", 0);
      conn_close(c);
      return;
    }
    w->len = len - done;
    memcpy(w->data, c->out.ptr + done, w->len);
    uv_buf_t wb = uv_buf_init(w->data, (unsigned)w->len);
    r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &wb, 1, on_write);
    if (r < 0) {
      free(w);
      lg_error(c, LG_ERR_write, "write", r);
      conn_close(c);
      return;
    }
  }
  hd_sbuf_consume(&c->out, len);
}

/* Runs just before the loop polls: every connection written to since gets one write. */
static void on_flush_prepare(uv_prepare_t *h) {
  lg_t *lg = h->data;
  for (uint32_t i = 0; i < lg->n_dirty; i++) {
    lg_conn_t *c = lg->dirty[i];
    c->dirty = false;
    if (c->state == ST_HANDSHAKE || c->state == ST_OPEN || c->state == ST_CLOSING) conn_flush(c);
  }
  lg->n_dirty = 0;
}

/* ---- connection life cycle ------------------------------------------------------------- */

static void lg_check_settled(lg_t *lg);

static void on_conn_close(uv_handle_t *h) {
  lg_conn_t *c = h->data;
  lg_t *lg = c->lg;
  lg->n_handles--;
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
    case ST_HANDSHAKE: lg->connecting--; break;
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

static void conn_opened(lg_conn_t *c) {
  lg_t *lg = c->lg;
  lg->connecting--;
  lg->n_open++;
  c->state = ST_OPEN;
  if (lg->mode->on_open) lg->mode->on_open(c);
  if (!c->ever_open) {
    c->ever_open = true;
    lg->n_settled++;
    lg_check_settled(lg);
  }
  lg_pump(lg);
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
  if (op >= 0x8) {
    if (!fin || len > 125) {
      lg_error(c, LG_ERR_protocol, "bad control frame", 0);
      conn_close(c);
      return -1;
    }
    if (op == OP_PING) {
      if (c->state == ST_OPEN && lg_send(c, OP_PONG, p, len)) {
        lg_error(c, LG_ERR_write, "out of memory", 0);
        conn_close(c);
        return -1;
      }
    } else if (op == OP_CLOSE) {
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
  if (c->state == ST_OPEN) {
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

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  lg_conn_t *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    int err = nread == UV_EOF ? 0 : (int)nread;
    if (c->state == ST_HANDSHAKE) conn_fail(c, "handshake: connection closed", err);
    else if (c->state == ST_OPEN) {
      lg_error(c, LG_ERR_closed, "connection closed by server", err);
      conn_close(c);
    } else { /* ST_CLOSING: the server's FIN ends the close handshake */
      if (c->lg->phase == PH_STOP) c->lg->closed_clean++;
      conn_close(c);
    }
    return;
  }
  c->lg->now_ns = uv_hrtime();
  const uint8_t *data = (const uint8_t *)buf->base;
  size_t len = (size_t)nread;
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
  uint8_t raw[16];
  for (int i = 0; i < 16; i += 8) {
    uint64_t v = rng_next(lg);
    memcpy(raw + i, &v, 8);
  }
  EVP_EncodeBlock((unsigned char *)c->key, raw, 16);
  c->state = ST_HANDSHAKE;
  if (hd_sbuf_printf(&c->out,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "User-Agent: herald-loadgen\r\n\r\n",
                     lg->o.url, lg->addr.ss_family == AF_INET6 ? "[" : "", lg->o.host,
                     lg->addr.ss_family == AF_INET6 ? "]" : "", lg->o.port, c->key)) {
    conn_fail(c, "out of memory", 0);
    return;
  }
  mark_dirty(c);
}

/* Starts one attempt: TCP connect, then the upgrade request from on_connect. */
static void conn_start(lg_conn_t *c) {
  lg_t *lg = c->lg;
  c->attempts++;
  int r = uv_tcp_init(lg->loop, &c->tcp);
  if (r < 0) die("uv_tcp_init", r);
  c->tcp.data = c;
  c->connect_req.data = c;
  lg->n_handles++;
  lg->connecting++;
  c->state = ST_CONNECTING;
  c->deadline_ns = uv_hrtime() + (uint64_t)(lg->o.connect_timeout * 1e9);
  r = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&lg->addr, on_connect);
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
  if (lg->o.server_pid) lg->srv_ticks_measure = proc_cpu_ticks(lg->o.server_pid);
  lg->all_ticks_measure = machine_busy_ticks();
  if (lg->o.duration > 0)
    LG_CHECK(uv_timer_start(&lg->phase_timer, on_phase_timer, (uint64_t)(lg->o.duration * 1000), 0));
}

static void on_phase_timer(uv_timer_t *t) {
  lg_t *lg = t->data;
  if (lg->phase == PH_WARMUP) lg_measure_begin(lg);
  else if (lg->phase == PH_MEASURE) lg_stop(lg, NULL);
}

static void lg_check_settled(lg_t *lg) {
  if (lg->phase != PH_CONNECT || lg->n_settled < lg->o.connections) return;
  lg->t_settled = uv_hrtime();
  LG_CHECK(uv_timer_stop(&lg->tick_timer));
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
    if ((c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) && now > c->deadline_ns)
      conn_fail(c, c->state == ST_CONNECTING ? "connect timed out" : "handshake timed out", 0);
  }
  lg_pump(lg);
  if (!lg->o.quiet && now - lg->last_progress >= 1000000000ull && now - lg->t_begin >= 1000000000ull) {
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
    if (lg->phase == PH_MEASURE) {
      lg->t_end = uv_hrtime();
      if (getrusage(RUSAGE_SELF, &lg->ru_end) < 0) memset(&lg->ru_end, 0, sizeof lg->ru_end);
      if (lg->o.server_pid) lg->srv_ticks_end = proc_cpu_ticks(lg->o.server_pid);
      lg->all_ticks_end = machine_busy_ticks();
    }
    lg->open_at_stop = lg->n_open;
    lg->complete = lg->phase == PH_MEASURE;
    lg->phase = PH_STOP;
    LG_CHECK(uv_timer_stop(&lg->phase_timer));
    LG_CHECK(uv_timer_stop(&lg->tick_timer));
    for (int i = 0; i < lg->o.connections; i++) {
      lg_conn_t *c = &lg->conns[i];
      if (c->state == ST_OPEN) {
        static const uint8_t normal[2] = {1000 >> 8, 1000 & 0xff};
        if (lg_send(c, OP_CLOSE, normal, 2)) conn_close(c);
        else c->state = ST_CLOSING;
      } else if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
        conn_close(c);
      }
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

/* ---- modes table ------------------------------------------------------------------------ */

/* Socket.IO (sio-fanout, sio-ack) and Herald JSON (json-fanout) modes go here: their on_open
 * runs the protocol's own handshake, on_message parses its packets. */
static const lg_mode_t lg_modes[] = {
    {"echo", "closed-loop round trips: send --size bytes, wait for the echo, repeat",
     "/ws/echo", echo_init, NULL, echo_start, echo_message, echo_report},
    {"idle", "open --connections, hold them --hold seconds (0: until signalled)",
     "/ws/echo", idle_init, NULL, idle_start, NULL, idle_report},
};

/* ---- command line ----------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: herald-loadgen MODE --port PORT [options]\n"
          "modes:\n");
  for (size_t i = 0; i < sizeof lg_modes / sizeof lg_modes[0]; i++)
    fprintf(f, "  %-8s %s\n", lg_modes[i].name, lg_modes[i].help);
  fprintf(f,
          "options:\n"
          "  --host ADDR            server address, IPv4 or IPv6 literal (127.0.0.1)\n"
          "  --port PORT            server port (required)\n"
          "  --url PATH             WebSocket path (the mode's default, /ws/echo)\n"
          "  --connections N        connections to open (100)\n"
          "  --size BYTES           echo: message size (32)\n"
          "  --binary               echo: send binary instead of text messages\n"
          "  --pipeline K           echo: messages in flight per connection (1)\n"
          "  --warmup S             seconds of traffic before measuring (2)\n"
          "  --duration S           seconds measured (10)\n"
          "  --hold S               idle: seconds to hold once all are open; 0 = until signalled (10)\n"
          "  --concurrency C        connects + handshakes in flight at once (500)\n"
          "  --retries R            extra attempts for a failed connection (3)\n"
          "  --connect-timeout S    limit for one connect + handshake attempt (10)\n"
          "  --close-timeout S      wait for close handshakes at the end (3)\n"
          "  --server-pid PID       read the server's CPU time over the measured window\n"
          "  --ready-file PATH      idle: write PATH once every connection is settled\n"
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

static int parse_args(lg_t *lg, int argc, char **argv) {
  enum { O_HOST = 256, O_PORT, O_URL, O_CONN, O_SIZE, O_BIN, O_PIPE, O_WARM, O_DUR, O_HOLD,
         O_CONC, O_RETR, O_CTO, O_CLTO, O_PID, O_READY, O_QUIET, O_HELP };
  static const struct option opts[] = {
      {"host", 1, 0, O_HOST}, {"port", 1, 0, O_PORT}, {"url", 1, 0, O_URL},
      {"connections", 1, 0, O_CONN}, {"size", 1, 0, O_SIZE}, {"binary", 0, 0, O_BIN},
      {"pipeline", 1, 0, O_PIPE}, {"warmup", 1, 0, O_WARM}, {"duration", 1, 0, O_DUR},
      {"hold", 1, 0, O_HOLD}, {"concurrency", 1, 0, O_CONC}, {"retries", 1, 0, O_RETR},
      {"connect-timeout", 1, 0, O_CTO}, {"close-timeout", 1, 0, O_CLTO},
      {"server-pid", 1, 0, O_PID}, {"ready-file", 1, 0, O_READY}, {"quiet", 0, 0, O_QUIET},
      {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
  lg_opts_t *o = &lg->o;
  *o = (lg_opts_t){.host = "127.0.0.1", .connections = 100, .size = 32, .pipeline = 1,
                   .duration = 10, .warmup = 2, .hold = 10, .concurrency = 500, .retries = 3,
                   .connect_timeout = 10, .close_timeout = 3};
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
      case O_PORT: if (parse_num("--port", optarg, 1, 65535, &v)) return -1; o->port = (int)v; break;
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
      case O_PID: if (parse_num("--server-pid", optarg, 1, 1 << 30, &v)) return -1; o->server_pid = (int)v; break;
      case O_READY: o->ready_file = optarg; break;
      case O_QUIET: o->quiet = true; break;
      case O_HELP: usage(stdout); exit(0);
      default: usage(stderr); return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "loadgen: unexpected argument \"%s\"\n", argv[optind]);
    return -1;
  }
  if (!o->port) {
    fprintf(stderr, "loadgen: --port is required\n");
    return -1;
  }
  if (!o->url) o->url = lg->mode->default_url;
  if (strchr(o->host, ':')) {
    if (uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&lg->addr) < 0) goto bad_host;
  } else if (uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&lg->addr) < 0) {
    goto bad_host;
  }
  return 0;
bad_host:
  fprintf(stderr, "loadgen: --host must be a numeric address, got \"%s\"\n", o->host);
  return -1;
}

/* ---- main ------------------------------------------------------------------------------- */

static void report(lg_t *lg) {
  hd_sbuf_t json = {0};
  printf("%s: %d connections to %s:%d%s, %d open at the end of the run\n", lg->mode->name,
         lg->o.connections, lg->o.host, lg->o.port, lg->o.url, lg->open_at_stop);
  hd_sbuf_printf(&json, "{\"mode\":\"%s\",\"connections\":%d,\"open\":%d,\"complete\":%s",
                 lg->mode->name, lg->o.connections, lg->open_at_stop, lg->complete ? "true" : "false");
  if (lg->mode->on_report) lg->mode->on_report(lg, &json);
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
    printf("  server     pid %d: %.2f s CPU in the window (%.0f%% of a core)", lg->o.server_pid,
           srv_cpu, 100 * srv_cpu / window);
    hd_sbuf_printf(&json, ",\"server_cpu_s\":%.2f", srv_cpu);
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
  double other_pct = -1;
  if (window > 0 && lg->all_ticks_measure >= 0 && lg->all_ticks_end >= lg->all_ticks_measure) {
    double busy = (double)(lg->all_ticks_end - lg->all_ticks_measure) / tick;
    other_pct = 100 * (busy - self_cpu - (srv_cpu > 0 ? srv_cpu : 0)) / window;
    if (other_pct < 0) other_pct = 0; /* tick granularity */
    printf("  machine    %.0f%% of a core used by %s during the window%s\n", other_pct,
           srv_cpu >= 0 ? "processes other than loadgen and server" : "processes other than loadgen",
           other_pct > 10 && srv_cpu >= 0 ? " (busy machine: figures are disturbed)" : "");
  }
  hd_sbuf_printf(&json, ",\"errors\":%" PRIu64, errors);
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
  lg.conns = xcalloc((size_t)lg.o.connections, sizeof *lg.conns);
  lg.dirty = xcalloc((size_t)lg.o.connections, sizeof *lg.dirty);
  lg.retry_q = xcalloc((size_t)lg.o.connections, sizeof *lg.retry_q);
  for (int i = 0; i < lg.o.connections; i++) {
    lg_conn_t *c = &lg.conns[i];
    c->lg = &lg;
    c->id = (uint32_t)i;
    c->stamp_cap = (uint32_t)lg.o.pipeline;
    c->stamps = xcalloc(c->stamp_cap, sizeof *c->stamps);
  }
  if (lg.mode->on_init && lg.mode->on_init(&lg) < 0) return 2;

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
  if (!lg.complete || lg.open_at_stop == 0 || rc < 0) return 1;
  return lg_errors_total(&lg) ? 1 : 0;
}
