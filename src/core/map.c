/* Open-addressing string map (see map.h). */
#include "core/map.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* FNV-1a, 64 bit, folded to 32. */
static uint32_t hash_key(const char *key, size_t len) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
  return (uint32_t)(h ^ (h >> 32)) | 1; /* never 0: 0 marks an empty slot */
}

static hd_map_entry_t *find(const hd_map_t *m, const char *key, size_t klen, uint32_t h) {
  if (!m->cap) return NULL;
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    hd_map_entry_t *e = &m->slots[i];
    if (!e->hash) return NULL;
    if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) return e;
  }
}

void *hd_map_get(const hd_map_t *m, const char *key, size_t klen) {
  hd_map_entry_t *e = find(m, key, klen, hash_key(key, klen));
  return e ? e->value : NULL;
}

static void insert(hd_map_entry_t *slots, size_t cap, hd_map_entry_t entry) {
  size_t i = entry.hash & (cap - 1);
  while (slots[i].hash) i = (i + 1) & (cap - 1);
  slots[i] = entry;
}

int hd_map_put(hd_map_t *m, const char *key, size_t klen, void *value) {
  if (klen > UINT32_MAX) return HD_EINVAL;
  uint32_t h = hash_key(key, klen);
  hd_map_entry_t *e = find(m, key, klen, h);
  if (e) {
    e->key = key;
    e->value = value;
    return 0;
  }
  if ((m->count + 1) * 4 > m->cap * 3) { /* keep load under 3/4 */
    size_t cap = m->cap ? m->cap * 2 : 16;
    hd_map_entry_t *slots = calloc(cap, sizeof(*slots));
    if (!slots) return HD_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
      if (m->slots[i].hash) insert(slots, cap, m->slots[i]);
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
  }
  insert(m->slots, m->cap, (hd_map_entry_t){key, value, (uint32_t)klen, h});
  m->count++;
  return 0;
}

void *hd_map_del(hd_map_t *m, const char *key, size_t klen) {
  hd_map_entry_t *e = find(m, key, klen, hash_key(key, klen));
  if (!e) return NULL;
  void *value = e->value;
  size_t mask = m->cap - 1, hole = (size_t)(e - m->slots);
  /* backward-shift: move later entries of the probe run into the hole */
  for (size_t i = (hole + 1) & mask; m->slots[i].hash; i = (i + 1) & mask) {
    size_t home = m->slots[i].hash & mask;
    if (((i - home) & mask) >= ((i - hole) & mask)) {
      m->slots[hole] = m->slots[i];
      hole = i;
    }
  }
  m->slots[hole] = (hd_map_entry_t){0};
  m->count--;
  return value;
}

void hd_map_each(const hd_map_t *m, void (*fn)(void *value, void *arg), void *arg) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].hash) fn(m->slots[i].value, arg);
}

void hd_map_free(hd_map_t *m) {
  free(m->slots);
  *m = (hd_map_t){0};
}
