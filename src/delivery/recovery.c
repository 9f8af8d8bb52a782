/* Socket.IO connection state recovery shared by the shards of a node (see recovery.h). */
#include "delivery/recovery.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/map.h"

#define MAX_NAMESPACES 16

typedef struct {
  char name[128];
  hd_hub_msg_t **ring;
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

/* Memory a recorded packet holds (its text, attachments and room names). */
static size_t msg_bytes(const hd_hub_msg_t *m) {
  size_t n = sizeof(*m) + m->args_len;
  for (uint32_t i = 0; i < m->attachment_count; i++) n += m->attachments[i]->len;
  for (uint32_t i = 0; i < m->room_count; i++) n += strlen(m->rooms[i]) + sizeof(char *);
  return n;
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
  rec->bytes -= msg_bytes(n->ring[n->head]);
  hd_hub_msg_unref(n->ring[n->head]);
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
    if (n->len == rec->max_packets) drop_oldest(rec, n);
    n->ring[(n->head + n->len) % rec->max_packets] = hd_hub_msg_ref(msg);
    n->len++;
    rec->bytes += msg_bytes(msg);
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

static bool strv_has(char *const *v, const char *s) {
  for (; v && *v; v++)
    if (!strcmp(*v, s)) return true;
  return false;
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

bool hd_recovery_take(hd_recovery_t *rec, const char *nsp, const char *pid, const char *sub, const char *offset,
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
      hd_hub_msg_t *msg = n->ring[(n->head + i) % rec->max_packets];
      if (msg->id > after && hd_recovery_reaches(msg, sv->s.rooms)) picked[(*n_missed)++] = hd_hub_msg_ref(msg);
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
