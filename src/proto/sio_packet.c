/* Socket.IO packet codec (see sio_packet.h), after socket.io-parser 4.2.x: lib/index.ts
 * (Decoder.decodeString, isPayloadValid, Encoder.encodeAsString) and lib/binary.ts
 * (reconstructPacket). Stricter than the reference where it leans on JavaScript's Number(): the
 * attachment count and ack id are plain decimal digits, and a packet must start with its type
 * digit. EVENT, ACK and CONNECT_ERROR must carry a payload (the reference lets it be absent). */
#include "proto/sio_packet.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "net/utf8.h"

#define MAX_SAFE_INTEGER 9007199254740991LL /* 2^53 - 1: the largest id a JavaScript peer keeps exact */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_binary(hd_sio_type_t t) { return t == HD_SIO_BINARY_EVENT || t == HD_SIO_BINARY_ACK; }

/* isPayloadValid, with an absent payload refused where a payload is expected. */
static bool payload_ok(hd_sio_type_t type, json_t *d) {
  switch (type) {
    case HD_SIO_CONNECT: return !d || json_is_object(d);
    case HD_SIO_DISCONNECT: return !d;
    case HD_SIO_CONNECT_ERROR: return json_is_object(d) || json_is_string(d);
    case HD_SIO_EVENT:
    case HD_SIO_BINARY_EVENT: /* the reference also takes a number as the event name */
      return json_is_array(d) && (json_is_string(json_array_get(d, 0)) || json_is_number(json_array_get(d, 0)));
    case HD_SIO_ACK:
    case HD_SIO_BINARY_ACK: return json_is_array(d);
  }
  return false;
}

/* Parses text[0..len) into out (whose data the caller frees on failure). */
static int parse(const char *text, size_t len, const hd_sio_limits_t *limits, hd_sio_packet_t *out) {
  if (!len || text[0] < '0' || text[0] > '6') return HD_EPROTO;
  out->type = (hd_sio_type_t)(text[0] - '0');
  size_t i = 1;
  if (is_binary(out->type)) { /* "<count>-" */
    uint64_t n = 0;
    for (; i < len && is_digit(text[i]); i++)
      if (n <= UINT32_MAX) n = n * 10 + (uint64_t)(text[i] - '0');
    if (i == 1 || i == len || text[i] != '-') return HD_EPROTO;
    i++;
    if (n > UINT32_MAX || (limits && n > limits->max_attachments)) return HD_ETOOBIG;
    out->attachments = (uint32_t)n;
  }
  if (i < len && text[i] == '/') { /* namespace, up to a comma or the end */
    const char *comma = memchr(text + i, ',', len - i);
    size_t end = comma ? (size_t)(comma - text) : len, n = end - i;
    if (n >= sizeof out->nsp || (limits && n > limits->max_nsp_len) || memchr(text + i, '\0', n) ||
        hd_utf8_validate((const uint8_t *)text + i, n))
      return HD_EPROTO;
    memcpy(out->nsp, text + i, n);
    out->nsp[n] = '\0';
    i = comma ? end + 1 : len;
  }
  if (i < len && is_digit(text[i])) { /* ack id */
    int64_t id = 0;
    for (; i < len && is_digit(text[i]); i++)
      if ((id = id * 10 + (text[i] - '0')) > MAX_SAFE_INTEGER) return HD_EPROTO;
    out->ack_id = id;
  }
  if (i < len) { /* JSON to the end: trailing garbage and invalid UTF-8 are refused by jansson */
    json_error_t err;
    if (!(out->data = json_loadb(text + i, len - i, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err))) return HD_EPROTO;
  }
  return payload_ok(out->type, out->data) ? 0 : HD_EPROTO;
}

int hd_sio_packet_decode(const char *text, size_t len, const hd_sio_limits_t *limits, hd_sio_packet_t *out) {
  *out = (hd_sio_packet_t){.nsp = "/", .ack_id = HD_SIO_NO_ACK};
  int rc = parse(text, len, limits, out);
  if (rc) hd_sio_packet_free(out);
  return rc;
}

void hd_sio_packet_free(hd_sio_packet_t *p) {
  json_decref(p->data);
  p->data = NULL;
}

/* Marks the attachments referenced under v in seen[0..n); HD_EPROTO on a bad placeholder. A
 * placeholder is any object whose "_placeholder" is true; its other members are not looked at. */
