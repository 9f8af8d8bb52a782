/* Per-shard message counters by namespace and protocol for /metrics: messages clients sent
 * (received), messages the hub handed to clients (delivered) and publishes. Plain counters owned by
 * one shard; /metrics copies each shard's table on its own thread and adds them up by name. The
 * namespaces are bounded: past HD_TRAFFIC_NAMESPACES distinct names, the rest count as "_other". */
#ifndef HD_TRAFFIC_H
#define HD_TRAFFIC_H

#include <stdint.h>

#include "core/buf.h"

#define HD_TRAFFIC_NAMESPACES 24 /* the last slot is "_other" once the others are taken */
#define HD_TRAFFIC_NAME_MAX 64   /* longer namespace names count as "_other" */

/* The protocols a message is counted under (the label `protocol`). */
typedef enum { HD_TRAFFIC_SOCKETIO = 0, HD_TRAFFIC_JSON, HD_TRAFFIC_PROTOCOLS } hd_traffic_protocol_t;

typedef struct {
  uint32_t count; /* namespaces in use */
  char names[HD_TRAFFIC_NAMESPACES][HD_TRAFFIC_NAME_MAX];
  uint64_t received[HD_TRAFFIC_NAMESPACES][HD_TRAFFIC_PROTOCOLS];
  uint64_t delivered[HD_TRAFFIC_NAMESPACES][HD_TRAFFIC_PROTOCOLS];
  uint64_t published[HD_TRAFFIC_NAMESPACES];
} hd_traffic_t;

/* The slot of namespace nsp (len bytes), added on first use; "_other" when the table is full or
 * the name too long. */
uint32_t hd_traffic_slot(hd_traffic_t *t, const char *nsp, size_t len);
/* Counts one message a client sent on protocol p in the namespace of `slot` (from hd_traffic_slot,
 * which callers keep: a slot never changes). */
static inline void hd_traffic_received(hd_traffic_t *t, hd_traffic_protocol_t p, uint32_t slot) { t->received[slot][p]++; }
/* Adds the counters of `from` to `to`, matching namespaces by name. */
void hd_traffic_add(hd_traffic_t *to, const hd_traffic_t *from);
/* Appends herald_messages_received_total{protocol,namespace}, herald_messages_delivered_total{...}
 * and herald_messages_published_total{namespace} in the Prometheus text format. */
void hd_traffic_write(const hd_traffic_t *t, hd_sbuf_t *out);

#endif
