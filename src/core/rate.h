/* A token bucket: `rate` tokens per second refill a bucket of `burst`, each event takes one. Plain
 * data, no clock of its own (the caller passes now, in ms), one owner (not thread-safe). */
#ifndef HD_RATE_H
#define HD_RATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  double tokens;
  uint64_t refill_ms;
  uint32_t rate, burst;
} hd_rate_t;

/* A full bucket of burst tokens refilled at rate per second from now. */
void hd_rate_init(hd_rate_t *r, uint32_t rate, uint32_t burst, uint64_t now_ms);
/* Refills up to now, then takes one token: true when there was one (the event may proceed). */
bool hd_rate_take(hd_rate_t *r, uint64_t now_ms);

#endif
