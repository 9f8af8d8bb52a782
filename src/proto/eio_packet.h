/* Engine.IO packets (protocol v4, and v3 for --allow-eio3): single packets as carried by a
 * WebSocket frame, and HTTP long-polling payloads. Pure: bytes in, packets or an error out. */
#ifndef HD_EIO_PACKET_H
#define HD_EIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef enum {
  HD_EIO_OPEN = 0,
  HD_EIO_CLOSE = 1,
  HD_EIO_PING = 2,
  HD_EIO_PONG = 3,
  HD_EIO_MESSAGE = 4,
  HD_EIO_UPGRADE = 5,
  HD_EIO_NOOP = 6,
} hd_eio_type_t;

typedef struct {
  hd_eio_type_t type;
  bool binary;      /* a binary message (raw bytes over WebSocket, `b`+base64 in polling) */
  hd_slice_t data;  /* text after the type character, or the binary bytes (decoded) */
} hd_eio_packet_t;

/* Decodes one packet from a WebSocket message. Text: type digit + data. Binary frames are binary
 * messages (v4: the bytes as they are; v3: a leading 0x04 type byte is stripped). data points into
 * msg. Returns 0 or HD_EPROTO. */
int hd_eio_packet_decode_ws(const uint8_t *msg, size_t len, bool is_binary, int eio_version, hd_eio_packet_t *out);

/* Decodes a polling POST body into packets, calling fn for each (data slices into body or, for
 * base64 binary, into a temporary decode buffer valid during the call). v4: packets separated by
 * 0x1e, binary as 'b'+base64. v3: `<length>:<packet>` records (length in UTF-16 code units of the
 * packet), binary as 'b4'+base64. Returns the number of packets, HD_EPROTO on any malformed packet
 * or payload, or fn's negative return. */
int hd_eio_payload_decode(const char *body, size_t len, int eio_version,
                          int (*fn)(const hd_eio_packet_t *p, void *arg), void *arg);

/* Appends one packet, encoded for a polling payload, to out (v4: separator 0x1e before every packet
 * but the first — pass first=true for it; v3: a `<len>:` record). Binary data goes base64. 0 or HD_ENOMEM. */
int hd_eio_payload_append(hd_sbuf_t *out, hd_eio_type_t type, const void *data, size_t len, bool binary,
                          int eio_version, bool first);

/* The text form of a packet for a WebSocket text frame: type digit + data, into out. 0 or HD_ENOMEM. */
int hd_eio_packet_encode_text(hd_sbuf_t *out, hd_eio_type_t type, const void *data, size_t len);

#endif
