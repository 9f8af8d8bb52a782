/* Notifications: send (to one admin or every admin), list, unread count, mark read (REST and notification:mark_read) and read all, each stored before it is pushed. */
#ifndef HD_NOTIFICATIONS_H
#define HD_NOTIFICATIONS_H

#include <stdint.h>

#include "core/buf.h"

typedef struct hd_app hd_app_t;

/* Counters since start, for /metrics. */
typedef struct {
  uint64_t sent_direct;     /* notifications stored for one admin */
  uint64_t sent_broadcast;  /* notifications stored for every admin */
  uint64_t marked_read;     /* notifications newly marked read (one by one, or by read-all) */
  uint64_t pushes;          /* Socket.IO deliveries of notification:new / :broadcast / :update */
  uint64_t store_errors;    /* requests the store failed or refused (answered 5xx / ack error) */
} hd_notifications_stats_t;

/* Registers the routes and Socket.IO handlers. 0 or HD_E*. */
int hd_notifications_register(hd_app_t *app);
/* Copies the counters into *out (zeros before registration). */
void hd_notifications_stats(const hd_app_t *app, hd_notifications_stats_t *out);
/* Appends counters s (the node's sum) to a Prometheus text exposition (HELP, TYPE and samples). */
void hd_notifications_metrics(const hd_notifications_stats_t *s, hd_sbuf_t *out);
/* Frees the module's state, once, from hd_app_free AFTER hd_store_close (its last callbacks use it). */
void hd_notifications_free(hd_app_t *app);

#endif
