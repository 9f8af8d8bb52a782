/* The Redis adapter (see redis.h): outgoing broadcasts, incoming ones, the connections' life. */
#include "cluster/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <async.h>
#include <hiredis.h>
#include <adapters/libuv.h>
#pragma GCC diagnostic pop

#include "cluster/redis_codec.h"
#include "core/error.h"
#include "core/log.h"
#include "proto/sio.h"

#define TICK_MS 100          /* the timer: reconnect attempts and the node count poll */
#define NODES_EVERY_TICKS 20 /* PUBSUB NUMSUB every 2 s */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

typedef struct {
  hd_adapter_t base;
  hd_adapter_t *local;
  hd_redis_url_t url;
  char *prefix;
  char uid[8];
  char **nsps;
  uint32_t nsp_count;
  uv_loop_t *loop;             /* shard 0's: everything below the atomics runs on its thread */
  hd_mailbox_t *mailbox;
  hd_hub_t *hub;
  redisAsyncContext *pub, *sub;
  bool pub_up, sub_up, started, stopping, resolving;
  uv_timer_t timer;
  uv_getaddrinfo_t gai;
  uint32_t ticks;
  uint64_t backoff_ms, retry_at;
  char addr[256];              /* the host resolved */
  uint32_t connected;          /* atomic: both connections up */
  uint32_t nodes;              /* atomic: PUBSUB NUMSUB of the request channel of "/" */
  uint32_t stopped;            /* atomic: posts refused */
  struct cfetch *fetches;      /* cluster fetches waiting for answers (shard 0's thread) */
  uint64_t next_request;
  struct extra_sub {           /* channels other modules subscribe (hd_redis_adapter_subscribe) */
    char *channel;
    hd_redis_reply_fn fn;
    void *privdata;
  } extra[4];
  uint32_t extra_count;
} redis_t;

/* --- URL ------------------------------------------------------------------------------------- */

int hd_redis_url_parse(const char *url, hd_redis_url_t *out) {
  memset(out, 0, sizeof(*out));
  out->port = 6379;
  if (strncmp(url, "redis://", 8)) return HD_EINVAL;
  const char *p = url + 8, *at = strrchr(p, '@');
  if (at) { /* [user]:password@ */
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon || (size_t)(colon - p) >= sizeof out->user || (size_t)(at - colon - 1) >= sizeof out->password)
      return HD_EINVAL;
    memcpy(out->user, p, (size_t)(colon - p));
    memcpy(out->password, colon + 1, (size_t)(at - colon - 1));
    p = at + 1;
  }
  size_t hl = strcspn(p, ":/");
  if (!hl || hl >= sizeof out->host) return HD_EINVAL;
  memcpy(out->host, p, hl);
  p += hl;
  if (*p == ':') {
    char *end;
    long port = strtol(p + 1, &end, 10);
    if (end == p + 1 || port < 1 || port > 65535) return HD_EINVAL;
    out->port = (int)port;
    p = end;
  }
  if (*p == '/' && p[1]) {
    char *end;
    long db = strtol(p + 1, &end, 10);
    if (end == p + 1 || *end || db < 0 || db > 1000000) return HD_EINVAL;
    out->db = (int)db;
  } else if (*p && strcmp(p, "/")) {
    return HD_EINVAL;
  }
  return 0;
}

/* --- outgoing -------------------------------------------------------------------------------- */

/* The application name of a hub room key of nsp ("nsp\x1froom" -> "room"; "/" keys are names). */
static char *room_name(const char *nsp, char *key) {
  size_t n = strlen(nsp);
  return strcmp(nsp, "/") && !strncmp(key, nsp, n) && key[n] == '\x1f' ? key + n + 1 : key;
}

typedef struct {
  redis_t *r;
  hd_hub_msg_t *msg;
} publish_t;

static void publish_now(redis_t *r, hd_hub_msg_t *msg) {
  if (!r->pub || !__atomic_load_n(&r->connected, __ATOMIC_ACQUIRE)) return;
  bool all = msg->room_count == 1 && msg->rooms[0][0] == '\x1e';
  char *rooms[64], *except[16];
  uint32_t nr = all ? 0 : msg->room_count, ne = msg->except_count;
  if (nr > 64 || ne > 16) {
    HD_WARN("cluster", "broadcast not sent to the cluster: too many rooms", "rooms=%u except=%u", nr, ne);
    return;
  }
  for (uint32_t i = 0; i < nr; i++) rooms[i] = room_name(msg->nsp, msg->rooms[i]);
  for (uint32_t i = 0; i < ne; i++) except[i] = room_name(msg->nsp, msg->except[i]);
  hd_redis_bcast_t b = {r->uid, msg->nsp, msg->event, msg->args, msg->args_len, msg->attachments,
                        msg->attachment_count, rooms, nr, except, ne,
                        (msg->flags & HD_MSG_VOLATILE) ? HD_REDIS_VOLATILE : 0};
  uint8_t *data = NULL;
  size_t len = 0;
  hd_sbuf_t ch = {0};
  int rc = hd_redis_encode_bcast(&b, &data, &len);
  if (!rc && hd_redis_channel(&ch, r->prefix, msg->nsp, nr == 1 ? rooms[0] : NULL)) rc = HD_ENOMEM;
  if (!rc) rc = redisAsyncCommand(r->pub, NULL, NULL, "PUBLISH %b %b", ch.ptr, ch.len, data, len) ? HD_EIO : 0;
  if (rc) HD_WARN("cluster", "broadcast not sent to the cluster", "event=%s err=\"%s\"", msg->event, hd_strerror(rc));
  free(data);
  hd_sbuf_free(&ch);
}

