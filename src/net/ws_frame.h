/* RFC 6455 frame headers: parsing client frames, masking, and building server frames
 * (unmasked) into refcounted buffers that any number of connections may share. Pure: no I/O. */
#ifndef HD_WS_FRAME_H
#define HD_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum {
  HD_WS_OP_CONT = 0x0,
  HD_WS_OP_TEXT = 0x1,
  HD_WS_OP_BINARY = 0x2,
  HD_WS_OP_CLOSE = 0x8,
  HD_WS_OP_PING = 0x9,
  HD_WS_OP_PONG = 0xA,
};

/* Close codes used by the server (RFC 6455 7.4.1). */
enum {
  HD_WS_CLOSE_NORMAL = 1000,
  HD_WS_CLOSE_GOING_AWAY = 1001,
  HD_WS_CLOSE_PROTOCOL = 1002,
  HD_WS_CLOSE_UNSUPPORTED = 1003,
  HD_WS_CLOSE_NO_STATUS = 1005,
  HD_WS_CLOSE_ABNORMAL = 1006,
  HD_WS_CLOSE_BAD_DATA = 1007,
  HD_WS_CLOSE_POLICY = 1008,
  HD_WS_CLOSE_TOO_BIG = 1009,
  HD_WS_CLOSE_INTERNAL = 1011,
  HD_WS_CLOSE_TRY_AGAIN = 1013,
};

#define HD_WS_MAX_HEADER 14 /* 2 + 8 (length) + 4 (mask) */

typedef struct {
  bool fin, rsv1, rsv2, rsv3, masked;
  uint8_t opcode;
  uint8_t mask[4];
  uint64_t payload_len;
  size_t header_len;
} hd_ws_frame_t;

/* Decodes the frame header at buf[0..len). Returns header_len (2..14) when complete, HD_EAGAIN
 * when more bytes are needed, HD_EPROTO for a 64-bit length with the top bit set. Checks nothing
 * else; the reader enforces the semantic rules. */
int hd_ws_frame_parse_header(const uint8_t *buf, size_t len, hd_ws_frame_t *out);
/* XORs data with the mask in place; `offset` is the position of data[0] within the payload. */
void hd_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);
/* Writes an unmasked server frame header for a payload of payload_len; returns its size (2, 4 or 10). */
size_t hd_ws_frame_header_write(uint8_t out[10], bool fin, bool rsv1, uint8_t opcode, uint64_t payload_len);
/* A complete unmasked frame (header + payload) in a new buffer with refs 1, or NULL. */
hd_buf_t *hd_ws_frame_build(uint8_t opcode, bool rsv1, const void *payload, size_t len);
/* The frame builder for protocols: a complete unmasked, uncompressed, final frame of payload in a
 * new buffer with refs 1 (shareable by any number of connections), or NULL when out of memory. */
hd_buf_t *hd_ws_frame_new(uint8_t opcode, const void *payload, size_t len);
/* Same with one byte before the payload (Engine.IO's packet type: '4' + text), or NULL. */
hd_buf_t *hd_ws_frame_new_prefixed(uint8_t opcode, char prefix, const void *payload, size_t len);
/* The payload of an unmasked frame built by the functions above (borrowed from frame). */
hd_slice_t hd_ws_frame_payload(const hd_buf_t *frame);
/* A close frame carrying code and reason (reason cut to 123 bytes on a UTF-8 boundary), or NULL;
 * code 1005 (no status) gives an empty body, since 1005 may not appear on the wire. */
hd_buf_t *hd_ws_close_frame_build(uint16_t code, const char *reason);
/* True when a close code received from a peer is allowed on the wire (RFC 6455 7.4). */
bool hd_ws_close_code_valid(uint16_t code);

#endif
