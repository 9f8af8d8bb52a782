/* libFuzzer target: the JSON-protocol envelope parser and params keys on arbitrary bytes; a parsed
 * envelope re-encoded and parsed again must keep its type and messageId. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_envelope_t e;
  const char *why;
  if (hd_envelope_parse((const char *)data, size, &e, &why)) return 0;
  hd_sbuf_t key = {0};
  hd_params_key(json_object_get(e.data, "params"), &key);
  hd_sbuf_free(&key);
  char *data_json = e.data ? json_dumps(e.data, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  hd_sbuf_t out = {0};
  if (!hd_envelope_encode(&out, e.type, data_json, 1, e.message_id ? e.message_id : "x", 1, "t", NULL)) {
    hd_envelope_t again;
    if (hd_envelope_parse(out.ptr, out.len, &again, &why)) abort();
    if (strcmp(again.type, e.type) || strcmp(again.message_id, e.message_id ? e.message_id : "x")) abort();
    hd_envelope_free(&again);
  }
  hd_sbuf_free(&out);
  free(data_json);
  hd_envelope_free(&e);
  return 0;
}
