/* The Herald JSON protocol (see json_proto.h and PROTOCOL.md). */
#include "proto/json_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/map.h"
#include "core/rate.h"
#include "delivery/acks.h"
#include "delivery/dedupe.h"
#include "delivery/topic_log.h"
#include "proto/json_answers.h"
#include "proto/json_clients.h"
#include "net/http_conn.h"
#include "net/ws_conn.h"
#include "proto/envelope.h"

#define PROTOCOL_VERSION "1.0"
#define SWEEP_MS 250
#define PARAMS_SEPARATOR "\x1f" /* room key = topic + this + params: no topic name contains it */
#define INBOX_IDS 256 /* inbox deliveries remembered per connection, so a history replay does not repeat them */
#define MAX_UNACKED 1000 /* per connection; beyond it the oldest are left to the inbox */
#define HELD_MAX (1 << 20) /* bytes of frames held per connection while a subscribe waits for its replay */
#define ANSWERS_MAX (1 << 20)  /* bytes of answers waiting per connection behind a publish being delivered */
#define PUBLISHES_MAX 1024     /* a connection's publishes waiting for their delivery count */
#define HELD_CHARGED 0x80      /* on a held frame's opcode: its rate token is taken already */
#define LIVE_MAX 10000 /* live messages held per connection while a subscribe waits for its replay */

enum {
  E_CONNECT = 1000, E_AUTH = 1001, E_PROTOCOL = 1002, E_INVALID = 2000, E_TOO_LARGE = 2001, E_RATE = 2002,
  E_SUBSCRIBE = 3000, E_DENIED = 3001, E_OPERATION = 3002,
};

typedef struct jconn {
  hd_hub_member_t member; /* first: the hub hands it back to deliver() */
  hd_jp_server_t *jp;
  hd_conn_t *conn;
  struct jconn *prev, *next;
  hd_claims_t claims;
  char client_id[72];
  char key[208];          /* sub + 0x1f + clientId: a second connection with it replaces this one */
  uint64_t gen;           /* node-wide number of this connection of the key (json_clients.h) */
  hd_acks_t acks;         /* notifications waiting for their ack */
  hd_dedupe_client_t *dd; /* the client's processed messageIds */
  bool refused;           /* the frame being handled was answered with an error */
  struct floor {          /* after a subscribe: live copies of what came before its answer (replayed or
                           * older than the subscription), still queued, are skipped */
    char *topic;
    char *key;            /* the room subscribed to */
    uint64_t seq;
  } *floors;
  uint32_t floor_count;
  struct {                /* the subscribe waiting for the topic log (one at a time: frames are held) */
    char *topic;          /* NULL: none */
    hd_hub_msg_t **live;  /* what reached the connection in that topic meanwhile, in order */
    uint32_t count, cap;
    bool overflow;
  } sub;
  hd_rate_t rate;
  hd_answers_t answers;   /* answers in frame order: a publish's waits for its count from every shard */
  uint32_t subscribing;   /* a subscribe waiting for the topic log: the frames that come meanwhile are held */
  hd_sbuf_t held;         /* frames that came meanwhile (opcode, length, bytes): handled in order */
  bool held_for_answers;  /* a subscribe is held until the answers before it are sent */
  bool in_held;           /* handle_held is on the stack */
  bool inbox_taking;      /* a page of the inbox is being read */
  char (*inbox_ids)[40];  /* ids last delivered from the inbox (a ring of INBOX_IDS, made at the first):
                           * a replay from the topic history skips them */
  uint32_t inbox_ids_next;
  bool inbox_more;        /* the last page was full: more may wait, taken once the acks are in */
} jconn_t;

/* What the route handler learned before the upgrade, for on_open. */
typedef struct {
  hd_jp_server_t *jp;
  int error;          /* 0, E_AUTH, E_PROTOCOL or E_INVALID (clientId) */
  const char *why;
  hd_claims_t claims;
  char client_id[72];
} pending_t;

struct hd_jp_server {
  hd_server_t *srv;
  hd_hub_t *hub;
  hd_jp_options_t opt;
  hd_acks_limits_t acks_limits;        /* of every connection's tracker */
  int enc;                             /* hub encoding slot of the envelope frame */
  uint32_t traffic_slot;               /* 1 + the traffic counters' slot of "/", 0 until the first frame */
  jconn_t *conns;
  size_t count;
  hd_map_t by_key;                     /* jconn key -> jconn (this shard's) */
  uint32_t sweeps;
  uv_timer_t sweeper;
};

static void inbox_taken(void *arg, int status, const hd_jp_inbox_item_t *items, size_t n);

/* --- frames ------------------------------------------------------------------------------- */

static void message_id(char out[40]) {
  out[0] = 's';
  hd_id_random(out + 1, 21);
}

/* Builds a server frame (not shared) into b. 0 or HD_E*. */
static int build_frame(hd_sbuf_t *b, const char *type, const char *data_json) {
  char id[40];
  message_id(id);
  return hd_envelope_encode(b, type, data_json, hd_clock_wall_ms(), id, 0, NULL, NULL);
}

/* Sends a server frame built on the spot, at once. */
static int send_frame(jconn_t *j, const char *type, const char *data_json) {
  hd_sbuf_t b = {0};
  int rc = build_frame(&b, type, data_json);
  if (!rc) rc = hd_ws_send(j->conn, HD_WS_OP_TEXT, b.ptr, b.len);
  hd_sbuf_free(&b);
  return rc;
}

/* Answers a client frame: sent after the answers to the frames before it. */
static int answer(jconn_t *j, const char *type, const char *data_json) {
  hd_sbuf_t b = {0};
  int rc = build_frame(&b, type, data_json);
  if (!rc) rc = hd_answers_send(&j->answers, j->conn, b.ptr, b.len);
  hd_sbuf_free(&b);
  return rc;
}

/* The data of an `error` frame into d. */
static void error_data(hd_sbuf_t *d, int code, const char *message, const char *ref_id) {
  hd_sbuf_printf(d, "{\"code\":%d,\"message\":\"", code);
  hd_sbuf_json_escape(d, message, strlen(message));
  hd_sbuf_puts(d, "\"");
  if (ref_id) {
    hd_sbuf_puts(d, ",\"details\":{\"messageId\":\"");
    hd_sbuf_json_escape(d, ref_id, strlen(ref_id));
    hd_sbuf_puts(d, "\"}");
  }
  hd_sbuf_puts(d, "}");
}

