/* Message counters by namespace and protocol (see traffic.h). */
#include "hub/traffic.h"

#include <stdbool.h>
#include <string.h>

static const char *const protocol_names[HD_TRAFFIC_PROTOCOLS] = {"socketio", "json"};
#define OTHER "_other"

uint32_t hd_traffic_slot(hd_traffic_t *t, const char *nsp, size_t len) {
  for (uint32_t i = 0; i < t->count; i++)
    if (!strncmp(t->names[i], nsp, len) && t->names[i][len] == '\0') return i;
  bool fits = len < HD_TRAFFIC_NAME_MAX && !memchr(nsp, '\0', len);
  if (fits && t->count < HD_TRAFFIC_NAMESPACES - 1) {
    memcpy(t->names[t->count], nsp, len);
    t->names[t->count][len] = '\0';
    return t->count++;
  }
  for (uint32_t i = 0; i < t->count; i++) /* the table is full (or the name unfit): "_other" */
    if (!strcmp(t->names[i], OTHER)) return i;
  uint32_t last = t->count < HD_TRAFFIC_NAMESPACES ? t->count++ : HD_TRAFFIC_NAMESPACES - 1;
  strcpy(t->names[last], OTHER);
  return last;
}

void hd_traffic_add(hd_traffic_t *to, const hd_traffic_t *from) {
  for (uint32_t i = 0; i < from->count; i++) {
    uint32_t s = hd_traffic_slot(to, from->names[i], strlen(from->names[i]));
    for (uint32_t p = 0; p < HD_TRAFFIC_PROTOCOLS; p++) {
      to->received[s][p] += from->received[i][p];
      to->delivered[s][p] += from->delivered[i][p];
    }
    to->published[s] += from->published[i];
  }
}

/* The namespace as a label value: \ " and newlines escaped as the text format wants. */
static void label_value(hd_sbuf_t *out, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"') hd_sbuf_append(out, "\\", 1);
    if (*v == '\n') hd_sbuf_puts(out, "\\n");
    else hd_sbuf_append(out, v, 1);
  }
}

static void per_protocol(const hd_traffic_t *t, hd_sbuf_t *out, const char *name, const char *help,
                         const uint64_t (*counts)[HD_TRAFFIC_PROTOCOLS]) {
  hd_sbuf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
  for (uint32_t i = 0; i < t->count; i++)
    for (uint32_t p = 0; p < HD_TRAFFIC_PROTOCOLS; p++) {
      hd_sbuf_printf(out, "%s{protocol=\"%s\",namespace=\"", name, protocol_names[p]);
      label_value(out, t->names[i]);
      hd_sbuf_printf(out, "\"} %llu\n", (unsigned long long)counts[i][p]);
    }
}

void hd_traffic_write(const hd_traffic_t *t, hd_sbuf_t *out) {
  per_protocol(t, out, "herald_messages_received_total",
               "Messages clients sent (Socket.IO events, JSON-protocol envelopes), by protocol and namespace.",
               t->received);
  per_protocol(t, out, "herald_messages_delivered_total",
               "Broadcast messages handed to clients, by protocol and namespace.", t->delivered);
  hd_sbuf_puts(out, "# HELP herald_messages_published_total Messages published to the hub on this node (from "
                    "clients, REST, the application, other nodes), by namespace.\n"
                    "# TYPE herald_messages_published_total counter\n");
  for (uint32_t i = 0; i < t->count; i++) {
    hd_sbuf_puts(out, "herald_messages_published_total{namespace=\"");
    label_value(out, t->names[i]);
    hd_sbuf_printf(out, "\"} %llu\n", (unsigned long long)t->published[i]);
  }
}
