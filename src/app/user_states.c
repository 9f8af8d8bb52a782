/* The node-wide table of refused users (see user_states.h). */
#include "app/user_states.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/error.h"
#include "core/map.h"

typedef struct {
  char key[24]; /* the id as text: a token's sub */
  int64_t id;
  bool disabled, deleted, demo;
  int64_t tokens_after;
} entry_t;

struct hd_user_states {
  uv_rwlock_t lock;
  hd_map_t by_id; /* key -> entry_t (under lock) */
  bool loopback;
};

hd_user_states_t *hd_user_states_new(bool loopback) {
  hd_user_states_t *us = calloc(1, sizeof(*us));
  if (!us) return NULL;
  if (uv_rwlock_init(&us->lock)) {
    free(us);
    return NULL;
  }
  us->loopback = loopback;
  return us;
}

static void free_entry(void *value, void *arg) { free(value); }

void hd_user_states_free(hd_user_states_t *us) {
  if (!us) return;
  hd_map_each(&us->by_id, free_entry, NULL);
  hd_map_free(&us->by_id);
  uv_rwlock_destroy(&us->lock);
  free(us);
}

bool hd_user_states_loopback(const hd_user_states_t *us) { return us->loopback; }

/* Why an entry refuses every token, or NULL. */
static const char *blocked_why(const hd_user_states_t *us, const entry_t *e) {
  if (!e) return NULL;
  if (e->deleted) return "this account was deleted";
  if (e->disabled) return "this account is disabled";
  if (e->demo && !us->loopback)
    return "demo account: set a new password with `herald user passwd NAME` before serving beyond loopback";
  return NULL;
}

int hd_user_states_check(hd_user_states_t *us, const hd_claims_t *claims, const char **why) {
  if (!us) return 0;
  uv_rwlock_rdlock(&us->lock);
  entry_t *e = hd_map_get(&us->by_id, claims->sub, strlen(claims->sub));
  const char *reason = blocked_why(us, e);
  if (!reason && e && e->tokens_after && claims->iat < e->tokens_after)
    reason = "the password changed after this token was issued: sign in again";
  uv_rwlock_rdunlock(&us->lock);
  if (!reason) return 0;
  *why = reason;
  return HD_EFORBIDDEN;
}

bool hd_user_states_blocked(hd_user_states_t *us, int64_t id) {
  char key[24];
  snprintf(key, sizeof key, "%lld", (long long)id);
  uv_rwlock_rdlock(&us->lock);
  bool blocked = blocked_why(us, hd_map_get(&us->by_id, key, strlen(key))) != NULL;
  uv_rwlock_rdunlock(&us->lock);
  return blocked;
}

int hd_user_states_replace(hd_user_states_t *us, const hd_store_users_t *users,
                           void (*on_refused)(void *arg, int64_t id, const char *reason), void *arg) {
  hd_map_t fresh = {0};
  for (size_t i = 0; i < users->count; i++) {
    const hd_store_user_t *u = &users->items[i];
    entry_t *e = calloc(1, sizeof(*e));
    if (e) {
      *e = (entry_t){.id = u->id, .disabled = u->disabled, .deleted = u->deleted, .demo = u->demo,
                     .tokens_after = u->tokens_after};
      snprintf(e->key, sizeof e->key, "%lld", (long long)u->id);
    }
    if (!e || hd_map_put(&fresh, e->key, strlen(e->key), e)) {
      free(e);
      hd_map_each(&fresh, free_entry, NULL);
      hd_map_free(&fresh);
      return HD_ENOMEM;
    }
  }
  uv_rwlock_wrlock(&us->lock);
  hd_map_t old = us->by_id;
  us->by_id = fresh;
  uv_rwlock_wrunlock(&us->lock);
  /* who is refused now and was not: compared outside the lock (only this thread replaces) */
  for (size_t i = 0; on_refused && i < users->count; i++) {
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)users->items[i].id);
    const entry_t *now = hd_map_get(&fresh, key, strlen(key)), *before = hd_map_get(&old, key, strlen(key));
    const char *why = blocked_why(us, now);
    if (why && !blocked_why(us, before)) on_refused(arg, now->id, why);
    else if (!why && now->tokens_after > (before ? before->tokens_after : 0))
      on_refused(arg, now->id, "password changed");
  }
  hd_map_each(&old, free_entry, NULL);
  hd_map_free(&old);
  return 0;
}
