/* The cluster's topic log (delivery/topic_log.h) on Redis: JSON-protocol topic sequences and history
 * shared by every Herald node of a cluster. A publish is ONE Lua script run by Redis: INCR the
 * topic's counter, XADD the message to the topic's stream (MAXLEN ~ --topic-history, older than
 * --topic-history-age trimmed, the stream expiring with it), PUBLISH it on the Herald-only channel
 * `<prefix>-herald#topics#` (no socket.io node listens there). Every node, the publisher included,
 * delivers a message when it comes back on that channel, so every subscriber sees Redis's order;
 * a replay (`lastSequence`) is an XRANGE of the stream by another script, on any node. Redis runs on
 * shard 0's loop (through the Redis adapter's connections); other shards post to its mailbox.
 * Redis down: publishes are delivered on this node only, without a sequence, and subscribes are
 * answered without one (docs/cluster-json.md). */
#ifndef HD_REDIS_TOPICS_H
#define HD_REDIS_TOPICS_H

#include <stdint.h>
#include <uv.h>

#include "core/mailbox.h"
#include "delivery/topic_log.h"
#include "hub/adapter.h"

/* A topic log on the Redis adapter redis (borrowed; subscribes its channel, so call before the
 * adapter starts), keys and channel under prefix, keeping max_len messages per topic (0: sequences
 * only) for max_age_ms (0: no age limit); runs on loop/mailbox (shard 0's). NULL when out of memory. */
hd_topic_log_t *hd_redis_topics_new(hd_adapter_t *redis, const char *prefix, uint32_t max_len, uint64_t max_age_ms,
                                    uv_loop_t *loop, hd_mailbox_t *mailbox);
/* Sets the hub that delivers what comes back from Redis (shard 0's) and starts the timer (loop's
 * thread). */
void hd_redis_topics_start(hd_topic_log_t *log, hd_hub_t *hub);
/* Stops the timer (loop's thread); publishes still waiting are delivered on this node. */
void hd_redis_topics_stop(hd_topic_log_t *log);

#endif
