/* Keeps the node's table of refused users (user_states.h) in step with the store, whoever changes
 * it: this server (REST) or `herald user` in another process on the same database. Shard 0 loads
 * the table before the listener opens, then reads the store's users change counter every second
 * and, when it moved, reloads the table and closes the live connections (Socket.IO sockets in
 * `admin:<id>` / `user:<id>`, JSON-protocol connections of that sub, on every shard of this node)
 * of each user refused now who was not before. */
#ifndef HD_USER_WATCH_H
#define HD_USER_WATCH_H

typedef struct hd_app hd_app_t;

#define HD_USER_WATCH_PERIOD_MS 1000

/* Shard 0 only: loads the table now (blocking the caller, before the loop runs) and starts the
 * poll on app's loop. 0 or HD_E* (logged). */
int hd_user_watch_start(hd_app_t *app);
/* Looks at the counter at once (after a change made through this server). */
void hd_user_watch_poke(hd_app_t *app);
/* Stops the poll (shard 0, before the store closes). */
void hd_user_watch_stop(hd_app_t *app);

#endif
