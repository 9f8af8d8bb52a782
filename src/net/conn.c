/* TCP connection lifecycle on the shard's own epoll set (one libuv poll handle serves every
 * connection of the shard: a connection holds a descriptor, not a libuv handle), shared-buffer
 * reads, batched writev, and the TLS layer under the kind when the connection came in on a TLS
 * listener (see conn.h, tls.h). */
#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "net/server.h"
#include "net/tls.h"

#define WQ_BATCH 1024 /* buffers per writev (Linux IOV_MAX) */
#define READS_PER_EVENT 16 /* full-buffer reads in a row before other connections get their turn */
#define EVENTS_PER_TURN 256 /* ready connections taken from the epoll set at once */
#define LINGER_MS 2000  /* after our FIN, how long unread input is drained before closing */
#define TLS_CHUNK 16384 /* plaintext per TLS record: one record's worth, decrypted or sealed at a time */

/* Readiness bits a connection asks its shard's epoll set for (level-triggered). */
enum { WATCH_READ = 1, WATCH_WRITE = 2 };

/* Times are kept as the low 32 bits of the loop's millisecond clock: intervals are computed modulo
 * 2^32, right for anything shorter than 49 days (the longest timeout is one day). */
struct hd_conn {
  void *udata;                /* the handler's per-conn state */
  hd_server_t *server;
  hd_conn_t *prev, *next;     /* server->conns (open conns only) */
  hd_conn_t *flush_next;      /* server->flush_list: conns to write, or closed ones to let go */
  const hd_conn_handler_t *handler;
  hd_tls_t *tls;              /* NULL on plain TCP; the kind sees plaintext either way */
  hd_buf_t **wq;              /* write queue: buffers [wq_head, wq_len); wq_inline until it grows */
  size_t head_off;            /* bytes of wq[wq_head] already written */
  size_t pending_bytes;       /* queued, unwritten bytes */
  uint32_t wq_head, wq_len, wq_cap;
  uint32_t wq_sealed;         /* TLS: buffers from wq_head holding ciphertext; those after are plaintext */
  uint32_t refs;              /* 1 for the open socket + 1 per outstanding async operation */
  uint32_t last_read_ms;      /* clock (low 32 bits) of the last bytes received */
  uint32_t since_ms;          /* start of the current timed phase (request, close wait, linger) */
  uint32_t last_write_ms;     /* when queued bytes last made progress (or were first queued) */
  int fd;
  uint8_t watched;            /* WATCH_* bits registered in the epoll set (0: not in it) */
  bool in_flush_list : 1, closing : 1, ending : 1, reading : 1, write_blocked : 1, over_limit : 1;
  bool lingering : 1;         /* half-closed: reading and discarding until the peer closes */
  bool tls_handshaking : 1;   /* counted in the shard's and the node's handshakes in flight */
  bool released : 1;          /* closed, and the open socket's reference dropped */
  bool fd_taken : 1;          /* the descriptor was handed over: closing the conn keeps it open */
  hd_buf_t *wq_inline[2];     /* most connections never queue more (a Socket.IO handshake queues two) */
};

static uint32_t clock32(const hd_server_t *s) { return (uint32_t)uv_now(s->loop); }

/* The full clock value of a 32-bit timestamp taken on this loop. */
static uint64_t widen(const hd_server_t *s, uint32_t t) {
  uint64_t now = uv_now(s->loop);
  return now - (uint32_t)((uint32_t)now - t);
}

/* Brings the epoll registration in line with what c waits for. Interest that went away is left
 * registered until an event shows it (an HTTP conn pausing its reads for one request costs no
 * system call); new interest is registered at once. */
static void watch(hd_conn_t *c) {
  uint8_t want = (c->reading ? WATCH_READ : 0) | (c->write_blocked ? WATCH_WRITE : 0);
  if (c->closing || !want || want == c->watched) return;
  struct epoll_event ev = {.events = (want & WATCH_READ ? EPOLLIN : 0) | (want & WATCH_WRITE ? EPOLLOUT : 0), .data.ptr = c};
  int op = c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(c->server->epfd, op, c->fd, &ev) < 0) {
    HD_DEBUG("conn", "epoll_ctl failed", "err=\"%s\"", strerror(errno));
    hd_conn_abort(c);
    return;
  }
  c->watched = want;
}

