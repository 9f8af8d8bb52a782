/* The JSON protocol's durable inbox kept in the store (notifications put at delivery, removed at
 * the ack, taken by the user's next connection), installed as its hd_jp_inbox_t. The puts of one
 * loop iteration — a publish to many users — go to the store as one request (one transaction),
 * just before the iteration's writes go out, so a notification is stored before the client can
 * ack it; a take sends what is pending first. It is also the shard's hub persist hook: a publish
 * is answered (REST 200, a client's ack) only once the puts of its deliveries are committed. */
#ifndef HD_JSON_INBOX_H
#define HD_JSON_INBOX_H

#include <stdint.h>

#include "net/server.h"
#include "proto/json_proto.h"
#include "store/store.h"

/* Someone waiting for the pending puts to be committed. */
typedef struct {
  void (*done)(void *arg, int status);
  void *arg;
} hd_json_inbox_waiter_t;

typedef struct {
  hd_store_t *store;               /* this shard's handle */
  hd_server_t *srv;                /* woken when a waiter needs the next flush */
  uint32_t max;                    /* notifications kept per user (0: no inbox) */
  hd_store_inbox_entry_t *pending; /* puts of this iteration (owned copies) */
  size_t count, cap;
  hd_json_inbox_waiter_t *waiters; /* told once the pending puts are committed */
  size_t waiter_count, waiter_cap;
  int lost;                        /* a put of this iteration that could not be queued (HD_ENOMEM) */
  uint64_t batches, entries;       /* sent since start */
  uint64_t dropped;                /* oldest entries the store dropped for --inbox-max (this shard's puts) */
} hd_json_inbox_t;

/* The interface backed by in (borrowed; all NULL when in->max is 0). */
hd_jp_inbox_t hd_json_inbox(hd_json_inbox_t *in);
/* The hub persist hook (hd_hub_persist_fn; arg is the inbox): done follows the commit of the puts
 * pending now; HD_ENOTFOUND when none are. */
int hd_json_inbox_persisted(void *arg, void (*done)(void *done_arg, int status), void *done_arg);
/* Sends the pending puts as one store request (the server's flush hook; arg is the inbox). */
void hd_json_inbox_flush(void *arg);
/* Sends what is pending and frees the buffer (before the store handle closes). */
void hd_json_inbox_close(hd_json_inbox_t *in);

#endif
