/* Per-connection ack tracking and redelivery (see acks.h). */
#include "delivery/acks.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct hd_unacked {
  hd_unacked_t *next;
  hd_hub_msg_t *msg;
  uint64_t due_ms;
  uint32_t sent;
};

/* Unlinks u, whose predecessor is prev (NULL for the head), and frees it. */
static void forget(hd_acks_t *a, hd_unacked_t *prev, hd_unacked_t *u) {
  if (prev) prev->next = u->next;
  else a->head = u->next;
  if (a->tail == u) a->tail = prev;
  a->count--;
  hd_hub_msg_unref(u->msg);
  free(u);
}

int hd_acks_track(hd_acks_t *a, hd_hub_msg_t *msg, uint64_t due_ms, uint32_t max) {
  hd_unacked_t *u = malloc(sizeof(*u));
  if (!u) return HD_ENOMEM;
  *u = (hd_unacked_t){NULL, hd_hub_msg_ref(msg), due_ms, 1};
  if (a->tail) a->tail->next = u;
  else a->head = u;
  a->tail = u;
  a->count++;
  if (max && a->count > max) forget(a, NULL, a->head); /* too many in flight: the inbox keeps the oldest */
  return 0;
}

bool hd_acks_ack(hd_acks_t *a, const char *message_id) {
  for (hd_unacked_t *u = a->head, *prev = NULL; u; prev = u, u = u->next)
    if (!strcmp(u->msg->message_id, message_id)) {
      forget(a, prev, u);
      return true;
    }
  return false;
}

bool hd_acks_waiting(const hd_acks_t *a, const char *message_id) {
  for (const hd_unacked_t *u = a->head; u; u = u->next)
    if (!strcmp(u->msg->message_id, message_id)) return true;
  return false;
}

void hd_acks_due(hd_acks_t *a, uint64_t now_ms, uint64_t timeout_ms, uint32_t retries,
                 void (*resend)(hd_hub_msg_t *msg, void *arg), void *arg) {
  for (hd_unacked_t *u = a->head, *prev = NULL, *next; u; u = next) {
    next = u->next;
    if (u->due_ms > now_ms) {
      prev = u;
    } else if (u->sent > retries) { /* given up on this connection: the inbox keeps it */
      forget(a, prev, u);
    } else {
      resend(u->msg, arg);
      u->sent++;
      u->due_ms = now_ms + timeout_ms;
      prev = u;
    }
  }
}

void hd_acks_clear(hd_acks_t *a) {
  while (a->head) forget(a, NULL, a->head);
}
