/* Acknowledgements and redelivery (see acks.h): a singly linked FIFO with a tail pointer. */
#include "delivery/acks.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct hd_acks_entry {
  hd_acks_entry_t *next;
  const char *id;
  void *item;
  uint64_t due_ms;
  uint32_t sent;
};

static void drop(hd_acks_t *a, hd_acks_entry_t *e) {
  if (a->limits->release) a->limits->release(e->item);
  free(e);
}

void hd_acks_init(hd_acks_t *a, const hd_acks_limits_t *limits) { *a = (hd_acks_t){.limits = limits}; }

int hd_acks_track(hd_acks_t *a, const char *id, void *item, uint64_t now_ms) {
  hd_acks_entry_t *e = malloc(sizeof(*e));
  if (!e) {
    if (a->limits->release) a->limits->release(item);
    return HD_ENOMEM;
  }
  *e = (hd_acks_entry_t){.id = id, .item = item, .due_ms = now_ms + a->limits->timeout_ms, .sent = 1};
  if (a->tail) a->tail->next = e;
  else a->head = e;
  a->tail = e;
  if (++a->count > a->limits->max) { /* too many in flight: the oldest is given up */
    hd_acks_entry_t *old = a->head;
    a->head = old->next;
    if (!a->head) a->tail = NULL;
    a->count--;
    drop(a, old);
  }
  return 0;
}

/* Unlinks *pp (prev: the entry before it, or NULL) and releases it. */
static void unlink_entry(hd_acks_t *a, hd_acks_entry_t **pp, hd_acks_entry_t *prev) {
  hd_acks_entry_t *e = *pp;
  *pp = e->next;
  if (a->tail == e) a->tail = prev;
  a->count--;
  drop(a, e);
}

bool hd_acks_ack(hd_acks_t *a, const char *id) {
  hd_acks_entry_t *prev = NULL;
  for (hd_acks_entry_t **pp = &a->head; *pp; prev = *pp, pp = &(*pp)->next)
    if (!strcmp((*pp)->id, id)) {
      unlink_entry(a, pp, prev);
      return true;
    }
  return false;
}

bool hd_acks_pending(const hd_acks_t *a, const char *id) {
  for (const hd_acks_entry_t *e = a->head; e; e = e->next)
    if (!strcmp(e->id, id)) return true;
  return false;
}

size_t hd_acks_due(hd_acks_t *a, uint64_t now_ms, hd_acks_resend_fn resend, void *arg) {
  size_t given_up = 0;
  hd_acks_entry_t *prev = NULL;
  for (hd_acks_entry_t **pp = &a->head; *pp;) {
    hd_acks_entry_t *e = *pp;
    if (e->due_ms > now_ms) {
      prev = e;
      pp = &e->next;
    } else if (e->sent > a->limits->retries) {
      unlink_entry(a, pp, prev);
      given_up++;
    } else {
      if (resend) resend(e->item, arg);
      e->sent++;
      e->due_ms = now_ms + a->limits->timeout_ms;
      prev = e;
      pp = &e->next;
    }
  }
  return given_up;
}

void hd_acks_clear(hd_acks_t *a) {
  for (hd_acks_entry_t *e = a->head, *next; e; e = next) {
    next = e->next;
    drop(a, e);
  }
  a->head = a->tail = NULL;
  a->count = 0;
}
