/* Requests of other nodes on the request channel of a namespace (see redis_internal.h). This node
 * holds one subscription (shard 0's), so each is handled once per node whatever the shard count:
 *   0 SOCKETS, 1 ALL_ROOMS, 5 REMOTE_FETCH: gathered over this node's shards, answered once (JSON);
 *   2 / 3 / 4 REMOTE_JOIN / LEAVE / DISCONNECT: applied through the local adapter (the emitter's,
 *     without uid, too; this node's own when they come back); legacy ones with `sid` answered
 *     {requestId} without being applied;
 *   6 SERVER_SIDE_EMIT: handed to shard 0's handler (hd_hub_on_server_emit), answered when it asks;
 *   7 BROADCAST (msgpack): delivered with acks, answered with this node's recipient count (8, also
 *     when 0), then each client's first ack argument (9, msgpack).
 * This node's own 0, 1, 5, 6, 7 are dropped by uid. Anything malformed or unknown is dropped (a debug
 * log line), never answered twice, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/redis_internal.h"
#include "core/error.h"
#include "core/log.h"
#include "proto/sio.h"

#define ACK_TIMEOUT_MAX_MS 600000 /* a request 7's flags.timeout is capped at this */

const char *hd_redis_channel_nsp(hd_redis_t *r, const char *kind, const char *ch, size_t len) {
  size_t pl = strlen(r->prefix), kl = strlen(kind);
  if (len < pl + kl + 3 || memcmp(ch, r->prefix, pl) || ch[pl] != '-' || memcmp(ch + pl + 1, kind, kl) ||
      ch[pl + 1 + kl] != '#')
    return NULL;
  size_t base = pl + kl + 2;
  for (uint32_t i = 0; i < r->nsp_count; i++) {
    size_t nl = strlen(r->nsps[i]);
    if (len == base + nl + 1 && !memcmp(ch + base, r->nsps[i], nl) && ch[len - 1] == '#') return r->nsps[i];
  }
  return NULL;
}

const char *hd_redis_room_name(const char *nsp, const char *key) {
  if (key[0] == '\x1e') return NULL;
  if (!nsp || !strcmp(nsp, "/")) return key;
  size_t n = strlen(nsp);
  return !strncmp(key, nsp, n) && key[n] == '\x1f' ? key + n + 1 : key;
}

json_t *hd_redis_opts_of(const hd_hub_target_t *to) {
  json_t *rooms = json_array(), *except = json_array();
  for (size_t i = 0; i < to->room_count; i++) {
    const char *n = hd_redis_room_name(to->nsp, to->rooms[i]);
    if (!n) { /* the whole namespace */
      json_array_clear(rooms);
      break;
    }
    json_array_append_new(rooms, json_string(n));
  }
  for (size_t i = 0; i < to->except_count; i++) {
    const char *n = hd_redis_room_name(to->nsp, to->except[i]);
    if (n) json_array_append_new(except, json_string(n));
  }
  return json_pack("{s:o,s:o}", "rooms", rooms, "except", except);
}

int hd_redis_target(const char *nsp, json_t *opts, hd_redis_target_t *t) {
  json_t *rooms = json_object_get(opts, "rooms"), *except = json_object_get(opts, "except");
  size_t nr = 0, ne = 0, i;
  json_t *v;
  if ((rooms && !json_is_array(rooms) && !json_is_null(rooms)) || (except && !json_is_array(except) && !json_is_null(except)))
    return HD_EINVAL;
  json_array_foreach(rooms, i, v) {
    if (!json_is_string(v) || nr >= HD_REDIS_MAX_ROOMS) return HD_EINVAL;
    if (hd_sio_room_key(nsp, json_string_value(v), t->keys[nr], sizeof t->keys[nr]) < 0) return HD_EINVAL;
    t->rk[nr] = t->keys[nr], nr++;
  }
  json_array_foreach(except, i, v) {
    if (!json_is_string(v) || ne >= HD_REDIS_MAX_EXCEPT) return HD_EINVAL;
    if (hd_sio_room_key(nsp, json_string_value(v), t->ekeys[ne], sizeof t->ekeys[ne]) < 0) return HD_EINVAL;
    t->ek[ne] = t->ekeys[ne], ne++;
  }
  if (!nr) {
    snprintf(t->keys[0], sizeof t->keys[0], "\x1e%s", nsp);
    t->rk[nr++] = t->keys[0];
  }
  t->to = (hd_hub_target_t){nsp, t->rk, nr, t->ek, ne, HD_MSG_LOCAL};
  return 0;
}

