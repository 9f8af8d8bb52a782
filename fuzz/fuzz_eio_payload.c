/* Fuzzes the Engine.IO codec: v4 and v3 polling payloads and WebSocket messages (text and binary).
 * Whatever decodes is encoded again and must decode to the same packets. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "proto/eio_packet.h"

typedef struct {
  hd_eio_type_t type;
  bool binary;
  size_t len;
  char *data;
} copy_t;

typedef struct {
  copy_t *v;
  size_t n;
} list_t;

static int keep(const hd_eio_packet_t *p, void *arg) {
  list_t *l = arg;
  copy_t *v = realloc(l->v, (l->n + 1) * sizeof *v);
  if (!v) abort();
  l->v = v;
  char *d = malloc(p->data.len + 1);
  if (!d) abort();
  memcpy(d, p->data.ptr, p->data.len);
  v[l->n++] = (copy_t){p->type, p->binary, p->data.len, d};
  return 0;
}

static void drop(list_t *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].data);
  free(l->v);
  *l = (list_t){0};
}

static void payload_round_trip(const char *body, size_t len, int version) {
  list_t a = {0}, b = {0};
  int rc = hd_eio_payload_decode(body, len, version, keep, &a);
  if (rc >= 0 && (size_t)rc != a.n) abort();
  if (rc > 0) {
    hd_sbuf_t out = {0};
    for (size_t i = 0; i < a.n; i++)
      if (hd_eio_payload_append(&out, a.v[i].type, a.v[i].data, a.v[i].len, a.v[i].binary, version, i == 0)) abort();
    if (hd_eio_payload_decode(out.ptr, out.len, version, keep, &b) != rc) abort();
    for (size_t i = 0; i < a.n; i++)
      if (a.v[i].type != b.v[i].type || a.v[i].binary != b.v[i].binary || a.v[i].len != b.v[i].len ||
          memcmp(a.v[i].data, b.v[i].data, a.v[i].len))
        abort();
    hd_sbuf_free(&out);
  }
  drop(&a);
  drop(&b);
}

static void ws_round_trip(const uint8_t *msg, size_t len, bool binary, int version) {
  hd_eio_packet_t p, q;
  if (hd_eio_packet_decode_ws(msg, len, binary, version, &p)) return;
  if (p.binary) return; /* binary frames carry the bytes unchanged; nothing to re-encode */
  hd_sbuf_t out = {0};
  if (hd_eio_packet_encode_text(&out, p.type, p.data.ptr, p.data.len)) abort();
  if (out.len != len || memcmp(out.ptr, msg, len)) abort();
  if (hd_eio_packet_decode_ws((const uint8_t *)out.ptr, out.len, false, version, &q) || q.type != p.type) abort();
  hd_sbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  payload_round_trip((const char *)data, size, 4);
  payload_round_trip((const char *)data, size, 3);
  for (int v = 3; v <= 4; v++) {
    ws_round_trip(data, size, false, v);
    hd_eio_packet_t p;
    int rc = hd_eio_packet_decode_ws(data, size, true, v, &p);
    if (!rc && (!p.binary || p.type != HD_EIO_MESSAGE || p.data.len != size - (v == 3))) abort();
  }
  return 0;
}
