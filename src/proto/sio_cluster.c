/* Socket.IO server API across the cluster (see sio_cluster.h). A broadcast with acks is gathered
 * as socket.io's BroadcastOperator does: complete when as many nodes as the server count reported
 * their recipients and that many answers came, or at the timeout. */
#include "proto/sio_cluster.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "hub/adapter.h"

/* --- broadcast with acks ---------------------------------------------------------------------- */

typedef struct {
  hd_hub_acks_t base;       /* refs: the caller's until done, one per posted task, the messages' */
  hd_mailbox_t *mailbox;    /* the asking shard's: everything below is its thread's */
  uint32_t servers_expected, servers_counted;
  size_t clients_expected;
  json_t *responses;
  bool done;
  uv_timer_t timer;
  hd_sio_acks_fn fn;
  void *arg;
} gatherer_t;

typedef struct {
  gatherer_t *g;            /* a reference */
  json_t *response;         /* an answer, or NULL for a count */
  size_t count;
} gathered_t;

static void gatherer_free(hd_hub_acks_t *base) {
  gatherer_t *g = (gatherer_t *)base;
  json_decref(g->responses);
  free(g);
}

static void timer_closed(uv_handle_t *h) { hd_hub_acks_unref(h->data); }

static void finish(gatherer_t *g, bool complete) {
  if (g->done) return;
  g->done = true;
  char *text = json_dumps(g->responses, JSON_COMPACT);
  g->fn(g->arg, complete, text ? text : "[]", text ? json_array_size(g->responses) : 0);
  free(text);
  uv_timer_stop(&g->timer);
  uv_close((uv_handle_t *)&g->timer, timer_closed); /* the caller's reference goes with it */
}

static void check(gatherer_t *g) {
  if (g->servers_counted >= g->servers_expected && json_array_size(g->responses) >= g->clients_expected)
    finish(g, true);
}

static void on_timeout(uv_timer_t *t) { finish(t->data, false); }

static void run_gathered(void *arg, bool cancelled) {
  gathered_t *t = arg;
  gatherer_t *g = t->g;
  if (!cancelled && !g->done) {
    if (t->response) {
      json_array_append(g->responses, t->response);
    } else {
      g->servers_counted++;
      g->clients_expected += t->count;
    }
    check(g);
  }
  json_decref(t->response);
  hd_hub_acks_unref(&g->base);
  free(t);
}

static void post(gatherer_t *g, json_t *response, size_t count) {
  gathered_t *t = malloc(sizeof(*t));
  if (!t) {
    json_decref(response);
    return;
  }
  *t = (gathered_t){(gatherer_t *)hd_hub_acks_ref(&g->base), response, count};
  if (hd_mailbox_post(g->mailbox, run_gathered, t)) run_gathered(t, true);
}

/* Any thread: one client's answer (its first argument is kept). */
static void on_ack(hd_hub_acks_t *base, const char *args_json, size_t len, hd_buf_t *const *att, size_t natt) {
  json_t *args = json_loadb(args_json, len, 0, NULL);
  json_t *first = json_array_size(args) ? json_incref(json_array_get(args, 0)) : json_null();
  json_decref(args);
  post((gatherer_t *)base, first, 0);
}

/* Any thread: one node's recipients. */
static void on_clients(hd_hub_acks_t *base, size_t count) { post((gatherer_t *)base, NULL, count); }

/* This node's recipients (the asking shard's thread). */
static void on_local_count(void *arg, const hd_hub_msg_t *msg, size_t delivered, int status) {
  gatherer_t *g = arg;
  if (!g->done) {
    g->servers_counted++;
    g->clients_expected += delivered;
    check(g);
  }
  hd_hub_acks_unref(&g->base);
}

int hd_sio_broadcast_with_ack(hd_sio_server_t *sio, const hd_sio_target_t *to, const char *event,
                              const char *args_json, uint64_t timeout_ms, hd_sio_acks_fn fn, void *arg) {
  hd_hub_t *hub = hd_sio_hub(sio);
  hd_adapter_t *adapter = hd_hub_shared(hub)->adapter;
  gatherer_t *g = calloc(1, sizeof(*g));
  if (!g || !(g->responses = json_array())) {
    free(g);
    return HD_ENOMEM;
  }
  g->base = (hd_hub_acks_t){1, timeout_ms, on_ack, on_clients, gatherer_free};
  g->mailbox = hd_hub_mailbox(hub);
  g->servers_expected = adapter->ops->server_count(adapter);
  g->fn = fn, g->arg = arg;
  uv_timer_init(hd_sio_loop(sio), &g->timer);
  g->timer.data = g;
  hd_hub_acks_ref(&g->base); /* for on_local_count */
  int rc = hd_sio_broadcast_acked(sio, to, event, args_json, &g->base, on_local_count, g);
  if (rc) {
    g->done = true; /* fn not called */
    hd_hub_acks_unref(&g->base);
    uv_close((uv_handle_t *)&g->timer, timer_closed);
    return rc;
  }
  if (!g->done) uv_timer_start(&g->timer, on_timeout, timeout_ms, 0);
  return 0;
}

/* --- allRooms, serverSideEmit ----------------------------------------------------------------- */

typedef struct {
  char nsp[128];
  hd_hub_fetch_fn fn;
  void *arg;
} rooms_t;

/* Room keys to the names of the namespace's rooms. */
static void on_room_keys(void *arg, const char *keys_json, size_t count) {
  rooms_t *q = arg;
  json_t *keys = json_loads(keys_json, 0, NULL), *out = json_array(), *k;
  size_t i, nl = strlen(q->nsp);
  bool root = !strcmp(q->nsp, "/");
  json_array_foreach(keys, i, k) {
    const char *key = json_string_value(k);
    if (!key) continue;
    if (root) json_array_append(out, k);
    else if (!strncmp(key, q->nsp, nl) && key[nl] == '\x1f') json_array_append_new(out, json_string(key + nl + 1));
  }
  char *text = json_dumps(out, JSON_COMPACT);
  q->fn(q->arg, text ? text : "[]", text ? json_array_size(out) : 0);
  free(text);
  json_decref(keys), json_decref(out);
  free(q);
}

int hd_sio_all_rooms(hd_sio_server_t *sio, const char *nsp, hd_hub_fetch_fn fn, void *arg) {
  rooms_t *q = malloc(sizeof(*q));
  char all[160];
  if (!q) return HD_ENOMEM;
  if (strlen(nsp) >= sizeof q->nsp) {
    free(q);
    return HD_EINVAL;
  }
  strcpy(q->nsp, nsp);
  q->fn = fn, q->arg = arg;
  snprintf(all, sizeof all, "\x1e%s", nsp);
  const char *rooms[1] = {all};
  hd_hub_target_t to = {nsp, rooms, 1, NULL, 0, 0};
  int rc = hd_hub_all_rooms(hd_sio_hub(sio), &to, on_room_keys, q);
  if (rc) free(q);
  return rc;
}

int hd_sio_server_side_emit(hd_sio_server_t *sio, const char *nsp, const char *args_json, hd_hub_answers_fn fn,
                            void *arg) {
  return hd_hub_server_side_emit(hd_sio_hub(sio), nsp, args_json, fn, arg);
}

void hd_sio_on_server_emit(hd_sio_server_t *sio, hd_hub_server_emit_fn fn, void *arg) {
  hd_hub_on_server_emit(hd_sio_hub(sio), fn, arg);
}