static void run_publish_task(void *arg, bool cancelled) {
  publish_t *p = arg;
  if (!cancelled && !p->r->stopping) publish_now(p->r, p->msg);
  hd_hub_msg_unref(p->msg);
  free(p);
}

static bool goes_to_cluster(const hd_hub_msg_t *msg) {
  return !(msg->flags & (HD_MSG_LOCAL | HD_MSG_REMOTE | HD_MSG_NODE)) && !msg->single_arg && msg->room_count;
}

static int broadcast(hd_adapter_t *a, hd_hub_t *from, hd_hub_msg_t *msg, hd_hub_member_t *skip,
                     hd_hub_count_fn on_count, void *arg) {
  redis_t *r = (redis_t *)a;
  int rc = r->local->ops->broadcast(r->local, from, msg, skip, on_count, arg);
  if (rc || !goes_to_cluster(msg) || !__atomic_load_n(&r->connected, __ATOMIC_ACQUIRE) ||
      __atomic_load_n(&r->stopped, __ATOMIC_ACQUIRE))
    return rc;
  publish_t *p = malloc(sizeof(*p)); /* encoded on shard 0, in id order (posted under the publish lock) */
  if (!p) return 0;
  *p = (publish_t){r, hd_hub_msg_ref(msg)};
  if (hd_mailbox_post(r->mailbox, run_publish_task, p)) run_publish_task(p, true);
  return 0;
}

/* --- incoming -------------------------------------------------------------------------------- */

/* The namespace whose broadcast channels hold channel, and the room of a room channel into *room
 * (NULL for the namespace channel); NULL when none of ours. */
static const char *channel_nsp(redis_t *r, const char *ch, size_t len, char *room, size_t room_cap, bool *has_room) {
  size_t pl = strlen(r->prefix);
  if (len < pl + 2 || memcmp(ch, r->prefix, pl) || ch[pl] != '#') return NULL;
  for (uint32_t i = 0; i < r->nsp_count; i++) {
    size_t nl = strlen(r->nsps[i]), base = pl + 1 + nl + 1;
    if (len < base || memcmp(ch + pl + 1, r->nsps[i], nl) || ch[base - 1] != '#') continue;
    size_t rest = len - base;
    *has_room = rest > 0;
    if (rest && (ch[len - 1] != '#' || rest - 1 >= room_cap)) return NULL;
    if (rest) {
      memcpy(room, ch + base, rest - 1);
      room[rest - 1] = '\0';
    }
    return r->nsps[i];
  }
  return NULL;
}

static void deliver_remote(redis_t *r, const char *nsp, hd_redis_bcast_t *b) {
  if (b->except_count > 16 || b->room_count > 64) {
    HD_WARN("cluster", "broadcast from the cluster dropped: too many rooms", "rooms=%u except=%u", b->room_count,
            b->except_count);
    return;
  }
  char keys[64][300], ekeys[16][300], all[300];
  const char *rk[64], *ek[16];
  uint32_t nr = 0;
  for (uint32_t i = 0; i < b->room_count; i++)
    if (hd_sio_room_key(nsp, b->rooms[i], keys[nr], sizeof keys[nr]) >= 0) rk[nr] = keys[nr], nr++;
  for (uint32_t i = 0; i < b->except_count; i++)
    if (hd_sio_room_key(nsp, b->except[i], ekeys[i], sizeof ekeys[i]) < 0) return;
    else ek[i] = ekeys[i];
  if (!b->room_count) {
    snprintf(all, sizeof all, "\x1e%s", nsp);
    rk[nr++] = all;
  }
  if (!nr) return;
  hd_hub_target_t to = {nsp, rk, nr, ek, b->except_count,
                        HD_MSG_REMOTE | ((b->flags & HD_REDIS_VOLATILE) ? HD_MSG_VOLATILE : 0)};
  hd_hub_msg_t *msg = hd_hub_msg_new(r->hub, &to, b->event, b->args, b->args_len, b->attachments, b->attachment_count);
  b->attachments = NULL; /* taken over */
  b->attachment_count = 0;
  if (!msg) return;
  hd_hub_publish(r->hub, msg, NULL, NULL, NULL);
  hd_hub_msg_unref(msg);
}

static void on_pmessage(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = privdata;
  redisReply *rep = reply;
  if (!rep || r->stopping || !r->hub || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4 ||
      rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "pmessage") ||
      rep->element[2]->type != REDIS_REPLY_STRING || rep->element[3]->type != REDIS_REPLY_STRING)
    return;
  char room[256];
  bool has_room = false;
  const char *nsp = channel_nsp(r, rep->element[2]->str, rep->element[2]->len, room, sizeof room, &has_room);
  if (!nsp) return;
  hd_redis_bcast_t b;
  int rc = hd_redis_decode_bcast(rep->element[3]->str, rep->element[3]->len, &b);
  if (rc) {
    HD_DEBUG("cluster", "undecodable broadcast dropped", "channel=%.*s err=\"%s\"", (int)rep->element[2]->len,
             rep->element[2]->str, hd_strerror(rc));
    return;
  }
  if (strcmp(b.uid, r->uid) && !strcmp(b.nsp, nsp)) deliver_remote(r, nsp, &b);
  hd_redis_bcast_free(&b);
}

