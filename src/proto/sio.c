/* Socket.IO server: namespaces, sockets, events, acks, binary, rooms, broadcast, recovery (see sio.h). */
#include "proto/sio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "delivery/recovery.h"
#include "net/ws_frame.h"
#include "proto/sio_packet.h"

#define MAX_NAMESPACES 16
#define MAX_LIFECYCLE_HANDLERS 4 /* connect / disconnect listeners per namespace */
#define SOCKET_ID_MAX 64          /* "/nsp#" + an Engine.IO sid for v3 clients */

static const char *const reserved_events[] = {"connect", "connect_error", "disconnect", "disconnecting",
                                              "newListener", "removeListener"};

typedef struct handler {
  struct handler *next;
  hd_sio_event_fn fn;
  void *udata;
  char event[];
} handler_t;

typedef struct {
  char name[128];
  char all_room[136]; /* hub room of every socket of the namespace */
  hd_map_t own;       /* its sockets in their own room, by id (keys borrowed from the sockets) */
  handler_t *handlers;
  struct {
    hd_sio_connect_fn fn;
    void *udata;
  } on_connect[MAX_LIFECYCLE_HANDLERS];
  struct {
    hd_sio_disconnect_fn fn;
    void *udata;
  } on_disconnect[MAX_LIFECYCLE_HANDLERS];
  int connect_count, disconnect_count;
  hd_sio_admit_fn admit;  /* decides CONNECTs in place of the token check, or NULL */
  void *admit_arg;
  size_t sockets;         /* connected on this shard */
  uint32_t traffic_slot;  /* 1 + its slot in the hub's traffic counters, 0 until its first event */
} nsp_t;

/* A binary packet waiting for its attachments. */
typedef struct {
  hd_sio_packet_t packet;
  uint32_t received;
  hd_buf_t *attachments[];
} pending_t;

/* One Engine.IO session: its sockets (one per namespace). Kept small: an idle client is this. */
typedef struct client {
  hd_sio_server_t *sio;
  hd_eio_session_t *eio;
  hd_sio_socket_t **sockets;         /* nsp_count slots from the first CONNECT: one_socket when there is one
                                      * namespace, else allocated */
  hd_sio_socket_t *one_socket;
  struct client *wait_prev, *wait_next; /* in sio->waiting until a namespace is connected */
  uint64_t connect_deadline_ms;
  json_t *query_auth;                /* v3 clients authenticate with query parameters */
  pending_t *pending;
  char *handshake;                   /* keep_handshake: the handshake as the Admin UI shows it (JSON) */
} client_t;

typedef struct pending_ack {
  struct pending_ack *next;
  hd_sio_socket_t *socket;
  int64_t id;
  hd_sio_ack_fn fn;
  void *arg;
  uv_timer_t timer;
} pending_ack_t;

struct hd_sio_socket {
  hd_hub_member_t member; /* first: the hub hands it back to deliver() */
  client_t *client;
  nsp_t *nsp;
  char *id;               /* id_inline, or allocated when longer (a v3 client's "nsp#sid") */
  char id_inline[24];
  char pid[24];
  hd_claims_t *claims;    /* NULL for an anonymous socket (test handlers) */
  int64_t next_ack_id;
  pending_ack_t *acks;
  hd_buf_t *const *cur_att;
  size_t cur_att_n;
  uint64_t floor_id;      /* after a recovery: live copies of what was replayed (ids up to it) are skipped */
  struct restore *restore;/* clustered recovery under way (CONNECT not answered yet, holds what reaches it), or NULL */
  struct hd_sio_socket *exp_prev, *exp_next; /* in sio->expiring while its token has an exp */
  struct hd_sio_admission *admission; /* its CONNECT waits for the namespace's admission, or NULL */
  void *udata;
  uint32_t inflight;      /* application requests owed an answer (hd_sio_socket_inflight_take) */
  uint32_t pins;          /* application callbacks running on it: closed meanwhile, it is freed after */
  bool admitted;          /* counted by opt.admit: released when it goes */
  bool connected;
  bool expiring;
  bool closed;            /* closed while pinned */
};

struct hd_sio_admission {
  hd_sio_socket_t *socket; /* NULL once the client went */
  json_t *auth;            /* the CONNECT's (a reference), for the connect listeners */
  char address[64];
};

struct hd_sio_server {
  hd_server_t *srv;
  hd_hub_t *hub;
  hd_sio_options_t opt;
  char path[256];
  hd_eio_server_t *eio;
  nsp_t nsps[MAX_NAMESPACES];
  int nsp_count;
  int enc_text, enc_ws;   /* hub encoding slots */
  client_t *waiting;      /* clients that have not connected a namespace yet (connect timeout) */
  hd_sio_socket_t *expiring; /* connected sockets whose token expires (disconnected at exp by the sweep) */
  uv_timer_t recovery_sweeper;
  size_t sockets;
  size_t clients;
  uint64_t opened, closed; /* Engine.IO sessions since start */
  const hd_sio_monitor_t *monitor; /* watches every namespace, or NULL */
  void *monitor_arg;
  nsp_t *root;            /* "/" */
};

/* --- small helpers ------------------------------------------------------------------------ */

/* The slot of s's namespace in sio->nsps (and in its client's sockets). */
static int nsp_index(const hd_sio_socket_t *s) { return (int)(s->nsp - s->client->sio->nsps); }

static void random_id(char *out) { hd_id_random(out, 20); }

static void own_room_leave(hd_sio_socket_t *s);

/* Sets s's id (inline when short, else a copy; a random id when out of memory). */
static void set_id(hd_sio_socket_t *s, const char *id) {
  own_room_leave(s); /* its map entry borrows the id */
  if (s->id != s->id_inline) free(s->id);
  size_t n = strlen(id);
  char *copy = n < sizeof s->id_inline ? NULL : strdup(id);
  s->id = copy ? copy : s->id_inline;
  if (copy) return;
  if (n < sizeof s->id_inline) memcpy(s->id_inline, id, n + 1);
  else random_id(s->id_inline);
}

static nsp_t *find_nsp(hd_sio_server_t *sio, const char *name, size_t len) {
  for (int i = 0; i < sio->nsp_count; i++)
    if (strlen(sio->nsps[i].name) == len && !memcmp(sio->nsps[i].name, name, len)) return &sio->nsps[i];
  return NULL;
}

/* Takes a client off the list of those still to connect a namespace. */
static void waiting_remove(client_t *c) {
  if (!c->connect_deadline_ms) return;
  if (c->wait_prev) c->wait_prev->wait_next = c->wait_next;
  else c->sio->waiting = c->wait_next;
  if (c->wait_next) c->wait_next->wait_prev = c->wait_prev;
  c->connect_deadline_ms = 0;
}

int hd_sio_room_key(const char *nsp, const char *room, char *out, size_t len) {
  int n = strcmp(nsp, "/") ? snprintf(out, len, "%s\x1f%s", nsp, room) : snprintf(out, len, "%s", room);
  return n < 0 || (size_t)n >= len ? HD_ETOOBIG : n;
}

/* --- a socket's own room (named by its id): an entry in its namespace's map, not a hub room ----
 * The hub resolves the name through own_room_owner (hub.h, hd_hub_own_rooms_t), so delivery,
 * except, requests, fetches and room lists see it as socket.io's adapter sees the room of a
 * socket's id. */

static bool in_own_room(const hd_sio_socket_t *s) { return hd_map_get(&s->nsp->own, s->id, strlen(s->id)) == s; }

static int own_room_enter(hd_sio_socket_t *s) { return hd_map_put(&s->nsp->own, s->id, strlen(s->id), s); }

static void own_room_leave(hd_sio_socket_t *s) {
  if (s->nsp && in_own_room(s)) hd_map_del(&s->nsp->own, s->id, strlen(s->id));
}

/* True when the hub room key `key` names s's own room. */
static bool is_own_key(const hd_sio_socket_t *s, const char *key) {
  const char *nsp = s->nsp->name;
  size_t nl = strlen(nsp);
  if (strcmp(nsp, "/")) {
    if (strncmp(key, nsp, nl) || key[nl] != '\x1f') return false;
    key += nl + 1;
  }
  return !strcmp(key, s->id);
}

static hd_hub_member_t *own_room_owner(void *arg, const char *key, size_t len) {
  hd_sio_server_t *sio = arg;
  if (!len || key[0] == '\x1e') return NULL; /* an all-room */
  const char *sep = memchr(key, '\x1f', len), *id = sep ? sep + 1 : key;
  nsp_t *n = sep ? find_nsp(sio, key, (size_t)(sep - key)) : sio->root;
  hd_sio_socket_t *s = n ? hd_map_get(&n->own, id, len - (size_t)(id - key)) : NULL;
  return s ? &s->member : NULL;
}

static size_t own_room_count(void *arg) {
  hd_sio_server_t *sio = arg;
  size_t n = 0;
  for (int i = 0; i < sio->nsp_count; i++) n += sio->nsps[i].own.count;
  return n;
}

static const hd_hub_own_rooms_t own_rooms = {own_room_owner, own_room_count};

/* The hub's view of a member's own room (hd_hub_member_ops_t.own_room). */
static size_t own_room_key(const hd_hub_member_t *m, char *out, size_t cap) {
  const hd_sio_socket_t *s = (const hd_sio_socket_t *)m;
  int n = in_own_room(s) ? hd_sio_room_key(s->nsp->name, s->id, out, cap) : -1;
  return n > 0 ? (size_t)n : 0;
}

/* Joins the room with hub key `key`, its own room when key names its id (recovery: no monitor). */
static void rejoin(hd_sio_socket_t *s, const char *key) {
  if (is_own_key(s, key)) own_room_enter(s);
  else hd_hub_join(s->client->sio->hub, &s->member, key, strlen(key));
}

#define SMALL_PACKET 512 /* a packet up to this size is put together on the stack */

