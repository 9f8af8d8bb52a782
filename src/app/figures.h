/* The node's figures for /health and /metrics: each shard copies its own counters on its own
 * thread (a task in its mailbox), and the shard that asked adds them up once all have answered. */
#ifndef HD_FIGURES_H
#define HD_FIGURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/notifications.h"
#include "app/system_events.h"
#include "hub/traffic.h"
#include "net/server.h"

typedef struct hd_app hd_app_t;

#define HD_FIGURES_NAMESPACES 16

/* One shard's figures at one moment. */
typedef struct {
  bool answered;                 /* false when the shard could not be asked (stopping) */
  hd_metrics_t net;
  uint32_t connections;
  bool stopping;
  uint64_t uptime_ms;
  size_t rooms, sio_sessions, sio_sockets, json_connections;
  size_t sio_polling;            /* Engine.IO sessions still on long-polling (counted with --admin-ui only) */
  uint64_t sio_opened, sio_closed; /* Engine.IO sessions since start */
  size_t nsp_sockets[HD_FIGURES_NAMESPACES]; /* sockets by namespace (hd_sio_namespace_name order) */
  uint64_t chat_sessions, chat_messages;
  uint64_t inbox_entries, inbox_dropped; /* JSON inbox: entries sent to the store, oldest dropped over --inbox-max */
  hd_notifications_stats_t notifications;
  hd_system_events_stats_t system;
  hd_traffic_t traffic;          /* messages by namespace and protocol */
} hd_shard_figures_t;

/* Called on the asking shard with every shard's figures (count of them), then they are freed. */
typedef void (*hd_figures_fn)(hd_app_t *app, const hd_shard_figures_t *figs, uint32_t count, void *arg);

/* Collects every shard's figures and calls fn on app's thread (synchronously with one shard). 0 or
 * HD_ENOMEM (fn not called). */
int hd_figures_collect(hd_app_t *app, hd_figures_fn fn, void *arg);

#endif
