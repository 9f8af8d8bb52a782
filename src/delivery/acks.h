/* Acknowledgements and redelivery (a delivery guarantee), per connection: the messages sent that
 * wait for the client's ack, in order, each resent after the ack timeout up to a retry limit. What
 * is still unacknowledged after that (or beyond `max` in flight, or when the connection goes) is
 * left to the durable inbox, which has held it since its delivery. One connection's tracker: used on
 * its shard's thread only. */
#ifndef HD_ACKS_H
#define HD_ACKS_H

#include <stdbool.h>
#include <stdint.h>

#include "hub/hub.h"

typedef struct hd_unacked hd_unacked_t;

typedef struct {
  hd_unacked_t *head, *tail;
  uint32_t count;
} hd_acks_t;

/* Waits for the ack of msg (a reference is taken) until due_ms; beyond max waiting, the oldest is
 * forgotten. 0 or HD_ENOMEM. */
int hd_acks_track(hd_acks_t *a, hd_hub_msg_t *msg, uint64_t due_ms, uint32_t max);
/* The client acknowledged message_id: true when it was waiting. */
bool hd_acks_ack(hd_acks_t *a, const char *message_id);
/* True when message_id waits for its ack. */
bool hd_acks_waiting(const hd_acks_t *a, const char *message_id);
/* For every message due at now_ms: resend(msg, arg) and wait timeout_ms more, or forget it once it
 * was sent 1 + retries times. */
void hd_acks_due(hd_acks_t *a, uint64_t now_ms, uint64_t timeout_ms, uint32_t retries,
                 void (*resend)(hd_hub_msg_t *msg, void *arg), void *arg);
/* Forgets everything (the connection is going). */
void hd_acks_clear(hd_acks_t *a);

#endif
