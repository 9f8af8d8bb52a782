/* Fuzzes the WebSocket reader. The first byte picks permessage-deflate (bit 0), client context
 * takeover (bit 1), a small or large message limit (bit 2) and a split point (bits 3..7); the
 * rest is fed whole, split in two there, and (when short) one byte at a time. All three must
 * report the same events, return code and close code. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "net/ws_reader.h"

typedef struct {
  uint64_t h;
} sum_t;

static void mix(sum_t *s, uint32_t tag, const uint8_t *p, size_t n) {
  uint64_t h = s->h ^ tag ^ ((uint64_t)n << 32);
  h *= 0x100000001b3ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  s->h = h;
}

static int on_message(void *ud, uint8_t op, const uint8_t *p, size_t n) { return mix(ud, 0x100 | op, p, n), 0; }
static int on_ping(void *ud, const uint8_t *p, size_t n) { return mix(ud, 0x200, p, n), 0; }
static int on_pong(void *ud, const uint8_t *p, size_t n) { return mix(ud, 0x300, p, n), 0; }
static int on_close(void *ud, uint16_t code, const uint8_t *p, size_t n) { return mix(ud, 0x10000u | code, p, n), 0; }

static const hd_ws_reader_callbacks_t cb = {on_message, on_ping, on_pong, on_close};

/* Feeds data in pieces of at most `step` bytes after a first piece of `cut` bytes; each piece in
 * its own allocation so reads past it are caught. Returns a digest of everything observed. */
static uint64_t run(const uint8_t *data, size_t size, size_t cut, size_t step, size_t max,
                    const hd_ws_deflate_params_t *d) {
  sum_t s = {0xcbf29ce484222325ull};
  hd_ws_reader_t r;
  hd_ws_reader_init(&r, &cb, &s, max, d);
  int first = 0;
  for (size_t at = 0; at < size;) {
    size_t n = at == 0 && cut ? cut : step;
    if (n > size - at) n = size - at;
    uint8_t *piece = malloc(n);
    memcpy(piece, data + at, n);
    int rc = hd_ws_reader_feed(&r, piece, n);
    if (!first) first = rc;
    free(piece);
    at += n;
  }
  if (first < 0 && (!r.closed || !r.close_code)) abort();
  if (!first && !r.closed && r.close_code) abort();
  uint8_t tail[4] = {(uint8_t)first, (uint8_t)(r.close_code >> 8), (uint8_t)r.close_code, r.closed};
  mix(&s, 0xffff, tail, 4);
  hd_ws_reader_free(&r);
  return s.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size) return 0;
  uint8_t mode = data[0];
  hd_ws_deflate_params_t d = {.enabled = mode & 1, .client_no_context_takeover = mode & 2,
                              .server_max_window_bits = 15, .client_max_window_bits = 15};
  size_t max = mode & 4 ? 1 << 16 : 64;
  data++, size--;
  uint64_t whole = run(data, size, 0, size, max, &d);
  size_t cut = (size_t)(mode >> 3) * size / 31;
  if (run(data, size, cut, size, max, &d) != whole) abort();
  if (size <= 512 && run(data, size, 0, 1, max, &d) != whole) abort();
  return 0;
}
