/* /health and /metrics (see health.h). */
#include "app/health.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/figures.h"
#include "app/notifications.h"
#include "app/system_events.h"
#include "app/users.h"
#include "core/error.h"
#include "hub/adapter.h"
#include "net/server.h"

/* The node's sum of every shard's figures (gauges and counters add up; the loop lag is the worst). */
static hd_shard_figures_t sum(const hd_shard_figures_t *figs, uint32_t count) {
  hd_shard_figures_t t = figs[0];
  for (uint32_t i = 1; i < count; i++) {
    const hd_shard_figures_t *f = &figs[i];
    hd_metrics_t *m = &t.net;
    m->accepted += f->net.accepted, m->refused += f->net.refused;
    m->frames_in += f->net.frames_in, m->frames_out += f->net.frames_out;
    m->bytes_in += f->net.bytes_in, m->bytes_out += f->net.bytes_out;
    m->slow_consumers += f->net.slow_consumers;
    m->accept_errors += f->net.accept_errors;
    m->tls_handshakes += f->net.tls_handshakes, m->tls_handshake_failures += f->net.tls_handshake_failures;
    m->tls_handshake_timeouts += f->net.tls_handshake_timeouts, m->tls_handshakes_refused += f->net.tls_handshakes_refused;
    for (int c = 0; c < 600; c++) m->http_requests[c] += f->net.http_requests[c];
    if (f->net.loop_lag_ms > m->loop_lag_ms) m->loop_lag_ms = f->net.loop_lag_ms;
    if (f->net.loop_lag_max_ms > m->loop_lag_max_ms) m->loop_lag_max_ms = f->net.loop_lag_max_ms;
    m->conns_http += f->net.conns_http;
    hd_histogram_add(&m->http_duration, &f->net.http_duration);
    hd_histogram_add(&m->publish_to_write, &f->net.publish_to_write);
    hd_traffic_add(&t.traffic, &f->traffic);
    for (uint32_t p = 1; p < f->net.protocol_count; p++) { /* shards number protocols as they meet them */
      uint32_t q = 1;
      while (q < m->protocol_count && strcmp(m->protocol_names[q], f->net.protocol_names[p])) q++;
      if (q == m->protocol_count) {
        if (q == HD_MAX_PROTOCOLS) continue;
        m->protocol_names[m->protocol_count++] = f->net.protocol_names[p];
        m->conns_ws[q] = 0;
      }
      m->conns_ws[q] += f->net.conns_ws[p];
    }
    t.connections += f->connections;
    t.stopping |= f->stopping;
    t.rooms += f->rooms, t.sio_sessions += f->sio_sessions, t.sio_sockets += f->sio_sockets;
    t.json_connections += f->json_connections;
    t.chat_sessions += f->chat_sessions, t.chat_messages += f->chat_messages;
    t.inbox_entries += f->inbox_entries, t.inbox_dropped += f->inbox_dropped;
    t.notifications.sent_direct += f->notifications.sent_direct;
    t.notifications.sent_broadcast += f->notifications.sent_broadcast;
    t.notifications.marked_read += f->notifications.marked_read;
    t.notifications.pushes += f->notifications.pushes;
    t.notifications.store_errors += f->notifications.store_errors;
    t.system.alerts += f->system.alerts, t.system.maintenance += f->system.maintenance;
    t.system.status_changes += f->system.status_changes, t.system.deliveries += f->system.deliveries;
  }
  return t;
}

