/* Engine.IO sessions, transports and upgrade (see eio.h). */
#include "proto/eio.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/map.h"
#include "net/ws_conn.h"
#include "proto/eio_packet.h"

#define MAX_QUEUED_BYTES (8 * 1024 * 1024) /* polling output waiting for a GET */

/* Engine.IO error codes (engine.io server.ts). */
enum { ERR_TRANSPORT = 0, ERR_SID = 1, ERR_METHOD = 2, ERR_REQUEST = 3, ERR_FORBIDDEN = 4, ERR_VERSION = 5 };
static const char *error_messages[] = {"Transport unknown",    "Session ID unknown",  "Bad handshake method",
                                       "Bad request",          "Forbidden",           "Unsupported protocol version"};

typedef struct packet {
  struct packet *next;
  bool binary;
  bool ends_write; /* polling: the GET answering this packet carries nothing after it (hd_eio_flush) */
  uint8_t type;
  size_t len;
  char data[];
} packet_t;

struct hd_eio_server {
  hd_server_t *srv;
  hd_eio_options_t opt;
  char path[256];
  const hd_eio_callbacks_t *cb;
  void *udata;
  hd_map_t sessions;
  hd_eio_session_t *dirty; /* polling sessions with output for a waiting GET */
  hd_eio_session_t *dead;  /* closed sessions, freed on the next iteration (callers may still hold them) */
  hd_eio_session_t *overflowed; /* sessions whose polling output passed a bound: closed by the next flush */
  /* Heartbeat deadlines. Each queue holds sessions waiting for one fixed duration, so it is in
   * deadline order by construction; one timer fires at the earliest head. */
  struct {
    hd_eio_session_t *head, *tail;
  } hb[3];
  uv_timer_t hb_timer;
  hd_conn_t *current;      /* the connection of the handshake or polling POST being handled (hd_eio_session_peer) */
};

enum { HB_PING, HB_PONG, HB_CLIENT }; /* v4: time to ping; v4: waiting for pong; v3: waiting for the client's ping */

/* What only the polling transport and the upgrade from it need: allocated on the first GET,
 * queued packet or probe, freed once the session is on WebSocket with nothing left in it (a
 * session that is on WebSocket, which most idle ones are, holds none). */
typedef struct polling {
  hd_http_exchange_t *get;       /* a deferred polling GET */
  packet_t *out_head, *out_tail; /* queued for polling */
  size_t out_bytes;
  hd_eio_session_t *overflow_next; /* in eio->overflowed */
  hd_conn_t *probe;              /* a WebSocket being upgraded to */
  uv_timer_t *upgrade_timer;     /* only while a probe WebSocket is being upgraded to */
} polling_t;

struct hd_eio_session {
  hd_eio_server_t *eio;
  char sid[24];
  uint8_t version;
  bool websocket;          /* current transport */
  bool upgrading;          /* a probe WebSocket answered 3probe, waiting for 5 */
  bool closed;
  uint8_t hb_queue;         /* which heartbeat queue it is in, when hb_deadline != 0 */
  bool in_dirty;
  bool overflowed;         /* in eio->overflowed: to be closed (not now: a delivery may be running over its rooms) */
  hd_conn_t *ws;           /* the WebSocket transport */
  polling_t *poll;         /* polling and upgrade state, or NULL */
  hd_eio_session_t *dirty_next; /* in eio->dirty, or (closed) in eio->dead */
  hd_eio_session_t *hb_prev, *hb_next;
  uint64_t hb_deadline;    /* 0: in no heartbeat queue */
  void *udata;
};

/* --- helpers ------------------------------------------------------------------------------ */

static void eio_error(hd_http_exchange_t *ex, int code) {
  char body[128];
  snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, error_messages[code]);
  hd_http_respond_json(ex, code == ERR_FORBIDDEN ? 403 : 400, body);
}

static int query(const hd_http_request_t *req, const char *name, char *out, size_t len) {
  return hd_http_request_query(req, name, out, len);
}

/* A session id that names its owner: [0] the shard, [1..3] the node, then 16 random characters. */
static void make_sid(const hd_eio_server_t *eio, char out[24]) {
  hd_id_random(out, 20);
  out[0] = hd_id_char(eio->srv->shard);
  memcpy(out + 1, eio->opt.node_tag, 3);
}

static void session_close(hd_eio_session_t *s, const char *reason, bool notify_peer);
static void close_all(void *arg);

/* Counts a session in (+1) or out (-1) of the node's bound. */
static void count_session(hd_eio_server_t *eio, int delta) {
  uint32_t *n = eio->opt.limits.session_count;
  if (n) __atomic_add_fetch(n, (uint32_t)delta, __ATOMIC_RELAXED);
  uint64_t *closed = eio->opt.limits.closed_count;
  if (closed && delta < 0) __atomic_add_fetch(closed, 1, __ATOMIC_RELAXED);
}

