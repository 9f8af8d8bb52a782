/* Connection state recovery across nodes, kept in Redis (see redis_recovery.h). */
#include "cluster/redis_recovery.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <hiredis.h>
#pragma GCC diagnostic pop

#include "cluster/redis.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

#define MAX_NSPS 16
#define EXPIRE_EVERY_MS 1000 /* a stream's PEXPIRE is renewed at most this often */
#define MAX_SESSION_ROOMS 4096

/* KEYS: the stream. ARGV: the client's offset, the most entries to return. The entries after the
 * one whose o is the offset, newest first; nil when no entry has it (trimmed, expired, never kept)
 * or more than the most follow it. */
static const char find_script[] =
    "local last, out, max = '+', {}, tonumber(ARGV[2])\n"
    "while true do\n"
    "  local batch = redis.call('XREVRANGE', KEYS[1], last, '-', 'COUNT', 100)\n"
    "  if #batch == 0 then return false end\n"
    "  for _, e in ipairs(batch) do\n"
    "    local f = e[2]\n"
    "    for i = 1, #f, 2 do\n"
    "      if f[i] == 'o' then\n"
    "        if f[i + 1] == ARGV[1] then return out end\n"
    "        break\n"
    "      end\n"
    "    end\n"
    "    if #out >= max then return false end\n"
    "    out[#out + 1] = e\n"
    "  end\n"
    "  last = '(' .. batch[#batch][1]\n"
    "end\n";

typedef struct {
  hd_recovery_cluster_t base;
  hd_adapter_t *redis;
  hd_mailbox_t *mailbox; /* shard 0's: everything below runs on its thread */
  char *prefix;
  uint64_t window_ms;
  uint32_t max_packets;
  struct {
    char nsp[128];
    uint64_t at; /* mono ms of the last PEXPIRE */
  } expiry[MAX_NSPS];
  uint32_t expiry_count;
} rr_t;

static int key_of(hd_sbuf_t *out, const rr_t *rr, const char *kind, const char *name) {
  return hd_sbuf_printf(out, "%s#herald#%s#%s", rr->prefix, kind, name);
}

static void on_write_reply(void *reply, void *arg) {
  redisReply *rep = reply;
  if (rep && rep->type == REDIS_REPLY_ERROR)
    HD_WARN("cluster", "redis refused a recovery write", "what=%s err=\"%s\"", (const char *)arg, rep->str);
}

/* --- recording the packets ------------------------------------------------------------------ */

typedef struct {
  rr_t *rr;
  hd_hub_msg_t *msg;
} record_t;

/* A JSON array text of v (malloc'd) or NULL. */
static char *strv_json(char *const *v, uint32_t n) {
  json_t *a = json_array();
  for (uint32_t i = 0; a && i < n; i++) json_array_append_new(a, json_string(v[i]));
  char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return text;
}

/* Renews the stream's expiry when a second has passed since the last time (window after the last write). */
static void renew_expiry(rr_t *rr, const char *nsp, const hd_sbuf_t *key) {
  uint64_t now = hd_clock_mono_ms();
  uint32_t i = 0;
  while (i < rr->expiry_count && strcmp(rr->expiry[i].nsp, nsp)) i++;
  if (i == rr->expiry_count) {
    if (i == MAX_NSPS || strlen(nsp) >= sizeof rr->expiry[i].nsp) return;
    snprintf(rr->expiry[i].nsp, sizeof rr->expiry[i].nsp, "%s", nsp);
    rr->expiry[i].at = 0;
    rr->expiry_count++;
  }
  if (rr->expiry[i].at && now - rr->expiry[i].at < EXPIRE_EVERY_MS) return;
  if (!hd_redis_adapter_command(rr->redis, on_write_reply, "PEXPIRE", "PEXPIRE %b %llu", key->ptr, key->len,
                                (unsigned long long)(rr->window_ms + EXPIRE_EVERY_MS)))
    rr->expiry[i].at = now;
}

