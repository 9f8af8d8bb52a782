/* Duplicate suppression (a delivery guarantee): the message ids a client (identity + client id) had
 * processed, kept per client key in a window of the last `window` ids that outlives its connections
 * for keep_ms, so a frame resent after a reconnect — on any shard — is acknowledged again but not
 * processed twice. Shared by the shards of a node: every call takes the module's lock. */
#ifndef HD_DEDUPE_H
#define HD_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hd_dedupe hd_dedupe_t;
typedef struct hd_dedupe_window hd_dedupe_window_t;

/* A new store of windows of `window` ids each, kept keep_ms after their last connection; NULL on OOM. */
hd_dedupe_t *hd_dedupe_new(uint32_t window, uint64_t keep_ms);
void hd_dedupe_free(hd_dedupe_t *d);
/* The window of client key (created on first use), held by the caller until hd_dedupe_release;
 * NULL when out of memory (then nothing is suppressed). */
hd_dedupe_window_t *hd_dedupe_acquire(hd_dedupe_t *d, const char *key);
/* Drops a hold; the window is kept keep_ms after its last one. */
void hd_dedupe_release(hd_dedupe_t *d, hd_dedupe_window_t *w);
/* True when id was remembered in w. */
bool hd_dedupe_seen(hd_dedupe_t *d, hd_dedupe_window_t *w, const char *id);
/* Remembers id in w (the oldest id leaves a full window). */
void hd_dedupe_remember(hd_dedupe_t *d, hd_dedupe_window_t *w, const char *id);
/* Frees the windows nobody holds and unused for longer than keep_ms. */
void hd_dedupe_expire(hd_dedupe_t *d);
/* Windows kept. */
size_t hd_dedupe_count(hd_dedupe_t *d);

#endif
