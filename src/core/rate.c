/* Token bucket (see rate.h). */
#include "core/rate.h"

void hd_rate_init(hd_rate_t *r, uint32_t rate, uint32_t burst, uint64_t now_ms) {
  *r = (hd_rate_t){.tokens = burst, .refill_ms = now_ms, .rate = rate, .burst = burst};
}

bool hd_rate_take(hd_rate_t *r, uint64_t now_ms) {
  if (now_ms > r->refill_ms) r->tokens += (double)(now_ms - r->refill_ms) * r->rate / 1000.0;
  if (r->tokens > r->burst) r->tokens = r->burst;
  if (now_ms > r->refill_ms) r->refill_ms = now_ms;
  if (r->tokens < 1) return false;
  r->tokens -= 1;
  return true;
}
