/* Client keys of the JSON protocol across shards (see json_clients.h). */
#include "proto/json_clients.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/map.h"
#include "proto/json_proto.h"

typedef struct {
  uint32_t shard;
  uint64_t gen;
  char key[];
} holder_t;

typedef struct {
  hd_jp_server_t *jp;
  hd_mailbox_t *mailbox;
} shard_t;

typedef struct {
  uint32_t keys;    /* keys held by the user */
  char user[];
} user_t;

struct hd_jp_clients {
  uv_mutex_t mu;
  hd_map_t holders; /* key -> holder_t (under mu) */
  hd_map_t users;   /* user id (the key up to 0x1f) -> user_t (under mu) */
  uint64_t next_gen;
  uint32_t count;
  shard_t shards[];
};

hd_jp_clients_t *hd_jp_clients_new(uint32_t shard_count) {
  hd_jp_clients_t *c = calloc(1, sizeof(*c) + shard_count * sizeof(shard_t));
  if (!c) return NULL;
  if (uv_mutex_init(&c->mu)) {
    free(c);
    return NULL;
  }
  c->count = shard_count;
  return c;
}

static void holder_free(void *value, void *arg) { free(value); }

void hd_jp_clients_free(hd_jp_clients_t *c) {
  if (!c) return;
  hd_map_each(&c->holders, holder_free, NULL);
  hd_map_free(&c->holders);
  hd_map_each(&c->users, holder_free, NULL);
  hd_map_free(&c->users);
  uv_mutex_destroy(&c->mu);
  free(c);
}

void hd_jp_clients_attach(hd_jp_clients_t *c, uint32_t shard, hd_jp_server_t *jp, hd_mailbox_t *mailbox) {
  if (shard < c->count) c->shards[shard] = (shard_t){jp, mailbox};
}

typedef struct {
  hd_jp_server_t *jp;
  uint64_t gen;
  char key[];
} replace_t;

static void run_replace(void *arg, bool cancelled) {
  replace_t *r = arg;
  if (!cancelled) hd_jp_replace(r->jp, r->key, r->gen);
  free(r);
}

/* Length of the user part of key (up to 0x1f). */
static size_t user_len(const char *key, size_t len) {
  const char *sep = memchr(key, 0x1f, len);
  return sep ? (size_t)(sep - key) : len;
}

/* The user of key, created when asked; the caller holds the lock. */
static user_t *user_of(hd_jp_clients_t *c, const char *key, size_t len, bool create) {
  size_t ulen = user_len(key, len);
  user_t *u = hd_map_get(&c->users, key, ulen);
  if (u || !create || !(u = calloc(1, sizeof(*u) + ulen + 1))) return u;
  memcpy(u->user, key, ulen);
  if (hd_map_put(&c->users, u->user, ulen, u)) {
    free(u);
    return NULL;
  }
  return u;
}

int hd_jp_clients_claim(hd_jp_clients_t *c, const char *key, uint32_t shard, uint32_t max_per_user, uint64_t *gen_out) {
  size_t len = strlen(key);
  *gen_out = 0;
  uv_mutex_lock(&c->mu);
  holder_t *h = hd_map_get(&c->holders, key, len);
  if (!h) { /* a new client of its user: within the user's cap */
    user_t *u = user_of(c, key, len, true);
    if (!u || (max_per_user && u->keys >= max_per_user)) {
      if (u && !u->keys) {
        hd_map_del(&c->users, u->user, strlen(u->user));
        free(u);
      }
      uv_mutex_unlock(&c->mu);
      return u ? HD_ERANGE : HD_ENOMEM;
    }
    if ((h = calloc(1, sizeof(*h) + len + 1))) {
      memcpy(h->key, key, len + 1);
      if (hd_map_put(&c->holders, h->key, len, h)) {
        free(h);
        h = NULL;
      }
    }
    if (h) u->keys++;
    else if (!u->keys) {
      hd_map_del(&c->users, u->user, strlen(u->user));
      free(u);
    }
  }
  uint32_t prev_shard = h ? h->shard : 0;
  uint64_t prev_gen = h ? h->gen : 0, gen = 0;
  if (h) {
    h->shard = shard;
    h->gen = gen = ++c->next_gen;
  }
  uv_mutex_unlock(&c->mu);
  if (prev_gen && prev_shard != shard && prev_shard < c->count && c->shards[prev_shard].jp) {
    replace_t *r = malloc(sizeof(*r) + len + 1);
    if (r) {
      r->jp = c->shards[prev_shard].jp;
      r->gen = prev_gen;
      memcpy(r->key, key, len + 1);
      if (hd_mailbox_post(c->shards[prev_shard].mailbox, run_replace, r)) free(r);
    }
  }
  *gen_out = gen;
  return gen ? 0 : HD_ENOMEM;
}

void hd_jp_clients_release(hd_jp_clients_t *c, const char *key, uint64_t gen) {
  size_t len = strlen(key);
  uv_mutex_lock(&c->mu);
  holder_t *h = hd_map_get(&c->holders, key, len);
  if (h && h->gen == gen) {
    hd_map_del(&c->holders, key, len);
    free(h);
    user_t *u = user_of(c, key, len, false);
    if (u && u->keys && !--u->keys) {
      hd_map_del(&c->users, u->user, strlen(u->user));
      free(u);
    }
  }
  uv_mutex_unlock(&c->mu);
}