static void answer_health(hd_app_t *app, const hd_shard_figures_t *figs, uint32_t count, void *arg) {
  hd_http_exchange_t *ex = arg;
  hd_shard_figures_t t = sum(figs, count);
  const hd_metrics_t *m = &t.net;
  json_t *by_proto = json_object();
  uint32_t ws_total = 0;
  for (uint32_t i = 1; i < m->protocol_count; i++) {
    json_object_set_new(by_proto, m->protocol_names[i], json_integer(m->conns_ws[i]));
    ws_total += m->conns_ws[i];
  }
  double uptime = (double)t.uptime_ms / 1000.0;
  json_t *root = json_pack("{s:s, s:s, s:f, s:i, s:{s:i, s:i, s:i}, s:{s:i, s:o, s:i, s:f}, s:{s:i, s:i}, s:{s:i}}",
                           "status", t.stopping ? "stopping" : "ok",
                           "version", HERALD_VERSION,
                           "uptime", uptime,
                           "shards", (int)count,
                           "connections", "total", (json_int_t)t.connections, "http", (json_int_t)m->conns_http,
                           "websocket", (json_int_t)ws_total,
                           "websocket", "connections", (json_int_t)ws_total, "byProtocol", by_proto,
                           "rooms", (json_int_t)t.rooms, "uptime", uptime,
                           "socketio", "sessions", (json_int_t)t.sio_sessions, "sockets", (json_int_t)t.sio_sockets,
                           "json", "connections", (json_int_t)t.json_connections);
  hd_store_health_t st = {0};
  bool store_ok = !hd_store_health(app->store, &st) && st.ok;
  json_t *store = store_ok || st.backend ? json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:f}", "status", store_ok ? "ok" : "failing",
                                                      "backend", st.backend ? st.backend : "?", "schema_version",
                                                      st.schema_version, "queue_depth", (json_int_t)st.queue_depth,
                                                      "commits", (json_int_t)st.commits, "failed_transactions",
                                                      (json_int_t)st.failed_transactions, "last_commit_ms",
                                                      (double)st.last_commit_us / 1000.0)
                                         : json_pack("{s:s}", "status", "failing");
  json_object_set_new(root, "store", store);
  hd_adapter_t *adapter = app->shared->hub.adapter;
  hd_adapter_health_t cl = {.nodes = 1};
  if (adapter && adapter->ops->health) adapter->ops->health(adapter, &cl);
  json_t *cluster = json_pack("{s:s, s:b, s:b, s:i}", "status", !cl.enabled ? "disabled" : cl.connected ? "ok" : "degraded",
                              "enabled", cl.enabled, "connected", cl.connected, "nodes", (json_int_t)cl.nodes);
  if (cluster && cl.enabled) json_object_set_new(cluster, "redis", json_string(cl.where));
  const hd_app_shared_t *sh = app->shared;
  json_t *registry = cluster && sh->cluster_nodes ? sh->cluster_nodes(sh->cluster_nodes_arg) : NULL;
  if (registry) json_object_set_new(cluster, "registry", registry);
  json_object_set_new(root, "cluster", cluster);
  if (!store_ok && !t.stopping) json_object_set_new(root, "status", json_string("degraded"));
  char *text = root ? json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
  if (text) hd_http_respond_json(ex, t.stopping || !store_ok ? 503 : 200, text);
  else hd_http_respond_error(ex, 500, "cannot encode health");
  free(text);
  json_decref(root);
}

void hd_health_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_http_defer(ex);
  if (hd_figures_collect(udata, answer_health, ex)) hd_http_respond_error(ex, 500, "out of memory");
}

/* Per-shard gauges, labelled shard="i". */
static void shard_series(hd_sbuf_t *b, const hd_shard_figures_t *figs, uint32_t count) {
  hd_sbuf_puts(b, "# HELP herald_shard_connections Open connections by shard.\n# TYPE herald_shard_connections gauge\n");
  for (uint32_t i = 0; i < count; i++)
    hd_sbuf_printf(b, "herald_shard_connections{shard=\"%u\"} %u\n", i, figs[i].connections);
  hd_sbuf_puts(b, "# HELP herald_shard_rooms Rooms by shard.\n# TYPE herald_shard_rooms gauge\n");
  for (uint32_t i = 0; i < count; i++) hd_sbuf_printf(b, "herald_shard_rooms{shard=\"%u\"} %zu\n", i, figs[i].rooms);
  hd_sbuf_puts(b, "# HELP herald_shard_socketio_sockets Socket.IO sockets by shard.\n"
                  "# TYPE herald_shard_socketio_sockets gauge\n");
  for (uint32_t i = 0; i < count; i++)
    hd_sbuf_printf(b, "herald_shard_socketio_sockets{shard=\"%u\"} %zu\n", i, figs[i].sio_sockets);
  hd_sbuf_puts(b, "# HELP herald_shard_event_loop_lag_seconds Delay of the last timer tick, by shard.\n"
                  "# TYPE herald_shard_event_loop_lag_seconds gauge\n");
  for (uint32_t i = 0; i < count; i++)
    hd_sbuf_printf(b, "herald_shard_event_loop_lag_seconds{shard=\"%u\"} %.3f\n", i,
                   (double)figs[i].net.loop_lag_ms / 1000.0);
  hd_sbuf_puts(b, "# HELP herald_shard_bytes_total Socket bytes by shard and direction.\n"
                  "# TYPE herald_shard_bytes_total counter\n");
  for (uint32_t i = 0; i < count; i++)
    hd_sbuf_printf(b, "herald_shard_bytes_total{shard=\"%u\",direction=\"in\"} %llu\n"
                      "herald_shard_bytes_total{shard=\"%u\",direction=\"out\"} %llu\n",
                   i, (unsigned long long)figs[i].net.bytes_in, i, (unsigned long long)figs[i].net.bytes_out);
}

