/* Incremental HTTP/1.1 request parsing (see http_parse.h). http_parser drives the callbacks below;
 * they copy the target and headers into req.head, recording offsets (head may move while it grows)
 * that become slices once the headers are complete, and enforce Herald's limits as bytes arrive.
 * The parser pauses after each message so pipelined requests come out one at a time. */
#include "net/http_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

enum { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };

/* While parsing, header slices hold offsets into head in their ptr fields. */
#define OFF2PTR(off) ((const char *)(uintptr_t)(off))
#define PTR2OFF(ptr) ((size_t)(uintptr_t)(ptr))

static hd_http_parser_t *self(http_parser *hp) { return (hd_http_parser_t *)hp; }

/* The request line, checked byte by byte before http_parser sees it:
 * [CRLF]* METHOD(A-Z, 1..20) SP target(visible, 1+) SP "HTTP/" DIGIT "." DIGIT CRLF. */
enum { L_START, L_METHOD, L_TARGET_START, L_TARGET, L_VERSION, L_CR, L_DONE };

static int check_line(hd_http_parser_t *p, const char *data, size_t len) {
  static const char version[] = "HTTP/d.d";
  for (size_t i = 0; i < len && p->line_state != L_DONE; i++) {
    unsigned char c = (unsigned char)data[i];
    switch (p->line_state) {
      case L_START:
        if (c == '\r' || c == '\n') break; /* empty lines before a request are allowed */
        p->line_state = L_METHOD;
        /* fall through */
      case L_METHOD:
        if (c == ' ' && p->line_pos > 0) p->line_state = L_TARGET_START;
        else if (c < 'A' || c > 'Z' || ++p->line_pos > 20) return HD_EPROTO;
        break;
      case L_TARGET_START:
      case L_TARGET:
        if (c == ' ' && p->line_state == L_TARGET) p->line_state = L_VERSION, p->line_pos = 0;
        else if (c <= ' ' || c == 0x7f) return HD_EPROTO;
        else p->line_state = L_TARGET;
        break;
      case L_VERSION:
        if (p->line_pos == sizeof version - 1) {
          if (c == '\r') p->line_state = L_CR;
          else if (c == '\n') p->line_state = L_DONE;
          else return HD_EPROTO;
        } else if (version[p->line_pos] == 'd' ? (c < '0' || c > '9') : c != (unsigned char)version[p->line_pos]) {
          return HD_EPROTO;
        } else {
          p->line_pos++;
        }
        break;
      case L_CR:
        if (c != '\n') return HD_EPROTO;
        p->line_state = L_DONE;
        break;
    }
  }
  return 0;
}

static int fail(hd_http_parser_t *p, int err) {
  p->error = err;
  return -1;
}

/* Appends bytes to head, NUL-terminating the previous element when a new one starts. */
static int store(hd_http_parser_t *p, int cb, const char *at, size_t len) {
  if (p->last_cb != cb && p->last_cb != CB_NONE && hd_sbuf_append(&p->req.head, "", 1)) return HD_ENOMEM;
  p->last_cb = cb;
  return hd_sbuf_append(&p->req.head, at, len);
}

static int on_url(http_parser *hp, const char *at, size_t len) {
  hd_http_parser_t *p = self(hp);
  p->line_bytes += len;
  /* "METHOD SP target SP HTTP/x.y" */
  size_t line = strlen(http_method_str((enum http_method)hp->method)) + 1 + p->line_bytes + 1 + 8;
  if (line > p->limits.max_request_line) return fail(p, HD_EURITOOLONG);
  if (store(p, CB_URL, at, len)) return fail(p, HD_ENOMEM);
  p->req.target.len += len;
  return 0;
}

static int check_chars(hd_http_parser_t *p, const char *at, size_t len) {
  if (memchr(at, '\0', len) || memchr(at, '\r', len) || memchr(at, '\n', len)) return fail(p, HD_EPROTO);
  p->header_bytes += len;
  if (p->header_bytes > p->limits.max_header_size) return fail(p, HD_EHDRTOOBIG);
  return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len) {
  hd_http_parser_t *p = self(hp);
  if (check_chars(p, at, len)) return -1;
  if (p->headers_complete) return 0; /* chunked trailer: bounded above, not kept */
  hd_http_request_t *r = &p->req;
  if (p->last_cb != CB_FIELD) {
    if (r->header_count == p->limits.max_header_count) return fail(p, HD_EHDRTOOBIG);
    if (r->header_count == p->header_cap) {
      size_t cap = p->header_cap ? p->header_cap * 2 : 8;
      if (cap > p->limits.max_header_count) cap = p->limits.max_header_count;
      hd_http_header_t *h = realloc(r->headers, cap * sizeof(*h));
      if (!h) return fail(p, HD_ENOMEM);
      r->headers = h;
      p->header_cap = cap;
    }
    if (store(p, CB_FIELD, "", 0)) return fail(p, HD_ENOMEM);
    hd_http_header_t *h = &r->headers[r->header_count++];
    h->name = (hd_slice_t){OFF2PTR(r->head.len), 0};
    h->value = (hd_slice_t){OFF2PTR(r->head.len), 0};
  }
  if (store(p, CB_FIELD, at, len)) return fail(p, HD_ENOMEM);
  r->headers[r->header_count - 1].name.len += len;
  return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len) {
  hd_http_parser_t *p = self(hp);
  if (check_chars(p, at, len)) return -1;
  if (p->headers_complete) return 0;
  hd_http_request_t *r = &p->req;
  if (r->header_count == 0) return fail(p, HD_EPROTO);
  hd_http_header_t *h = &r->headers[r->header_count - 1];
  if (p->last_cb != CB_VALUE) {
    if (store(p, CB_VALUE, "", 0)) return fail(p, HD_ENOMEM);
    h->value.ptr = OFF2PTR(r->head.len);
  }
  if (store(p, CB_VALUE, at, len)) return fail(p, HD_ENOMEM);
  h->value.len += len;
  return 0;
}

