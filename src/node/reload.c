/* Live reload: configuration read again, TLS context swapped shard by shard (see reload.h). */
#include "node/reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "net/tls.h"

extern char **environ;

/* One reload's hand-over of a TLS context to the shards: the last shard to take it says so. */
typedef struct {
  hd_tls_ctx_t *ctx;   /* one reference, dropped by the last shard */
  uint32_t remaining;  /* shards still to take it (atomic) */
  uint64_t generation;
  char desc[512];
} tls_swap_t;

typedef struct {
  tls_swap_t *swap;
  hd_server_t *server;
} tls_swap_task_t;

/* On each shard's thread: new handshakes use the new context from now on. */
static void run_swap(void *arg, bool cancelled) {
  tls_swap_task_t *task = arg;
  tls_swap_t *swap = task->swap;
  if (!cancelled) hd_server_set_tls(task->server, swap->ctx);
  free(task);
  if (__atomic_sub_fetch(&swap->remaining, 1, __ATOMIC_ACQ_REL)) return;
  if (!cancelled) HD_INFO("reload", "reload done: new TLS handshakes use the certificate", "generation=%llu %s",
                          (unsigned long long)swap->generation, swap->desc);
  hd_tls_ctx_unref(swap->ctx);
  free(swap);
}

/* Hands ctx (the caller keeps its reference) to every shard. */
static void swap_tls(hd_reload_t *r, hd_tls_ctx_t *ctx) {
  tls_swap_t *swap = calloc(1, sizeof(*swap));
  if (!swap) return;
  swap->ctx = hd_tls_ctx_ref(ctx);
  swap->remaining = r->count;
  swap->generation = r->generation;
  hd_tls_ctx_describe(ctx, swap->desc, sizeof swap->desc);
  for (uint32_t i = 0; i < r->count; i++) {
    tls_swap_task_t *task = malloc(sizeof(*task));
    if (task) *task = (tls_swap_task_t){swap, &r->shards[i].server};
    if (!task || hd_mailbox_post(&r->shards[i].mailbox, run_swap, task)) {
      free(task);
      if (!__atomic_sub_fetch(&swap->remaining, 1, __ATOMIC_ACQ_REL)) {
        hd_tls_ctx_unref(swap->ctx);
        free(swap);
      }
    }
  }
}

static bool is_live(const hd_reload_t *r, const char *name) {
  if (!strcmp(name, "log-level")) return true;
  return r->tls && (!strcmp(name, "tls-cert") || !strcmp(name, "tls-key") || !strcmp(name, "tls-min-version"));
}

static void note_change(const char *name, void *arg) {
  hd_reload_t *r = arg;
  if (!is_live(r, name))
    HD_WARN("reload", "option cannot change while the server runs: it keeps its old value (restart to change it)",
            "option=%s", name);
}

int hd_reload_run(hd_reload_t *r) {
  hd_config_t next;
  hd_config_defaults(&next);
  char err[1024];
  r->generation++;
  HD_INFO("reload", "reloading the configuration", "generation=%llu", (unsigned long long)r->generation);
  if (hd_config_load(&next, r->argc, r->argv, environ, err, sizeof err)) {
    HD_ERROR("reload", "reload refused: the configuration does not load; nothing changed", "err=\"%s\"", err);
    hd_config_free(&next);
    return HD_EINVAL;
  }
  int rc = 0;
  if (r->tls && (!*next.tls_cert || !*next.tls_key)) {
    HD_ERROR("reload", "reload refused: TLS cannot be turned off while the server runs; nothing changed", "%s", "");
    rc = HD_EINVAL;
  }
  hd_tls_ctx_t *ctx = NULL;
  if (!rc && r->tls && hd_tls_ctx_load(next.tls_cert, next.tls_key, next.tls_min_version, &ctx, err, sizeof err)) {
    HD_ERROR("reload", "reload refused: the TLS certificate does not load; the one in use stays", "err=\"%s\"", err);
    rc = HD_EINVAL;
  }
  if (!rc) {
    hd_config_each_change(r->running, &next, note_change, r);
    if (strcmp(next.log_level, r->log_level)) {
      hd_log_level_t level;
      hd_log_level_parse(next.log_level, &level);
      hd_log_set_level(level);
      HD_INFO("reload", "log level changed", "from=%s to=%s", r->log_level, next.log_level);
      free(r->log_level);
      r->log_level = strdup(next.log_level);
    }
    if (ctx) swap_tls(r, ctx);
    else HD_INFO("reload", "reload done", "generation=%llu", (unsigned long long)r->generation);
  }
  hd_tls_ctx_unref(ctx);
  hd_config_free(&next);
  return rc;
}

void hd_reload_free(hd_reload_t *r) {
  free(r->log_level);
  r->log_level = NULL;
}
