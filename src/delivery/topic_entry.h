/* A topic message as one JSON text, for where topic history is kept outside the process (Redis
 * streams in a cluster, the store on a single node): {"s":seq,"m":messageId,"t":topic,"k":roomKey?,
 * "y":type?,"e":event,"o":"offset"?,"ts":ms,"a":"[data]"} — `k` the topic with its params when
 * there are any, `y` the envelope type when it differs from the event, `o` the publisher's Socket.IO
 * recovery offset in a cluster (hd_hub_msg_t.cluster_offset, decimal, as a string: it may not fit a
 * signed 64-bit JSON integer), `a` the JSON array of the arguments as a string (kept byte for byte). */
#ifndef HD_TOPIC_ENTRY_H
#define HD_TOPIC_ENTRY_H

#include <stddef.h>

#include "core/buf.h"
#include "hub/hub.h"

/* Appends msg's entry to out; without its sequence ("s") when with_seq is false (Redis puts it in
 * front). 0 or HD_ENOMEM. */
int hd_topic_entry_encode(const hd_hub_msg_t *msg, bool with_seq, hd_sbuf_t *out);
/* A new message (refs 1; HD_MSG_SEQUENCED | HD_MSG_REMOTE, its sequence, time and message id set,
 * never published yet) from an entry, made on hub's node; NULL when the text is not an entry. */
hd_hub_msg_t *hd_topic_entry_decode(hd_hub_t *hub, const char *text, size_t len);

#endif
