/* Rooms, members, fan-out and per-room history (see hub.h). */
#include "hub/hub.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"

#define MAX_ENCODING_NAMES HD_HUB_ENCODINGS

struct hd_hub {
  hd_map_t rooms;
  hd_hub_limits_t limits;
  uint64_t next_msg_id;
  uint64_t id_prefix; /* random per process: message ids stay unique across restarts */
  uint64_t seq_base;  /* start time (ms) x 1000: sequences keep increasing across restarts */
  const char *encodings[MAX_ENCODING_NAMES];
  int encoding_count;
  void (*observer)(hd_hub_msg_t *msg, const char *const *rooms, size_t n, void *arg);
  void *observer_arg;
};

void hd_hub_set_observer(hd_hub_t *hub,
                         void (*fn)(hd_hub_msg_t *msg, const char *const *rooms, size_t n, void *arg), void *arg) {
  hub->observer = fn;
  hub->observer_arg = arg;
}

hd_hub_t *hd_hub_new(const hd_hub_limits_t *limits) {
  hd_hub_t *hub = calloc(1, sizeof(*hub));
  if (!hub) return NULL;
  hub->limits = *limits;
  hub->seq_base = (uint64_t)hd_clock_wall_ms() * 1000;
  if (RAND_bytes((unsigned char *)&hub->id_prefix, sizeof hub->id_prefix) != 1) hub->id_prefix = hd_clock_mono_ns();
  return hub;
}

static void room_free(void *value, void *arg) {
  hd_hub_room_t *r = value;
  for (uint32_t i = 0; i < r->history_len; i++) hd_hub_msg_unref(r->history[(r->history_head + i) % r->history_cap]);
  free(r->history);
  free(r->seats);
  free(r);
}

void hd_hub_free(hd_hub_t *hub) {
  if (!hub) return;
  hd_map_each(&hub->rooms, room_free, NULL);
  hd_map_free(&hub->rooms);
  free(hub);
}

int hd_hub_encoding_id(hd_hub_t *hub, const char *name) {
  for (int i = 0; i < hub->encoding_count; i++)
    if (!strcmp(hub->encodings[i], name)) return i;
  if (hub->encoding_count == MAX_ENCODING_NAMES) return HD_ERANGE;
  hub->encodings[hub->encoding_count] = name;
  return hub->encoding_count++;
}

void hd_hub_member_init(hd_hub_member_t *m, hd_hub_deliver_fn deliver) {
  memset(m, 0, sizeof(*m));
  m->deliver = deliver;
}

hd_hub_room_t *hd_hub_room(const hd_hub_t *hub, const char *name, size_t len) {
  return hd_map_get(&hub->rooms, name, len);
}

size_t hd_hub_room_count(const hd_hub_t *hub) { return hub->rooms.count; }

static hd_hub_room_t *room_get_or_create(hd_hub_t *hub, const char *name, size_t len) {
  hd_hub_room_t *r = hd_map_get(&hub->rooms, name, len);
  if (r) return r;
  r = calloc(1, sizeof(*r) + len + 1);
  if (!r) return NULL;
  memcpy(r->name, name, len);
  r->name[len] = '\0';
  r->name_len = len;
  r->seq = r->evicted_seq = hub->seq_base; /* what came before this process is not here */
  if (hd_map_put(&hub->rooms, r->name, len, r)) {
    room_free(r, NULL);
    return NULL;
  }
  return r;
}

/* Frees a room nobody is in and that keeps no history. */
static void room_maybe_drop(hd_hub_t *hub, hd_hub_room_t *r) {
  if (r->count || r->sequenced) return;
  hd_map_del(&hub->rooms, r->name, r->name_len);
  room_free(r, NULL);
}

/* Grows *ptr to hold need elements, doubling from first (small: most rooms and members stay tiny). */
static int grow(void **ptr, uint32_t *cap, size_t elem, uint32_t need, uint32_t first) {
  if (need <= *cap) return 0;
  uint32_t n = *cap ? *cap * 2 : first;
  while (n < need) n *= 2;
  void *p = realloc(*ptr, (size_t)n * elem);
  if (!p) return HD_ENOMEM;
  *ptr = p;
  *cap = n;
  return 0;
}

bool hd_hub_member_in(const hd_hub_member_t *m, const char *name, size_t len) {
  for (uint32_t i = 0; i < m->room_count; i++) {
    const hd_hub_room_t *r = m->rooms[i].room;
    if (r->name_len == len && !memcmp(r->name, name, len)) return true;
  }
  return false;
}