/* Open sessions for the bound: the node's when counted there, else this server's. */
static uint32_t open_sessions(const hd_eio_server_t *eio) {
  uint32_t *n = eio->opt.limits.session_count;
  return n ? __atomic_load_n(n, __ATOMIC_RELAXED) : (uint32_t)eio->sessions.count;
}

/* --- polling state ------------------------------------------------------------------------ */

/* s's polling state, created on first use; NULL when out of memory. */
static polling_t *poll_of(hd_eio_session_t *s) {
  if (!s->poll) s->poll = calloc(1, sizeof(*s->poll));
  return s->poll;
}

static hd_http_exchange_t *waiting_get(const hd_eio_session_t *s) { return s->poll ? s->poll->get : NULL; }
static packet_t *queued(const hd_eio_session_t *s) { return s->poll ? s->poll->out_head : NULL; }
static hd_conn_t *probe_of(const hd_eio_session_t *s) { return s->poll ? s->poll->probe : NULL; }

/* Frees s's polling state once s is on WebSocket and nothing is left in it. */
static void poll_release_if_idle(hd_eio_session_t *s) {
  polling_t *q = s->poll;
  if (!q || !s->websocket || q->get || q->out_head || q->probe || q->upgrade_timer || s->overflowed) return;
  free(q);
  s->poll = NULL;
}

/* Frees a closed session (its polling state was emptied by session_close). */
static void session_free(hd_eio_session_t *s) {
  free(s->poll);
  free(s);
}

/* --- output ------------------------------------------------------------------------------- */

static void mark_dirty(hd_eio_session_t *s) {
  if (s->in_dirty || !waiting_get(s)) return;
  s->in_dirty = true;
  s->dirty_next = s->eio->dirty;
  s->eio->dirty = s;
  hd_server_wake(s->eio->srv);
}

/* Counts len bytes more (grow) or fewer of s's polling output, in the session and over the node. */
static void out_account(hd_eio_session_t *s, size_t len, bool grow) {
  size_t *node = s->eio->opt.limits.polling_bytes;
  if (grow) s->poll->out_bytes += len;
  else s->poll->out_bytes -= len;
  if (node && len) {
    if (grow) __atomic_add_fetch(node, len, __ATOMIC_RELAXED);
    else __atomic_sub_fetch(node, len, __ATOMIC_RELAXED);
  }
}

/* True when len more bytes of polling output would pass the node's bound. */
static bool node_full(const hd_eio_session_t *s, size_t len) {
  const hd_eio_limits_t *l = &s->eio->opt.limits;
  return l->polling_bytes && l->max_polling_bytes && __atomic_load_n(l->polling_bytes, __ATOMIC_RELAXED) + len > l->max_polling_bytes;
}

static int queue_packet(hd_eio_session_t *s, uint8_t type, const void *data, size_t len, bool binary) {
  if (s->overflowed) return HD_ETOOBIG;
  polling_t *q = poll_of(s);
  if (!q) return HD_ENOMEM;
  if (q->out_bytes + len > MAX_QUEUED_BYTES || (len && node_full(s, len))) {
    /* a slow poller: closed by the next flush (it reconnects), nothing grows meanwhile; not now,
     * as this may run inside a delivery over the rooms its sockets would leave */
    s->overflowed = true;
    q->overflow_next = s->eio->overflowed;
    s->eio->overflowed = s;
    hd_server_wake(s->eio->srv);
    return HD_ETOOBIG;
  }
  packet_t *p = malloc(sizeof(*p) + len);
  if (!p) return HD_ENOMEM;
  p->next = NULL;
  p->ends_write = false;
  p->binary = binary;
  p->type = type;
  p->len = len;
  if (len) memcpy(p->data, data, len);
  if (q->out_tail) q->out_tail->next = p;
  else q->out_head = p;
  q->out_tail = p;
  out_account(s, len, true);
  mark_dirty(s);
  return 0;
}

/* Sends one packet over a WebSocket connection. */
static int ws_send_packet(hd_conn_t *c, int version, uint8_t type, const void *data, size_t len, bool binary) {
  if (binary) {
    if (version == 4) return hd_ws_send(c, HD_WS_OP_BINARY, data, len);
    uint8_t *tmp = malloc(len + 1); /* v3: a type byte first */
    if (!tmp) return HD_ENOMEM;
    tmp[0] = type;
    memcpy(tmp + 1, data, len);
    int rc = hd_ws_send(c, HD_WS_OP_BINARY, tmp, len + 1);
    free(tmp);
    return rc;
  }
  return hd_ws_send_prefixed(c, HD_WS_OP_TEXT, (char)('0' + type), data, len);
}

