/* A single node's topic history kept across restarts in the store: restored when the node starts
 * (before it accepts a connection), the messages kept since saved every 200 ms (one store request),
 * the last ones at a graceful stop with the mark that lets every topic's sequences go on without a
 * gap. After a crash the topics go on from the new process's base and replays reaching back before
 * it say recovered: false (the last ~200 ms may be missing). A cluster node keeps its topics in
 * Redis instead (cluster/redis_topics.h): this is off there, and with --topic-history 0. */
#ifndef HD_TOPIC_STORE_H
#define HD_TOPIC_STORE_H

#include "app/app.h"

/* Restores the kept history into the node's (shard 0's app, on its loop before anything else
 * runs: waits for the store's answer) and starts saving. 0, or HD_E* with a logged reason. */
int hd_topic_store_start(hd_app_t *app);
/* Saves what is left with the graceful-stop mark and stops (shard 0's app, after every shard's
 * loop ended, before its store handle closes). */
void hd_topic_store_stop(hd_app_t *app);

#endif
