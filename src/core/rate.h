/* A token bucket: `rate` tokens per second up to `burst`, one taken per event. */
#ifndef HD_RATE_H
#define HD_RATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  double tokens;
  uint64_t refill_ms;
} hd_rate_t;

/* A full bucket at now_ms. */
void hd_rate_init(hd_rate_t *r, uint32_t burst, uint64_t now_ms);
/* Refills for the time since the last call, then takes one token: true, or false when empty. */
bool hd_rate_take(hd_rate_t *r, uint32_t rate, uint32_t burst, uint64_t now_ms);

#endif
