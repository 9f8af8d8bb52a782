/* Socket.IO connection state recovery shared by the shards of a node (see recovery.h). */
#include "delivery/recovery.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/map.h"

#define MAX_NAMESPACES 16

/* A recorded packet, compact: what a replay needs to rebuild its message (hd_recovery_take), in one
 * allocation. Holding the published message itself would also keep its per-shard frame cache and
 * its separately allocated strings alive for the whole window (~550 bytes for a 4-byte emit). */
typedef struct {
  uint64_t id, seq;
  int64_t timestamp;
  hd_buf_t **attachments;  /* references, or NULL */
  uint32_t flags, args_len, room_count, except_count, attachment_count;
  bool single_arg, has_type;
  char text[];             /* rooms, except, event, type (when has_type), message id: each NUL-terminated,
                            * then the args (args_len bytes and a NUL) */
} record_t;

typedef struct {
  char name[128];
  record_t **ring;
  uint32_t head, len;
} nsp_ring_t;

typedef struct {
  hd_recovery_session_t s;
  uint64_t saved_ms;
  size_t bytes;      /* counted in rec->bytes */
} saved_t;

struct hd_recovery {
  uv_mutex_t mu;
  uint64_t window_ms;
  uint32_t max_packets;
  nsp_ring_t nsps[MAX_NAMESPACES];
  uint32_t nsp_count;
  hd_map_t sessions; /* pid -> saved_t */
  hd_recovery_cluster_t *cluster; /* clustered: sessions and packets live there */
  uint64_t offset_tag;            /* clustered: this process's high 24 bits of its offsets */
  size_t max_sessions, max_bytes; /* 0: no bound */
  size_t bytes;      /* kept: sessions and recorded packets (approximate, for max_bytes) */
};

/* --- records ------------------------------------------------------------------------------ */

/* Bytes of a record's text for msg. */
static size_t record_text_len(const hd_hub_msg_t *m) {
  size_t n = strlen(m->event) + 1 + strlen(m->message_id) + 1 + m->args_len + 1;
  for (uint32_t i = 0; i < m->room_count; i++) n += strlen(m->rooms[i]) + 1;
  for (uint32_t i = 0; i < m->except_count; i++) n += strlen(m->except[i]) + 1;
  if (m->type) n += strlen(m->type) + 1;
  return n;
}

static char *put_str(char *p, const char *s) {
  size_t n = strlen(s) + 1;
  memcpy(p, s, n);
  return p + n;
}

/* A record of msg (attachments referenced), or NULL when out of memory; *bytes: what it holds. */
static record_t *record_new(const hd_hub_msg_t *m, size_t *bytes) {
  size_t text = record_text_len(m);
  record_t *r = malloc(sizeof(*r) + text);
  if (!r) return NULL;
  *r = (record_t){.id = m->id, .seq = m->seq, .timestamp = m->timestamp, .flags = m->flags,
                  .args_len = (uint32_t)m->args_len, .room_count = m->room_count, .except_count = m->except_count,
                  .single_arg = m->single_arg, .has_type = m->type != NULL};
  if (m->attachment_count) {
    if (!(r->attachments = malloc(m->attachment_count * sizeof(*r->attachments)))) {
      free(r);
      return NULL;
    }
    for (uint32_t i = 0; i < m->attachment_count; i++) r->attachments[i] = hd_buf_ref(m->attachments[i]);
    r->attachment_count = m->attachment_count;
  }
  char *p = r->text;
  for (uint32_t i = 0; i < m->room_count; i++) p = put_str(p, m->rooms[i]);
  for (uint32_t i = 0; i < m->except_count; i++) p = put_str(p, m->except[i]);
  p = put_str(p, m->event);
  if (m->type) p = put_str(p, m->type);
  p = put_str(p, m->message_id);
  memcpy(p, m->args, m->args_len);
  p[m->args_len] = '\0';
  *bytes = sizeof(*r) + text + r->attachment_count * sizeof(hd_buf_t *);
  for (uint32_t i = 0; i < r->attachment_count; i++) *bytes += r->attachments[i]->len;
  return r;
}