/* Takes c out of the epoll set (its descriptor stays open). */
static void unwatch(hd_conn_t *c) {
  if (!c->watched) return;
  epoll_ctl(c->server->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  c->watched = 0;
}

static void conn_read(hd_conn_t *c);
static void conn_flush(hd_conn_t *c);
static void schedule_flush(hd_conn_t *c);

void hd_conn_set_reading(hd_conn_t *c, bool on) {
  if (c->closing || on == c->reading) return;
  c->reading = on;
  watch(c);
}

hd_server_t *hd_conn_server(const hd_conn_t *c) { return c->server; }
bool hd_conn_is_closing(const hd_conn_t *c) { return c->closing; }
bool hd_conn_is_ending(const hd_conn_t *c) { return c->ending || c->closing; }
bool hd_conn_is_over_limit(const hd_conn_t *c) { return c->over_limit; }
size_t hd_conn_pending_bytes(const hd_conn_t *c) { return c->pending_bytes; }
uint64_t hd_conn_last_read_ms(const hd_conn_t *c) { return widen(c->server, c->last_read_ms); }
void hd_conn_touch_read(hd_conn_t *c) { c->last_read_ms = clock32(c->server); }
uint64_t hd_conn_since_ms(const hd_conn_t *c) { return widen(c->server, c->since_ms); }
void hd_conn_mark_since(hd_conn_t *c) { c->since_ms = clock32(c->server); }

void *hd_conn_udata(const hd_conn_t *c) { return c->udata; }

const hd_conn_handler_t *hd_conn_handler(const hd_conn_t *c) { return c->handler; }

void hd_conn_set_handler(hd_conn_t *c, const hd_conn_handler_t *h, void *udata) {
  c->handler = h;
  c->udata = udata;
}

void *hd_conn_ext(hd_conn_t *c) { return c + 1; }

static void tls_handshake_over(hd_conn_t *c);

/* A zeroed conn of s on descriptor fd, with its extension space. */
static hd_conn_t *conn_new(hd_server_t *s, int fd, const hd_conn_handler_t *h) {
  hd_conn_t *c = calloc(1, sizeof(*c) + s->conn_ext_size);
  if (!c) return NULL;
  c->wq = c->wq_inline;
  c->wq_cap = sizeof c->wq_inline / sizeof c->wq_inline[0];
  c->fd = fd;
  c->server = s;
  c->handler = h;
  c->refs = 1;
  return c;
}

/* Links a conn whose socket is connected into the server, and starts serving it. */
static void conn_start(hd_conn_t *c) {
  hd_server_t *s = c->server;
  int on = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  c->last_read_ms = c->since_ms = clock32(s);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->conn_count++;
  if (s->node_conn_count) __atomic_add_fetch(s->node_conn_count, 1, __ATOMIC_RELAXED);
  if (c->handler->on_open) c->handler->on_open(c);
  hd_conn_set_reading(c, true);
}

int hd_conn_accept(hd_server_t *s, int fd, const hd_conn_handler_t *h, bool over_limit, hd_tls_ctx_t *tls) {
  hd_tls_t *t = tls ? hd_tls_new(tls) : NULL;
  hd_conn_t *c = tls && !t ? NULL : conn_new(s, fd, h);
  if (!c) {
    hd_tls_free(t);
    return HD_ENOMEM;
  }
  if (t) hd_conn_attach_tls(c, t);
  c->over_limit = over_limit;
  s->metrics.accepted++;
  conn_start(c);
  return 0;
}

int hd_conn_adopt(hd_server_t *s, int fd, const hd_conn_handler_t *h, void *udata, hd_conn_t **out) {
  int on = 1;
  if (ioctl(fd, FIONBIO, &on) < 0) return HD_EIO;
  hd_conn_t *c = conn_new(s, fd, h);
  if (!c) return HD_ENOMEM;
  c->udata = udata;
  conn_start(c);
  *out = c;
  return 0;
}

/* Frees the first count buffers of the queue, dropping their references. written: they went out
 * (then broadcast frames are timed from their publish), else they are dropped. */
static void wq_release(hd_conn_t *c, uint32_t count, bool written) {
  uint64_t now_ns = 0;
  for (uint32_t i = 0; i < count; i++) {
    hd_buf_t *b = c->wq[c->wq_head + i];
    if (written && b->born_ns) {
      if (!now_ns) now_ns = uv_hrtime(); /* one clock read per batch */
      hd_histogram_observe(&c->server->metrics.publish_to_write, now_ns > b->born_ns ? (now_ns - b->born_ns) / 1000 : 0);
    }
    c->pending_bytes -= b->len - (i == 0 ? c->head_off : 0);
    hd_buf_unref(b);
  }
  if (count) c->head_off = 0;
  c->wq_head += count;
  c->wq_sealed = c->wq_sealed > count ? c->wq_sealed - count : 0;
  if (c->wq_head == c->wq_len) c->wq_head = c->wq_len = 0;
}

/* Appends a reference to buf to the queue (room made by compacting or growing it). 0 or HD_ENOMEM. */
static int wq_push(hd_conn_t *c, hd_buf_t *buf) {
  if (c->wq_len == c->wq_cap) {
    if (c->wq_head > 0 && c->wq_head >= c->wq_len / 2) {
      memmove(c->wq, c->wq + c->wq_head, (c->wq_len - c->wq_head) * sizeof(*c->wq));
      c->wq_len -= c->wq_head;
      c->wq_head = 0;
    } else {
      uint32_t cap = c->wq_cap * 2;
      hd_buf_t **wq = c->wq == c->wq_inline ? malloc(cap * sizeof(*wq)) : realloc(c->wq, cap * sizeof(*wq));
      if (!wq) return HD_ENOMEM;
      if (c->wq == c->wq_inline) memcpy(wq, c->wq_inline, sizeof c->wq_inline);
      c->wq = wq;
      c->wq_cap = cap;
    }
  }
  c->wq[c->wq_len++] = hd_buf_ref(buf);
  return 0;
}

/* Puts c in the flush list (once), so this iteration's flusher writes its queue (or, once c is
 * closed, lets its memory go: events of the same epoll batch may still name it until then). */
static void schedule_flush(hd_conn_t *c) {
  if (c->in_flush_list) return;
  c->in_flush_list = true;
  hd_conn_retain(c); /* released by the flusher */
  if (!c->server->flush_list) hd_server_wake(c->server);
  c->flush_next = c->server->flush_list;
  c->server->flush_list = c;
}

static int enqueue(hd_conn_t *c, hd_buf_t *buf) {
  if (wq_push(c, buf)) return HD_ENOMEM;
  if (!c->pending_bytes) c->last_write_ms = clock32(c->server);
  c->pending_bytes += buf->len;
  schedule_flush(c);
  return 0;
}

int hd_conn_write(hd_conn_t *c, hd_buf_t *buf) {
  if (c->closing || c->ending) return HD_ECLOSED;
  if (c->pending_bytes + buf->len > (size_t)c->server->cfg->max_backpressure) return HD_ETOOBIG;
  return enqueue(c, buf);
}

int hd_conn_write_force(hd_conn_t *c, hd_buf_t *buf) {
  if (c->closing || c->ending) return HD_ECLOSED;
  return enqueue(c, buf);
}

void hd_conn_write_final(hd_conn_t *c, hd_buf_t *buf) {
  if (c->closing || c->ending) return;
  if (enqueue(c, buf)) hd_conn_abort(c);
  else hd_conn_end(c);
}

static void finish_end(hd_conn_t *c);
/* --- the TLS layer: plaintext in the queue becomes records just before it is written ------- */

/* Encrypts runs of plaintext in chunks of up to one record. 0 or HD_EPROTO. */
static int tls_write_chunked(hd_tls_t *t, char *chunk, size_t *fill, const uint8_t *p, size_t len) {
  if (*fill && *fill + len > TLS_CHUNK) {
    if (hd_tls_write(t, chunk, *fill)) return HD_EPROTO;
    *fill = 0;
  }
  if (len >= TLS_CHUNK) return hd_tls_write(t, p, len); /* big enough to be records of its own */
  memcpy(chunk + *fill, p, len);
  *fill += len;
  return 0;
}

/* Replaces the queued plaintext by its records, after whatever the session has to send first
 * (handshake, tickets, alerts). Each recipient of a broadcast encrypts its own copy here: the
 * shared frame is only read. 0 or HD_E*. */
static int tls_seal(hd_conn_t *c) {
  uint32_t first = c->wq_head + c->wq_sealed;
  if (first < c->wq_len) {
    char chunk[TLS_CHUNK];
    size_t fill = 0;
    for (uint32_t i = first; i < c->wq_len; i++) /* plaintext is never partly written: only records go out */
      if (tls_write_chunked(c->tls, chunk, &fill, c->wq[i]->data, c->wq[i]->len)) return HD_EPROTO;
    if (fill && hd_tls_write(c->tls, chunk, fill)) return HD_EPROTO;
    for (uint32_t i = first; i < c->wq_len; i++) {
      c->pending_bytes -= c->wq[i]->len;
      hd_buf_unref(c->wq[i]);
    }
    c->wq_len = first;
  }
  int err;
  hd_buf_t *records = hd_tls_take(c->tls, &err);
  if (!records) return err;
  err = wq_push(c, records);
  if (!err) {
    if (!c->pending_bytes) c->last_write_ms = clock32(c->server);
    c->pending_bytes += records->len;
    c->wq_sealed = c->wq_len - c->wq_head;
  }
  hd_buf_unref(records);
  return err;
}

/* The handshake is over (done or failed): it no longer counts as in flight. */
static void tls_handshake_over(hd_conn_t *c) {
  if (!c->tls_handshaking) return;
  c->tls_handshaking = false;
  c->server->tls_handshakes--;
  if (c->server->node_tls_handshakes) __atomic_sub_fetch(c->server->node_tls_handshakes, 1, __ATOMIC_RELAXED);
}

void hd_conn_tls_pump(hd_conn_t *c) {
  char plain[TLS_CHUNK];
  hd_conn_retain(c);
  while (!c->closing && !c->ending && c->tls) {
    bool finished = false;
    long n = hd_tls_read(c->tls, plain, sizeof plain, &finished);
    if (finished) {
      tls_handshake_over(c);
      c->server->metrics.tls_handshakes++;
      c->since_ms = c->last_read_ms = clock32(c->server); /* the kind's timers start now */
    }
    if (n == 0) break;
    if (n == HD_ECLOSED) { /* close_notify: as a FIN */
      c->handler->on_eof(c, 0);
      break;
    }
    if (n < 0) {
      char why[160], peer[64];
      hd_tls_last_error(why, sizeof why);
      hd_conn_peer(c, peer, sizeof peer);
      if (c->tls_handshaking) c->server->metrics.tls_handshake_failures++;
      HD_DEBUG("tls", c->tls_handshaking ? "handshake failed" : "bad record", "peer=%s err=\"%s\"", peer, why);
      if (hd_tls_pending(c->tls) && !tls_seal(c)) { /* the alert, then close */
        hd_conn_end(c);
        schedule_flush(c);
      } else {
        hd_conn_abort(c);
      }
      break;
    }
    c->handler->on_data(c, plain, (size_t)n);
  }
  if (!c->closing && c->tls && hd_tls_pending(c->tls)) schedule_flush(c);
  hd_conn_release(c);
}

bool hd_conn_is_tls(const hd_conn_t *c) { return c->tls != NULL; }

void hd_conn_attach_tls(hd_conn_t *c, hd_tls_t *t) {
  c->tls = t;
  if (hd_tls_handshake_done(t)) return;
  c->tls_handshaking = true;
  c->server->tls_handshakes++;
  if (c->server->node_tls_handshakes) __atomic_add_fetch(c->server->node_tls_handshakes, 1, __ATOMIC_RELAXED);
}

hd_tls_t *hd_conn_take_tls(hd_conn_t *c) {
  hd_tls_t *t = c->tls;
  tls_handshake_over(c);
  c->tls = NULL;
  return t;
}

/* --- reading and writing the socket ------------------------------------------------------- */

/* Bytes arrived (or the read buffer holds plaintext's ciphertext): hands them to the kind. */
static void on_bytes(hd_conn_t *c, char *data, size_t n) {
  c->server->metrics.bytes_in += n;
  c->last_read_ms = clock32(c->server);
  if (c->lingering) return; /* input after our FIN is discarded; the peer's FIN ends it */
  if (!c->tls) c->handler->on_data(c, data, n);
  else if (hd_tls_feed(c->tls, data, n)) hd_conn_abort(c);
  else hd_conn_tls_pump(c);
}

/* Reads what the socket has into the shard's buffer, a buffer at a time, while c keeps reading.
 * At the end of input (or a failed read) reading stops, as the peer sends no more. */
static void conn_read(hd_conn_t *c) {
  char *buf = c->server->read_buf;
  size_t cap = sizeof c->server->read_buf;
  for (int i = 0; i < READS_PER_EVENT && c->reading && !c->closing; i++) {
    ssize_t n = read(c->fd, buf, cap);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      c->reading = false;
      if (c->lingering) hd_conn_abort(c);
      else c->handler->on_eof(c, n == 0 ? 0 : HD_EIO); /* it ends or aborts the conn */
      return;
    }
    on_bytes(c, buf, (size_t)n);
    if ((size_t)n < cap) return;
  }
}

