/* Rooms, members, messages, local fan-out and the publish path (see hub.h). */
#include "hub/hub.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "delivery/history.h"
#include "hub/adapter.h"

#define MAX_EXCEPT 16

struct hd_hub {
  hd_map_t rooms;
  hd_hub_limits_t limits;
  hd_hub_shared_t *shared;
  uint32_t shard;
  hd_mailbox_t *mailbox;
  const char *encodings[HD_HUB_ENCODINGS];
  int encoding_count;
  hd_hub_server_emit_fn server_emit;
  void *server_emit_arg;
  hd_traffic_t traffic;
  hd_hub_persist_fn persist;
  void *persist_arg;
  const hd_hub_own_rooms_t *own; /* resolves own rooms (a socket's id), or NULL */
  void *own_arg;
};

int hd_hub_shared_init(hd_hub_shared_t *shared, uint32_t shard_count) {
  memset(shared, 0, sizeof(*shared));
  shared->shard_count = shard_count ? shard_count : 1;
  if (RAND_bytes((unsigned char *)&shared->id_prefix, sizeof shared->id_prefix) != 1)
    shared->id_prefix = hd_clock_mono_ns();
  return uv_mutex_init(&shared->publish_mu) ? HD_ENOMEM : 0;
}

void hd_hub_shared_destroy(hd_hub_shared_t *shared) { uv_mutex_destroy(&shared->publish_mu); }

hd_hub_t *hd_hub_new(const hd_hub_limits_t *limits, hd_hub_shared_t *shared, uint32_t shard, hd_mailbox_t *mailbox) {
  hd_hub_t *hub = calloc(1, sizeof(*hub));
  if (!hub) return NULL;
  hub->limits = *limits;
  hub->shared = shared;
  hub->shard = shard;
  hub->mailbox = mailbox;
  return hub;
}

static void room_free(void *value, void *arg) {
  hd_hub_room_t *r = value;
  if (r->seats != &r->first_seat) free(r->seats);
  free(r);
}

void hd_hub_free(hd_hub_t *hub) {
  if (!hub) return;
  hd_map_each(&hub->rooms, room_free, NULL);
  hd_map_free(&hub->rooms);
  free(hub);
}

uint32_t hd_hub_shard(const hd_hub_t *hub) { return hub->shard; }
hd_traffic_t *hd_hub_traffic(hd_hub_t *hub) { return &hub->traffic; }
hd_hub_shared_t *hd_hub_shared(const hd_hub_t *hub) { return hub->shared; }
hd_mailbox_t *hd_hub_mailbox(const hd_hub_t *hub) { return hub->mailbox; }

int hd_hub_encoding_id(hd_hub_t *hub, const char *name) {
  for (int i = 0; i < hub->encoding_count; i++)
    if (!strcmp(hub->encodings[i], name)) return i;
  if (hub->encoding_count == HD_HUB_ENCODINGS) return HD_ERANGE;
  hub->encodings[hub->encoding_count] = name;
  return hub->encoding_count++;
}

void hd_hub_member_init(hd_hub_member_t *m, const hd_hub_member_ops_t *ops) {
  memset(m, 0, sizeof(*m));
  m->ops = ops;
}

hd_hub_room_t *hd_hub_room(const hd_hub_t *hub, const char *name, size_t len) {
  return hd_map_get(&hub->rooms, name, len);
}

size_t hd_hub_room_count(const hd_hub_t *hub) { return hub->rooms.count + (hub->own ? hub->own->count(hub->own_arg) : 0); }

void hd_hub_set_own_rooms(hd_hub_t *hub, const hd_hub_own_rooms_t *ops, void *arg) {
  hub->own = ops;
  hub->own_arg = arg;
}

/* The member whose own room is name, or NULL. */
static hd_hub_member_t *owner_of(const hd_hub_t *hub, const char *name, size_t len) {
  return hub->own ? hub->own->owner(hub->own_arg, name, len) : NULL;
}