static int send_packet(hd_eio_session_t *s, uint8_t type, const void *data, size_t len, bool binary) {
  if (s->closed) return HD_ECLOSED;
  if (s->websocket) return ws_send_packet(s->ws, s->version, type, data, len, binary);
  return queue_packet(s, type, data, len, binary);
}

/* Answers the waiting GET (there is one) with every queued packet (or with `only` when given). */
static void answer_get(hd_eio_session_t *s, const packet_t *only) {
  polling_t *q = s->poll;
  hd_http_exchange_t *ex = q->get;
  q->get = NULL;
  if (!hd_http_exchange_alive(ex)) { /* the poll connection died: the session cannot go on */
    hd_http_respond(ex, 200, NULL, NULL, 0, NULL);
    if (!s->closed) session_close(s, "transport close", false);
    return;
  }
  hd_sbuf_t body = {0};
  int rc = 0;
  if (only) {
    rc = hd_eio_payload_append(&body, (hd_eio_type_t)only->type, only->data, only->len, only->binary, s->version, true);
  } else {
    bool first = true, ends = false;
    packet_t *p = q->out_head;
    for (packet_t *next; p && !ends; p = next, first = false) {
      next = p->next;
      if (!rc) rc = hd_eio_payload_append(&body, (hd_eio_type_t)p->type, p->data, p->len, p->binary, s->version, first);
      out_account(s, p->len, false);
      ends = p->ends_write;
      free(p);
    }
    q->out_head = p; /* what follows a write boundary waits for the next GET */
    if (!p) q->out_tail = NULL;
  }
  if (rc) hd_http_respond_error(ex, 500, "cannot encode payload");
  else hd_http_respond(ex, 200, "text/plain; charset=UTF-8", body.ptr, body.len, NULL);
  hd_sbuf_free(&body);
}

/* Flush hook: answers the GETs of sessions that got output during this iteration. */
static void flush_polling(void *arg) {
  hd_eio_server_t *eio = arg;
  for (hd_eio_session_t *s = eio->dead, *next; s; s = next) { /* closed in an earlier iteration */
    next = s->dirty_next;
    session_free(s);
  }
  eio->dead = NULL;
  while (eio->overflowed) {
    hd_eio_session_t *s = eio->overflowed;
    eio->overflowed = s->poll->overflow_next;
    s->overflowed = false;
    session_close(s, "transport error", false);
  }
  while (eio->dirty) {
    hd_eio_session_t *s = eio->dirty;
    eio->dirty = s->dirty_next;
    s->in_dirty = false;
    if (waiting_get(s) && queued(s)) answer_get(s, NULL);
  }
}

/* --- heartbeat ---------------------------------------------------------------------------- */

static uint64_t hb_duration(const hd_eio_server_t *eio, int q) {
  const hd_eio_options_t *o = &eio->opt;
  return q == HB_PING ? o->ping_interval_ms : q == HB_PONG ? o->ping_timeout_ms : o->ping_interval_ms + o->ping_timeout_ms;
}

static void hb_unlink(hd_eio_session_t *s) {
  if (!s->hb_deadline) return;
  hd_eio_server_t *eio = s->eio;
  if (s->hb_prev) s->hb_prev->hb_next = s->hb_next;
  else eio->hb[s->hb_queue].head = s->hb_next;
  if (s->hb_next) s->hb_next->hb_prev = s->hb_prev;
  else eio->hb[s->hb_queue].tail = s->hb_prev;
  s->hb_prev = s->hb_next = NULL;
  s->hb_deadline = 0;
}

static void on_hb_timer(uv_timer_t *t);

/* Arms the timer for the earliest deadline of the three queues. */
static void hb_arm(hd_eio_server_t *eio) {
  uint64_t first = 0;
  for (int q = 0; q < 3; q++)
    if (eio->hb[q].head && (!first || eio->hb[q].head->hb_deadline < first)) first = eio->hb[q].head->hb_deadline;
  if (!first) {
    uv_timer_stop(&eio->hb_timer);
    return;
  }
  uint64_t now = uv_now(eio->srv->loop);
  uv_timer_start(&eio->hb_timer, on_hb_timer, first > now ? first - now : 0, 0);
}

/* Puts s at the tail of queue q: its deadline is now + that queue's duration. */
static void hb_schedule(hd_eio_session_t *s, int q) {
  hd_eio_server_t *eio = s->eio;
  hb_unlink(s);
  s->hb_queue = (uint8_t)q;
  s->hb_deadline = uv_now(eio->srv->loop) + hb_duration(eio, q);
  s->hb_prev = eio->hb[q].tail;
  if (eio->hb[q].tail) eio->hb[q].tail->hb_next = s;
  else eio->hb[q].head = s;
  eio->hb[q].tail = s;
  if (eio->hb[q].head == s) hb_arm(eio);
}