static size_t record_bytes(const record_t *r) {
  size_t n = sizeof(*r) + r->attachment_count * sizeof(hd_buf_t *);
  const char *p = r->text;
  for (uint32_t i = 0; i < r->room_count + r->except_count + 2u + r->has_type; i++) p += strlen(p) + 1;
  n += (size_t)(p - r->text) + r->args_len + 1;
  for (uint32_t i = 0; i < r->attachment_count; i++) n += r->attachments[i]->len;
  return n;
}

static void record_free(record_t *r) {
  for (uint32_t i = 0; i < r->attachment_count; i++) hd_buf_unref(r->attachments[i]);
  free(r->attachments);
  free(r);
}

static bool strv_has(char *const *v, const char *s) {
  for (; v && *v; v++)
    if (!strcmp(*v, s)) return true;
  return false;
}

/* Would a socket in `rooms` have received r? (as hd_recovery_reaches) */
static bool record_reaches(const record_t *r, char *const *rooms) {
  const char *p = r->text;
  bool in = false;
  for (uint32_t i = 0; i < r->room_count; i++, p += strlen(p) + 1) in = in || strv_has(rooms, p);
  if (!in) return false;
  for (uint32_t i = 0; i < r->except_count; i++, p += strlen(p) + 1)
    if (strv_has(rooms, p)) return false;
  return true;
}

/* The message r was recorded from, rebuilt for hub in namespace nsp (refs 1), or NULL (no memory). */
static hd_hub_msg_t *record_message(const record_t *r, hd_hub_t *hub, const char *nsp) {
  uint32_t n = r->room_count + r->except_count;
  const char **names = malloc((n ? n : 1) * sizeof(*names));
  hd_buf_t **att = r->attachment_count ? malloc(r->attachment_count * sizeof(*att)) : NULL;
  if (!names || (r->attachment_count && !att)) {
    free(names);
    free(att);
    return NULL;
  }
  const char *p = r->text;
  for (uint32_t i = 0; i < n; i++, p += strlen(p) + 1) names[i] = p;
  const char *event = p;
  p += strlen(p) + 1;
  const char *type = r->has_type ? p : NULL;
  if (type) p += strlen(p) + 1;
  const char *message_id = p;
  const char *args = p + strlen(p) + 1;
  for (uint32_t i = 0; i < r->attachment_count; i++) att[i] = hd_buf_ref(r->attachments[i]);
  hd_hub_target_t to = {nsp, names, r->room_count, names + r->room_count, r->except_count, r->flags};
  hd_hub_msg_t *m = hd_hub_msg_new(hub, &to, event, args, r->args_len, att, r->attachment_count);
  free(names);
  if (!m) return NULL;
  if (type && hd_hub_msg_set_type(m, type)) {
    hd_hub_msg_unref(m);
    return NULL;
  }
  m->id = r->id;
  m->seq = r->seq;
  m->timestamp = r->timestamp;
  m->single_arg = r->single_arg;
  snprintf(m->message_id, sizeof m->message_id, "%s", message_id);
  return m;
}

/* Memory a saved session holds. */
static size_t session_bytes(const hd_recovery_session_t *s) {
  size_t n = sizeof(saved_t) + 64; /* the map slot, roughly */
  for (char **r = s->rooms; r && *r; r++) n += strlen(*r) + 1 + sizeof(char *);
  return n;
}

void hd_recovery_set_limits(hd_recovery_t *rec, size_t max_sessions, size_t max_bytes) {
  rec->max_sessions = max_sessions;
  rec->max_bytes = max_bytes;
}

hd_recovery_t *hd_recovery_new(uint64_t window_ms, uint32_t max_packets) {
  hd_recovery_t *rec = calloc(1, sizeof(*rec));
  if (!rec) return NULL;
  if (uv_mutex_init(&rec->mu)) {
    free(rec);
    return NULL;
  }
  rec->window_ms = window_ms;
  rec->max_packets = max_packets ? max_packets : 1;
  return rec;
}

void hd_recovery_session_clear(hd_recovery_session_t *s) {
  for (char **r = s->rooms; r && *r; r++) free(*r);
  free(s->rooms);
  s->rooms = NULL;
}

static void saved_free(void *value, void *arg) {
  saved_t *sv = value;
  hd_recovery_session_clear(&sv->s);
  free(sv);
}

