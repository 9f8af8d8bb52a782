/* Socket.IO conformance handlers (see sio_test_handlers.h). */
#include "proto/sio_test_handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "proto/sio_cluster.h"

static void on_connect(hd_sio_socket_t *s, json_t *auth, void *udata) {
  char *text = auth ? json_dumps(auth, JSON_COMPACT) : strdup("{}");
  if (!text) return;
  hd_sbuf_t args = {0};
  hd_sbuf_printf(&args, "[%s]", text);
  if (args.ptr) hd_sio_emit(s, "auth", args.ptr);
  hd_sbuf_free(&args);
  free(text);
}

static void on_message(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  hd_sio_emit_binary(s, "message-back", args);
}

static void on_message_with_ack(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  hd_sio_ack_binary(s, ack_id, args);
}

static void on_echo(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  if (json_array_size(args) == 1) { /* already [first] */
    hd_sio_ack_binary(s, ack_id, args);
    return;
  }
  json_t *first = json_array();
  if (json_array_size(args)) json_array_append(first, json_array_get(args, 0));
  hd_sio_ack_binary(s, ack_id, first);
  json_decref(first);
}

/* The client's answer to a server emit with ack (or NULL on timeout) comes back as `server-ack-result`. */
static void ack_answered(hd_sio_socket_t *s, json_t *args, void *arg) {
  char *text = args ? json_dumps(args, JSON_COMPACT) : NULL;
  hd_sbuf_t out = {0};
  hd_sbuf_printf(&out, "[%s]", text ? text : "\"timeout\"");
  if (out.ptr) hd_sio_emit(s, "server-ack-result", out.ptr);
  hd_sbuf_free(&out);
  free(text);
}

/* `server-ack` {timeout, data}: the server emits `ack-me` with data and waits for the client's ack. */
static void on_server_ack(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  json_t *opt = json_array_get(args, 0), *data = json_object_get(opt, "data");
  json_int_t timeout = json_integer_value(json_object_get(opt, "timeout"));
  json_t *list = json_pack("[O]", data ? data : json_null());
  char *text = list ? json_dumps(list, JSON_COMPACT) : NULL;
  if (text) hd_sio_emit_with_ack(s, "ack-me", text, timeout > 0 && timeout < 60000 ? (uint64_t)timeout : 1000, ack_answered, NULL);
  free(text);
  json_decref(list);
}

static void on_broadcast(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  json_t *first = json_array();
  if (json_array_size(args)) json_array_append(first, json_array_get(args, 0));
  char *text = json_dumps(first, JSON_COMPACT);
  json_decref(first);
  if (!text) return;
  hd_sio_target_t to = {.nsp = hd_sio_socket_nsp(s)};
  hd_sio_broadcast(udata, &to, NULL, "msg", text, NULL, NULL);
  free(text);
}

/* --- the server API over every shard: {rooms?, except?, room?, event?, data?} ---------------- */

/* Up to 16 strings of a JSON array into out (borrowed from it); returns how many. */
static size_t strings(json_t *array, const char **out) {
  size_t n = 0;
  for (size_t i = 0; i < json_array_size(array) && n < 16; i++)
    if (json_is_string(json_array_get(array, i))) out[n++] = json_string_value(json_array_get(array, i));
  return n;
}

/* The target described by opt in the socket's namespace (strings borrowed from opt). */
static hd_sio_target_t target_of(hd_sio_socket_t *s, json_t *opt, const char **rooms, const char **except) {
  return (hd_sio_target_t){hd_sio_socket_nsp(s), rooms, strings(json_object_get(opt, "rooms"), rooms), except,
                           strings(json_object_get(opt, "except"), except), 0};
}

static void ack_rc(hd_sio_socket_t *s, int64_t ack_id, int rc) {
  hd_sio_ack(s, ack_id, rc ? "[{\"ok\":false}]" : "[{\"ok\":true}]");
}

/* `join` room: this socket joins room. */
static void on_join(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  json_t *room = json_array_get(args, 0);
  ack_rc(s, ack_id, json_is_string(room) ? hd_sio_join(s, json_string_value(room)) : HD_EINVAL);
}

/* `sockets-join` / `sockets-leave` {rooms, except, room}, `disconnect-sockets` {rooms, except}. */
static void on_sockets(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  json_t *opt = json_array_get(args, 0), *room = json_object_get(opt, "room");
  const char *rooms[16], *except[16];
  hd_sio_target_t to = target_of(s, opt, rooms, except);
  hd_hub_req_t req = !strcmp(event, "sockets-join")    ? HD_HUB_REQ_JOIN
                     : !strcmp(event, "sockets-leave") ? HD_HUB_REQ_LEAVE
                                                        : HD_HUB_REQ_DISCONNECT;
  bool need_room = req != HD_HUB_REQ_DISCONNECT;
  ack_rc(s, ack_id, need_room && !json_is_string(room)
                        ? HD_EINVAL
                        : hd_sio_sockets_request(udata, &to, req, need_room ? json_string_value(room) : NULL));
}

