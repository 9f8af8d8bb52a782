/* Unit tests for the hub and the publish path: join/leave bookkeeping, fan-out once per member across
 * rooms, except rooms, own rooms resolved through a lookup (a socket's id), topic sequences and bounded history with replay, per-shard encoded-frame
 * caches, and several shards on their own threads delivering through mailboxes (counts gathered
 * back, concurrent publishes to one topic in sequence order everywhere). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "cluster/local.h"
#include "core/error.h"
#include "delivery/history.h"
#include "hub/hub.h"

typedef struct {
  hd_hub_member_t member; /* first: the deliver callback casts back */
  int received;
  uint64_t last_seq;
  bool in_order;          /* every sequenced message was last_seq + 1 */
  const char *own;        /* the key of its own room (test_own_rooms), or NULL */
} test_member_t;

static void deliver(hd_hub_member_t *m, hd_hub_msg_t *msg) {
  test_member_t *t = (test_member_t *)m;
  t->received++;
  if (msg->seq) {
    if (t->last_seq && msg->seq != t->last_seq + 1) t->in_order = false;
    t->last_seq = msg->seq;
  }
}

static int requests;

/* Joins the requested room on the test's own hub pointer (kept in the member's user field). */
static hd_hub_t *member_hub;
static void on_request(hd_hub_member_t *m, hd_hub_req_t req, const char *room) {
  requests++;
  if (req == HD_HUB_REQ_JOIN) hd_hub_join(member_hub, m, room, strlen(room));
}

static void describe(hd_hub_member_t *m, hd_sbuf_t *out) { hd_sbuf_printf(out, "{\"rooms\":%u}", m->room_count); }

static size_t own_room(const hd_hub_member_t *m, char *out, size_t cap) {
  const char *own = ((const test_member_t *)m)->own;
  return own ? (size_t)snprintf(out, cap, "%s", own) : 0;
}

static const hd_hub_member_ops_t ops = {deliver, on_request, describe, HD_TRAFFIC_SOCKETIO, own_room};

#define JOIN(hub, m, name) assert_int_equal(hd_hub_join(hub, &(m)->member, name, strlen(name)), 0)

static hd_hub_limits_t limits = {.max_rooms_per_member = 4};

/* A node of `count` shards, each with its loop, mailbox and hub. */
typedef struct {
  uint32_t count;
  hd_hub_shared_t shared;
  hd_adapter_t *adapter;
  hd_history_t *history;
  uv_loop_t loops[2];
  hd_mailbox_t mailboxes[2];
  hd_hub_t *hubs[2];
} node_t;

static void node_init(node_t *n, uint32_t count, uint32_t history) {
  memset(n, 0, sizeof(*n));
  n->count = count;
  assert_int_equal(hd_hub_shared_init(&n->shared, count), 0);
  n->adapter = hd_local_adapter_new(count);
  n->history = hd_history_new(history, 0);
  n->shared.adapter = n->adapter;
  n->shared.history = n->history;
  for (uint32_t i = 0; i < count; i++) {
    uv_loop_init(&n->loops[i]);
    assert_int_equal(hd_mailbox_init(&n->mailboxes[i], &n->loops[i]), 0);
    n->hubs[i] = hd_hub_new(&limits, &n->shared, i, &n->mailboxes[i]);
    hd_local_adapter_attach(n->adapter, i, n->hubs[i], &n->mailboxes[i]);
  }
}

static void node_free(node_t *n) {
  for (uint32_t i = 0; i < n->count; i++) hd_mailbox_close(&n->mailboxes[i]);
  for (uint32_t i = 0; i < n->count; i++) {
    hd_hub_free(n->hubs[i]);
    uv_run(&n->loops[i], UV_RUN_DEFAULT);
    hd_mailbox_destroy(&n->mailboxes[i]);
    assert_int_equal(uv_loop_close(&n->loops[i]), 0);
  }
  n->adapter->ops->free(n->adapter);
  hd_history_free(n->history);
  hd_hub_shared_destroy(&n->shared);
}

static void add_count(void *arg, const hd_hub_msg_t *msg, size_t delivered, int status) { *(size_t *)arg += delivered + 1000; }

