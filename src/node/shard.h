/* A shard: one libuv loop on one thread with its listener, connections (net server), application
 * (hub, protocols, services), mailbox and store handle. */
#ifndef HD_SHARD_H
#define HD_SHARD_H

#include <stdbool.h>
#include <uv.h>

#include "app/app.h"
#include "core/mailbox.h"
#include "net/server.h"
#include "store/store.h"

typedef struct hd_shard {
  uint32_t index;
  uv_loop_t loop;
  uv_thread_t thread;
  bool thread_started, loop_ready, mailbox_ready, server_ready, app_ready;
  hd_mailbox_t mailbox;
  hd_server_t server;
  hd_app_t app;
  hd_store_t *store;     /* this shard's handle on the node's store */
} hd_shard_t;

/* Prepares shard `index`: loop, mailbox, server; the app comes with hd_shard_start_app. 0 or HD_E*. */
int hd_shard_init(hd_shard_t *sh, uint32_t index, const hd_config_t *cfg);
/* Builds the shard's application on shared with store (borrowed handle). 0 or HD_E*. */
int hd_shard_start_app(hd_shard_t *sh, hd_app_shared_t *shared, hd_store_t *store);
/* Begins the shard's graceful stop (any thread: posted to its mailbox). */
void hd_shard_stop(hd_shard_t *sh);
/* Ends the shard's loop at once (any thread). */
void hd_shard_halt(hd_shard_t *sh);
/* After its loop has returned (and its thread was joined): cancels queued tasks. Every shard's
 * mailbox is closed before any shard is freed. */
void hd_shard_close_mailbox(hd_shard_t *sh);
/* Frees the app, the server and the loop. */
void hd_shard_free(hd_shard_t *sh);

#endif