/* Sends a packet to the client (text part; binary attachments follow separately). nsp is a
 * namespace's name (under 128 bytes). */
static int send_packet(client_t *c, hd_sio_type_t type, const char *nsp, int64_t ack_id, uint32_t attachments,
                       const char *data, size_t len) {
  char small[SMALL_PACKET];
  size_t head = hd_sio_packet_head(small, type, nsp, ack_id, attachments);
  if (head + len <= sizeof small) {
    if (len) memcpy(small + head, data, len);
    return hd_eio_send(c->eio, small, head + len, false);
  }
  hd_sbuf_t text = {0};
  int rc = hd_sbuf_append(&text, small, head);
  if (!rc && len) rc = hd_sbuf_append(&text, data, len);
  if (!rc) rc = hd_eio_send(c->eio, text.ptr, text.len, false);
  hd_sbuf_free(&text);
  return rc;
}

/* --- broadcast encodings (built once per message, shared by every recipient) -------------- */

typedef struct {
  const char *nsp;
  bool offset;    /* append the message id as the recovery offset */
  int64_t ack_id; /* HD_SIO_NO_ACK, or the recipient's ack id (a broadcast with acks, never cached) */
} encode_ctx_t;

static hd_buf_t *encode_text(const hd_hub_msg_t *msg, void *arg) {
  const encode_ctx_t *ctx = arg;
  hd_sbuf_t args = {0}, text = {0};
  hd_sbuf_append(&args, msg->args, msg->args_len);
  if (ctx->offset && args.len >= 2) {
    args.len--; /* drop ']' */
    uint64_t offset = msg->cluster_offset ? msg->cluster_offset : msg->id; /* the cluster's, when clustered */
    hd_sbuf_printf(&args, "%s\"%llu\"]", args.len > 1 ? "," : "", (unsigned long long)offset);
  }
  hd_buf_t *b = NULL;
  if (msg->attachment_count && args.ptr) { /* BINARY_EVENT: ["event", args...] with placeholders */
    hd_sbuf_t data = {0};
    hd_sbuf_puts(&data, "[\"");
    hd_sbuf_json_escape(&data, msg->event, strlen(msg->event));
    hd_sbuf_printf(&data, "\"%s%.*s]", args.len > 2 ? "," : "", (int)(args.len - 2), args.ptr + 1);
    if (data.ptr && !hd_sio_packet_encode(&text, HD_SIO_BINARY_EVENT, ctx->nsp, ctx->ack_id, msg->attachment_count,
                                          data.ptr, data.len))
      b = hd_buf_from(text.ptr, text.len);
    hd_sbuf_free(&data);
  } else if (args.ptr && !hd_sio_event_encode(&text, ctx->nsp, ctx->ack_id, msg->event, args.ptr, args.len)) {
    b = hd_buf_from(text.ptr, text.len);
  }
  hd_sbuf_free(&args);
  hd_sbuf_free(&text);
  return b;
}

static hd_buf_t *encode_ws(const hd_hub_msg_t *msg, void *arg) {
  hd_buf_t *text = arg;
  return hd_eio_message_frame_new(text->data, text->len);
}

static pending_ack_t *ack_new(hd_sio_socket_t *s, hd_sio_ack_fn fn, void *arg);
static void ack_arm(pending_ack_t *a, uint64_t timeout_ms);

/* A client's answer to a broadcast with acks goes to the message's sink (args NULL: none came). */
static void broadcast_acked(hd_sio_socket_t *s, json_t *args, void *arg) {
  hd_hub_acks_t *acks = arg;
  char *text = args ? json_dumps(args, JSON_COMPACT) : NULL;
  size_t natt = 0;
  hd_buf_t *const *att = hd_sio_attachments(s, &natt);
  if (text) acks->on_ack(acks, text, strlen(text), att, natt);
  free(text);
  hd_hub_acks_unref(acks);
}

/* A broadcast with acks to one socket: encoded for it (its own ack id), no recovery offset. */
static void deliver_with_ack(hd_sio_socket_t *s, hd_hub_msg_t *msg) {
  pending_ack_t *a = ack_new(s, broadcast_acked, msg->acks);
  if (!a) return;
  encode_ctx_t ctx = {s->nsp->name, false, a->id};
  hd_buf_t *text = encode_text(msg, &ctx);
  int rc = text ? hd_eio_send(s->client->eio, (const char *)text->data, text->len, false) : HD_ENOMEM;
  for (uint32_t i = 0; !rc && i < msg->attachment_count; i++)
    rc = hd_eio_send(s->client->eio, msg->attachments[i]->data, msg->attachments[i]->len, true);
  hd_buf_unref(text);
  if (rc) {
    free(a);
    return;
  }
  hd_hub_acks_ref(msg->acks);
  ack_arm(a, msg->acks->timeout_ms);
}

/* A clustered recovery under way (see "clustered recovery" below); what reaches the socket
 * meanwhile is held here, not in the socket, so a socket that is not recovering pays nothing. */
typedef struct restore {
  hd_sio_socket_t *socket; /* NULL once settled or the socket is gone */
  hd_sio_server_t *sio;
  uv_timer_t timer;
  int refs;                /* the answer awaited, the timer */
  json_t *auth;            /* the CONNECT's, for the connect listeners */
  uint64_t offset;         /* the client's */
  hd_recovery_session_t session;
  hd_hub_msg_t **held;     /* what reached the socket meanwhile (refs), sent after the missed packets */
  uint32_t n_held, held_cap; /* held_cap UINT32_MAX: overflowed, the recovery fails */
} restore_t;

/* Keeps what reaches a socket whose clustered recovery is under way (at most the recovery's packet
 * bound: past it the recovery fails). */
static void hold(restore_t *r, hd_hub_msg_t *msg) {
  if (r->n_held == r->held_cap) {
    uint32_t cap = r->held_cap ? r->held_cap * 2 : 8;
    hd_hub_msg_t **grown = cap <= HD_RECOVERY_MAX_PACKETS ? realloc(r->held, cap * sizeof(*grown)) : NULL;
    if (!grown) {
      r->held_cap = UINT32_MAX; /* overflowed: the recovery fails */
      return;
    }
    r->held = grown;
    r->held_cap = cap;
  }
  r->held[r->n_held++] = hd_hub_msg_ref(msg);
}

static void drop_held(restore_t *r) {
  for (uint32_t i = 0; i < r->n_held; i++) hd_hub_msg_unref(r->held[i]);
  free(r->held);
  r->held = NULL;
  r->n_held = r->held_cap = 0;
}

static void send_to(hd_sio_socket_t *s, hd_hub_msg_t *msg);

/* Hub delivery to one socket. */
static void deliver(hd_hub_member_t *m, hd_hub_msg_t *msg) {
  hd_sio_socket_t *s = (hd_sio_socket_t *)m;
  if (s->restore) {
    if (s->restore->held_cap != UINT32_MAX) hold(s->restore, msg);
    return;
  }
  if (!s->connected || msg->id <= s->floor_id) return;
  send_to(s, msg);
}

/* Sends msg to s (a broadcast with acks asks for s's ack). */
static void send_to(hd_sio_socket_t *s, hd_hub_msg_t *msg) {
  if (msg->acks) {
    deliver_with_ack(s, msg);
    return;
  }
  hd_sio_server_t *sio = s->client->sio;
  encode_ctx_t ctx = {s->nsp->name, sio->opt.recovery != NULL, HD_SIO_NO_ACK};
  hd_buf_t *text = hd_hub_msg_encoded(sio->hub, msg, sio->enc_text, encode_text, &ctx);
  if (!text) return;
  hd_buf_t *frame =
      hd_eio_is_websocket(s->client->eio) ? hd_hub_msg_encoded(sio->hub, msg, sio->enc_ws, encode_ws, text) : NULL;
  if (hd_eio_send_prebuilt(s->client->eio, frame, (const char *)text->data, text->len)) return;
  for (uint32_t i = 0; i < msg->attachment_count; i++)
    hd_eio_send(s->client->eio, msg->attachments[i]->data, msg->attachments[i]->len, true);
}

/* --- token expiry ------------------------------------------------------------------------- */

static void socket_close(hd_sio_socket_t *s, const char *reason, bool notify_client);


static void expiring_add(hd_sio_socket_t *s) {
  if (s->expiring || !s->claims || !s->claims->exp) return;
  hd_sio_server_t *sio = s->client->sio;
  s->exp_prev = NULL;
  s->exp_next = sio->expiring;
  if (sio->expiring) sio->expiring->exp_prev = s;
  sio->expiring = s;
  s->expiring = true;
}

static void expiring_remove(hd_sio_socket_t *s) {
  if (!s->expiring) return;
  hd_sio_server_t *sio = s->client->sio;
  if (s->exp_prev) s->exp_prev->exp_next = s->exp_next;
  else sio->expiring = s->exp_next;
  if (s->exp_next) s->exp_next->exp_prev = s->exp_prev;
  s->expiring = false;
}

/* True (and the socket disconnected, as by the server) when its token has expired, as the JSON
 * protocol does: the client learns it from the DISCONNECT and must connect again with a new token. */
static bool token_expired(hd_sio_socket_t *s, int64_t wall_s) {
  if (!s->claims || !s->claims->exp || wall_s <= s->claims->exp) return false;
  HD_DEBUG("sio", "token expired: socket disconnected", "nsp=%s id=%s sub=%s", s->nsp->name, s->id, s->claims->sub);
  socket_close(s, "token expired", true);
  return true;
}

/* --- recovery ----------------------------------------------------------------------------- */

