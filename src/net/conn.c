/* TCP connection lifecycle, shared-buffer reads and batched writes, and the TLS layer under the
 * kind when the connection came in on a TLS listener (see conn.h, tls.h). */
#include "net/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "net/server.h"
#include "net/tls.h"

#define WQ_BATCH 64   /* iovecs per try_write/uv_write */
#define LINGER_MS 2000 /* after our FIN, how long unread input is drained before closing */
#define TLS_CHUNK 16384 /* plaintext per TLS record: one record's worth, decrypted or sealed at a time */

typedef struct {
  hd_buf_t *buf;
  size_t off; /* bytes of buf already written */
} hd_wq_entry_t;

/* The conn is its libuv handle (first member); tcp.data holds the handler's per-conn state. */
struct hd_conn {
  uv_tcp_t tcp;
  hd_server_t *server;
  hd_conn_t *prev, *next;     /* server->conns */
  hd_conn_t *flush_next;      /* server->flush_list */
  hd_wq_entry_t *wq;          /* write queue: entries [wq_head, wq_len); wq_inline until it grows */
  uint32_t wq_head, wq_len, wq_cap;
  uint32_t wq_sealed;         /* TLS: entries from wq_head holding ciphertext; those after are plaintext */
  uint32_t inflight;          /* entries handed to a uv_write not yet completed */
  uint32_t refs;              /* 1 for the open handle + 1 per outstanding async operation */
  size_t pending_bytes;       /* queued, unwritten bytes */
  uint64_t last_read_ms;      /* monotonic ms of the last bytes received */
  uint64_t since_ms;          /* start of the current timed phase (request, close wait, linger) */
  uint64_t last_write_ms;     /* when queued bytes last made progress (or were first queued) */
  bool in_flush_list, closing, ending, reading, write_active, over_limit;
  bool lingering;             /* half-closed: reading and discarding until the peer closes */
  bool tls_handshaking;       /* counted in the shard's and the node's handshakes in flight */
  hd_tls_t *tls;              /* NULL on plain TCP; the kind sees plaintext either way */
  const hd_conn_handler_t *handler;
  hd_wq_entry_t wq_inline[2]; /* most connections never queue more (a Socket.IO handshake queues two): no allocation for them */
};

typedef struct {
  uv_write_t req;
  hd_conn_t *conn;
} write_req_t;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hd_conn_t *c = (hd_conn_t *)h;
  buf->base = c->server->read_buf;
  buf->len = sizeof c->server->read_buf;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  hd_conn_t *c = (hd_conn_t *)stream;
  if (nread == 0) return;
  if (c->lingering) { /* input after our FIN is discarded; the peer's FIN ends it */
    if (nread < 0) hd_conn_abort(c);
    return;
  }
  if (nread < 0) {
    if (c->closing) return;
    c->handler->on_eof(c, nread == UV_EOF ? 0 : HD_EIO); /* it ends or aborts the conn */
    return;
  }
  c->server->metrics.bytes_in += (uint64_t)nread;
  c->last_read_ms = uv_now(c->server->loop);
  if (c->closing) return;
  if (!c->tls) c->handler->on_data(c, buf->base, (size_t)nread);
  else if (hd_tls_feed(c->tls, buf->base, (size_t)nread)) hd_conn_abort(c);
  else hd_conn_tls_pump(c);
}

void hd_conn_set_reading(hd_conn_t *c, bool on) {
  if (c->closing || on == c->reading) return;
  c->reading = on;
  if (on) uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  else uv_read_stop((uv_stream_t *)&c->tcp);
}

hd_server_t *hd_conn_server(const hd_conn_t *c) { return c->server; }
bool hd_conn_is_closing(const hd_conn_t *c) { return c->closing; }
bool hd_conn_is_ending(const hd_conn_t *c) { return c->ending || c->closing; }
bool hd_conn_is_over_limit(const hd_conn_t *c) { return c->over_limit; }
size_t hd_conn_pending_bytes(const hd_conn_t *c) { return c->pending_bytes; }
uint64_t hd_conn_last_read_ms(const hd_conn_t *c) { return c->last_read_ms; }
void hd_conn_touch_read(hd_conn_t *c) { c->last_read_ms = uv_now(c->server->loop); }
uint64_t hd_conn_since_ms(const hd_conn_t *c) { return c->since_ms; }
void hd_conn_mark_since(hd_conn_t *c) { c->since_ms = uv_now(c->server->loop); }

void *hd_conn_udata(const hd_conn_t *c) { return c->tcp.data; }

const hd_conn_handler_t *hd_conn_handler(const hd_conn_t *c) { return c->handler; }

void hd_conn_set_handler(hd_conn_t *c, const hd_conn_handler_t *h, void *udata) {
  c->handler = h;
  c->tcp.data = udata;
}