/* Publishes resp (stolen) on nsp's shared response channel. */
static void publish_response(hd_redis_t *r, const char *nsp, json_t *resp) {
  char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
  json_decref(resp);
  if (text) hd_redis_publish_on(r, "response", nsp, text, strlen(text));
  free(text);
}

/* --- 0, 1, 5: gathered over this node's shards ------------------------------------------------ */

typedef struct {
  hd_redis_t *r;
  const char *nsp;
  int type;
  char *request_id;
} gathering_t;

static gathering_t *gathering_new(hd_redis_t *r, const char *nsp, int type, const char *rid) {
  gathering_t *g = malloc(sizeof(*g));
  if (!g || !(g->request_id = strdup(rid))) {
    free(g);
    return NULL;
  }
  g->r = r, g->nsp = nsp, g->type = type;
  return g;
}

static void gathering_free(gathering_t *g) {
  free(g->request_id);
  free(g);
}

/* The handshake of a socket whose server keeps none (without --admin-ui): the fields are there,
 * mostly empty. */
static json_t *handshake_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char when[64];
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof when, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &tm);
  json_int_t now = (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  return json_pack("{s:{},s:s,s:s,s:b,s:b,s:I,s:s,s:{},s:{}}", "headers", "time", when, "address", "", "xdomain", 0,
                   "secure", 0, "issued", now, "url", "", "query", "auth");
}

/* This node's members: answers SOCKETS (ids) or REMOTE_FETCH (descriptions). */
static void on_fetched(void *arg, const char *members_json, size_t count) {
  gathering_t *g = arg;
  json_t *members = json_loads(members_json, 0, NULL), *out = json_array(), *m;
  size_t i;
  json_array_foreach(members, i, m) {
    json_t *id = json_object_get(m, "id");
    if (!json_is_string(id)) continue;
    if (g->type == 0) {
      json_array_append(out, id);
      continue;
    }
    json_t *rooms = json_object_get(m, "rooms"), *data = json_object_get(m, "data");
    json_t *handshake = json_object_get(m, "handshake"); /* kept for the Admin UI */
    json_array_append_new(out, json_pack("{s:O,s:o,s:o,s:o}", "id", id, "handshake",
                                         json_is_object(handshake) ? json_incref(handshake) : handshake_now(), "rooms",
                                         rooms ? json_incref(rooms) : json_array(), "data",
                                         data ? json_incref(data) : json_object()));
  }
  json_decref(members);
  publish_response(g->r, g->nsp, json_pack("{s:s,s:o}", "requestId", g->request_id, "sockets", out));
  gathering_free(g);
}

/* This node's rooms (keys): answers ALL_ROOMS with their names. */
static void on_rooms(void *arg, const char *keys_json, size_t count) {
  gathering_t *g = arg;
  json_t *keys = json_loads(keys_json, 0, NULL), *out = json_array(), *k;
  size_t i;
  json_array_foreach(keys, i, k) {
    const char *name = json_is_string(k) ? hd_redis_room_name(g->nsp, json_string_value(k)) : NULL;
    if (name) json_array_append_new(out, json_string(name));
  }
  json_decref(keys);
  publish_response(g->r, g->nsp, json_pack("{s:s,s:o}", "requestId", g->request_id, "rooms", out));
  gathering_free(g);
}

static void gather(hd_redis_t *r, const char *nsp, int type, const char *rid, json_t *opts) {
  hd_redis_target_t *t = calloc(1, sizeof(*t));
  gathering_t *g = t && rid && !hd_redis_target(nsp, opts, t) ? gathering_new(r, nsp, type, rid) : NULL;
  int rc = !g ? HD_EINVAL
           : type == 1 ? r->local->ops->all_rooms(r->local, r->hub, &t->to, on_rooms, g)
                       : r->local->ops->fetch(r->local, r->hub, &t->to, on_fetched, g);
  if (rc) {
    HD_DEBUG("cluster", "request not answered", "type=%d err=\"%s\"", type, hd_strerror(rc));
    if (g) gathering_free(g);
  }
  free(t);
}