static void on_recovery_sweep(uv_timer_t *t) {
  hd_sio_server_t *sio = t->data;
  uint64_t now = uv_now(sio->srv->loop);
  for (client_t *c = sio->waiting, *next; c; c = next) { /* Engine.IO open but no CONNECT in time */
    next = c->wait_next;
    if (now >= c->connect_deadline_ms) hd_eio_close(c->eio, "connect timeout");
  }
  int64_t wall_s = hd_clock_wall_ms() / 1000;
  /* disconnect handlers may close other sockets: after each expiry the walk starts again */
  for (hd_sio_socket_t *s = sio->expiring; s;) s = token_expired(s, wall_s) ? sio->expiring : s->exp_next;
  if (sio->opt.recovery) hd_recovery_sweep(sio->opt.recovery);
}

/* Remembers a socket that dropped without saying goodbye, so it can come back (on any shard). */
static void session_save(hd_sio_socket_t *s) {
  hd_recovery_session_t rs = {.last_msg_id = s->member.last_msg_id};
  memcpy(rs.pid, s->pid, sizeof rs.pid);
  snprintf(rs.id, sizeof rs.id, "%s", s->id);
  snprintf(rs.sub, sizeof rs.sub, "%s", s->claims ? s->claims->sub : "");
  snprintf(rs.nsp, sizeof rs.nsp, "%s", s->nsp->name);
  rs.rooms = calloc(s->member.room_count + 2, sizeof(*rs.rooms));
  char key[320];
  size_t k = 0;
  if (rs.rooms && own_room_key(&s->member, key, sizeof key)) rs.rooms[k++] = strdup(key); /* first, as socket.rooms */
  for (uint32_t i = 0; rs.rooms && i < s->member.room_count; i++) rs.rooms[k++] = strdup(s->member.rooms[i].room->name);
  hd_recovery_save(s->client->sio->opt.recovery, &rs);
}

/* --- sockets ------------------------------------------------------------------------------ */


/* Joins or leaves the room with hub key `key`, telling the monitor when membership changed. */
static int room_change(hd_sio_socket_t *s, const char *key, bool join) {
  hd_sio_server_t *sio = s->client->sio;
  size_t len = strlen(key);
  bool own = is_own_key(s, key), was_in = own ? in_own_room(s) : hd_hub_member_in(&s->member, key, len);
  int rc;
  if (own && join) rc = was_in ? 0 : own_room_enter(s);
  else if (own) rc = was_in ? (own_room_leave(s), 0) : HD_ENOTFOUND;
  else rc = join ? hd_hub_join(sio->hub, &s->member, key, len) : hd_hub_leave(sio->hub, &s->member, key, len);
  if (!rc && was_in != join && s->connected && sio->monitor) {
    const char *sep = strchr(key, '\x1f'), *name = strcmp(s->nsp->name, "/") ? (sep ? sep + 1 : NULL) : key;
    if (name) sio->monitor->on_room(s, name, join, sio->monitor_arg);
  }
  return rc;
}

/* A membership request from the adapter (socketsJoin, socketsLeave, disconnectSockets). */
static void on_request(hd_hub_member_t *m, hd_hub_req_t req, const char *room) {
  hd_sio_socket_t *s = (hd_sio_socket_t *)m;
  if (!s->connected) return;
  if (req == HD_HUB_REQ_JOIN && room) room_change(s, room, true);
  else if (req == HD_HUB_REQ_LEAVE && room) room_change(s, room, false);
  else if (req == HD_HUB_REQ_DISCONNECT) socket_close(s, "server namespace disconnect", true);
  else if (req == HD_HUB_REQ_CLOSE) hd_eio_close(s->client->eio, "forced server close");
}

/* fetchSockets: {id, nsp, rooms (the application's names), data: {sub, role}}; with keep_handshake
 * also handshake and data._admin {clientId, transport}, as @socket.io/admin-ui's sockets carry. */
static void describe(hd_hub_member_t *m, hd_sbuf_t *out) {
  hd_sio_socket_t *s = (hd_sio_socket_t *)m;
  const char *nsp = s->nsp->name;
  hd_sbuf_puts(out, "{\"id\":\"");
  hd_sbuf_json_escape(out, s->id, strlen(s->id));
  hd_sbuf_puts(out, "\",\"nsp\":\"");
  hd_sbuf_json_escape(out, nsp, strlen(nsp));
  hd_sbuf_puts(out, "\",\"rooms\":[");
  bool root = !strcmp(nsp, "/"), first = true;
  if (in_own_room(s)) { /* first, as socket.rooms */
    hd_sbuf_puts(out, "\"");
    hd_sbuf_json_escape(out, s->id, strlen(s->id));
    hd_sbuf_puts(out, "\"");
    first = false;
  }
  for (uint32_t i = 0; i < m->room_count; i++) {
    const char *key = m->rooms[i].room->name;
    if (key[0] == '\x1e') continue; /* the namespace's all-room */
    const char *name = root ? key : strchr(key, '\x1f');
    if (!name) continue;
    if (!root) name++;
    hd_sbuf_puts(out, first ? "\"" : ",\"");
    hd_sbuf_json_escape(out, name, strlen(name));
    hd_sbuf_puts(out, "\"");
    first = false;
  }
  hd_sbuf_puts(out, "],\"data\":{");
  client_t *c = s->client;
  if (c->handshake) {
    hd_sbuf_printf(out, "\"_admin\":{\"clientId\":\"%.12s\",\"transport\":\"%s\"}%s", hd_eio_session_id(c->eio),
                   hd_eio_is_websocket(c->eio) ? "websocket" : "polling", s->claims ? "," : "");
  }
  if (s->claims) {
    hd_sbuf_puts(out, "\"sub\":\"");
    hd_sbuf_json_escape(out, s->claims->sub, strlen(s->claims->sub));
    hd_sbuf_puts(out, "\",\"role\":\"");
    hd_sbuf_json_escape(out, s->claims->role, strlen(s->claims->role));
    hd_sbuf_puts(out, "\"");
  }
  hd_sbuf_puts(out, "}");
  if (c->handshake) {
    hd_sbuf_puts(out, ",\"handshake\":");
    hd_sbuf_puts(out, c->handshake);
  }
  hd_sbuf_puts(out, "}");
}

static const hd_hub_member_ops_t member_ops = {deliver, on_request, describe, HD_TRAFFIC_SOCKETIO, own_room_key};

static void ack_free(uv_handle_t *h) { free(h->data); }

static void ack_finish(pending_ack_t *a, json_t *args) {
  hd_sio_socket_t *s = a->socket;
  for (pending_ack_t **pp = &s->acks; *pp; pp = &(*pp)->next)
    if (*pp == a) {
      *pp = a->next;
      break;
    }
  uv_timer_stop(&a->timer);
  a->fn(s, args, a->arg);
  uv_close((uv_handle_t *)&a->timer, ack_free);
}

static void on_ack_timeout(uv_timer_t *t) { ack_finish(t->data, NULL); }

static bool recoverable(const char *reason) {
  static const char *const reasons[] = {"transport error", "transport close", "forced close", "ping timeout",
                                        "server shutting down", "forced server close", "parse error"};
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (!strcmp(reasons[i], reason)) return true;
  return false;
}

/* Removes a socket from its namespace; `reason` as Socket.IO reports it. */
static void restore_detach(struct restore *r);

/* Frees a closed socket that nothing holds any more. */
static void socket_free(hd_sio_socket_t *s) {
  if (s->id != s->id_inline) free(s->id);
  free(s->claims);
  free(s);
}

static void socket_close(hd_sio_socket_t *s, const char *reason, bool notify_client) {
  client_t *c = s->client;
  hd_sio_server_t *sio = c->sio;
  if (s->restore) restore_detach(s->restore);
  if (s->admission) s->admission->socket = NULL, s->admission = NULL;
  if (s->connected && notify_client) send_packet(c, HD_SIO_DISCONNECT, s->nsp->name, HD_SIO_NO_ACK, 0, NULL, 0);
  bool was_connected = s->connected;
  s->connected = false;
  expiring_remove(s);
  while (s->acks) ack_finish(s->acks, NULL);
  if (was_connected && sio->opt.recovery && recoverable(reason)) session_save(s);
  for (int i = 0; was_connected && i < s->nsp->disconnect_count; i++)
    s->nsp->on_disconnect[i].fn(s, reason, s->nsp->on_disconnect[i].udata);
  if (was_connected && sio->monitor) sio->monitor->on_disconnect(s, reason, sio->monitor_arg);
  hd_hub_leave_all(sio->hub, &s->member);
  own_room_leave(s);
  c->sockets[nsp_index(s)] = NULL;
  if (was_connected) sio->sockets--, s->nsp->sockets--;
  if (s->admitted) sio->opt.release(sio->opt.admit_arg, s->claims);
  s->client = NULL;
  if (s->pins) { /* a callback below us still holds it (an emit ran the mailbox, which closed it) */
    s->closed = true;
    return;
  }
  socket_free(s);
}

/* Holds s across application callbacks, which may close it (deferred free, as libuv's close). */
static void pin(hd_sio_socket_t *s) { s->pins++; }

/* Lets go of s; false when it was closed meanwhile (and is now freed). */
static bool unpin(hd_sio_socket_t *s) {
  if (--s->pins || !s->closed) return true;
  socket_free(s);
  return false;
}

/* Verifies the token of a CONNECT; fills the CONNECT_ERROR message on refusal. */
static int authenticate(hd_sio_server_t *sio, client_t *c, json_t *auth, hd_sio_socket_t *s, const char **why) {
  json_t *token = json_object_get(auth, "token");
  if (!token && c->query_auth) token = json_object_get(c->query_auth, "token");
  if (!json_is_string(token)) {
    if (sio->opt.auth_optional) return 0;
    *why = "authentication required: pass auth.token";
    return HD_EINVAL;
  }
  hd_claims_t claims;
  int rc = sio->opt.authenticate(sio->opt.auth_arg, json_string_value(token), &claims, why);
  if (rc && sio->opt.auth_optional) return 0; /* test mode: anonymous, whatever auth says */
  if (!rc && !(s->claims = malloc(sizeof(*s->claims)))) rc = HD_ENOMEM;
  if (!rc) *s->claims = claims;
  return rc;
}

