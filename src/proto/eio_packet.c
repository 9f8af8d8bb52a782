/* Engine.IO packet and payload codec (see eio_packet.h), after engine.io-parser 5.x
 * (decodePacket.ts, index.ts: v4) and 2.x (lib/index.js: v3). Packets of a payload are handed to
 * the callback as they are decoded, so the ones before a malformed packet have been seen, as with
 * the reference. Stricter than the reference where it is lenient by accident: bodies must be valid
 * UTF-8, base64 must be canonical (standard alphabet, padded, zero pad bits), v3 lengths plain
 * digits, and binary packets (WebSocket v3, 'b' in polling) only messages. */
#include "proto/eio_packet.h"

#include <string.h>

#include "core/error.h"
#include "net/utf8.h"

#define SEP '\x1e'

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Appends the bytes of canonical base64 text s[0..n) to out; 0, HD_EPROTO or HD_ENOMEM. */
static int b64_decode(hd_sbuf_t *out, const char *s, size_t n) {
  if (n % 4) return HD_EPROTO;
  if (hd_sbuf_reserve(out, n / 4 * 3)) return HD_ENOMEM;
  for (size_t i = 0; i < n; i += 4) {
    uint32_t w = 0;
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      unsigned char c = (unsigned char)s[i + k];
      int v = c == '=' && k >= 2 && i + 4 == n ? (pad++, 0) : pad ? -1 : b64_val(c);
      if (v < 0) return HD_EPROTO;
      w = w << 6 | (uint32_t)v;
    }
    if (w & ((1u << (8 * pad)) - 1)) return HD_EPROTO; /* non-zero bits under the padding */
    for (int k = 0; k < 3 - pad; k++) out->ptr[out->len++] = (char)(w >> (16 - 8 * k));
  }
  out->ptr[out->len] = '\0';
  return 0;
}

static size_t b64_len(size_t n) { return (n + 2) / 3 * 4; }

/* Appends the padded base64 text of p[0..n) to out; 0 or HD_ENOMEM. */
static int b64_encode(hd_sbuf_t *out, const uint8_t *p, size_t n) {
  if (hd_sbuf_reserve(out, b64_len(n))) return HD_ENOMEM;
  char *o = out->ptr + out->len;
  for (size_t i = 0; i < n; i += 3) {
    size_t left = n - i;
    uint32_t w = (uint32_t)p[i] << 16 | (left > 1 ? (uint32_t)p[i + 1] << 8 : 0) | (left > 2 ? p[i + 2] : 0);
    *o++ = b64_chars[w >> 18];
    *o++ = b64_chars[(w >> 12) & 63];
    *o++ = left > 1 ? b64_chars[(w >> 6) & 63] : '=';
    *o++ = left > 2 ? b64_chars[w & 63] : '=';
  }
  out->len = (size_t)(o - out->ptr);
  out->ptr[out->len] = '\0';
  return 0;
}

/* UTF-16 code units of UTF-8 text (4-byte sequences are surrogate pairs). */
static size_t utf16_units(const uint8_t *p, size_t n) {
  size_t units = 0;
  for (size_t i = 0; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) units += p[i] >= 0xf0 ? 2 : 1;
  return units;
}

/* Decodes one packet of a polling payload; base64 data goes into tmp (reset first). */
static int decode_one(const char *s, size_t n, int version, hd_sbuf_t *tmp, hd_eio_packet_t *p) {
  if (!n) return HD_EPROTO;
  if (s[0] == 'b') {
    size_t skip = version == 3 ? 2 : 1; /* v3: 'b' + type digit, and only messages carry binary */
    if (version == 3 && (n < 2 || s[1] != '0' + HD_EIO_MESSAGE)) return HD_EPROTO;
    tmp->len = 0;
    int rc = b64_decode(tmp, s + skip, n - skip);
    if (rc) return rc;
    *p = (hd_eio_packet_t){HD_EIO_MESSAGE, true, {tmp->ptr ? tmp->ptr : "", tmp->len}};
    return 0;
  }
  if (s[0] < '0' || s[0] > '6') return HD_EPROTO;
  *p = (hd_eio_packet_t){(hd_eio_type_t)(s[0] - '0'), false, {s + 1, n - 1}};
  return 0;
}