/* Publishes to rooms (the first a topic when sequenced) and returns the deliveries of one shard. */
static size_t publish(hd_hub_t *hub, uint32_t flags, const char *const *rooms, size_t n, const char *const *except,
                      size_t ne) {
  hd_hub_target_t to = {NULL, rooms, n, except, ne, flags};
  hd_hub_msg_t *msg = hd_hub_msg_new(hub, &to, "ev", "[{}]", 4, NULL, 0);
  size_t total = 0;
  assert_int_equal(hd_hub_publish(hub, msg, NULL, add_count, &total), 0);
  hd_hub_msg_unref(msg);
  assert_true(total >= 1000); /* one shard: counted before publish returns */
  return total - 1000;
}

static void test_join_leave(void **state) {
  node_t node;
  node_init(&node, 1, 0);
  hd_hub_t *hub = node.hubs[0];
  test_member_t a = {0}, b = {0}, c = {0};
  hd_hub_member_init(&a.member, &ops);
  hd_hub_member_init(&b.member, &ops);
  hd_hub_member_init(&c.member, &ops);
  JOIN(hub, &a, "r1");
  JOIN(hub, &a, "r1"); /* idempotent */
  JOIN(hub, &b, "r1");
  JOIN(hub, &c, "r1");
  JOIN(hub, &a, "r2");
  assert_int_equal(hd_hub_room(hub, "r1", 2)->count, 3);
  assert_int_equal(a.member.room_count, 2);
  /* a room of one member keeps its seat inline; a second member moves the seats to an array */
  hd_hub_room_t *r2 = hd_hub_room(hub, "r2", 2);
  assert_ptr_equal(r2->seats, &r2->first_seat);
  assert_ptr_equal(r2->seats[0].member, &a.member);
  hd_hub_room_t *r1 = hd_hub_room(hub, "r1", 2);
  assert_ptr_not_equal(r1->seats, &r1->first_seat);
  assert_ptr_equal(r1->seats[0].member, &a.member); /* the inline seat was carried over */
  assert_ptr_equal(r1->seats[2].member, &c.member);
  /* leave from the middle keeps the others' indexes right */
  assert_int_equal(hd_hub_leave(hub, &b.member, "r1", 2), 0);
  assert_int_equal(hd_hub_leave(hub, &b.member, "r1", 2), HD_ENOTFOUND);
  assert_true(hd_hub_member_in(&c.member, "r1", 2));
  assert_int_equal(hd_hub_leave(hub, &c.member, "r1", 2), 0);
  assert_int_equal(hd_hub_leave(hub, &a.member, "r1", 2), 0);
  assert_null(hd_hub_room(hub, "r1", 2)); /* empty rooms are dropped */
  assert_int_equal(hd_hub_room_count(hub), 1);
  /* room limit per member */
  JOIN(hub, &a, "x1");
  JOIN(hub, &a, "x2");
  JOIN(hub, &a, "x3");
  assert_int_equal(hd_hub_join(hub, &a.member, "x4", 2), HD_ERANGE);
  hd_hub_leave_all(hub, &a.member);
  hd_hub_leave_all(hub, &b.member);
  hd_hub_leave_all(hub, &c.member);
  assert_int_equal(hd_hub_room_count(hub), 0);
  node_free(&node);
}

static void test_fanout_once_and_except(void **state) {
  node_t node;
  node_init(&node, 1, 0);
  hd_hub_t *hub = node.hubs[0];
  test_member_t m[3] = {0};
  for (int i = 0; i < 3; i++) hd_hub_member_init(&m[i].member, &ops);
  JOIN(hub, &m[0], "a");
  JOIN(hub, &m[0], "b");
  JOIN(hub, &m[1], "b");
  JOIN(hub, &m[2], "c");
  JOIN(hub, &m[2], "b");
  const char *ab[] = {"a", "b", "nobody"};
  assert_int_equal(publish(hub, 0, ab, 3, NULL, 0), 3); /* m0 once although in a and b */
  assert_int_equal(m[0].received, 1);
  const char *except[] = {"c"};
  assert_int_equal(publish(hub, 0, ab, 2, except, 1), 2);
  assert_int_equal(m[2].received, 1);
  for (int i = 0; i < 3; i++) hd_hub_leave_all(hub, &m[i].member);
  node_free(&node);
}

static void collect(hd_hub_msg_t *msg, void *arg) { ((uint64_t *)arg)[((uint64_t *)arg)[0]++ + 1] = msg->seq; }