static void poll_nodes(redis_t *r);

/* --- requests from other nodes (types 0, 2, 3, 4, 5 answered; 1, 6, 7 not yet) -------------- */

#include <jansson.h>
#include <time.h>

/* The namespace of a request channel `<prefix>-request#<nsp>#`, NULL when none of ours. */
static const char *request_nsp(redis_t *r, const char *ch, size_t len) {
  size_t pl = strlen(r->prefix);
  if (len < pl + 10 || memcmp(ch, r->prefix, pl) || memcmp(ch + pl, "-request#", 9)) return NULL;
  for (uint32_t i = 0; i < r->nsp_count; i++) {
    size_t nl = strlen(r->nsps[i]);
    if (len == pl + 9 + nl + 1 && !memcmp(ch + pl + 9, r->nsps[i], nl) && ch[len - 1] == '#') return r->nsps[i];
  }
  return NULL;
}

#define REQ_ROOMS 64
typedef struct {
  char keys[REQ_ROOMS][300], ekeys[16][300];
  const char *rk[REQ_ROOMS], *ek[16];
  hd_hub_target_t to;
} req_target_t;

/* Fills t from opts {rooms, except} (missing or empty rooms = the whole namespace). 0 or HD_EINVAL. */
static int req_target(const char *nsp, json_t *opts, req_target_t *t) {
  json_t *rooms = json_object_get(opts, "rooms"), *except = json_object_get(opts, "except");
  size_t nr = 0, ne = 0, i;
  json_t *v;
  if (json_is_array(rooms)) json_array_foreach(rooms, i, v) {
      if (!json_is_string(v) || nr >= REQ_ROOMS) return HD_EINVAL;
      if (hd_sio_room_key(nsp, json_string_value(v), t->keys[nr], sizeof t->keys[nr]) < 0) return HD_EINVAL;
      t->rk[nr] = t->keys[nr], nr++;
    }
  if (json_is_array(except)) json_array_foreach(except, i, v) {
      if (!json_is_string(v) || ne >= 16) return HD_EINVAL;
      if (hd_sio_room_key(nsp, json_string_value(v), t->ekeys[ne], sizeof t->ekeys[ne]) < 0) return HD_EINVAL;
      t->ek[ne] = t->ekeys[ne], ne++;
    }
  if (!nr) {
    snprintf(t->keys[0], sizeof t->keys[0], "\x1e%s", nsp);
    t->rk[nr++] = t->keys[0];
  }
  t->to = (hd_hub_target_t){nsp, t->rk, nr, t->ek, ne, 0};
  return 0;
}

/* Publishes resp (stolen) on nsp's shared response channel. */
static void publish_response(redis_t *r, const char *nsp, json_t *resp) {
  char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
  json_decref(resp);
  if (text && r->pub && __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE)) {
    hd_sbuf_t ch = {0};
    hd_sbuf_printf(&ch, "%s-response#%s#", r->prefix, nsp);
    redisAsyncCommand(r->pub, NULL, NULL, "PUBLISH %b %b", ch.ptr, ch.len, text, strlen(text));
    hd_sbuf_free(&ch);
  }
  free(text);
}

typedef struct {
  redis_t *r;
  const char *nsp;
  int type;
  char *request_id;
} fetch_req_t;

/* This node's members gathered over its shards: answers SOCKETS (ids) or REMOTE_FETCH. */
static void on_fetched(void *arg, const char *members_json, size_t count) {
  fetch_req_t *f = arg;
  json_t *members = json_loads(members_json, 0, NULL), *out = json_array(), *m;
  size_t i;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  json_int_t now = (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  char when[64];
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof when, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &tm);
  if (json_is_array(members)) json_array_foreach(members, i, m) {
      json_t *id = json_object_get(m, "id");
      if (!json_is_string(id)) continue;
      if (f->type == 0) {
        json_array_append(out, id);
        continue;
      }
      /* Herald keeps no handshake of a socket: the fields are there, mostly empty */
      json_t *hs = json_pack("{s:{},s:s,s:s,s:b,s:b,s:I,s:s,s:{},s:{}}", "headers", "time", when, "address", "",
                             "xdomain", 0, "secure", 0, "issued", now, "url", "", "query", "auth");
      json_t *rooms = json_object_get(m, "rooms"), *data = json_object_get(m, "data");
      json_array_append_new(out, json_pack("{s:O,s:o,s:o,s:o}", "id", id, "handshake", hs, "rooms",
                                           rooms ? json_incref(rooms) : json_array(), "data",
                                           data ? json_incref(data) : json_object()));
    }
  json_decref(members);
  (void)count;
  publish_response(f->r, f->nsp, json_pack("{s:s,s:o}", "requestId", f->request_id, "sockets", out));
  free(f->request_id);
  free(f);
}