void *hd_conn_ext(hd_conn_t *c) { return c + 1; }

static void tls_handshake_over(hd_conn_t *c);

/* A zeroed conn of s with its extension space, its handle initialized on s's loop. */
static hd_conn_t *conn_new(hd_server_t *s, const hd_conn_handler_t *h) {
  hd_conn_t *c = calloc(1, sizeof(*c) + s->conn_ext_size);
  if (!c) return NULL;
  c->wq = c->wq_inline;
  c->wq_cap = sizeof c->wq_inline / sizeof c->wq_inline[0];
  uv_tcp_init(s->loop, &c->tcp);
  c->server = s;
  c->handler = h;
  c->refs = 1;
  return c;
}

/* Links a conn whose socket is connected into the server, and starts serving it. */
static void conn_start(hd_conn_t *c) {
  hd_server_t *s = c->server;
  uv_tcp_nodelay(&c->tcp, 1);
  c->last_read_ms = c->since_ms = uv_now(s->loop);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->conn_count++;
  if (s->node_conn_count) __atomic_add_fetch(s->node_conn_count, 1, __ATOMIC_RELAXED);
  if (c->handler->on_open) c->handler->on_open(c);
  hd_conn_set_reading(c, true);
}

int hd_conn_accept(hd_server_t *s, uv_tcp_t *listener, const hd_conn_handler_t *h, bool over_limit, hd_tls_ctx_t *tls) {
  hd_tls_t *t = tls ? hd_tls_new(tls) : NULL;
  hd_conn_t *c = tls && !t ? NULL : conn_new(s, h);
  if (!c) {
    hd_tls_free(t);
    return HD_ENOMEM;
  }
  if (t) hd_conn_attach_tls(c, t);
  if (uv_accept((uv_stream_t *)listener, (uv_stream_t *)&c->tcp) != 0) {
    tls_handshake_over(c);
    hd_tls_free(c->tls);
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    return HD_EIO;
  }
  c->over_limit = over_limit;
  s->metrics.accepted++;
  conn_start(c);
  return 0;
}

int hd_conn_adopt(hd_server_t *s, int fd, const hd_conn_handler_t *h, void *udata, hd_conn_t **out) {
  hd_conn_t *c = conn_new(s, h);
  if (!c) return HD_ENOMEM;
  if (uv_tcp_open(&c->tcp, (uv_os_sock_t)fd) != 0) {
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    return HD_EIO;
  }
  c->tcp.data = udata;
  conn_start(c);
  *out = c;
  return 0;
}

/* Frees the first count entries of the queue, dropping their buffer references. written: they went
 * out (then broadcast frames are timed from their publish), else they are dropped. */
static void wq_release(hd_conn_t *c, uint32_t count, bool written) {
  uint64_t now_ns = 0;
  for (uint32_t i = 0; i < count; i++) {
    hd_wq_entry_t *e = &c->wq[c->wq_head + i];
    if (written && e->buf->born_ns) {
      if (!now_ns) now_ns = uv_hrtime(); /* one clock read per batch */
      hd_histogram_observe(&c->server->metrics.publish_to_write,
                           now_ns > e->buf->born_ns ? (now_ns - e->buf->born_ns) / 1000 : 0);
    }
    c->pending_bytes -= e->buf->len - e->off;
    hd_buf_unref(e->buf);
  }
  c->wq_head += count;
  c->wq_sealed = c->wq_sealed > count ? c->wq_sealed - count : 0;
  if (c->wq_head == c->wq_len) c->wq_head = c->wq_len = 0;
}

/* Appends a reference to buf to the queue (room made by compacting or growing it). 0 or HD_ENOMEM. */
static int wq_push(hd_conn_t *c, hd_buf_t *buf) {
  if (c->wq_len == c->wq_cap) {
    if (c->wq_head > 0 && c->wq_head >= c->wq_len / 2 && c->inflight == 0) {
      memmove(c->wq, c->wq + c->wq_head, (c->wq_len - c->wq_head) * sizeof(*c->wq));
      c->wq_len -= c->wq_head;
      c->wq_head = 0;
    } else {
      uint32_t cap = c->wq_cap * 2;
      hd_wq_entry_t *wq = c->wq == c->wq_inline ? malloc(cap * sizeof(*wq)) : realloc(c->wq, cap * sizeof(*wq));
      if (!wq) return HD_ENOMEM;
      if (c->wq == c->wq_inline) memcpy(wq, c->wq_inline, sizeof c->wq_inline);
      c->wq = wq;
      c->wq_cap = cap;
    }
  }
  c->wq[c->wq_len++] = (hd_wq_entry_t){hd_buf_ref(buf), 0};
  return 0;
}