static void on_hb_timer(uv_timer_t *t) {
  hd_eio_server_t *eio = t->data;
  uint64_t now = uv_now(eio->srv->loop);
  for (int q = 0; q < 3; q++) {
    hd_eio_session_t *s;
    while ((s = eio->hb[q].head) && s->hb_deadline <= now) {
      if (q == HB_PING) { /* time to ping: then wait for the pong */
        hb_schedule(s, HB_PONG);
        send_packet(s, HD_EIO_PING, NULL, 0, false);
      } else { /* v4: no pong in time; v3: the client stopped pinging */
        hb_unlink(s);
        session_close(s, "ping timeout", false);
      }
    }
  }
  hb_arm(eio);
}

/* Life signs from the client: the next ping (v4) or the next expected client ping (v3) from now. */
static void heartbeat_reset(hd_eio_session_t *s) { hb_schedule(s, s->version == 3 ? HB_CLIENT : HB_PING); }

/* --- session lifecycle -------------------------------------------------------------------- */

static void free_handle(uv_handle_t *h) { free(h); }

/* Stops and frees the upgrade timer, if any. */
static void upgrade_timer_drop(hd_eio_session_t *s) {
  if (!s->poll || !s->poll->upgrade_timer) return;
  uv_close((uv_handle_t *)s->poll->upgrade_timer, free_handle);
  s->poll->upgrade_timer = NULL;
}

static void detach_ws(hd_conn_t *c, bool close_it) {
  if (!c) return;
  hd_ws_set_udata(c, NULL);
  if (close_it) hd_ws_close(c, HD_WS_CLOSE_NORMAL, NULL);
}

/* Ends a session: tells the peer when asked, answers a waiting GET, drops queued output, calls
 * on_close, and frees the session once its timers have closed. */
static void session_close(hd_eio_session_t *s, const char *reason, bool notify_peer) {
  if (s->closed) return;
  s->closed = true;
  if (s->overflowed) { /* closed before the flush got to it */
    for (hd_eio_session_t **pp = &s->eio->overflowed; *pp; pp = &(*pp)->poll->overflow_next)
      if (*pp == s) {
        *pp = s->poll->overflow_next;
        break;
      }
    s->overflowed = false;
  }
  if (notify_peer && !s->websocket) queue_packet(s, HD_EIO_CLOSE, NULL, 0, false);
  else if (notify_peer && s->ws) ws_send_packet(s->ws, s->version, HD_EIO_CLOSE, NULL, 0, false);
  else if (waiting_get(s) && !queued(s)) /* a waiting poll learns the end: close, or noop when the client closed */
    queue_packet(s, strcmp(reason, "transport close") ? HD_EIO_CLOSE : HD_EIO_NOOP, NULL, 0, false);
  hd_eio_server_t *eio = s->eio;
  hd_map_del(&eio->sessions, s->sid, strlen(s->sid));
  count_session(eio, -1);
  for (packet_t *p = queued(s); p; p = p->next) p->ends_write = false; /* the last GET takes all */
  if (waiting_get(s)) answer_get(s, NULL);
  for (packet_t *p = queued(s), *next; p; p = next) {
    next = p->next;
    out_account(s, p->len, false);
    free(p);
  }
  if (s->poll) s->poll->out_head = s->poll->out_tail = NULL;
  if (s->in_dirty) { /* unlink from the dirty list */
    for (hd_eio_session_t **pp = &eio->dirty; *pp; pp = &(*pp)->dirty_next)
      if (*pp == s) {
        *pp = s->dirty_next;
        break;
      }
  }
  detach_ws(s->ws, true);
  detach_ws(probe_of(s), true);
  s->ws = NULL;
  if (s->poll) s->poll->probe = NULL;
  HD_DEBUG("eio", "session closed", "sid=%s reason=\"%s\"", s->sid, reason);
  if (eio->cb->on_close) eio->cb->on_close(s, reason);
  upgrade_timer_drop(s);
  hb_unlink(s);
  s->dirty_next = eio->dead; /* freed on the next iteration */
  eio->dead = s;
  hd_server_wake(eio->srv);
}

static hd_eio_session_t *session_new(hd_eio_server_t *eio, int version, hd_conn_t *c) {
  hd_eio_session_t *s = calloc(1, sizeof(*s) + eio->opt.session_ext_size); /* one block with its user's state */
  if (!s) return NULL;
  s->eio = eio;
  s->version = version;
  do make_sid(eio, s->sid);
  while (hd_map_get(&eio->sessions, s->sid, 20));
  if (hd_map_put(&eio->sessions, s->sid, 20, s)) {
    session_free(s);
    return NULL;
  }
  count_session(eio, 1);
  return s;
}

