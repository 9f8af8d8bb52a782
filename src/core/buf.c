/* Slices, growable strings and refcounted buffers (see buf.h). */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

bool hd_slice_eq(hd_slice_t s, const char *str) {
  size_t n = strlen(str);
  return s.len == n && memcmp(s.ptr, str, n) == 0;
}

bool hd_slice_eq_nocase(hd_slice_t s, const char *str) {
  size_t n = strlen(str);
  return s.len == n && strncasecmp(s.ptr, str, n) == 0;
}

hd_slice_t hd_slice_trim(hd_slice_t s) {
  while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) s.ptr++, s.len--;
  while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) s.len--;
  return s;
}

bool hd_slice_has_token(hd_slice_t list, const char *token) {
  size_t i = 0;
  while (i <= list.len) {
    size_t start = i;
    while (i < list.len && list.ptr[i] != ',') i++;
    hd_slice_t item = hd_slice_trim((hd_slice_t){list.ptr + start, i - start});
    if (hd_slice_eq_nocase(item, token)) return true;
    i++;
  }
  return false;
}

int hd_sbuf_reserve(hd_sbuf_t *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->ptr, cap);
  if (!p) return HD_ENOMEM;
  b->ptr = p;
  b->cap = cap;
  return 0;
}

int hd_sbuf_append(hd_sbuf_t *b, const void *data, size_t len) {
  if (hd_sbuf_reserve(b, len)) return HD_ENOMEM;
  if (len) memcpy(b->ptr + b->len, data, len);
  b->len += len;
  b->ptr[b->len] = '\0';
  return 0;
}

int hd_sbuf_puts(hd_sbuf_t *b, const char *s) { return hd_sbuf_append(b, s, strlen(s)); }

int hd_sbuf_vprintf(hd_sbuf_t *b, const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0) return HD_EINVAL;
  if (hd_sbuf_reserve(b, (size_t)n)) return HD_ENOMEM;
  vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int hd_sbuf_printf(hd_sbuf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = hd_sbuf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int hd_sbuf_json_escape(hd_sbuf_t *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (hd_sbuf_reserve(b, len)) return HD_ENOMEM;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[7] = {0};
    switch (c) {
      case '"': memcpy(esc, "\\\"", 2); break;
      case '\\': memcpy(esc, "\\\\", 2); break;
      case '\n': memcpy(esc, "\\n", 2); break;
      case '\r': memcpy(esc, "\\r", 2); break;
      case '\t': memcpy(esc, "\\t", 2); break;
      default:
        if (c < 0x20) {
          memcpy(esc, "\\u00", 4);
          esc[4] = hex[c >> 4];
          esc[5] = hex[c & 15];
        }
    }
    int rc = esc[0] ? hd_sbuf_puts(b, esc) : hd_sbuf_append(b, &s[i], 1);
    if (rc) return rc;
  }
  return 0;
}

void hd_sbuf_consume(hd_sbuf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
  }
  if (b->ptr) b->ptr[b->len] = '\0';
}

void hd_sbuf_free(hd_sbuf_t *b) {
  free(b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

hd_buf_t *hd_buf_new(size_t cap) {
  hd_buf_t *b = malloc(sizeof(*b) + cap);
  if (!b) return NULL;
  b->refs = 1;
  b->flags = 0;
  b->born_ns = 0;
  b->len = 0;
  b->cap = cap;
  return b;
}

hd_buf_t *hd_buf_from(const void *data, size_t len) {
  hd_buf_t *b = hd_buf_new(len);
  if (!b) return NULL;
  if (len) memcpy(b->data, data, len);
  b->len = len;
  return b;
}

hd_buf_t *hd_buf_ref(hd_buf_t *b) {
  __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
  return b;
}

void hd_buf_unref(hd_buf_t *b) {
  if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) free(b);
}