/* Puts c in the flush list (once), so this iteration's flusher writes its queue. */
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
  if (!c->pending_bytes) c->last_write_ms = uv_now(c->server->loop);
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

static void conn_flush(hd_conn_t *c);

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
    for (uint32_t i = first; i < c->wq_len; i++) {
      hd_wq_entry_t *e = &c->wq[i];
      if (tls_write_chunked(c->tls, chunk, &fill, e->buf->data + e->off, e->buf->len - e->off)) return HD_EPROTO;
    }
    if (fill && hd_tls_write(c->tls, chunk, fill)) return HD_EPROTO;
    for (uint32_t i = first; i < c->wq_len; i++) {
      c->pending_bytes -= c->wq[i].buf->len - c->wq[i].off;
      hd_buf_unref(c->wq[i].buf);
    }
    c->wq_len = first;
  }
  int err;
  hd_buf_t *records = hd_tls_take(c->tls, &err);
  if (!records) return err;
  err = wq_push(c, records);
  if (!err) {
    if (!c->pending_bytes) c->last_write_ms = uv_now(c->server->loop);
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
      c->since_ms = c->last_read_ms = uv_now(c->server->loop); /* the kind's timers start now */
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

static void on_write(uv_write_t *req, int status) {
  write_req_t *wr = (write_req_t *)req;
  hd_conn_t *c = wr->conn;
  free(wr);
  c->write_active = false;
  uint32_t done = c->inflight;
  c->inflight = 0;
  if (status == 0) {
    c->last_write_ms = uv_now(c->server->loop);
    for (uint32_t i = 0; i < done; i++) {
      hd_wq_entry_t *e = &c->wq[c->wq_head + i];
      c->server->metrics.bytes_out += e->buf->len - e->off;
    }
  }
  wq_release(c, done, status == 0);
  if (status < 0) hd_conn_abort(c);
  else if (c->wq_len > c->wq_head) conn_flush(c);
  else if (c->ending) finish_end(c);
  else if (c->handler->on_drain) c->handler->on_drain(c);
  hd_conn_release(c);
}

/* Writes every queued buffer: try_write, then one uv_write for the rest. */
static void conn_flush(hd_conn_t *c) {
  if (c->closing || c->write_active) return;
  if (c->tls && tls_seal(c)) {
    hd_conn_abort(c);
    return;
  }
  while (c->wq_len > c->wq_head) {
    uv_buf_t bufs[WQ_BATCH];
    uint32_t n = 0;
    for (uint32_t i = c->wq_head; i < c->wq_len && n < WQ_BATCH; i++, n++) {
      hd_wq_entry_t *e = &c->wq[i];
      bufs[n] = uv_buf_init((char *)e->buf->data + e->off, (unsigned)(e->buf->len - e->off));
    }
    int written = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    if (written == UV_EAGAIN) written = 0;
    if (written < 0) {
      hd_conn_abort(c);
      return;
    }
    c->server->metrics.bytes_out += (uint64_t)written;
    if (written > 0) c->last_write_ms = uv_now(c->server->loop);
    /* drop fully written entries, advance into a partial one */
    size_t left = (size_t)written;
    uint32_t full = 0;
    while (c->wq_head + full < c->wq_len) {
      hd_wq_entry_t *e = &c->wq[c->wq_head + full];
      size_t rest = e->buf->len - e->off;
      if (left < rest) {
        e->off += left;
        c->pending_bytes -= left;
        break;
      }
      left -= rest;
      full++;
    }
    wq_release(c, full, true);
    if (c->wq_len == c->wq_head) break;
    if (full < n) {
      /* the socket is full: hand the rest to libuv, which writes as it drains */
      write_req_t *wr = malloc(sizeof(*wr));
      if (!wr) {
        hd_conn_abort(c);
        return;
      }
      n = 0;
      for (uint32_t i = c->wq_head; i < c->wq_len && n < WQ_BATCH; i++, n++) {
        hd_wq_entry_t *e = &c->wq[i];
        bufs[n] = uv_buf_init((char *)e->buf->data + e->off, (unsigned)(e->buf->len - e->off));
      }
      wr->conn = c;
      c->inflight = n;
      c->write_active = true;
      hd_conn_retain(c);
      if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, bufs, n, on_write) != 0) {
        free(wr);
        c->inflight = 0;
        c->write_active = false;
        hd_conn_release(c);
        hd_conn_abort(c);
      }
      return;
    }
  }
  if (c->ending) finish_end(c);
  else if (c->handler->on_drain) c->handler->on_drain(c);
}

static void on_close(uv_handle_t *h) { hd_conn_release((hd_conn_t *)h); }