static void connect_error(client_t *c, const char *nsp, const char *message, int code) {
  hd_sbuf_t body = {0};
  if (hd_eio_session_version(c->eio) == 3) {
    hd_sbuf_puts(&body, "\"");
    hd_sbuf_json_escape(&body, message, strlen(message));
    hd_sbuf_puts(&body, "\"");
  } else {
    hd_sbuf_puts(&body, "{\"message\":\"");
    hd_sbuf_json_escape(&body, message, strlen(message));
    if (code) hd_sbuf_printf(&body, "\",\"data\":{\"code\":%d}}", code);
    else hd_sbuf_puts(&body, "\"}");
  }
  if (body.ptr) send_packet(c, HD_SIO_CONNECT_ERROR, nsp, HD_SIO_NO_ACK, 0, body.ptr, body.len);
  hd_sbuf_free(&body);
}

/* Tries to restore a dropped socket's id, rooms and missed packets; true when done. */
static bool recover(hd_sio_server_t *sio, hd_sio_socket_t *s, json_t *auth) {
  json_t *pid = json_object_get(auth, "pid"), *offset = json_object_get(auth, "offset");
  if (!sio->opt.recovery || !json_is_string(pid)) return false;
  hd_recovery_session_t rs;
  hd_hub_msg_t **missed;
  size_t n_missed;
  if (!hd_recovery_take(sio->opt.recovery, sio->hub, s->nsp->name, json_string_value(pid), s->claims ? s->claims->sub : "",
                        json_is_string(offset) ? json_string_value(offset) : NULL, &rs, &missed, &n_missed))
    return false;
  set_id(s, rs.id);
  memcpy(s->pid, rs.pid, sizeof s->pid);
  for (char **r = rs.rooms; r && *r; r++) rejoin(s, *r);
  own_room_enter(s); /* also when it had left it, as socket.io's _onconnect joins its id */
  s->connected = true;
  /* CONNECT reply, then what was missed, in order; their live copies still queued are skipped */
  char body[256];
  int len = snprintf(body, sizeof body, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid);
  send_packet(s->client, HD_SIO_CONNECT, s->nsp->name, HD_SIO_NO_ACK, 0, body, (size_t)len);
  hd_eio_flush(s->client->eio); /* the CONNECT answer in a write of its own, as Node's server */
  for (size_t i = 0; i < n_missed; i++) {
    deliver(&s->member, missed[i]);
    s->floor_id = missed[i]->id;
    hd_hub_msg_unref(missed[i]);
  }
  free(missed);
  s->member.last_msg_id = 0;
  hd_recovery_session_clear(&rs);
  return true;
}

static void connect_fresh(hd_sio_socket_t *s);
static void announce(hd_sio_socket_t *s, json_t *auth, bool recovered);
static bool cluster_recover_start(hd_sio_server_t *sio, hd_sio_socket_t *s, json_t *auth);

static void admitted(hd_sio_socket_t *s, json_t *auth);

static void on_connect_packet(client_t *c, hd_sio_packet_t *p) {
  hd_sio_server_t *sio = c->sio;
  char *q = strchr(p->nsp, '?'); /* v3 clients append the query to the namespace */
  if (q) *q = '\0';
  nsp_t *n = find_nsp(sio, p->nsp, strlen(p->nsp));
  if (!n) return connect_error(c, p->nsp, "Invalid namespace", 0);
  int idx = (int)(n - sio->nsps);
  if (!c->sockets && sio->nsp_count == 1) c->sockets = &c->one_socket;
  if (!c->sockets && !(c->sockets = calloc((size_t)sio->nsp_count, sizeof(*c->sockets)))) return;
  if (c->sockets[idx]) return; /* already connected: ignore, as Socket.IO does */
  hd_sio_socket_t *s = calloc(1, sizeof(*s));
  if (!s) return;
  hd_hub_member_init(&s->member, &member_ops);
  s->id = s->id_inline;
  s->client = c;
  s->nsp = n;

  const char *why = "authentication failed";
  json_t *auth = json_is_object(p->data) ? p->data : NULL;
  if (n->admit) { /* the namespace decides, maybe later (hd_sio_admission_done) */
    hd_sio_admission_t *a = calloc(1, sizeof(*a));
    if (!a) {
      socket_free(s);
      return;
    }
    a->socket = s;
    a->auth = json_incref(auth);
    hd_eio_session_peer(c->eio, a->address, sizeof a->address);
    s->admission = a;
    c->sockets[idx] = s; /* a second CONNECT meanwhile is ignored */
    n->admit(a, auth, n->admit_arg);
    return;
  }
  int rc = authenticate(sio, c, auth, s, &why);
  if (!rc && s->claims && sio->opt.admit) {
    if ((rc = sio->opt.admit(sio->opt.admit_arg, s->claims, &why))) {
      connect_error(c, n->name, why, 429);
      socket_free(s);
      return;
    }
    s->admitted = true;
  }
  if (rc) {
    connect_error(c, n->name, why, 1001);
    socket_free(s);
    return;
  }
  c->sockets[idx] = s;
  admitted(s, auth);
}

/* Goes on with an authenticated CONNECT: recovery (here or across nodes) or a fresh session. */
static void admitted(hd_sio_socket_t *s, json_t *auth) {
  client_t *c = s->client;
  hd_sio_server_t *sio = c->sio;
  waiting_remove(c);
  if (cluster_recover_start(sio, s, auth)) return; /* answered once Redis has */
  sio->sockets++;
  s->nsp->sockets++;
  bool recovered = recover(sio, s, auth);
  if (!recovered) connect_fresh(s);
  announce(s, auth, recovered);
}

/* A new session for s: its ids, its own room and the namespace's, the CONNECT answer. */
static void connect_fresh(hd_sio_socket_t *s) {
  client_t *c = s->client;
  hd_sio_server_t *sio = c->sio;
  nsp_t *n = s->nsp;
  bool root = !strcmp(n->name, "/");
  /* v3: as socket.io 2.x clients compute it (sid, or nsp#sid) when it fits, else a random id */
  char id[SOCKET_ID_MAX];
  if (hd_eio_session_version(c->eio) != 3 ||
      snprintf(id, sizeof id, "%s%s%s", root ? "" : n->name, root ? "" : "#", hd_eio_session_id(c->eio)) >= (int)sizeof id)
    random_id(id);
  set_id(s, id);
  random_id(s->pid);
  own_room_enter(s);
  hd_hub_join(sio->hub, &s->member, n->all_room, strlen(n->all_room));
  s->connected = true;
  char body[256];
  int len = 0;
  if (hd_eio_session_version(c->eio) == 4) {
    len = sio->opt.recovery ? snprintf(body, sizeof body, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid)
                            : snprintf(body, sizeof body, "{\"sid\":\"%s\"}", s->id);
  }
  send_packet(c, HD_SIO_CONNECT, n->name, HD_SIO_NO_ACK, 0, len ? body : NULL, (size_t)len);
  hd_eio_flush(c->eio); /* in a write of its own: what the connect handlers emit comes in a later read */
}

/* Tells the namespace's connect listeners of s (connected, recovered or not). */
static void announce(hd_sio_socket_t *s, json_t *auth, bool recovered) {
  nsp_t *n = s->nsp;
  expiring_add(s);
  HD_DEBUG("sio", "socket connected", "nsp=%s id=%s sub=%s recovered=%d", n->name, s->id, s->claims ? s->claims->sub : "-", recovered);
  hd_sio_server_t *sio = s->client->sio;
  pin(s);
  if (sio->monitor) sio->monitor->on_connect(s, sio->monitor_arg); /* first, as admin-ui's prependListener */
  for (int i = 0; s->connected && i < n->connect_count; i++) n->on_connect[i].fn(s, auth, n->on_connect[i].udata);
  unpin(s);
}

/* --- recovery across nodes (clustered: delivery/recovery.h, cluster/redis_recovery.h) --------
 * The CONNECT of a client that names {pid, offset} waits for Redis, bounded by
 * HD_RECOVERY_CLUSTER_TIMEOUT_MS: (1) its session is taken (GETDEL); the socket gets its id back and
 * joins its rooms, and what reaches it from then on is held; (2) the packets after its offset are
 * read; the CONNECT answer goes out, then those packets, then what was held minus what the packets
 * already carried (by offset). Any failure (no session, another identity, offset gone, Redis down,
 * timeout) makes it a new session, as socket.io does: `recovered` false. */

static void restore_release(restore_t *r) {
  if (--r->refs) return;
  drop_held(r);
  json_decref(r->auth);
  hd_recovery_session_clear(&r->session);
  free(r);
}

static void on_restore_timer_closed(uv_handle_t *h) { restore_release(h->data); }

/* Settles r: the socket no longer waits for it (its timer goes; a late answer is dropped). */
static void restore_detach(restore_t *r) {
  if (!r->socket) return;
  drop_held(r);
  r->socket->restore = NULL;
  r->socket = NULL;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, on_restore_timer_closed);
}