/* One JSON request from the request channel of nsp. */
static void handle_request(redis_t *r, const char *nsp, const char *text, size_t len) {
  json_t *req = json_loadb(text, len, 0, NULL);
  if (!json_is_object(req)) goto done;
  const char *uid = json_string_value(json_object_get(req, "uid"));
  const char *rid = json_string_value(json_object_get(req, "requestId"));
  json_t *opts = json_object_get(req, "opts");
  int type = (int)json_integer_value(json_object_get(req, "type"));
  if (uid && !strcmp(uid, r->uid) && type != 2 && type != 3 && type != 4) goto done; /* our own echo */
  req_target_t *t = calloc(1, sizeof(*t));
  if (!t) goto done;
  switch (type) {
  case 2:
  case 3:
  case 4:
    if (!json_is_object(opts)) { /* legacy (sid): not applied, answered so the asker does not wait */
      if (rid) publish_response(r, nsp, json_pack("{s:s}", "requestId", rid));
      break;
    }
    if (req_target(nsp, opts, t)) break;
    if (type == 4) {
      r->local->ops->request(r->local, r->hub, HD_HUB_REQ_DISCONNECT, &t->to, NULL);
      break;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(req, "rooms"), i, v) {
      char key[300];
      if (json_is_string(v) && hd_sio_room_key(nsp, json_string_value(v), key, sizeof key) >= 0)
        r->local->ops->request(r->local, r->hub, type == 2 ? HD_HUB_REQ_JOIN : HD_HUB_REQ_LEAVE, &t->to, key);
    }
    break;
  case 0:
  case 5: {
    if (!rid) break;
    json_t *o = type == 5 ? opts : json_pack("{s:O}", "rooms", json_object_get(req, "rooms"));
    int rc = req_target(nsp, o, t);
    if (type == 0) json_decref(o);
    if (rc) break;
    fetch_req_t *f = malloc(sizeof(*f));
    if (!f || !(f->request_id = strdup(rid))) {
      free(f);
      break;
    }
    f->r = r, f->nsp = nsp, f->type = type;
    if (r->local->ops->fetch(r->local, r->hub, &t->to, on_fetched, f)) free(f->request_id), free(f);
    break;
  }
  default:
    HD_DEBUG("cluster", "request type not answered yet", "type=%d", type);
  }
  free(t);
done:
  json_decref(req);
}

/* The request channels: the subscription's confirmation asks for the node count at once; messages
 * are requests (JSON; msgpack BROADCAST with acks is not answered yet). */
static void on_request(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = privdata;
  redisReply *rep = reply;
  if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_STRING)
    return;
  if (!strcmp(rep->element[0]->str, "subscribe")) poll_nodes(r);
  else if (!strcmp(rep->element[0]->str, "message") && !r->stopping && r->hub &&
           rep->element[1]->type == REDIS_REPLY_STRING && rep->element[2]->type == REDIS_REPLY_STRING &&
           rep->element[2]->len && rep->element[2]->str[0] == '{') {
    const char *nsp = request_nsp(r, rep->element[1]->str, rep->element[1]->len);
    if (nsp) handle_request(r, nsp, rep->element[2]->str, rep->element[2]->len);
  }
}

static uint32_t server_count(hd_adapter_t *a);

/* --- this node's requests to the cluster ------------------------------------------------------ */

#define REQUEST_TIMEOUT_MS 5000

/* The application room name of a hub room key in nsp; NULL for the namespace's all-room. */
static const char *key_name(const char *nsp, const char *key) {
  if (key[0] == '\x1e') return NULL;
  if (!nsp || !strcmp(nsp, "/")) return key;
  const char *sep = strchr(key, '\x1f');
  return sep ? sep + 1 : key;
}

/* {rooms, except} of to, by application names. */
static json_t *opts_of(const hd_hub_target_t *to) {
  json_t *rooms = json_array(), *except = json_array();
  for (size_t i = 0; i < to->room_count; i++) {
    const char *n = key_name(to->nsp, to->rooms[i]);
    if (!n) { /* the whole namespace */
      json_array_clear(rooms);
      break;
    }
    json_array_append_new(rooms, json_string(n));
  }
  for (size_t i = 0; i < to->except_count; i++) {
    const char *n = key_name(to->nsp, to->except[i]);
    if (n) json_array_append_new(except, json_string(n));
  }
  return json_pack("{s:o,s:o}", "rooms", rooms, "except", except);
}

typedef struct {
  redis_t *r;
  char *nsp;
  char *text;
} out_request_t;

static void run_out_request(void *arg, bool cancelled) {
  out_request_t *o = arg;
  redis_t *r = o->r;
  if (!cancelled && !r->stopping && r->pub && __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE)) {
    hd_sbuf_t ch = {0};
    hd_sbuf_printf(&ch, "%s-request#%s#", r->prefix, o->nsp);
    redisAsyncCommand(r->pub, NULL, NULL, "PUBLISH %b %b", ch.ptr, ch.len, o->text, strlen(o->text));
    hd_sbuf_free(&ch);
  }
  free(o->nsp);
  free(o->text);
  free(o);
}

/* Posts req (stolen) for publishing on nsp's request channel from shard 0. 0 or HD_E*. */
static int post_request(redis_t *r, const char *nsp, json_t *req) {
  out_request_t *o = malloc(sizeof(*o));
  char *text = json_dumps(req, JSON_COMPACT);
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

static bool cluster_up(redis_t *r) {
  return __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE) && !__atomic_load_n(&r->stopped, __ATOMIC_ACQUIRE);
}

