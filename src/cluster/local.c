/* The local adapter: fan-out across this node's shards (see local.h). */
#include "cluster/local.h"

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
} delivery_t;

static void gather_add(gather_t *g, size_t n) {
  g->total += n;
  if (--g->remaining == 0) {
    if (g->fn) g->fn(g->arg, g->msg, g->total);
    hd_hub_msg_unref(g->msg);
    free(g);
  }
}

/* On the publishing shard: one shard's count came back. Cancelled tasks (the node's teardown, every
 * loop stopped) still complete the gather, so its callback runs and frees what it holds. */
static void run_count(void *arg, bool cancelled) {
  delivery_t *d = arg;
  gather_add(d->gather, d->delivered);
  free(d);
}

static void run_delivery(void *arg, bool cancelled) {
  delivery_t *d = arg;
  if (!cancelled) d->delivered = hd_hub_deliver(d->hub, d->msg, d->skip);
  hd_hub_msg_unref(d->msg);
  d->msg = NULL;
  if (!d->gather) free(d);
  else if (cancelled || d->hub == d->origin->hub || hd_mailbox_post(d->origin->mailbox, run_count, d))
    run_count(d, cancelled);
}

static int broadcast(hd_adapter_t *a, hd_hub_t *from, hd_hub_msg_t *msg, hd_hub_member_t *skip,
                     hd_hub_count_fn on_count, void *arg) {
  local_t *l = (local_t *)a;
  shard_t *origin = &l->shards[hd_hub_shard(from)];
  bool local_only = msg->flags & HD_MSG_LOCAL;
  uint32_t targets = local_only ? 1 : l->count;
  gather_t *g = NULL;
  if (on_count) {
    if (!(g = malloc(sizeof(*g)))) return HD_ENOMEM;
    *g = (gather_t){targets + 1, 0, hd_hub_msg_ref(msg), on_count, arg}; /* +1: held until every share is posted */
  }
  for (uint32_t i = 0; i < l->count; i++) {
    shard_t *s = &l->shards[i];
    if (local_only && s != origin) continue;
    delivery_t *d = malloc(sizeof(*d));
    if (!d) {
      if (g) g->remaining--;
      continue;
    }
    *d = (delivery_t){hd_hub_msg_ref(msg), s->hub, s == origin ? skip : NULL, g, origin, 0};
    if (hd_mailbox_post(s->mailbox, run_delivery, d)) { /* that shard is stopping */
      hd_hub_msg_unref(msg);
      free(d);
      if (g) g->remaining--;
    }
  }
  if (g) gather_add(g, 0); /* the publishing thread is the only one that touches g */
  return 0;
}

typedef struct {
  hd_hub_t *hub;
  hd_hub_req_t req;
  hd_hub_target_t to;
  char **rooms, **except, *room; /* owned copies behind `to` */
  size_t room_count, except_count;
  uint32_t *refs;                /* shared by the copies posted to every shard */
} request_t;

static void request_free(request_t *r) {
  if (__atomic_sub_fetch(r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    for (size_t i = 0; i < r->room_count; i++) free(r->rooms[i]);
    for (size_t i = 0; i < r->except_count; i++) free(r->except[i]);
    free(r->rooms);
    free(r->except);
    free(r->room);
    free(r->refs);
  }
  free(r);
}

static void run_request(void *arg, bool cancelled) {
  request_t *r = arg;
  if (!cancelled) hd_hub_apply(r->hub, r->req, &r->to, r->room);
  request_free(r);
}

static char **copy_strv(const char *const *v, size_t n, bool *ok) {
  char **out = n ? calloc(n, sizeof(*out)) : NULL;
  if (n && !out) *ok = false;
  for (size_t i = 0; out && i < n; i++)
    if (!(out[i] = strdup(v[i]))) *ok = false;
  return out;
}

static int request(hd_adapter_t *a, hd_hub_t *from, hd_hub_req_t req, const hd_hub_target_t *to, const char *room) {
  local_t *l = (local_t *)a;
  bool ok = true;
  request_t proto = {.req = req, .room_count = to->room_count, .except_count = to->except_count};
  proto.rooms = copy_strv(to->rooms, to->room_count, &ok);
  proto.except = copy_strv(to->except, to->except_count, &ok);
  proto.room = room ? strdup(room) : NULL;
  proto.refs = malloc(sizeof(*proto.refs));
  if (!ok || (room && !proto.room) || !proto.refs) {
    proto.refs = proto.refs ? proto.refs : malloc(sizeof(*proto.refs));
    if (proto.refs) {
      *proto.refs = 1;
      request_t *r = malloc(sizeof(*r));
      if (r) *r = proto, request_free(r);
    }
    return HD_ENOMEM;
  }
  *proto.refs = 1; /* held while posting */
  proto.to = (hd_hub_target_t){to->nsp, (const char *const *)proto.rooms, proto.room_count,
                               (const char *const *)proto.except, proto.except_count, to->flags};
  int rc = 0;
  for (uint32_t i = 0; i < l->count; i++) {
    request_t *r = malloc(sizeof(*r));
    if (!r) {
      rc = HD_ENOMEM;
      continue;
    }
    *r = proto;
    r->hub = l->shards[i].hub;
    __atomic_add_fetch(proto.refs, 1, __ATOMIC_RELAXED);
    if (hd_mailbox_post(l->shards[i].mailbox, run_request, r)) request_free(r);
  }
  request_t *self = malloc(sizeof(*self));
  if (self) *self = proto, request_free(self); /* drops the posting hold */
  return rc;
}

static uint32_t server_count(hd_adapter_t *a) { return 1; }

static void adapter_free(hd_adapter_t *a) { free(a); }

static const hd_adapter_ops_t local_ops = {broadcast, request, server_count, adapter_free};

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
