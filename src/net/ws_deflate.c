/* permessage-deflate (RFC 7692): negotiation of Sec-WebSocket-Extensions offers, a bounded
 * streaming inflater for client messages and a no-context-takeover deflater that builds whole
 * server frames (see ws_deflate.h). */
#include "net/ws_deflate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "net/ws_frame.h"

#define LEVEL 3             /* fast (no lazy matching); chat-sized JSON gains little from 6 */
#define INFLATE_STEP 16384  /* output produced per inflate() call */

static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- negotiation ---- */

/* The next piece of s up to an unquoted `sep` (quoted-strings skipped); advances s past it. */
static hd_slice_t next_part(hd_slice_t *s, char sep) {
  size_t i = 0;
  bool quoted = false;
  for (; i < s->len && (quoted || s->ptr[i] != sep); i++) {
    if (quoted && s->ptr[i] == '\\') i++;
    else if (s->ptr[i] == '"') quoted = !quoted;
  }
  hd_slice_t part = hd_slice_trim((hd_slice_t){s->ptr, i < s->len ? i : s->len});
  size_t skip = i < s->len ? i + 1 : s->len;
  s->ptr += skip;
  s->len -= skip;
  return part;
}

/* A window-bits value (token or quoted-string, RFC 7692 7.1.2) in 8..15, else -1. */
static int window_bits(hd_slice_t v) {
  bool quoted = v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"';
  int bits = -1;
  for (size_t i = quoted; i < v.len - quoted; i++) {
    if (quoted && v.ptr[i] == '\\' && ++i == v.len - 1) return -1;
    /* after a first digit only "1" may go on (to 10..15); a leading zero may not */
    if (v.ptr[i] < '0' || v.ptr[i] > '9' || bits == 0 || bits > 1) return -1;
    bits = (bits < 0 ? 0 : bits * 10) + (v.ptr[i] - '0');
  }
  return bits >= 8 && bits <= 15 ? bits : -1;
}

enum { SNCT = 1, CNCT = 2, SMWB = 4, CMWB = 8 };

/* Reads one offer into p and the parameter bits seen; false declines it. */
static bool read_offer(hd_slice_t ext, hd_ws_deflate_params_t *p, int *seen) {
  if (!hd_slice_eq_nocase(next_part(&ext, ';'), "permessage-deflate")) return false;
  *seen = 0;
  p->server_max_window_bits = p->client_max_window_bits = 15;
  p->client_no_context_takeover = false;
  while (ext.len) {
    hd_slice_t param = next_part(&ext, ';');
    const char *eq = memchr(param.ptr, '=', param.len);
    hd_slice_t name = hd_slice_trim((hd_slice_t){param.ptr, eq ? (size_t)(eq - param.ptr) : param.len});
    hd_slice_t value = eq ? hd_slice_trim((hd_slice_t){eq + 1, param.len - (size_t)(eq + 1 - param.ptr)})
                          : (hd_slice_t){NULL, 0};
    int bit = hd_slice_eq_nocase(name, "server_no_context_takeover")   ? SNCT
              : hd_slice_eq_nocase(name, "client_no_context_takeover") ? CNCT
              : hd_slice_eq_nocase(name, "server_max_window_bits")     ? SMWB
              : hd_slice_eq_nocase(name, "client_max_window_bits")     ? CMWB
                                                                       : 0;
    if (!bit || (*seen & bit)) return false;
    *seen |= bit;
    if (bit & (SNCT | CNCT)) {
      if (eq) return false;
      if (bit == CNCT) p->client_no_context_takeover = true;
    } else if (eq || bit == SMWB) {
      int bits = eq ? window_bits(value) : -1;
      /* zlib cannot deflate with a 256-byte window, so server_max_window_bits=8 is declined */
      if (bits < (bit == SMWB ? 9 : 8)) return false;
      *(bit == SMWB ? &p->server_max_window_bits : &p->client_max_window_bits) = (uint8_t)bits;
    }
  }
  return true;
}

/* RFC 7692 7.1.2.1 lets the server name server_max_window_bits even when the offer did not, so
 * a limit below 15 is always announced. client_max_window_bits is echoed only when offered with a
 * value below 15 (7.1.2.2 forbids it when not offered); the inflater keeps a 15-bit window anyway,
 * which decodes any smaller one. */
int hd_ws_deflate_negotiate(hd_slice_t offers, int server_window_limit, hd_ws_deflate_params_t *params,
                            char *resp, size_t resp_len) {
  if (server_window_limit < 9 || server_window_limit > 15) return HD_EINVAL;
  memset(params, 0, sizeof(*params));
  while (offers.len) {
    hd_ws_deflate_params_t p = {.enabled = true};
    int seen;
    if (!read_offer(next_part(&offers, ','), &p, &seen)) continue;
    if (p.server_max_window_bits > server_window_limit) p.server_max_window_bits = server_window_limit;
    char smwb[40] = "", cmwb[40] = "";
    if ((seen & SMWB) || p.server_max_window_bits < 15)
      snprintf(smwb, sizeof(smwb), "; server_max_window_bits=%d", p.server_max_window_bits);
    if (p.client_max_window_bits < 15)
      snprintf(cmwb, sizeof(cmwb), "; client_max_window_bits=%d", p.client_max_window_bits);
    int n = snprintf(resp, resp_len, "permessage-deflate; server_no_context_takeover%s%s%s",
                     p.client_no_context_takeover ? "; client_no_context_takeover" : "", smwb, cmwb);
    if (n < 0 || (size_t)n >= resp_len) return HD_ETOOBIG;
    *params = p;
    return 0;
  }
  return 0;
}