/* --- 2, 3, 4 --------------------------------------------------------------------------------- */

static void apply(hd_redis_t *r, const char *nsp, int type, json_t *req) {
  json_t *opts = json_object_get(req, "opts");
  const char *rid = json_string_value(json_object_get(req, "requestId"));
  if (!json_is_object(opts)) { /* legacy (sid): not applied, answered so the asker does not wait */
    if (rid) publish_response(r, nsp, json_pack("{s:s}", "requestId", rid));
    return;
  }
  hd_redis_target_t *t = calloc(1, sizeof(*t));
  if (!t || hd_redis_target(nsp, opts, t)) {
    free(t);
    return;
  }
  if (type == 4) {
    bool close = json_is_true(json_object_get(req, "close"));
    r->local->ops->request(r->local, r->hub, close ? HD_HUB_REQ_CLOSE : HD_HUB_REQ_DISCONNECT, &t->to, NULL);
  } else {
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(req, "rooms"), i, v) {
      char key[300];
      if (i >= HD_REDIS_MAX_ROOMS) break;
      if (json_is_string(v) && hd_sio_room_key(nsp, json_string_value(v), key, sizeof key) >= 0)
        r->local->ops->request(r->local, r->hub, type == 2 ? HD_HUB_REQ_JOIN : HD_HUB_REQ_LEAVE, &t->to, key);
    }
  }
  free(t);
}

/* --- 6 --------------------------------------------------------------------------------------- */

typedef struct {
  hd_hub_reply_t base;
  hd_redis_t *r;
  const char *nsp;
  char request_id[64];
} reply_t;

/* {type: 6, requestId, data} on the shared response channel, as the adapter answers. */
static void reply_send(hd_hub_reply_t *base, const char *value_json) {
  reply_t *rp = (reply_t *)base;
  json_t *v = value_json ? json_loads(value_json, JSON_DECODE_ANY, NULL) : NULL;
  if (v) publish_response(rp->r, rp->nsp, json_pack("{s:i,s:s,s:o}", "type", 6, "requestId", rp->request_id, "data", v));
  free(rp);
}

static void server_side_emit(hd_redis_t *r, const char *nsp, json_t *req) {
  json_t *data = json_object_get(req, "data");
  const char *rid = json_string_value(json_object_get(req, "requestId"));
  if (!json_is_array(data) || !json_is_string(json_array_get(data, 0)) || (rid && strlen(rid) >= 64)) return;
  char *args = json_dumps(data, JSON_COMPACT);
  reply_t *rp = rid && args ? malloc(sizeof(*rp)) : NULL;
  if (rp) {
    *rp = (reply_t){{reply_send}, r, nsp, ""};
    snprintf(rp->request_id, sizeof rp->request_id, "%s", rid);
  }
  if (args && (!rid || rp)) hd_hub_server_emit(r->hub, nsp, args, rp ? &rp->base : NULL);
  free(args);
}

/* --- 7 --------------------------------------------------------------------------------------- */

/* Where this node's clients' answers to another node's broadcast with acks go (shard 0 publishes). */
typedef struct {
  hd_hub_acks_t base;
  hd_redis_t *r;
  const char *nsp;
  char request_id[64];
} remote_acks_t;

typedef struct {
  remote_acks_t *acks;     /* a reference */
  json_t *packet;          /* the first ack argument */
  hd_buf_t **att;
  size_t natt;
} ack_task_t;

static void run_ack(void *arg, bool cancelled) {
  ack_task_t *t = arg;
  remote_acks_t *a = t->acks;
  json_t *resp = json_pack("{s:i,s:s,s:O}", "type", 9, "requestId", a->request_id, "packet", t->packet);
  uint8_t *bytes = NULL;
  size_t len = 0;
  if (!cancelled && resp && !hd_redis_encode_value(resp, t->att, (uint32_t)t->natt, &bytes, &len))
    hd_redis_publish_on(a->r, "response", a->nsp, bytes, len);
  free(bytes);
  json_decref(resp);
  json_decref(t->packet);
  for (size_t i = 0; i < t->natt; i++) hd_buf_unref(t->att[i]);
  free(t->att);
  hd_hub_acks_unref(&a->base);
  free(t);
}

