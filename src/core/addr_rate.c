/* Per-address token buckets (see addr_rate.h). */
#include "core/addr_rate.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/rate.h"

#define ADDR_MAX 64

typedef struct {
  char addr[ADDR_MAX]; /* "" when the slot was never used */
  hd_rate_t bucket;
} slot_t;

struct hd_addr_rate {
  uv_mutex_t mu;
  uint32_t rate, burst;
  size_t count;
  slot_t slots[];
};

hd_addr_rate_t *hd_addr_rate_new(size_t slots, uint32_t rate, uint32_t burst) {
  if (!slots) slots = 1;
  hd_addr_rate_t *r = calloc(1, sizeof(*r) + slots * sizeof(slot_t));
  if (!r) return NULL;
  if (uv_mutex_init(&r->mu)) {
    free(r);
    return NULL;
  }
  r->rate = rate;
  r->burst = burst;
  r->count = slots;
  return r;
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

bool hd_addr_rate_take(hd_addr_rate_t *r, const char *addr, uint64_t now_ms) {
  slot_t *s = &r->slots[fnv1a(addr) % r->count];
  uv_mutex_lock(&r->mu);
  if (strncmp(s->addr, addr, ADDR_MAX - 1)) {
    /* another address holds the slot: its bucket is shared until it has refilled (idle), then ours */
    uint64_t quiet = now_ms > s->bucket.refill_ms ? now_ms - s->bucket.refill_ms : 0; /* threads' clocks differ a little */
    bool idle = !s->addr[0] || (r->rate && quiet * r->rate >= (uint64_t)r->burst * 1000);
    if (idle) {
      strncpy(s->addr, addr, ADDR_MAX - 1);
      s->addr[ADDR_MAX - 1] = '\0';
      hd_rate_init(&s->bucket, r->rate, r->burst, now_ms);
    }
  }
  bool ok = hd_rate_take(&s->bucket, now_ms);
  uv_mutex_unlock(&r->mu);
  return ok;
}

void hd_addr_rate_free(hd_addr_rate_t *r) {
  if (!r) return;
  uv_mutex_destroy(&r->mu);
  free(r);
}
