/* How the application's services (notifications, chat, system events) push an event to the
 * people's rooms: a room of namespace "/" is also a JSON-protocol topic (user:7, admin:3, admins),
 * so a push to one room is a topic publish through the topic log — it gets the topic's next
 * sequence and is kept in its history, and in a cluster it travels through Redis to every Herald
 * node in one cluster-wide order (delivery/topic_log.h). A push to every socket is a plain
 * Socket.IO broadcast. */
#ifndef HD_APP_PUSH_H
#define HD_APP_PUSH_H

#include "app/app.h"

/* Pushes event with args_json (a JSON array text of one value) to the sockets and JSON subscribers
 * of room (NULL: every socket of "/"). on_count (may be NULL) gets this node's deliveries on this
 * shard's thread, possibly after a trip to Redis. 0 or HD_E* (then on_count is not called):
 * HD_EINVAL for a room that cannot be a topic, HD_EBUSY when the cluster's topic log is full. */
int hd_app_push(hd_app_t *app, const char *room, const char *event, const char *args_json, hd_hub_count_fn on_count,
                void *arg);

#endif
