/* permessage-deflate (RFC 7692): offer negotiation, a per-connection inflater for client
 * messages and a deflater for server messages. The server always answers with
 * server_no_context_takeover, so one deflater per window size can compress a broadcast once for
 * every recipient and connections keep no compression state of their own. */
#ifndef HD_WS_DEFLATE_H
#define HD_WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct {
  bool enabled;                    /* an offer was accepted */
  bool client_no_context_takeover; /* the client resets its compressor per message */
  uint8_t server_max_window_bits;  /* 9..15: window the server compresses with */
  uint8_t client_max_window_bits;  /* 9..15: window the client compresses with (inflater size) */
} hd_ws_deflate_params_t;

/* Picks the first acceptable permessage-deflate offer in `offers` (all Sec-WebSocket-Extensions
 * values joined with ", "), given the largest window the server compresses with (9..15).
 * On success returns 0 and fills params; when params->enabled, writes the response header value
 * (e.g. "permessage-deflate; server_no_context_takeover") into resp. Offers with unknown, repeated
 * or out-of-range parameters are declined; when every offer is declined, enabled is false. */
int hd_ws_deflate_negotiate(hd_slice_t offers, int server_window_limit, hd_ws_deflate_params_t *params,
                            char *resp, size_t resp_len);

typedef struct hd_ws_inflater hd_ws_inflater_t;

/* An inflater for one connection's client messages, or NULL when out of memory. */
hd_ws_inflater_t *hd_ws_inflater_new(const hd_ws_deflate_params_t *params);
/* Inflates the next fragment of a compressed message, appending to out. `final` marks the last
 * fragment (the 00 00 ff ff tail is added). Returns 0; HD_ETOOBIG as soon as out->len would pass
 * max (zip bombs stop early); HD_EDEFLATE on corrupt data; HD_ENOMEM. */
int hd_ws_inflater_feed(hd_ws_inflater_t *inf, const uint8_t *in, size_t len, bool final, hd_sbuf_t *out,
                        size_t max);
void hd_ws_inflater_free(hd_ws_inflater_t *inf);

typedef struct hd_ws_deflater hd_ws_deflater_t;

/* A no-context-takeover compressor using 2^window_bits (9..15) bytes of window, or NULL. */
hd_ws_deflater_t *hd_ws_deflater_new(int window_bits);
/* Compresses one whole message into a new complete WebSocket frame (RSV1 set, opcode as given,
 * tail removed as RFC 7692 7.2.1 says), refs 1; NULL when out of memory. */
hd_buf_t *hd_ws_deflater_frame(hd_ws_deflater_t *def, uint8_t opcode, const uint8_t *in, size_t len);
void hd_ws_deflater_free(hd_ws_deflater_t *def);

#endif
