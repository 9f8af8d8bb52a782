/* The event catalog as JSON (see events.h). */
#include "app/events.h"

#include <jansson.h>

char *hd_events_catalog_json(void) {
  json_t *list = json_array();
#define HD_EVENT_JSON(constant, name, dir, payload, who) \
  json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "name", name, "direction", dir, "payload", payload, "audience", who));
  HD_EVENT_CATALOG(HD_EVENT_JSON)
#undef HD_EVENT_JSON
  char *text = json_dumps(list, JSON_INDENT(2));
  json_decref(list);
  return text;
}
