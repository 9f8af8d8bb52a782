/* Header and query lookups on a parsed request, and its serialization for a hand-over (see http_request.h). */
#include "net/http_request.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

hd_slice_t hd_http_request_header(const hd_http_request_t *req, const char *name) {
  for (size_t i = 0; i < req->header_count; i++)
    if (hd_slice_eq_nocase(req->headers[i].name, name)) return req->headers[i].value;
  return (hd_slice_t){NULL, 0};
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes (and '+' -> ' ') src into out; returns the decoded length. */
static size_t url_decode(hd_slice_t src, char *out, size_t outlen) {
  size_t n = 0;
  for (size_t i = 0; i < src.len && n + 1 < outlen; i++) {
    char c = src.ptr[i];
    if (c == '+') c = ' ';
    else if (c == '%' && i + 2 < src.len + 0 && hex_value(src.ptr[i + 1]) >= 0 && hex_value(src.ptr[i + 2]) >= 0) {
      c = (char)(hex_value(src.ptr[i + 1]) * 16 + hex_value(src.ptr[i + 2]));
      i += 2;
    }
    out[n++] = c;
  }
  if (outlen) out[n] = '\0';
  return n;
}

int hd_http_request_query(const hd_http_request_t *req, const char *name, char *out, size_t outlen) {
  hd_slice_t q = req->query;
  size_t nlen = strlen(name), i = 0;
  while (i < q.len) {
    size_t start = i;
    while (i < q.len && q.ptr[i] != '&') i++;
    hd_slice_t pair = {q.ptr + start, i - start};
    i++;
    const char *eq = memchr(pair.ptr, '=', pair.len);
    size_t klen = eq ? (size_t)(eq - pair.ptr) : pair.len;
    if (klen != nlen || memcmp(pair.ptr, name, nlen) != 0) continue;
    hd_slice_t value = eq ? (hd_slice_t){eq + 1, pair.len - klen - 1} : (hd_slice_t){pair.ptr + pair.len, 0};
    return (int)url_decode(value, out, outlen);
  }
  return HD_ENOTFOUND;
}

int hd_http_request_serialize(const hd_http_request_t *req, hd_sbuf_t *out) {
  int rc = hd_sbuf_printf(out, "%.*s %.*s HTTP/%u.%u\r\n", (int)req->method_name.len, req->method_name.ptr,
                          (int)req->target.len, req->target.ptr, req->http_major, req->http_minor);
  for (size_t i = 0; !rc && i < req->header_count; i++) {
    const hd_http_header_t *h = &req->headers[i];
    if (hd_slice_eq_nocase(h->name, "Content-Length") || hd_slice_eq_nocase(h->name, "Transfer-Encoding")) continue;
    rc = hd_sbuf_printf(out, "%.*s: %.*s\r\n", (int)h->name.len, h->name.ptr, (int)h->value.len, h->value.ptr);
  }
  if (!rc && req->body.len) rc = hd_sbuf_printf(out, "Content-Length: %zu\r\n", req->body.len);
  if (!rc) rc = hd_sbuf_puts(out, "\r\n");
  if (!rc && req->body.len) rc = hd_sbuf_append(out, req->body.ptr, req->body.len);
  return rc;
}

void hd_http_request_free(hd_http_request_t *req) {
  hd_sbuf_free(&req->head);
  hd_sbuf_free(&req->body);
  free(req->headers);
  *req = (hd_http_request_t){0};
}
