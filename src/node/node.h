/* The node: one process. It owns the configuration, the keys, the store, the adapter and the
 * signals, and runs the shards: shard 0 on the calling thread, the others on threads of their own,
 * each a libuv loop with its own SO_REUSEPORT listener on the same port, its connections, its part
 * of the hub and its mailbox. A graceful stop (SIGTERM/SIGINT) drains every shard; SIGHUP reloads
 * (node/reload.h). */
#ifndef HD_NODE_H
#define HD_NODE_H

#include "core/config.h"

/* Runs the server described by cfg until it is stopped; argv[0..argc) are the serve options cfg came
 * from (borrowed for the run), read again with the config file at a reload (SIGHUP). Returns the
 * process exit code (0 after a graceful stop; 1 when it cannot start, with the cause logged). */
int hd_node_run(const hd_config_t *cfg, int argc, char **argv);
/* The number of shards cfg asks for (--shards, 0 = one per CPU), at least 1. */
unsigned hd_node_shard_count(const hd_config_t *cfg);

#endif