int hd_hub_join(hd_hub_t *hub, hd_hub_member_t *m, const char *name, size_t len) {
  if (hd_hub_member_in(m, name, len)) return 0;
  if (hub->limits.max_rooms_per_member && m->room_count >= hub->limits.max_rooms_per_member) return HD_ERANGE;
  hd_hub_room_t *r = room_get_or_create(hub, name, len);
  if (!r) return HD_ENOMEM;
  if (grow((void **)&m->rooms, &m->room_cap, sizeof(*m->rooms), m->room_count + 1, 2) ||
      grow((void **)&r->seats, &r->cap, sizeof(*r->seats), r->count + 1, 1)) {
    room_maybe_drop(hub, r);
    return HD_ENOMEM;
  }
  r->seats[r->count] = (hd_hub_seat_t){m, m->room_count};
  m->rooms[m->room_count] = (hd_hub_membership_t){r, r->count};
  r->count++;
  m->room_count++;
  return 0;
}

/* Removes membership slot i of m (swap-remove on both sides). */
static void leave_slot(hd_hub_t *hub, hd_hub_member_t *m, uint32_t i) {
  hd_hub_room_t *r = m->rooms[i].room;
  uint32_t idx = m->rooms[i].index, last = r->count - 1;
  if (idx != last) { /* move the room's last member into idx */
    r->seats[idx] = r->seats[last];
    r->seats[idx].member->rooms[r->seats[idx].slot].index = idx;
  }
  r->count--;
  uint32_t mlast = m->room_count - 1;
  if (i != mlast) { /* move m's last membership into i */
    m->rooms[i] = m->rooms[mlast];
    m->rooms[i].room->seats[m->rooms[i].index].slot = i;
  }
  m->room_count--;
  room_maybe_drop(hub, r);
}

int hd_hub_leave(hd_hub_t *hub, hd_hub_member_t *m, const char *name, size_t len) {
  for (uint32_t i = 0; i < m->room_count; i++) {
    const hd_hub_room_t *r = m->rooms[i].room;
    if (r->name_len == len && !memcmp(r->name, name, len)) {
      leave_slot(hub, m, i);
      return 0;
    }
  }
  return HD_ENOTFOUND;
}

void hd_hub_leave_all(hd_hub_t *hub, hd_hub_member_t *m) {
  while (m->room_count) leave_slot(hub, m, m->room_count - 1);
  free(m->rooms);
  m->rooms = NULL;
  m->room_cap = 0;
}

static char *dup_str(const char *s) { return s ? strdup(s) : NULL; }

hd_hub_msg_t *hd_hub_msg_new(hd_hub_t *hub, const char *room, const char *event, const char *data, size_t data_len) {
  hd_hub_msg_t *msg = calloc(1, sizeof(*msg));
  if (!msg) return NULL;
  msg->refs = 1;
  msg->id = ++hub->next_msg_id;
  msg->timestamp = hd_clock_wall_ms();
  msg->room = dup_str(room);
  msg->event = dup_str(event);
  msg->data = malloc(data_len + 1);
  if ((room && !msg->room) || (event && !msg->event) || !msg->data) {
    hd_hub_msg_unref(msg);
    return NULL;
  }
  memcpy(msg->data, data, data_len);
  msg->data[data_len] = '\0';
  msg->data_len = data_len;
  snprintf(msg->message_id, sizeof msg->message_id, "%016llx-%llu", (unsigned long long)hub->id_prefix,
           (unsigned long long)msg->id);
  return msg;
}

hd_hub_msg_t *hd_hub_msg_ref(hd_hub_msg_t *msg) {
  msg->refs++;
  return msg;
}

void hd_hub_msg_unref(hd_hub_msg_t *msg) {
  if (!msg || --msg->refs) return;
  for (int i = 0; i < HD_HUB_ENCODINGS; i++) hd_buf_unref(msg->encoded[i]);
  if (msg->free_extra) msg->free_extra(msg->extra);
  free(msg->room);
  free(msg->subroom);
  free(msg->event);
  free(msg->sio_event);
  free(msg->data);
  free(msg);
}

