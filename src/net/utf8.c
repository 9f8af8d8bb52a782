/* UTF-8 validation (see utf8.h): a byte-class DFA whose states encode what the next byte may be,
 * so a byte that admits no valid completion moves straight to REJ, plus an 8-byte ASCII skip. */
#include "net/utf8.h"

#include <string.h>

#include "core/error.h"

/* Byte classes: 0 ASCII, 1 80..8F, 2 90..9F, 3 A0..BF, 4 never valid (C0, C1, F5..FF),
 * 5 C2..DF, 6 E0, 7 E1..EC and EE..EF, 8 ED, 9 F0, 10 F1..F3, 11 F4. */
static const uint8_t cls[256] = {
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
  4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
  6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7, 9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

/* States, premultiplied by the 12 classes: ACC at a boundary; REJ (sticky) after an error;
 * T1..T3 awaiting 1..3 continuation bytes 80..BF; the rest await a restricted second byte:
 * after E0 only A0..BF (no overlongs), after ED only 80..9F (no surrogates), after F0 only
 * 90..BF (no overlongs), after F4 only 80..8F (nothing above U+10FFFF). */
enum { ACC = 0, REJ = 12, T1 = 24, T2 = 36, T3 = 48, SE0 = 60, SED = 72, SF0 = 84, SF4 = 96 };

#define R REJ
static const uint8_t next[108] = {
  /*        asc 80  90  A0  bad C2  E0   E1   ED   F0   F1  F4 */
  /* ACC */ ACC, R, R, R, R, T1, SE0, T2, SED, SF0, T3, SF4,
  /* REJ */ R, R, R, R, R, R, R, R, R, R, R, R,
  /* T1  */ R, ACC, ACC, ACC, R, R, R, R, R, R, R, R,
  /* T2  */ R, T1, T1, T1, R, R, R, R, R, R, R, R,
  /* T3  */ R, T2, T2, T2, R, R, R, R, R, R, R, R,
  /* SE0 */ R, R, R, T1, R, R, R, R, R, R, R, R,
  /* SED */ R, T1, T1, R, R, R, R, R, R, R, R, R,
  /* SF0 */ R, R, T2, T2, R, R, R, R, R, R, R, R,
  /* SF4 */ R, T2, R, R, R, R, R, R, R, R, R, R,
};
#undef R

void hd_utf8_init(hd_utf8_t *v) { v->state = ACC; }

int hd_utf8_feed(hd_utf8_t *v, const uint8_t *p, size_t n) {
  uint32_t s = v->state;
  size_t i = 0;
  while (i < n && s != REJ) {
    if (s == ACC) {
      uint64_t w;
      while (n - i >= 8 && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080ull))) i += 8;
      if (i == n) break;
    }
    s = next[s + cls[p[i++]]];
  }
  v->state = s;
  return s == REJ ? HD_EUTF8 : 0;
}

int hd_utf8_finish(const hd_utf8_t *v) { return v->state == ACC ? 0 : HD_EUTF8; }

int hd_utf8_validate(const uint8_t *p, size_t n) {
  hd_utf8_t v;
  hd_utf8_init(&v);
  return hd_utf8_feed(&v, p, n) ? HD_EUTF8 : hd_utf8_finish(&v);
}