static void write_record(rr_t *rr, const hd_hub_msg_t *msg) {
  hd_sbuf_t key = {0}, att = {0};
  char *rooms = strv_json(msg->rooms, msg->room_count), *except = strv_json(msg->except, msg->except_count);
  char offset[24], ts[24];
  snprintf(offset, sizeof offset, "%llu", (unsigned long long)msg->cluster_offset);
  snprintf(ts, sizeof ts, "%lld", (long long)msg->timestamp);
  int rc = rooms && except && !key_of(&key, rr, "recovery", msg->nsp) ? 0 : HD_ENOMEM;
  for (uint32_t i = 0; !rc && i < msg->attachment_count; i++) {
    uint32_t n = (uint32_t)msg->attachments[i]->len;
    uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    if (hd_sbuf_append(&att, be, 4) || hd_sbuf_append(&att, msg->attachments[i]->data, n)) rc = HD_ENOMEM;
  }
  if (!rc)
    rc = hd_redis_adapter_command(rr->redis, on_write_reply, "XADD",
                                  "XADD %b MAXLEN ~ %u * o %s t %s e %s a %b r %s x %s b %b", key.ptr, key.len,
                                  rr->max_packets, offset, ts, msg->event, msg->args, msg->args_len, rooms, except,
                                  att.ptr ? att.ptr : "", att.len);
  if (!rc) renew_expiry(rr, msg->nsp, &key);
  else HD_DEBUG("cluster", "broadcast not kept for recovery", "nsp=%s err=\"%s\"", msg->nsp, hd_strerror(rc));
  free(rooms);
  free(except);
  hd_sbuf_free(&key);
  hd_sbuf_free(&att);
}

static void run_record(void *arg, bool cancelled) {
  record_t *r = arg;
  if (!cancelled) write_record(r->rr, r->msg);
  hd_hub_msg_unref(r->msg);
  free(r);
}

/* Posted to shard 0 under the publish lock: the XADD leaves before the broadcast's PUBLISH, on the
 * same connection, so a node that got the broadcast finds it in the stream. */
static void record(hd_recovery_cluster_t *c, const hd_hub_msg_t *msg) {
  rr_t *rr = (rr_t *)c;
  record_t *r = malloc(sizeof(*r));
  if (!r) return;
  *r = (record_t){rr, hd_hub_msg_ref((hd_hub_msg_t *)msg)};
  if (hd_mailbox_post(rr->mailbox, run_record, r)) run_record(r, true);
}

/* --- sessions --------------------------------------------------------------------------------- */

typedef struct {
  rr_t *rr;
  char pid[24];
  char *json;
} save_t;

static void run_save(void *arg, bool cancelled) {
  save_t *sv = arg;
  hd_sbuf_t key = {0};
  if (!cancelled && !key_of(&key, sv->rr, "session", sv->pid)) {
    int rc = hd_redis_adapter_command(sv->rr->redis, on_write_reply, "SET", "SET %b %s PX %llu", key.ptr, key.len,
                                      sv->json, (unsigned long long)sv->rr->window_ms);
    if (rc) HD_DEBUG("cluster", "session not kept for recovery", "err=\"%s\"", hd_strerror(rc));
  }
  hd_sbuf_free(&key);
  free(sv->json);
  free(sv);
}

static void save(hd_recovery_cluster_t *c, const hd_recovery_session_t *s) {
  rr_t *rr = (rr_t *)c;
  json_t *rooms = json_array();
  for (char *const *r = s->rooms; rooms && r && *r; r++) json_array_append_new(rooms, json_string(*r));
  json_t *o = rooms ? json_pack("{s:s,s:s,s:s,s:o}", "id", s->id, "sub", s->sub, "nsp", s->nsp, "rooms", rooms) : NULL;
  save_t *sv = malloc(sizeof(*sv));
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!sv || !text) {
    free(sv);
    free(text);
    return;
  }
  sv->rr = rr;
  snprintf(sv->pid, sizeof sv->pid, "%s", s->pid);
  sv->json = text;
  if (hd_mailbox_post(rr->mailbox, run_save, sv)) run_save(sv, true);
}