/* Any shard: a client answered; its first argument goes to shard 0 for publishing. */
static void remote_on_ack(hd_hub_acks_t *base, const char *args_json, size_t len, hd_buf_t *const *att, size_t natt) {
  remote_acks_t *a = (remote_acks_t *)base;
  json_t *args = json_loadb(args_json, len, 0, NULL);
  ack_task_t *t = calloc(1, sizeof(*t));
  if (!t || !json_is_array(args) || (natt && !(t->att = malloc(natt * sizeof(*t->att))))) {
    free(t);
    json_decref(args);
    return;
  }
  t->packet = json_incref(json_array_size(args) ? json_array_get(args, 0) : json_null());
  json_decref(args);
  for (size_t i = 0; i < natt; i++) t->att[i] = hd_buf_ref(att[i]);
  t->natt = natt;
  t->acks = (remote_acks_t *)hd_hub_acks_ref(base);
  if (hd_mailbox_post(a->r->mailbox, run_ack, t)) run_ack(t, true);
}

/* Shard 0 (the publishing shard): this node's recipients, sent even when 0. */
static void remote_on_clients(hd_hub_acks_t *base, size_t count) {
  remote_acks_t *a = (remote_acks_t *)base;
  publish_response(a->r, a->nsp, json_pack("{s:i,s:s,s:I}", "type", 8, "requestId", a->request_id, "clientCount",
                                           (json_int_t)count));
}

static void remote_acks_free(hd_hub_acks_t *base) { free(base); }

static void on_remote_count(void *arg, const hd_hub_msg_t *msg, size_t delivered, int status) {
  remote_acks_t *a = arg;
  remote_on_clients(&a->base, delivered);
  hd_hub_acks_unref(&a->base);
}

/* Up to max strings of a JSON array (borrowed) into out; -1 when v is neither absent nor such. */
static int strings_of(json_t *v, char **out, int max) {
  if (!v || json_is_null(v)) return 0;
  if (!json_is_array(v) || json_array_size(v) > (size_t)max) return -1;
  for (size_t i = 0; i < json_array_size(v); i++)
    if (!(out[i] = (char *)json_string_value(json_array_get(v, i)))) return -1;
  return (int)json_array_size(v);
}

static void broadcast_with_acks(hd_redis_t *r, const char *nsp, json_t *req, hd_buf_t **att, uint32_t natt) {
  const char *rid = json_string_value(json_object_get(req, "requestId"));
  json_t *packet = json_object_get(req, "packet"), *opts = json_object_get(req, "opts");
  json_t *data = json_object_get(packet, "data"), *pnsp = json_object_get(packet, "nsp");
  json_t *flags = json_object_get(opts, "flags"), *timeout = json_object_get(flags, "timeout");
  char *rooms[HD_REDIS_MAX_ROOMS], *except[HD_REDIS_MAX_EXCEPT];
  int nr = strings_of(json_object_get(opts, "rooms"), rooms, HD_REDIS_MAX_ROOMS);
  int ne = strings_of(json_object_get(opts, "except"), except, HD_REDIS_MAX_EXCEPT);
  if (!rid || strlen(rid) >= 64 || !json_is_array(data) || !json_is_string(json_array_get(data, 0)) || nr < 0 ||
      ne < 0 || (pnsp && !json_is_null(pnsp) && (!json_is_string(pnsp) || strcmp(json_string_value(pnsp), nsp)))) {
    HD_DEBUG("cluster", "malformed broadcast request dropped", "nsp=%s", nsp);
    goto drop;
  }
  remote_acks_t *a = calloc(1, sizeof(*a));
  if (!a) goto drop;
  /* clamped while a double: a huge or NaN timeout never reaches the integer cast */
  double ms = json_is_number(timeout) ? json_number_value(timeout) : HD_REDIS_REQUEST_TIMEOUT_MS;
  a->base = (hd_hub_acks_t){1, (uint64_t)(!(ms >= 1) ? 1 : ms > ACK_TIMEOUT_MAX_MS ? ACK_TIMEOUT_MAX_MS : ms),
                            remote_on_ack, remote_on_clients, remote_acks_free};
  a->r = r, a->nsp = nsp;
  snprintf(a->request_id, sizeof a->request_id, "%s", rid);
  json_t *args = json_array();
  for (size_t i = 1; i < json_array_size(data); i++) json_array_append(args, json_array_get(data, i));
  char *args_text = json_dumps(args, JSON_COMPACT);
  json_decref(args);
  hd_redis_bcast_t b = {.nsp = (char *)nsp, .event = (char *)json_string_value(json_array_get(data, 0)),
                        .args = args_text, .args_len = args_text ? strlen(args_text) : 0, .attachments = att,
                        .attachment_count = natt, .rooms = rooms, .room_count = (uint32_t)nr, .except = except,
                        .except_count = (uint32_t)ne,
                        .flags = json_is_true(json_object_get(flags, "volatile")) ? HD_REDIS_VOLATILE : 0};
  hd_hub_acks_ref(&a->base); /* for on_remote_count */
  int rc = args_text ? hd_redis_deliver(r, nsp, &b, &a->base, on_remote_count, a) : HD_ENOMEM;
  free(args_text);
  if (b.attachments) { /* not taken over */
    for (uint32_t i = 0; i < b.attachment_count; i++) hd_buf_unref(b.attachments[i]);
    free(b.attachments);
  }
  if (rc) on_remote_count(a, NULL, 0, rc); /* answered all the same: the asker waits for every node's count */
  hd_hub_acks_unref(&a->base);
  return;
drop:
  for (uint32_t i = 0; i < natt; i++) hd_buf_unref(att[i]);
  free(att);
}

