/* The Redis adapter (see redis.h, redis_internal.h): the URL, the two connections (commands and
 * (P)SUBSCRIBE) on shard 0's loop with reconnection and backoff, the node count poll, and the
 * adapter's table. What arrives on the subscribed channels is handed to redis_broadcast.c,
 * redis_requests.c and redis_asks.c.
 * The link is up once the command connection answered a PING and the other confirmed every
 * subscription; while up, a PING every second. A connect or a PING unanswered for --redis-timeout
 * ms means Redis hangs: both connections are dropped (their queued commands with them), the link is
 * down and a reconnect planned, as when a connection closes. PUBLISHes sent and not yet answered
 * are bounded by --redis-max-queue bytes; beyond it a message is dropped and counted. */
#include "cluster/redis_internal.h"

#include <stdarg.h>
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

#include "core/error.h"
#include "core/log.h"

#define TICK_MS 100          /* the timer: reconnect attempts, PINGs and the node count poll */
#define NODES_EVERY_TICKS 20 /* PUBSUB NUMSUB every 2 s */
#define PING_EVERY_TICKS 10  /* a PING every second */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

typedef hd_redis_t redis_t;

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

/* --- publishing and what the subscriptions bring ---------------------------------------------- */

bool hd_redis_up(hd_redis_t *r) {
  return __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE) && !__atomic_load_n(&r->stopped, __ATOMIC_ACQUIRE);
}

/* A PUBLISH was answered (or its connection dropped): its bytes leave the queue. */
static void on_published(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = c->data;
  __atomic_fetch_sub(&r->stats.queued, (uint64_t)(uintptr_t)privdata, __ATOMIC_RELAXED);
}

int hd_redis_publish(hd_redis_t *r, hd_redis_kind_t kind, const char *channel, size_t channel_len, const void *data,
                     size_t len) {
  if (r->stopping || !r->pub || !__atomic_load_n(&r->connected, __ATOMIC_ACQUIRE)) {
    HD_REDIS_COUNT(r, dropped_down, 1);
    return HD_ECLOSED;
  }
  uint64_t cost = channel_len + len, queued = __atomic_load_n(&r->stats.queued, __ATOMIC_RELAXED);
  if (queued + cost > r->max_queue) {
    if (!(HD_REDIS_COUNT(r, dropped_full, 1) & 1023)) /* the first, then one line per 1,024 */
      HD_WARN("cluster", "redis is not keeping up: message dropped (outgoing queue full)",
              "queued=%llu max=%llu bytes=%llu", (unsigned long long)queued, (unsigned long long)r->max_queue,
              (unsigned long long)cost);
    return HD_EBUSY;
  }
  if (redisAsyncCommand(r->pub, on_published, (void *)(uintptr_t)cost, "PUBLISH %b %b", channel, channel_len, data,
                        len) != REDIS_OK) {
    HD_REDIS_COUNT(r, dropped_down, 1);
    return HD_ECLOSED;
  }
  __atomic_fetch_add(&r->stats.queued, cost, __ATOMIC_RELAXED);
  HD_REDIS_COUNT(r, out[kind], 1);
  HD_REDIS_COUNT(r, bytes_out, len);
  return 0;
}

int hd_redis_publish_on(hd_redis_t *r, const char *kind, const char *nsp, const void *data, size_t len) {
  hd_sbuf_t ch = {0};
  int rc = hd_sbuf_printf(&ch, "%s-%s#%s#", r->prefix, kind, nsp) ? HD_ENOMEM : 0;
  if (!rc)
    rc = hd_redis_publish(r, !strcmp(kind, "request") ? HD_REDIS_REQUEST : HD_REDIS_RESPONSE, ch.ptr, ch.len, data, len);
  hd_sbuf_free(&ch);
  return rc;
}

void hd_redis_request_id(hd_redis_t *r, char out[32]) {
  snprintf(out, 32, "%s%llu", r->uid, (unsigned long long)__atomic_add_fetch(&r->next_request, 1, __ATOMIC_RELAXED));
}

static bool is_message(redisReply *rep, const char *kind, size_t elements) {
  if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != elements) return false;
  for (size_t i = 0; i < elements; i++)
    if (rep->element[i]->type != REDIS_REPLY_STRING) return false;
  return !strcmp(rep->element[0]->str, kind);
}

static void link_up_check(redis_t *r);

/* A subscription's confirmation (kind "subscribe" or "psubscribe") on the live sub connection: once
 * every one came, that connection is up. */