/* Not recoverable after all: a new session (rooms joined for the recovery left, what was held dropped). */
static void restore_fail(restore_t *r, const char *why) {
  hd_sio_socket_t *s = r->socket;
  hd_sio_server_t *sio = r->sio;
  json_t *auth = json_incref(r->auth);
  restore_detach(r);
  hd_hub_leave_all(sio->hub, &s->member);
  own_room_leave(s);
  HD_DEBUG("sio", "not recovered", "nsp=%s why=\"%s\"", s->nsp->name, why);
  sio->sockets++;
  s->nsp->sockets++;
  connect_fresh(s);
  announce(s, auth, false);
  json_decref(auth);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Recovered: CONNECT, the missed packets of its rooms in order, then what was held that they did not carry. */
static void restore_succeed(restore_t *r, hd_hub_msg_t **msgs, size_t n) {
  hd_sio_socket_t *s = r->socket;
  hd_sio_server_t *sio = r->sio;
  json_t *auth = json_incref(r->auth);
  char **rooms = r->session.rooms;
  r->session.rooms = NULL;
  hd_hub_msg_t **held = r->held;
  uint32_t n_held = r->n_held;
  r->held = NULL;
  r->n_held = r->held_cap = 0;
  restore_detach(r);
  s->connected = true;
  sio->sockets++;
  s->nsp->sockets++;
  char body[256];
  int len = snprintf(body, sizeof body, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid);
  send_packet(s->client, HD_SIO_CONNECT, s->nsp->name, HD_SIO_NO_ACK, 0, body, (size_t)len);
  hd_eio_flush(s->client->eio); /* the CONNECT answer in a write of its own, as Node's server */
  uint64_t *sent = n ? malloc(n * sizeof(*sent)) : NULL;
  size_t n_sent = 0;
  for (size_t i = 0; i < n; i++) {
    if (s->connected && hd_recovery_reaches(msgs[i], rooms)) send_to(s, msgs[i]);
    if (sent) sent[n_sent++] = msgs[i]->cluster_offset;
    hd_hub_msg_unref(msgs[i]);
  }
  free(msgs);
  if (sent) qsort(sent, n_sent, sizeof(*sent), cmp_u64);
  for (uint32_t i = 0; i < n_held; i++) {
    uint64_t off = held[i]->cluster_offset;
    bool dup = off && n_sent && bsearch(&off, sent, n_sent, sizeof(*sent), cmp_u64);
    if (s->connected && !dup) send_to(s, held[i]);
    hd_hub_msg_unref(held[i]);
  }
  free(held);
  free(sent);
  for (char **p = rooms; p && *p; p++) free(*p);
  free(rooms);
  announce(s, auth, true);
  json_decref(auth);
}

static void on_missed(void *arg, int status, hd_hub_msg_t **msgs, size_t n) {
  restore_t *r = arg;
  if (!r->socket || status || r->held_cap == UINT32_MAX) {
    for (size_t i = 0; i < n; i++) hd_hub_msg_unref(msgs[i]);
    free(msgs);
    if (r->socket) restore_fail(r, status == HD_ENOTFOUND ? "offset no longer kept" : status ? hd_strerror(status) : "too much held");
  } else {
    restore_succeed(r, msgs, n);
  }
  restore_release(r);
}

static void on_session(void *arg, int status, hd_recovery_session_t *rs) {
  restore_t *r = arg;
  hd_sio_socket_t *s = r->socket;
  if (!s) return restore_release(r);
  hd_sio_server_t *sio = r->sio;
  const char *sub = s->claims ? s->claims->sub : "";
  if (status || strcmp(rs->sub, sub) || strcmp(rs->nsp, s->nsp->name)) { /* no taking over another identity */
    restore_fail(r, status == HD_ENOTFOUND ? "no such session" : status ? hd_strerror(status) : "another identity");
    return restore_release(r);
  }
  set_id(s, rs->id);
  memcpy(s->pid, rs->pid, sizeof s->pid);
  r->session = *rs;
  rs->rooms = NULL;
  for (char **p = r->session.rooms; p && *p; p++) rejoin(s, *p);
  own_room_enter(s); /* also when it had left it, as socket.io's _onconnect joins its id */
  r->refs++; /* now awaiting the missed packets */
  hd_recovery_cluster_t *cl = hd_recovery_cluster(sio->opt.recovery);
  int rc = cl->missed(cl, sio->hub, s->nsp->name, r->offset, hd_hub_mailbox(sio->hub), on_missed, r);
  if (rc) {
    r->refs--;
    restore_fail(r, hd_strerror(rc));
  }
  restore_release(r);
}

static void on_restore_timeout(uv_timer_t *t) {
  restore_t *r = t->data;
  if (r->socket) restore_fail(r, "redis did not answer in time");
}

/* Starts a clustered recovery when the CONNECT names a pid and an offset; true when started (the
 * CONNECT is answered later). */
static bool cluster_recover_start(hd_sio_server_t *sio, hd_sio_socket_t *s, json_t *auth) {
  hd_recovery_cluster_t *cl = hd_recovery_cluster(sio->opt.recovery);
  const char *pid = json_string_value(json_object_get(auth, "pid"));
  const char *offset = json_string_value(json_object_get(auth, "offset"));
  if (!cl || !pid || !offset || !*offset || strlen(offset) > 20 || strspn(offset, "0123456789") != strlen(offset))
    return false;
  restore_t *r = calloc(1, sizeof(*r));
  if (!r) return false;
  r->socket = s;
  r->sio = sio;
  r->refs = 2;
  r->auth = json_incref(auth);
  r->offset = strtoull(offset, NULL, 10);
  uv_timer_init(sio->srv->loop, &r->timer);
  r->timer.data = r;
  s->restore = r;
  int rc = cl->take(cl, pid, hd_hub_mailbox(sio->hub), on_session, r);
  if (rc) {
    s->restore = NULL;
    r->socket = NULL;
    r->refs = 1;
    uv_close((uv_handle_t *)&r->timer, on_restore_timer_closed);
    return false;
  }
  uv_timer_start(&r->timer, on_restore_timeout, HD_RECOVERY_CLUSTER_TIMEOUT_MS, 0);
  return true;
}

static bool is_reserved(const char *event) {
  for (size_t i = 0; i < sizeof reserved_events / sizeof reserved_events[0]; i++)
    if (event[0] == reserved_events[i][0] && !strcmp(event, reserved_events[i])) return true;
  return false;
}

/* Counts an event a client sent in namespace n (its traffic slot found once). */
static void count_received(hd_sio_server_t *sio, nsp_t *n) {
  hd_traffic_t *t = hd_hub_traffic(sio->hub);
  if (!n->traffic_slot) n->traffic_slot = 1 + hd_traffic_slot(t, n->name, strlen(n->name));
  hd_traffic_received(t, HD_TRAFFIC_SOCKETIO, n->traffic_slot - 1);
}

/* Dispatches a complete EVENT / BINARY_EVENT. Returns HD_EPROTO for a reserved event name. The
 * handler's arguments are the packet's array once the name is taken off its front. */
static int on_event(hd_sio_socket_t *s, hd_sio_packet_t *p, hd_buf_t *const *att, size_t natt) {
  json_t *name = json_incref(json_array_get(p->data, 0)); /* kept while `event` points into it */
  char number[32];
  const char *event = json_string_value(name);
  if (json_is_integer(name)) { /* socket.io-parser allows numeric event names */
    snprintf(number, sizeof number, "%lld", (long long)json_integer_value(name));
    event = number;
  }
  if (!event || is_reserved(event)) {
    json_decref(name);
    return HD_EPROTO;
  }
  hd_sio_server_t *sio = s->client->sio;
  count_received(sio, s->nsp);
  if (sio->monitor && sio->monitor->on_event) {
    char *all = json_dumps(p->data, JSON_COMPACT);
    if (all) sio->monitor->on_event(s, all, true, sio->monitor_arg);
    free(all);
  }
  json_t *args = p->data;
  json_array_remove(args, 0);
  handler_t *h = s->nsp->handlers, *fallback = NULL;
  for (; h; h = h->next) {
    if (h->event[0] == event[0] && !strcmp(h->event, event)) break;
    if (h->event[0] == '*' && !h->event[1]) fallback = h;
  }
  if (!h) h = fallback;
  s->cur_att = att;
  s->cur_att_n = natt;
  pin(s);
  if (h) h->fn(s, event, args, p->ack_id, h->udata);
  if (unpin(s) && s->client && s->connected) s->cur_att = NULL, s->cur_att_n = 0;
  json_decref(name);
  return 0;
}

static int on_ack_packet(hd_sio_socket_t *s, hd_sio_packet_t *p, hd_buf_t *const *att, size_t natt) {
  for (pending_ack_t *a = s->acks; a; a = a->next)
    if (a->id == p->ack_id) {
      s->cur_att = att; /* a BINARY_ACK's attachments, for the answer's callback */
      s->cur_att_n = natt;
      pin(s);
      ack_finish(a, p->data);
      if (unpin(s) && s->client && s->connected) s->cur_att = NULL, s->cur_att_n = 0;
      return 0;
    }
  return 0; /* late or unknown acks are ignored, as Socket.IO does */
}

/* Handles a decoded packet whose attachments (if any) are complete. HD_EPROTO closes the client. */
static int dispatch(client_t *c, hd_sio_packet_t *p, hd_buf_t *const *att, size_t natt) {
  if (p->type == HD_SIO_CONNECT) {
    on_connect_packet(c, p);
    return 0;
  }
  nsp_t *n = find_nsp(c->sio, p->nsp, strlen(p->nsp));
  hd_sio_socket_t *s = n && c->sockets ? c->sockets[n - c->sio->nsps] : NULL;
  if (!s || !s->connected) return 0; /* not connected to that namespace: dropped, as Socket.IO does */
  bool expires = s->claims && s->claims->exp; /* the clock is read only for a token that expires */
  if (p->type != HD_SIO_DISCONNECT && expires && token_expired(s, hd_clock_wall_ms() / 1000)) return 0;
  switch (p->type) {
    case HD_SIO_DISCONNECT:
      socket_close(s, "client namespace disconnect", false);
      return 0;
    case HD_SIO_EVENT:
    case HD_SIO_BINARY_EVENT:
      return on_event(s, p, att, natt);
    case HD_SIO_ACK:
    case HD_SIO_BINARY_ACK:
      return on_ack_packet(s, p, att, natt);
    default: /* CONNECT_ERROR from a client */
      return HD_EPROTO;
  }
}

static void clear_pending(client_t *c) {
  pending_t *pd = c->pending;
  if (!pd) return;
  for (uint32_t i = 0; i < pd->received; i++) hd_buf_unref(pd->attachments[i]);
  hd_sio_packet_free(&pd->packet);
  free(pd);
  c->pending = NULL;
}



/* --- Engine.IO callbacks ------------------------------------------------------------------ */

#define HANDSHAKE_HEADERS_MAX 4096 /* header bytes kept per client for the Admin UI; the rest is left out */

/* The handshake as socket.io's socket.handshake shows it ({address, headers, query, issued, secure,
 * time, url, xdomain}), without credentials: no Authorization or Cookie header, no token parameter. */
static char *handshake_json(hd_eio_session_t *e, const hd_http_request_t *req) {
  char addr[64];
  hd_eio_session_peer(e, addr, sizeof addr);
  json_t *headers = json_object(), *query = json_object();
  size_t kept = 0;
  for (size_t i = 0; i < req->header_count; i++) {
    const hd_http_header_t *h = &req->headers[i];
    char name[64];
    if (h->name.len >= sizeof name || kept + h->name.len + h->value.len > HANDSHAKE_HEADERS_MAX) continue;
    for (size_t j = 0; j < h->name.len; j++) name[j] = (char)(h->name.ptr[j] >= 'A' && h->name.ptr[j] <= 'Z' ? h->name.ptr[j] + 32 : h->name.ptr[j]);
    name[h->name.len] = '\0';
    if (!strcmp(name, "authorization") || !strcmp(name, "cookie")) continue;
    json_t *v = json_stringn(h->value.ptr, h->value.len); /* NULL when not UTF-8 */
    json_object_set_new(headers, name, v ? v : json_string(""));
    kept += h->name.len + h->value.len;
  }
  for (const char *p = req->query.ptr, *end = p ? p + req->query.len : NULL; p && p < end;) {
    const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    char name[64], value[512];
    size_t nl = (size_t)((eq ? eq : stop) - p);
    if (nl && nl < sizeof name && json_object_size(query) < 32) {
      memcpy(name, p, nl);
      name[nl] = '\0';
      json_t *v = strcmp(name, "token") && hd_http_request_query(req, name, value, sizeof value) >= 0 ? json_string(value) : NULL;
      if (v) json_object_set_new(query, name, v);
    }
    p = stop + 1;
  }
  int64_t now = hd_clock_wall_ms();
  time_t secs = (time_t)(now / 1000);
  struct tm tm;
  char when[64];
  gmtime_r(&secs, &tm);
  strftime(when, sizeof when, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &tm);
  hd_slice_t origin = hd_http_request_header(req, "origin");
  json_t *h = json_pack("{s:s, s:o, s:o, s:I, s:b, s:s, s:s%, s:b}", "address", addr, "headers", headers, "query", query,
                        "issued", (json_int_t)now, "secure", false, "time", when, "url", req->target.ptr ? req->target.ptr : "",
                        req->target.len, "xdomain", origin.ptr != NULL);
  char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
  json_decref(h);
  return text;
}

static int eio_open(hd_eio_session_t *e, const hd_http_request_t *req, void *udata) {
  hd_sio_server_t *sio = udata;
  client_t *c = hd_eio_session_ext(e); /* in the session's allocation: an idle client is one block */
  c->sio = sio;
  c->eio = e;
  hd_eio_session_set_udata(e, c);
  sio->clients++;
  sio->opened++;
  if (sio->opt.keep_handshake) c->handshake = handshake_json(e, req);
  if (hd_eio_session_version(e) == 3) { /* v3: query parameters are the auth, "/" connects at once */
    c->query_auth = json_object();
    char token[4096];
    if (hd_http_request_query(req, "token", token, sizeof token) > 0)
      json_object_set_new(c->query_auth, "token", json_string(token));
    hd_sio_packet_t p = {.type = HD_SIO_CONNECT, .nsp = "/", .ack_id = HD_SIO_NO_ACK};
    on_connect_packet(c, &p);
  } else { /* the sweep closes it if no namespace is connected in time */
    c->connect_deadline_ms = uv_now(sio->srv->loop) + sio->opt.connect_timeout_ms;
    c->wait_next = sio->waiting;
    if (sio->waiting) sio->waiting->wait_prev = c;
    sio->waiting = c;
  }
  return 0;
}

static void eio_message(hd_eio_session_t *e, const uint8_t *data, size_t len, bool binary) {
  client_t *c = hd_eio_session_udata(e);
  if (!c) return;
  int rc = 0;
  if (binary) {
    pending_t *pd = c->pending;
    if (!pd) {
      rc = HD_EPROTO;
    } else {
      hd_buf_t *b = hd_buf_from(data, len);
      if (!b) rc = HD_ENOMEM;
      else pd->attachments[pd->received++] = b;
      if (!rc && pd->received == pd->packet.attachments) {
        c->pending = NULL; /* dispatch may close the client */
        rc = dispatch(c, &pd->packet, pd->attachments, pd->received);
        c->pending = pd;
        clear_pending(c);
      }
    }
  } else if (c->pending) {
    rc = HD_EPROTO; /* text while attachments are expected */
  } else {
    hd_sio_limits_t limits = {c->sio->opt.max_attachments, 127};
    hd_sio_packet_t p;
    rc = hd_sio_packet_decode((const char *)data, len, &limits, &p);
    if (!rc && p.attachments) {
      if (hd_sio_packet_check_placeholders(&p)) {
        hd_sio_packet_free(&p);
        rc = HD_EPROTO;
      } else if (!(c->pending = calloc(1, sizeof(pending_t) + p.attachments * sizeof(hd_buf_t *)))) {
        hd_sio_packet_free(&p);
        rc = HD_ENOMEM;
      } else {
        c->pending->packet = p;
      }
    } else if (!rc) {
      rc = dispatch(c, &p, NULL, 0);
      hd_sio_packet_free(&p);
    }
  }
  if (rc) {
    HD_DEBUG("sio", "malformed packet, closing", "sid=%s err=%s", hd_eio_session_id(e), hd_errname(rc));
    hd_eio_close(e, "parse error");
  }
}

static void eio_close(hd_eio_session_t *e, const char *reason) {
  client_t *c = hd_eio_session_udata(e);
  if (!c) return;
  for (int i = 0; c->sockets && i < c->sio->nsp_count; i++)
    if (c->sockets[i]) socket_close(c->sockets[i], reason, false);
  waiting_remove(c);
  clear_pending(c);
  json_decref(c->query_auth);
  free(c->handshake);
  c->sio->clients--;
  c->sio->closed++;
  hd_eio_session_set_udata(e, NULL);
  if (c->sockets != &c->one_socket) free(c->sockets);
  c->sockets = NULL; /* the client's memory goes with its session's */
}

/* Tells the monitor of each connected socket of the client that moved to WebSocket. */
static void eio_upgrade(hd_eio_session_t *e) {
  client_t *c = hd_eio_session_udata(e);
  hd_sio_server_t *sio = c ? c->sio : NULL;
  if (!sio || !sio->monitor || !sio->monitor->on_upgrade || !c->sockets) return;
  for (int i = 0; i < sio->nsp_count; i++)
    if (c->sockets[i] && c->sockets[i]->connected) sio->monitor->on_upgrade(c->sockets[i], sio->monitor_arg);
}

static const hd_eio_callbacks_t eio_callbacks = {eio_open, eio_message, eio_close, eio_upgrade};

/* --- public API --------------------------------------------------------------------------- */

hd_sio_server_t *hd_sio_server_new(hd_server_t *srv, hd_hub_t *hub, const hd_sio_options_t *opt) {
  hd_sio_server_t *sio = calloc(1, sizeof(*sio));
  if (!sio) return NULL;
  sio->srv = srv;
  sio->hub = hub;
  sio->opt = *opt;
  const char *path = opt->path;
  size_t plen = strnlen(path, sizeof sio->path - 1);
  memcpy(sio->path, path, plen);
  for (const char *p = opt->namespaces; *p && sio->nsp_count < MAX_NAMESPACES;) {
    size_t n = strcspn(p, ",");
    hd_slice_t name = hd_slice_trim((hd_slice_t){p, n});
    p += n + (p[n] == ',');
    if (!name.len) continue;
    if (name.ptr[0] != '/' || name.len >= sizeof sio->nsps[0].name || memchr(name.ptr, '?', name.len)) {
      HD_ERROR("sio", "invalid namespace (must start with /)", "namespace=\"%.*s\"", (int)name.len, name.ptr);
      free(sio);
      return NULL;
    }
    if (find_nsp(sio, name.ptr, name.len)) continue;
    nsp_t *ns = &sio->nsps[sio->nsp_count++];
    memcpy(ns->name, name.ptr, name.len);
    ns->all_room[0] = '\x1e'; /* a key no application room can take */
    memcpy(ns->all_room + 1, name.ptr, name.len);
  }
  if (!find_nsp(sio, "/", 1) && sio->nsp_count < MAX_NAMESPACES) {
    strcpy(sio->nsps[sio->nsp_count].name, "/");
    strcpy(sio->nsps[sio->nsp_count++].all_room, "\x1e/");
  }
  sio->root = find_nsp(sio, "/", 1);
  sio->enc_text = hd_hub_encoding_id(hub, "sio/text");
  sio->enc_ws = hd_hub_encoding_id(hub, "sio/ws");
  hd_eio_options_t eo = {sio->path, opt->ping_interval_ms, opt->ping_timeout_ms, opt->upgrade_timeout_ms,
                         opt->max_payload, opt->allow_eio3, "AAA", opt->eio_limits, sizeof(client_t)};
  if (opt->node_tag && strlen(opt->node_tag) == 3) memcpy(eo.node_tag, opt->node_tag, 3);
  sio->eio = hd_eio_server_new(srv, &eo, &eio_callbacks, sio);
  if (!sio->eio || sio->enc_text < 0 || sio->enc_ws < 0) {
    hd_eio_server_free(sio->eio);
    free(sio);
    return NULL;
  }
  hd_hub_set_own_rooms(hub, &own_rooms, sio);
  uv_timer_init(srv->loop, &sio->recovery_sweeper);
  sio->recovery_sweeper.data = sio;
  uint64_t period = opt->connect_timeout_ms < 4000 ? opt->connect_timeout_ms / 4 + 1 : 1000;
  uv_timer_start(&sio->recovery_sweeper, on_recovery_sweep, period, period);
  uv_unref((uv_handle_t *)&sio->recovery_sweeper);
  return sio;
}

int hd_sio_server_route(hd_sio_server_t *sio, hd_router_t *router) { return hd_eio_server_route(sio->eio, router); }

static void free_server(uv_handle_t *h) { free(h->data); }

void hd_sio_server_free(hd_sio_server_t *sio) {
  if (!sio) return;
  hd_eio_server_free(sio->eio);
  hd_hub_set_own_rooms(sio->hub, NULL, NULL);
  for (int i = 0; i < sio->nsp_count; i++) {
    nsp_t *n = &sio->nsps[i];
    hd_map_free(&n->own);
    for (handler_t *h = n->handlers, *next; h; h = next) {
      next = h->next;
      free(h);
    }
  }
  uv_close((uv_handle_t *)&sio->recovery_sweeper, free_server);
}

size_t hd_sio_socket_count(const hd_sio_server_t *sio) { return sio->sockets; }
size_t hd_sio_client_count(const hd_sio_server_t *sio) { return sio->clients; }

int hd_sio_on(hd_sio_server_t *sio, const char *nsp, const char *event, hd_sio_event_fn fn, void *udata) {
  nsp_t *n = find_nsp(sio, nsp, strlen(nsp));
  if (!n) return HD_ENOTFOUND;
  handler_t *h = malloc(sizeof(*h) + strlen(event) + 1);
  if (!h) return HD_ENOMEM;
  strcpy(h->event, event);
  h->fn = fn;
  h->udata = udata;
  h->next = n->handlers;
  n->handlers = h;
  return 0;
}

int hd_sio_on_connect(hd_sio_server_t *sio, const char *nsp, hd_sio_connect_fn fn, void *udata) {
  nsp_t *n = find_nsp(sio, nsp, strlen(nsp));
  if (!n) return HD_ENOTFOUND;
  if (n->connect_count == MAX_LIFECYCLE_HANDLERS) return HD_ERANGE;
  n->on_connect[n->connect_count].fn = fn;
  n->on_connect[n->connect_count++].udata = udata;
  return 0;
}

int hd_sio_on_disconnect(hd_sio_server_t *sio, const char *nsp, hd_sio_disconnect_fn fn, void *udata) {
  nsp_t *n = find_nsp(sio, nsp, strlen(nsp));
  if (!n) return HD_ENOTFOUND;
  if (n->disconnect_count == MAX_LIFECYCLE_HANDLERS) return HD_ERANGE;
  n->on_disconnect[n->disconnect_count].fn = fn;
  n->on_disconnect[n->disconnect_count++].udata = udata;
  return 0;
}

/* Room keys of a target (application names turned into the hub's). */
typedef struct {
  char keys[64][160], ekeys[16][160];
  const char *rk[64], *ek[16];
} keys_t;

/* The hub target of `to` (no rooms: every socket of the namespace), its keys in k; HD_EINVAL for an
 * unknown namespace, more than 64 rooms or 16 except rooms, or a name too long. */
static int hub_target(hd_sio_server_t *sio, const hd_sio_target_t *to, keys_t *k, hd_hub_target_t *out) {
  nsp_t *n = find_nsp(sio, to->nsp, strlen(to->nsp));
  size_t room_count = to->room_count;
  bool ok = n && room_count <= 64 && to->except_count <= 16;
  for (size_t i = 0; ok && i < room_count; i++) {
    ok = hd_sio_room_key(to->nsp, to->rooms[i], k->keys[i], sizeof k->keys[i]) >= 0;
    k->rk[i] = k->keys[i];
  }
  for (size_t i = 0; ok && i < to->except_count; i++) {
    ok = hd_sio_room_key(to->nsp, to->except[i], k->ekeys[i], sizeof k->ekeys[i]) >= 0;
    k->ek[i] = k->ekeys[i];
  }
  if (!ok) return HD_EINVAL;
  if (!room_count) k->rk[room_count++] = n->all_room;
  *out = (hd_hub_target_t){n->name, k->rk, room_count, k->ek, to->except_count, to->flags};
  return 0;
}

/* Broadcast with optional binary attachments (taken over by the message), with acks when acks. */
static int broadcast(hd_sio_server_t *sio, const hd_sio_target_t *to, hd_hub_member_t *skip, const char *event,
                     const char *args_json, hd_buf_t **att, uint32_t natt, hd_hub_acks_t *acks,
                     hd_hub_count_fn on_count, void *arg) {
  keys_t k;
  hd_hub_target_t target;
  if (hub_target(sio, to, &k, &target)) {
    for (uint32_t i = 0; i < natt; i++) hd_buf_unref(att[i]);
    free(att);
    return HD_EINVAL;
  }
  /* one room of "/" is also a JSON-protocol topic (docs/protocol.md): the message gets its sequence */
  if (!strcmp(target.nsp, "/") && target.room_count == 1 && target.rooms[0][0] != '\x1e' && !to->except_count && !skip &&
      !acks)
    target.flags |= HD_MSG_SEQUENCED;
  hd_hub_msg_t *msg = hd_hub_msg_new(sio->hub, &target, event, args_json, strlen(args_json), att, natt);
  if (!msg) return HD_ENOMEM;
  if (acks) hd_hub_msg_set_acks(msg, acks);
  int rc = hd_hub_publish(sio->hub, msg, skip, on_count, arg);
  hd_hub_msg_unref(msg);
  return rc;
}

int hd_sio_sockets_request(hd_sio_server_t *sio, const hd_sio_target_t *to, hd_hub_req_t req, const char *room) {
  keys_t k;
  hd_hub_target_t target;
  char key[300];
  if (hub_target(sio, to, &k, &target) || (room && hd_sio_room_key(to->nsp, room, key, sizeof key) < 0))
    return HD_EINVAL;
  return hd_hub_request(sio->hub, req, &target, room ? key : NULL);
}

int hd_sio_fetch_sockets(hd_sio_server_t *sio, const hd_sio_target_t *to, hd_hub_fetch_fn fn, void *arg) {
  keys_t k;
  hd_hub_target_t target;
  if (hub_target(sio, to, &k, &target)) return HD_EINVAL;
  return hd_hub_fetch(sio->hub, &target, fn, arg);
}

int hd_sio_broadcast(hd_sio_server_t *sio, const hd_sio_target_t *to, hd_sio_socket_t *skip, const char *event,
                     const char *args_json, hd_hub_count_fn on_count, void *arg) {
  return broadcast(sio, to, skip ? &skip->member : NULL, event, args_json, NULL, 0, NULL, on_count, arg);
}

int hd_sio_broadcast_acked(hd_sio_server_t *sio, const hd_sio_target_t *to, const char *event, const char *args_json,
                           hd_hub_acks_t *acks, hd_hub_count_fn on_count, void *arg) {
  return broadcast(sio, to, NULL, event, args_json, NULL, 0, acks, on_count, arg);
}

hd_hub_t *hd_sio_hub(const hd_sio_server_t *sio) { return sio->hub; }
uv_loop_t *hd_sio_loop(const hd_sio_server_t *sio) { return sio->srv->loop; }

/* A broadcast to the socket's own room, on its own shard: recorded, so it can be recovered. */
static int emit_recoverable(hd_sio_socket_t *s, const char *event, const char *args_json, hd_buf_t **att,
                            uint32_t natt) {
  const char *room = s->id;
  hd_sio_target_t to = {s->nsp->name, &room, 1, NULL, 0, HD_MSG_LOCAL}; /* its id may be a JSON topic elsewhere */
  return broadcast(s->client->sio, &to, NULL, event, args_json, att, natt, NULL, NULL, NULL);
}

/* Tells the monitor of an event emitted to s alone. */
static void tell_sent(hd_sio_socket_t *s, const char *event, const char *args_json) {
  hd_sio_server_t *sio = s->client->sio;
  if (!sio->monitor || !sio->monitor->on_event) return;
  json_t *all = json_loads(args_json, JSON_DECODE_ANY, NULL);
  char *text = NULL;
  if (json_is_array(all) && !json_array_insert_new(all, 0, json_string(event))) text = json_dumps(all, JSON_COMPACT);
  if (text) sio->monitor->on_event(s, text, false, sio->monitor_arg);
  free(text);
  json_decref(all);
}

int hd_sio_emit(hd_sio_socket_t *s, const char *event, const char *args_json) {
  if (!s->connected) return HD_ECLOSED;
  tell_sent(s, event, args_json);
  if (s->client->sio->opt.recovery) return emit_recoverable(s, event, args_json, NULL, 0);
  hd_sbuf_t text = {0};
  int rc = hd_sio_event_encode(&text, s->nsp->name, HD_SIO_NO_ACK, event, args_json, strlen(args_json));
  if (!rc) rc = hd_eio_send(s->client->eio, text.ptr, text.len, false);
  hd_sbuf_free(&text);
  return rc;
}

/* A pending ack of s with the next ack id, not yet waited for (ack_arm) nor listed. */
static pending_ack_t *ack_new(hd_sio_socket_t *s, hd_sio_ack_fn fn, void *arg) {
  pending_ack_t *a = calloc(1, sizeof(*a));
  if (!a) return NULL;
  a->socket = s;
  a->id = s->next_ack_id++;
  a->fn = fn;
  a->arg = arg;
  return a;
}

/* Waits for a's answer up to timeout_ms (a sent). */
static void ack_arm(pending_ack_t *a, uint64_t timeout_ms) {
  hd_sio_socket_t *s = a->socket;
  uv_timer_init(s->client->sio->srv->loop, &a->timer);
  a->timer.data = a;
  uv_timer_start(&a->timer, on_ack_timeout, timeout_ms, 0);
  a->next = s->acks;
  s->acks = a;
}

int hd_sio_emit_with_ack(hd_sio_socket_t *s, const char *event, const char *args_json, uint64_t timeout_ms,
                         hd_sio_ack_fn fn, void *arg) {
  if (!s->connected) return HD_ECLOSED;
  tell_sent(s, event, args_json);
  pending_ack_t *a = ack_new(s, fn, arg);
  if (!a) return HD_ENOMEM;
  hd_sbuf_t text = {0};
  int rc = hd_sio_event_encode(&text, s->nsp->name, a->id, event, args_json, strlen(args_json));
  if (!rc) rc = hd_eio_send(s->client->eio, text.ptr, text.len, false);
  hd_sbuf_free(&text);
  if (rc) {
    free(a);
    return rc;
  }
  ack_arm(a, timeout_ms);
  return 0;
}

/* Sends a BINARY_* packet carrying the current attachments. */
static int send_binary(hd_sio_socket_t *s, hd_sio_type_t type, int64_t ack_id, json_t *data) {
  char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!text) return HD_ENOMEM;
  int rc = send_packet(s->client, type, s->nsp->name, ack_id, (uint32_t)s->cur_att_n, text, strlen(text));
  free(text);
  for (size_t i = 0; !rc && i < s->cur_att_n; i++)
    rc = hd_eio_send(s->client->eio, s->cur_att[i]->data, s->cur_att[i]->len, true);
  return rc;
}

