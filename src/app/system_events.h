/* System events: POST /api/v4/system/alerts, /maintenance and /status pushed as system:alert, system:maintenance and system:status_change to admins (or everyone). */
#ifndef HD_SYSTEM_EVENTS_H
#define HD_SYSTEM_EVENTS_H

#include <stdint.h>

#include "core/buf.h"

typedef struct hd_app hd_app_t;

/* Counters since start, for /metrics. */
typedef struct {
  uint64_t alerts, maintenance, status_changes; /* events pushed */
  uint64_t deliveries;                          /* Socket.IO deliveries of all of them */
} hd_system_events_stats_t;

/* Registers the routes and Socket.IO handlers. 0 or HD_E*. */
int hd_system_events_register(hd_app_t *app);
/* Copies the counters into *out (zeros before registration). */
void hd_system_events_stats(const hd_app_t *app, hd_system_events_stats_t *out);
/* Appends counters s (the node's sum) to a Prometheus text exposition (HELP, TYPE and samples). */
void hd_system_events_metrics(const hd_system_events_stats_t *s, hd_sbuf_t *out);
/* Frees the module's state, once, from hd_app_free. */
void hd_system_events_free(hd_app_t *app);

#endif