/* v4: packets separated by 0x1e; an empty one (and so an empty body) is malformed. */
static int decode_v4(const char *body, size_t len, hd_sbuf_t *tmp,
                     int (*fn)(const hd_eio_packet_t *p, void *arg), void *arg) {
  int count = 0;
  size_t pos = 0;
  for (;;) {
    const char *sep = memchr(body + pos, SEP, len - pos);
    size_t end = sep ? (size_t)(sep - body) : len;
    hd_eio_packet_t p;
    int rc = decode_one(body + pos, end - pos, 4, tmp, &p);
    if (rc || (rc = fn(&p, arg)) < 0) return rc;
    count++;
    if (!sep) return count;
    pos = end + 1;
  }
}

/* v3: `<len>:<packet>` records, len in UTF-16 code units; "0:" records carry no packet. */
static int decode_v3(const char *body, size_t len, hd_sbuf_t *tmp,
                     int (*fn)(const hd_eio_packet_t *p, void *arg), void *arg) {
  const uint8_t *u = (const uint8_t *)body;
  int count = 0;
  size_t pos = 0;
  while (pos < len) {
    size_t units = 0, digits = 0;
    for (; pos < len && body[pos] != ':'; pos++, digits++) {
      if (body[pos] < '0' || body[pos] > '9') return HD_EPROTO;
      units = units * 10 + (size_t)(body[pos] - '0');
      if (units > len) return HD_EPROTO; /* more units than bytes left: truncated */
    }
    if (pos == len || !digits) return HD_EPROTO;
    size_t start = ++pos, got = 0;
    for (; pos < len; pos++) {
      if ((u[pos] & 0xc0) == 0x80) continue; /* continuation bytes belong to the counted character */
      if (got == units) break;
      got += u[pos] >= 0xf0 ? 2 : 1;
    }
    if (got != units) return HD_EPROTO; /* truncated, or the length splits a surrogate pair */
    if (!units) continue;
    hd_eio_packet_t p;
    int rc = decode_one(body + start, pos - start, 3, tmp, &p);
    if (rc || (rc = fn(&p, arg)) < 0) return rc;
    count++;
  }
  return count;
}

int hd_eio_payload_decode(const char *body, size_t len, int eio_version,
                          int (*fn)(const hd_eio_packet_t *p, void *arg), void *arg) {
  if (!len || hd_utf8_validate((const uint8_t *)body, len)) return HD_EPROTO;
  hd_sbuf_t tmp = {0};
  int rc = eio_version == 3 ? decode_v3(body, len, &tmp, fn, arg) : decode_v4(body, len, &tmp, fn, arg);
  hd_sbuf_free(&tmp);
  return rc;
}

int hd_eio_packet_decode_ws(const uint8_t *msg, size_t len, bool is_binary, int eio_version, hd_eio_packet_t *out) {
  if (is_binary) {
    if (eio_version == 3) { /* a type byte first; only messages carry binary */
      if (!len || msg[0] != HD_EIO_MESSAGE) return HD_EPROTO;
      msg++, len--;
    }
    *out = (hd_eio_packet_t){HD_EIO_MESSAGE, true, {(const char *)msg, len}};
    return 0;
  }
  if (!len || msg[0] < '0' || msg[0] > '6') return HD_EPROTO; /* 'b'+base64 text frames are not taken */
  *out = (hd_eio_packet_t){(hd_eio_type_t)(msg[0] - '0'), false, {(const char *)msg + 1, len - 1}};
  return 0;
}

int hd_eio_payload_append(hd_sbuf_t *out, hd_eio_type_t type, const void *data, size_t len, bool binary,
                          int eio_version, bool first) {
  int rc;
  if (eio_version == 3) {
    size_t units = binary ? 2 + b64_len(len) : 1 + utf16_units(data, len);
    rc = binary ? hd_sbuf_printf(out, "%zu:b%c", units, '0' + (int)type) : hd_sbuf_printf(out, "%zu:", units);
  } else {
    rc = first ? 0 : hd_sbuf_append(out, "\x1e", 1);
    if (!rc && binary) rc = hd_sbuf_append(out, "b", 1);
  }
  if (rc) return rc;
  if (binary) return b64_encode(out, data, len);
  return hd_eio_packet_encode_text(out, type, data, len);
}

int hd_eio_packet_encode_text(hd_sbuf_t *out, hd_eio_type_t type, const void *data, size_t len) {
  char t = (char)('0' + type);
  int rc = hd_sbuf_append(out, &t, 1);
  return rc ? rc : hd_sbuf_append(out, data, len);
}