/* The open packet's JSON. */
static int open_packet(hd_eio_session_t *s, char *out, size_t len) {
  const hd_eio_options_t *o = &s->eio->opt;
  const char *upgrades = s->websocket ? "[]" : "[\"websocket\"]";
  if (s->version == 3)
    return snprintf(out, len, "{\"sid\":\"%s\",\"upgrades\":%s,\"pingInterval\":%llu,\"pingTimeout\":%llu}", s->sid,
                    upgrades, (unsigned long long)o->ping_interval_ms, (unsigned long long)o->ping_timeout_ms);
  return snprintf(out, len, "{\"sid\":\"%s\",\"upgrades\":%s,\"pingInterval\":%llu,\"pingTimeout\":%llu,\"maxPayload\":%zu}",
                  s->sid, upgrades, (unsigned long long)o->ping_interval_ms, (unsigned long long)o->ping_timeout_ms,
                  o->max_payload);
}

/* --- incoming packets --------------------------------------------------------------------- */

/* Sends what waited in the polling queue over the WebSocket, in order. */
static void flush_queue_to_ws(hd_eio_session_t *s) {
  for (packet_t *p = queued(s), *next; p; p = next) {
    next = p->next;
    if (!s->closed) ws_send_packet(s->ws, s->version, p->type, p->data, p->len, p->binary);
    out_account(s, p->len, false);
    free(p);
  }
  if (s->poll) s->poll->out_head = s->poll->out_tail = NULL;
}

static void finish_upgrade(hd_eio_session_t *s) {
  upgrade_timer_drop(s);
  s->websocket = true;
  s->upgrading = false;
  s->ws = s->poll->probe;
  s->poll->probe = NULL;
  if (waiting_get(s)) { /* release the last poll */
    packet_t noop = {.type = HD_EIO_NOOP};
    answer_get(s, &noop);
  }
  flush_queue_to_ws(s);
  poll_release_if_idle(s);
  if (!s->closed && s->eio->cb->on_upgrade) s->eio->cb->on_upgrade(s);
}

/* Handles one packet from the client; `via` is the WebSocket it came on (NULL for polling). */
static void on_packet(hd_eio_session_t *s, hd_conn_t *via, const hd_eio_packet_t *p) {
  bool probe = via && via == probe_of(s);
  if (probe) { /* only 2probe and 5 are allowed on a probe */
    if (p->type == HD_EIO_PING && hd_slice_eq(p->data, "probe")) {
      ws_send_packet(via, s->version, HD_EIO_PONG, "probe", 5, false);
      s->upgrading = true;
      if (waiting_get(s)) {
        packet_t noop = {.type = HD_EIO_NOOP};
        answer_get(s, &noop);
      }
    } else if (p->type == HD_EIO_UPGRADE && s->upgrading) {
      finish_upgrade(s);
    } else {
      detach_ws(via, true);
      s->poll->probe = NULL;
      s->upgrading = false;
    }
    return;
  }
  switch (p->type) {
    case HD_EIO_PING:
      if (s->version == 3) {
        send_packet(s, HD_EIO_PONG, p->data.ptr, p->data.len, false);
        heartbeat_reset(s);
      }
      break;
    case HD_EIO_PONG:
      if (s->version == 4) heartbeat_reset(s);
      break;
    case HD_EIO_MESSAGE:
      if (s->eio->cb->on_message) s->eio->cb->on_message(s, (const uint8_t *)p->data.ptr, p->data.len, p->binary);
      break;
    case HD_EIO_CLOSE:
      session_close(s, "transport close", false);
      break;
    case HD_EIO_NOOP:
      break;
    default: /* open, or upgrade outside an upgrade */
      session_close(s, "parse error", false);
  }
}

static int on_polled_packet(const hd_eio_packet_t *p, void *arg) {
  hd_eio_session_t *s = arg;
  if (s->closed) return HD_ECLOSED;
  on_packet(s, NULL, p);
  return 0;
}

/* --- WebSocket transport ------------------------------------------------------------------ */

static int ws_message(hd_conn_t *c, uint8_t opcode, const uint8_t *data, size_t len) {
  hd_eio_session_t *s = hd_ws_udata(c);
  if (!s) return 0;
  hd_eio_packet_t p;
  if (hd_eio_packet_decode_ws(data, len, opcode == HD_WS_OP_BINARY, s->version, &p)) {
    session_close(s, "parse error", false);
    return 0;
  }
  on_packet(s, c, &p);
  return 0;
}