hd_buf_t *hd_hub_msg_encoded(hd_hub_msg_t *msg, int enc, hd_buf_t *(*encode)(const hd_hub_msg_t *msg, void *arg),
                             void *arg) {
  if (enc < 0 || enc >= HD_HUB_ENCODINGS) return NULL;
  if (!msg->encoded[enc]) msg->encoded[enc] = encode(msg, arg);
  return msg->encoded[enc];
}

/* Drops the oldest history entry. */
static void history_drop_oldest(hd_hub_room_t *r) {
  hd_hub_msg_t *oldest = r->history[r->history_head];
  r->evicted_seq = oldest->seq;
  hd_hub_msg_unref(oldest);
  r->history_head = (r->history_head + 1) % r->history_cap;
  r->history_len--;
}

/* Drops history entries older than the age limit. */
static void history_prune(const hd_hub_t *hub, hd_hub_room_t *r, int64_t now) {
  uint64_t max_age = hub->limits.history_max_age_ms;
  while (max_age && r->history_len && now - r->history[r->history_head]->timestamp > (int64_t)max_age)
    history_drop_oldest(r);
}

int hd_hub_room_keep_history(hd_hub_t *hub, const char *name, size_t len) {
  hd_hub_room_t *r = room_get_or_create(hub, name, len);
  if (!r) return HD_ENOMEM;
  r->sequenced = true;
  if (r->history_cap || !hub->limits.history_count) return 0;
  r->history = calloc(hub->limits.history_count, sizeof(*r->history));
  if (!r->history) return HD_ENOMEM;
  r->history_cap = hub->limits.history_count;
  return 0;
}

static bool in_any(const hd_hub_member_t *m, hd_hub_room_t *const *rooms, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (rooms[i])
      for (uint32_t j = 0; j < m->room_count; j++)
        if (m->rooms[j].room == rooms[i]) return true;
  return false;
}

size_t hd_hub_publish(hd_hub_t *hub, hd_hub_msg_t *msg, const char *const *rooms, size_t room_count,
                      const char *const *except, size_t except_count, hd_hub_member_t *skip) {
  if (msg->room) {
    hd_hub_room_t *own = hd_map_get(&hub->rooms, msg->room, strlen(msg->room));
    if (own && own->sequenced) msg->seq = ++own->seq;
    if (own && own->history_cap) {
      history_prune(hub, own, msg->timestamp);
      if (own->history_len == own->history_cap) history_drop_oldest(own);
      own->history[(own->history_head + own->history_len) % own->history_cap] = hd_hub_msg_ref(msg);
      own->history_len++;
    }
    if (hub->observer) hub->observer(msg, rooms, room_count, hub->observer_arg);
  }
  hd_hub_room_t *excluded[16];
  size_t n_excluded = 0;
  for (size_t i = 0; i < except_count && n_excluded < 16; i++)
    excluded[n_excluded++] = hd_map_get(&hub->rooms, except[i], strlen(except[i]));
  size_t delivered = 0;
  hd_hub_msg_ref(msg); /* deliver callbacks may drop members and rooms, never the message */
  for (size_t i = 0; i < room_count; i++) {
    hd_hub_room_t *r = hd_map_get(&hub->rooms, rooms[i], strlen(rooms[i]));
    if (!r) continue;
    for (uint32_t j = 0; j < r->count; j++) {
      hd_hub_member_t *m = r->seats[j].member;
      if (m == skip || m->last_msg_id == msg->id) continue;
      m->last_msg_id = msg->id;
      if (n_excluded && in_any(m, excluded, n_excluded)) continue;
      m->deliver(m, msg);
      delivered++;
    }
  }
  hd_hub_msg_unref(msg);
  return delivered;
}

bool hd_hub_replay(hd_hub_t *hub, const char *name, size_t len, const char *member_room, uint64_t after_seq,
                   void (*fn)(hd_hub_msg_t *msg, void *arg), void *arg) {
  hd_hub_room_t *r = hd_map_get(&hub->rooms, name, len);
  if (!r) return after_seq == 0;
  history_prune(hub, r, hd_clock_wall_ms());
  bool complete = after_seq >= r->evicted_seq && after_seq <= r->seq;
  for (uint32_t i = 0; i < r->history_len; i++) {
    hd_hub_msg_t *msg = r->history[(r->history_head + i) % r->history_cap];
    if (msg->seq <= after_seq) continue;
    bool reaches = !member_room || !strcmp(member_room, msg->room) || (msg->subroom && !strcmp(member_room, msg->subroom));
    if (reaches && fn) fn(msg, arg);
  }
  return complete;
}
