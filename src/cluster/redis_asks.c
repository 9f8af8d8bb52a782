/* This node's requests to the cluster (see redis_internal.h), as the adapter sends them:
 *   2 / 3 / 4 (socketsJoin / socketsLeave / disconnectSockets): published only; every node, this one
 *     too, applies them when they come back on the request channel;
 *   5 (fetchSockets), 1 (allRooms): this node's shards first, then serverCount - 1 answers;
 *   6 (serverSideEmit): never to this node; with an answer wanted, serverCount - 1 answers;
 *   7 (broadcast with acks): the recipients' counts (8) and acks (9) go to the message's sink until
 *     its timeout.
 * A request waiting for answers is an "ask" on shard 0, matched by requestId on the response
 * channels, finished when every node answered or after HD_REDIS_REQUEST_TIMEOUT_MS, its result
 * handed back to the asking shard. Without Redis everything stays on this node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/redis_internal.h"
#include "core/error.h"
#include "core/log.h"
#include "proto/sio.h"

/* --- 2, 3, 4 --------------------------------------------------------------------------------- */

typedef struct {
  hd_redis_t *r;
  char *nsp;
  char *text;
} out_request_t;

static void run_out_request(void *arg, bool cancelled) {
  out_request_t *o = arg;
  if (!cancelled) hd_redis_publish_on(o->r, "request", o->nsp, o->text, strlen(o->text));
  free(o->nsp);
  free(o->text);
  free(o);
}

/* Posts req (stolen) for publishing on nsp's request channel from shard 0. 0 or HD_E*. */
static int post_request(hd_redis_t *r, const char *nsp, json_t *req) {
  out_request_t *o = malloc(sizeof(*o));
  char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
  json_decref(req);
  if (!o || !text || !(o->nsp = strdup(nsp ? nsp : "/"))) {
    free(o);
    free(text);
    return HD_ENOMEM;
  }
  o->r = r, o->text = text;
  if (hd_mailbox_post(r->mailbox, run_out_request, o)) {
    run_out_request(o, true);
    return HD_ECLOSED;
  }
  return 0;
}

int hd_redis_request(hd_adapter_t *a, hd_hub_t *from, hd_hub_req_t req, const hd_hub_target_t *to, const char *room) {
  hd_redis_t *r = (hd_redis_t *)a;
  if (!hd_redis_up(r) || (to->flags & HD_MSG_LOCAL)) return r->local->ops->request(r->local, from, req, to, room);
  json_t *j = json_pack("{s:s,s:i,s:o}", "uid", r->uid, "type", req == HD_HUB_REQ_JOIN ? 2 : req == HD_HUB_REQ_LEAVE ? 3 : 4,
                        "opts", hd_redis_opts_of(to));
  if (!j) return HD_ENOMEM;
  if (req == HD_HUB_REQ_DISCONNECT || req == HD_HUB_REQ_CLOSE) {
    json_object_set_new(j, "close", json_boolean(req == HD_HUB_REQ_CLOSE));
  } else {
    const char *n = room ? hd_redis_room_name(to->nsp, room) : NULL;
    if (!n) {
      json_decref(j);
      return HD_EINVAL;
    }
    json_object_set_new(j, "rooms", json_pack("[s]", n));
  }
  return post_request(r, to->nsp, j);
}

/* --- asks: requests waiting for answers (shard 0) --------------------------------------------- */

