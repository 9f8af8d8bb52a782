/* The last posted server status, behind a mutex (see last_status.h). */
#include "app/last_status.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <jansson.h>

#include "app/events.h"
#include "core/error.h"
#include "hub/hub.h"

struct hd_last_status {
  uv_mutex_t lock;
  char *json; /* owned; NULL until a status is posted */
};

hd_last_status_t *hd_last_status_new(void) {
  hd_last_status_t *ls = calloc(1, sizeof(*ls));
  if (ls && uv_mutex_init(&ls->lock)) {
    free(ls);
    return NULL;
  }
  return ls;
}

int hd_last_status_set(hd_last_status_t *ls, const char *json_text) {
  char *copy = strdup(json_text);
  if (!copy) return HD_ENOMEM;
  uv_mutex_lock(&ls->lock);
  char *old = ls->json;
  ls->json = copy;
  uv_mutex_unlock(&ls->lock);
  free(old);
  return 0;
}

char *hd_last_status_get(hd_last_status_t *ls) {
  uv_mutex_lock(&ls->lock);
  char *copy = ls->json ? strdup(ls->json) : NULL;
  uv_mutex_unlock(&ls->lock);
  return copy;
}

void hd_last_status_free(hd_last_status_t *ls) {
  if (!ls) return;
  uv_mutex_destroy(&ls->lock);
  free(ls->json);
  free(ls);
}

void hd_last_status_observe(hd_last_status_t *ls, const hd_hub_msg_t *msg) {
  if (!ls || !msg->event || strcmp(msg->event, HD_EV_SYSTEM_STATUS_CHANGE) || !msg->nsp || strcmp(msg->nsp, "/"))
    return;
  json_t *args = json_loadb(msg->args, msg->args_len, 0, NULL);
  json_t *payload = json_array_get(args, 0);
  char *text = json_is_object(payload) && json_is_string(json_object_get(payload, "status"))
                   ? json_dumps(payload, JSON_COMPACT)
                   : NULL;
  if (text) hd_last_status_set(ls, text); /* out of memory: the previous status stays */
  free(text);
  json_decref(args);
}