/* Writes every queued buffer with writev until the queue is empty or the socket is full (then
 * the conn waits for writability). Once drained: the end continues, or the kind hears of it. */
static void conn_flush(hd_conn_t *c) {
  if (c->closing || c->write_blocked) return;
  if (c->tls && tls_seal(c)) {
    hd_conn_abort(c);
    return;
  }
  while (c->wq_len > c->wq_head) {
    struct iovec iov[WQ_BATCH];
    uint32_t n = 0;
    for (uint32_t i = c->wq_head; i < c->wq_len && n < WQ_BATCH; i++, n++) {
      size_t off = n == 0 ? c->head_off : 0;
      iov[n] = (struct iovec){c->wq[i]->data + off, c->wq[i]->len - off};
    }
    ssize_t written = n == 1 ? write(c->fd, iov[0].iov_base, iov[0].iov_len) : writev(c->fd, iov, (int)n); /* write: no iovec to copy in */
    if (written < 0 && errno == EINTR) continue;
    if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) written = 0;
    if (written < 0) {
      hd_conn_abort(c);
      return;
    }
    c->server->metrics.bytes_out += (uint64_t)written;
    if (written > 0) c->last_write_ms = clock32(c->server);
    /* drop fully written buffers, advance into a partial one */
    size_t left = (size_t)written;
    uint32_t full = 0;
    while (full < n && left >= iov[full].iov_len) left -= iov[full++].iov_len;
    wq_release(c, full, true);
    if (full < n) { /* the socket is full: the rest goes as it drains */
      c->head_off += left;
      c->pending_bytes -= left;
      c->write_blocked = true;
      watch(c);
      return;
    }
  }
  if (c->ending) finish_end(c);
  else if (c->handler->on_drain) c->handler->on_drain(c);
}