static void drop_oldest(hd_recovery_t *rec, nsp_ring_t *n) {
  rec->bytes -= record_bytes(n->ring[n->head]);
  record_free(n->ring[n->head]);
  n->head = (n->head + 1) % rec->max_packets;
  n->len--;
}

void hd_recovery_free(hd_recovery_t *rec) {
  if (!rec) return;
  for (uint32_t i = 0; i < rec->nsp_count; i++) {
    while (rec->nsps[i].len) drop_oldest(rec, &rec->nsps[i]);
    free(rec->nsps[i].ring);
  }
  hd_map_each(&rec->sessions, saved_free, NULL);
  hd_map_free(&rec->sessions);
  uv_mutex_destroy(&rec->mu);
  free(rec);
}

static nsp_ring_t *ring_of(hd_recovery_t *rec, const char *nsp, bool create) {
  for (uint32_t i = 0; i < rec->nsp_count; i++)
    if (!strcmp(rec->nsps[i].name, nsp)) return &rec->nsps[i];
  if (!create || rec->nsp_count == MAX_NAMESPACES || strlen(nsp) >= sizeof rec->nsps[0].name) return NULL;
  nsp_ring_t *n = &rec->nsps[rec->nsp_count];
  if (!(n->ring = calloc(rec->max_packets, sizeof(*n->ring)))) return NULL;
  strcpy(n->name, nsp);
  rec->nsp_count++;
  return n;
}

static void prune(hd_recovery_t *rec, nsp_ring_t *n, int64_t now) {
  while (n->len && now - n->ring[n->head]->timestamp > (int64_t)rec->window_ms) drop_oldest(rec, n);
}

void hd_recovery_set_cluster(hd_recovery_t *rec, hd_recovery_cluster_t *cluster) {
  uint32_t tag = 0;
  if (uv_random(NULL, NULL, &tag, sizeof tag, 0, NULL)) tag = (uint32_t)uv_hrtime();
  rec->offset_tag = (uint64_t)((tag & 0xffffff) | 1) << 40; /* never 0: 0 means "no cluster offset" */
  rec->cluster = cluster;
}

hd_recovery_cluster_t *hd_recovery_cluster(const hd_recovery_t *rec) { return rec ? rec->cluster : NULL; }

void hd_recovery_observe(hd_hub_msg_t *msg, void *arg) {
  hd_recovery_t *rec = arg;
  if (rec->cluster) { /* under the publish lock: offsets and records leave in id order */
    if (!msg->cluster_offset) msg->cluster_offset = rec->offset_tag | (msg->id & ((1ull << 40) - 1));
    if (!(msg->flags & (HD_MSG_VOLATILE | HD_MSG_WANTS_ACKS | HD_MSG_REMOTE))) rec->cluster->record(rec->cluster, msg);
    return;
  }
  if (msg->flags & (HD_MSG_VOLATILE | HD_MSG_WANTS_ACKS)) return;
  uv_mutex_lock(&rec->mu);
  nsp_ring_t *n = ring_of(rec, msg->nsp, true);
  if (n) {
    prune(rec, n, msg->timestamp);
    size_t bytes = 0;
    record_t *r = record_new(msg, &bytes);
    if (r) {
      if (n->len == rec->max_packets) drop_oldest(rec, n);
      n->ring[(n->head + n->len) % rec->max_packets] = r;
      n->len++;
      rec->bytes += bytes;
    }
    while (rec->max_bytes && rec->bytes > rec->max_bytes && n->len > 1) drop_oldest(rec, n); /* oldest first */
  }
  uv_mutex_unlock(&rec->mu);
}

void hd_recovery_save(hd_recovery_t *rec, hd_recovery_session_t *s) {
  if (rec->cluster) {
    rec->cluster->save(rec->cluster, s);
    hd_recovery_session_clear(s);
    return;
  }
  saved_t *sv = malloc(sizeof(*sv));
  if (!sv) {
    hd_recovery_session_clear(s);
    return;
  }
  sv->s = *s;
  s->rooms = NULL;
  sv->saved_ms = hd_clock_mono_ms();
  sv->bytes = session_bytes(&sv->s);
  uv_mutex_lock(&rec->mu);
  saved_t *old = hd_map_del(&rec->sessions, sv->s.pid, strlen(sv->s.pid));
  if (old) rec->bytes -= old->bytes;
  bool full = (rec->max_sessions && rec->sessions.count >= rec->max_sessions) ||
              (rec->max_bytes && rec->bytes + sv->bytes > rec->max_bytes);
  if (full || hd_map_put(&rec->sessions, sv->s.pid, strlen(sv->s.pid), sv)) { /* not kept: it cannot recover */
    saved_free(sv, NULL);
    sv = NULL;
  } else {
    rec->bytes += sv->bytes;
  }
  uv_mutex_unlock(&rec->mu);
  if (old) saved_free(old, NULL);
}

