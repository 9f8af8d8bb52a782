/* /health and /metrics (see health.h). */
#include "app/health.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/notifications.h"
#include "app/system_events.h"
#include "net/server.h"

void hd_health_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_server_t *s = hd_http_server(ex);
  const hd_metrics_t *m = &s->metrics;
  json_t *by_proto = json_object();
  uint32_t ws_total = 0;
  for (uint32_t i = 1; i < m->protocol_count; i++) {
    json_object_set_new(by_proto, m->protocol_names[i], json_integer(m->conns_ws[i]));
    ws_total += m->conns_ws[i];
  }
  const hd_app_t *app = udata;
  double uptime = (double)hd_server_uptime_ms(s) / 1000.0;
  json_t *root = json_pack("{s:s, s:s, s:f, s:{s:i, s:i, s:i}, s:{s:i, s:o, s:i, s:f}, s:{s:i, s:i}, s:{s:i}}",
                           "status", s->stopping ? "stopping" : "ok",
                           "version", HERALD_VERSION,
                           "uptime", uptime,
                           "connections", "total", (json_int_t)s->conn_count, "http", (json_int_t)m->conns_http,
                           "websocket", (json_int_t)ws_total,
                           "websocket", "connections", (json_int_t)ws_total, "byProtocol", by_proto,
                           "rooms", (json_int_t)hd_hub_room_count(app->hub), "uptime", uptime,
                           "socketio", "sessions", (json_int_t)hd_sio_client_count(app->sio),
                           "sockets", (json_int_t)hd_sio_socket_count(app->sio),
                           "json", "connections", (json_int_t)hd_jp_connection_count(app->jp));
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
  json_object_set_new(root, "cluster", json_pack("{s:b, s:i}", "enabled", 0, "nodes", 1));
  if (!store_ok && !s->stopping) json_object_set_new(root, "status", json_string("degraded"));
  char *text = root ? json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
  if (text) hd_http_respond_json(ex, s->stopping || !store_ok ? 503 : 200, text);
  else hd_http_respond_error(ex, 500, "cannot encode health");
  free(text);
  json_decref(root);
}

void hd_metrics_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_server_t *s = hd_http_server(ex);
  const hd_metrics_t *m = &s->metrics;
  hd_sbuf_t b = {0};
  hd_sbuf_printf(&b,
                 "# HELP herald_up 1 while the server runs.\n# TYPE herald_up gauge\nherald_up 1\n"
                 "# HELP herald_uptime_seconds Seconds since start.\n# TYPE herald_uptime_seconds gauge\n"
                 "herald_uptime_seconds %.3f\n"
                 "# HELP herald_connections Open connections by protocol.\n# TYPE herald_connections gauge\n"
                 "herald_connections{protocol=\"http\"} %u\n",
                 (double)hd_server_uptime_ms(s) / 1000.0, m->conns_http);
  for (uint32_t i = 1; i < m->protocol_count; i++)
    hd_sbuf_printf(&b, "herald_connections{protocol=\"%s\"} %u\n", m->protocol_names[i], m->conns_ws[i]);
  const hd_app_t *app = udata;
  hd_sbuf_printf(&b,
                 "# HELP herald_rooms Rooms and topics in the hub.\n# TYPE herald_rooms gauge\nherald_rooms %zu\n"
                 "# HELP herald_socketio_sessions Engine.IO sessions (polling or WebSocket).\n"
                 "# TYPE herald_socketio_sessions gauge\nherald_socketio_sessions %zu\n"
                 "# HELP herald_socketio_sockets Socket.IO sockets (one per namespace joined).\n"
                 "# TYPE herald_socketio_sockets gauge\nherald_socketio_sockets %zu\n",
                 hd_hub_room_count(app->hub), hd_sio_client_count(app->sio), hd_sio_socket_count(app->sio));
  hd_sbuf_printf(&b,
                 "# HELP herald_connections_accepted_total TCP connections accepted.\n"
                 "# TYPE herald_connections_accepted_total counter\nherald_connections_accepted_total %llu\n"
                 "# HELP herald_connections_refused_total Connections refused for max-connections.\n"
                 "# TYPE herald_connections_refused_total counter\nherald_connections_refused_total %llu\n"
                 "# HELP herald_slow_consumers_total Connections closed for passing max-backpressure.\n"
                 "# TYPE herald_slow_consumers_total counter\nherald_slow_consumers_total %llu\n"
                 "# HELP herald_ws_frames_total WebSocket frames by direction.\n# TYPE herald_ws_frames_total counter\n"
                 "herald_ws_frames_total{direction=\"in\"} %llu\nherald_ws_frames_total{direction=\"out\"} %llu\n"
                 "# HELP herald_bytes_total Socket bytes by direction.\n# TYPE herald_bytes_total counter\n"
                 "herald_bytes_total{direction=\"in\"} %llu\nherald_bytes_total{direction=\"out\"} %llu\n"
                 "# HELP herald_event_loop_lag_seconds Delay of the last timer tick.\n"
                 "# TYPE herald_event_loop_lag_seconds gauge\nherald_event_loop_lag_seconds %.3f\n"
                 "# HELP herald_event_loop_lag_max_seconds Largest timer delay seen.\n"
                 "# TYPE herald_event_loop_lag_max_seconds gauge\nherald_event_loop_lag_max_seconds %.3f\n"
                 "# HELP herald_http_requests_total HTTP responses by status.\n"
                 "# TYPE herald_http_requests_total counter\n",
                 (unsigned long long)m->accepted, (unsigned long long)m->refused,
                 (unsigned long long)m->slow_consumers, (unsigned long long)m->frames_in,
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
                 (unsigned long long)app->counters.chat_sessions, (unsigned long long)app->counters.chat_messages);
  hd_store_health_t st = {0};
  if (!hd_store_health(app->store, &st))
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
  hd_notifications_metrics(app, &b);
  hd_system_events_metrics(app, &b);
  hd_http_respond(ex, 200, "text/plain; version=0.0.4; charset=utf-8", b.ptr, b.len, NULL);
  hd_sbuf_free(&b);
}
