/* A shard's mailbox: tasks posted from any thread (an MPSC queue under a mutex) run in order on the
 * owning loop's thread, woken by one uv_async_t. The owner may also drain it synchronously (a
 * publisher delivering to its own shard without waiting for the next loop turn). */
#ifndef HD_MAILBOX_H
#define HD_MAILBOX_H

#include <stdbool.h>
#include <uv.h>

/* A task: run(arg, false) on the owner's thread, or run(arg, true) when the mailbox is closed with
 * the task still queued (it must then only free what it owns). */
typedef void (*hd_task_fn)(void *arg, bool cancelled);

typedef struct hd_task {
  struct hd_task *next;
  hd_task_fn run;
  void *arg;
} hd_task_t;

typedef struct {
  uv_async_t async;
  uv_mutex_t mu;
  hd_task_t *head, *tail; /* guarded by mu */
  bool closed;            /* guarded by mu */
  int draining;           /* owner thread only: depth of drains on the stack */
} hd_mailbox_t;

/* Initialises mb on loop (call on the loop's thread or before it runs). 0 or a negative uv error. */
int hd_mailbox_init(hd_mailbox_t *mb, uv_loop_t *loop);
/* Queues run(arg) for the owner; any thread. 0, HD_ENOMEM, or HD_ECLOSED once closed (run is not
 * called then: the caller still owns arg). */
int hd_mailbox_post(hd_mailbox_t *mb, hd_task_fn run, void *arg);
/* Runs every queued task, in order (owner thread). Tasks posted while draining run too. A task may
 * drain again (a publish inside a delivery or a handed-over request): the nested call goes on with
 * the next tasks in the same order, so the caller sees its own publish delivered before it returns;
 * past a few levels of nesting the work is left to the outer call. */
void hd_mailbox_drain(hd_mailbox_t *mb);
/* Refuses further posts, cancels what is queued, and closes the async handle (owner thread; the
 * memory of mb must stay valid until the loop has run the close callback). */
void hd_mailbox_close(hd_mailbox_t *mb);
/* Releases the lock once the async handle's close has completed. */
void hd_mailbox_destroy(hd_mailbox_t *mb);

#endif
