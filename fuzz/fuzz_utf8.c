/* Fuzzes the UTF-8 validator: one-shot, byte-by-byte and chunked feeding (chunk size from the
 * first byte) must agree, and chunked feeding must fail in the chunk holding the first bad byte. */
#include <stdlib.h>

#include "core/error.h"
#include "net/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size) return 0;
  size_t step = data[0] % 16 + 1;
  data++, size--;
  int whole = hd_utf8_validate(data, size);

  hd_utf8_t v;
  hd_utf8_init(&v);
  size_t bad = size; /* index of the first bad byte, or size */
  for (size_t i = 0; i < size && bad == size; i++)
    if (hd_utf8_feed(&v, data + i, 1)) bad = i;
  int bytewise = bad < size ? HD_EUTF8 : hd_utf8_finish(&v);

  hd_utf8_init(&v);
  int chunked = 0;
  for (size_t i = 0; i < size && !chunked; i += step) {
    size_t n = size - i < step ? size - i : step;
    if ((chunked = hd_utf8_feed(&v, data + i, n)) && (bad < i || bad >= i + n)) abort();
  }
  if (!chunked) chunked = hd_utf8_finish(&v);
  if (whole != bytewise || whole != chunked) abort();
  return 0;
}