static void ws_closed(hd_conn_t *c, uint16_t code) {
  hd_eio_session_t *s = hd_ws_udata(c);
  if (!s) return;
  hd_ws_set_udata(c, NULL);
  if (c == probe_of(s)) {
    s->poll->probe = NULL;
    s->upgrading = false;
  } else if (c == s->ws) {
    s->ws = NULL;
    session_close(s, "transport close", false);
  }
}

static const hd_ws_handler_t ws_handler = {.name = "socketio", .on_message = ws_message, .on_close = ws_closed};

/* A WebSocket for a session that has one already (or is probing): accepted, then closed at once,
 * as Node's engine.io does, so raw clients see a close rather than an HTTP error. */
static int extra_ws_open(hd_conn_t *c, void *udata) {
  hd_ws_close(c, HD_WS_CLOSE_NORMAL, "");
  return 0;
}

static const hd_ws_handler_t extra_ws_handler = {.name = "socketio", .on_open = extra_ws_open};

static void on_upgrade_timeout(uv_timer_t *t) {
  hd_eio_session_t *s = t->data;
  upgrade_timer_drop(s);
  if (probe_of(s)) {
    detach_ws(s->poll->probe, true);
    s->poll->probe = NULL;
    s->upgrading = false;
  }
}

/* --- HTTP entry point --------------------------------------------------------------------- */

/* Refuses a handshake past the limits (answered, true) before any session state exists: the
 * address's handshake rate (429), then the node's open sessions (503). */
static bool handshake_refused(hd_eio_server_t *eio, hd_http_exchange_t *ex) {
  const hd_eio_limits_t *lim = &eio->opt.limits;
  if (lim->handshakes) {
    char addr[80];
    hd_conn_peer(ex->conn, addr, sizeof addr);
    char *colon = strrchr(addr, ':');
    if (colon) *colon = '\0';
    if (!hd_addr_rate_take(lim->handshakes, addr, uv_now(eio->srv->loop))) {
      hd_http_respond_error(ex, 429, "too many Engine.IO handshakes from this address: slow down");
      return true;
    }
  }
  if (lim->max_sessions && open_sessions(eio) >= lim->max_sessions) {
    HD_DEBUG("eio", "handshake refused: session limit", "max=%u", lim->max_sessions);
    hd_http_respond_error(ex, 503, "too many Engine.IO sessions: try again later");
    return true;
  }
  return false;
}

static void handshake(hd_eio_server_t *eio, hd_http_exchange_t *ex, const hd_http_request_t *req, int version,
                      bool websocket) {
  if (req->method != HTTP_GET) return eio_error(ex, ERR_METHOD);
  if (handshake_refused(eio, ex)) return;
  hd_eio_session_t *s = session_new(eio, version, ex->conn);
  if (!s) return hd_http_respond_error(ex, 500, "out of memory");
  /* The layer above sees the request (auth in its query) before a WebSocket replaces it; what it
   * sends meanwhile waits in the queue and goes out after the open packet. */
  eio->current = ex->conn;
  int refused = eio->cb->on_open ? eio->cb->on_open(s, req, eio->udata) : 0;
  eio->current = NULL;
  if (refused) {
    eio_error(ex, ERR_FORBIDDEN);
    session_close(s, "forced close", false);
    return;
  }
  hd_conn_t *conn = ex->conn; /* ex is gone once the upgrade switched the connection */
  if (websocket && hd_ws_upgrade(ex, &ws_handler, s)) { /* the upgrade answered the error */
    session_close(s, "transport error", false);
    return;
  }
  s->websocket = websocket;
  char open[256];
  int n = open_packet(s, open, sizeof open);
  if (websocket) {
    s->ws = conn;
    hd_ws_set_max_message(s->ws, eio->opt.max_payload);
    ws_send_packet(s->ws, version, HD_EIO_OPEN, open, (size_t)n, false);
    flush_queue_to_ws(s);
    poll_release_if_idle(s);
  } else {
    hd_sbuf_t body = {0};
    hd_eio_payload_append(&body, HD_EIO_OPEN, open, (size_t)n, false, version, true);
    hd_http_respond(ex, 200, "text/plain; charset=UTF-8", body.ptr, body.len, NULL);
    hd_sbuf_free(&body);
  }
  heartbeat_reset(s);
  HD_DEBUG("eio", "session opened", "sid=%s transport=%s version=%d", s->sid, websocket ? "websocket" : "polling",
           version);
}