static void test_history_and_replay(void **state) {
  node_t node;
  node_init(&node, 1, 3);
  hd_hub_t *hub = node.hubs[0];
  hd_history_t *h = node.history;
  test_member_t a = {0};
  hd_hub_member_init(&a.member, &ops);
  const char *t[] = {"t"};
  publish(hub, HD_MSG_SEQUENCED, t, 1, NULL, 0); /* not a kept topic yet: no sequence */
  assert_int_equal(hd_history_topic_count(h), 0);
  assert_int_equal(hd_history_keep(h, "t"), 0);
  for (int i = 0; i < 2; i++) publish(hub, HD_MSG_SEQUENCED, t, 1, NULL, 0); /* nobody online: kept anyway */
  JOIN(hub, &a, "t");
  publish(hub, HD_MSG_SEQUENCED, t, 1, NULL, 0);
  uint64_t base = a.last_seq - 3; /* sequences start at a per-process base */
  assert_true(base > 1000000000000000ULL && a.last_seq < (1ULL << 53));
  assert_int_equal(hd_history_top(h, "t"), base + 3);
  uint64_t got[8] = {0}, top = 0;
  assert_true(hd_history_replay(h, "t", NULL, base + 1, collect, got, &top));
  assert_int_equal(top, base + 3);
  assert_int_equal(got[0], 2);
  assert_int_equal(got[1], base + 2);
  assert_int_equal(got[2], base + 3);
  publish(hub, HD_MSG_SEQUENCED, t, 1, NULL, 0); /* seq 4 evicts seq 1 (history of 3) */
  memset(got, 0, sizeof got);
  assert_false(hd_history_replay(h, "t", NULL, base, collect, got, NULL)); /* seq 1 is gone */
  assert_int_equal(got[0], 3);
  memset(got, 0, sizeof got);
  assert_true(hd_history_replay(h, "t", NULL, base + 1, collect, got, NULL));
  memset(got, 0, sizeof got);
  assert_false(hd_history_replay(h, "t", NULL, base - 5, collect, got, NULL)); /* from before this process */
  memset(got, 0, sizeof got);
  assert_false(hd_history_replay(h, "t", NULL, base + 99, collect, got, NULL)); /* from the future */
  hd_hub_leave_all(hub, &a.member);
  node_free(&node);
}

static int encodes;
static hd_buf_t *encode(const hd_hub_msg_t *msg, void *arg) {
  encodes++;
  return hd_buf_from(msg->args, msg->args_len);
}

static void test_encoded_cache_per_shard(void **state) {
  node_t node;
  node_init(&node, 2, 0);
  int enc = hd_hub_encoding_id(node.hubs[0], "test/plain");
  assert_int_equal(hd_hub_encoding_id(node.hubs[0], "test/plain"), enc);
  const char *r[] = {"r"};
  hd_hub_target_t to = {NULL, r, 1, NULL, 0, 0};
  hd_hub_msg_t *msg = hd_hub_msg_new_value(node.hubs[0], &to, "ev", "1", 1);
  encodes = 0;
  for (int i = 0; i < 100; i++)
    assert_memory_equal(hd_hub_msg_encoded(node.hubs[i % 2], msg, enc, encode, NULL)->data, "[1]", 3);
  assert_int_equal(encodes, 2); /* once per shard */
  assert_ptr_not_equal(hd_hub_msg_encoded(node.hubs[0], msg, enc, encode, NULL),
                       hd_hub_msg_encoded(node.hubs[1], msg, enc, encode, NULL));
  assert_true(msg->single_arg);
  hd_hub_msg_unref(msg);
  node_free(&node);
}

/* --- two shards on two threads ------------------------------------------------------------ */

typedef struct {
  node_t *node;
  uint32_t shard;
  test_member_t members[3];
  int publishes;
  size_t counted;     /* deliveries reported back for this shard's publishes (+1000 each) */
  uv_barrier_t *start;
} worker_t;