typedef struct {
  hd_sio_server_t *sio;
  char nsp[128], id[64];
  int64_t ack_id;
} fetching_t;

/* The sockets of every shard: acked to the asking socket when it is still there. */
static void fetched(void *arg, const char *json, size_t count) {
  fetching_t *f = arg;
  hd_sio_socket_t *s = hd_sio_socket_find(f->sio, f->nsp, f->id);
  hd_sbuf_t out = {0};
  hd_sbuf_printf(&out, "[%s]", json);
  if (s && out.ptr) hd_sio_ack(s, f->ack_id, out.ptr);
  hd_sbuf_free(&out);
  free(f);
}

/* `fetch-sockets` {rooms, except}: acked with [{id, nsp, rooms, data}] of every shard. */
static void on_fetch(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  const char *rooms[16], *except[16];
  hd_sio_target_t to = target_of(s, json_array_get(args, 0), rooms, except);
  fetching_t *f = malloc(sizeof(*f));
  if (!f) return;
  *f = (fetching_t){.sio = udata, .ack_id = ack_id};
  snprintf(f->nsp, sizeof f->nsp, "%s", hd_sio_socket_nsp(s));
  snprintf(f->id, sizeof f->id, "%s", hd_sio_socket_id(s));
  if (hd_sio_fetch_sockets(udata, &to, fetched, f)) {
    free(f);
    ack_rc(s, ack_id, HD_EINVAL);
  }
}

/* `broadcast-to` {rooms, except, event, data}: event with data to those sockets, on every shard. */
static void on_broadcast_to(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  json_t *opt = json_array_get(args, 0), *ev = json_object_get(opt, "event");
  const char *rooms[16], *except[16];
  hd_sio_target_t to = target_of(s, opt, rooms, except);
  json_t *list = json_pack("[O]", json_object_get(opt, "data") ? json_object_get(opt, "data") : json_null());
  char *text = list ? json_dumps(list, JSON_COMPACT) : NULL;
  json_decref(list);
  int rc = text && json_is_string(ev) ? hd_sio_broadcast(udata, &to, NULL, json_string_value(ev), text, NULL, NULL)
                                      : HD_EINVAL;
  free(text);
  if (ack_id >= 0) ack_rc(s, ack_id, rc);
}

/* A pending answer to the asking socket, found again by id (it may have gone meanwhile). */
static fetching_t *answer_to(hd_sio_socket_t *s, int64_t ack_id, void *sio) {
  fetching_t *f = malloc(sizeof(*f));
  if (!f) return NULL;
  *f = (fetching_t){.sio = sio, .ack_id = ack_id};
  snprintf(f->nsp, sizeof f->nsp, "%s", hd_sio_socket_nsp(s));
  snprintf(f->id, sizeof f->id, "%s", hd_sio_socket_id(s));
  return f;
}

/* `all-rooms`: acked with the names of the namespace's rooms on every node. */
static void on_all_rooms(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  fetching_t *f = answer_to(s, ack_id, udata);
  if (f && hd_sio_all_rooms(udata, hd_sio_socket_nsp(s), fetched, f)) {
    free(f);
    ack_rc(s, ack_id, HD_EINVAL);
  }
}

/* {complete, <key>: list} to the asking socket. */
static void answer_list(fetching_t *f, bool complete, const char *key, const char *list_json) {
  hd_sio_socket_t *s = hd_sio_socket_find(f->sio, f->nsp, f->id);
  hd_sbuf_t out = {0};
  hd_sbuf_printf(&out, "[{\"complete\":%s,\"%s\":%s}]", complete ? "true" : "false", key, list_json);
  if (s && out.ptr) hd_sio_ack(s, f->ack_id, out.ptr);
  hd_sbuf_free(&out);
  free(f);
}

static void server_answers(void *arg, bool complete, const char *answers_json, size_t count) {
  answer_list(arg, complete, "answers", answers_json);
}

/* `server-side-emit` event, ...args: io.serverSideEmit to the other nodes; with an ack, acked with
 * {complete, answers} (their answers, serverCount - 1 expected, 5 s timeout). */
