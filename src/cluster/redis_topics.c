/* The cluster's topic log on Redis (see redis_topics.h): the two scripts, publishes waiting for
 * their echo, the echoes, and replays. Keys: `<prefix>-herald#seq#<topic>` (the counter, never
 * expires: sequences only grow) and `<prefix>-herald#stream#<topic>` (the history). A stream entry
 * and a channel message are the same JSON text (delivery/topic_entry.h): the publisher sends it
 * without "s" and the script puts the sequence in front. */
#include "cluster/redis_topics.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <async.h>
#include <hiredis.h>
#pragma GCC diagnostic pop

#include "cluster/redis.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "delivery/topic_entry.h"

#define TICK_MS 500
#define ECHO_WAIT_MS 3000   /* a publish Redis confirmed whose echo has not come is delivered from the reply */
#define MAX_IN_FLIGHT 10000 /* publishes waiting for Redis on this node; beyond them HD_EBUSY */

/* KEYS: counter, stream. ARGV: channel, max length (0: no stream), max age ms (0: none), entry
 * without its sequence. Returns the sequence given. */
static const char PUBLISH_LUA[] =
    "local seq = redis.call('INCR', KEYS[1])\n"
    "local entry = '{\"s\":' .. string.format('%d', seq) .. ',' .. string.sub(ARGV[4], 2)\n"
    "local maxlen = tonumber(ARGV[2])\n"
    "local age = tonumber(ARGV[3])\n"
    "if maxlen > 0 then\n"
    "  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'd', entry)\n"
    "  if age > 0 then\n"
    "    local now = redis.call('TIME')\n"
    "    local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age\n"
    "    if cutoff > 0 then redis.call('XTRIM', KEYS[2], 'MINID', '~', string.format('%d', cutoff)) end\n"
    "    redis.call('PEXPIRE', KEYS[2], age)\n"
    "  end\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[1], entry)\n"
    "return seq\n";

/* KEYS: counter, stream. ARGV: after (-1: no replay), max age ms (0: none). Returns {top, complete,
 * entries after `after` younger than the age, oldest first...}; complete = 1 when the stream still
 * holds the message right after `after` (or nothing came after it). */
static const char READ_LUA[] =
    "local top = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "local after = tonumber(ARGV[1])\n"
    "if after < 0 then return {top, 1} end\n"
    "if after >= top then return {top, after == top and 1 or 0} end\n"
    "local from = '-'\n"
    "local age = tonumber(ARGV[2])\n"
    "if age > 0 then\n"
    "  local now = redis.call('TIME')\n"
    "  local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age\n"
    "  if cutoff > 0 then from = string.format('%d', cutoff) end\n"
    "end\n"
    "local out = {top, 0}\n"
    "local first = nil\n"
    "for _, e in ipairs(redis.call('XRANGE', KEYS[2], from, '+')) do\n"
    "  local d = e[2][2]\n"
    "  local s = tonumber(string.match(d, '^{\"s\":(%d+)'))\n"
    "  if s then\n"
    "    if not first then first = s end\n"
    "    if s > after then out[#out + 1] = d end\n"
    "  end\n"
    "end\n"
    "if first and first <= after + 1 then out[2] = 1 end\n"
    "return out\n";

typedef struct pending pending_t;

typedef struct {
  hd_topic_log_t base;
  hd_adapter_t *redis;
  hd_hub_t *hub;              /* shard 0's */
  uv_loop_t *loop;            /* shard 0's: everything not atomic runs on its thread */
  hd_mailbox_t *mailbox;
  char *prefix;
  char *channel;
  char max_len[24], max_age[24];
  char pub_sha[41], read_sha[41];
  uint32_t subscribed;        /* atomic: the channel subscription is confirmed */
  uint32_t in_flight;         /* atomic: publishes not yet delivered */
  uint64_t next_id;           /* atomic */
  pending_t *head, *tail;     /* publishes sent to Redis, waiting for their echo, oldest first */
  uv_timer_t timer;
  bool started, stopping;
} topics_t;

/* A publish of this node on its way through Redis. */
struct pending {
  pending_t *next;
  topics_t *t;
  hd_hub_t *from;
  hd_hub_msg_t *msg;          /* as published here (a reference) */
  hd_hub_count_fn on_count;
  void *arg;
  char *entry;                /* the stream entry without its sequence */
  size_t entry_len;
  uint64_t seq;               /* from the script's reply, 0 until then */
  uint64_t sent_at;
  bool listed, awaiting_reply, delivered;
};

