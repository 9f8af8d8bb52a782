/* The application's pushes: one room = one topic publish, no room = a broadcast (see push.h). */
#include "app/push.h"

#include <string.h>

#include "core/error.h"
#include "delivery/topic_log.h"
#include "proto/envelope.h"
#include "proto/sio.h"

int hd_app_push(hd_app_t *app, const char *room, const char *event, const char *args_json, hd_hub_count_fn on_count,
                void *arg) {
  if (!room) {
    hd_sio_target_t everyone = {"/", NULL, 0, NULL, 0, 0};
    return hd_sio_broadcast(app->sio, &everyone, NULL, event, args_json, on_count, arg);
  }
  if (!hd_topic_valid(room)) return HD_EINVAL;
  hd_hub_target_t to = {"/", &room, 1, NULL, 0, HD_MSG_SEQUENCED};
  hd_hub_msg_t *msg = hd_hub_msg_new(app->hub, &to, event, args_json, strlen(args_json), NULL, 0);
  if (!msg) return HD_ENOMEM;
  msg->single_arg = true; /* JSON subscribers get the value as data, on every node alike */
  hd_topic_log_t *log = hd_hub_shared(app->hub)->topics;
  int rc = log->ops->publish(log, app->hub, msg, on_count, arg);
  hd_hub_msg_unref(msg);
  return rc;
}
