/* Duplicate suppression of client messageIds: per client key (user + clientId), a ring of the last
 * `window` ids it had processed, shared by the client's successive connections and kept keep_ms
 * after the last one closed, so a frame resent after a reconnect is not processed twice. One set
 * may serve several threads (shards): every function locks the set's own mutex. */
#ifndef HD_DEDUPE_H
#define HD_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HD_DEDUPE_KEY_MAX 207 /* bytes of a client key */

typedef struct hd_dedupe hd_dedupe_t;
typedef struct hd_dedupe_client hd_dedupe_client_t;

/* An empty set remembering window (>= 1) ids per client for keep_ms after its release; NULL when
 * out of memory. */
hd_dedupe_t *hd_dedupe_new(uint32_t window, uint64_t keep_ms);
/* Frees the set and every client window (none may be in use any more). */
void hd_dedupe_free(hd_dedupe_t *d);
/* The window of key (created on first use), held until hd_dedupe_release; NULL when out of memory
 * or key is longer than HD_DEDUPE_KEY_MAX. */
hd_dedupe_client_t *hd_dedupe_acquire(hd_dedupe_t *d, const char *key);
/* True when the client processed id already (false for a NULL client). */
bool hd_dedupe_seen(hd_dedupe_t *d, hd_dedupe_client_t *c, const char *id);
/* Records id as processed (the oldest of a full window goes); nothing for a NULL client. */
void hd_dedupe_remember(hd_dedupe_t *d, hd_dedupe_client_t *c, const char *id);
/* Gives back a window acquired earlier (NULL: nothing), at now_ms (any monotonic ms clock). */
void hd_dedupe_release(hd_dedupe_t *d, hd_dedupe_client_t *c, uint64_t now_ms);
/* Frees the windows released longer than keep_ms before now_ms and held by nobody; returns how many. */
size_t hd_dedupe_expire(hd_dedupe_t *d, uint64_t now_ms);
/* How many client windows the set holds. */
size_t hd_dedupe_count(hd_dedupe_t *d);

#endif
