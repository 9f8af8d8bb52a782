/* A shard's lifecycle (see shard.h). */
#include "node/shard.h"

#include <string.h>

#include "core/error.h"
#include "net/ws_conn.h"

int hd_shard_init(hd_shard_t *sh, uint32_t index, const hd_config_t *cfg) {
  memset(sh, 0, sizeof(*sh));
  sh->index = index;
  if (uv_loop_init(&sh->loop)) return HD_ENOMEM;
  sh->loop_ready = true;
  if (hd_mailbox_init(&sh->mailbox, &sh->loop)) return HD_ENOMEM;
  sh->mailbox_ready = true;
  int rc = hd_server_init(&sh->server, &sh->loop, cfg);
  if (rc) return rc;
  sh->server_ready = true;
  sh->server.shard = index;
  hd_ws_serve(&sh->server); /* connections are HTTP, upgradable to WebSocket */
  return 0;
}

int hd_shard_start_app(hd_shard_t *sh, hd_app_shared_t *shared, hd_store_t *store) {
  sh->store = store;
  int rc = hd_app_init(&sh->app, shared, sh->index, &sh->server, &sh->mailbox, store);
  sh->app_ready = true; /* also on failure: hd_app_free undoes a partial init */
  return rc;
}

static void run_stop(void *arg, bool cancelled) {
  if (!cancelled) hd_server_stop(arg);
}

static void run_halt(void *arg, bool cancelled) {
  if (!cancelled) uv_stop(arg);
}

void hd_shard_stop(hd_shard_t *sh) { hd_mailbox_post(&sh->mailbox, run_stop, &sh->server); }

void hd_shard_halt(hd_shard_t *sh) { hd_mailbox_post(&sh->mailbox, run_halt, &sh->loop); }

void hd_shard_close_mailbox(hd_shard_t *sh) {
  if (sh->mailbox_ready) hd_mailbox_close(&sh->mailbox);
}

void hd_shard_free(hd_shard_t *sh) {
  if (sh->app_ready) hd_app_free(&sh->app); /* closes the store handle: its last answers run here */
  if (sh->server_ready) hd_server_free(&sh->server); /* runs the loop until every handle is closed */
  else if (sh->loop_ready) uv_run(&sh->loop, UV_RUN_DEFAULT);
  if (sh->loop_ready) uv_loop_close(&sh->loop);
  if (sh->mailbox_ready) hd_mailbox_destroy(&sh->mailbox);
}
