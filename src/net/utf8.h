/* Incremental UTF-8 validation (RFC 3629): rejects overlongs, surrogates, code points above
 * U+10FFFF and, failing fast, any byte after which no valid completion exists. */
#ifndef HD_UTF8_H
#define HD_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t state; /* 0 = at a character boundary */
} hd_utf8_t;

/* Starts a new text. */
void hd_utf8_init(hd_utf8_t *v);
/* Validates the next chunk of a text; 0 while still valid, HD_EUTF8 at the first bad byte. */
int hd_utf8_feed(hd_utf8_t *v, const uint8_t *p, size_t n);
/* 0 when the text fed so far ends on a character boundary, else HD_EUTF8. */
int hd_utf8_finish(const hd_utf8_t *v);
/* One-shot: 0 when p[0..n) is complete, valid UTF-8, else HD_EUTF8. */
int hd_utf8_validate(const uint8_t *p, size_t n);

#endif
