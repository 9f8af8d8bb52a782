/* Byte containers: non-owning slices for parsing, growable strings for building,
 * and refcounted immutable buffers shared by every recipient of a fan-out. */
#ifndef HD_BUF_H
#define HD_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A non-owning view of bytes; never freed through this struct. */
typedef struct {
  const char *ptr;
  size_t len;
} hd_slice_t;

#define HD_SLICE_LIT(s) ((hd_slice_t){(s), sizeof(s) - 1})

/* True when the slice equals the NUL-terminated string exactly. */
bool hd_slice_eq(hd_slice_t s, const char *str);
/* True when the slice equals the string, ASCII case-insensitively. */
bool hd_slice_eq_nocase(hd_slice_t s, const char *str);
/* True when a comma-separated token list (e.g. "keep-alive, Upgrade") holds token, case-insensitively. */
bool hd_slice_has_token(hd_slice_t list, const char *token);
/* Trims ASCII spaces and tabs from both ends. */
hd_slice_t hd_slice_trim(hd_slice_t s);

/* A growable, owned byte string; always NUL-terminated when ptr != NULL. Zero-init is empty. */
typedef struct {
  char *ptr;
  size_t len;
  size_t cap;
} hd_sbuf_t;

/* Ensures room for `extra` more bytes; 0 or HD_ENOMEM. */
int hd_sbuf_reserve(hd_sbuf_t *b, size_t extra);
/* Appends bytes; 0 or HD_ENOMEM. */
int hd_sbuf_append(hd_sbuf_t *b, const void *data, size_t len);
/* Appends a NUL-terminated string; 0 or HD_ENOMEM. */
int hd_sbuf_puts(hd_sbuf_t *b, const char *s);
/* Appends printf-formatted text; 0 or HD_ENOMEM. */
int hd_sbuf_printf(hd_sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int hd_sbuf_vprintf(hd_sbuf_t *b, const char *fmt, va_list ap);
/* Appends s as the inside of a JSON string literal (quotes not added). */
int hd_sbuf_json_escape(hd_sbuf_t *b, const char *s, size_t len);
/* Drops the first n bytes, keeping the rest. */
void hd_sbuf_consume(hd_sbuf_t *b, size_t n);
/* Frees the storage; the sbuf is empty (and reusable) afterwards. */
void hd_sbuf_free(hd_sbuf_t *b);

/* An immutable-once-shared, refcounted byte buffer. Created with refs == 1; the creator
 * fills data/len, then hands references out with hd_buf_ref(); the last hd_buf_unref() frees it.
 * Refcounting is atomic so a buffer may cross shards. */
typedef struct hd_buf {
  uint32_t refs;
  uint32_t flags;
  uint64_t born_ns; /* a broadcast frame: uv_hrtime() of its message's publish (publish-to-write); else 0 */
  size_t len;
  size_t cap;
  uint8_t data[];
} hd_buf_t;

/* New buffer with capacity cap and len 0, or NULL when out of memory. */
hd_buf_t *hd_buf_new(size_t cap);
/* New buffer holding a copy of data, or NULL. */
hd_buf_t *hd_buf_from(const void *data, size_t len);
/* Takes one more reference; returns b. */
hd_buf_t *hd_buf_ref(hd_buf_t *b);
/* Drops one reference, freeing on the last; NULL is ignored. */
void hd_buf_unref(hd_buf_t *b);

#endif