/* Join/leave/disconnect: published only; every node, this one too, applies it when the request comes
 * back on the request channel (as the adapter does). Without Redis: this node only. */
static int request(hd_adapter_t *a, hd_hub_t *from, hd_hub_req_t req, const hd_hub_target_t *to, const char *room) {
  redis_t *r = (redis_t *)a;
  if (!cluster_up(r) || (to->flags & HD_MSG_LOCAL)) return r->local->ops->request(r->local, from, req, to, room);
  json_t *j = json_pack("{s:s,s:i,s:o}", "uid", r->uid, "type", req == HD_HUB_REQ_JOIN ? 2 : req == HD_HUB_REQ_LEAVE ? 3 : 4,
                        "opts", opts_of(to));
  if (!j) return HD_ENOMEM;
  if (req == HD_HUB_REQ_DISCONNECT) json_object_set_new(j, "close", json_false());
  else {
    const char *n = room ? key_name(to->nsp, room) : NULL;
    if (!n) {
      json_decref(j);
      return HD_EINVAL;
    }
    json_object_set_new(j, "rooms", json_pack("[s]", n));
  }
  return post_request(r, to->nsp, j);
}

/* A fetch across the cluster: this node's part first, then the other nodes' answers. */
typedef struct cfetch {
  struct cfetch *next;
  redis_t *r;
  hd_hub_t *from;
  hd_hub_fetch_fn fn;
  void *arg;
  char *nsp;
  char request_id[32];
  json_t *request;   /* published by shard 0 */
  json_t *sockets;   /* gathered descriptions */
  uint32_t expected, got;
  uv_timer_t timer;
} cfetch_t;

static void cfetch_free(uv_handle_t *h) {
  cfetch_t *f = h->data;
  json_decref(f->sockets);
  json_decref(f->request);
  free(f->nsp);
  free(f);
}

static void run_cfetch_back(void *arg, bool cancelled) {
  cfetch_t *f = arg;
  char *text = json_dumps(f->sockets, JSON_COMPACT);
  f->fn(f->arg, text ? text : "[]", text ? json_array_size(f->sockets) : 0);
  free(text);
  json_decref(f->sockets);
  json_decref(f->request);
  free(f->nsp);
  free(f);
}

/* Shard 0: hands f's sockets back to the asking shard. */
static void cfetch_done(cfetch_t *f, bool armed) {
  redis_t *r = f->r;
  for (cfetch_t **pp = &r->fetches; *pp; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  cfetch_t *back = malloc(sizeof(*back));
  if (back) {
    *back = *f;
    f->sockets = NULL, f->request = NULL, f->nsp = NULL;
    if (back->from == r->hub) run_cfetch_back(back, false);
    else if (hd_mailbox_post(hd_hub_mailbox(back->from), run_cfetch_back, back)) /* shutting down: dropped */
      json_decref(back->sockets), json_decref(back->request), free(back->nsp), free(back);
  }
  if (armed) {
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, cfetch_free);
  } else {
    json_decref(f->sockets), json_decref(f->request), free(f->nsp), free(f);
  }
}

static void on_cfetch_timeout(uv_timer_t *t) {
  cfetch_t *f = t->data;
  HD_DEBUG("cluster", "fetch timed out", "requestId=%s answers=%u of %u", f->request_id, f->got, f->expected);
  cfetch_done(f, true);
}

/* Shard 0: publishes the request and waits for the answers. */
static void run_cfetch(void *arg, bool cancelled) {
  cfetch_t *f = arg;
  redis_t *r = f->r;
  uint32_t n = server_count(&r->base);
  if (cancelled || r->stopping || !r->pub || !__atomic_load_n(&r->connected, __ATOMIC_ACQUIRE) || n <= 1) {
    if (cancelled) { /* shard 0 is stopping: the node shuts down, the answer is dropped */
      json_decref(f->sockets), json_decref(f->request), free(f->nsp), free(f);
      return;
    }
    f->next = r->fetches, r->fetches = f;
    cfetch_done(f, false);
    return;
  }
  f->expected = n - 1;
  f->next = r->fetches, r->fetches = f;
  char *text = json_dumps(f->request, JSON_COMPACT);
  hd_sbuf_t ch = {0};
  hd_sbuf_printf(&ch, "%s-request#%s#", r->prefix, f->nsp);
  if (text) redisAsyncCommand(r->pub, NULL, NULL, "PUBLISH %b %b", ch.ptr, ch.len, text, strlen(text));
  hd_sbuf_free(&ch);
  free(text);
  uv_timer_init(r->loop, &f->timer);
  f->timer.data = f;
  uv_timer_start(&f->timer, on_cfetch_timeout, REQUEST_TIMEOUT_MS, 0);
}

/* The asking shard: this node's part, then on to shard 0 for the rest. */
static void on_local_part(void *arg, const char *members_json, size_t count) {
  cfetch_t *f = arg;
  f->sockets = json_loads(members_json, 0, NULL);
  if (!json_is_array(f->sockets)) json_decref(f->sockets), f->sockets = json_array();
  if (hd_mailbox_post(f->r->mailbox, run_cfetch, f)) {
    char *text = json_dumps(f->sockets, JSON_COMPACT);
    f->fn(f->arg, text ? text : "[]", text ? json_array_size(f->sockets) : 0);
    free(text);
    json_decref(f->sockets), json_decref(f->request), free(f->nsp), free(f);
  }
}

