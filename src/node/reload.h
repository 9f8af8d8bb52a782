/* Live reload (SIGHUP, `herald reload`): the serve command line and its config file are read again;
 * the TLS certificate and key (and --tls-min-version) are loaded anew and handed to every shard for
 * the handshakes that follow, connections already open keep theirs; --log-level changes at once.
 * Every other option cannot change while the node runs: each one that differs is named in the log
 * and keeps its old value. A configuration or certificate that does not load changes nothing. */
#ifndef HD_RELOAD_H
#define HD_RELOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "node/shard.h"

typedef struct {
  int argc;
  char **argv;                 /* the serve command line (borrowed), read again at each reload */
  const hd_config_t *running;  /* the options the node started with (borrowed) */
  bool tls;                    /* the node serves TLS (its listeners cannot change live) */
  hd_shard_t *shards;          /* every shard, to hand each the new TLS context */
  uint32_t count;
  char *log_level;             /* the level in force (owned) */
  uint64_t generation;         /* reloads done */
} hd_reload_t;

/* Reloads now (on the node's main loop); the outcome is logged ("reload done" once every shard
 * uses the new certificate). 0, or HD_EINVAL when the configuration or certificate did not load. */
int hd_reload_run(hd_reload_t *r);
/* Releases what the reload state owns. */
void hd_reload_free(hd_reload_t *r);

#endif