int hd_sio_emit_binary(hd_sio_socket_t *s, const char *event, json_t *args) {
  if (!s->connected) return HD_ECLOSED;
  hd_sio_server_t *sio = s->client->sio;
  if (s->cur_att_n && sio->opt.recovery) { /* through the socket's own room, recoverable */
    hd_buf_t **att = malloc(s->cur_att_n * sizeof(*att));
    char *text = json_dumps(args, JSON_COMPACT);
    if (!att || !text) {
      free(att);
      free(text);
      return HD_ENOMEM;
    }
    for (size_t i = 0; i < s->cur_att_n; i++) att[i] = hd_buf_ref(s->cur_att[i]);
    int rc = emit_recoverable(s, event, text, att, (uint32_t)s->cur_att_n);
    free(text);
    return rc;
  }
  json_t *data = json_array();
  json_array_append_new(data, json_string(event));
  json_array_extend(data, args);
  int rc = s->cur_att_n ? send_binary(s, HD_SIO_BINARY_EVENT, HD_SIO_NO_ACK, data) : HD_EINVAL;
  if (!s->cur_att_n) {
    char *text = json_dumps(args, JSON_COMPACT);
    rc = text ? hd_sio_emit(s, event, text) : HD_ENOMEM;
    free(text);
  }
  json_decref(data);
  return rc;
}