static void send_error_conn(hd_conn_t *c, int code, const char *message, const char *ref_id) {
  hd_sbuf_t d = {0};
  error_data(&d, code, message, ref_id);
  char id[40];
  message_id(id);
  hd_sbuf_t b = {0};
  if (d.ptr && !hd_envelope_encode(&b, "error", d.ptr, hd_clock_wall_ms(), id, 0, NULL, NULL))
    hd_ws_send(c, HD_WS_OP_TEXT, b.ptr, b.len);
  hd_sbuf_free(&b);
  hd_sbuf_free(&d);
}

/* Answers a client frame with an error. */
static void send_error(jconn_t *j, int code, const char *message, const char *ref_id) {
  j->refused = true;
  hd_sbuf_t d = {0};
  error_data(&d, code, message, ref_id);
  if (d.ptr) answer(j, "error", d.ptr);
  hd_sbuf_free(&d);
}

/* Sends `disconnect {reason}` and closes with code. */
static void say_goodbye(jconn_t *j, const char *reason, uint16_t code) {
  char data[96];
  snprintf(data, sizeof data, "{\"reason\":\"%s\"}", reason);
  send_frame(j, "disconnect", data);
  hd_ws_close(j->conn, code, reason);
}

/* The shared frame of a published message: the envelope with sequence, topic and params. */
static hd_buf_t *encode_message(const hd_hub_msg_t *msg, void *arg) {
  const char *data = msg->args;
  char *unwrapped = NULL;
  if (msg->single_arg) { /* "[" value "]": the value is the data */
    unwrapped = strndup(msg->args + 1, msg->args_len - 2);
  } else { /* a Socket.IO broadcast: one argument is the data, several are an array */
    json_t *args = json_loadb(msg->args, msg->args_len, 0, NULL);
    if (json_array_size(args) == 1) unwrapped = json_dumps(json_array_get(args, 0), JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(args);
  }
  if (unwrapped) data = unwrapped;
  /* a topic publish names its topic even without a sequence (a cluster whose Redis is down) */
  const char *topic = (msg->seq || msg->single_arg) && msg->room_count ? msg->rooms[0] : NULL;
  const char *params = topic && msg->room_count > 1 ? msg->rooms[1] + strlen(topic) + 1 : NULL;
  hd_sbuf_t b = {0};
  hd_buf_t *frame = NULL;
  if (!hd_envelope_encode(&b, msg->type ? msg->type : msg->event, data, msg->timestamp, msg->message_id, msg->seq,
                          topic, params))
    frame = hd_ws_frame_new(HD_WS_OP_TEXT, b.ptr, b.len);
  hd_sbuf_free(&b);
  free(unwrapped);
  return frame;
}

/* --- acknowledgements --------------------------------------------------------------------- */

/* A notification waits for its ack: durable in the inbox from its delivery until then. */
static void track(jconn_t *j, hd_hub_msg_t *msg) {
  hd_jp_server_t *jp = j->jp;
  const hd_jp_inbox_t *in = &jp->opt.inbox;
  if (in->put) {
    hd_buf_t *frame = hd_hub_msg_encoded(jp->hub, msg, jp->enc, encode_message, NULL);
    hd_slice_t text = frame ? hd_ws_frame_payload(frame) : (hd_slice_t){0};
    if (text.ptr) in->put(in->arg, j->claims.sub, msg->message_id, text.ptr, text.len);
  }
  hd_acks_track(&j->acks, msg->message_id, hd_hub_msg_ref(msg), uv_now(jp->srv->loop));
}

static void send_message(jconn_t *j, hd_hub_msg_t *msg) {
  hd_buf_t *frame = hd_hub_msg_encoded(j->jp->hub, msg, j->jp->enc, encode_message, NULL);
  if (frame) hd_ws_send_frame(j->conn, frame);
  /* a notification is tracked even when the connection is closing: it then goes to the inbox */
  if (!strcmp(msg->type ? msg->type : msg->event, "notification")) track(j, msg);
}

/* True when msg is a live copy of a message that came before a subscribe's answer, in the room
 * subscribed to (and forgets floors passed). */
static bool replayed(jconn_t *j, const hd_hub_msg_t *msg) {
  for (uint32_t i = 0; msg->seq && i < j->floor_count; i++) {
    struct floor *f = &j->floors[i];
    if (strcmp(f->topic, msg->rooms[0])) continue;
    if (msg->seq <= f->seq) return hd_hub_msg_targets(msg, f->key);
    free(f->topic); /* messages of this topic come in order: nothing older follows */
    free(f->key);
    *f = j->floors[--j->floor_count];
    return false;
  }
  return false;
}

/* Forgets the floor of the room key (unsubscribed, or replaced by a newer one). */
static void floor_drop(jconn_t *j, const char *key) {
  for (uint32_t i = 0; i < j->floor_count; i++)
    if (!strcmp(j->floors[i].key, key)) {
      free(j->floors[i].topic);
      free(j->floors[i].key);
      j->floors[i] = j->floors[--j->floor_count];
      return;
    }
}

/* Sets the floor of the room key (one per subscription at most). */
static void floor_set(jconn_t *j, const char *topic, const char *key, uint64_t seq) {
  floor_drop(j, key);
  struct floor *f = realloc(j->floors, (j->floor_count + 1) * sizeof(*f));
  if (!f) return;
  j->floors = f;
  f += j->floor_count;
  f->topic = strdup(topic);
  f->key = strdup(key);
  f->seq = seq;
  if (f->topic && f->key) j->floor_count++;
  else free(f->topic), free(f->key);
}

static void sub_clear(jconn_t *j) {
  for (uint32_t i = 0; i < j->sub.count; i++) hd_hub_msg_unref(j->sub.live[i]);
  free(j->sub.live);
  free(j->sub.topic);
  memset(&j->sub, 0, sizeof j->sub);
}

/* Holds a live message of the topic whose subscribe waits for its replay; false when it is not one. */
static bool hold_live(jconn_t *j, hd_hub_msg_t *msg) {
  if (!j->sub.topic || !msg->room_count || strcmp(j->sub.topic, msg->rooms[0])) return false;
  if (j->sub.count == j->sub.cap) {
    uint32_t cap = j->sub.cap ? j->sub.cap * 2 : 8;
    hd_hub_msg_t **live = cap <= LIVE_MAX ? realloc(j->sub.live, cap * sizeof(*live)) : NULL;
    if (!live) {
      j->sub.overflow = true;
      return true;
    }
    j->sub.live = live;
    j->sub.cap = cap;
  }
  j->sub.live[j->sub.count++] = hd_hub_msg_ref(msg);
  return true;
}

/* Hub delivery to one connection. */
static void deliver(hd_hub_member_t *m, hd_hub_msg_t *msg) {
  jconn_t *j = (jconn_t *)m;
  if (!replayed(j, msg) && !hold_live(j, msg)) send_message(j, msg);
}

static const hd_hub_member_ops_t member_ops = {.deliver = deliver, .protocol = HD_TRAFFIC_JSON};

/* Reads the next page of the user's inbox (inbox_taken sends it). The first page is read at the
 * connection's start with its reading paused, so the client's frames are answered after it. */
static void inbox_next_page(jconn_t *j, bool first) {
  const hd_jp_inbox_t *in = &j->jp->opt.inbox;
  if (!in->take || j->inbox_taking) return;
  hd_conn_t *c = j->conn;
  hd_conn_retain(c);
  if (first) hd_conn_set_reading(c, false);
  j->inbox_taking = true;
  j->inbox_more = false;
  size_t page = j->jp->opt.inbox_page ? j->jp->opt.inbox_page : 100;
  if (in->take(in->arg, j->claims.sub, page, inbox_taken, c)) {
    j->inbox_taking = false;
    hd_conn_set_reading(c, true);
    hd_conn_release(c);
  }
}

/* Paging: once everything sent is acknowledged (or given up), the next page, if there may be one. */
static void inbox_maybe_next(jconn_t *j) {
  if (j->inbox_more && !j->inbox_taking && !j->acks.count && !hd_conn_is_ending(j->conn)) inbox_next_page(j, false);
}

static void acknowledge(jconn_t *j, const char *id) {
  const hd_jp_inbox_t *in = &j->jp->opt.inbox;
  if (in->remove) in->remove(in->arg, j->claims.sub, id);
  hd_acks_ack(&j->acks, id);
  inbox_maybe_next(j);
}

/* --- client frames ------------------------------------------------------------------------ */

static void send_ack(jconn_t *j, const char *ref_id, const char *extra_json) {
  hd_sbuf_t d = {0};
  hd_sbuf_puts(&d, "{\"messageId\":\"");
  hd_sbuf_json_escape(&d, ref_id ? ref_id : "", ref_id ? strlen(ref_id) : 0);
  hd_sbuf_puts(&d, "\"");
  if (extra_json) hd_sbuf_printf(&d, ",%s", extra_json);
  hd_sbuf_puts(&d, "}");
  if (d.ptr) answer(j, "ack", d.ptr);
  hd_sbuf_free(&d);
}

typedef struct {
  const char *topic;
  hd_sbuf_t key;    /* room key: topic, or topic?params */
  json_t *params;
} topic_ref_t;

/* Reads {topic, params?} from data into ref; sends the error itself and returns non-zero on failure. */
static int read_topic(jconn_t *j, const hd_envelope_t *e, topic_ref_t *ref) {
  json_t *topic = json_object_get(e->data, "topic");
  memset(ref, 0, sizeof(*ref));
  if (!json_is_object(e->data) || !json_is_string(topic)) {
    send_error(j, E_INVALID, "`data.topic` must be a string", e->message_id);
    return -1;
  }
  ref->topic = json_string_value(topic);
  if (!hd_topic_valid(ref->topic)) {
    send_error(j, E_SUBSCRIBE, "unknown topic: 1 to 200 printable characters", e->message_id);
    return -1;
  }
  ref->params = json_object_get(e->data, "params");
  hd_sbuf_puts(&ref->key, ref->topic);
  if (ref->params && json_object_size(ref->params)) hd_sbuf_puts(&ref->key, PARAMS_SEPARATOR);
  if (hd_params_key(ref->params, &ref->key) || !ref->key.ptr) {
    hd_sbuf_free(&ref->key);
    send_error(j, E_INVALID, "`data.params` must be a flat object of strings and numbers", e->message_id);
    return -1;
  }
  return 0;
}

static void handle_held(jconn_t *j);

/* True when id was delivered to j from the inbox lately (a notification kept for an offline user is
 * also in its topic's history). */
static bool from_inbox(const jconn_t *j, const char *id) {
  for (uint32_t i = 0; j->inbox_ids && i < INBOX_IDS; i++)
    if (!strcmp(j->inbox_ids[i], id)) return true;
  return false;
}

/* A subscribe waiting for the topic log; owns its strings. */
typedef struct {
  hd_conn_t *conn;        /* held until the answer */
  char *ref_id;           /* the client's messageId */
  char *topic, *key;
  char *params;           /* JSON text of the params, or NULL */
  bool replay;            /* lastSequence was given */
  uint64_t after;
} sub_wait_t;

static void sub_wait_free(sub_wait_t *w) {
  free(w->ref_id);
  free(w->topic);
  free(w->key);
  free(w->params);
  free(w);
}

/* The topic log answered: the ack, the replay, then what came live meanwhile and was not in it. */
static void subscribed(void *arg, const hd_topic_read_t *res) {
  sub_wait_t *w = arg;
  jconn_t *j = hd_conn_is_closing(w->conn) ? NULL : hd_ws_udata(w->conn);
  if (j && j->sub.overflow) {
    hd_ws_close(j->conn, HD_WS_CLOSE_POLICY, "too many messages while subscribing");
  } else if (j) {
    hd_sbuf_t extra = {0};
    hd_sbuf_puts(&extra, "\"topic\":\"");
    hd_sbuf_json_escape(&extra, w->topic, strlen(w->topic));
    hd_sbuf_puts(&extra, "\"");
    if (!res->status) hd_sbuf_printf(&extra, ",\"sequence\":%llu", (unsigned long long)res->top);
    if (w->params) hd_sbuf_printf(&extra, ",\"params\":%s", w->params);
    if (w->replay) hd_sbuf_printf(&extra, ",\"recovered\":%s", !res->status && res->complete ? "true" : "false");
    send_ack(j, w->ref_id, extra.ptr);
    hd_sbuf_free(&extra);
    for (size_t i = 0; !res->status && i < res->count; i++) /* not what the inbox gave it already */
      if (!from_inbox(j, res->msgs[i]->message_id)) send_message(j, res->msgs[i]);
    for (uint32_t i = 0; i < j->sub.count; i++) { /* live: what the ack's sequence already covers, in
                                                   * the room subscribed to, is left out */
      hd_hub_msg_t *msg = j->sub.live[i];
      bool covered = !res->status && msg->seq && msg->seq <= res->top && hd_hub_msg_targets(msg, w->key);
      if (!covered && !replayed(j, msg)) send_message(j, msg);
    }
    sub_clear(j);
    if (!res->status) floor_set(j, w->topic, w->key, res->top);
  }
  if (j && !--j->subscribing) handle_held(j);
  hd_conn_release(w->conn);
  sub_wait_free(w);
}

/* Subscribes at once (live messages are held meanwhile), then asks the topic log for the topic's
 * sequence and, with lastSequence, the replay: the ack, the replay and the held messages follow in
 * that order when it answers (at once on a single node, after a Redis round trip in a cluster). */
static void on_subscribe(jconn_t *j, const hd_envelope_t *e) {
  hd_jp_server_t *jp = j->jp;
  topic_ref_t ref;
  if (read_topic(j, e, &ref)) return;
  json_t *last = json_object_get(e->data, "lastSequence");
  bool was_in = hd_hub_member_in(&j->member, ref.key.ptr, ref.key.len);
  sub_wait_t *w = NULL;
  int joined = 0;
  if (last && !json_is_integer(last)) {
    send_error(j, E_INVALID, "`data.lastSequence` must be an integer", e->message_id);
  } else if (!jp->opt.policy.may_subscribe(jp->opt.policy.policy_arg, &j->claims, ref.topic)) {
    send_error(j, E_DENIED, "not allowed to subscribe to this topic", e->message_id);
  } else if (!was_in && j->member.room_count >= jp->opt.max_subscriptions) {
    send_error(j, E_SUBSCRIBE, "subscription limit reached", e->message_id);
  } else if (!(w = calloc(1, sizeof(*w))) || !(w->topic = strdup(ref.topic)) || !(w->key = strdup(ref.key.ptr)) ||
             (e->message_id && !(w->ref_id = strdup(e->message_id))) ||
             (ref.params && !(w->params = json_dumps(ref.params, JSON_COMPACT))) ||
             !(j->sub.topic = strdup(ref.topic)) ||
             (!was_in && (joined = hd_hub_join(jp->hub, &j->member, ref.key.ptr, ref.key.len)))) {
    if (w) sub_wait_free(w);
    sub_clear(j);
    send_error(j, E_SUBSCRIBE, joined == HD_ERANGE ? "subscription limit reached" : "cannot subscribe now", e->message_id);
  } else {
    w->conn = j->conn;
    w->replay = last != NULL;
    w->after = last && json_integer_value(last) > 0 ? (uint64_t)json_integer_value(last) : 0;
    hd_conn_retain(w->conn); /* the answer may come after the connection closed */
    j->subscribing++;
    hd_topic_log_t *log = hd_hub_shared(jp->hub)->topics;
    int rc = log->ops->read(log, jp->hub, ref.topic, ref.key.ptr, w->replay, w->after, subscribed, w);
    if (!rc && !was_in && log->ops->hold) log->ops->hold(log, ref.topic);
    if (rc) {
      j->subscribing--;
      sub_clear(j);
      if (!was_in) hd_hub_leave(jp->hub, &j->member, ref.key.ptr, ref.key.len);
      hd_conn_release(w->conn);
      sub_wait_free(w);
      send_error(j, E_SUBSCRIBE, "cannot subscribe now", e->message_id);
    }
  }
  hd_sbuf_free(&ref.key);
}

/* A subscription of this connection went (the topic log may forget a topic no one holds). */
static void release_topic(jconn_t *j, const char *key) {
  hd_topic_log_t *log = hd_hub_shared(j->jp->hub)->topics;
  if (!log->ops->release) return;
  const char *sep = strstr(key, PARAMS_SEPARATOR);
  char topic[256];
  size_t n = sep ? (size_t)(sep - key) : strlen(key);
  if (n >= sizeof topic) return;
  memcpy(topic, key, n);
  topic[n] = '\0';
  log->ops->release(log, topic);
}

static void on_unsubscribe(jconn_t *j, const hd_envelope_t *e) {
  topic_ref_t ref;
  if (read_topic(j, e, &ref)) return;
  if (!hd_hub_leave(j->jp->hub, &j->member, ref.key.ptr, ref.key.len)) release_topic(j, ref.topic);
  floor_drop(j, ref.key.ptr);
  hd_sbuf_t extra = {0};
  hd_sbuf_puts(&extra, "\"topic\":\"");
  hd_sbuf_json_escape(&extra, ref.topic, strlen(ref.topic));
  hd_sbuf_puts(&extra, "\"");
  send_ack(j, e->message_id, extra.ptr);
  hd_sbuf_free(&extra);
  hd_sbuf_free(&ref.key);
}

typedef struct {
  hd_conn_t *conn;        /* held until the answer */
  hd_answer_t *place;     /* of the ack among the connection's answers */
  char *ref_id;           /* the client's messageId */
} published_t;

/* Every shard delivered a client's publish: its ack with the count, in its place (an error 1000
 * when a recipient's inbox could not keep it); a subscribe held until then goes on. */
static void published(void *arg, const hd_hub_msg_t *msg, size_t delivered, int status) {
  published_t *p = arg;
  jconn_t *j = hd_conn_is_closing(p->conn) ? NULL : hd_ws_udata(p->conn);
  if (j) {
    hd_sbuf_t d = {0}, b = {0};
    if (status) {
      error_data(&d, E_CONNECT, "delivered but not stored: the store cannot keep it for an ack now", p->ref_id);
    } else {
      hd_sbuf_puts(&d, "{\"messageId\":\"");
      if (p->ref_id) hd_sbuf_json_escape(&d, p->ref_id, strlen(p->ref_id));
      hd_sbuf_printf(&d, "\",\"sequence\":%llu,\"delivered\":%zu,\"publishedId\":\"%s\"}",
                     (unsigned long long)msg->seq, delivered, msg->message_id);
    }
    bool built = d.ptr && !build_frame(&b, status ? "error" : "ack", d.ptr);
    hd_answers_fill(&j->answers, j->conn, p->place, built ? b.ptr : NULL, built ? b.len : 0);
    hd_sbuf_free(&d);
    hd_sbuf_free(&b);
    if (!j->answers.first && j->held_for_answers) handle_held(j);
  }
  hd_conn_release(p->conn);
  free(p->ref_id);
  free(p);
}

/* A business message from the client: published to its topic when the claims allow it. */
static void on_client_publish(jconn_t *j, const hd_envelope_t *e) {
  json_t *topic = json_object_get(e->root, "topic");
  if (!json_is_string(topic)) {
    send_error(j, E_INVALID, "`topic` is required to publish", e->message_id);
    return;
  }
  const hd_jp_policy_t *pol = &j->jp->opt.policy;
  if (!pol->may_publish(pol->policy_arg, &j->claims, json_string_value(topic))) {
    send_error(j, E_DENIED, "not allowed to publish to this topic", e->message_id);
    return;
  }
  if (j->answers.reserved >= PUBLISHES_MAX || j->answers.bytes >= ANSWERS_MAX) {
    send_error(j, E_RATE, "too many publishes waiting for delivery: frame dropped", e->message_id);
    return;
  }
  char *data = e->data ? json_dumps(e->data, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  published_t *p = calloc(1, sizeof(*p));
  if (!p || (e->message_id && !(p->ref_id = strdup(e->message_id))) || !(p->place = hd_answers_reserve(&j->answers))) {
    if (p) free(p->ref_id);
    free(p);
    free(data);
    send_error(j, E_CONNECT, "cannot publish now", e->message_id);
    return;
  }
  p->conn = j->conn;
  hd_conn_retain(p->conn); /* the answer may come after the connection closed */
  int rc = hd_jp_publish(j->jp, json_string_value(topic), json_object_get(e->root, "params"), e->type,
                         data ? data : "null", NULL, published, p);
  free(data);
  if (rc) {
    hd_answers_fill(&j->answers, j->conn, p->place, NULL, 0); /* the error below takes its place */
    hd_conn_release(p->conn);
    free(p->ref_id);
    free(p);
    send_error(j, rc == HD_EINVAL ? E_INVALID : E_CONNECT,
               rc == HD_EINVAL ? "cannot publish: bad topic or params" : "cannot publish now", e->message_id);
  }
}

static int hold(jconn_t *j, uint8_t opcode, const uint8_t *data, size_t len);

/* Handles one client frame (charged: its rate token was taken when it was held). */
static void handle_frame(jconn_t *j, uint8_t opcode, const uint8_t *data, size_t len, bool charged) {
  hd_conn_t *c = j->conn;
  bool allowed = charged || hd_rate_take(&j->rate, uv_now(j->jp->srv->loop));
  if (opcode != HD_WS_OP_TEXT) {
    send_error(j, allowed ? E_INVALID : E_RATE, allowed ? "frames must be JSON text" : "rate limit exceeded: frame dropped",
               NULL);
    return;
  }
  hd_envelope_t e;
  const char *why = "invalid message";
  if (hd_envelope_parse((const char *)data, len, &e, &why)) {
    send_error(j, allowed ? E_INVALID : E_RATE, allowed ? why : "rate limit exceeded: frame dropped", NULL);
    return;
  }
  hd_traffic_t *traffic = hd_hub_traffic(j->jp->hub);
  if (!j->jp->traffic_slot) j->jp->traffic_slot = 1 + hd_traffic_slot(traffic, "/", 1); /* its topics are rooms of "/" */
  hd_traffic_received(traffic, HD_TRAFFIC_JSON, j->jp->traffic_slot - 1);
  if (!allowed) { /* parsed only to name the dropped frame, so the client can retry it */
    send_error(j, E_RATE, "rate limit exceeded: frame dropped", e.message_id);
    hd_envelope_free(&e);
    return;
  }
  if (!strcmp(e.type, "subscribe") && j->answers.first) {
    /* its ack and replay go out at once when the log answers: after the answers before it */
    if (!hold(j, opcode | HELD_CHARGED, data, len)) j->held_for_answers = true;
    hd_envelope_free(&e);
    return;
  }
  bool idempotent = !strcmp(e.type, "ack") || !strcmp(e.type, "heartbeat");
  j->refused = false;
  hd_dedupe_t *dd = j->jp->opt.dedupe;
  if (e.message_id && !idempotent && hd_dedupe_seen(dd, j->dd, e.message_id)) {
    send_ack(j, e.message_id, "\"duplicate\":true"); /* processed already: acknowledged again only */
  } else if (!strcmp(e.type, "heartbeat")) {
    char d[64];
    snprintf(d, sizeof d, "{\"serverTime\":%lld}", (long long)hd_clock_wall_ms());
    answer(j, "heartbeat", d);
  } else if (!strcmp(e.type, "subscribe")) {
    on_subscribe(j, &e);
  } else if (!strcmp(e.type, "unsubscribe")) {
    on_unsubscribe(j, &e);
  } else if (!strcmp(e.type, "ack")) {
    json_t *id = json_object_get(e.data, "messageId");
    if (!json_is_string(id)) send_error(j, E_INVALID, "`data.messageId` must be a string", e.message_id);
    else acknowledge(j, json_string_value(id));
  } else if (!strcmp(e.type, "notification") || !strcmp(e.type, "status") || !strcmp(e.type, "data")) {
    on_client_publish(j, &e);
  } else {
    char msg[128];
    snprintf(msg, sizeof msg, "unknown or not allowed message type '%.60s'", e.type);
    send_error(j, E_OPERATION, msg, e.message_id);
  }
  if (e.message_id && !idempotent && !hd_conn_is_closing(c) && !j->refused) /* a refusal may be retried */
    hd_dedupe_remember(dd, j->dd, e.message_id);
  hd_envelope_free(&e);
}

/* Handles the frames held while a subscribe waited, oldest first, until one waits again. A
 * subscribe answered at once while a held frame is handled calls this again: the outer call goes on. */
static void handle_held(jconn_t *j) {
  if (j->in_held) return;
  j->in_held = true;
  while (j->held.len && !j->subscribing && !(j->held_for_answers && j->answers.first) &&
         !hd_conn_is_ending(j->conn)) {
    j->held_for_answers = false;
    uint8_t opcode = (uint8_t)j->held.ptr[0];
    uint32_t len;
    memcpy(&len, j->held.ptr + 1, 4);
    uint8_t *frame = malloc(len ? len : 1);
    if (!frame) break;
    memcpy(frame, j->held.ptr + 5, len);
    hd_sbuf_consume(&j->held, 5 + (size_t)len); /* taken before it is handled */
    handle_frame(j, opcode & ~HELD_CHARGED, frame, len, opcode & HELD_CHARGED);
    free(frame);
  }
  j->in_held = false;
}

/* Keeps a frame for handle_held: last, or first again when handle_held itself took it from there.
 * 0, or HD_E* (answered or closed here). */
static int hold(jconn_t *j, uint8_t opcode, const uint8_t *data, size_t len) {
  uint32_t n = (uint32_t)len;
  if (j->held.len + len > HELD_MAX) {
    send_error(j, E_RATE, "too many frames while a subscribe waits: frame dropped", NULL);
    return HD_ETOOBIG;
  }
  hd_sbuf_t rec = {0};
  int rc = hd_sbuf_append(&rec, &opcode, 1) || hd_sbuf_append(&rec, &n, 4) || hd_sbuf_append(&rec, data, len) ||
           (j->in_held && j->held.len && hd_sbuf_append(&rec, j->held.ptr, j->held.len)) ||
           (!j->in_held && hd_sbuf_append(&j->held, rec.ptr, rec.len));
  if (!rc && j->in_held) { /* the record, then what was held behind it */
    hd_sbuf_free(&j->held);
    j->held = rec;
    rec = (hd_sbuf_t){0};
  }
  hd_sbuf_free(&rec);
  if (rc) {
    hd_ws_close(j->conn, HD_WS_CLOSE_INTERNAL, "out of memory");
    return HD_ENOMEM;
  }
  return 0;
}

static int ws_message(hd_conn_t *c, uint8_t opcode, const uint8_t *data, size_t len) {
  jconn_t *j = hd_ws_udata(c);
  if (!j) return 0;
  if (!j->subscribing && !j->held.len) handle_frame(j, opcode, data, len, false);
  else hold(j, opcode, data, len); /* a subscribe waits for the topic log: frames stay in order */
  return 0;
}

static void ws_violation(hd_conn_t *c, int err) {
  if (!hd_ws_udata(c)) return;
  if (err == HD_ETOOBIG) send_error_conn(c, E_TOO_LARGE, "message too large", NULL);
  else if (err == HD_EUTF8) send_error_conn(c, E_INVALID, "text frame is not valid UTF-8", NULL);
}

/* --- connection lifecycle ----------------------------------------------------------------- */

/* Another connection of the same client took over: this one says why and goes; what it had not
 * acknowledged reaches the new one through the inbox. */
static void replace(jconn_t *old) {
  say_goodbye(old, "replaced", HD_WS_CLOSE_NORMAL);
  hd_acks_clear(&old->acks);
}

void hd_jp_replace(hd_jp_server_t *jp, const char *key, uint64_t gen) {
  jconn_t *j = hd_map_get(&jp->by_key, key, strlen(key));
  if (j && j->gen == gen && !hd_conn_is_ending(j->conn)) replace(j);
}

static void jconn_free(jconn_t *j) {
  hd_jp_server_t *jp = j->jp;
  for (uint32_t i = 0; i < j->member.room_count; i++) release_topic(j, j->member.rooms[i].room->name);
  free(j->inbox_ids);
  hd_hub_leave_all(jp->hub, &j->member);
  for (uint32_t i = 0; i < j->floor_count; i++) free(j->floors[i].topic), free(j->floors[i].key);
  free(j->floors);
  sub_clear(j);
  hd_acks_clear(&j->acks); /* what was not acknowledged waits in the inbox */
  hd_sbuf_free(&j->held);
  hd_answers_free(&j->answers);
  if (hd_map_get(&jp->by_key, j->key, strlen(j->key)) == j) hd_map_del(&jp->by_key, j->key, strlen(j->key));
  if (jp->opt.clients) hd_jp_clients_release(jp->opt.clients, j->key, j->gen);
  if (j->prev) j->prev->next = j->next;
  else jp->conns = j->next;
  if (j->next) j->next->prev = j->prev;
  jp->count--;
  hd_dedupe_release(jp->opt.dedupe, j->dd, uv_now(jp->srv->loop));
  free(j);
}

static void ws_closed(hd_conn_t *c, uint16_t code) {
  jconn_t *j = hd_ws_udata(c);
  if (!j) return;
  hd_ws_set_udata(c, NULL);
  jconn_free(j);
}

/* True when a client-chosen clientId is 1-71 printable ASCII characters without spaces: it goes
 * into the replacement key (sub 0x1f clientId) and the connect frame. */
static bool client_id_valid(const char *s, size_t n) {
  if (!n || n > 71) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return false;
  return true;
}

static int ws_open(hd_conn_t *c, void *udata) {
  pending_t *p = udata;
  hd_jp_server_t *jp = p->jp;
  hd_ws_set_udata(c, NULL);
  if (p->error) {
    send_error_conn(c, p->error, p->why, NULL);
    hd_ws_close(c, p->error == E_PROTOCOL ? HD_WS_CLOSE_PROTOCOL : HD_WS_CLOSE_POLICY, p->why);
    free(p);
    return 0;
  }
  jconn_t *j = calloc(1, sizeof(*j));
  if (!j) {
    free(p);
    return HD_ENOMEM;
  }
  hd_hub_member_init(&j->member, &member_ops);
  j->jp = jp;
  j->conn = c;
  j->claims = p->claims;
  hd_rate_init(&j->rate, jp->opt.rate, jp->opt.burst, uv_now(jp->srv->loop));
  hd_acks_init(&j->acks, &jp->acks_limits);
  memcpy(j->client_id, p->client_id, sizeof j->client_id);
  snprintf(j->key, sizeof j->key, "%s\x1f%s", j->claims.sub, j->client_id);
  j->dd = hd_dedupe_acquire(jp->opt.dedupe, j->key);
  free(p);
  j->next = jp->conns;
  if (jp->conns) jp->conns->prev = j;
  jp->conns = j;
  jp->count++;
  hd_ws_set_udata(c, j);
  hd_ws_set_max_message(c, jp->opt.max_message);
  /* a connection of the same client on any shard is replaced: what it had not acknowledged is this
   * one's to deliver, through the inbox (which has it since its delivery), after the connect frame */
  if (jp->opt.clients &&
      hd_jp_clients_claim(jp->opt.clients, j->key, hd_hub_shard(jp->hub), jp->opt.max_per_user, &j->gen) == HD_ERANGE) {
    send_error(j, E_CONNECT, "too many connections for this user: close one first", NULL);
    hd_ws_close(c, HD_WS_CLOSE_POLICY, "too many connections for this user");
    return 0;
  }
  jconn_t *old = hd_map_get(&jp->by_key, j->key, strlen(j->key));
  if (old) replace(old);
  hd_map_put(&jp->by_key, j->key, strlen(j->key), j);
  json_t *cd = json_pack("{s:s, s:I}", "clientId", j->client_id, "serverTime", (json_int_t)hd_clock_wall_ms());
  char *d = cd ? json_dumps(cd, JSON_COMPACT) : NULL;
  json_decref(cd);
  if (d) send_frame(j, "connect", d);
  free(d);
  /* notifications that waited for this user, a page at a time; the client's frames wait until the
   * first page is out, so every answer comes after it */
  inbox_next_page(j, true);
  return 0;
}

int hd_jp_keep_for_offline_user(hd_jp_server_t *jp, hd_hub_msg_t *msg, void (*done)(void *arg, int status), void *arg) {
  const hd_jp_inbox_t *in = &jp->opt.inbox;
  const char *topic = msg->room_count ? msg->rooms[0] : "";
  if (!in->keep || strcmp(msg->type ? msg->type : msg->event, "notification") || strncmp(topic, "user:", 5))
    return HD_ENOTFOUND;
  char sub[HD_ENVELOPE_MAX_TOPIC + 1];
  size_t n = strcspn(topic + 5, ":" PARAMS_SEPARATOR);
  if (!n || n >= sizeof sub) return HD_ENOTFOUND;
  memcpy(sub, topic + 5, n);
  sub[n] = '\0';
  hd_buf_t *frame = hd_hub_msg_encoded(jp->hub, msg, jp->enc, encode_message, NULL);
  hd_slice_t text = frame ? hd_ws_frame_payload(frame) : (hd_slice_t){0};
  if (!text.ptr) return HD_ENOMEM;
  return in->keep(in->arg, sub, msg->message_id, text.ptr, text.len, done, arg);
}

/* A message rebuilt from a stored envelope: its frame is prebuilt, so redelivery sends the same bytes. */
static hd_hub_msg_t *stored_message(hd_jp_server_t *jp, const char *message_id, const char *frame, size_t len) {
  hd_hub_target_t none = {0};
  hd_hub_msg_t *msg = hd_hub_msg_new_value(jp->hub, &none, "notification", "null", 4);
  hd_buf_t *b = msg ? hd_ws_frame_new(HD_WS_OP_TEXT, frame, len) : NULL;
  if (!b) {
    hd_hub_msg_unref(msg);
    return NULL;
  }
  hd_hub_msg_set_encoded(jp->hub, msg, jp->enc, b);
  hd_buf_unref(b);
  snprintf(msg->message_id, sizeof msg->message_id, "%s", message_id);
  return msg;
}

static void inbox_taken(void *arg, int status, const hd_jp_inbox_item_t *items, size_t n) {
  hd_conn_t *c = arg;
  jconn_t *j = hd_conn_is_closing(c) ? NULL : hd_ws_udata(c);
  if (j) {
    j->inbox_taking = false;
    j->inbox_more = !status && n >= (j->jp->opt.inbox_page ? j->jp->opt.inbox_page : 100);
  }
  for (size_t i = 0; j && !status && i < n; i++) {
    if (hd_acks_pending(&j->acks, items[i].message_id)) continue; /* delivered live meanwhile */
    hd_hub_msg_t *msg = stored_message(j->jp, items[i].message_id, items[i].frame, items[i].frame_len);
    if (msg) send_message(j, msg);
    if (msg && (j->inbox_ids || (j->inbox_ids = calloc(INBOX_IDS, sizeof(*j->inbox_ids))))) {
      snprintf(j->inbox_ids[j->inbox_ids_next], sizeof j->inbox_ids[0], "%s", items[i].message_id);
      j->inbox_ids_next = (j->inbox_ids_next + 1) % INBOX_IDS;
    }
    hd_hub_msg_unref(msg);
  }
  if (!hd_conn_is_ending(c)) hd_conn_set_reading(c, true);
  hd_conn_release(c);
}

static void ws_refused(hd_conn_t *c, void *udata) {
  send_error_conn(c, E_CONNECT, hd_conn_is_over_limit(c) ? "server full, try again later" : "server not ready", NULL);
  free(udata);
}

static const hd_ws_handler_t handler = {.name = "json",
                                        .on_open = ws_open,
                                        .on_message = ws_message,
                                        .on_close = ws_closed,
                                        .on_violation = ws_violation,
                                        .on_refused = ws_refused};

/* GET /api/v1/ws: checks token and protocol, then upgrades; errors go out as frames after it. */
static void handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_jp_server_t *jp = udata;
  pending_t *p = calloc(1, sizeof(*p));
  if (!p) return hd_http_respond_error(ex, 500, "out of memory");
  p->jp = jp;
  char token[8192] = "", protocol[32] = PROTOCOL_VERSION;
  if (hd_http_request_query(req, "token", token, sizeof token) < 0) {
    hd_slice_t auth = hd_http_request_header(req, "Authorization");
    if (auth.len > 7 && !strncasecmp(auth.ptr, "Bearer ", 7) && auth.len - 7 < sizeof token) {
      memcpy(token, auth.ptr + 7, auth.len - 7);
      token[auth.len - 7] = '\0';
    }
  }
  hd_http_request_query(req, "protocol", protocol, sizeof protocol);
  if (strcmp(protocol, PROTOCOL_VERSION) && strcmp(protocol, "1")) {
    p->error = E_PROTOCOL;
    p->why = "unsupported protocol version (use 1.0)";
  } else if (jp->opt.policy.authenticate(jp->opt.policy.auth_arg, token, &p->claims, &p->why)) {
    p->error = E_AUTH;
  }
  char cid[256];
  int cn = hd_http_request_query(req, "clientId", cid, sizeof cid);
  if (cn <= 0) { /* absent or empty: one is generated */
    p->client_id[0] = 'c';
    hd_id_random(p->client_id + 1, 15);
  } else if (!client_id_valid(cid, (size_t)cn)) {
    if (!p->error) {
      p->error = E_INVALID;
      p->why = "invalid clientId: 1-71 printable ASCII characters (0x21-0x7e)";
    }
  } else {
    memcpy(p->client_id, cid, (size_t)cn + 1);
  }
  if (hd_ws_upgrade(ex, &handler, p)) free(p);
}

/* --- sweep: token expiry and redelivery --------------------------------------------------- */

/* Sends a tracked notification again, the very same frame. */
static void resend(void *item, void *arg) {
  jconn_t *j = arg;
  hd_hub_msg_t *msg = item;
  hd_buf_t *frame = hd_hub_msg_encoded(j->jp->hub, msg, j->jp->enc, encode_message, NULL);
  if (frame) hd_ws_send_frame(j->conn, frame);
}

static void on_sweep(uv_timer_t *t) {
  hd_jp_server_t *jp = t->data;
  uint64_t now = uv_now(jp->srv->loop);
  int64_t wall_s = hd_clock_wall_ms() / 1000;
  if (++jp->sweeps % (60000 / SWEEP_MS) == 0) hd_dedupe_expire(jp->opt.dedupe, now);
  for (jconn_t *j = jp->conns, *next; j; j = next) {
    next = j->next;
    if (hd_conn_is_ending(j->conn)) continue;
    if (j->claims.exp && wall_s > j->claims.exp) {
      say_goodbye(j, "token expired", HD_WS_CLOSE_POLICY);
      continue;
    }
    hd_acks_due(&j->acks, now, resend, j);
    inbox_maybe_next(j); /* the last of a page may have been given up */
  }
}

size_t hd_jp_close_sub(hd_jp_server_t *jp, const char *sub, const char *reason) {
  size_t n = 0;
  for (jconn_t *j = jp->conns, *next; j; j = next) {
    next = j->next;
    if (hd_conn_is_ending(j->conn) || strcmp(j->claims.sub, sub)) continue;
    say_goodbye(j, reason, HD_WS_CLOSE_POLICY);
    n++;
  }
  return n;
}

static void on_stop(void *arg) {
  hd_jp_server_t *jp = arg;
  for (jconn_t *j = jp->conns; j; j = j->next) send_frame(j, "disconnect", "{\"reason\":\"shutdown\"}");
}

/* --- public API --------------------------------------------------------------------------- */

static void release_msg(void *item) { hd_hub_msg_unref(item); }

hd_jp_server_t *hd_jp_server_new(hd_server_t *srv, hd_hub_t *hub, const hd_jp_options_t *opt) {
  hd_jp_server_t *jp = calloc(1, sizeof(*jp));
  if (!jp) return NULL;
  jp->srv = srv;
  jp->hub = hub;
  jp->opt = *opt;
  jp->acks_limits = (hd_acks_limits_t){opt->ack_timeout_ms, opt->ack_retries, MAX_UNACKED, release_msg};
  jp->enc = hd_hub_encoding_id(hub, "json/ws");
  if (jp->enc < 0 || !opt->dedupe || !opt->policy.authenticate || !opt->policy.may_subscribe || !opt->policy.may_publish ||
      hd_server_add_stop_hook(srv, on_stop, jp)) {
    free(jp);
    return NULL;
  }
  if (opt->clients) hd_jp_clients_attach(opt->clients, hd_hub_shard(hub), jp, hd_hub_mailbox(hub));
  uv_timer_init(srv->loop, &jp->sweeper);
  jp->sweeper.data = jp;
  uv_timer_start(&jp->sweeper, on_sweep, SWEEP_MS, SWEEP_MS);
  uv_unref((uv_handle_t *)&jp->sweeper);
  return jp;
}

int hd_jp_server_route(hd_jp_server_t *jp, hd_router_t *router) {
  return hd_router_add(router, "GET", "/api/v1/ws", handle, jp);
}

static void free_server(uv_handle_t *h) { free(h->data); }

void hd_jp_server_free(hd_jp_server_t *jp) {
  if (!jp) return;
  while (jp->conns) {
    hd_ws_set_udata(jp->conns->conn, NULL);
    jconn_free(jp->conns);
  }
  hd_map_free(&jp->by_key);
  uv_close((uv_handle_t *)&jp->sweeper, free_server);
}

size_t hd_jp_connection_count(const hd_jp_server_t *jp) { return jp->count; }

int hd_jp_publish(hd_jp_server_t *jp, const char *topic, const json_t *params, const char *type,
                  const char *data_json, const char *event, hd_hub_count_fn on_count, void *arg) {
  if (!hd_topic_valid(topic)) return HD_EINVAL;
  hd_sbuf_t key = {0};
  hd_sbuf_puts(&key, topic);
  bool with_params = params && json_object_size(params);
  if (with_params) hd_sbuf_puts(&key, PARAMS_SEPARATOR);
  if (hd_params_key(params, &key) || !key.ptr) {
    hd_sbuf_free(&key);
    return HD_EINVAL;
  }
  const char *rooms[2] = {topic, key.ptr};
  hd_hub_target_t to = {"/", rooms, with_params ? 2 : 1, NULL, 0, HD_MSG_SEQUENCED};
  hd_hub_msg_t *msg = hd_hub_msg_new_value(jp->hub, &to, event ? event : type, data_json, strlen(data_json));
  hd_sbuf_free(&key);
  if (!msg || (event && hd_hub_msg_set_type(msg, type))) {
    hd_hub_msg_unref(msg);
    return HD_ENOMEM;
  }
  hd_topic_log_t *log = hd_hub_shared(jp->hub)->topics;
  int rc = log->ops->publish(log, jp->hub, msg, on_count, arg);
  hd_hub_msg_unref(msg);
  return rc;
}
