/* Socket.IO connection state recovery across the nodes of a cluster, in Redis (the cluster part of
 * delivery/recovery.h; docs/cluster-recovery.md):
 *   - every broadcast a Herald node publishes (not volatile, no acks) is appended by that node, once,
 *     to the stream `<prefix>#herald#recovery#<nsp>` (XADD MAXLEN ~ max_packets, on the adapter's
 *     command connection just before its PUBLISH), its fields: o (the offset, decimal), t (ms), e
 *     (event), a (JSON arguments), r / x (JSON arrays of hub room keys, except keys), b (binary
 *     attachments, each a 4-byte big-endian length and its bytes); the stream expires window_ms
 *     after its last write (PEXPIRE at most once a second per namespace);
 *   - a dropped socket's session is `SET <prefix>#herald#session#<pid> {id,sub,nsp,rooms} PX window`;
 *   - taking it back is GETDEL, then one script that walks the stream back from its end to the
 *     client's offset (cost: the entries after it) and returns them, or nil when the offset is gone.
 * Every call runs its Redis command on shard 0's loop (the adapter's) and answers through the
 * caller's mailbox; nothing blocks. */
#ifndef HD_REDIS_RECOVERY_H
#define HD_REDIS_RECOVERY_H

#include <stdint.h>

#include "core/mailbox.h"
#include "delivery/recovery.h"
#include "hub/adapter.h"

/* The cluster part of recovery on redis (a Redis adapter, borrowed), running its commands from
 * mailbox (shard 0's, the adapter's loop), keys under prefix. NULL when out of memory. */
hd_recovery_cluster_t *hd_redis_recovery_new(hd_adapter_t *redis, hd_mailbox_t *mailbox, const char *prefix,
                                             uint64_t window_ms, uint32_t max_packets);
/* Frees it once the loops have ended. */
void hd_redis_recovery_free(hd_recovery_cluster_t *c);

#endif
