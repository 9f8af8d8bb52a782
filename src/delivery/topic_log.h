/* The topic log: where a JSON-protocol topic publish gets its sequence and where a subscriber's
 * `lastSequence` replay is read — a struct of functions with two implementations. The local one
 * (topic_log.c) is this node's in-memory history (delivery/history.h) and answers at once; the
 * cluster one (cluster/redis_topics.c) takes sequences and history from Redis, so every node sees
 * one order and any node can replay, and answers later. Both answer on the asking shard's thread. */
#ifndef HD_TOPIC_LOG_H
#define HD_TOPIC_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/hub.h"

typedef struct hd_topic_log hd_topic_log_t;

/* What a read found: status 0, or HD_E* when the log could not be asked (then top is 0 and unknown,
 * no messages). top: the topic's last sequence at the time of the read. complete: the messages
 * after the requested sequence are all there (the history reaches back far enough). msgs: the
 * replayed messages (seq > after, oldest first, that reached the member's room), borrowed for the
 * call (take a reference to keep one). */
typedef struct {
  int status;
  uint64_t top;
  bool complete;
  hd_hub_msg_t **msgs;
  size_t count;
} hd_topic_read_t;

typedef void (*hd_topic_read_fn)(void *arg, const hd_topic_read_t *result);

typedef struct {
  /* Publishes msg (HD_MSG_SEQUENCED, rooms[0] the topic) from shard `from` to every subscriber it
   * reaches; on_count as for hd_hub_publish (its msg carries the sequence given). 0 or HD_E* (then
   * on_count is not called). */
  int (*publish)(hd_topic_log_t *log, hd_hub_t *from, hd_hub_msg_t *msg, hd_hub_count_fn on_count, void *arg);
  /* Reads topic's last sequence and, when replay is set, the messages after `after` that reached
   * member_room (topic itself or topic with params); makes topic a sequenced one that keeps its
   * history. fn runs on from's thread, possibly before this returns. 0 or HD_E* (fn not called). */
  int (*read)(hd_topic_log_t *log, hd_hub_t *from, const char *topic, const char *member_room, bool replay,
              uint64_t after, hd_topic_read_fn fn, void *arg);
  /* Optional (any shard): a subscription to topic came / went on this node; the local log forgets
   * a topic no one holds whose history is empty. */
  void (*hold)(hd_topic_log_t *log, const char *topic);
  void (*release)(hd_topic_log_t *log, const char *topic);
  void (*free)(hd_topic_log_t *log);
} hd_topic_log_ops_t;

struct hd_topic_log {
  const hd_topic_log_ops_t *ops;
};

/* The single-node topic log over history (borrowed: outlives the log). NULL when out of memory. */
hd_topic_log_t *hd_topic_log_local_new(hd_history_t *history);

#endif