static void on_server_side_emit(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  char *text = json_dumps(args, JSON_COMPACT);
  fetching_t *f = ack_id >= 0 ? answer_to(s, ack_id, udata) : NULL;
  int rc = text && (ack_id < 0 || f) ? hd_sio_server_side_emit(udata, hd_sio_socket_nsp(s), text,
                                                               f ? server_answers : NULL, f)
                                     : HD_ENOMEM;
  free(text);
  if (rc) {
    free(f);
    if (ack_id >= 0) ack_rc(s, ack_id, rc);
  }
}

static void client_answers(void *arg, bool complete, const char *responses_json, size_t count) {
  answer_list(arg, complete, "responses", responses_json);
}

/* `broadcast-with-ack` {rooms, except, event, data, timeout}: io.timeout(timeout).to(rooms)
 * .except(except).emit(event, data, cb) over the cluster, acked with {complete, responses}. */
static void on_broadcast_with_ack(hd_sio_socket_t *s, const char *event, json_t *args, int64_t ack_id, void *udata) {
  json_t *opt = json_array_get(args, 0), *ev = json_object_get(opt, "event");
  json_int_t timeout = json_integer_value(json_object_get(opt, "timeout"));
  const char *rooms[16], *except[16];
  hd_sio_target_t to = target_of(s, opt, rooms, except);
  json_t *list = json_pack("[O]", json_object_get(opt, "data") ? json_object_get(opt, "data") : json_null());
  char *text = list ? json_dumps(list, JSON_COMPACT) : NULL;
  json_decref(list);
  fetching_t *f = answer_to(s, ack_id, udata);
  int rc = text && f && json_is_string(ev)
               ? hd_sio_broadcast_with_ack(udata, &to, json_string_value(ev), text,
                                           timeout > 0 && timeout <= 60000 ? (uint64_t)timeout : 2000, client_answers, f)
               : HD_EINVAL;
  free(text);
  if (rc) {
    free(f);
    ack_rc(s, ack_id, rc);
  }
}

/* A serverSideEmit from another node: `server-side` [event, ...args] to this node's sockets of the
 * namespace, and, when the sender waits, the answer {from: "herald", event}. */
static void on_server_emit(void *arg, const char *nsp, const char *args_json, hd_hub_reply_t *reply) {
  json_t *args = json_loads(args_json, 0, NULL);
  const char *ev = json_string_value(json_array_get(args, 0));
  hd_sio_target_t to = {.nsp = nsp, .flags = HD_MSG_LOCAL};
  hd_sio_broadcast(arg, &to, NULL, "server-side", args_json, NULL, NULL);
  if (reply) {
    json_t *answer = json_pack("{s:s,s:s?}", "from", "herald", "event", ev);
    char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
    reply->send(reply, text);
    free(text);
    json_decref(answer);
  }
  json_decref(args);
}

int hd_sio_test_handlers_register(hd_sio_server_t *sio, const char *const *nsps, size_t count) {
  for (size_t i = 0; i < count; i++) {
    int rc;
    if ((rc = hd_sio_on_connect(sio, nsps[i], on_connect, NULL)) || (rc = hd_sio_on(sio, nsps[i], "message", on_message, NULL)) ||
        (rc = hd_sio_on(sio, nsps[i], "message-with-ack", on_message_with_ack, NULL)) ||
        (rc = hd_sio_on(sio, nsps[i], "echo", on_echo, NULL)) ||
        (rc = hd_sio_on(sio, nsps[i], "broadcast", on_broadcast, sio)) ||
        (rc = hd_sio_on(sio, nsps[i], "server-ack", on_server_ack, NULL)) ||
        (rc = hd_sio_on(sio, nsps[i], "join", on_join, NULL)) ||
        (rc = hd_sio_on(sio, nsps[i], "sockets-join", on_sockets, sio)) ||
        (rc = hd_sio_on(sio, nsps[i], "sockets-leave", on_sockets, sio)) ||
        (rc = hd_sio_on(sio, nsps[i], "disconnect-sockets", on_sockets, sio)) ||
        (rc = hd_sio_on(sio, nsps[i], "fetch-sockets", on_fetch, sio)) ||
        (rc = hd_sio_on(sio, nsps[i], "broadcast-to", on_broadcast_to, sio)) ||
        (rc = hd_sio_on(sio, nsps[i], "all-rooms", on_all_rooms, sio)) ||
        (rc = hd_sio_on(sio, nsps[i], "server-side-emit", on_server_side_emit, sio)) ||
        (rc = hd_sio_on(sio, nsps[i], "broadcast-with-ack", on_broadcast_with_ack, sio)))
      return rc;
  }
  hd_sio_on_server_emit(sio, on_server_emit, sio);
  return 0;
}
