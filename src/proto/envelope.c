/* JSON protocol envelopes (see envelope.h). */
#include "proto/envelope.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define MAX_PARAMS 16
#define MAX_PARAMS_TEXT 512

static int bad(const char **why, const char *reason) {
  if (why) *why = reason;
  return HD_EPROTO;
}

int hd_envelope_parse(const char *text, size_t len, hd_envelope_t *out, const char **why) {
  memset(out, 0, sizeof(*out));
  json_error_t err;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  if (!root) return bad(why, "frame is not valid JSON");
  out->root = root;
  if (!json_is_object(root)) return hd_envelope_free(out), bad(why, "frame is not a JSON object");
  json_t *type = json_object_get(root, "type");
  if (!json_is_string(type) || !json_string_length(type) || json_string_length(type) > HD_ENVELOPE_MAX_TYPE)
    return hd_envelope_free(out), bad(why, "`type` must be a non-empty string");
  json_t *id = json_object_get(root, "messageId");
  if (id && (!json_is_string(id) || !json_string_length(id) || json_string_length(id) > HD_ENVELOPE_MAX_ID))
    return hd_envelope_free(out), bad(why, "`messageId` must be a non-empty string of at most 128 characters");
  json_t *ts = json_object_get(root, "timestamp");
  if (ts && !json_is_number(ts)) return hd_envelope_free(out), bad(why, "`timestamp` must be a number");
  out->type = json_string_value(type);
  out->message_id = id ? json_string_value(id) : NULL;
  out->data = json_object_get(root, "data");
  return 0;
}

void hd_envelope_free(hd_envelope_t *e) {
  json_decref(e->root);
  memset(e, 0, sizeof(*e));
}

int hd_envelope_encode(hd_sbuf_t *out, const char *type, const char *data_json, int64_t timestamp,
                       const char *message_id, uint64_t sequence, const char *topic, const char *params_json) {
  int rc = hd_sbuf_puts(out, "{\"type\":\"");
  rc |= hd_sbuf_json_escape(out, type, strlen(type));
  rc |= hd_sbuf_printf(out, "\",\"data\":%s,\"timestamp\":%lld,\"messageId\":\"", data_json ? data_json : "null",
                       (long long)timestamp);
  rc |= hd_sbuf_json_escape(out, message_id, strlen(message_id));
  rc |= hd_sbuf_puts(out, "\"");
  if (sequence) rc |= hd_sbuf_printf(out, ",\"sequence\":%llu", (unsigned long long)sequence);
  if (topic) {
    rc |= hd_sbuf_puts(out, ",\"topic\":\"");
    rc |= hd_sbuf_json_escape(out, topic, strlen(topic));
    rc |= hd_sbuf_puts(out, "\"");
  }
  if (params_json) rc |= hd_sbuf_printf(out, ",\"params\":%s", params_json);
  rc |= hd_sbuf_puts(out, "}");
  return rc ? HD_ENOMEM : 0;
}

int hd_params_key(const json_t *params, hd_sbuf_t *out) {
  if (!params || json_is_null(params)) return 0;
  if (!json_is_object(params) || json_object_size(params) > MAX_PARAMS) return HD_EINVAL;
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)params, key, value) if (!json_is_string(value) && !json_is_number(value)) return HD_EINVAL;
  if (!json_object_size(params)) return 0;
  char *text = json_dumps(params, JSON_SORT_KEYS | JSON_COMPACT);
  if (!text) return HD_ENOMEM;
  int rc = strlen(text) > MAX_PARAMS_TEXT ? HD_EINVAL : hd_sbuf_puts(out, text);
  free(text);
  return rc;
}

int hd_topic_valid(const char *topic) {
  size_t n = strlen(topic);
  if (!n || n > HD_ENVELOPE_MAX_TOPIC) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)topic[i] < 0x20 || topic[i] == 0x7f) return 0;
  return 1;
}
