/* Acknowledgements and redelivery for one connection: the items sent and not yet acknowledged,
 * oldest first, each resent every timeout_ms until acknowledged or sent 1 + retries times, then
 * given up (released). At most max are in flight: tracking one more releases the oldest. Items are
 * opaque (the JSON protocol tracks hub messages); the tracker holds one reference to each and gives
 * it back through limits->release. One owner (the connection's loop thread): not thread-safe. */
#ifndef HD_ACKS_H
#define HD_ACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t timeout_ms;          /* between sends of an unacknowledged item */
  uint32_t retries;             /* resends before giving up */
  uint32_t max;                 /* items in flight per connection */
  void (*release)(void *item);  /* drops the tracker's reference (NULL: nothing to do) */
} hd_acks_limits_t;

typedef struct hd_acks_entry hd_acks_entry_t;

typedef struct {
  const hd_acks_limits_t *limits; /* shared, outlives the tracker */
  hd_acks_entry_t *head, *tail;
  uint32_t count;
} hd_acks_t;

/* Called for each item due again; arg as given to hd_acks_due. */
typedef void (*hd_acks_resend_fn)(void *item, void *arg);

/* An empty tracker under limits. */
void hd_acks_init(hd_acks_t *a, const hd_acks_limits_t *limits);
/* Tracks item (its reference passes to the tracker) under id, a string that lives as long as the
 * item, sent once at now. Beyond limits->max the oldest is released. 0, or HD_ENOMEM (item released). */
int hd_acks_track(hd_acks_t *a, const char *id, void *item, uint64_t now_ms);
/* Acknowledges id: true when it was in flight (then released). */
bool hd_acks_ack(hd_acks_t *a, const char *id);
/* True when id is in flight. */
bool hd_acks_pending(const hd_acks_t *a, const char *id);
/* Calls resend for every item whose time has come and sets its next time; releases those sent
 * 1 + retries times already. Returns how many were given up. */
size_t hd_acks_due(hd_acks_t *a, uint64_t now_ms, hd_acks_resend_fn resend, void *arg);
/* Releases every item (the tracker stays usable). */
void hd_acks_clear(hd_acks_t *a);

#endif