typedef struct {
  rr_t *rr;
  char pid[24];
  hd_mailbox_t *reply_to;
  hd_recovery_session_fn fn;
  void *arg;
  int status;
  hd_recovery_session_t s;
} take_t;

static void run_take_answer(void *arg, bool cancelled) {
  take_t *t = arg;
  if (!cancelled) t->fn(t->arg, t->status, &t->s);
  hd_recovery_session_clear(&t->s);
  free(t);
}

static void take_answer(take_t *t, int status) {
  t->status = status;
  if (hd_mailbox_post(t->reply_to, run_take_answer, t)) run_take_answer(t, true);
}

static bool copy_str(char *dst, size_t cap, json_t *v) {
  const char *s = json_string_value(v);
  if (!s || strlen(s) >= cap) return false;
  memcpy(dst, s, strlen(s) + 1);
  return true;
}

/* Fills s from the session's JSON. 0 or HD_EPROTO. */
static int parse_session(const char *text, size_t len, const char *pid, hd_recovery_session_t *s) {
  json_t *o = json_loadb(text, len, 0, NULL), *rooms = json_object_get(o, "rooms");
  int rc = json_is_object(o) && json_is_array(rooms) && json_array_size(rooms) <= MAX_SESSION_ROOMS &&
                   copy_str(s->id, sizeof s->id, json_object_get(o, "id")) &&
                   copy_str(s->sub, sizeof s->sub, json_object_get(o, "sub")) &&
                   copy_str(s->nsp, sizeof s->nsp, json_object_get(o, "nsp"))
               ? 0
               : HD_EPROTO;
  snprintf(s->pid, sizeof s->pid, "%s", pid);
  if (!rc && !(s->rooms = calloc(json_array_size(rooms) + 1, sizeof(*s->rooms)))) rc = HD_ENOMEM;
  for (size_t i = 0; !rc && i < json_array_size(rooms); i++) {
    const char *r = json_string_value(json_array_get(rooms, i));
    if (!r) rc = HD_EPROTO;
    else if (!(s->rooms[i] = strdup(r))) rc = HD_ENOMEM;
  }
  if (rc) hd_recovery_session_clear(s);
  json_decref(o);
  return rc;
}

static void on_take_reply(void *reply, void *arg) {
  take_t *t = arg;
  redisReply *rep = reply;
  int rc = !rep ? HD_ECLOSED : rep->type == REDIS_REPLY_NIL ? HD_ENOTFOUND : rep->type != REDIS_REPLY_STRING ? HD_EIO : 0;
  if (!rc) rc = parse_session(rep->str, rep->len, t->pid, &t->s);
  if (rep && rep->type == REDIS_REPLY_ERROR) HD_WARN("cluster", "redis refused GETDEL", "err=\"%s\"", rep->str);
  take_answer(t, rc);
}

static void run_take(void *arg, bool cancelled) {
  take_t *t = arg;
  hd_sbuf_t key = {0};
  int rc = cancelled ? HD_ECLOSED : key_of(&key, t->rr, "session", t->pid) ? HD_ENOMEM : 0;
  if (!rc) rc = hd_redis_adapter_command(t->rr->redis, on_take_reply, t, "GETDEL %b", key.ptr, key.len);
  hd_sbuf_free(&key);
  if (rc) take_answer(t, rc);
}

static int take(hd_recovery_cluster_t *c, const char *pid, hd_mailbox_t *reply_to, hd_recovery_session_fn fn,
                void *arg) {
  rr_t *rr = (rr_t *)c;
  if (strlen(pid) >= sizeof(((take_t *)0)->pid)) return HD_EINVAL;
  take_t *t = calloc(1, sizeof(*t));
  if (!t) return HD_ENOMEM;
  t->rr = rr;
  strcpy(t->pid, pid);
  t->reply_to = reply_to;
  t->fn = fn;
  t->arg = arg;
  int rc = hd_mailbox_post(rr->mailbox, run_take, t);
  if (rc) free(t);
  return rc;
}

