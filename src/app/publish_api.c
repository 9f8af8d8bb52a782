/* The publish endpoint (see publish_api.h). */
#include "app/publish_api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/rest.h"
#include "app/auth.h"
#include "core/error.h"
#include "proto/envelope.h"

typedef struct {
  hd_http_exchange_t *ex;
  hd_app_t *app;
  char message_id[40];
  uint64_t seq;
} publishing_t;

static void answer(publishing_t *p, size_t delivered, bool stored) {
  char out[240];
  snprintf(out, sizeof out, "{\"messageId\":\"%s\",\"sequence\":%llu,\"delivered\":%zu%s}", p->message_id,
           (unsigned long long)p->seq, delivered, stored ? ",\"stored\":true" : "");
  hd_http_respond_json(p->ex, 200, out);
  free(p);
}

/* A notification for a user nobody here received: stored for their next connection, or an error. */
static void kept_for_user(void *arg, int status) {
  publishing_t *p = arg;
  if (!status) return answer(p, 0, true);
  hd_http_respond_error(p->ex, 503, status == HD_EBUSY ? "not delivered, and the store is busy: nothing was kept, try again"
                                                       : "not delivered, and the store cannot keep it now: try again later");
  free(p);
}

/* Every shard delivered and committed the inbox rows of its deliveries: the answer with the count
 * (503 when a row could not be committed); a user's notification that reached nobody here is kept in
 * their inbox first (the answer says stored, or 503 when it could not be). */
static void published(void *arg, const hd_hub_msg_t *msg, size_t delivered, int status) {
  publishing_t *p = arg;
  snprintf(p->message_id, sizeof p->message_id, "%s", msg->message_id);
  p->seq = msg->seq;
  if (status) {
    hd_http_respond_error(p->ex, 503, "delivered to the connections online, but the store cannot keep it until they "
                                      "acknowledge it: try again later");
    free(p);
    return;
  }
  if (!delivered && p->app->jp && !hd_jp_keep_for_offline_user(p->app->jp, (hd_hub_msg_t *)msg, kept_for_user, p))
    return;
  answer(p, delivered, false);
}

void hd_publish_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  const hd_config_t *cfg = app->srv->cfg;
  hd_caller_t caller;
  if (!hd_rest_caller(app, ex, req, true, &caller)) return;
  if (!hd_caller_is_admin(&caller)) return hd_http_respond_error(ex, 403, "publishing needs the API key or an admin token");
  if (req->body.len > (size_t)cfg->json_max_message) return hd_http_respond_error(ex, 413, "message too large");
  json_error_t jerr;
  json_t *body = json_loadb(req->body.ptr ? req->body.ptr : "", req->body.len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *topic = json_object_get(body, "topic"), *type = json_object_get(body, "type");
  json_t *event = json_object_get(body, "event"), *params = json_object_get(body, "params");
  const char *problem = !json_is_object(body)                               ? "body must be a JSON object"
                        : !json_is_string(topic) || !hd_topic_valid(json_string_value(topic)) ? "`topic` must be a topic name"
                        : !json_is_string(type) || !json_string_length(type) || json_string_length(type) > HD_ENVELOPE_MAX_TYPE
                            ? "`type` must be a non-empty string"
                        : event && (!json_is_string(event) || !json_string_length(event)) ? "`event` must be a non-empty string"
                        : params && !json_is_object(params) ? "`params` must be an object"
                                                            : NULL;
  if (problem) {
    json_decref(body);
    return hd_http_respond_error(ex, 400, problem);
  }
  char *data = json_dumps(json_object_get(body, "data") ? json_object_get(body, "data") : json_null(),
                          JSON_ENCODE_ANY | JSON_COMPACT);
  int rc = HD_ENOMEM;
  publishing_t *p = data ? calloc(1, sizeof(*p)) : NULL;
  if (p) {
    *p = (publishing_t){.ex = ex, .app = app};
    hd_http_defer(ex);
    rc = hd_jp_publish(app->jp, json_string_value(topic), params, json_string_value(type), data,
                       event ? json_string_value(event) : NULL, published, p);
    if (rc) free(p);
  }
  free(data);
  json_decref(body);
  if (rc == HD_EINVAL) return hd_http_respond_error(ex, 400, "`params` must be a flat object of strings and numbers");
  if (rc) return hd_http_respond_error(ex, 500, "cannot publish now");
}
