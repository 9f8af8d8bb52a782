/* The local adapter: delivers a publish on every shard of this node through the shards' mailboxes
 * (the publishing shard's share too, so each shard sees messages in id order), gathers per-shard
 * delivery counts back to the publishing shard, applies membership requests on every shard and
 * gathers member descriptions (fetchSockets) and room keys (allRooms). A single node has no other
 * node: serverSideEmit goes nowhere and its answers (none) are complete at once. */
#ifndef HD_LOCAL_ADAPTER_H
#define HD_LOCAL_ADAPTER_H

#include "core/mailbox.h"
#include "hub/adapter.h"

/* A local adapter for shard_count shards; NULL when out of memory. */
hd_adapter_t *hd_local_adapter_new(uint32_t shard_count);
/* Registers shard i's hub and mailbox (before any publish). */
void hd_local_adapter_attach(hd_adapter_t *a, uint32_t i, hd_hub_t *hub, hd_mailbox_t *mailbox);

#endif