struct hd_redis_ask {
  hd_redis_ask_t *next;
  hd_redis_t *r;
  char request_id[32];
  char *nsp;
  uint32_t expected, got;    /* answers: complete at expected (0: only the timeout ends it) */
  uv_timer_t timer;
  /* One answer (a JSON response, msgpack ones decoded with their attachments). */
  void (*on_answer)(hd_redis_ask_t *ask, json_t *resp, hd_buf_t *const *att, uint32_t natt);
  /* Hands the result back (complete: every node answered) and releases what the kind holds. */
  void (*finish)(hd_redis_ask_t *ask, bool complete);
  /* The kind's own part. */
  hd_hub_t *from;
  hd_hub_fetch_fn fetch_fn;
  hd_hub_answers_fn answers_fn;
  void *arg;
  json_t *items;             /* gathered sockets / room keys / answers */
  bool rooms;                /* allRooms (else fetchSockets) */
  bool handshakes;           /* fetchSockets: keep the answers' handshakes */
  bool complete;             /* serverSideEmit: every node answered */
  hd_hub_acks_t *acks;
  json_t *request;           /* published by shard 0 */
};

static void ask_free(hd_redis_ask_t *k) {
  json_decref(k->items);
  json_decref(k->request);
  hd_hub_acks_unref(k->acks);
  free(k->nsp);
  free(k);
}

static void ask_closed(uv_handle_t *h) { ask_free(h->data); }

/* Takes k off the list, finishes it and frees it. */
static void ask_done(hd_redis_ask_t *k, bool complete) {
  hd_redis_t *r = k->r;
  for (hd_redis_ask_t **pp = &r->asks; *pp; pp = &(*pp)->next)
    if (*pp == k) {
      *pp = k->next;
      break;
    }
  k->finish(k, complete);
  uv_timer_stop(&k->timer);
  uv_close((uv_handle_t *)&k->timer, ask_closed);
}

static void on_ask_timeout(uv_timer_t *t) {
  hd_redis_ask_t *k = t->data;
  if (k->expected)
    HD_DEBUG("cluster", "request timed out", "requestId=%s answers=%u expected=%u", k->request_id, k->got, k->expected);
  ask_done(k, false);
}

/* Registers k (shard 0) and starts its timer. */
static void ask_start(hd_redis_t *r, hd_redis_ask_t *k, uint64_t timeout_ms) {
  k->r = r;
  uv_timer_init(r->loop, &k->timer);
  k->timer.data = k;
  uv_timer_start(&k->timer, on_ask_timeout, timeout_ms, 0);
  k->next = r->asks;
  r->asks = k;
}

void hd_redis_got_response(hd_redis_t *r, const char *data, size_t len) {
  if (!r->asks || !len) return;
  json_t *resp = NULL;
  hd_buf_t **att = NULL;
  uint32_t natt = 0;
  if (data[0] == '{') resp = json_loadb(data, len, 0, NULL);
  else if (hd_redis_decode_value(data, len, &resp, &att, &natt)) resp = NULL;
  if (!json_is_object(resp)) HD_REDIS_COUNT(r, decode_errors, 1);
  const char *rid = json_string_value(json_object_get(resp, "requestId"));
  hd_redis_ask_t *k = r->asks;
  while (k && rid && strcmp(k->request_id, rid)) k = k->next;
  if (k && rid) {
    k->got++;
    k->on_answer(k, resp, att, natt);
    if (k->expected && k->got >= k->expected) ask_done(k, true);
  }
  json_decref(resp);
  for (uint32_t i = 0; i < natt; i++) hd_buf_unref(att[i]);
  free(att);
}

uint32_t hd_redis_asks_stop(hd_redis_t *r) {
  uint32_t n = 0;
  for (; r->asks; n++) ask_done(r->asks, false);
  return n;
}

/* --- 5 and 1: this node's part, then the other nodes' ----------------------------------------- */

/* On the asking shard: the result to the caller. */
static void run_gathered(void *arg, bool cancelled) {
  hd_redis_ask_t *k = arg;
  json_t *out = k->items;
  if (k->rooms) { /* each room once */
    json_t *set = json_object(), *v;
    size_t i;
    out = json_array();
    json_array_foreach(k->items, i, v) {
      if (!json_is_string(v) || json_object_get(set, json_string_value(v))) continue;
      json_object_set_new(set, json_string_value(v), json_true());
      json_array_append(out, v);
    }
    json_decref(set);
  }
  char *text = json_dumps(out, JSON_COMPACT);
  k->fetch_fn(k->arg, text ? text : "[]", text ? json_array_size(out) : 0);
  free(text);
  if (out != k->items) json_decref(out);
  ask_free(k);
}

