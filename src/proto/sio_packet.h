/* Socket.IO packets (protocol v5, and v4 for Engine.IO v3 clients): decoding the text part of a
 * packet, reassembling binary attachments, encoding packets whose payload is already JSON text
 * (so a broadcast is encoded once). Pure. */
#ifndef HD_SIO_PACKET_H
#define HD_SIO_PACKET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef enum {
  HD_SIO_CONNECT = 0,
  HD_SIO_DISCONNECT = 1,
  HD_SIO_EVENT = 2,
  HD_SIO_ACK = 3,
  HD_SIO_CONNECT_ERROR = 4,
  HD_SIO_BINARY_EVENT = 5,
  HD_SIO_BINARY_ACK = 6,
} hd_sio_type_t;

#define HD_SIO_NO_ACK (-1)

typedef struct {
  hd_sio_type_t type;
  char nsp[256];        /* "/" when absent */
  int64_t ack_id;       /* HD_SIO_NO_ACK when absent */
  uint32_t attachments; /* binary attachments announced (BINARY_*), 0 otherwise */
  json_t *data;         /* parsed payload or NULL when absent; owned by the packet */
} hd_sio_packet_t;

typedef struct {
  uint32_t max_attachments; /* refuse packets announcing more */
  size_t max_nsp_len;
} hd_sio_limits_t;

/* Decodes the text of a packet (one Engine.IO message). Validates the shape per type: CONNECT
 * data absent or an object; DISCONNECT no data; EVENT/BINARY_EVENT a non-empty array whose first
 * element is a string (or a number, as socket.io-parser allows); ACK/BINARY_ACK an array;
 * CONNECT_ERROR an object (v5) or string (v4). Returns 0 or HD_EPROTO (HD_ETOOBIG past
 * max_attachments). Free with hd_sio_packet_free. */
int hd_sio_packet_decode(const char *text, size_t len, const hd_sio_limits_t *limits, hd_sio_packet_t *out);
void hd_sio_packet_free(hd_sio_packet_t *p);

/* Checks the binary placeholders ({"_placeholder":true,"num":N}) in p->data: each well-formed, N in
 * 0..attachments-1, and every attachment referenced. 0 or HD_EPROTO. The placeholders stay in
 * data; the attachments travel beside it, so a packet can be re-emitted unchanged. */
int hd_sio_packet_check_placeholders(const hd_sio_packet_t *p);

/* The most bytes hd_sio_packet_head writes for a namespace name of nsp_len bytes. */
#define HD_SIO_HEAD_MAX(nsp_len) (33 + (size_t)(nsp_len))
/* Writes the head of a packet, what hd_sio_packet_encode puts before the data, to out (room for
 * HD_SIO_HEAD_MAX(strlen(nsp)) bytes, not NUL-terminated); returns its length. */
size_t hd_sio_packet_head(char *out, hd_sio_type_t type, const char *nsp, int64_t ack_id, uint32_t attachments);
/* Encodes a packet: type, attachment count ("N-") for BINARY_* (or when > 0), namespace (omitted
 * when "/"), ack id (when >= 0), then the JSON text `data` (may be NULL). 0 or HD_ENOMEM. */
int hd_sio_packet_encode(hd_sbuf_t *out, hd_sio_type_t type, const char *nsp, int64_t ack_id, uint32_t attachments,
                         const char *data, size_t data_len);
/* Encodes an EVENT whose arguments are given as a JSON array text `args` ("[...]"), prepending the
 * event name: 2/nsp,id["name",...args]. 0, HD_ENOMEM, or HD_EINVAL when args is not "[...]". */
int hd_sio_event_encode(hd_sbuf_t *out, const char *nsp, int64_t ack_id, const char *event, const char *args,
                        size_t args_len);

#endif
