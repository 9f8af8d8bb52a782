/* WebSocket echo (see echo.h). */
#include "proto/echo.h"

#include "core/error.h"
#include "net/ws_conn.h"

static int echo_message(hd_conn_t *c, uint8_t opcode, const uint8_t *data, size_t len) {
  int rc = hd_ws_send(c, opcode, data, len);
  return rc == HD_ETOOBIG || rc == HD_ECLOSED ? 0 : rc; /* slow consumers are already closing */
}

static const hd_ws_handler_t echo_handler = {.name = "echo", .on_message = echo_message};

void hd_echo_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_ws_upgrade(ex, &echo_handler, NULL);
}
