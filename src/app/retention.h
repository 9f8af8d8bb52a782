/* Retention: rows older than --retention-notifications-days / --retention-chat-days are pruned in
 * the background, in small batches, by one shard of each node (every --retention-interval ms). */
#ifndef HD_APP_RETENTION_H
#define HD_APP_RETENTION_H

#include <stdatomic.h>

#include "core/buf.h"

struct hd_app;

/* What this node pruned since start (node-wide, read from any shard). */
typedef struct {
  atomic_uint_least64_t notifications, chat_messages, chat_sessions;
  atomic_uint_least64_t rounds;    /* pruning rounds finished */
  atomic_uint_least64_t failures;  /* batches the store refused or failed */
} hd_retention_counts_t;

/* Starts pruning on app's loop when a retention option is set (call on one shard only); 0 or HD_E*. */
int hd_retention_start(struct hd_app *app);
/* Stops pruning (before the app's store handle closes); a batch in flight is answered by the close. */
void hd_retention_stop(struct hd_app *app);
/* Appends the herald_retention_* series to b. */
void hd_retention_metrics(const hd_retention_counts_t *c, hd_sbuf_t *b);

#endif