static bool confirmed(redis_t *r, redisAsyncContext *c, redisReply *rep, const char *kind) {
  if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_STRING ||
      strcmp(rep->element[0]->str, kind))
    return false;
  if (c == r->sub && ++r->subscribed == 4 * r->nsp_count) {
    r->sub_up = true;
    link_up_check(r);
  }
  return true;
}

static void on_pmessage(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = privdata;
  redisReply *rep = reply;
  if (confirmed(r, c, rep, "psubscribe") || r->stopping || !r->hub || !is_message(rep, "pmessage", 4)) return;
  HD_REDIS_COUNT(r, in[HD_REDIS_BROADCAST], 1);
  hd_redis_got_broadcast(r, rep->element[2]->str, rep->element[2]->len, rep->element[3]->str, rep->element[3]->len);
}

static void poll_nodes(redis_t *r);

/* The request channels: the subscription's confirmation asks for the node count at once. */
static void on_request(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = privdata;
  redisReply *rep = reply;
  if (confirmed(r, c, rep, "subscribe")) {
    poll_nodes(r);
  } else if (!r->stopping && r->hub && is_message(rep, "message", 3)) {
    HD_REDIS_COUNT(r, in[HD_REDIS_REQUEST], 1);
    hd_redis_got_request(r, rep->element[1]->str, rep->element[1]->len, rep->element[2]->str, rep->element[2]->len);
  }
}

/* The response channels (shared, and this node's own): answers to this node's requests. */
static void on_response(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = privdata;
  redisReply *rep = reply;
  if (confirmed(r, c, rep, "subscribe") || r->stopping || !is_message(rep, "message", 3)) return;
  HD_REDIS_COUNT(r, in[HD_REDIS_RESPONSE], 1);
  hd_redis_got_response(r, rep->element[2]->str, rep->element[2]->len);
}

/* --- connections ----------------------------------------------------------------------------- */

/* Frees a connection at once: its queued commands are dropped and their callbacks run with no
 * reply (redisAsyncDisconnect would wait for the answers of a Redis that may hang). Its callbacks
 * find no slot holding it any more. */
static void drop(redisAsyncContext **slot) {
  redisAsyncContext *c = *slot;
  *slot = NULL;
  if (c) redisAsyncFree(c);
}

/* The link is lost: c is gone (connect failed or connection closed; hiredis frees it), or, c NULL,
 * Redis did not answer in time (timed_out). Both connections go, this node's requests waiting for
 * answers finish with what they have, a reconnect is planned. */
static void lose(redis_t *r, const redisAsyncContext *c, const char *why, bool timed_out) {
  if (c == r->pub) r->pub = NULL;
  else if (c == r->sub) r->sub = NULL;
  else if (c) return; /* one dropped already */
  r->pub_up = r->sub_up = false;
  r->subscribed = 0;
  r->attempt_at = r->ping_at_ns = 0;
  bool was = __atomic_exchange_n(&r->connected, 0, __ATOMIC_ACQ_REL);
  __atomic_store_n(&r->nodes, 1, __ATOMIC_RELEASE);
  if (r->stopping) return;
  drop(&r->pub);
  drop(&r->sub);
  if (timed_out) HD_REDIS_COUNT(r, timeouts, 1);
  if (was) {
    HD_REDIS_COUNT(r, losses, 1);
    HD_WARN("cluster", "redis connection lost; broadcasts stay on this node until it is back", "redis=%s:%d err=\"%s\"",
            r->url.host, r->url.port, why);
    hd_redis_lag_reset(r);
    uint32_t failed = hd_redis_asks_stop(r); /* nobody will answer them now */
    if (failed) HD_REDIS_COUNT(r, requests_failed, failed);
  } else {
    HD_DEBUG("cluster", "redis not reachable", "redis=%s:%d err=\"%s\" retry_ms=%llu", r->url.host, r->url.port, why,
             (unsigned long long)r->backoff_ms);
  }
  r->retry_at = uv_now(r->loop) + r->backoff_ms;
  r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Both connections ready: the link is up. */
static void link_up_check(redis_t *r) {
  if (!r->pub_up || !r->sub_up || __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE)) return;
  __atomic_store_n(&r->connected, 1, __ATOMIC_RELEASE);
  r->backoff_ms = BACKOFF_MIN_MS;
  r->attempt_at = 0;
  if (r->ever_connected) {
    HD_REDIS_COUNT(r, reconnects, 1);
    HD_INFO("cluster", "redis reconnected; broadcasts reach the cluster again", "redis=%s:%d", r->url.host, r->url.port);
  } else {
    HD_INFO("cluster", "redis connected", "redis=%s:%d prefix=%s uid=%s", r->url.host, r->url.port, r->prefix, r->uid);
  }
  r->ever_connected = true;
  poll_nodes(r);
}