/* The publisher's count, carried back to its shard. */
typedef struct {
  topics_t *t;
  hd_hub_t *from;
  hd_hub_count_fn on_count;
  void *arg;
  hd_hub_msg_t *msg;
  size_t delivered;
  int status;
} back_t;

static bool up(topics_t *t) {
  return hd_redis_adapter_connected(t->redis) && __atomic_load_n(&t->subscribed, __ATOMIC_ACQUIRE);
}

static void sha1_hex(const char *text, char out[41]) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1((const unsigned char *)text, strlen(text), d);
  for (int i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Runs the script (by its SHA1, or its text when Redis does not know it) with 2 keys of topic and
 * argc_rest more arguments. 0 or HD_EIO. */
static int run_script(topics_t *t, const char *source, const char *sha, const char *topic, int argc_rest,
                      const char **rest, const size_t *rest_lens, hd_redis_raw_reply_fn fn, void *privdata) {
  hd_sbuf_t seq = {0}, stream = {0};
  hd_sbuf_printf(&seq, "%s-herald#seq#%s", t->prefix, topic);
  hd_sbuf_printf(&stream, "%s-herald#stream#%s", t->prefix, topic);
  const char *argv[12] = {source ? "EVAL" : "EVALSHA", source ? source : sha, "2", seq.ptr, stream.ptr};
  size_t lens[12] = {strlen(argv[0]), strlen(argv[1]), 1, seq.len, stream.len};
  for (int i = 0; i < argc_rest && i < 7; i++) argv[5 + i] = rest[i], lens[5 + i] = rest_lens[i];
  int rc = seq.ptr && stream.ptr ? hd_redis_adapter_command_argv(t->redis, fn, privdata, 5 + argc_rest, argv, lens) : HD_ENOMEM;
  hd_sbuf_free(&seq);
  hd_sbuf_free(&stream);
  return rc;
}

static bool is_noscript(const redisReply *rep) {
  return rep && rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8);
}

/* --- delivery ------------------------------------------------------------------------------ */

static void run_back(void *arg, bool cancelled) {
  back_t *b = arg;
  if (!cancelled) b->on_count(b->arg, b->msg, b->delivered, b->status);
  hd_hub_msg_unref(b->msg);
  free(b);
}

/* Shard 0: every shard delivered a publish of this node: its count goes to the publishing shard. */
static void count_back(void *arg, const hd_hub_msg_t *msg, size_t delivered, int status) {
  back_t *b = arg;
  __atomic_sub_fetch(&b->t->in_flight, 1, __ATOMIC_ACQ_REL);
  if (!b->on_count) {
    free(b);
  } else if (b->from == b->t->hub) {
    b->on_count(b->arg, msg, delivered, status);
    free(b);
  } else {
    b->msg = hd_hub_msg_ref((hd_hub_msg_t *)msg);
    b->delivered = delivered;
    b->status = status;
    if (hd_mailbox_post(hd_hub_mailbox(b->from), run_back, b)) run_back(b, true); /* shutting down */
  }
}

static void unlist(topics_t *t, pending_t *p) {
  if (!p->listed) return;
  pending_t *prev = NULL;
  for (pending_t *q = t->head; q; prev = q, q = q->next)
    if (q == p) {
      if (prev) prev->next = p->next;
      else t->head = p->next;
      if (t->tail == p) t->tail = prev;
      break;
    }
  p->listed = false;
}

static void pending_maybe_free(pending_t *p) {
  if (p->awaiting_reply || !p->delivered || p->listed) return;
  hd_hub_msg_unref(p->msg);
  free(p->entry);
  free(p);
}

/* Delivers msg on this node for pending p (shard 0): its count goes back to the publisher. */
static void deliver_pending(topics_t *t, pending_t *p, hd_hub_msg_t *msg) {
  unlist(t, p);
  p->delivered = true;
  back_t *b = malloc(sizeof(*b));
  if (b) *b = (back_t){t, p->from, p->on_count, p->arg, NULL, 0, 0};
  if (!b || hd_hub_publish(t->hub, msg, NULL, count_back, b)) {
    if (b) count_back(b, msg, 0, 0);
    else __atomic_sub_fetch(&t->in_flight, 1, __ATOMIC_ACQ_REL);
  }
}

/* Redis could not take p: it is delivered on this node only, without a sequence (REMOTE: not sent
 * to the cluster, and not recorded for recovery again). */