/* Its own room and the namespace's all-room are among the rooms. */
bool hd_recovery_reaches(const hd_hub_msg_t *msg, char *const *rooms) {
  bool in = false;
  for (uint32_t i = 0; i < msg->room_count && !in; i++) in = strv_has(rooms, msg->rooms[i]);
  if (!in) return false;
  for (uint32_t i = 0; i < msg->except_count; i++)
    if (strv_has(rooms, msg->except[i])) return false;
  return true;
}

bool hd_recovery_take(hd_recovery_t *rec, hd_hub_t *hub, const char *nsp, const char *pid, const char *sub, const char *offset,
                      hd_recovery_session_t *out, hd_hub_msg_t ***missed, size_t *n_missed) {
  *missed = NULL;
  *n_missed = 0;
  uv_mutex_lock(&rec->mu);
  saved_t *sv = hd_map_get(&rec->sessions, pid, strlen(pid));
  bool ok = sv && hd_clock_mono_ms() - sv->saved_ms <= rec->window_ms && !strcmp(sv->s.sub, sub) &&
            !strcmp(sv->s.nsp, nsp); /* no taking over another identity */
  nsp_ring_t *n = ok ? ring_of(rec, nsp, false) : NULL;
  uint64_t after = ok ? sv->s.last_msg_id : 0;
  if (n) prune(rec, n, hd_clock_wall_ms());
  if (ok && offset) { /* the client's last offset must still be recorded */
    after = strtoull(offset, NULL, 10);
    bool found = false;
    for (uint32_t i = 0; n && i < n->len && !found; i++) found = n->ring[(n->head + i) % rec->max_packets]->id == after;
    ok = found;
  } else if (ok && n && n->len && n->ring[n->head]->id > after + 1 && after) {
    ok = false; /* packets after the last delivery were dropped */
  }
  if (ok) {
    hd_hub_msg_t **picked = n && n->len ? malloc(n->len * sizeof(*picked)) : NULL;
    for (uint32_t i = 0; picked && i < n->len; i++) {
      const record_t *r = n->ring[(n->head + i) % rec->max_packets];
      hd_hub_msg_t *msg = r->id > after && record_reaches(r, sv->s.rooms) ? record_message(r, hub, nsp) : NULL;
      if (msg) picked[(*n_missed)++] = msg;
    }
    *missed = picked;
    *out = sv->s;
    rec->bytes -= sv->bytes;
    hd_map_del(&rec->sessions, pid, strlen(pid));
    free(sv);
  }
  uv_mutex_unlock(&rec->mu);
  return ok;
}

void hd_recovery_sweep(hd_recovery_t *rec) {
  uint64_t now = hd_clock_mono_ms();
  uv_mutex_lock(&rec->mu);
  for (size_t i = 0; i < rec->sessions.cap; i++) {
    saved_t *sv = rec->sessions.slots[i].value;
    if (rec->sessions.slots[i].hash && now - sv->saved_ms > rec->window_ms) {
      rec->bytes -= sv->bytes;
      hd_map_del(&rec->sessions, sv->s.pid, strlen(sv->s.pid));
      saved_free(sv, NULL);
      i--; /* backward shift may have moved another entry into this slot */
    }
  }
  int64_t wall = hd_clock_wall_ms();
  for (uint32_t i = 0; i < rec->nsp_count; i++) prune(rec, &rec->nsps[i], wall);
  uv_mutex_unlock(&rec->mu);
}

size_t hd_recovery_session_count(hd_recovery_t *rec) {
  uv_mutex_lock(&rec->mu);
  size_t n = rec->sessions.count;
  uv_mutex_unlock(&rec->mu);
  return n;
}
