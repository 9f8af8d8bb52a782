/* Token buckets per client address, shared by the threads of a node (a mutex inside): a fixed
 * table of slots chosen by the address's hash, so its memory is bounded whatever the number of
 * addresses. Two addresses whose hashes pick one slot share its bucket while both are active; the
 * slot passes to a new address once its bucket has refilled (the old one was idle). */
#ifndef HD_ADDR_RATE_H
#define HD_ADDR_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hd_addr_rate hd_addr_rate_t;

/* A table of `slots` buckets of `burst` tokens refilled at `rate` per second. NULL on OOM. */
hd_addr_rate_t *hd_addr_rate_new(size_t slots, uint32_t rate, uint32_t burst);
/* Takes one token from addr's bucket at now_ms: true when there was one (any thread). */
bool hd_addr_rate_take(hd_addr_rate_t *r, const char *addr, uint64_t now_ms);
void hd_addr_rate_free(hd_addr_rate_t *r);

#endif
