/* The JSON protocol's durable inbox kept in the store (notifications put at delivery, removed at
 * the ack, taken by the user's next connection), installed as its hd_jp_inbox_t. The puts of one
 * loop iteration — a publish to many users — go to the store as one request (one transaction),
 * just before the iteration's writes go out, so a notification is stored before the client can
 * ack it; a take sends what is pending first. */
#ifndef HD_JSON_INBOX_H
#define HD_JSON_INBOX_H

#include <stdint.h>

#include "proto/json_proto.h"
#include "store/store.h"

typedef struct {
  hd_store_t *store;               /* this shard's handle */
  uint32_t max;                    /* notifications kept per user (0: no inbox) */
  hd_store_inbox_entry_t *pending; /* puts of this iteration (owned copies) */
  size_t count, cap;
  uint64_t batches, entries;       /* sent since start */
} hd_json_inbox_t;

/* The interface backed by in (borrowed; all NULL when in->max is 0). */
hd_jp_inbox_t hd_json_inbox(hd_json_inbox_t *in);
/* Sends the pending puts as one store request (the server's flush hook; arg is the inbox). */
void hd_json_inbox_flush(void *arg);
/* Sends what is pending and frees the buffer (before the store handle closes). */
void hd_json_inbox_close(hd_json_inbox_t *in);

#endif