static hd_hub_room_t *room_get_or_create(hd_hub_t *hub, const char *name, size_t len) {
  hd_hub_room_t *r = hd_map_get(&hub->rooms, name, len);
  if (r) return r;
  r = calloc(1, sizeof(*r) + len + 1);
  if (!r) return NULL;
  memcpy(r->name, name, len);
  r->name[len] = '\0';
  r->name_len = len;
  r->seats = &r->first_seat;
  r->cap = 1;
  if (hd_map_put(&hub->rooms, r->name, len, r)) {
    room_free(r, NULL);
    return NULL;
  }
  return r;
}

/* Frees a room nobody is in. */
static void room_maybe_drop(hd_hub_t *hub, hd_hub_room_t *r) {
  if (r->count) return;
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

/* Makes room for need seats in r, leaving first_seat for an array once a second member joins. */
static int grow_seats(hd_hub_room_t *r, uint32_t need) {
  if (r->seats != &r->first_seat) return grow((void **)&r->seats, &r->cap, sizeof(*r->seats), need, 1);
  if (need <= 1) return 0;
  uint32_t cap = 2;
  while (cap < need) cap *= 2;
  hd_hub_seat_t *seats = malloc((size_t)cap * sizeof(*seats));
  if (!seats) return HD_ENOMEM;
  seats[0] = r->first_seat;
  r->seats = seats;
  r->cap = cap;
  return 0;
}

static hd_hub_membership_t *membership(const hd_hub_member_t *m, const char *name, size_t len) {
  for (uint32_t i = 0; i < m->room_count; i++) {
    const hd_hub_room_t *r = m->rooms[i].room;
    if (r->name_len == len && !memcmp(r->name, name, len)) return &m->rooms[i];
  }
  return NULL;
}

bool hd_hub_member_in(const hd_hub_member_t *m, const char *name, size_t len) { return membership(m, name, len); }

int hd_hub_join(hd_hub_t *hub, hd_hub_member_t *m, const char *name, size_t len) {
  if (hd_hub_member_in(m, name, len)) return 0;
  if (hub->limits.max_rooms_per_member && m->room_count >= hub->limits.max_rooms_per_member) return HD_ERANGE;
  hd_hub_room_t *r = room_get_or_create(hub, name, len);
  if (!r) return HD_ENOMEM;
  /* room for one at first: an idle Socket.IO socket is in one hub room, its namespace's */
  if (grow((void **)&m->rooms, &m->room_cap, sizeof(*m->rooms), m->room_count + 1, 1) ||
      grow_seats(r, r->count + 1)) {
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
  hd_hub_membership_t *ms = membership(m, name, len);
  if (!ms) return HD_ENOTFOUND;
  leave_slot(hub, m, (uint32_t)(ms - m->rooms));
  return 0;
}

void hd_hub_leave_all(hd_hub_t *hub, hd_hub_member_t *m) {
  while (m->room_count) leave_slot(hub, m, m->room_count - 1);
  free(m->rooms);
  m->rooms = NULL;
  m->room_cap = 0;
}

/* --- messages ----------------------------------------------------------------------------- */

static void free_strv(char **v, uint32_t n) {
  for (uint32_t i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

static char **dup_strv(const char *const *v, size_t n) {
  if (!n) return NULL;
  char **out = calloc(n, sizeof(*out));
  for (size_t i = 0; out && i < n; i++)
    if (!(out[i] = strdup(v[i]))) {
      free_strv(out, (uint32_t)n);
      return NULL;
    }
  return out;
}

static void release_attachments(hd_buf_t **att, uint32_t n) {
  for (uint32_t i = 0; att && i < n; i++) hd_buf_unref(att[i]);
  free(att);
}

hd_hub_msg_t *hd_hub_msg_new(hd_hub_t *hub, const hd_hub_target_t *to, const char *event, const char *args_json,
                             size_t len, hd_buf_t **attachments, uint32_t attachment_count) {
  uint32_t rows = hub->shared->shard_count;
  hd_hub_msg_t *msg = calloc(1, sizeof(*msg) + (size_t)rows * HD_HUB_ENCODINGS * sizeof(hd_buf_t *));
  if (!msg || to->except_count > MAX_EXCEPT) {
    free(msg);
    release_attachments(attachments, attachment_count);
    return NULL;
  }
  msg->refs = 1;
  msg->rows = rows;
  msg->flags = to->flags;
  msg->timestamp = hd_clock_wall_ms();
  msg->published_ns = uv_hrtime();
  msg->attachments = attachments;
  msg->attachment_count = attachment_count;
  msg->nsp = strdup(to->nsp ? to->nsp : "/");
  msg->rooms = dup_strv(to->rooms, to->room_count); /* none: a message that is never published */
  msg->room_count = (uint32_t)to->room_count;
  msg->except = dup_strv(to->except, to->except_count);
  msg->except_count = (uint32_t)to->except_count;
  msg->event = strdup(event ? event : "");
  msg->args = malloc(len + 1);
  if (!msg->nsp || (to->room_count && !msg->rooms) || (to->except_count && !msg->except) || !msg->event || !msg->args) {
    hd_hub_msg_unref(msg);
    return NULL;
  }
  memcpy(msg->args, args_json, len);
  msg->args[len] = '\0';
  msg->args_len = len;
  return msg;
}

hd_hub_msg_t *hd_hub_msg_new_value(hd_hub_t *hub, const hd_hub_target_t *to, const char *event,
                                   const char *value_json, size_t len) {
  char *args = malloc(len + 3);
  if (!args) return NULL;
  args[0] = '[';
  memcpy(args + 1, value_json, len);
  args[len + 1] = ']';
  args[len + 2] = '\0';
  hd_hub_msg_t *msg = hd_hub_msg_new(hub, to, event, args, len + 2, NULL, 0);
  free(args);
  if (msg) msg->single_arg = true;
  return msg;
}

hd_hub_msg_t *hd_hub_msg_ref(hd_hub_msg_t *msg) {
  __atomic_add_fetch(&msg->refs, 1, __ATOMIC_RELAXED);
  return msg;
}

void hd_hub_msg_unref(hd_hub_msg_t *msg) {
  if (!msg || __atomic_sub_fetch(&msg->refs, 1, __ATOMIC_ACQ_REL)) return;
  for (uint32_t i = 0; i < msg->rows * HD_HUB_ENCODINGS; i++) hd_buf_unref(msg->encoded[i]);
  release_attachments(msg->attachments, msg->attachment_count);
  free_strv(msg->rooms, msg->room_count);
  free_strv(msg->except, msg->except_count);
  free(msg->nsp);
  free(msg->event);
  free(msg->type);
  free(msg->args);
  hd_hub_acks_unref(msg->acks);
  free(msg);
}

hd_hub_acks_t *hd_hub_acks_ref(hd_hub_acks_t *acks) {
  __atomic_add_fetch(&acks->refs, 1, __ATOMIC_RELAXED);
  return acks;
}

void hd_hub_acks_unref(hd_hub_acks_t *acks) {
  if (acks && !__atomic_sub_fetch(&acks->refs, 1, __ATOMIC_ACQ_REL)) acks->free(acks);
}

void hd_hub_msg_set_acks(hd_hub_msg_t *msg, hd_hub_acks_t *acks) {
  hd_hub_acks_unref(msg->acks);
  msg->acks = hd_hub_acks_ref(acks);
  msg->flags |= HD_MSG_WANTS_ACKS;
}

hd_buf_t *hd_hub_msg_encoded(hd_hub_t *hub, hd_hub_msg_t *msg, int enc,
                             hd_buf_t *(*encode)(const hd_hub_msg_t *msg, void *arg), void *arg) {
  if (enc < 0 || enc >= HD_HUB_ENCODINGS || hub->shard >= msg->rows) return NULL;
  hd_buf_t **slot = &msg->encoded[hub->shard * HD_HUB_ENCODINGS + (uint32_t)enc];
  if (!*slot && (*slot = encode(msg, arg))) (*slot)->born_ns = msg->published_ns; /* not shared yet */
  return *slot;
}

void hd_hub_msg_set_encoded(hd_hub_t *hub, hd_hub_msg_t *msg, int enc, hd_buf_t *frame) {
  if (enc < 0 || enc >= HD_HUB_ENCODINGS || hub->shard >= msg->rows) return;
  hd_buf_t **slot = &msg->encoded[hub->shard * HD_HUB_ENCODINGS + (uint32_t)enc];
  hd_buf_unref(*slot);
  *slot = hd_buf_ref(frame);
}

int hd_hub_msg_set_type(hd_hub_msg_t *msg, const char *type) {
  free(msg->type);
  msg->type = type ? strdup(type) : NULL;
  return !type || msg->type ? 0 : HD_ENOMEM;
}

bool hd_hub_msg_targets(const hd_hub_msg_t *msg, const char *name) {
  for (uint32_t i = 0; i < msg->room_count; i++)
    if (!strcmp(msg->rooms[i], name)) return true;
  return false;
}

/* --- delivery ----------------------------------------------------------------------------- */

/* The except rooms of a target resolved on this shard: hub rooms (NULL where there is none) and
 * the members whose own room they are (NULL where none). */
typedef struct {
  hd_hub_room_t *rooms[MAX_EXCEPT];
  hd_hub_member_t *owners[MAX_EXCEPT];
  size_t n;
} except_t;

static void except_resolve(const hd_hub_t *hub, const char *const *except, size_t n, except_t *out) {
  out->n = 0;
  for (size_t i = 0; i < n && out->n < MAX_EXCEPT; i++, out->n++) {
    size_t len = strlen(except[i]);
    out->rooms[out->n] = hd_map_get(&hub->rooms, except[i], len);
    out->owners[out->n] = owner_of(hub, except[i], len);
  }
}

/* True when m is in one of the except rooms. */
static bool excepted(const hd_hub_member_t *m, const except_t *x) {
  for (size_t i = 0; i < x->n; i++) {
    if (x->owners[i] == m) return true;
    for (uint32_t j = 0; x->rooms[i] && j < m->room_count; j++)
      if (m->rooms[j].room == x->rooms[i]) return true;
  }
  return false;
}

/* One delivery run: what every candidate recipient is checked against, and the counts. */
typedef struct {
  hd_hub_msg_t *msg;
  hd_hub_member_t *skip;
  except_t except;
  size_t delivered;
  uint64_t by_protocol[HD_TRAFFIC_PROTOCOLS];
} fanout_t;

/* Delivers f's message to m unless skipped, excepted or already given it (inline: it runs per recipient). */
static inline void offer(fanout_t *f, hd_hub_member_t *m) {
  if (m == f->skip || m->last_msg_id == f->msg->id) return;
  m->last_msg_id = f->msg->id;
  if (f->except.n && excepted(m, &f->except)) return;
  f->by_protocol[m->ops->protocol]++;
  m->ops->deliver(m, f->msg);
  f->delivered++;
}

size_t hd_hub_deliver(hd_hub_t *hub, hd_hub_msg_t *msg, hd_hub_member_t *skip) {
  fanout_t f = {.msg = msg, .skip = skip};
  except_resolve(hub, (const char *const *)msg->except, msg->except_count, &f.except);
  hd_hub_msg_ref(msg); /* deliver callbacks may drop members and rooms, never the message */
  for (uint32_t i = 0; i < msg->room_count; i++) {
    size_t len = strlen(msg->rooms[i]);
    hd_hub_room_t *r = hd_map_get(&hub->rooms, msg->rooms[i], len);
    for (uint32_t j = 0; r && j < r->count; j++) offer(&f, r->seats[j].member);
    hd_hub_member_t *own = owner_of(hub, msg->rooms[i], len); /* after the seats: they may have closed it */
    if (own) offer(&f, own);
  }
  if (f.delivered) {
    uint32_t slot = hd_traffic_slot(&hub->traffic, msg->nsp, strlen(msg->nsp));
    for (uint32_t p = 0; p < HD_TRAFFIC_PROTOCOLS; p++) hub->traffic.delivered[slot][p] += f.by_protocol[p];
  }
  hd_hub_msg_unref(msg);
  return f.delivered;
}

void hd_hub_set_persist(hd_hub_t *hub, hd_hub_persist_fn fn, void *arg) {
  hub->persist = fn;
  hub->persist_arg = arg;
}

int hd_hub_persisted(hd_hub_t *hub, void (*done)(void *done_arg, int status), void *done_arg) {
  return hub->persist ? hub->persist(hub->persist_arg, done, done_arg) : HD_ENOTFOUND;
}

void hd_hub_drain(hd_hub_t *hub) {
  if (hub->mailbox) hd_mailbox_drain(hub->mailbox);
}

/* Under the publish lock: msg's id, and its message id unless it has one. */
static void give_ids(hd_hub_shared_t *sh, hd_hub_msg_t *msg) {
  msg->id = ++sh->next_msg_id;
  if (!msg->message_id[0])
    snprintf(msg->message_id, sizeof msg->message_id, "%016llx-%llu", (unsigned long long)sh->id_prefix,
             (unsigned long long)msg->id);
}

void hd_hub_stamp(hd_hub_t *hub, hd_hub_msg_t *msg) {
  hd_hub_shared_t *sh = hub->shared;
  uv_mutex_lock(&sh->publish_mu);
  give_ids(sh, msg);
  if (sh->observer) sh->observer(msg, sh->observer_arg);
  uv_mutex_unlock(&sh->publish_mu);
}

int hd_hub_publish(hd_hub_t *hub, hd_hub_msg_t *msg, hd_hub_member_t *skip, hd_hub_count_fn on_count, void *arg) {
  hd_hub_shared_t *sh = hub->shared;
  uv_mutex_lock(&sh->publish_mu);
  give_ids(sh, msg);
  int rc = 0;
  hub->traffic.published[hd_traffic_slot(&hub->traffic, msg->nsp, strlen(msg->nsp))]++;
  if ((msg->flags & HD_MSG_SEQUENCED) && sh->history) rc = hd_history_append(sh->history, msg);
  if (!rc && sh->observer) sh->observer(msg, sh->observer_arg);
  if (!rc) rc = sh->adapter->ops->broadcast(sh->adapter, hub, msg, skip, on_count, arg);
  uv_mutex_unlock(&sh->publish_mu);
  hd_hub_drain(hub);
  return rc;
}

/* The members of to's rooms (each once) minus except rooms that can do what `has` says, into
 * *out (malloc'd, caller frees); returns how many. */
static uint32_t collect(hd_hub_t *hub, const hd_hub_target_t *to, bool (*has)(const hd_hub_member_ops_t *ops),
                        hd_hub_member_t ***out) {
  hd_hub_member_t **targets = NULL;
  uint32_t count = 0, cap = 0;
  uv_mutex_lock(&hub->shared->publish_mu); /* a fresh stamp for "at most once", never a message's */
  uint64_t stamp = ++hub->shared->next_msg_id;
  uv_mutex_unlock(&hub->shared->publish_mu);
  except_t x;
  except_resolve(hub, to->except, to->except_count, &x);
  for (size_t i = 0; i < to->room_count; i++) {
    size_t len = strlen(to->rooms[i]);
    hd_hub_room_t *r = hd_map_get(&hub->rooms, to->rooms[i], len);
    hd_hub_member_t *own = owner_of(hub, to->rooms[i], len);
    for (uint32_t j = 0; j <= (r ? r->count : 0); j++) { /* the seats, then the owner */
      hd_hub_member_t *m = r && j < r->count ? r->seats[j].member : own;
      if (!m || m->last_msg_id == stamp || !has(m->ops) || excepted(m, &x)) continue;
      m->last_msg_id = stamp;
      if (grow((void **)&targets, &cap, sizeof(*targets), count + 1, 8)) break;
      targets[count++] = m;
    }
  }
  *out = targets;
  return count;
}

static bool takes_requests(const hd_hub_member_ops_t *ops) { return ops->on_request != NULL; }
static bool describes(const hd_hub_member_ops_t *ops) { return ops->describe != NULL; }

size_t hd_hub_apply(hd_hub_t *hub, hd_hub_req_t req, const hd_hub_target_t *to, const char *room) {
  hd_hub_member_t **targets; /* collected first: a request changes the very rooms being walked */
  uint32_t count = collect(hub, to, takes_requests, &targets);
  for (uint32_t i = 0; i < count; i++) targets[i]->ops->on_request(targets[i], req, room);
  free(targets);
  return count;
}

size_t hd_hub_describe(hd_hub_t *hub, const hd_hub_target_t *to, hd_sbuf_t *out) {
  hd_hub_member_t **targets;
  uint32_t count = collect(hub, to, describes, &targets);
  for (uint32_t i = 0; i < count; i++) {
    if (i) hd_sbuf_puts(out, ",");
    targets[i]->ops->describe(targets[i], out);
  }
  free(targets);
  return count;
}

int hd_hub_fetch(hd_hub_t *hub, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg) {
  hd_adapter_t *a = hub->shared->adapter;
  int rc = a->ops->fetch(a, hub, to, fn, arg);
  hd_hub_drain(hub);
  return rc;
}

int hd_hub_request(hd_hub_t *hub, hd_hub_req_t req, const hd_hub_target_t *to, const char *room) {
  hd_adapter_t *a = hub->shared->adapter;
  int rc = a->ops->request(a, hub, req, to, room);
  hd_hub_drain(hub);
  return rc;
}

/* A room key seen once per call (keys borrowed from the rooms, which outlive the call). */
static int seen_key(hd_map_t *seen, const char *key) {
  size_t n = strlen(key);
  if (hd_map_get(seen, key, n)) return 1;
  return hd_map_put(seen, key, n, (void *)key) ? HD_ENOMEM : 0;
}

/* Appends key to out unless seen already or an all-room key; returns the keys written so far. */
static size_t put_key(hd_map_t *seen, const char *key, size_t keys, hd_sbuf_t *out) {
  if (key[0] == '\x1e' || seen_key(seen, key)) return keys;
  hd_sbuf_puts(out, keys ? ",\"" : "\"");
  hd_sbuf_json_escape(out, key, strlen(key));
  hd_sbuf_puts(out, "\"");
  return keys + 1;
}

size_t hd_hub_room_keys(hd_hub_t *hub, const hd_hub_target_t *to, hd_sbuf_t *out) {
  hd_hub_member_t **targets;
  uint32_t count = collect(hub, to, describes, &targets);
  char **own = count ? calloc(count, sizeof(*own)) : NULL; /* own room keys, kept while seen borrows them */
  hd_map_t seen = {0};
  size_t keys = 0;
  char key[512];
  for (uint32_t i = 0; i < count; i++) {
    hd_hub_member_t *m = targets[i];
    if (own && m->ops->own_room && m->ops->own_room(m, key, sizeof key) && (own[i] = strdup(key)))
      keys = put_key(&seen, own[i], keys, out);
    for (uint32_t j = 0; j < m->room_count; j++) keys = put_key(&seen, m->rooms[j].room->name, keys, out);
  }
  hd_map_free(&seen);
  for (uint32_t i = 0; own && i < count; i++) free(own[i]);
  free(own);
  free(targets);
  return keys;
}

int hd_hub_all_rooms(hd_hub_t *hub, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg) {
  hd_adapter_t *a = hub->shared->adapter;
  int rc = a->ops->all_rooms(a, hub, to, fn, arg);
  hd_hub_drain(hub);
  return rc;
}

void hd_hub_on_server_emit(hd_hub_t *hub, hd_hub_server_emit_fn fn, void *arg) {
  hub->server_emit = fn;
  hub->server_emit_arg = arg;
}

void hd_hub_server_emit(hd_hub_t *hub, const char *nsp, const char *args_json, hd_hub_reply_t *reply) {
  if (hub->server_emit) hub->server_emit(hub->server_emit_arg, nsp, args_json, reply);
  else if (reply) reply->send(reply, NULL);
}

int hd_hub_server_side_emit(hd_hub_t *hub, const char *nsp, const char *args_json, hd_hub_answers_fn fn, void *arg) {
  hd_adapter_t *a = hub->shared->adapter;
  return a->ops->server_side_emit(a, hub, nsp ? nsp : "/", args_json, fn, arg);
}
