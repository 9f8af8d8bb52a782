/* Tables of nodes kept alive by heartbeats in Redis — the node registry (registry.c) and cluster
 * presence (presence_redis.c): a hash `tag -> entry` and a sorted set `tag -> last heartbeat` (ms
 * on Redis's clock). Each keeper runs one Lua script per tick, built from the two pieces below
 * around its own write: the head reads Redis's clock into `now` and removes the nodes silent for
 * longer than ARGV[3] ms; the tail answers {now, flag, tag, seen_ms, entry, ...} for every live
 * node, where `flag` is the keeper's own local variable of that name. */
#ifndef HD_HEARTBEATS_H
#define HD_HEARTBEATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HD_HEARTBEATS_LUA_HEAD                                                                    \
  "local t = redis.call('TIME')\n"                                                                \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
  "local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - tonumber(ARGV[3])))\n" \
  "for _, tag in ipairs(dead) do redis.call('HDEL', KEYS[1], tag); redis.call('ZREM', KEYS[2], tag) end\n"

#define HD_HEARTBEATS_LUA_TAIL                                             \
  "local out = {now, flag}\n"                                              \
  "local seen = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')\n"      \
  "for i = 1, #seen, 2 do\n"                                               \
  "  local v = redis.call('HGET', KEYS[1], seen[i])\n"                     \
  "  if v then out[#out + 1] = seen[i]; out[#out + 1] = seen[i + 1]; out[#out + 1] = v end\n" \
  "end\n"                                                                  \
  "return out\n"

/* One live node as the tail answers it (entry borrowed from the reply: valid during the call). */
typedef struct {
  char tag[4];
  const char *entry;
  size_t len;
  uint64_t age_ms; /* since its last heartbeat, on Redis's clock */
} hd_heartbeat_entry_t;

/* True when reply (a hiredis redisReply) has the tail's shape; its flag in *flag. */
bool hd_heartbeats_reply_ok(const void *reply, long long *flag);
/* The live nodes of a reply that passed hd_heartbeats_reply_ok, at most max of them, into out
 * (entries with a malformed tag or value are skipped). Returns how many. */
size_t hd_heartbeats_entries(const void *reply, hd_heartbeat_entry_t *out, size_t max);

#endif