/* Shard 0: hands what was gathered back to the asking shard (a copy: k itself goes with its timer). */
static void gathered_back(hd_redis_ask_t *k, bool complete) {
  hd_redis_ask_t *back = calloc(1, sizeof(*back));
  if (!back) return;
  back->from = k->from, back->fetch_fn = k->fetch_fn, back->arg = k->arg, back->rooms = k->rooms;
  back->items = k->items;
  k->items = NULL;
  if (back->from == k->r->hub) run_gathered(back, false);
  else if (hd_mailbox_post(hd_hub_mailbox(back->from), run_gathered, back)) ask_free(back); /* shutting down */
}

static void on_gathered_answer(hd_redis_ask_t *k, json_t *resp, hd_buf_t *const *att, uint32_t natt) {
  size_t i;
  json_t *v;
  if (k->rooms) { /* names to keys */
    json_array_foreach(json_object_get(resp, "rooms"), i, v) {
      char key[300];
      if (json_is_string(v) && hd_sio_room_key(k->nsp, json_string_value(v), key, sizeof key) >= 0)
        json_array_append_new(k->items, json_string(key));
    }
    return;
  }
  json_array_foreach(json_object_get(resp, "sockets"), i, v) {
    if (!json_is_object(v)) continue;
    json_t *d = json_pack("{s:O?,s:s,s:O?,s:O?}", "id", json_object_get(v, "id"), "nsp", k->nsp, "rooms",
                          json_object_get(v, "rooms"), "data", json_object_get(v, "data"));
    json_t *handshake = json_object_get(v, "handshake"); /* for the Admin UI, when this node keeps its own */
    if (d && k->handshakes && json_is_object(handshake)) json_object_set(d, "handshake", handshake);
    if (d) json_array_append_new(k->items, d);
  }
}

/* Shard 0, the nodes counted: publishes the request and waits for the answers (none to wait for:
 * at once). */
static void gather_counted(hd_redis_t *r, uint32_t n, void *arg) {
  hd_redis_ask_t *k = arg;
  if (r->stopping || !hd_redis_up(r) || n <= 1) {
    gathered_back(k, true);
    ask_free(k);
    return;
  }
  k->expected = n - 1;
  char *text = json_dumps(k->request, JSON_COMPACT);
  int rc = text ? hd_redis_publish_on(r, "request", k->nsp, text, strlen(text)) : HD_ENOMEM;
  free(text);
  if (rc) { /* not sent (queue full): nobody will answer */
    gathered_back(k, false);
    ask_free(k);
    return;
  }
  ask_start(r, k, HD_REDIS_REQUEST_TIMEOUT_MS);
}

/* Shard 0: how many nodes answer now (a node gone since the last poll is not waited for). */
static void run_gather(void *arg, bool cancelled) {
  hd_redis_ask_t *k = arg;
  if (cancelled) { /* shard 0 is stopping: the node shuts down, the answer is dropped */
    ask_free(k);
    return;
  }
  hd_redis_count_nodes(k->r, k->nsp, gather_counted, k);
}

/* The asking shard: this node's part, then on to shard 0 for the rest. */
static void on_local_part(void *arg, const char *json, size_t count) {
  hd_redis_ask_t *k = arg;
  k->items = json_loads(json, 0, NULL);
  if (!json_is_array(k->items)) json_decref(k->items), k->items = json_array();
  if (hd_mailbox_post(k->r->mailbox, run_gather, k)) {
    /* shard 0 is gone (shutting down): answered with this node's part */
    char *text = json_dumps(k->items, JSON_COMPACT);
    k->fetch_fn(k->arg, text ? text : "[]", text ? json_array_size(k->items) : 0);
    free(text);
    ask_free(k);
  }
}

