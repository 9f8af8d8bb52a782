/* RFC 6455 frame headers, masking and server frame building (see ws_frame.h). */
#include "net/ws_frame.h"

#include <string.h>

#include "core/error.h"

int hd_ws_frame_parse_header(const uint8_t *buf, size_t len, hd_ws_frame_t *out) {
  if (len < 2) return HD_EAGAIN;
  size_t n = 2;
  uint64_t plen = buf[1] & 0x7f;
  if (plen >= 126) {
    size_t k = plen == 126 ? 2 : 8;
    if (len < n + k) return HD_EAGAIN;
    plen = 0;
    for (size_t i = 0; i < k; i++) plen = plen << 8 | buf[n + i];
    if (plen >> 63) return HD_EPROTO;
    n += k;
  }
  bool masked = buf[1] & 0x80;
  if (masked && len < n + 4) return HD_EAGAIN;
  memset(out->mask, 0, 4);
  if (masked) memcpy(out->mask, buf + n, 4), n += 4;
  out->fin = buf[0] & 0x80;
  out->rsv1 = buf[0] & 0x40;
  out->rsv2 = buf[0] & 0x20;
  out->rsv3 = buf[0] & 0x10;
  out->opcode = buf[0] & 0x0f;
  out->masked = masked;
  out->payload_len = plen;
  out->header_len = n;
  return (int)n;
}

void hd_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset) {
  uint8_t m[8];
  for (int i = 0; i < 8; i++) m[i] = mask[(offset + (uint64_t)i) & 3];
  uint64_t k, w;
  memcpy(&k, m, 8);
  size_t i = 0;
  for (; len - i >= 8; i += 8) {
    memcpy(&w, data + i, 8);
    w ^= k;
    memcpy(data + i, &w, 8);
  }
  for (; i < len; i++) data[i] ^= m[i & 3];
}

size_t hd_ws_frame_header_write(uint8_t out[10], bool fin, bool rsv1, uint8_t opcode, uint64_t payload_len) {
  out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
  size_t k = payload_len < 126 ? 0 : payload_len <= 0xffff ? 2 : 8;
  out[1] = (uint8_t)(k == 0 ? payload_len : k == 2 ? 126 : 127);
  for (size_t i = 0; i < k; i++) out[2 + i] = (uint8_t)(payload_len >> (8 * (k - 1 - i)));
  return 2 + k;
}

hd_buf_t *hd_ws_frame_build(uint8_t opcode, bool rsv1, const void *payload, size_t len) {
  hd_buf_t *b = hd_buf_new(10 + len);
  if (!b) return NULL;
  b->len = hd_ws_frame_header_write(b->data, true, rsv1, opcode, len);
  if (len) memcpy(b->data + b->len, payload, len);
  b->len += len;
  return b;
}

hd_buf_t *hd_ws_frame_new(uint8_t opcode, const void *payload, size_t len) {
  return hd_ws_frame_build(opcode, false, payload, len);
}

hd_buf_t *hd_ws_frame_new_prefixed(uint8_t opcode, char prefix, const void *payload, size_t len) {
  hd_buf_t *b = hd_buf_new(11 + len);
  if (!b) return NULL;
  b->len = hd_ws_frame_header_write(b->data, true, false, opcode, len + 1);
  b->data[b->len++] = (uint8_t)prefix;
  if (len) memcpy(b->data + b->len, payload, len);
  b->len += len;
  return b;
}

hd_buf_t *hd_ws_close_frame_build(uint16_t code, const char *reason) {
  uint8_t body[125] = {(uint8_t)(code >> 8), (uint8_t)code};
  size_t n = reason ? strlen(reason) : 0;
  if (n > 123) {
    n = 123;
    while (n && ((uint8_t)reason[n] & 0xc0) == 0x80) n--;
  }
  if (n) memcpy(body + 2, reason, n);
  return hd_ws_frame_build(HD_WS_OP_CLOSE, false, body, code == HD_WS_CLOSE_NO_STATUS ? 0 : 2 + n);
}

bool hd_ws_close_code_valid(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

hd_slice_t hd_ws_frame_payload(const hd_buf_t *frame) {
  uint8_t len7 = frame->len > 1 ? frame->data[1] & 0x7f : 0;
  size_t h = len7 == 127 ? 10 : len7 == 126 ? 4 : 2;
  if (frame->len < h) return (hd_slice_t){NULL, 0};
  return (hd_slice_t){(const char *)frame->data + h, frame->len - h};
}
