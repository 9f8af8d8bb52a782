/* Topic messages as JSON entries (see topic_entry.h). */
#include "delivery/topic_entry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int hd_topic_entry_encode(const hd_hub_msg_t *msg, bool with_seq, hd_sbuf_t *b) {
  if (with_seq) hd_sbuf_printf(b, "{\"s\":%llu,\"m\":\"", (unsigned long long)msg->seq);
  else hd_sbuf_puts(b, "{\"m\":\"");
  hd_sbuf_json_escape(b, msg->message_id, strlen(msg->message_id));
  hd_sbuf_puts(b, "\",\"t\":\"");
  hd_sbuf_json_escape(b, msg->rooms[0], strlen(msg->rooms[0]));
  if (msg->room_count > 1) {
    hd_sbuf_puts(b, "\",\"k\":\"");
    hd_sbuf_json_escape(b, msg->rooms[1], strlen(msg->rooms[1]));
  }
  if (msg->type) {
    hd_sbuf_puts(b, "\",\"y\":\"");
    hd_sbuf_json_escape(b, msg->type, strlen(msg->type));
  }
  hd_sbuf_puts(b, "\",\"e\":\"");
  hd_sbuf_json_escape(b, msg->event, strlen(msg->event));
  if (msg->cluster_offset) hd_sbuf_printf(b, "\",\"o\":\"%llu", (unsigned long long)msg->cluster_offset);
  hd_sbuf_printf(b, "\",\"ts\":%lld,\"a\":\"", (long long)msg->timestamp);
  hd_sbuf_json_escape(b, msg->args, msg->args_len);
  return hd_sbuf_puts(b, "\"}") || !b->ptr ? HD_ENOMEM : 0;
}

/* A topic name as the JSON protocol allows it: 1-200 bytes, no control characters. */
static bool topic_ok(const char *t) {
  size_t n = strlen(t);
  if (!n || n > 200) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)t[i] < 0x20) return false;
  return true;
}

hd_hub_msg_t *hd_topic_entry_decode(hd_hub_t *hub, const char *text, size_t len) {
  json_t *j = json_loadb(text, len, 0, NULL);
  json_int_t seq = json_integer_value(json_object_get(j, "s")), ts = json_integer_value(json_object_get(j, "ts"));
  const char *id = json_string_value(json_object_get(j, "m")), *topic = json_string_value(json_object_get(j, "t"));
  const char *key = json_string_value(json_object_get(j, "k")), *type = json_string_value(json_object_get(j, "y"));
  const char *event = json_string_value(json_object_get(j, "e")), *args = json_string_value(json_object_get(j, "a"));
  const char *offset = json_string_value(json_object_get(j, "o"));
  size_t args_len = args ? strlen(args) : 0;
  hd_hub_msg_t *msg = NULL;
  if (seq > 0 && id && strlen(id) < sizeof msg->message_id && topic && topic_ok(topic) && event && args_len >= 2 &&
      args[0] == '[' && args[args_len - 1] == ']' &&
      (!key || (!strncmp(key, topic, strlen(topic)) && key[strlen(topic)] == '\x1f'))) {
    const char *rooms[2] = {topic, key};
    hd_hub_target_t to = {"/", rooms, key ? 2 : 1, NULL, 0, HD_MSG_SEQUENCED | HD_MSG_REMOTE};
    msg = hd_hub_msg_new(hub, &to, event, args, args_len, NULL, 0);
    if (msg && type && hd_hub_msg_set_type(msg, type)) {
      hd_hub_msg_unref(msg);
      msg = NULL;
    }
    if (msg) {
      msg->single_arg = true;
      msg->seq = (uint64_t)seq;
      if (ts > 0) msg->timestamp = ts;
      if (offset) msg->cluster_offset = strtoull(offset, NULL, 10);
      snprintf(msg->message_id, sizeof msg->message_id, "%s", id);
    }
  }
  json_decref(j);
  return msg;
}
