/* The local adapter: fan-out across this node's shards (see local.h). */
#include "cluster/local.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct {
  hd_hub_t *hub;
  hd_mailbox_t *mailbox;
} shard_t;

typedef struct {
  hd_adapter_t base;
  uint32_t count;
  shard_t shards[];
} local_t;

/* Delivery counts of one publish, gathered on the publishing shard (its thread only). */
typedef struct {
  uint32_t remaining;
  size_t total;
  int status;              /* the first shard's failure to persist (0: none) */
  hd_hub_msg_t *msg;       /* a reference, for the callback */
  hd_hub_count_fn fn;
  void *arg;
} gather_t;

typedef struct {
  hd_hub_msg_t *msg;
  hd_hub_t *hub;           /* the shard delivering */
  hd_hub_member_t *skip;   /* on the publishing shard only */
  gather_t *gather;        /* NULL when nobody waits */
  shard_t *origin;
  size_t delivered;
  int status;              /* of persisting what the delivery keeps */
} delivery_t;

static void gather_add(gather_t *g, size_t n, int status) {
  g->total += n;
  if (status && !g->status) g->status = status;
  if (--g->remaining == 0) {
    if (g->fn) g->fn(g->arg, g->msg, g->total, g->status);
    hd_hub_msg_unref(g->msg);
    free(g);
  }
}

/* On the publishing shard: one shard's count came back. Cancelled tasks (the node's teardown, every
 * loop stopped) still complete the gather, so its callback runs and frees what it holds. */
static void run_count(void *arg, bool cancelled) {
  delivery_t *d = arg;
  gather_add(d->gather, d->delivered, d->status);
  free(d);
}

/* On the delivering shard: its count goes back to the publishing shard. */
static void report(delivery_t *d, bool cancelled) {
  if (cancelled || d->hub == d->origin->hub || hd_mailbox_post(d->origin->mailbox, run_count, d)) run_count(d, cancelled);
}

static void persisted(void *arg, int status) {
  delivery_t *d = arg;
  d->status = status;
  report(d, false);
}

/* A counted publish is reported once what its delivery keeps is durable (persist, then answer). */
static void run_delivery(void *arg, bool cancelled) {
  delivery_t *d = arg;
  if (!cancelled) d->delivered = hd_hub_deliver(d->hub, d->msg, d->skip);
  hd_hub_msg_unref(d->msg);
  d->msg = NULL;
  if (!d->gather) free(d);
  else if (cancelled || !d->delivered || hd_hub_persisted(d->hub, persisted, d)) report(d, cancelled);
}

static int broadcast(hd_adapter_t *a, hd_hub_t *from, hd_hub_msg_t *msg, hd_hub_member_t *skip,
                     hd_hub_count_fn on_count, void *arg) {
  local_t *l = (local_t *)a;
  shard_t *origin = &l->shards[hd_hub_shard(from)];
  gather_t *g = NULL;
  if (on_count) {
    if (!(g = malloc(sizeof(*g)))) return HD_ENOMEM;
    *g = (gather_t){.remaining = l->count + 1, .msg = hd_hub_msg_ref(msg), .fn = on_count, .arg = arg}; /* +1: held until every share is posted */
  }
  for (uint32_t i = 0; i < l->count; i++) {
    shard_t *s = &l->shards[i];
    delivery_t *d = malloc(sizeof(*d));
    if (!d) {
      if (g) g->remaining--;
      continue;
    }
    *d = (delivery_t){hd_hub_msg_ref(msg), s->hub, s == origin ? skip : NULL, g, origin, 0, 0};
    if (hd_mailbox_post(s->mailbox, run_delivery, d)) { /* that shard is stopping */
      hd_hub_msg_unref(msg);
      free(d);
      if (g) g->remaining--;
    }
  }
  if (g) gather_add(g, 0, 0); /* the publishing thread is the only one that touches g */
  return 0;
}

