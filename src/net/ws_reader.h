/* The receiving half of a server-side WebSocket: turns raw bytes from a client into messages
 * and control frames, enforcing all of RFC 6455 (masking, reserved bits and opcodes, control frame
 * rules, fragmentation with interleaved control frames, UTF-8 across fragments, size limits) and
 * inflating permessage-deflate messages. Pure: no I/O; the caller sends whatever it decides. */
#ifndef HD_WS_READER_H
#define HD_WS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "net/utf8.h"
#include "net/ws_deflate.h"
#include "net/ws_frame.h"

typedef struct {
  /* A complete text or binary message (unmasked, inflated, text validated); data is valid only
   * during the call. A non-zero return stops hd_ws_reader_feed, which returns it. */
  int (*on_message)(void *ud, uint8_t opcode, const uint8_t *data, size_t len);
  int (*on_ping)(void *ud, const uint8_t *data, size_t len);
  int (*on_pong)(void *ud, const uint8_t *data, size_t len);
  /* A close frame: code 1005 when it had no body; reason already validated as UTF-8. After it
   * the reader ignores further input. */
  int (*on_close)(void *ud, uint16_t code, const uint8_t *reason, size_t len);
} hd_ws_reader_callbacks_t;

/* What a reader buffers between feeds; allocated only while a frame is split across reads, a
 * message is fragmented or compressed, or an inflater exists (an idle WebSocket has none). */
typedef struct {
  hd_ws_inflater_t *inflater;  /* created on the first compressed message, owned */
  hd_sbuf_t partial;           /* bytes of an incomplete frame carried to the next feed */
  hd_sbuf_t message;           /* fragments (or inflated output) of the current message */
} hd_ws_reader_bufs_t;

typedef struct {
  const hd_ws_reader_callbacks_t *cb;
  void *ud;
  const hd_ws_deflate_params_t *deflate; /* NULL or !enabled: RSV1 is a protocol error */
  hd_ws_reader_bufs_t *bufs;   /* NULL while nothing is buffered, owned */
  uint32_t max_message;        /* payload bytes per message (after inflating) at most */
  hd_utf8_t utf8;              /* validation state across fragments */
  uint8_t msg_opcode;          /* TEXT/BINARY while a message is open (in flight or fragmented), else 0 */
  bool msg_compressed;
  bool closed;                 /* a close frame was received or an error occurred */
  uint16_t close_code;         /* after an error: the code to close with (1002, 1007, 1009) */
} hd_ws_reader_t;

/* Prepares a reader; deflate may be NULL; max_message is capped at UINT32_MAX. Nothing is
 * allocated until needed. */
void hd_ws_reader_init(hd_ws_reader_t *r, const hd_ws_reader_callbacks_t *cb, void *ud, size_t max_message,
                       const hd_ws_deflate_params_t *deflate);
/* Consumes data[0..len) (unmasking in place), calling callbacks for each complete frame/message.
 * Returns 0, a callback's non-zero return, or a negative HD_E* with r->close_code set to the code
 * to close with: HD_EPROTO -> 1002, HD_EUTF8 and HD_EDEFLATE -> 1007, HD_ETOOBIG -> 1009,
 * HD_ENOMEM -> 1011. Whole frames found in data are delivered without copying; only a trailing
 * partial frame is buffered. */
int hd_ws_reader_feed(hd_ws_reader_t *r, uint8_t *data, size_t len);
/* True when no partial frame or message is buffered (the connection is idle). */
bool hd_ws_reader_idle(const hd_ws_reader_t *r);
/* Frees buffers and the inflater. */
void hd_ws_reader_free(hd_ws_reader_t *r);

#endif