/* Unlinks the conn from the server and closes the handle; memory goes with the last reference. */
size_t hd_conn_unread_bytes(const hd_conn_t *c) {
  uv_os_fd_t fd;
  int n = 0;
  if (c->closing || uv_fileno((const uv_handle_t *)&c->tcp, &fd) || ioctl(fd, FIONREAD, &n) < 0 || n < 0) return 0;
  return (size_t)n;
}

int hd_conn_take_fd(hd_conn_t *c) {
  uv_os_fd_t fd;
  int copy = c->closing || uv_fileno((uv_handle_t *)&c->tcp, &fd) ? -1 : dup(fd);
  hd_conn_abort(c); /* closes our descriptor only: the socket lives on in the copy */
  return copy < 0 ? HD_EIO : copy;
}

#ifdef __SANITIZE_THREAD__
/* libtsan's hook: libuv closes descriptors with a raw syscall ThreadSanitizer does not see, so the
 * number reused on another shard (a hand-over's dup, an accept) would be reported as a race. */
void __sanitizer_syscall_pre_impl_close(long fd);
#endif

/* Closes the conn's handle (its descriptor goes at once, its memory with the last reference). */
static void close_handle(hd_conn_t *c) {
#ifdef __SANITIZE_THREAD__
  uv_os_fd_t fd; /* told before libuv closes it: once closed, another shard may get the number */
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) __sanitizer_syscall_pre_impl_close(fd);
  uv_close((uv_handle_t *)&c->tcp, on_close);
#else
  uv_close((uv_handle_t *)&c->tcp, on_close);
#endif
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
  close_handle(c);
}

/* Our FIN is out: drain what the peer still sends, so closing does not turn into a reset that
 * would destroy the response or close frame it has not read yet. */
static void on_shutdown(uv_shutdown_t *req, int status) {
  hd_conn_t *c = req->data;
  free(req);
  if (status < 0 || c->closing) {
    hd_conn_abort(c);
  } else {
    c->lingering = true;
    c->since_ms = uv_now(c->server->loop);
    c->reading = false;
    hd_conn_set_reading(c, true);
  }
  hd_conn_release(c);
}

/* Closes a conn that lingers too long or whose peer stopped reading; true when it is done with
 * (closed, or lingering: no kind timeouts apply). */
static bool conn_sweep(hd_conn_t *c, uint64_t now_ms) {
  uint64_t send_timeout = (uint64_t)c->server->cfg->send_timeout;
  if (c->tls_handshaking) { /* no kind timeouts before the kind has seen a byte */
    if (now_ms - c->since_ms > (uint64_t)c->server->cfg->tls_handshake_timeout) {
      c->server->metrics.tls_handshake_timeouts++;
      hd_conn_abort(c);
    }
    return true;
  }
  if ((c->lingering && now_ms - c->since_ms > LINGER_MS) ||
      (c->pending_bytes && now_ms - c->last_write_ms > send_timeout)) {
    hd_conn_abort(c);
    return true;
  }
  return c->lingering;
}

/* Everything queued was written: half-close so the peer sees a clean end, then close. */
static void finish_end(hd_conn_t *c) {
  if (c->closing || c->write_active) return;
  if (c->tls && hd_tls_handshake_done(c->tls) && !c->lingering) {
    hd_tls_close_notify(c->tls); /* once; then the alert goes out before our FIN */
    if (hd_tls_pending(c->tls)) {
      conn_flush(c); /* seals the alert and comes back here once it is written */
      return;
    }
  }
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (!req) {
    hd_conn_abort(c);
    return;
  }
  req->data = c;
  hd_conn_retain(c);
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    hd_conn_release(c);
    hd_conn_abort(c);
  }
}

void hd_conn_end(hd_conn_t *c) {
  if (c->closing || c->ending) return;
  c->ending = true;
  c->since_ms = uv_now(c->server->loop);
  hd_conn_set_reading(c, false);
  if (c->wq_len == c->wq_head) finish_end(c);
}

void hd_conn_retain(hd_conn_t *c) { c->refs++; }

void hd_conn_release(hd_conn_t *c) {
  if (--c->refs > 0) return;
  for (uint32_t i = c->wq_head; i < c->wq_len; i++) hd_buf_unref(c->wq[i].buf);
  if (c->wq != c->wq_inline) free(c->wq);
  free(c);
}

void hd_conn_peer(const hd_conn_t *c, char *out, size_t len) {
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  char ip[64] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
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
    c->handler->on_shutdown(c);
  }
}

void hd_conn_abort_all(hd_server_t *s) {
  for (hd_conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    hd_conn_abort(c);
  }
  hd_conn_flush_all(s); /* nothing to write: drops the flush list's holds (the flusher may be gone) */
}