static void polling(hd_eio_session_t *s, hd_http_exchange_t *ex, const hd_http_request_t *req) {
  if (req->method == HTTP_GET) {
    if (waiting_get(s)) { /* a second concurrent GET ends the session */
      eio_error(ex, ERR_REQUEST);
      session_close(s, "transport error", false);
      return;
    }
    polling_t *q = poll_of(s);
    if (!q) return hd_http_respond_error(ex, 503, "out of memory");
    hd_http_defer(ex);
    ex->long_poll = true;
    q->get = ex;
    if (s->upgrading) {
      packet_t noop = {.type = HD_EIO_NOOP};
      answer_get(s, &noop);
    } else if (q->out_head) {
      mark_dirty(s);
    }
    return;
  }
  if (req->method != HTTP_POST) return eio_error(ex, ERR_REQUEST);
  if (req->body.len > s->eio->opt.max_payload) { /* refused; the session stays, as in Engine.IO */
    hd_http_respond_error(ex, 413, "payload too large");
    return;
  }
  hd_eio_server_t *eio = s->eio; /* s may be closed (not freed) by what the packets do */
  eio->current = ex->conn;
  int rc = hd_eio_payload_decode(req->body.ptr ? req->body.ptr : "", req->body.len, s->version, on_polled_packet, s);
  eio->current = NULL;
  if (rc < 0 && rc != HD_ECLOSED) {
    eio_error(ex, ERR_REQUEST);
    session_close(s, "parse error", false);
    return;
  }
  hd_http_respond(ex, 200, "text/html", "ok", 2, NULL);
}

static void handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_eio_server_t *eio = udata;
  if (req->method == HTTP_OPTIONS) return hd_http_respond(ex, 204, NULL, NULL, 0, "Allow: GET, POST, OPTIONS\r\n");
  if (req->method != HTTP_GET && req->method != HTTP_POST) return eio_error(ex, ERR_METHOD);
  char value[64];
  int version = 0;
  if (query(req, "EIO", value, sizeof value) >= 0) {
    if (!strcmp(value, "4")) version = 4;
    else if (!strcmp(value, "3") && eio->opt.allow_eio3) version = 3;
  }
  if (!version) return eio_error(ex, ERR_VERSION);
  bool websocket;
  if (query(req, "transport", value, sizeof value) < 0) return eio_error(ex, ERR_TRANSPORT);
  if (!strcmp(value, "websocket")) websocket = true;
  else if (!strcmp(value, "polling")) websocket = false;
  else return eio_error(ex, ERR_TRANSPORT);
  if (query(req, "j", value, sizeof value) >= 0) return eio_error(ex, ERR_REQUEST); /* JSONP is not served */
  if (websocket && !req->upgrade) return eio_error(ex, ERR_REQUEST);
  if (!websocket) { /* --ws-origins holds for polling as for the WebSocket upgrade (allowRequest) */
    const char *origins = eio->srv->cfg->ws_origins;
    hd_slice_t origin = hd_http_request_header(req, "Origin");
    if (*origins && origin.ptr && !hd_origin_allowed(origins, origin)) return eio_error(ex, ERR_FORBIDDEN);
  }

  char sid[64];
  if (query(req, "sid", sid, sizeof sid) < 0) return handshake(eio, ex, req, version, websocket);
  /* another node's session: forwarded to its owner (srv->forward), else unknown here */
  if (eio->opt.node_tag[0] && strlen(sid) >= 4 && memcmp(sid + 1, eio->opt.node_tag, 3)) {
    hd_server_t *srv = eio->srv;
    if (!srv->forward || srv->forward(srv->forward_arg, ex, sid + 1)) eio_error(ex, ERR_SID);
    return;
  }
  int owner = hd_id_value(sid[0]); /* a session of another shard of this node: the connection goes there */
  if (owner >= 0 && (uint32_t)owner != eio->srv->shard && (uint32_t)owner < eio->srv->peer_count &&
      !memcmp(sid + 1, eio->opt.node_tag, 3) && !hd_http_handoff(ex, (uint32_t)owner))
    return;
  hd_eio_session_t *s = hd_map_get(&eio->sessions, sid, strlen(sid));
  if (!s || s->closed) return eio_error(ex, ERR_SID);
  if (s->version != version) return eio_error(ex, ERR_REQUEST);
  if (!websocket) {
    if (s->websocket) return eio_error(ex, ERR_REQUEST); /* upgraded: polling is over */
    return polling(s, ex, req);
  }
  /* an upgrade probe: only from polling, and only one */
  if (s->websocket || probe_of(s) || !poll_of(s)) { /* (or out of memory for the upgrade's state) */
    hd_ws_upgrade(ex, &extra_ws_handler, NULL);
    return;
  }
  polling_t *q = s->poll;
  hd_conn_t *conn = ex->conn; /* ex is gone once the upgrade switched the connection */
  if (hd_ws_upgrade(ex, &ws_handler, s)) return;
  q->probe = conn;
  hd_ws_set_max_message(q->probe, eio->opt.max_payload);
  if ((q->upgrade_timer = malloc(sizeof(*q->upgrade_timer)))) {
    uv_timer_init(eio->srv->loop, q->upgrade_timer);
    q->upgrade_timer->data = s;
    uv_timer_start(q->upgrade_timer, on_upgrade_timeout, eio->opt.upgrade_timeout_ms, 0);
  }
}