/* A PING's answer: its round trip; the first one on a new command connection makes it ready. */
static void on_pong(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = c->data;
  redisReply *rep = reply;
  if (!rep || c != r->pub || r->stopping) return;
  if (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "PONG")) {
    HD_ERROR("cluster", "redis refused a PING", "err=\"%s\"", rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
    return; /* not ready: the connect times out and is tried again */
  }
  if (r->ping_at_ns)
    __atomic_store_n(&r->stats.ping_us, (uv_hrtime() - r->ping_at_ns) / 1000, __ATOMIC_RELAXED);
  r->ping_at_ns = 0;
  if (!r->pub_up) {
    r->pub_up = true;
    link_up_check(r);
  }
}

static void ping(redis_t *r) {
  if (r->pub && redisAsyncCommand(r->pub, on_pong, NULL, "PING") == REDIS_OK) r->ping_at_ns = uv_hrtime();
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

typedef struct {
  hd_redis_count_fn fn;
  void *arg;
  bool root;               /* the count of "/": also the node count */
} counting_t;

static void on_count(redisAsyncContext *c, void *reply, void *privdata) {
  redis_t *r = c->data;
  counting_t *k = privdata;
  redisReply *rep = reply;
  uint32_t n = 1;
  if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_INTEGER &&
      rep->element[1]->integer > 1)
    n = rep->element[1]->integer > UINT32_MAX ? UINT32_MAX : (uint32_t)rep->element[1]->integer;
  if (!rep) HD_REDIS_COUNT(r, requests_failed, 1); /* the link went down under the request */
  if (!rep || !hd_redis_up(r)) n = 1;
  else if (k->root) __atomic_store_n(&r->nodes, n, __ATOMIC_RELEASE);
  k->fn(r, n, k->arg);
  free(k);
}

void hd_redis_count_nodes(hd_redis_t *r, const char *nsp, hd_redis_count_fn fn, void *arg) {
  counting_t *k = hd_redis_up(r) && r->pub ? malloc(sizeof(*k)) : NULL;
  if (k) *k = (counting_t){fn, arg, !strcmp(nsp, "/")};
  if (!k || redisAsyncCommand(r->pub, on_count, k, "PUBSUB NUMSUB %s-request#%s#", r->prefix, nsp) != REDIS_OK) {
    free(k);
    fn(r, 1, arg);
  }
}

/* TCP is up (a stopped Redis accepts too): the command connection is ready at its first PONG, the
 * other at its last subscription's confirmation. */
static void on_connect(const redisAsyncContext *c, int status) {
  redis_t *r = c->data;
  if (status != REDIS_OK) lose(r, c, c->errstr, false);
  else if (c == r->pub) ping(r);
}

static void on_disconnect(const redisAsyncContext *c, int status) {
  lose(c->data, c, c->errstr[0] ? c->errstr : "disconnected", false);
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
  r->attempt_at = uv_now(r->loop);
  r->subscribed = 0;
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
      hd_sbuf_printf(&resp, "%s#", r->uid); /* publishOnSpecificResponseChannel answers to this node */
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

/* Every tick: a reconnect when one is due; the watch on a connect or a PING that takes too long;
 * while up, a PING every second and the node count every 2 s. */
static void on_timer(uv_timer_t *t) {
  redis_t *r = t->data;
  if (r->stopping) return;
  r->ticks++;
  uint64_t now = uv_now(r->loop);
  bool up = __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE);
  if (!r->pub && !r->sub && !r->resolving) {
    if (now >= r->retry_at) connect_all(r);
  } else if (!up && r->attempt_at && now - r->attempt_at >= r->timeout_ms) {
    lose(r, NULL, "redis did not answer the connect in time (--redis-timeout)", true);
  } else if (up && r->ping_at_ns && (uv_hrtime() - r->ping_at_ns) / 1000000 >= r->timeout_ms) {
    lose(r, NULL, "redis did not answer a PING in time (--redis-timeout)", true);
  } else if (up) {
    if (!r->ping_at_ns && r->ticks % PING_EVERY_TICKS == 0) ping(r);
    if (r->ticks % NODES_EVERY_TICKS == 0) poll_nodes(r);
  }
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
  hd_redis_asks_stop(r); /* with the answers so far */
  /* a healthy link is closed politely (what was queued still leaves), a hung one at once */
  bool healthy = r->pub_up && r->sub_up && !r->ping_at_ns;
  redisAsyncContext *pub = r->pub, *sub = r->sub;
  r->pub = r->sub = NULL;
  if (pub) healthy ? redisAsyncDisconnect(pub) : redisAsyncFree(pub);
  if (sub) healthy ? redisAsyncDisconnect(sub) : redisAsyncFree(sub);
  HD_INFO("cluster", "left the cluster", "redis=%s:%d", r->url.host, r->url.port);
}

