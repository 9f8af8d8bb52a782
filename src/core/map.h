/* A string-keyed hash map (open addressing, linear probing, backward-shift deletion). Keys are
 * not copied: each key must live as long as its entry (typically it points into the value). */
#ifndef HD_MAP_H
#define HD_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *key;
  void *value;
  uint32_t klen;
  uint32_t hash; /* 0: an empty slot (24 bytes a slot: maps of sessions and rooms hold one per connection) */
} hd_map_entry_t;

typedef struct {
  hd_map_entry_t *slots;
  size_t cap;   /* power of two, or 0 */
  size_t count;
} hd_map_t;

/* The value stored under key, or NULL. */
void *hd_map_get(const hd_map_t *m, const char *key, size_t klen);
/* Stores value under key (replacing any previous value). 0, HD_ENOMEM or HD_EINVAL (a key of 4 GiB or more). */
int hd_map_put(hd_map_t *m, const char *key, size_t klen, void *value);
/* Removes key; returns its value, or NULL when absent. */
void *hd_map_del(hd_map_t *m, const char *key, size_t klen);
/* Calls fn for every entry (do not modify the map meanwhile). */
void hd_map_each(const hd_map_t *m, void (*fn)(void *value, void *arg), void *arg);
/* Frees the table (not the values). */
void hd_map_free(hd_map_t *m);

#endif
