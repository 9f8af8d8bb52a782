/* Fuzzes the Socket.IO decoder: a decoded packet, encoded again with its payload re-serialized,
 * must decode to the same type, namespace, ack id, attachments, payload and placeholder verdict. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "proto/sio_packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const hd_sio_limits_t limits = {.max_attachments = 16, .max_nsp_len = 128};
  hd_sio_packet_t a, b;
  if (hd_sio_packet_decode((const char *)data, size, &limits, &a)) return 0;
  int ph = hd_sio_packet_check_placeholders(&a);
  char *json = a.data ? json_dumps(a.data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  if (a.data && !json) abort();
  hd_sbuf_t out = {0};
  if (hd_sio_packet_encode(&out, a.type, a.nsp, a.ack_id, a.attachments, json, json ? strlen(json) : 0)) abort();
  if (hd_sio_packet_decode(out.ptr, out.len, &limits, &b)) abort();
  if (a.type != b.type || strcmp(a.nsp, b.nsp) || a.ack_id != b.ack_id || a.attachments != b.attachments ||
      !(a.data ? json_equal(a.data, b.data) : !b.data) || ph != hd_sio_packet_check_placeholders(&b))
    abort();
  free(json);
  hd_sbuf_free(&out);
  hd_sio_packet_free(&a);
  hd_sio_packet_free(&b);
  return 0;
}