/* The cluster: whether this node is in one, then the adapter's own series (herald_cluster_*). */
static void cluster_series(hd_app_t *app, hd_sbuf_t *b) {
  hd_adapter_t *adapter = app->shared->hub.adapter;
  hd_adapter_health_t cl = {.nodes = 1};
  if (adapter && adapter->ops->health) adapter->ops->health(adapter, &cl);
  hd_sbuf_printf(b, "# HELP herald_cluster_enabled 1 when this node is in a cluster (--redis-url).\n"
                    "# TYPE herald_cluster_enabled gauge\nherald_cluster_enabled %d\n", cl.enabled ? 1 : 0);
  if (cl.enabled && adapter->ops->metrics) adapter->ops->metrics(adapter, b);
}

/* The latency histograms: HTTP requests and broadcast deliveries (the node's shards added up), store
 * commits (the store's own, or none when it did not answer). */
static void latency_series(hd_sbuf_t *b, const hd_metrics_t *m, const hd_store_health_t *st) {
  hd_histogram_write_header(b, "herald_http_request_duration_seconds",
                            "From a request received whole to its response queued (Engine.IO polling GETs, "
                            "held until there is something to send, left out).");
  hd_histogram_write(b, "herald_http_request_duration_seconds", "", &m->http_duration);
  hd_histogram_write_header(b, "herald_publish_to_write_seconds",
                            "From a broadcast's publish on this node to its frame written to a recipient's socket, "
                            "once per WebSocket recipient (long-polling answers are not timed).");
  hd_histogram_write(b, "herald_publish_to_write_seconds", "", &m->publish_to_write);
  hd_histogram_write_header(b, "herald_store_commit_duration_seconds",
                            "Store write transactions committed, BEGIN to COMMIT.");
  hd_histogram_write(b, "herald_store_commit_duration_seconds", "", &st->commit_duration);
}

