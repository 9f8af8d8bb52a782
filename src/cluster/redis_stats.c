/* The Redis link's figures (see redis_internal.h): counters kept by the other files of the adapter,
 * the publish-to-delivery lag, and their Prometheus text for /metrics.
 * The lag: Socket.IO's wire format carries no time, so it is measured where no clock but this
 * node's is involved. The adapter's pattern subscription hands a node its own broadcasts back;
 * the time from this node's PUBLISH to that echo is the trip every other subscriber of the cluster
 * makes too (queueing here, the command to Redis, Redis's fan-out, the way back), so it stands for
 * the lag of a broadcast from this node to any node on a link like this one. Each broadcast that
 * left is remembered (when, its length and a hash of its last bytes) in a ring; an echo takes the
 * oldest matching entry (Redis keeps one publisher's order), older unmatched ones are forgotten. */
#include <stdio.h>
#include <string.h>

#include "cluster/redis_internal.h"

/* Upper bounds of the lag histogram, in µs (seconds in the metric's `le`). */
static const uint64_t lag_bounds_us[HD_REDIS_LAG_BUCKETS] = {250,   500,    1000,   2500,   5000,   10000,
                                                             25000, 50000,  100000, 250000, 500000, 1000000};

/* FNV-1a over the last 64 bytes at most: the echo holds the very same bytes. */
static uint32_t fingerprint(const void *data, size_t len) {
  const uint8_t *p = data;
  size_t from = len > 64 ? len - 64 : 0;
  uint32_t h = 2166136261u;
  for (size_t i = from; i < len; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

void hd_redis_lag_sent(hd_redis_t *r, const void *data, size_t len) {
  hd_redis_lag_ring_t *g = &r->lag;
  if (g->count == HD_REDIS_LAG_RING) { /* the oldest is forgotten */
    g->head = (g->head + 1) % HD_REDIS_LAG_RING;
    g->count--;
  }
  uint32_t at = (g->head + g->count) % HD_REDIS_LAG_RING;
  g->slot[at].at_ns = uv_hrtime();
  g->slot[at].len = (uint32_t)len;
  g->slot[at].hash = fingerprint(data, len);
  g->count++;
}

void hd_redis_lag_echo(hd_redis_t *r, const void *data, size_t len) {
  hd_redis_lag_ring_t *g = &r->lag;
  uint32_t hash = fingerprint(data, len);
  for (uint32_t i = 0; i < g->count; i++) {
    uint32_t at = (g->head + i) % HD_REDIS_LAG_RING;
    if (g->slot[at].len != (uint32_t)len || g->slot[at].hash != hash) continue;
    uint64_t us = (uv_hrtime() - g->slot[at].at_ns) / 1000;
    g->head = (at + 1) % HD_REDIS_LAG_RING; /* this one and the unmatched older ones are done */
    g->count -= i + 1;
    uint32_t b = 0;
    while (b < HD_REDIS_LAG_BUCKETS && us > lag_bounds_us[b]) b++;
    HD_REDIS_COUNT(r, lag_le[b], 1);
    HD_REDIS_COUNT(r, lag_sum_us, us);
    return;
  }
}

void hd_redis_lag_reset(hd_redis_t *r) { r->lag.head = r->lag.count = 0; }

static uint64_t get(const uint64_t *field) { return __atomic_load_n(field, __ATOMIC_RELAXED); }

void hd_redis_metrics(hd_adapter_t *a, hd_sbuf_t *out) {
  hd_redis_t *r = (hd_redis_t *)a;
  const hd_redis_stats_t *s = &r->stats;
  static const char *const kinds[HD_REDIS_KINDS] = {"broadcast", "request", "response"};
  hd_sbuf_printf(out,
                 "# HELP herald_cluster_connected 1 while the link to Redis is up.\n"
                 "# TYPE herald_cluster_connected gauge\nherald_cluster_connected %d\n"
                 "# HELP herald_cluster_nodes Nodes in the cluster, this one included (PUBSUB NUMSUB).\n"
                 "# TYPE herald_cluster_nodes gauge\nherald_cluster_nodes %u\n"
                 "# HELP herald_cluster_messages_total Cluster messages published and received (own echoes "
                 "included), by direction and kind.\n# TYPE herald_cluster_messages_total counter\n",
                 hd_redis_up(r) ? 1 : 0, hd_redis_server_count(a));
  for (int k = 0; k < HD_REDIS_KINDS; k++)
    hd_sbuf_printf(out,
                   "herald_cluster_messages_total{direction=\"out\",kind=\"%s\"} %llu\n"
                   "herald_cluster_messages_total{direction=\"in\",kind=\"%s\"} %llu\n",
                   kinds[k], (unsigned long long)get(&s->out[k]), kinds[k], (unsigned long long)get(&s->in[k]));
  hd_sbuf_printf(out,
                 "# HELP herald_cluster_sent_bytes_total Payload bytes published to Redis.\n"
                 "# TYPE herald_cluster_sent_bytes_total counter\nherald_cluster_sent_bytes_total %llu\n"
                 "# HELP herald_cluster_errors_total Cluster messages refused: received undecodable or malformed "
                 "(decode), or not encodable (encode).\n# TYPE herald_cluster_errors_total counter\n"
                 "herald_cluster_errors_total{reason=\"decode\"} %llu\nherald_cluster_errors_total{reason=\"encode\"} %llu\n"
                 "# HELP herald_cluster_dropped_total Messages for the cluster that stayed on this node: the link "
                 "was down, or the outgoing queue full.\n# TYPE herald_cluster_dropped_total counter\n"
                 "herald_cluster_dropped_total{reason=\"disconnected\"} %llu\n"
                 "herald_cluster_dropped_total{reason=\"queue_full\"} %llu\n"
                 "# HELP herald_cluster_link_losses_total Times the link to Redis was lost.\n"
                 "# TYPE herald_cluster_link_losses_total counter\nherald_cluster_link_losses_total %llu\n"
                 "# HELP herald_cluster_reconnects_total Times the link to Redis came back after a loss.\n"
                 "# TYPE herald_cluster_reconnects_total counter\nherald_cluster_reconnects_total %llu\n"
                 "# HELP herald_cluster_timeouts_total Connects or PINGs Redis left unanswered past --redis-timeout.\n"
                 "# TYPE herald_cluster_timeouts_total counter\nherald_cluster_timeouts_total %llu\n"
                 "# HELP herald_cluster_requests_failed_total This node's cluster requests ended early by a lost link.\n"
                 "# TYPE herald_cluster_requests_failed_total counter\nherald_cluster_requests_failed_total %llu\n"
                 "# HELP herald_cluster_queued_bytes Bytes published to Redis and not yet answered.\n"
                 "# TYPE herald_cluster_queued_bytes gauge\nherald_cluster_queued_bytes %llu\n"
                 "# HELP herald_cluster_queue_limit_bytes --redis-max-queue.\n"
                 "# TYPE herald_cluster_queue_limit_bytes gauge\nherald_cluster_queue_limit_bytes %llu\n"
                 "# HELP herald_cluster_link_latency_seconds Round trip of the last PING to Redis.\n"
                 "# TYPE herald_cluster_link_latency_seconds gauge\nherald_cluster_link_latency_seconds %.6f\n"
                 "# HELP herald_cluster_publish_lag_seconds From this node's PUBLISH of a broadcast to its delivery "
                 "back to this node by Redis (the trip to every subscriber).\n"
                 "# TYPE herald_cluster_publish_lag_seconds histogram\n",
                 (unsigned long long)get(&s->bytes_out), (unsigned long long)get(&s->decode_errors),
                 (unsigned long long)get(&s->encode_errors), (unsigned long long)get(&s->dropped_down),
                 (unsigned long long)get(&s->dropped_full), (unsigned long long)get(&s->losses),
                 (unsigned long long)get(&s->reconnects), (unsigned long long)get(&s->timeouts),
                 (unsigned long long)get(&s->requests_failed), (unsigned long long)get(&s->queued),
                 (unsigned long long)r->max_queue, (double)get(&s->ping_us) / 1e6);
  uint64_t cumulative = 0;
  for (int b = 0; b < HD_REDIS_LAG_BUCKETS; b++) {
    cumulative += get(&s->lag_le[b]);
    hd_sbuf_printf(out, "herald_cluster_publish_lag_seconds_bucket{le=\"%g\"} %llu\n", (double)lag_bounds_us[b] / 1e6,
                   (unsigned long long)cumulative);
  }
  cumulative += get(&s->lag_le[HD_REDIS_LAG_BUCKETS]);
  hd_sbuf_printf(out,
                 "herald_cluster_publish_lag_seconds_bucket{le=\"+Inf\"} %llu\n"
                 "herald_cluster_publish_lag_seconds_sum %.6f\nherald_cluster_publish_lag_seconds_count %llu\n",
                 (unsigned long long)cumulative, (double)get(&s->lag_sum_us) / 1e6, (unsigned long long)cumulative);
}