static int walk(json_t *v, uint32_t n, uint8_t *seen) {
  const char *key;
  json_t *x;
  size_t i;
  if (json_is_object(v)) {
    if (json_is_true(json_object_get(v, "_placeholder"))) {
      json_t *num = json_object_get(v, "num");
      double d = json_number_value(num);
      if (!json_is_number(num) || d < 0 || d >= n || d != (double)(uint32_t)d) return HD_EPROTO;
      seen[(uint32_t)d] = 1;
      return 0;
    }
    json_object_foreach(v, key, x) if (walk(x, n, seen)) return HD_EPROTO;
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, x) if (walk(x, n, seen)) return HD_EPROTO;
  }
  return 0;
}

int hd_sio_packet_check_placeholders(const hd_sio_packet_t *p) {
  if (!is_binary(p->type)) return 0; /* placeholders mean nothing in other packets */
  uint32_t n = p->attachments;
  uint8_t *seen = calloc(n ? n : 1, 1);
  if (!seen) return HD_ENOMEM;
  int rc = walk(p->data, n, seen);
  for (uint32_t i = 0; i < n && !rc; i++)
    if (!seen[i]) rc = HD_EPROTO;
  free(seen);
  return rc;
}

/* Writes v in decimal to p; returns the digits written (at most 20). */
static size_t put_decimal(char *p, uint64_t v) {
  char t[20];
  size_t n = 0;
  do t[n++] = (char)('0' + v % 10); while ((v /= 10));
  for (size_t i = 0; i < n; i++) p[i] = t[n - 1 - i];
  return n;
}

size_t hd_sio_packet_head(char *out, hd_sio_type_t type, const char *nsp, int64_t ack_id, uint32_t attachments) {
  size_t n = 0;
  out[n++] = (char)('0' + (int)type);
  if (is_binary(type) || attachments) {
    n += put_decimal(out + n, attachments);
    out[n++] = '-';
  }
  if (nsp && nsp[0] && strcmp(nsp, "/")) {
    size_t k = strlen(nsp);
    memcpy(out + n, nsp, k);
    n += k;
    out[n++] = ',';
  }
  if (ack_id >= 0) n += put_decimal(out + n, (uint64_t)ack_id);
  return n;
}

/* Type, attachment count, namespace and ack id, as Encoder.encodeAsString writes them. */
static int put_head(hd_sbuf_t *out, hd_sio_type_t type, const char *nsp, int64_t ack_id, uint32_t attachments) {
  if (hd_sbuf_reserve(out, HD_SIO_HEAD_MAX(nsp ? strlen(nsp) : 0))) return HD_ENOMEM;
  out->len += hd_sio_packet_head(out->ptr + out->len, type, nsp, ack_id, attachments);
  out->ptr[out->len] = '\0';
  return 0;
}

int hd_sio_packet_encode(hd_sbuf_t *out, hd_sio_type_t type, const char *nsp, int64_t ack_id, uint32_t attachments,
                         const char *data, size_t data_len) {
  int rc = put_head(out, type, nsp, ack_id, attachments);
  return rc || !data ? rc : hd_sbuf_append(out, data, data_len);
}

/* Appends s as a JSON string literal, escaped as JSON.stringify does. */
static int put_json_string(hd_sbuf_t *out, const char *s) {
  static const char hex[] = "0123456789abcdef";
  int rc = hd_sbuf_append(out, "\"", 1);
  for (; !rc && *s; s++) {
    unsigned char c = (unsigned char)*s;
    const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                    : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
    char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
    rc = esc ? hd_sbuf_puts(out, esc) : c < 0x20 ? hd_sbuf_puts(out, u) : hd_sbuf_append(out, s, 1);
  }
  return rc ? rc : hd_sbuf_append(out, "\"", 1);
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int hd_sio_event_encode(hd_sbuf_t *out, const char *nsp, int64_t ack_id, const char *event, const char *args,
                        size_t args_len) {
  size_t a = 0, b = args ? args_len : 0;
  while (a < b && is_space(args[a])) a++;
  while (b > a && is_space(args[b - 1])) b--;
  if (a < b) { /* keep what is inside the brackets */
    if (b - a < 2 || args[a] != '[' || args[b - 1] != ']') return HD_EINVAL;
    for (a++, b--; a < b && is_space(args[a]);) a++;
  }
  if (!event) return HD_EINVAL;
  int rc = put_head(out, HD_SIO_EVENT, nsp, ack_id, 0);
  if (!rc) rc = hd_sbuf_append(out, "[", 1);
  if (!rc) rc = put_json_string(out, event);
  if (!rc && a < b) rc = hd_sbuf_append(out, ",", 1);
  if (!rc && a < b) rc = hd_sbuf_append(out, args + a, b - a);
  return rc ? rc : hd_sbuf_append(out, "]", 1);
}