static int on_headers_complete(http_parser *hp) {
  hd_http_parser_t *p = self(hp);
  hd_http_request_t *r = &p->req;
  p->headers_complete = true;
  if (store(p, CB_NONE, "", 0)) return fail(p, HD_ENOMEM);
  if (hp->http_major != 1) return fail(p, HD_EPROTO);
  /* Turn offsets into slices now that head stops moving. */
  const char *base = r->head.ptr;
  r->target.ptr = base;
  hd_slice_t origin = r->target; /* absolute-form "http://host/p?q" is served as "/p?q" */
  size_t scheme = origin.len > 7 && !strncasecmp(base, "http://", 7) ? 7 : origin.len > 8 && !strncasecmp(base, "https://", 8) ? 8 : 0;
  if (scheme) {
    size_t i = scheme;
    while (i < origin.len && base[i] != '/' && base[i] != '?') i++;
    origin = (hd_slice_t){base + i, origin.len - i};
  }
  const char *q = memchr(origin.ptr, '?', origin.len);
  r->path = (hd_slice_t){origin.ptr, q ? (size_t)(q - origin.ptr) : origin.len};
  r->query = q ? (hd_slice_t){q + 1, origin.len - r->path.len - 1} : (hd_slice_t){origin.ptr + origin.len, 0};
  if (!r->path.len) r->path = HD_SLICE_LIT("/");
  size_t hosts = 0;
  for (size_t i = 0; i < r->header_count; i++) {
    hd_http_header_t *h = &r->headers[i];
    h->name.ptr = base + PTR2OFF(h->name.ptr);
    h->value = hd_slice_trim((hd_slice_t){base + PTR2OFF(h->value.ptr), h->value.len});
    if (hd_slice_eq_nocase(h->name, "host")) hosts++;
  }
  if (hosts > 1 || (hosts == 0 && hp->http_minor >= 1)) return fail(p, HD_EPROTO);
  r->method = hp->method;
  const char *m = http_method_str((enum http_method)hp->method);
  r->method_name = (hd_slice_t){m, strlen(m)};
  r->http_major = hp->http_major;
  r->http_minor = hp->http_minor;
  r->keep_alive = http_should_keep_alive(hp);
  r->upgrade = hp->upgrade;
  if (!(hp->flags & F_CHUNKED) && (hp->flags & F_CONTENTLENGTH) && hp->content_length > p->limits.max_body_size)
    return fail(p, HD_EBODYTOOBIG);
  return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len) {
  hd_http_parser_t *p = self(hp);
  if (len > p->limits.max_body_size - p->req.body.len) return fail(p, HD_EBODYTOOBIG);
  if (hd_sbuf_append(&p->req.body, at, len)) return fail(p, HD_ENOMEM);
  return 0;
}

static int on_message_complete(http_parser *hp) {
  hd_http_parser_t *p = self(hp);
  p->complete = true;
  http_parser_pause(hp, 1);
  return 0;
}

static http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void hd_http_parser_init(hd_http_parser_t *p, const hd_http_limits_t *limits) {
  memset(p, 0, sizeof(*p));
  http_parser_init(&p->parser, HTTP_REQUEST);
  p->parser.data = p;
  p->settings = &settings;
  p->limits = *limits;
}

static int map_errno(enum http_errno e) {
  switch (e) {
    case HPE_INVALID_METHOD: return HD_EMETHOD;
    case HPE_HEADER_OVERFLOW: return HD_EHDRTOOBIG;
    default: return HD_EPROTO;
  }
}

ssize_t hd_http_parser_feed(hd_http_parser_t *p, const char *data, size_t len, hd_http_request_t **out) {
  *out = NULL;
  if (p->error) return p->error;
  if (p->complete) {
    *out = &p->req;
    return 0;
  }
  if (len == 0) return 0;
  p->started = true;
  if (p->line_state != L_DONE && check_line(p, data, len)) return p->error = HD_EPROTO;
  size_t n = http_parser_execute(&p->parser, p->settings, data, len);
  if (p->error) return p->error;
  enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
  if (e != HPE_OK && !(e == HPE_PAUSED && p->complete)) return p->error = map_errno(e);
  if (p->complete) *out = &p->req;
  return (ssize_t)n;
}

void hd_http_parser_reset(hd_http_parser_t *p) {
  hd_http_limits_t limits = p->limits;
  hd_http_parser_free(p);
  hd_http_parser_init(p, &limits);
}

void hd_http_parser_take(hd_http_parser_t *p, hd_http_request_t *out) {
  *out = p->req;
  p->req = (hd_http_request_t){0}; /* its buffers now belong to out */
  hd_http_parser_reset(p);
}

bool hd_http_parser_started(const hd_http_parser_t *p) { return p->started; }

void hd_http_parser_free(hd_http_parser_t *p) {
  hd_sbuf_free(&p->req.head);
  hd_sbuf_free(&p->req.body);
  free(p->req.headers);
  p->req.headers = NULL;
  p->req.header_count = 0;
  p->header_cap = 0;
}

int hd_http_parse_error_status(int err) {
  switch (err) {
    case HD_EURITOOLONG: return 414;
    case HD_EHDRTOOBIG: return 431;
    case HD_EBODYTOOBIG: return 413;
    case HD_EMETHOD: return 501;
    default: return 400;
  }
}
