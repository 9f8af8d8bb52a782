/* libFuzzer target for permessage-deflate: the offer parser on arbitrary header text, and the
 * inflater on arbitrary compressed fragments with a 64 KiB message limit. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "net/ws_deflate.h"

#define MAX_OUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t ctl = data[0];
  data++, size--;

  hd_ws_deflate_params_t p;
  char resp[256];
  int rc = hd_ws_deflate_negotiate((hd_slice_t){(const char *)data, size}, 9 + ctl % 7, &p, resp, sizeof(resp));
  if (rc != 0) abort();
  if (p.enabled && (strncmp(resp, "permessage-deflate; server_no_context_takeover", 46) != 0 ||
                    p.server_max_window_bits < 9 || p.server_max_window_bits > 9 + ctl % 7 ||
                    p.client_max_window_bits < 8 || p.client_max_window_bits > 15))
    abort();

  /* the same bytes as a message: fragments cut every (ctl >> 3) + 1 bytes, two messages */
  p = (hd_ws_deflate_params_t){true, ctl & 1, 15, 15};
  hd_ws_inflater_t *inf = hd_ws_inflater_new(&p);
  if (!inf) return 0;
  hd_sbuf_t out = {0};
  size_t step = (size_t)(ctl >> 3) + 1;
  for (int msg = 0; msg < 2; msg++) {
    out.len = 0;
    rc = 0;
    for (size_t at = 0; rc == 0 && at <= size; at += step) {
      size_t take = size - at < step ? size - at : step;
      rc = hd_ws_inflater_feed(inf, data + at, take, at + take == size, &out, MAX_OUT);
      if (at + take == size) break;
    }
    if (rc != 0 && rc != HD_ETOOBIG && rc != HD_EDEFLATE) abort();
    if (out.len > MAX_OUT + 1 || out.cap > MAX_OUT + 2) abort();
    if (rc) break;
  }
  hd_sbuf_free(&out);
  hd_ws_inflater_free(inf);
  return 0;
}
