/* Reading the answer of a heartbeat table's script (see heartbeats.h). */
#include "cluster/heartbeats.h"

#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <hiredis.h>
#pragma GCC diagnostic pop

bool hd_heartbeats_reply_ok(const void *reply, long long *flag) {
  const redisReply *rep = reply;
  if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
      rep->element[1]->type != REDIS_REPLY_INTEGER)
    return false;
  *flag = rep->element[1]->integer;
  return true;
}

size_t hd_heartbeats_entries(const void *reply, hd_heartbeat_entry_t *out, size_t max) {
  const redisReply *rep = reply;
  long long now = rep->element[0]->integer;
  size_t n = 0;
  for (size_t i = 2; i + 2 < rep->elements && n < max; i += 3) {
    const redisReply *tag = rep->element[i], *seen = rep->element[i + 1], *value = rep->element[i + 2];
    if (tag->type != REDIS_REPLY_STRING || tag->len != 3 || seen->type != REDIS_REPLY_STRING ||
        value->type != REDIS_REPLY_STRING)
      continue;
    hd_heartbeat_entry_t *e = &out[n++];
    memcpy(e->tag, tag->str, 3);
    e->tag[3] = '\0';
    e->entry = value->str;
    e->len = value->len;
    long long at = strtoll(seen->str, NULL, 10);
    e->age_ms = now > at ? (uint64_t)(now - at) : 0;
  }
  return n;
}