static void deliver_here_only(topics_t *t, pending_t *p) {
  p->msg->flags &= ~(uint32_t)HD_MSG_SEQUENCED;
  p->msg->flags |= HD_MSG_REMOTE;
  p->msg->seq = 0;
  deliver_pending(t, p, p->msg);
}

/* Redis took p (its sequence known from the reply) but its echo is lost: delivered from the reply. */
static void deliver_from_reply(topics_t *t, pending_t *p) {
  p->msg->seq = p->seq;
  p->msg->flags |= HD_MSG_REMOTE;
  deliver_pending(t, p, p->msg);
}

/* A message came back on the channel: delivered on this node, in Redis's order. */
static void on_echo(topics_t *t, const char *text, size_t len) {
  hd_hub_msg_t *msg = hd_topic_entry_decode(t->hub, text, len);
  if (!msg) {
    HD_DEBUG("cluster", "undecodable topic message dropped", "len=%zu", len);
    return;
  }
  pending_t *p = t->head;
  while (p && strcmp(p->msg->message_id, msg->message_id)) p = p->next;
  if (p) {
    deliver_pending(t, p, msg);
    pending_maybe_free(p);
  } else {
    hd_hub_publish(t->hub, msg, NULL, NULL, NULL);
  }
  hd_hub_msg_unref(msg);
}

/* Publishes Redis confirmed whose echo will not come now (the subscription went): from the reply. */
static void flush_replied(topics_t *t, uint64_t older_than) {
  for (pending_t *p = t->head, *next; p; p = next) {
    next = p->next;
    if (p->seq && !p->awaiting_reply && p->sent_at <= older_than) {
      deliver_from_reply(t, p);
      pending_maybe_free(p);
    }
  }
}

static void on_channel(redisAsyncContext *c, void *reply, void *privdata) {
  topics_t *t = privdata;
  redisReply *rep = reply;
  if (!rep) { /* the subscriber link went */
    __atomic_store_n(&t->subscribed, 0, __ATOMIC_RELEASE);
    flush_replied(t, UINT64_MAX);
    return;
  }
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_STRING) return;
  if (!strcmp(rep->element[0]->str, "subscribe")) {
    __atomic_store_n(&t->subscribed, 1, __ATOMIC_RELEASE);
  } else if (!strcmp(rep->element[0]->str, "message") && rep->element[2]->type == REDIS_REPLY_STRING && t->hub &&
             !t->stopping) {
    on_echo(t, rep->element[2]->str, rep->element[2]->len);
  }
}

/* --- publish ------------------------------------------------------------------------------- */

static int send_publish(topics_t *t, pending_t *p, bool with_source);

static void on_published(redisAsyncContext *c, void *reply, void *privdata) {
  pending_t *p = privdata;
  topics_t *t = p->t;
  redisReply *rep = reply;
  p->awaiting_reply = false;
  if (is_noscript(rep) && !p->delivered && !send_publish(t, p, true)) return; /* again, with the text */
  if (!p->delivered) {
    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
      p->seq = (uint64_t)rep->integer; /* its echo delivers it (or the timer, from here) */
    } else {
      HD_WARN("cluster", "topic publish not taken by redis: delivered on this node only", "topic=%s err=\"%s\"",
              p->msg->rooms[0], rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "connection lost");
      deliver_here_only(t, p);
    }
  }
  pending_maybe_free(p);
}

static int send_publish(topics_t *t, pending_t *p, bool with_source) {
  const char *rest[4] = {t->channel, t->max_len, t->max_age, p->entry};
  size_t lens[4] = {strlen(t->channel), strlen(t->max_len), strlen(t->max_age), p->entry_len};
  int rc = run_script(t, with_source ? PUBLISH_LUA : NULL, t->pub_sha, p->msg->rooms[0], 4, rest, lens, on_published, p);
  if (!rc) p->awaiting_reply = true;
  return rc;
}

/* Shard 0: sends a publish to Redis, or delivers it here when Redis is not there. */
static void run_publish(void *arg, bool cancelled) {
  pending_t *p = arg;
  topics_t *t = p->t;
  if (cancelled) { /* the node is shutting down */
    __atomic_sub_fetch(&t->in_flight, 1, __ATOMIC_ACQ_REL);
    hd_hub_msg_unref(p->msg);
    free(p->entry);
    free(p);
    return;
  }
  p->sent_at = uv_now(t->loop);
  if (t->stopping || !up(t) || send_publish(t, p, false)) {
    deliver_here_only(t, p);
    pending_maybe_free(p);
    return;
  }
  p->listed = true;
  if (t->tail) t->tail->next = p;
  else t->head = p;
  t->tail = p;
}