static void run_worker(void *arg) {
  worker_t *w = arg;
  hd_hub_t *hub = w->node->hubs[w->shard];
  uv_barrier_wait(w->start);
  const char *t[] = {"topic"};
  for (int i = 0; i < w->publishes; i++) {
    hd_hub_target_t to = {NULL, t, 1, NULL, 0, HD_MSG_SEQUENCED};
    hd_hub_msg_t *msg = hd_hub_msg_new(hub, &to, "ev", "[1]", 3, NULL, 0);
    assert_int_equal(hd_hub_publish(hub, msg, NULL, add_count, &w->counted), 0);
    hd_hub_msg_unref(msg);
    if (i % 16 == 0) uv_run(&w->node->loops[w->shard], UV_RUN_NOWAIT);
  }
  /* let the other shard's messages and the counts arrive */
  for (int spins = 0; spins < 2000 && w->counted < (size_t)w->publishes * 1000 + (size_t)w->publishes * 6; spins++) {
    uv_run(&w->node->loops[w->shard], UV_RUN_NOWAIT);
    uv_sleep(1);
  }
}

static void test_two_shards_in_sequence_order(void **state) {
  node_t node;
  node_init(&node, 2, 16);
  assert_int_equal(hd_history_keep(node.history, "topic"), 0);
  uv_barrier_t start;
  uv_barrier_init(&start, 2);
  worker_t w[2];
  for (uint32_t s = 0; s < 2; s++) {
    w[s] = (worker_t){.node = &node, .shard = s, .publishes = 300, .start = &start};
    for (int i = 0; i < 3; i++) {
      hd_hub_member_init(&w[s].members[i].member, &ops);
      w[s].members[i].in_order = true;
      JOIN(node.hubs[s], &w[s].members[i], "topic");
    }
  }
  uv_thread_t thread;
  assert_int_equal(uv_thread_create(&thread, run_worker, &w[1]), 0);
  run_worker(&w[0]);
  uv_thread_join(&thread);
  for (int k = 0; k < 50; k++) /* the last counts may still be in flight */
    for (uint32_t s = 0; s < 2; s++) uv_run(&node.loops[s], UV_RUN_NOWAIT);
  for (uint32_t s = 0; s < 2; s++) {
    /* every publish reached the 3 members of each shard: 6 deliveries counted back per publish */
    assert_int_equal(w[s].counted, (size_t)w[s].publishes * 1006);
    for (int i = 0; i < 3; i++) {
      assert_int_equal(w[s].members[i].received, 600);
      assert_true(w[s].members[i].in_order);
      assert_int_equal(w[s].members[i].last_seq, hd_history_top(node.history, "topic"));
    }
  }
  for (uint32_t s = 0; s < 2; s++)
    for (int i = 0; i < 3; i++) hd_hub_leave_all(node.hubs[s], &w[s].members[i].member);
  uv_barrier_destroy(&start);
  node_free(&node);
}

static void got_fetch(void *arg, const char *json, size_t count) {
  snprintf(arg, 256, "%zu %s", count, json);
}

/* Membership requests and fetches go to every shard's members of the target (except rooms left out). */
static void test_request_and_fetch(void **state) {
  node_t node;
  node_init(&node, 1, 0);
  hd_hub_t *hub = node.hubs[0];
  member_hub = hub;
  test_member_t m[3] = {0};
  for (int i = 0; i < 3; i++) hd_hub_member_init(&m[i].member, &ops);
  JOIN(hub, &m[0], "a");
  JOIN(hub, &m[1], "a");
  JOIN(hub, &m[1], "vip");
  JOIN(hub, &m[2], "b");
  const char *a[] = {"a"}, *vip[] = {"vip"};
  hd_hub_target_t to = {NULL, a, 1, vip, 1, 0};
  char got[256] = "";
  assert_int_equal(hd_hub_fetch(hub, &to, got_fetch, got), 0);
  assert_string_equal(got, "1 [{\"rooms\":1}]"); /* m0 only: m1 is in vip */
  requests = 0;
  assert_int_equal(hd_hub_request(hub, HD_HUB_REQ_JOIN, &to, "c"), 0);
  assert_int_equal(requests, 1);
  assert_true(hd_hub_member_in(&m[0].member, "c", 1));
  assert_false(hd_hub_member_in(&m[1].member, "c", 1));
  hd_hub_target_t all = {NULL, a, 1, NULL, 0, 0};
  assert_int_equal(hd_hub_fetch(hub, &all, got_fetch, got), 0);
  assert_string_equal(got, "2 [{\"rooms\":2},{\"rooms\":2}]");
  for (int i = 0; i < 3; i++) hd_hub_leave_all(hub, &m[i].member);
  node_free(&node);
}