int hd_sio_ack(hd_sio_socket_t *s, int64_t ack_id, const char *args_json) {
  if (!s->connected || ack_id < 0) return HD_ECLOSED;
  return send_packet(s->client, HD_SIO_ACK, s->nsp->name, ack_id, 0, args_json, strlen(args_json));
}

/* The compact JSON text of the array a into out (cap bytes, not NUL-terminated): its length, more
 * than cap when it does not fit, 0 when a is not an array. Element by element: jansson's cycle check
 * (an address formatted and hashed per array) is then paid only for nested arrays and objects. */
static size_t dump_array(json_t *a, char *out, size_t cap) {
  if (!json_is_array(a) || cap < 2) return 0;
  size_t n = 1, count = json_array_size(a);
  out[0] = '[';
  for (size_t i = 0; i < count && n < cap; i++) {
    if (i) out[n++] = ',';
    size_t k = json_dumpb(json_array_get(a, i), out + n, cap - n, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!k) return 0;
    n += k;
  }
  if (n < cap) out[n] = ']';
  return n + 1;
}

int hd_sio_ack_binary(hd_sio_socket_t *s, int64_t ack_id, json_t *args) {
  if (!s->connected || ack_id < 0) return HD_ECLOSED;
  if (s->cur_att_n) return send_binary(s, HD_SIO_BINARY_ACK, ack_id, args);
  char small[SMALL_PACKET - HD_SIO_HEAD_MAX(127)];
  size_t n = dump_array(args, small, sizeof small);
  if (n && n <= sizeof small) return send_packet(s->client, HD_SIO_ACK, s->nsp->name, ack_id, 0, small, n);
  char *text = json_dumps(args, JSON_COMPACT);
  int rc = text ? hd_sio_ack(s, ack_id, text) : HD_ENOMEM;
  free(text);
  return rc;
}