static int publish(hd_topic_log_t *log, hd_hub_t *from, hd_hub_msg_t *msg, hd_hub_count_fn on_count, void *arg) {
  topics_t *t = (topics_t *)log;
  if (!up(t)) { /* Redis is not there: this node only, without a sequence */
    msg->flags &= ~(uint32_t)HD_MSG_SEQUENCED;
    return hd_hub_publish(from, msg, NULL, on_count, arg);
  }
  if (__atomic_add_fetch(&t->in_flight, 1, __ATOMIC_ACQ_REL) > MAX_IN_FLIGHT) {
    __atomic_sub_fetch(&t->in_flight, 1, __ATOMIC_ACQ_REL);
    return HD_EBUSY;
  }
  snprintf(msg->message_id, sizeof msg->message_id, "%s-%llx", hd_redis_adapter_uid(t->redis),
           (unsigned long long)__atomic_add_fetch(&t->next_id, 1, __ATOMIC_RELAXED));
  hd_hub_stamp(from, msg); /* its recovery offset travels in the entry; Socket.IO recovery records it once, here */
  pending_t *p = calloc(1, sizeof(*p));
  hd_sbuf_t entry = {0};
  if (!p || hd_topic_entry_encode(msg, false, &entry)) {
    __atomic_sub_fetch(&t->in_flight, 1, __ATOMIC_ACQ_REL);
    free(p);
    hd_sbuf_free(&entry);
    return HD_ENOMEM;
  }
  *p = (pending_t){.t = t, .from = from, .msg = hd_hub_msg_ref(msg), .on_count = on_count, .arg = arg,
                   .entry = entry.ptr, .entry_len = entry.len};
  if (hd_mailbox_post(t->mailbox, run_publish, p)) {
    run_publish(p, true);
    return HD_ECLOSED;
  }
  return 0;
}

/* --- read ---------------------------------------------------------------------------------- */

typedef struct {
  topics_t *t;
  hd_hub_t *from;
  char *topic, *room;
  bool replay;
  uint64_t after;
  hd_topic_read_fn fn;
  void *arg;
  hd_topic_read_t res;
} rd_t;

static void rd_free(rd_t *rd) {
  for (size_t i = 0; i < rd->res.count; i++) hd_hub_msg_unref(rd->res.msgs[i]);
  free(rd->res.msgs);
  free(rd->topic);
  free(rd->room);
  free(rd);
}

static void run_answer(void *arg, bool cancelled) {
  rd_t *rd = arg;
  if (!cancelled) rd->fn(rd->arg, &rd->res);
  rd_free(rd);
}

/* Shard 0: hands the result to the asking shard. */
static void answer(rd_t *rd) {
  if (rd->from == rd->t->hub) run_answer(rd, false);
  else if (hd_mailbox_post(hd_hub_mailbox(rd->from), run_answer, rd)) run_answer(rd, true);
}

static int send_read(rd_t *rd, bool with_source);

static void on_read(redisAsyncContext *c, void *reply, void *privdata) {
  rd_t *rd = privdata;
  redisReply *rep = reply;
  if (is_noscript(rep) && !send_read(rd, true)) return;
  if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
      rep->element[1]->type != REDIS_REPLY_INTEGER) {
    HD_WARN("cluster", "topic read failed", "topic=%s err=\"%s\"", rd->topic,
            rep && rep->type == REDIS_REPLY_ERROR ? rep->str : rep ? "unexpected reply" : "connection lost");
    rd->res.status = HD_EIO;
    answer(rd);
    return;
  }
  rd->res.top = rep->element[0]->integer > 0 ? (uint64_t)rep->element[0]->integer : 0;
  rd->res.complete = rep->element[1]->integer == 1;
  size_t n = rep->elements - 2;
  rd->res.msgs = n ? calloc(n, sizeof(*rd->res.msgs)) : NULL;
  for (size_t i = 0; rd->res.msgs && i < n; i++) {
    const redisReply *e = rep->element[2 + i];
    hd_hub_msg_t *msg = e->type == REDIS_REPLY_STRING ? hd_topic_entry_decode(rd->t->hub, e->str, e->len) : NULL;
    if (msg && hd_hub_msg_targets(msg, rd->room)) rd->res.msgs[rd->res.count++] = msg;
    else if (msg) hd_hub_msg_unref(msg);
  }
  if (n && !rd->res.msgs) rd->res.complete = false;
  answer(rd);
}