/* --- the missed packets ------------------------------------------------------------------------ */

typedef struct {
  rr_t *rr;
  hd_hub_t *hub;
  char nsp[128];
  uint64_t after;
  hd_mailbox_t *reply_to;
  hd_recovery_missed_fn fn;
  void *arg;
  int status;
  hd_hub_msg_t **msgs;
  size_t n;
} missed_t;

static void missed_clear(missed_t *m) {
  for (size_t i = 0; i < m->n; i++) hd_hub_msg_unref(m->msgs[i]);
  free(m->msgs);
  m->msgs = NULL;
  m->n = 0;
}

static void run_missed_answer(void *arg, bool cancelled) {
  missed_t *m = arg;
  if (!cancelled) {
    m->fn(m->arg, m->status, m->msgs, m->n); /* takes the messages */
    m->msgs = NULL;
    m->n = 0;
  }
  missed_clear(m);
  free(m);
}

static void missed_answer(missed_t *m, int status) {
  if (status) missed_clear(m);
  m->status = status;
  if (hd_mailbox_post(m->reply_to, run_missed_answer, m)) run_missed_answer(m, true);
}

static redisReply *field(redisReply *fields, const char *name) {
  for (size_t i = 0; i + 1 < fields->elements; i += 2)
    if (fields->element[i]->type == REDIS_REPLY_STRING && !strcmp(fields->element[i]->str, name) &&
        fields->element[i + 1]->type == REDIS_REPLY_STRING)
      return fields->element[i + 1];
  return NULL;
}

/* A JSON array of strings into a NULL-terminated vector (malloc'd) and its length; NULL on error. */
static char **strv_of(const char *text, size_t len, size_t *n) {
  json_t *a = json_loadb(text, len, 0, NULL);
  char **v = json_is_array(a) ? calloc(json_array_size(a) + 1, sizeof(*v)) : NULL;
  bool ok = v != NULL;
  for (size_t i = 0; ok && i < json_array_size(a); i++) {
    const char *s = json_string_value(json_array_get(a, i));
    ok = s && (v[i] = strdup(s));
  }
  *n = v ? json_array_size(a) : 0;
  json_decref(a);
  if (!ok && v) {
    for (size_t i = 0; v[i]; i++) free(v[i]);
    free(v);
    v = NULL;
  }
  return v;
}

static void strv_free(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

/* One stream entry as a message of m->hub; NULL when malformed or out of memory. */
static hd_hub_msg_t *entry_msg(missed_t *m, redisReply *e) {
  if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY) return NULL;
  redisReply *f = e->element[1], *o = field(f, "o"), *t = field(f, "t"), *ev = field(f, "e"), *a = field(f, "a"),
             *r = field(f, "r"), *x = field(f, "x"), *b = field(f, "b");
  if (!o || !t || !ev || !a || !r || !x || !b) return NULL;
  size_t nr = 0, nx = 0, natt = 0;
  char **rooms = strv_of(r->str, r->len, &nr), **except = strv_of(x->str, x->len, &nx);
  hd_buf_t **att = NULL;
  bool ok = rooms && except && nr > 0;
  for (size_t p = 0; ok && p < b->len;) { /* 4-byte big-endian lengths, each followed by its bytes */
    const uint8_t *s = (const uint8_t *)b->str + p;
    size_t len = b->len - p >= 4 ? (size_t)s[0] << 24 | (size_t)s[1] << 16 | (size_t)s[2] << 8 | s[3] : 0;
    bool fits = b->len - p >= 4 && len <= b->len - p - 4 && natt < 1024;
    hd_buf_t **grown = fits ? realloc(att, (natt + 1) * sizeof(*att)) : NULL;
    ok = grown && (grown[natt] = hd_buf_from(s + 4, len));
    if (grown) att = grown;
    if (ok) natt++, p += 4 + len;
  }
  hd_hub_msg_t *msg = NULL;
  if (ok) {
    hd_hub_target_t to = {m->nsp, (const char *const *)rooms, nr, (const char *const *)except, nx, 0};
    msg = hd_hub_msg_new(m->hub, &to, ev->str, a->str, a->len, att, (uint32_t)natt); /* takes att */
    att = NULL;
    natt = 0;
  }
  if (msg) {
    msg->cluster_offset = strtoull(o->str, NULL, 10);
    msg->timestamp = strtoll(t->str, NULL, 10);
  }
  for (size_t i = 0; i < natt; i++) hd_buf_unref(att[i]);
  free(att);
  strv_free(rooms);
  strv_free(except);
  return msg;
}

