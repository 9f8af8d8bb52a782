/* Fuzzes the redis-adapter broadcast decoder: a decoded message, encoded again, must decode to the
 * same uid, namespace, event, arguments, attachments, rooms, except rooms and flags. */
#include <stdlib.h>
#include <string.h>

#include "cluster/redis_codec.h"
#include "core/error.h"

static int same_strv(char **a, uint32_t na, char **b, uint32_t nb) {
  if (na != nb) return 0;
  for (uint32_t i = 0; i < na; i++)
    if (strcmp(a[i], b[i])) return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_redis_bcast_t a, b;
  if (hd_redis_decode_bcast(data, size, &a)) return 0;
  uint8_t *out;
  size_t len;
  if (hd_redis_encode_bcast(&a, &out, &len)) abort();
  if (hd_redis_decode_bcast(out, len, &b)) abort();
  if (strcmp(a.uid, b.uid) || strcmp(a.nsp, b.nsp) || strcmp(a.event, b.event) || strcmp(a.args, b.args) ||
      a.attachment_count != b.attachment_count || !same_strv(a.rooms, a.room_count, b.rooms, b.room_count) ||
      !same_strv(a.except, a.except_count, b.except, b.except_count) || a.flags != b.flags)
    abort();
  for (uint32_t i = 0; i < a.attachment_count; i++)
    if (a.attachments[i]->len != b.attachments[i]->len ||
        memcmp(a.attachments[i]->data, b.attachments[i]->data, a.attachments[i]->len))
      abort();
  free(out);
  hd_redis_bcast_free(&a);
  hd_redis_bcast_free(&b);
  return 0;
}