static int send_read(rd_t *rd, bool with_source) {
  char after[24];
  if (rd->replay) snprintf(after, sizeof after, "%llu", (unsigned long long)rd->after);
  else snprintf(after, sizeof after, "-1");
  const char *rest[2] = {after, rd->t->max_age};
  size_t lens[2] = {strlen(after), strlen(rd->t->max_age)};
  return run_script(rd->t, with_source ? READ_LUA : NULL, rd->t->read_sha, rd->topic, 2, rest, lens, on_read, rd);
}

static void run_read(void *arg, bool cancelled) {
  rd_t *rd = arg;
  if (cancelled) {
    rd_free(rd); /* the node is shutting down: nobody waits any more */
    return;
  }
  if (rd->t->stopping || send_read(rd, false)) {
    rd->res.status = HD_EIO;
    answer(rd);
  }
}

static int read_log(hd_topic_log_t *log, hd_hub_t *from, const char *topic, const char *member_room, bool replay,
                    uint64_t after, hd_topic_read_fn fn, void *arg) {
  topics_t *t = (topics_t *)log;
  rd_t *rd = calloc(1, sizeof(*rd));
  if (!rd || !(rd->topic = strdup(topic)) || !(rd->room = strdup(member_room))) {
    if (rd) rd_free(rd);
    return HD_ENOMEM;
  }
  rd->t = t, rd->from = from, rd->replay = replay, rd->after = after, rd->fn = fn, rd->arg = arg;
  if (!up(t) || hd_mailbox_post(t->mailbox, run_read, rd)) { /* Redis is not there: no sequence known */
    rd->res.status = HD_EIO;
    run_answer(rd, false);
  }
  return 0;
}

/* --- life ---------------------------------------------------------------------------------- */

static void on_tick(uv_timer_t *timer) {
  topics_t *t = timer->data;
  uint64_t now = uv_now(t->loop);
  if (now > ECHO_WAIT_MS) flush_replied(t, now - ECHO_WAIT_MS);
}

void hd_redis_topics_start(hd_topic_log_t *log, hd_hub_t *hub) {
  topics_t *t = (topics_t *)log;
  t->hub = hub;
  if (t->started) return;
  t->started = true;
  uv_timer_init(t->loop, &t->timer);
  t->timer.data = t;
  uv_timer_start(&t->timer, on_tick, TICK_MS, TICK_MS);
  uv_unref((uv_handle_t *)&t->timer);
}

void hd_redis_topics_stop(hd_topic_log_t *log) {
  topics_t *t = (topics_t *)log;
  if (!t->started || t->stopping) return;
  t->stopping = true;
  uv_timer_stop(&t->timer);
  uv_close((uv_handle_t *)&t->timer, NULL);
}

static void log_free(hd_topic_log_t *log) {
  topics_t *t = (topics_t *)log;
  while (t->head) { /* never answered (the node stopped with them in flight) */
    pending_t *p = t->head;
    t->head = p->next;
    hd_hub_msg_unref(p->msg);
    free(p->entry);
    free(p);
  }
  free(t->prefix);
  free(t->channel);
  free(t);
}

static const hd_topic_log_ops_t redis_topics_ops = {publish, read_log, NULL, NULL, log_free};

hd_topic_log_t *hd_redis_topics_new(hd_adapter_t *redis, const char *prefix, uint32_t max_len, uint64_t max_age_ms,
                                    uv_loop_t *loop, hd_mailbox_t *mailbox) {
  topics_t *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  t->base.ops = &redis_topics_ops;
  t->redis = redis;
  t->loop = loop;
  t->mailbox = mailbox;
  snprintf(t->max_len, sizeof t->max_len, "%u", max_len);
  snprintf(t->max_age, sizeof t->max_age, "%llu", (unsigned long long)max_age_ms);
  sha1_hex(PUBLISH_LUA, t->pub_sha);
  sha1_hex(READ_LUA, t->read_sha);
  hd_sbuf_t ch = {0};
  hd_sbuf_printf(&ch, "%s-herald#topics#", prefix);
  t->channel = ch.ptr;
  if (!(t->prefix = strdup(prefix)) || !t->channel || hd_redis_adapter_subscribe(redis, t->channel, on_channel, t)) {
    log_free(&t->base);
    return NULL;
  }
  return &t->base;
}