static void on_missed_reply(void *reply, void *arg) {
  missed_t *m = arg;
  redisReply *rep = reply;
  if (!rep) return missed_answer(m, HD_ECLOSED);
  if (rep->type == REDIS_REPLY_NIL) return missed_answer(m, HD_ENOTFOUND);
  if (rep->type != REDIS_REPLY_ARRAY) {
    if (rep->type == REDIS_REPLY_ERROR) HD_WARN("cluster", "redis refused the recovery read", "err=\"%s\"", rep->str);
    return missed_answer(m, HD_EIO);
  }
  if (rep->elements && !(m->msgs = calloc(rep->elements, sizeof(*m->msgs)))) return missed_answer(m, HD_ENOMEM);
  for (size_t i = rep->elements; i-- > 0;) { /* newest first: turned around */
    hd_hub_msg_t *msg = entry_msg(m, rep->element[i]);
    if (!msg) return missed_answer(m, HD_EPROTO);
    m->msgs[m->n++] = msg;
  }
  missed_answer(m, 0);
}

static void run_missed(void *arg, bool cancelled) {
  missed_t *m = arg;
  hd_sbuf_t key = {0};
  char after[24];
  snprintf(after, sizeof after, "%llu", (unsigned long long)m->after);
  int rc = cancelled ? HD_ECLOSED : key_of(&key, m->rr, "recovery", m->nsp) ? HD_ENOMEM : 0;
  if (!rc)
    rc = hd_redis_adapter_command(m->rr->redis, on_missed_reply, m, "EVAL %s 1 %b %s %u", find_script, key.ptr,
                                  key.len, after, m->rr->max_packets);
  hd_sbuf_free(&key);
  if (rc) missed_answer(m, rc);
}

static int missed(hd_recovery_cluster_t *c, hd_hub_t *hub, const char *nsp, uint64_t after, hd_mailbox_t *reply_to,
                  hd_recovery_missed_fn fn, void *arg) {
  rr_t *rr = (rr_t *)c;
  if (strlen(nsp) >= sizeof(((missed_t *)0)->nsp)) return HD_EINVAL;
  missed_t *m = calloc(1, sizeof(*m));
  if (!m) return HD_ENOMEM;
  *m = (missed_t){.rr = rr, .hub = hub, .after = after, .reply_to = reply_to, .fn = fn, .arg = arg};
  strcpy(m->nsp, nsp);
  int rc = hd_mailbox_post(rr->mailbox, run_missed, m);
  if (rc) free(m);
  return rc;
}

/* --- the table ------------------------------------------------------------------------------- */

hd_recovery_cluster_t *hd_redis_recovery_new(hd_adapter_t *redis, hd_mailbox_t *mailbox, const char *prefix,
                                             uint64_t window_ms, uint32_t max_packets) {
  rr_t *rr = calloc(1, sizeof(*rr));
  if (!rr || !(rr->prefix = strdup(prefix))) {
    free(rr);
    return NULL;
  }
  rr->base = (hd_recovery_cluster_t){record, save, take, missed};
  rr->redis = redis;
  rr->mailbox = mailbox;
  rr->window_ms = window_ms;
  rr->max_packets = max_packets ? max_packets : 1;
  return &rr->base;
}

void hd_redis_recovery_free(hd_recovery_cluster_t *c) {
  rr_t *rr = (rr_t *)c;
  if (!rr) return;
  free(rr->prefix);
  free(rr);
}