/* --- dispatch -------------------------------------------------------------------------------- */

static void handle(hd_redis_t *r, const char *nsp, json_t *req, hd_buf_t **att, uint32_t natt) {
  const char *uid = json_string_value(json_object_get(req, "uid"));
  json_t *type_v = json_object_get(req, "type");
  int type = json_is_integer(type_v) ? (int)json_integer_value(type_v) : -1;
  bool own = uid && !strcmp(uid, r->uid);
  if (type == 7 && !own) {
    broadcast_with_acks(r, nsp, req, att, natt);
    return;
  }
  for (uint32_t i = 0; i < natt; i++) hd_buf_unref(att[i]); /* bin belongs in request 7 only */
  free(att);
  if (own && type != 2 && type != 3 && type != 4) return; /* our own echo */
  const char *rid = json_string_value(json_object_get(req, "requestId"));
  switch (type) {
  case 0: {
    json_t *o = json_pack("{s:O?}", "rooms", json_object_get(req, "rooms"));
    gather(r, nsp, 0, rid, o);
    json_decref(o);
    break;
  }
  case 1: gather(r, nsp, 1, rid, NULL); break;
  case 2: case 3: case 4: apply(r, nsp, type, req); break;
  case 5:
    if (json_is_object(json_object_get(req, "opts"))) gather(r, nsp, 5, rid, json_object_get(req, "opts"));
    break;
  case 6: server_side_emit(r, nsp, req); break;
  default: HD_DEBUG("cluster", "unknown request dropped", "type=%d", type);
  }
}

void hd_redis_got_request(hd_redis_t *r, const char *channel, size_t channel_len, const char *data, size_t len) {
  const char *nsp = hd_redis_channel_nsp(r, "request", channel, channel_len);
  if (!nsp || !len) return;
  json_t *req = NULL;
  hd_buf_t **att = NULL;
  uint32_t natt = 0;
  int rc = 0;
  if (data[0] == '{') req = json_loadb(data, len, 0, NULL); /* first byte '{': JSON, as the adapter decides */
  else rc = hd_redis_decode_value(data, len, &req, &att, &natt);
  if (rc || !json_is_object(req)) {
    HD_REDIS_COUNT(r, decode_errors, 1);
    HD_DEBUG("cluster", "malformed request dropped", "bytes=%zu err=\"%s\"", len, hd_strerror(rc ? rc : HD_EPROTO));
    for (uint32_t i = 0; i < natt; i++) hd_buf_unref(att[i]);
    free(att);
  } else {
    handle(r, nsp, req, att, natt);
  }
  json_decref(req);
}