void hd_conn_serve_ready(hd_server_t *s) {
  struct epoll_event ev[EVENTS_PER_TURN];
  int n = epoll_wait(s->epfd, ev, EVENTS_PER_TURN, 0);
  for (int i = 0; i < n; i++) {
    hd_conn_t *c = ev[i].data.ptr;
    if (c->closing) continue; /* closed earlier in this batch: its memory stays until the flusher */
    uint32_t e = ev[i].events;
    uint8_t want = (c->reading ? WATCH_READ : 0) | (c->write_blocked ? WATCH_WRITE : 0);
    if (want != c->watched) { /* interest that went away, seen now: registered as it is */
      if (!want) unwatch(c);
      else watch(c);
    }
    if (c->write_blocked && (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      c->write_blocked = false;
      conn_flush(c);
      watch(c);
    }
    if (c->reading && (e & (EPOLLIN | EPOLLERR | EPOLLHUP))) conn_read(c);
  }
}

/* --- closing ------------------------------------------------------------------------------ */

size_t hd_conn_unread_bytes(const hd_conn_t *c) {
  int n = 0;
  if (c->closing || ioctl(c->fd, FIONREAD, &n) < 0 || n < 0) return 0;
  return (size_t)n;
}

int hd_conn_take_fd(hd_conn_t *c) {
  if (c->closing) return HD_EIO;
  int fd = c->fd;
  unwatch(c);
  c->fd_taken = true;
  hd_conn_abort(c); /* the socket lives on in the caller's hands */
  return fd;
}

void hd_conn_abort(hd_conn_t *c) {
  if (c->closing) return;
  hd_server_t *s = c->server;
  c->closing = true;
  c->reading = false;
  c->handler->on_free(c);
  tls_handshake_over(c);
  hd_tls_free(c->tls);
  c->tls = NULL;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->conn_count--;
  if (s->node_conn_count) __atomic_sub_fetch(s->node_conn_count, 1, __ATOMIC_RELAXED);
  if (!c->fd_taken) close(c->fd); /* leaves the epoll set with it */
  c->watched = 0;
  schedule_flush(c); /* the flusher drops the open socket's reference */
}

/* Closes a conn that lingers too long or whose peer stopped reading; true when it is done with
 * (closed, or lingering: no kind timeouts apply). */
static bool conn_sweep(hd_conn_t *c, uint64_t now_ms) {
  uint32_t now = (uint32_t)now_ms;
  uint64_t send_timeout = (uint64_t)c->server->cfg->send_timeout;
  if (c->tls_handshaking) { /* no kind timeouts before the kind has seen a byte */
    if ((uint32_t)(now - c->since_ms) > (uint64_t)c->server->cfg->tls_handshake_timeout) {
      c->server->metrics.tls_handshake_timeouts++;
      hd_conn_abort(c);
    }
    return true;
  }
  if ((c->lingering && (uint32_t)(now - c->since_ms) > LINGER_MS) ||
      (c->pending_bytes && (uint32_t)(now - c->last_write_ms) > send_timeout)) {
    hd_conn_abort(c);
    return true;
  }
  return c->lingering;
}

/* Everything queued was written: half-close so the peer sees a clean end, then drain what the
 * peer still sends, so closing does not turn into a reset that would destroy the response or
 * close frame it has not read yet. */
static void finish_end(hd_conn_t *c) {
  if (c->closing || c->write_blocked || c->lingering) return;
  if (c->tls && hd_tls_handshake_done(c->tls)) {
    hd_tls_close_notify(c->tls); /* once; then the alert goes out before our FIN */
    if (hd_tls_pending(c->tls)) {
      conn_flush(c); /* seals the alert and comes back here once it is written */
      return;
    }
  }
  if (shutdown(c->fd, SHUT_WR) < 0) {
    hd_conn_abort(c);
    return;
  }
  c->lingering = true;
  c->since_ms = clock32(c->server);
  hd_conn_set_reading(c, true);
}

void hd_conn_end(hd_conn_t *c) {
  if (c->closing || c->ending) return;
  c->ending = true;
  c->since_ms = clock32(c->server);
  hd_conn_set_reading(c, false);
  if (c->wq_len == c->wq_head) finish_end(c);
}

void hd_conn_retain(hd_conn_t *c) { c->refs++; }

void hd_conn_release(hd_conn_t *c) {
  if (--c->refs > 0) return;
  for (uint32_t i = c->wq_head; i < c->wq_len; i++) hd_buf_unref(c->wq[i]);
  if (c->wq != c->wq_inline) free(c->wq);
  free(c);
}

void hd_conn_peer(const hd_conn_t *c, char *out, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (!c->closing && getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else if (ss.ss_family == AF_INET) {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  snprintf(out, len, "%s:%d", ip, port);
}

void hd_conn_flush_now(hd_conn_t *c) {
  if (c->wq_len > c->wq_head) conn_flush(c); /* stays in the flush list: a no-op there if drained */
}

void hd_conn_flush_all(hd_server_t *s) {
  while (s->flush_list) {
    hd_conn_t *c = s->flush_list;
    s->flush_list = c->flush_next;
    c->in_flush_list = false;
    conn_flush(c);
    if (c->closing && !c->released) { /* closed: the open socket's reference goes now */
      c->released = true;
      hd_conn_release(c);
    }
    hd_conn_release(c);
  }
}

void hd_conn_sweep_all(hd_server_t *s, uint64_t now_ms) {
  for (hd_conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (c->closing || conn_sweep(c, now_ms)) continue;
    c->handler->on_sweep(c, now_ms);
  }
}

void hd_conn_shutdown_all(hd_server_t *s) {
  for (hd_conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (!c->closing) c->handler->on_shutdown(c);
  }
}

void hd_conn_abort_all(hd_server_t *s) {
  for (hd_conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    hd_conn_abort(c);
  }
  hd_conn_flush_all(s); /* nothing to write: lets the closed conns go */
}
