/* Raw Engine.IO echo (see eio_echo.h). */
#include "proto/eio_echo.h"

static int on_open(hd_eio_session_t *s, const hd_http_request_t *req, void *udata) { return 0; }

static void on_message(hd_eio_session_t *s, const uint8_t *data, size_t len, bool binary) {
  hd_eio_send(s, data, len, binary);
}

static void on_close(hd_eio_session_t *s, const char *reason) {}

static const hd_eio_callbacks_t callbacks = {on_open, on_message, on_close, NULL};

hd_eio_server_t *hd_eio_echo_new(hd_server_t *srv, const hd_eio_options_t *opt) {
  return hd_eio_server_new(srv, opt, &callbacks, NULL);
}
