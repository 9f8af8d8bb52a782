/* The JSON protocol's durable inbox kept in the store (notifications put at delivery, removed at
 * the ack, taken by the user's next connection), installed as its hd_jp_inbox_t. */
#ifndef HD_JSON_INBOX_H
#define HD_JSON_INBOX_H

#include <stdint.h>

#include "proto/json_proto.h"
#include "store/store.h"

typedef struct {
  hd_store_t *store; /* this shard's handle */
  uint32_t max;      /* notifications kept per user (0: no inbox) */
} hd_json_inbox_t;

/* The interface backed by in (borrowed; all NULL when in->max is 0). */
hd_jp_inbox_t hd_json_inbox(hd_json_inbox_t *in);

#endif