static void answer_metrics(hd_app_t *app, const hd_shard_figures_t *figs, uint32_t count, void *arg) {
  hd_http_exchange_t *ex = arg;
  hd_shard_figures_t t = sum(figs, count);
  const hd_metrics_t *m = &t.net;
  hd_sbuf_t b = {0};
  hd_sbuf_printf(&b,
                 "# HELP herald_up 1 while the server runs.\n# TYPE herald_up gauge\nherald_up 1\n"
                 "# HELP herald_uptime_seconds Seconds since start.\n# TYPE herald_uptime_seconds gauge\n"
                 "herald_uptime_seconds %.3f\n"
                 "# HELP herald_shards Event loops serving connections.\n# TYPE herald_shards gauge\nherald_shards %u\n"
                 "# HELP herald_connections Open connections by protocol.\n# TYPE herald_connections gauge\n"
                 "herald_connections{protocol=\"http\"} %u\n",
                 (double)t.uptime_ms / 1000.0, count, m->conns_http);
  for (uint32_t i = 1; i < m->protocol_count; i++)
    hd_sbuf_printf(&b, "herald_connections{protocol=\"%s\"} %u\n", m->protocol_names[i], m->conns_ws[i]);
  hd_sbuf_printf(&b, "# HELP herald_topics Topics with a sequence (and history) over the node.\n"
                     "# TYPE herald_topics gauge\nherald_topics %zu\n",
                 app->shared->history ? hd_history_topic_count(app->shared->history) : (size_t)0);
  hd_sbuf_printf(&b,
                 "# HELP herald_rooms Rooms and topics in the hub.\n# TYPE herald_rooms gauge\nherald_rooms %zu\n"
                 "# HELP herald_socketio_sessions Engine.IO sessions (polling or WebSocket).\n"
                 "# TYPE herald_socketio_sessions gauge\nherald_socketio_sessions %zu\n"
                 "# HELP herald_socketio_sockets Socket.IO sockets (one per namespace joined).\n"
                 "# TYPE herald_socketio_sockets gauge\nherald_socketio_sockets %zu\n",
                 t.rooms, t.sio_sessions, t.sio_sockets);
  hd_sbuf_printf(&b,
                 "# HELP herald_tls_handshakes_total TLS handshakes by outcome (refused: closed at accept, too many in flight).\n"
                 "# TYPE herald_tls_handshakes_total counter\n"
                 "herald_tls_handshakes_total{outcome=\"done\"} %llu\nherald_tls_handshakes_total{outcome=\"failed\"} %llu\n"
                 "herald_tls_handshakes_total{outcome=\"timeout\"} %llu\nherald_tls_handshakes_total{outcome=\"refused\"} %llu\n",
                 (unsigned long long)m->tls_handshakes, (unsigned long long)m->tls_handshake_failures,
                 (unsigned long long)m->tls_handshake_timeouts, (unsigned long long)m->tls_handshakes_refused);
  hd_sbuf_printf(&b,
                 "# HELP herald_connections_accepted_total TCP connections accepted.\n"
                 "# TYPE herald_connections_accepted_total counter\nherald_connections_accepted_total %llu\n"
                 "# HELP herald_connections_refused_total Connections refused for max-connections.\n"
                 "# TYPE herald_connections_refused_total counter\nherald_connections_refused_total %llu\n"
                 "# HELP herald_slow_consumers_total Connections closed for passing max-backpressure.\n"
                 "# TYPE herald_slow_consumers_total counter\nherald_slow_consumers_total %llu\n"
                 "# HELP herald_accept_errors_total Accepts that failed for want of descriptors (waiting connections shed).\n"
                 "# TYPE herald_accept_errors_total counter\nherald_accept_errors_total %llu\n"
                 "# HELP herald_ws_frames_total WebSocket frames by direction.\n# TYPE herald_ws_frames_total counter\n"
                 "herald_ws_frames_total{direction=\"in\"} %llu\nherald_ws_frames_total{direction=\"out\"} %llu\n"
                 "# HELP herald_bytes_total Socket bytes by direction.\n# TYPE herald_bytes_total counter\n"
                 "herald_bytes_total{direction=\"in\"} %llu\nherald_bytes_total{direction=\"out\"} %llu\n"
                 "# HELP herald_event_loop_lag_seconds Delay of the last timer tick (the worst shard).\n"
                 "# TYPE herald_event_loop_lag_seconds gauge\nherald_event_loop_lag_seconds %.3f\n"
                 "# HELP herald_event_loop_lag_max_seconds Largest timer delay seen.\n"
                 "# TYPE herald_event_loop_lag_max_seconds gauge\nherald_event_loop_lag_max_seconds %.3f\n"
                 "# HELP herald_http_requests_total HTTP responses by status.\n"
                 "# TYPE herald_http_requests_total counter\n",
                 (unsigned long long)m->accepted, (unsigned long long)m->refused,
                 (unsigned long long)m->slow_consumers, (unsigned long long)m->accept_errors, (unsigned long long)m->frames_in,
                 (unsigned long long)m->frames_out, (unsigned long long)m->bytes_in,
                 (unsigned long long)m->bytes_out, (double)m->loop_lag_ms / 1000.0,
                 (double)m->loop_lag_max_ms / 1000.0);
  /* this response is counted once it is sent; count it now so it is visible in itself */
  for (int code = 100; code < 600; code++) {
    uint64_t n = m->http_requests[code] + (code == 200);
    if (n) hd_sbuf_printf(&b, "herald_http_requests_total{status=\"%d\"} %llu\n", code, (unsigned long long)n);
  }
  hd_sbuf_printf(&b,
                 "# HELP herald_chat_sessions_total Customer-service sessions started since start.\n"
                 "# TYPE herald_chat_sessions_total counter\nherald_chat_sessions_total %llu\n"
                 "# HELP herald_chat_messages_total Customer-service messages stored since start.\n"
                 "# TYPE herald_chat_messages_total counter\nherald_chat_messages_total %llu\n",
                 (unsigned long long)t.chat_sessions, (unsigned long long)t.chat_messages);
  hd_sbuf_printf(&b,
                 "# HELP herald_inbox_entries_total JSON-protocol notifications sent to the durable inbox.\n"
                 "# TYPE herald_inbox_entries_total counter\nherald_inbox_entries_total %llu\n"
                 "# HELP herald_inbox_dropped_total Oldest inbox entries dropped to keep a user within --inbox-max.\n"
                 "# TYPE herald_inbox_dropped_total counter\nherald_inbox_dropped_total %llu\n",
                 (unsigned long long)t.inbox_entries, (unsigned long long)t.inbox_dropped);
  hd_sbuf_printf(&b,
                 "# HELP herald_eio_polling_bytes Engine.IO polling output waiting for GETs (--max-polling-bytes).\n"
                 "# TYPE herald_eio_polling_bytes gauge\nherald_eio_polling_bytes %zu\n",
                 __atomic_load_n(&app->shared->eio_polling_bytes, __ATOMIC_RELAXED));
  hd_sbuf_printf(&b,
                 "# HELP herald_eio_sessions Engine.IO sessions open over the node (--max-eio-sessions).\n"
                 "# TYPE herald_eio_sessions gauge\nherald_eio_sessions %u\n"
                 "# HELP herald_memory_trims_total Freed heap handed back to the system after a wave of closed sessions.\n"
                 "# TYPE herald_memory_trims_total counter\nherald_memory_trims_total %llu\n",
                 (unsigned)__atomic_load_n(&app->shared->eio_sessions, __ATOMIC_RELAXED),
                 (unsigned long long)__atomic_load_n(&app->shared->mem_trims, __ATOMIC_RELAXED));
  hd_sbuf_printf(&b,
                 "# HELP herald_login_addresses Client addresses the sign-in limiter tracks (failures in the window).\n"
                 "# TYPE herald_login_addresses gauge\nherald_login_addresses %zu\n",
                 hd_users_limiter_addresses(app->shared->login_limiter));
  hd_store_health_t st = {0};
  bool store_known = !hd_store_health(app->store, &st);
  if (store_known)
    hd_sbuf_printf(&b,
                   "# HELP herald_store_up 1 when the store answers.\n# TYPE herald_store_up gauge\nherald_store_up %d\n"
                   "# HELP herald_store_queue_depth Store requests waiting.\n# TYPE herald_store_queue_depth gauge\n"
                   "herald_store_queue_depth %llu\n"
                   "# HELP herald_store_commits_total Store transactions committed.\n"
                   "# TYPE herald_store_commits_total counter\nherald_store_commits_total %llu\n"
                   "# HELP herald_store_commit_seconds Duration of the last commit.\n"
                   "# TYPE herald_store_commit_seconds gauge\nherald_store_commit_seconds %.6f\n",
                   st.ok ? 1 : 0, (unsigned long long)st.queue_depth, (unsigned long long)st.commits,
                   (double)st.last_commit_us / 1e6);
  latency_series(&b, m, &st);
  hd_traffic_write(&t.traffic, &b);
  hd_notifications_metrics(&t.notifications, &b);
  hd_system_events_metrics(&t.system, &b);
  hd_retention_metrics(&app->shared->retention, &b);
  cluster_series(app, &b);
  shard_series(&b, figs, count);
  hd_http_respond(ex, 200, "text/plain; version=0.0.4; charset=utf-8", b.ptr, b.len, NULL);
  hd_sbuf_free(&b);
}

void hd_metrics_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_http_defer(ex);
  if (hd_figures_collect(udata, answer_metrics, ex)) hd_http_respond_error(ex, 500, "out of memory");
}
