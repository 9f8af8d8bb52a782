/* Socket.IO conformance handlers (see sio_test_handlers.h). */
#include "proto/sio_test_handlers.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

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

int hd_sio_test_handlers_register(hd_sio_server_t *sio, const char *const *nsps, size_t count) {
  for (size_t i = 0; i < count; i++) {
    int rc;
    if ((rc = hd_sio_on_connect(sio, nsps[i], on_connect, NULL)) || (rc = hd_sio_on(sio, nsps[i], "message", on_message, NULL)) ||
        (rc = hd_sio_on(sio, nsps[i], "message-with-ack", on_message_with_ack, NULL)) ||
        (rc = hd_sio_on(sio, nsps[i], "echo", on_echo, NULL)) ||
        (rc = hd_sio_on(sio, nsps[i], "broadcast", on_broadcast, sio)) ||
        (rc = hd_sio_on(sio, nsps[i], "server-ack", on_server_ack, NULL)))
      return rc;
  }
  return 0;
}