/* --- public API --------------------------------------------------------------------------- */

hd_eio_server_t *hd_eio_server_new(hd_server_t *srv, const hd_eio_options_t *opt, const hd_eio_callbacks_t *cb,
                                   void *udata) {
  hd_eio_server_t *eio = calloc(1, sizeof(*eio));
  if (!eio) return NULL;
  eio->srv = srv;
  eio->opt = *opt;
  eio->cb = cb;
  eio->udata = udata;
  snprintf(eio->path, sizeof eio->path, "%s", opt->path);
  eio->opt.path = eio->path;
  if (hd_server_add_flush_hook(srv, flush_polling, eio) || hd_server_add_stop_hook(srv, close_all, eio)) {
    free(eio);
    return NULL;
  }
  uv_timer_init(srv->loop, &eio->hb_timer);
  eio->hb_timer.data = eio;
  uv_unref((uv_handle_t *)&eio->hb_timer);
  return eio;
}

int hd_eio_server_route(hd_eio_server_t *eio, hd_router_t *router) {
  char pattern[300];
  size_t n = strlen(eio->path);
  snprintf(pattern, sizeof pattern, "%s%s*", eio->path, n && eio->path[n - 1] == '/' ? "" : "/");
  return hd_router_add(router, "*", pattern, handle, eio); /* other methods: 400 code 2, as Node's */
}

/* Closes every session, telling each client (server stop and free). */
static void close_all(void *arg) {
  hd_eio_server_t *eio = arg;
  while (eio->sessions.count) { /* session_close edits the map: restart the walk each time */
    for (size_t i = 0; i < eio->sessions.cap; i++)
      if (eio->sessions.slots[i].hash) {
        session_close(eio->sessions.slots[i].value, "server shutting down", true);
        break;
      }
  }
}

static void free_server(uv_handle_t *h) {
  hd_eio_server_t *eio = h->data;
  for (hd_eio_session_t *s = eio->dead, *next; s; s = next) {
    next = s->dirty_next;
    session_free(s);
  }
  free(eio);
}

void hd_eio_server_free(hd_eio_server_t *eio) {
  if (!eio) return;
  close_all(eio);
  hd_map_free(&eio->sessions);
  uv_close((uv_handle_t *)&eio->hb_timer, free_server);
}

size_t hd_eio_session_count(const hd_eio_server_t *eio) { return eio->sessions.count; }

int hd_eio_send(hd_eio_session_t *s, const void *data, size_t len, bool binary) {
  return send_packet(s, HD_EIO_MESSAGE, data, len, binary);
}

hd_buf_t *hd_eio_message_frame_new(const void *text, size_t len) {
  return hd_ws_frame_new_prefixed(HD_WS_OP_TEXT, '0' + HD_EIO_MESSAGE, text, len);
}

int hd_eio_send_prebuilt(hd_eio_session_t *s, hd_buf_t *ws_frame, const char *text, size_t len) {
  if (s->closed) return HD_ECLOSED;
  if (s->websocket && ws_frame) return hd_ws_send_frame(s->ws, ws_frame);
  return send_packet(s, HD_EIO_MESSAGE, text, len, false);
}

void hd_eio_flush(hd_eio_session_t *s) {
  if (s->closed) return;
  if (s->websocket && s->ws) hd_conn_flush_now(s->ws);
  else if (!s->websocket && s->poll && s->poll->out_tail) s->poll->out_tail->ends_write = true;
}

bool hd_eio_is_websocket(const hd_eio_session_t *s) { return s->websocket && !s->closed; }

void hd_eio_session_peer(const hd_eio_session_t *s, char *out, size_t len) {
  hd_conn_t *c = s->eio->current ? s->eio->current : s->ws;
  if (len) out[0] = '\0';
  if (!c) return;
  hd_conn_peer(c, out, len);
  char *colon = strrchr(out, ':');
  if (colon) *colon = '\0';
}
void hd_eio_close(hd_eio_session_t *s, const char *reason) { session_close(s, reason, true); }
const char *hd_eio_session_id(const hd_eio_session_t *s) { return s->sid; }
int hd_eio_session_version(const hd_eio_session_t *s) { return s->version; }
void *hd_eio_session_udata(const hd_eio_session_t *s) { return s->udata; }
void *hd_eio_session_ext(hd_eio_session_t *s) { return s + 1; }
void hd_eio_session_set_udata(hd_eio_session_t *s, void *udata) { s->udata = udata; }