void hd_redis_adapter_set_hub(hd_adapter_t *a, hd_hub_t *hub) { ((redis_t *)a)->hub = hub; }

void hd_redis_adapter_keep_handshakes(hd_adapter_t *a, bool keep) { ((redis_t *)a)->keep_handshakes = keep; }

void hd_redis_adapter_set_limits(hd_adapter_t *a, uint64_t max_queue, uint64_t timeout_ms) {
  redis_t *r = (redis_t *)a;
  r->max_queue = max_queue;
  r->timeout_ms = timeout_ms ? timeout_ms : 1;
}

const char *hd_redis_adapter_uid(const hd_adapter_t *a) { return ((const redis_t *)a)->uid; }

/* --- the rest of the adapter ----------------------------------------------------------------- */

uint32_t hd_redis_server_count(hd_adapter_t *a) {
  uint32_t n = __atomic_load_n(&((redis_t *)a)->nodes, __ATOMIC_ACQUIRE);
  return n ? n : 1;
}

static void health(hd_adapter_t *a, hd_adapter_health_t *out) {
  redis_t *r = (redis_t *)a;
  out->enabled = true;
  out->connected = __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE);
  out->nodes = hd_redis_server_count(a);
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

static const hd_adapter_ops_t redis_ops = {hd_redis_broadcast,        hd_redis_request,      hd_redis_fetch,
                                           hd_redis_all_rooms,        hd_redis_server_side_emit,
                                           hd_redis_server_count,     adapter_free,          health,
                                           hd_redis_metrics};

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
  r->max_queue = HD_REDIS_DEFAULT_MAX_QUEUE;
  r->timeout_ms = HD_REDIS_DEFAULT_TIMEOUT_MS;
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

/* --- one command for the other cluster modules (the node registry) ---------------------------- */

typedef struct {
  hd_redis_reply_fn fn;
  void *arg;
} command_t;

static void on_command_reply(redisAsyncContext *c, void *reply, void *privdata) {
  command_t *cmd = privdata;
  cmd->fn(reply, cmd->arg);
  free(cmd);
}

int hd_redis_adapter_command(hd_adapter_t *a, hd_redis_reply_fn fn, void *arg, const char *fmt, ...) {
  redis_t *r = (redis_t *)a;
  if (r->stopping || !r->pub || !__atomic_load_n(&r->connected, __ATOMIC_ACQUIRE)) return HD_ECLOSED;
  command_t *cmd = malloc(sizeof(*cmd));
  if (!cmd) return HD_ENOMEM;
  *cmd = (command_t){fn, arg};
  va_list ap;
  va_start(ap, fmt);
  int rc = redisvAsyncCommand(r->pub, on_command_reply, cmd, fmt, ap);
  va_end(ap);
  if (rc != REDIS_OK) {
    free(cmd);
    return HD_EIO;
  }
  return 0;
}

bool hd_redis_adapter_connected(const hd_adapter_t *a) {
  const redis_t *r = (const redis_t *)a;
  return __atomic_load_n(&r->connected, __ATOMIC_ACQUIRE) && !__atomic_load_n(&r->stopped, __ATOMIC_ACQUIRE);
}

int hd_redis_adapter_command_argv(hd_adapter_t *a, hd_redis_raw_reply_fn fn, void *privdata, int argc,
                                  const char **argv, const size_t *lens) {
  redis_t *r = (redis_t *)a;
  if (r->stopping || !r->pub || !r->pub_up || !hd_redis_adapter_connected(a)) return HD_EIO;
  return redisAsyncCommandArgv(r->pub, fn, privdata, argc, argv, lens) == REDIS_OK ? 0 : HD_EIO;
}

int hd_redis_adapter_subscribe(hd_adapter_t *a, const char *channel, hd_redis_raw_reply_fn fn, void *privdata) {
  redis_t *r = (redis_t *)a;
  if (r->extra_count == sizeof r->extra / sizeof r->extra[0]) return HD_ERANGE;
  char *copy = strdup(channel);
  if (!copy) return HD_ENOMEM;
  r->extra[r->extra_count++] = (struct extra_sub){copy, fn, privdata};
  return 0;
}