/* What a membership request or a fetch targets, copied once and shared by every shard's task. */
typedef struct {
  uint32_t refs;           /* atomic: one per task, one held while posting */
  hd_hub_target_t to;      /* points into the copies below */
  char *room;
  char **strings;          /* rooms then except rooms */
} order_t;

static void order_unref(order_t *o) {
  if (!o || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL)) return;
  for (size_t i = 0; i < o->to.room_count + o->to.except_count; i++) free(o->strings[i]);
  free(o->strings);
  free(o->room);
  free((char *)o->to.nsp);
  free(o);
}

static order_t *order_new(const hd_hub_target_t *to, const char *room) {
  order_t *o = calloc(1, sizeof(*o));
  size_t n = to->room_count + to->except_count;
  if (!o || !(o->strings = calloc(n ? n : 1, sizeof(char *)))) {
    free(o);
    return NULL;
  }
  o->refs = 1;
  o->to = (hd_hub_target_t){NULL, (const char *const *)o->strings, to->room_count,
                            (const char *const *)o->strings + to->room_count, to->except_count, to->flags};
  bool ok = (o->to.nsp = strdup(to->nsp ? to->nsp : "/")) && (!room || (o->room = strdup(room)));
  for (size_t i = 0; ok && i < n; i++)
    ok = (o->strings[i] = strdup(i < to->room_count ? to->rooms[i] : to->except[i - to->room_count])) != NULL;
  if (!ok) {
    order_unref(o);
    return NULL;
  }
  return o;
}

typedef struct {
  order_t *order;
  hd_hub_t *hub;           /* the shard it runs on */
  hd_hub_req_t req;
} request_t;

static void run_request(void *arg, bool cancelled) {
  request_t *r = arg;
  if (!cancelled) hd_hub_apply(r->hub, r->req, &r->order->to, r->order->room);
  order_unref(r->order);
  free(r);
}

static int request(hd_adapter_t *a, hd_hub_t *from, hd_hub_req_t req, const hd_hub_target_t *to, const char *room) {
  local_t *l = (local_t *)a;
  order_t *o = order_new(to, room);
  if (!o) return HD_ENOMEM;
  int rc = 0;
  for (uint32_t i = 0; i < l->count; i++) {
    request_t *r = malloc(sizeof(*r));
    if (!r) {
      rc = HD_ENOMEM;
      continue;
    }
    *r = (request_t){o, l->shards[i].hub, req};
    __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
    if (hd_mailbox_post(l->shards[i].mailbox, run_request, r)) {
      order_unref(o);
      free(r);
    }
  }
  order_unref(o); /* the posting hold */
  return rc;
}

/* Member descriptions (or room keys) gathered on the asking shard (its thread only). */
typedef struct {
  uint32_t remaining;
  size_t total;
  bool rooms;              /* room keys: each once over the shards */
  hd_sbuf_t json;          /* the array being built */
  hd_hub_fetch_fn fn;
  void *arg;
} fetch_t;

/* The room keys of every shard, each once, to fn. */
static void rooms_done(fetch_t *f) {
  json_t *all = json_loadb(f->json.ptr, f->json.len, 0, NULL), *set = json_object(), *out = json_array(), *v;
  size_t i;
  json_array_foreach(all, i, v) {
    if (json_is_string(v) && !json_object_get(set, json_string_value(v))) {
      json_object_set_new(set, json_string_value(v), json_true());
      json_array_append(out, v);
    }
  }
  char *text = json_dumps(out, JSON_COMPACT);
  f->fn(f->arg, text ? text : "[]", text ? json_array_size(out) : 0);
  free(text);
  json_decref(all), json_decref(set), json_decref(out);
}

typedef struct {
  order_t *order;
  hd_hub_t *hub;           /* the shard describing */
  shard_t *origin;
  fetch_t *fetch;
  hd_sbuf_t part;          /* this shard's descriptions, comma-separated */
  size_t count;
} part_t;