static int gather(hd_redis_t *r, hd_hub_t *from, const hd_hub_target_t *to, bool rooms, hd_hub_fetch_fn fn, void *arg) {
  hd_redis_ask_t *k = calloc(1, sizeof(*k));
  if (!k || !(k->nsp = strdup(to->nsp ? to->nsp : "/"))) {
    free(k);
    return HD_ENOMEM;
  }
  k->r = r, k->from = from, k->fetch_fn = fn, k->arg = arg, k->rooms = rooms, k->handshakes = r->keep_handshakes;
  k->on_answer = on_gathered_answer, k->finish = gathered_back;
  hd_redis_request_id(r, k->request_id);
  k->request = rooms ? json_pack("{s:s,s:s,s:i}", "uid", r->uid, "requestId", k->request_id, "type", 1)
                     : json_pack("{s:s,s:s,s:i,s:o}", "uid", r->uid, "requestId", k->request_id, "type", 5, "opts",
                                 hd_redis_opts_of(to));
  int rc = !k->request ? HD_ENOMEM
           : rooms     ? r->local->ops->all_rooms(r->local, from, to, on_local_part, k)
                       : r->local->ops->fetch(r->local, from, to, on_local_part, k);
  if (rc) ask_free(k);
  return rc;
}

int hd_redis_fetch(hd_adapter_t *a, hd_hub_t *from, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg) {
  hd_redis_t *r = (hd_redis_t *)a;
  if (!hd_redis_up(r) || (to->flags & HD_MSG_LOCAL) || hd_redis_server_count(a) <= 1)
    return r->local->ops->fetch(r->local, from, to, fn, arg);
  return gather(r, from, to, false, fn, arg);
}

/* allRooms asks the whole namespace's rooms of every node (the request names no rooms), then keeps
 * those of the members matching to; here to is always the whole namespace (hd_sio_all_rooms). */
int hd_redis_all_rooms(hd_adapter_t *a, hd_hub_t *from, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg) {
  hd_redis_t *r = (hd_redis_t *)a;
  if (!hd_redis_up(r) || (to->flags & HD_MSG_LOCAL) || hd_redis_server_count(a) <= 1)
    return r->local->ops->all_rooms(r->local, from, to, fn, arg);
  return gather(r, from, to, true, fn, arg);
}

/* --- 6 --------------------------------------------------------------------------------------- */

static void run_answers(void *arg, bool cancelled) {
  hd_redis_ask_t *k = arg;
  char *text = json_dumps(k->items, JSON_COMPACT);
  k->answers_fn(k->arg, k->complete, text ? text : "[]", text ? json_array_size(k->items) : 0);
  free(text);
  ask_free(k);
}

/* Shard 0: the answers back to the asking shard (a copy: k itself goes with its timer). */
static void answers_back(hd_redis_ask_t *k, bool complete) {
  hd_redis_ask_t *back = calloc(1, sizeof(*back));
  if (!back) return;
  back->answers_fn = k->answers_fn, back->arg = k->arg, back->complete = complete;
  back->items = k->items;
  k->items = NULL;
  if (k->from == k->r->hub) run_answers(back, false);
  else if (hd_mailbox_post(hd_hub_mailbox(k->from), run_answers, back)) ask_free(back);
}

static void on_emit_answer(hd_redis_ask_t *k, json_t *resp, hd_buf_t *const *att, uint32_t natt) {
  json_t *d = json_object_get(resp, "data");
  json_array_append(k->items, d ? d : json_null());
}

