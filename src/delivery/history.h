/* Topic sequences and history (a delivery guarantee) of a single node: every message published to
 * a topic gets the topic's next sequence, strictly increasing and gap-free whichever shard
 * publishes, and the last `count` of them (younger than max_age_ms) stay replayable, while all kept
 * messages together stay under a byte bound (the node's oldest go first). Shared by the shards of a
 * node: the hub appends under its publish lock; subscribers read under this module's own lock.
 * Sequences start at the process start time in ms x 1000, so they keep increasing across restarts
 * (below 2^53). A topic nobody holds (no subscription) whose history is empty is forgotten: at
 * once when its last holder releases it, else after a while (checked every 10 s on a keep or
 * append); made again, it starts above every sequence a forgotten topic had, so a topic's sequences
 * never go back. (In a cluster, Redis keeps them:
 * cluster/redis_topics.h.) */
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
/* Bounds the bytes of every kept message together (0 = no bound; roughly: message, arguments and
 * one encoded frame each); past it the node's oldest kept messages are dropped. */
void hd_history_set_max_bytes(hd_history_t *h, size_t max_bytes);
/* A subscription to topic came (kept from now on, as hd_history_keep) / went: a topic no one holds
 * any more whose history is empty is forgotten at once (one emptied later, by the sweep). hold: 0
 * or HD_ENOMEM. */
int hd_history_hold(hd_history_t *h, const char *topic);
void hd_history_release(hd_history_t *h, const char *topic);
/* From now on (on) kept messages also wait for hd_history_take_unsaved: the node saves them. */
void hd_history_set_saving(hd_history_t *h, bool on);
/* Hands over the kept messages appended since the last call, oldest first: *out (malloc'd, with a
 * reference to each: the caller releases both) and *n; *lost when some could not wait (over 100,000
 * or out of memory). */
void hd_history_take_unsaved(hd_history_t *h, hd_hub_msg_t ***out, size_t *n, bool *lost);
/* Puts back a message kept before a restart (msg->seq and rooms set; per topic in sequence order,
 * before any publish): its topic keeps its history from then on. clean: everything given before the
 * stop was saved, so the topic goes on from msg's sequence without a gap; else it goes on above
 * both and replays reaching back before the restart are not complete (the last messages before a
 * crash may be missing). 0, HD_EINVAL, HD_ENOMEM. */
int hd_history_restore(hd_history_t *h, hd_hub_msg_t *msg, bool clean);
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
/* Bytes of the kept messages (as counted for the bound). */
size_t hd_history_bytes(hd_history_t *h);

#endif