static int fetch(hd_adapter_t *a, hd_hub_t *from, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg) {
  redis_t *r = (redis_t *)a;
  if (!cluster_up(r) || (to->flags & HD_MSG_LOCAL) || server_count(a) <= 1)
    return r->local->ops->fetch(r->local, from, to, fn, arg);
  cfetch_t *f = calloc(1, sizeof(*f));
  if (!f || !(f->nsp = strdup(to->nsp ? to->nsp : "/"))) {
    free(f);
    return HD_ENOMEM;
  }
  *f = (cfetch_t){.r = r, .from = from, .fn = fn, .arg = arg, .nsp = f->nsp};
  snprintf(f->request_id, sizeof f->request_id, "%s%llu", r->uid,
           (unsigned long long)__atomic_add_fetch(&r->next_request, 1, __ATOMIC_RELAXED));
  f->request = json_pack("{s:s,s:s,s:i,s:o}", "uid", r->uid, "requestId", f->request_id, "type", 5, "opts", opts_of(to));
  int rc = f->request ? r->local->ops->fetch(r->local, from, to, on_local_part, f) : HD_ENOMEM;
  if (rc) json_decref(f->request), free(f->nsp), free(f);
  return rc;
}

/* The response channels: answers to this node's fetches. */
static void on_response(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = privdata;
  redisReply *rep = reply;
  if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_STRING ||
      strcmp(rep->element[0]->str, "message") || rep->element[2]->type != REDIS_REPLY_STRING ||
      !rep->element[2]->len || rep->element[2]->str[0] != '{' || !r->fetches)
    return;
  json_t *j = json_loadb(rep->element[2]->str, rep->element[2]->len, 0, NULL);
  const char *rid = json_string_value(json_object_get(j, "requestId"));
  cfetch_t *f = r->fetches;
  while (f && rid && strcmp(f->request_id, rid)) f = f->next;
  json_t *sockets = json_object_get(j, "sockets");
  if (f && json_is_array(sockets)) {
    size_t i;
    json_t *s;
    json_array_foreach(sockets, i, s) {
      if (!json_is_object(s)) continue;
      json_t *d = json_pack("{s:O?,s:s,s:O?,s:O?}", "id", json_object_get(s, "id"), "nsp", f->nsp, "rooms",
                            json_object_get(s, "rooms"), "data", json_object_get(s, "data"));
      if (d) json_array_append_new(f->sockets, d);
    }
    if (++f->got >= f->expected) cfetch_done(f, true);
  }
  json_decref(j);
}

/* --- connections ----------------------------------------------------------------------------- */

static void drop(redisAsyncContext **slot) {
  redisAsyncContext *c = *slot;
  *slot = NULL;
  if (c) redisAsyncDisconnect(c); /* its callbacks find no slot holding it any more */
}

/* c is gone (connect failed or connection lost; hiredis frees it): both go, a reconnect is planned. */
static void forget(redis_t *r, const redisAsyncContext *c, const char *why) {
  if (c == r->pub) r->pub = NULL, r->pub_up = false;
  else if (c == r->sub) r->sub = NULL, r->sub_up = false;
  else return;
  bool was = __atomic_exchange_n(&r->connected, 0, __ATOMIC_ACQ_REL);
  __atomic_store_n(&r->nodes, 1, __ATOMIC_RELEASE);
  if (r->stopping) return;
  if (was) HD_WARN("cluster", "redis connection lost; broadcasts stay on this node until it is back", "redis=%s:%d err=\"%s\"",
                   r->url.host, r->url.port, why);
  else HD_DEBUG("cluster", "redis not reachable", "redis=%s:%d err=\"%s\" retry_ms=%llu", r->url.host, r->url.port, why,
                (unsigned long long)r->backoff_ms);
  drop(&r->pub);
  drop(&r->sub);
  r->retry_at = uv_now(r->loop) + r->backoff_ms;
  r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void on_numsub(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = privdata;
  redisReply *rep = reply;
  if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_INTEGER)
    return;
  long long n = rep->element[1]->integer;
  if (__atomic_load_n(&r->connected, __ATOMIC_ACQUIRE)) __atomic_store_n(&r->nodes, n > 1 ? (uint32_t)n : 1, __ATOMIC_RELEASE);
}

static void poll_nodes(redis_t *r) {
  if (r->pub && r->pub_up) redisAsyncCommand(r->pub, on_numsub, r, "PUBSUB NUMSUB %s-request#/#", r->prefix);
}

static void on_connect(const redisAsyncContext *c, int status) {
  redis_t *r = c->data;
  if (status != REDIS_OK) {
    forget(r, c, c->errstr);
    return;
  }
  if (c == r->pub) r->pub_up = true;
  if (c == r->sub) r->sub_up = true;
  if (r->pub_up && r->sub_up) {
    __atomic_store_n(&r->connected, 1, __ATOMIC_RELEASE);
    r->backoff_ms = BACKOFF_MIN_MS;
    HD_INFO("cluster", "redis connected", "redis=%s:%d prefix=%s uid=%s", r->url.host, r->url.port, r->prefix, r->uid);
    poll_nodes(r);
  }
}

