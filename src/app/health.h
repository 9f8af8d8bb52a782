/* Operational endpoints: GET /health (JSON) and GET /metrics (Prometheus text). */
#ifndef HD_HEALTH_H
#define HD_HEALTH_H

#include "net/http_conn.h"

/* GET /health: status, version, uptime, connections by protocol. */
void hd_health_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata);
/* GET /metrics: counters and gauges in the Prometheus text format. */
void hd_metrics_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata);

#endif