/* ---- inflater ---- */

struct hd_ws_inflater {
  z_stream zs;
  bool reset; /* client_no_context_takeover: a fresh window per message */
  bool ended; /* the message's deflate stream hit BFINAL; the rest of the message is ignored */
};

hd_ws_inflater_t *hd_ws_inflater_new(const hd_ws_deflate_params_t *params) {
  hd_ws_inflater_t *inf = calloc(1, sizeof(*inf));
  if (!inf) return NULL;
  if (inflateInit2(&inf->zs, -15) != Z_OK) {
    free(inf);
    return NULL;
  }
  inf->reset = params->client_no_context_takeover;
  return inf;
}

/* Grows out for `extra` more bytes, never past max + 1 bytes of data and its NUL. */
static int reserve(hd_sbuf_t *out, size_t extra, size_t max) {
  size_t need = out->len + extra + 1;
  if (need <= out->cap) return 0;
  size_t cap = out->cap * 2;
  if (cap > max + 2) cap = max + 2;
  if (cap < need) cap = need;
  char *p = realloc(out->ptr, cap);
  if (!p) return HD_ENOMEM;
  out->ptr = p;
  out->cap = cap;
  return 0;
}

static int inflate_some(hd_ws_inflater_t *inf, const uint8_t *in, size_t len, hd_sbuf_t *out, size_t max) {
  z_stream *zs = &inf->zs;
  zs->next_in = (Bytef *)in;
  zs->avail_in = 0;
  while (!inf->ended) {
    if (out->len > max) return HD_ETOOBIG;
    if (zs->avail_in == 0) {
      zs->avail_in = len > UINT_MAX ? UINT_MAX : (uInt)len;
      len -= zs->avail_in;
    }
    size_t step = max - out->len + 1; /* one byte past max proves the message is too big */
    if (step > INFLATE_STEP) step = INFLATE_STEP;
    if (reserve(out, step, max)) return HD_ENOMEM;
    zs->next_out = (Bytef *)out->ptr + out->len;
    zs->avail_out = (uInt)step;
    int zr = inflate(zs, Z_SYNC_FLUSH);
    out->len += step - zs->avail_out;
    out->ptr[out->len] = '\0';
    if (out->len > max) return HD_ETOOBIG;
    if (zr == Z_STREAM_END) inf->ended = true;
    else if (zr != Z_OK && zr != Z_BUF_ERROR) return HD_EDEFLATE;
    else if (zs->avail_in == 0 && len == 0 && zs->avail_out != 0) break;
  }
  return 0;
}

int hd_ws_inflater_feed(hd_ws_inflater_t *inf, const uint8_t *in, size_t len, bool final, hd_sbuf_t *out,
                        size_t max) {
  int rc = inflate_some(inf, in, len, out, max);
  if (rc || !final) return rc;
  if (!inf->ended) {
    rc = inflate_some(inf, tail, sizeof(tail), out, max);
    if (rc) return rc;
    /* the tail completes an empty stored block, so a whole message ends on a block boundary */
    if (!inf->ended && !(inf->zs.data_type & 128)) return HD_EDEFLATE;
  }
  if (inf->ended || inf->reset) inflateReset(&inf->zs);
  inf->ended = false;
  return 0;
}

void hd_ws_inflater_free(hd_ws_inflater_t *inf) {
  if (!inf) return;
  inflateEnd(&inf->zs);
  free(inf);
}

/* ---- deflater ---- */

struct hd_ws_deflater {
  z_stream zs;
};

hd_ws_deflater_t *hd_ws_deflater_new(int window_bits) {
  if (window_bits < 9 || window_bits > 15) return NULL;
  hd_ws_deflater_t *def = calloc(1, sizeof(*def));
  if (!def) return NULL;
  if (deflateInit2(&def->zs, LEVEL, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    free(def);
    return NULL;
  }
  return def;
}

/* The payload is compressed in place after room for the header its bound would need, and moved
 * only when the real size needs a shorter header. zlib counts in uInt: messages stay far below
 * 4 GiB (the server's message limit), larger ones get NULL. */
hd_buf_t *hd_ws_deflater_frame(hd_ws_deflater_t *def, uint8_t opcode, const uint8_t *in, size_t len) {
  z_stream *zs = &def->zs;
  size_t bound = deflateBound(zs, len) + 16; /* + the empty stored block of Z_SYNC_FLUSH */
  if (bound > UINT_MAX) return NULL;
  uint8_t hdr[10];
  size_t at = hd_ws_frame_header_write(hdr, true, true, opcode, bound);
  hd_buf_t *b = hd_buf_new(at + bound);
  if (!b) return NULL;
  zs->next_in = (Bytef *)in;
  zs->avail_in = (uInt)len;
  zs->next_out = b->data + at;
  zs->avail_out = (uInt)bound;
  int zr = deflate(zs, Z_SYNC_FLUSH);
  bool ok = zr == Z_OK && zs->avail_out != 0;
  size_t plen = bound - zs->avail_out - sizeof(tail);
  deflateReset(zs);
  if (!ok) {
    hd_buf_unref(b);
    return NULL;
  }
  size_t hlen = hd_ws_frame_header_write(hdr, true, true, opcode, plen);
  if (hlen != at) memmove(b->data + hlen, b->data + at, plen);
  memcpy(b->data, hdr, hlen);
  b->len = hlen + plen;
  return b;
}

void hd_ws_deflater_free(hd_ws_deflater_t *def) {
  if (!def) return;
  deflateEnd(&def->zs);
  free(def);
}