static void on_disconnect(const redisAsyncContext *c, int status) {
  forget(c->data, c, c->errstr[0] ? c->errstr : "disconnected");
}

static void on_setup_reply(redisAsyncContext *c, void *reply, void *privdata) {
  redisReply *rep = reply;
  if (rep && rep->type == REDIS_REPLY_ERROR)
    HD_ERROR("cluster", "redis refused a set-up command", "what=%s err=\"%s\"", (const char *)privdata, rep->str);
}

static redisAsyncContext *open_ctx(redis_t *r) {
  redisAsyncContext *c = redisAsyncConnect(r->addr, r->url.port);
  if (!c) return NULL;
  if (c->err) {
    HD_DEBUG("cluster", "redis connect failed", "err=\"%s\"", c->errstr);
    redisAsyncFree(c);
    return NULL;
  }
  c->data = r;
  redisLibuvAttach(c, r->loop);
  redisAsyncSetConnectCallback(c, on_connect);
  redisAsyncSetDisconnectCallback(c, on_disconnect);
  if (*r->url.user)
    redisAsyncCommand(c, on_setup_reply, "AUTH", "AUTH %s %s", r->url.user, r->url.password);
  else if (*r->url.password)
    redisAsyncCommand(c, on_setup_reply, "AUTH", "AUTH %s", r->url.password);
  return c;
}

/* A glob pattern matching s literally (Redis PSUBSCRIBE escapes with a backslash). */
static void glob_escape(hd_sbuf_t *out, const char *s) {
  for (; *s; s++) {
    if (strchr("*?[]\\", *s)) hd_sbuf_append(out, "\\", 1);
    hd_sbuf_append(out, s, 1);
  }
}

static void connect_now(redis_t *r) {
  r->pub = open_ctx(r);
  r->sub = r->pub ? open_ctx(r) : NULL;
  if (!r->pub || !r->sub) {
    if (r->pub) r->pub->onDisconnect = NULL;
    drop(&r->pub);
    r->retry_at = uv_now(r->loop) + r->backoff_ms;
    return;
  }
  if (r->url.db) redisAsyncCommand(r->pub, on_setup_reply, "SELECT", "SELECT %d", r->url.db);
  for (uint32_t i = 0; i < r->nsp_count; i++) {
    hd_sbuf_t pat = {0}, req = {0};
    glob_escape(&pat, r->prefix);
    hd_sbuf_puts(&pat, "#");
    glob_escape(&pat, r->nsps[i]);
    hd_sbuf_puts(&pat, "#*");
    hd_sbuf_printf(&req, "%s-request#%s#", r->prefix, r->nsps[i]);
    if (pat.ptr && req.ptr) {
      redisAsyncCommand(r->sub, on_pmessage, r, "PSUBSCRIBE %b", pat.ptr, pat.len);
      redisAsyncCommand(r->sub, on_request, r, "SUBSCRIBE %b", req.ptr, req.len);
      hd_sbuf_t resp = {0};
      hd_sbuf_printf(&resp, "%s-response#%s#", r->prefix, r->nsps[i]);
      redisAsyncCommand(r->sub, on_response, r, "SUBSCRIBE %b", resp.ptr, resp.len);
      hd_sbuf_free(&resp);
    }
    hd_sbuf_free(&pat);
    hd_sbuf_free(&req);
  }
  for (uint32_t i = 0; i < r->extra_count; i++)
    redisAsyncCommand(r->sub, r->extra[i].fn, r->extra[i].privdata, "SUBSCRIBE %s", r->extra[i].channel);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  redis_t *r = req->data;
  r->resolving = false;
  if (!status && res) {
    if (res->ai_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, r->addr, sizeof r->addr);
    else uv_ip4_name((struct sockaddr_in *)res->ai_addr, r->addr, sizeof r->addr);
  }
  uv_freeaddrinfo(res);
  if (r->stopping) return;
  if (status) {
    HD_WARN("cluster", "cannot resolve the redis host", "host=%s err=\"%s\"", r->url.host, uv_strerror(status));
    r->retry_at = uv_now(r->loop) + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
    return;
  }
  connect_now(r);
}

/* Connects both (the host resolved off the loop first: hiredis would resolve it blocking). */
static void connect_all(redis_t *r) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  r->resolving = true;
  r->gai.data = r;
  if (uv_getaddrinfo(r->loop, &r->gai, on_resolved, r->url.host, NULL, &hints)) {
    r->resolving = false;
    r->retry_at = uv_now(r->loop) + r->backoff_ms;
  }
}

static void on_timer(uv_timer_t *t) {
  redis_t *r = t->data;
  if (r->stopping) return;
  r->ticks++;
  if (!r->pub && !r->sub && !r->resolving && uv_now(r->loop) >= r->retry_at) connect_all(r);
  else if (r->ticks % NODES_EVERY_TICKS == 0 && __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE)) poll_nodes(r);
}

void hd_redis_adapter_start(hd_adapter_t *a) {
  redis_t *r = (redis_t *)a;
  if (r->started) return;
  r->started = true;
  uv_timer_init(r->loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_timer, TICK_MS, TICK_MS);
  connect_all(r);
}