/* Shard 0, the nodes counted (when an answer is wanted): publishes and waits for serverCount - 1. */
static void emit_counted(hd_redis_t *r, uint32_t n, void *arg) {
  hd_redis_ask_t *k = arg;
  char *text = json_dumps(k->request, JSON_COMPACT);
  int rc = !text ? HD_ENOMEM : hd_redis_up(r) ? hd_redis_publish_on(r, "request", k->nsp, text, strlen(text)) : HD_ECLOSED;
  free(text);
  if (!k->answers_fn) {
    ask_free(k);
  } else if (n <= 1 || rc == HD_ECLOSED) { /* nobody to answer: complete, with none */
    answers_back(k, true);
    ask_free(k);
  } else if (rc) { /* not sent (queue full): incomplete, with none */
    answers_back(k, false);
    ask_free(k);
  } else {
    k->expected = n - 1;
    ask_start(r, k, HD_REDIS_REQUEST_TIMEOUT_MS);
  }
}

static void run_emit(void *arg, bool cancelled) {
  hd_redis_ask_t *k = arg;
  if (cancelled) ask_free(k);
  else if (!k->answers_fn) emit_counted(k->r, 1, k);
  else hd_redis_count_nodes(k->r, k->nsp, emit_counted, k);
}

int hd_redis_server_side_emit(hd_adapter_t *a, hd_hub_t *from, const char *nsp, const char *args_json,
                              hd_hub_answers_fn fn, void *arg) {
  hd_redis_t *r = (hd_redis_t *)a;
  json_t *data = json_loads(args_json, 0, NULL);
  if (!json_is_array(data) || !json_is_string(json_array_get(data, 0))) {
    json_decref(data);
    return HD_EINVAL;
  }
  if (!hd_redis_up(r)) {
    json_decref(data);
    return r->local->ops->server_side_emit(r->local, from, nsp, args_json, fn, arg);
  }
  hd_redis_ask_t *k = calloc(1, sizeof(*k));
  if (!k || !(k->nsp = strdup(nsp)) || !(k->items = json_array())) {
    if (k) free(k->nsp);
    free(k);
    json_decref(data);
    return HD_ENOMEM;
  }
  k->r = r, k->from = from, k->answers_fn = fn, k->arg = arg;
  k->on_answer = on_emit_answer, k->finish = answers_back;
  hd_redis_request_id(r, k->request_id);
  k->request = fn ? json_pack("{s:s,s:s,s:i,s:o}", "uid", r->uid, "requestId", k->request_id, "type", 6, "data", data)
                  : json_pack("{s:s,s:i,s:o}", "uid", r->uid, "type", 6, "data", data);
  if (!k->request) {
    ask_free(k);
    return HD_ENOMEM;
  }
  if (hd_mailbox_post(r->mailbox, run_emit, k)) {
    ask_free(k);
    return HD_ECLOSED;
  }
  return 0;
}

/* --- 7 --------------------------------------------------------------------------------------- */

static void on_ack_answer(hd_redis_ask_t *k, json_t *resp, hd_buf_t *const *att, uint32_t natt) {
  json_t *type = json_object_get(resp, "type");
  if (json_integer_value(type) == 8) {
    json_t *n = json_object_get(resp, "clientCount");
    k->acks->on_clients(k->acks, json_is_integer(n) && json_integer_value(n) > 0 ? (size_t)json_integer_value(n) : 0);
  } else if (json_integer_value(type) == 9) {
    json_t *packet = json_object_get(resp, "packet"), *args = json_pack("[O]", packet ? packet : json_null());
    char *text = args ? json_dumps(args, JSON_COMPACT) : NULL;
    if (text) k->acks->on_ack(k->acks, text, strlen(text), att, natt);
    free(text);
    json_decref(args);
  }
}

static void acks_finish(hd_redis_ask_t *k, bool complete) {}

void hd_redis_ask_acks(hd_redis_t *r, const char *request_id, hd_hub_acks_t *acks, uint64_t timeout_ms) {
  hd_redis_ask_t *k = calloc(1, sizeof(*k));
  if (!k) return;
  snprintf(k->request_id, sizeof k->request_id, "%s", request_id);
  k->acks = hd_hub_acks_ref(acks);
  k->on_answer = on_ack_answer, k->finish = acks_finish;
  ask_start(r, k, timeout_ms + 1000); /* the answers of acks just in time may still be on their way */
}
