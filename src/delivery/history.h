/* Topic sequences and history (a delivery guarantee): every message published to a topic gets the
 * topic's next sequence, strictly increasing and gap-free whichever shard publishes, and the last
 * `count` of them (younger than max_age_ms) stay replayable. Shared by the shards of a node: the
 * hub appends under its publish lock; subscribers read under this module's own lock. Sequences start
 * at the time the topic is made (at least the process start) in ms x 1000, so they keep increasing
 * across restarts and when a freed topic is made again (below 2^53). */
#ifndef HD_HISTORY_H
#define HD_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/hub.h"

/* A new history keeping `count` messages per topic (0 = sequences only) for at most max_age_ms
 * (0 = no age limit); NULL when out of memory. */
hd_history_t *hd_history_new(uint32_t count, uint64_t max_age_ms);
void hd_history_free(hd_history_t *h);
/* Makes topic a sequenced topic that keeps its history from now on (JSON-protocol topics:
 * subscribed or published to); messages to other rooms get no sequence. 0 or HD_ENOMEM. */
int hd_history_keep(hd_history_t *h, const char *topic);
/* hd_history_keep for a subscriber, who holds the topic: it is not freed while held. 0 or HD_ENOMEM. */
int hd_history_hold(hd_history_t *h, const char *topic);
/* Drops a hold; a topic nobody holds is freed once nothing replayable is left in it (here, or by
 * hd_history_sweep when its messages expire). A topic made again later starts its sequence at the
 * time (ms x 1000), above what it gave before, so sequences still only increase. */
void hd_history_release(hd_history_t *h, const char *topic);
/* Frees the topics nobody holds whose kept messages have all expired; returns how many. */
size_t hd_history_sweep(hd_history_t *h);
/* Gives msg the next sequence of its topic (msg->rooms[0]) and keeps it, when that is a sequenced
 * topic (else msg->seq stays 0). 0. */
int hd_history_append(hd_history_t *h, hd_hub_msg_t *msg);
/* The last sequence given in topic (its starting point when none was). */
uint64_t hd_history_top(hd_history_t *h, const char *topic);
/* Calls fn for each kept message of topic with seq > after_seq, oldest first, that reached
 * member_room (the topic itself or the topic with params); fn runs outside the lock. *top gets the
 * topic's last sequence at the time of the read. Returns true when the history reaches back far
 * enough (nothing after after_seq was dropped). */
bool hd_history_replay(hd_history_t *h, const char *topic, const char *member_room, uint64_t after_seq,
                       void (*fn)(hd_hub_msg_t *msg, void *arg), void *arg, uint64_t *top);
/* Topics known. */
size_t hd_history_topic_count(hd_history_t *h);

#endif