static void fetch_add(fetch_t *f, part_t *p) {
  if (p->count) {
    if (f->total) hd_sbuf_puts(&f->json, ",");
    hd_sbuf_append(&f->json, p->part.ptr, p->part.len);
    f->total += p->count;
  }
  if (--f->remaining == 0) {
    hd_sbuf_puts(&f->json, "]");
    if (f->rooms && f->json.ptr) rooms_done(f);
    else f->fn(f->arg, f->json.ptr ? f->json.ptr : "[]", f->json.ptr ? f->total : 0);
    hd_sbuf_free(&f->json);
    free(f);
  }
}

/* On the asking shard: a part came back (cancelled: the node's teardown, completed all the same). */
static void run_part_back(void *arg, bool cancelled) {
  part_t *p = arg;
  fetch_add(p->fetch, p);
  hd_sbuf_free(&p->part);
  free(p);
}

static void run_describe(void *arg, bool cancelled) {
  part_t *p = arg;
  if (!cancelled)
    p->count = p->fetch->rooms ? hd_hub_room_keys(p->hub, &p->order->to, &p->part)
                               : hd_hub_describe(p->hub, &p->order->to, &p->part);
  order_unref(p->order);
  p->order = NULL;
  if (cancelled || p->hub == p->origin->hub || hd_mailbox_post(p->origin->mailbox, run_part_back, p))
    run_part_back(p, cancelled);
}

/* Asks every shard for descriptions (or room keys) of the members matching to. */
static int ask_shards(local_t *l, hd_hub_t *from, const hd_hub_target_t *to, bool rooms, hd_hub_fetch_fn fn, void *arg) {
  order_t *o = order_new(to, NULL);
  fetch_t *f = o ? calloc(1, sizeof(*f)) : NULL;
  if (!f || hd_sbuf_puts(&f->json, "[")) {
    free(f);
    order_unref(o);
    return HD_ENOMEM;
  }
  f->remaining = l->count + 1; /* +1: held until every shard was asked */
  f->rooms = rooms;
  f->fn = fn;
  f->arg = arg;
  shard_t *origin = &l->shards[hd_hub_shard(from)];
  for (uint32_t i = 0; i < l->count; i++) {
    part_t *p = calloc(1, sizeof(*p));
    if (!p) {
      f->remaining--;
      continue;
    }
    *p = (part_t){o, l->shards[i].hub, origin, f, {0}, 0};
    __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
    if (hd_mailbox_post(l->shards[i].mailbox, run_describe, p)) {
      order_unref(o);
      free(p);
      f->remaining--;
    }
  }
  order_unref(o);
  part_t none = {0};
  fetch_add(f, &none);
  return 0;
}

static int fetch(hd_adapter_t *a, hd_hub_t *from, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg) {
  return ask_shards((local_t *)a, from, to, false, fn, arg);
}

static int all_rooms(hd_adapter_t *a, hd_hub_t *from, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg) {
  return ask_shards((local_t *)a, from, to, true, fn, arg);
}

/* No other node: nothing is sent; the answers (none) are complete at once. */
static int server_side_emit(hd_adapter_t *a, hd_hub_t *from, const char *nsp, const char *args_json,
                            hd_hub_answers_fn fn, void *arg) {
  if (fn) fn(arg, true, "[]", 0);
  return 0;
}

static uint32_t server_count(hd_adapter_t *a) { return 1; }

static void adapter_free(hd_adapter_t *a) { free(a); }

static const hd_adapter_ops_t local_ops = {broadcast, request, fetch, all_rooms, server_side_emit, server_count,
                                           adapter_free, NULL, NULL};

hd_adapter_t *hd_local_adapter_new(uint32_t shard_count) {
  local_t *l = calloc(1, sizeof(*l) + shard_count * sizeof(shard_t));
  if (!l) return NULL;
  l->base.ops = &local_ops;
  l->count = shard_count;
  return &l->base;
}

void hd_local_adapter_attach(hd_adapter_t *a, uint32_t i, hd_hub_t *hub, hd_mailbox_t *mailbox) {
  local_t *l = (local_t *)a;
  if (i < l->count) l->shards[i] = (shard_t){hub, mailbox};
}