/* Own rooms: members the lookup finds by key (as a Socket.IO socket by its id), with no hub room. */
static test_member_t owners[2];
static hd_hub_member_t *owner(void *arg, const char *name, size_t len) {
  for (int i = 0; i < 2; i++)
    if (owners[i].own && strlen(owners[i].own) == len && !memcmp(owners[i].own, name, len)) return &owners[i].member;
  return NULL;
}
static size_t owner_count(void *arg) { return 2; }
static const hd_hub_own_rooms_t own_rooms = {owner, owner_count};

static void test_own_rooms(void **state) {
  node_t node;
  node_init(&node, 1, 0);
  hd_hub_t *hub = node.hubs[0];
  member_hub = hub;
  hd_hub_set_own_rooms(hub, &own_rooms, NULL);
  test_member_t *a = &owners[0], *b = &owners[1], c = {0};
  memset(owners, 0, sizeof owners);
  hd_hub_member_init(&a->member, &ops);
  hd_hub_member_init(&b->member, &ops);
  hd_hub_member_init(&c.member, &ops);
  a->own = "id-a", b->own = "id-b";
  JOIN(hub, a, "all");
  JOIN(hub, b, "all");
  JOIN(hub, &c, "all");
  assert_null(hd_hub_room(hub, "id-a", 4));
  assert_int_equal(hd_hub_room_count(hub), 3); /* "all" and the two own rooms */
  const char *to_a[] = {"id-a"}, *all[] = {"all"}, *ex_a[] = {"id-a"}, *to_ab[] = {"id-a", "all"};
  assert_int_equal(publish(hub, 0, to_a, 1, NULL, 0), 1);
  assert_int_equal(a->received, 1);
  assert_int_equal(publish(hub, 0, all, 1, ex_a, 1), 2); /* except a's own room */
  assert_int_equal(a->received, 1);
  assert_int_equal(publish(hub, 0, to_ab, 2, NULL, 0), 3); /* a once although in both */
  assert_int_equal(a->received, 2);
  /* c joins a room named by a's id: the room holds both, as in socket.io's adapter */
  JOIN(hub, &c, "id-a");
  assert_int_equal(publish(hub, 0, to_a, 1, NULL, 0), 2);
  assert_int_equal(publish(hub, 0, all, 1, ex_a, 1), 1); /* b only */
  assert_int_equal(b->received, 3);
  char got[256] = "";
  hd_hub_target_t fetch_a = {NULL, to_a, 1, NULL, 0, 0};
  assert_int_equal(hd_hub_fetch(hub, &fetch_a, got_fetch, got), 0);
  assert_string_equal(got, "2 [{\"rooms\":2},{\"rooms\":1}]"); /* c (all, id-a) from the room, then a */
  requests = 0;
  hd_hub_target_t to_b = {NULL, (const char *[]){"id-b"}, 1, NULL, 0, 0};
  assert_int_equal(hd_hub_request(hub, HD_HUB_REQ_JOIN, &to_b, "x"), 0);
  assert_int_equal(requests, 1);
  assert_true(hd_hub_member_in(&b->member, "x", 1));
  /* room keys: own rooms once, before the member's hub rooms; "id-a" once although also a hub room */
  hd_sbuf_t keys = {0};
  hd_hub_target_t everyone = {NULL, all, 1, NULL, 0, 0};
  assert_int_equal(hd_hub_room_keys(hub, &everyone, &keys), 4);
  assert_string_equal(keys.ptr, "\"id-a\",\"all\",\"id-b\",\"x\"");
  hd_sbuf_free(&keys);
  hd_hub_set_own_rooms(hub, NULL, NULL);
  assert_int_equal(publish(hub, 0, to_a, 1, NULL, 0), 1); /* without the lookup: c, in the hub room */
  hd_hub_leave_all(hub, &a->member);
  hd_hub_leave_all(hub, &b->member);
  hd_hub_leave_all(hub, &c.member);
  node_free(&node);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_join_leave),
      cmocka_unit_test(test_fanout_once_and_except),
      cmocka_unit_test(test_history_and_replay),
      cmocka_unit_test(test_encoded_cache_per_shard),
      cmocka_unit_test(test_two_shards_in_sequence_order),
      cmocka_unit_test(test_request_and_fetch),
      cmocka_unit_test(test_own_rooms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