int hd_sio_join(hd_sio_socket_t *s, const char *room) {
  char key[300];
  if (!s->client) return HD_ECLOSED; /* closed under a callback that still holds it */
  if (hd_sio_room_key(s->nsp->name, room, key, sizeof key) < 0) return HD_ETOOBIG;
  return room_change(s, key, true);
}

int hd_sio_leave(hd_sio_socket_t *s, const char *room) {
  char key[300];
  if (!s->client) return HD_ECLOSED;
  if (hd_sio_room_key(s->nsp->name, room, key, sizeof key) < 0) return HD_ETOOBIG;
  return room_change(s, key, false);
}

void hd_sio_set_monitor(hd_sio_server_t *sio, const hd_sio_monitor_t *m, void *arg) {
  sio->monitor = m;
  sio->monitor_arg = arg;
}

int hd_sio_set_admission(hd_sio_server_t *sio, const char *nsp, hd_sio_admit_fn fn, void *arg) {
  nsp_t *n = find_nsp(sio, nsp, strlen(nsp));
  if (!n) return HD_ENOTFOUND;
  n->admit = fn;
  n->admit_arg = arg;
  return 0;
}

void hd_sio_admission_done(hd_sio_admission_t *a, const hd_claims_t *claims, const char *why) {
  hd_sio_socket_t *s = a->socket;
  json_t *auth = a->auth;
  free(a);
  if (!s) return json_decref(auth); /* the client went meanwhile */
  s->admission = NULL;
  client_t *c = s->client;
  if (claims && (s->claims = malloc(sizeof(*s->claims)))) {
    *s->claims = *claims;
    admitted(s, auth);
  } else {
    connect_error(c, s->nsp->name, claims ? "out of memory" : why ? why : "authentication failed", 1001);
    c->sockets[nsp_index(s)] = NULL;
    socket_free(s);
  }
  json_decref(auth);
}

const char *hd_sio_admission_address(const hd_sio_admission_t *a) { return a->address; }

void hd_sio_socket_describe(hd_sio_socket_t *s, hd_sbuf_t *out) {
  if (s->client) describe(&s->member, out);
}

int hd_sio_namespace_count(const hd_sio_server_t *sio) { return sio->nsp_count; }
const char *hd_sio_namespace_name(const hd_sio_server_t *sio, int i) { return sio->nsps[i].name; }
size_t hd_sio_namespace_sockets(const hd_sio_server_t *sio, int i) { return sio->nsps[i].sockets; }

void hd_sio_client_totals(const hd_sio_server_t *sio, uint64_t *opened, uint64_t *closed) {
  *opened = sio->opened;
  *closed = sio->closed;
}

size_t hd_sio_polling_client_count(const hd_sio_server_t *sio) {
  size_t n = 0;
  for (int i = 0; i < sio->nsp_count; i++) { /* each client once: by its first connected socket */
    hd_hub_room_t *room = hd_hub_room(sio->hub, sio->nsps[i].all_room, strlen(sio->nsps[i].all_room));
    for (uint32_t j = 0; room && j < room->count; j++) {
      hd_sio_socket_t *s = (hd_sio_socket_t *)room->seats[j].member;
      client_t *c = s->client;
      int first = 0;
      while (first < sio->nsp_count && !(c->sockets[first] && c->sockets[first]->connected)) first++;
      if (first == i && !hd_eio_is_websocket(c->eio)) n++;
    }
  }
  return n;
}

void hd_sio_disconnect(hd_sio_socket_t *s, bool close_client) {
  client_t *c = s->client;
  if (!c) return; /* already closed, under a callback that still holds it */
  if (close_client) hd_eio_close(c->eio, "forced server close");
  else socket_close(s, "server namespace disconnect", true);
}

hd_sio_socket_t *hd_sio_socket_find(hd_sio_server_t *sio, const char *nsp, const char *id) {
  nsp_t *n = find_nsp(sio, nsp, strlen(nsp));
  hd_sio_socket_t *s = n ? hd_map_get(&n->own, id, strlen(id)) : NULL;
  return s && s->connected ? s : NULL;
}

const char *hd_sio_socket_id(const hd_sio_socket_t *s) { return s->id; }
const char *hd_sio_socket_nsp(const hd_sio_socket_t *s) { return s->nsp->name; }
const hd_claims_t *hd_sio_socket_claims(const hd_sio_socket_t *s) { return s->claims; }
void *hd_sio_socket_udata(const hd_sio_socket_t *s) { return s->udata; }
void hd_sio_socket_set_udata(hd_sio_socket_t *s, void *udata) { s->udata = udata; }

bool hd_sio_socket_inflight_take(hd_sio_socket_t *s, uint32_t limit) {
  if (s->inflight >= limit) return false;
  s->inflight++;
  return true;
}

void hd_sio_socket_inflight_done(hd_sio_socket_t *s) {
  if (s->inflight) s->inflight--;
}

hd_buf_t *const *hd_sio_attachments(const hd_sio_socket_t *s, size_t *n) {
  *n = s->cur_att_n;
  return s->cur_att;
}