void hd_redis_adapter_stop(hd_adapter_t *a) {
  redis_t *r = (redis_t *)a;
  if (!r->started || r->stopping) return;
  r->stopping = true;
  __atomic_store_n(&r->stopped, 1, __ATOMIC_RELEASE);
  __atomic_store_n(&r->connected, 0, __ATOMIC_RELEASE);
  if (r->resolving) uv_cancel((uv_req_t *)&r->gai);
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, NULL);
  while (r->fetches) cfetch_done(r->fetches, true); /* with the answers so far */
  drop(&r->pub);
  drop(&r->sub);
  HD_INFO("cluster", "left the cluster", "redis=%s:%d", r->url.host, r->url.port);
}

void hd_redis_adapter_set_hub(hd_adapter_t *a, hd_hub_t *hub) { ((redis_t *)a)->hub = hub; }

const char *hd_redis_adapter_uid(const hd_adapter_t *a) { return ((const redis_t *)a)->uid; }

/* --- the rest of the adapter ----------------------------------------------------------------- */

static uint32_t server_count(hd_adapter_t *a) {
  uint32_t n = __atomic_load_n(&((redis_t *)a)->nodes, __ATOMIC_ACQUIRE);
  return n ? n : 1;
}

static void health(hd_adapter_t *a, hd_adapter_health_t *out) {
  redis_t *r = (redis_t *)a;
  out->enabled = true;
  out->connected = __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE);
  out->nodes = server_count(a);
  snprintf(out->where, sizeof out->where, "%s:%d", r->url.host, r->url.port);
}

static void adapter_free(hd_adapter_t *a) {
  redis_t *r = (redis_t *)a;
  r->local->ops->free(r->local);
  for (uint32_t i = 0; i < r->extra_count; i++) free(r->extra[i].channel);
  for (uint32_t i = 0; i < r->nsp_count; i++) free(r->nsps[i]);
  free(r->nsps);
  free(r->prefix);
  free(r);
}

static const hd_adapter_ops_t redis_ops = {broadcast, request, fetch, server_count, adapter_free, health};

/* Splits the comma-separated namespaces (trimmed, each once, "/" always). */
static int set_nsps(redis_t *r, const char *list) {
  char *copy = malloc(strlen(list) + 3);
  if (!copy) return HD_ENOMEM;
  sprintf(copy, "/,%s", list);
  int rc = 0;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ' || *tok == '\t') tok++;
    size_t n = strlen(tok);
    while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t')) tok[--n] = '\0';
    bool seen = !n;
    for (uint32_t i = 0; !seen && i < r->nsp_count; i++) seen = !strcmp(r->nsps[i], tok);
    if (seen) continue;
    char **grown = realloc(r->nsps, (r->nsp_count + 1) * sizeof(char *));
    if (!grown) rc = HD_ENOMEM;
    else if (!((r->nsps = grown)[r->nsp_count] = strdup(tok))) rc = HD_ENOMEM;
    else r->nsp_count++;
  }
  free(copy);
  return rc;
}

hd_adapter_t *hd_redis_adapter_new(hd_adapter_t *local, const hd_redis_url_t *url, const char *prefix,
                                   const char *nsps, uv_loop_t *loop, hd_mailbox_t *mailbox) {
  redis_t *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  r->base.ops = &redis_ops;
  r->local = local;
  r->url = *url;
  snprintf(r->addr, sizeof r->addr, "%s", url->host);
  r->loop = loop;
  r->mailbox = mailbox;
  r->nodes = 1;
  r->backoff_ms = BACKOFF_MIN_MS;
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  uint8_t rnd[6];
  if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL)) {
    uint64_t t = uv_hrtime();
    memcpy(rnd, &t, sizeof rnd);
  }
  for (int i = 0; i < 6; i++) r->uid[i] = alphabet[rnd[i] & 63];
  if (!(r->prefix = strdup(prefix)) || set_nsps(r, nsps)) {
    r->local = NULL;
    for (uint32_t i = 0; i < r->nsp_count; i++) free(r->nsps[i]);
    free(r->nsps);
    free(r->prefix);
    free(r);
    return NULL;
  }
  return &r->base;
}

/* --- for other cluster modules (see redis.h) ------------------------------------------------- */

bool hd_redis_adapter_connected(const hd_adapter_t *a) {
  const redis_t *r = (const redis_t *)a;
  return __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE) && !__atomic_load_n(&r->stopped, __ATOMIC_ACQUIRE);
}

int hd_redis_adapter_command(hd_adapter_t *a, hd_redis_reply_fn fn, void *privdata, int argc, const char **argv,
                             const size_t *lens) {
  redis_t *r = (redis_t *)a;
  if (r->stopping || !r->pub || !r->pub_up || !hd_redis_adapter_connected(a)) return HD_EIO;
  return redisAsyncCommandArgv(r->pub, fn, privdata, argc, argv, lens) == REDIS_OK ? 0 : HD_EIO;
}

int hd_redis_adapter_subscribe(hd_adapter_t *a, const char *channel, hd_redis_reply_fn fn, void *privdata) {
  redis_t *r = (redis_t *)a;
  if (r->extra_count == sizeof r->extra / sizeof r->extra[0]) return HD_ERANGE;
  char *copy = strdup(channel);
  if (!copy) return HD_ENOMEM;
  r->extra[r->extra_count++] = (struct extra_sub){copy, fn, privdata};
  return 0;
}
