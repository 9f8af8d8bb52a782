/* Random identifiers (see id.h). */
#include "core/id.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void hd_id_random(char *out, size_t len) {
  unsigned char raw[64];
  while (len) {
    size_t n = len < sizeof raw ? len : sizeof raw;
    if (RAND_bytes(raw, (int)n) != 1) abort(); /* no entropy: nothing safe to hand out */
    for (size_t i = 0; i < n; i++) *out++ = alphabet[raw[i] & 63];
    len -= n;
  }
  *out = '\0';
}

char hd_id_char(unsigned v) { return alphabet[v & 63]; }

int hd_id_value(char c) {
  const char *p = c ? strchr(alphabet, c) : NULL;
  return p ? (int)(p - alphabet) : -1;
}
