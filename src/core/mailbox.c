/* Shard mailboxes: mutex-guarded MPSC task queue + uv_async_t (see mailbox.h). */
#include "core/mailbox.h"

#include <stdlib.h>

#include "core/error.h"

static void on_async(uv_async_t *h) { hd_mailbox_drain(h->data); }

int hd_mailbox_init(hd_mailbox_t *mb, uv_loop_t *loop) {
  mb->head = mb->tail = NULL;
  mb->closed = false;
  mb->draining = 0;
  int rc = uv_mutex_init(&mb->mu);
  if (rc) return rc;
  if ((rc = uv_async_init(loop, &mb->async, on_async))) {
    uv_mutex_destroy(&mb->mu);
    return rc;
  }
  mb->async.data = mb;
  return 0;
}

int hd_mailbox_post(hd_mailbox_t *mb, hd_task_fn run, void *arg) {
  hd_task_t *t = malloc(sizeof(*t));
  if (!t) return HD_ENOMEM;
  t->next = NULL;
  t->run = run;
  t->arg = arg;
  uv_mutex_lock(&mb->mu);
  if (mb->closed) {
    uv_mutex_unlock(&mb->mu);
    free(t);
    return HD_ECLOSED;
  }
  bool was_empty = !mb->head;
  if (mb->tail) mb->tail->next = t;
  else mb->head = t;
  mb->tail = t;
  uv_mutex_unlock(&mb->mu);
  if (was_empty) uv_async_send(&mb->async); /* a non-empty queue already has a wake-up pending */
  return 0;
}

#define MAX_NESTING 8 /* drains inside tasks inside drains: deeper ones leave the work to the outer */

/* Takes the oldest task, or NULL. */
static hd_task_t *take_one(hd_mailbox_t *mb) {
  uv_mutex_lock(&mb->mu);
  hd_task_t *t = mb->head;
  if (t && !(mb->head = t->next)) mb->tail = NULL;
  uv_mutex_unlock(&mb->mu);
  return t;
}

void hd_mailbox_drain(hd_mailbox_t *mb) {
  if (mb->draining >= MAX_NESTING) return;
  mb->draining++;
  for (hd_task_t *t; (t = take_one(mb));) { /* one at a time: a nested drain goes on in order */
    t->run(t->arg, false);
    free(t);
  }
  mb->draining--;
}

void hd_mailbox_close(hd_mailbox_t *mb) {
  uv_mutex_lock(&mb->mu);
  mb->closed = true;
  hd_task_t *list = mb->head;
  mb->head = mb->tail = NULL;
  uv_mutex_unlock(&mb->mu);
  while (list) {
    hd_task_t *t = list;
    list = t->next;
    t->run(t->arg, true);
    free(t);
  }
  if (!uv_is_closing((uv_handle_t *)&mb->async)) uv_close((uv_handle_t *)&mb->async, NULL);
}

void hd_mailbox_destroy(hd_mailbox_t *mb) { uv_mutex_destroy(&mb->mu); }
