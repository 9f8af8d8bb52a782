/* The option table and its three sources: config file, environment, flags (see config.h). */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/log.h"

typedef enum { CFG_INT, CFG_BOOL, CFG_STR } cfg_type_t;

typedef struct {
  const char *name; /* kebab-case */
  cfg_type_t type;
  size_t offset;
  const char *def;
  int64_t min, max;
  const char *help;
  int (*validate)(const char *value);
} cfg_option_t;

/* "+08:00" / "-05:30" / "Z" */
static int validate_offset(const char *v) {
  if (!strcmp(v, "Z")) return 0;
  if (strlen(v) != 6 || (v[0] != '+' && v[0] != '-') || v[3] != ':') return HD_EINVAL;
  int h = (v[1] - '0') * 10 + (v[2] - '0'), m = (v[4] - '0') * 10 + (v[5] - '0');
  for (int i = 1; i < 6; i++)
    if (i != 3 && (v[i] < '0' || v[i] > '9')) return HD_EINVAL;
  return h <= 14 && m < 60 ? 0 : HD_EINVAL;
}

static int validate_jwt_algorithm(const char *v) {
  return !*v || !strcmp(v, "HS256") || !strcmp(v, "RS256") || !strcmp(v, "ES256") ? 0 : HD_EINVAL;
}

static int validate_admin_ui_mode(const char *v) {
  return !strcmp(v, "development") || !strcmp(v, "production") ? 0 : HD_EINVAL;
}

/* "" or http://host[:port] (no path: the node is reached at its root). */
static int validate_advertise_url(const char *v) {
  if (!*v) return 0;
  if (strncmp(v, "http://", 7) || !v[7] || strlen(v) > 255) return HD_EINVAL;
  for (const char *p = v + 7; *p; p++)
    if (*p == '/' || *p == '?' || *p == '#' || *p == '@' || *p <= ' ' || *p == 0x7f) return HD_EINVAL;
  return 0;
}

static int validate_tls_version(const char *v) { return !strcmp(v, "1.2") || !strcmp(v, "1.3") ? 0 : HD_EINVAL; }

static int validate_log_level(const char *v) {
  hd_log_level_t l;
  return hd_log_level_parse(v, &l);
}

static int validate_log_format(const char *v) {
  hd_log_format_t f;
  return hd_log_format_parse(v, &f);
}

#define OPT(name, type, field, def, min, max, help) \
  {name, type, offsetof(hd_config_t, field), def, min, max, help, NULL}
#define KiB 1024LL
#define MiB (1024LL * 1024)
#define GiB (1024LL * 1024 * 1024)

static const cfg_option_t options[] = {
    OPT("config", CFG_STR, config, "", 0, 0, "config file (lines of `key = value`; # comments)"),
    OPT("host", CFG_STR, host, "0.0.0.0", 0, 0, "address to listen on"),
    OPT("port", CFG_INT, port, "3000", 0, 65535, "TCP port to listen on (0 = any free port)"),
    OPT("data-dir", CFG_STR, data_dir, "./data", 0, 0, "directory for the embedded store and state"),
    {"log-level", CFG_STR, offsetof(hd_config_t, log_level), "info", 0, 0,
     "debug | info | warn | error | off", validate_log_level},
    {"log-format", CFG_STR, offsetof(hd_config_t, log_format), "text", 0, 0,
     "text (ts=... level=... comp=... msg=\"...\" then the fields as written) | logfmt (every value quoted and escaped where logfmt needs it) | json (one object per line)",
     validate_log_format},
    OPT("web-root", CFG_STR, web_root, "web", 0, 0,
        "directory of static pages served at / (relative paths: from the working directory, else from the checkout of the binary); a missing one stops the start; \"\" = no pages"),
    OPT("max-connections", CFG_INT, max_connections, "10000", 1, 1000000,
        "open connections at most; beyond it HTTP gets 503 (/health still answers) and WebSocket close 1013"),
    OPT("backlog", CFG_INT, backlog, "511", 1, 65535, "listen(2) backlog"),
    OPT("shards", CFG_INT, shards, "0", 0, 64,
        "event loops (threads) serving connections, each with its own SO_REUSEPORT listener (0 = one per CPU)"),
    OPT("cors-origin", CFG_STR, cors_origin, "", 0, 0,
        "comma-separated origins allowed by CORS, or * (default: none)"),
    OPT("cors-credentials", CFG_BOOL, cors_credentials, "false", 0, 0,
        "send Access-Control-Allow-Credentials: true to origins named in --cors-origin (never to those allowed by *)"),
    OPT("ws-origins", CFG_STR, ws_origins, "", 0, 0,
        "comma-separated Origin values allowed to open WebSockets and Engine.IO polling sessions (default: any)"),
    OPT("echo-endpoint", CFG_BOOL, echo_endpoint, "false", 0, 0,
        "serve the raw WebSocket echo endpoint /ws/echo (tests, benchmarks)"),
    OPT("jwt-secret", CFG_STR, jwt_secret, "", 0, 0,
        "HS256 key for signing and verifying tokens (default: generated into <data-dir>/jwt-secret)"),
    {"jwt-algorithm", CFG_STR, offsetof(hd_config_t, jwt_algorithm), "HS256", 0, 0,
     "HS256 | RS256 | ES256: the only algorithm tokens may use", validate_jwt_algorithm},
    OPT("jwt-public-key", CFG_STR, jwt_public_key, "", 0, 0, "PEM file of the public key verifying RS256/ES256 tokens"),
    OPT("jwt-private-key", CFG_STR, jwt_private_key, "", 0, 0,
        "PEM file of the private key signing RS256/ES256 tokens (sign-in, herald token); optional"),
    OPT("jwt-issuer", CFG_STR, jwt_issuer, "", 0, 0, "when set, tokens must carry this `iss` (and minted ones do)"),
    OPT("jwt-audience", CFG_STR, jwt_audience, "", 0, 0, "when set, tokens must carry this `aud` (and minted ones do)"),
    OPT("jwt-max-ttl", CFG_INT, jwt_max_ttl, "604800", 0, 315360000,
        "longest token lifetime accepted, seconds (exp - iat, or exp - now): tokens without exp or living longer "
        "are refused, minted ones are capped (0 = no cap)"),
    OPT("api-key", CFG_STR, api_key, "", 0, 0, "key for backend calls (X-API-Key header)"),
    OPT("redis-url", CFG_STR, redis_url, "", 0, 0,
        "redis://[[user]:password@]host[:port][/db] to join a cluster of Herald and socket.io nodes (empty = single node)"),
    OPT("redis-prefix", CFG_STR, redis_prefix, "socket.io", 0, 0,
        "Redis channel prefix of the cluster (the `key` of @socket.io/redis-adapter)"),
    {"advertise-url", CFG_STR, offsetof(hd_config_t, advertise_url), "", 0, 0,
     "http://host[:port] where the other nodes reach this one, for Engine.IO requests of its sessions that "
     "land elsewhere (empty = the listen address; 0.0.0.0 becomes 127.0.0.1)", validate_advertise_url},
    OPT("forward-max", CFG_INT, forward_max, "1024", 1, 1000000,
        "requests forwarded to other nodes at once per shard (polling requests and WebSocket pipes); beyond it 503"),
    OPT("redis-max-queue", CFG_INT, redis_max_queue, "8388608", 64 * KiB, 1 * GiB,
        "bytes of cluster messages sent to Redis and not yet answered at most; beyond it a message stays on this node "
        "(counted in herald_cluster_dropped_total)"),
    OPT("redis-timeout", CFG_INT, redis_timeout, "3000", 100, 600000,
        "ms a Redis connect or PING may go unanswered before the link counts as down (reconnected with backoff)"),
    OPT("max-request-line", CFG_INT, max_request_line, "8192", 64, 1 * MiB,
        "request line bytes at most (else 414)"),
    OPT("max-header-size", CFG_INT, max_header_size, "16384", 256, 1 * MiB,
        "request header bytes at most (else 431)"),
    OPT("max-header-count", CFG_INT, max_header_count, "64", 4, 512,
        "request headers at most (else 431)"),
    OPT("max-body-size", CFG_INT, max_body_size, "1048576", 0, 1 * GiB,
        "request body bytes at most (else 413)"),
    OPT("header-timeout", CFG_INT, header_timeout, "10000", 100, 3600000,
        "ms allowed to receive a request's headers (slowloris guard)"),
    OPT("keepalive-timeout", CFG_INT, keepalive_timeout, "5000", 100, 3600000,
        "ms an idle keep-alive HTTP connection stays open"),
    OPT("send-timeout", CFG_INT, send_timeout, "30000", 100, 3600000,
        "ms a connection may keep unsent bytes without the peer reading any (slow readers are closed)"),
    OPT("static-max-age", CFG_INT, static_max_age, "0", 0, 31536000,
        "Cache-Control max-age (s) for static files; 0 = no-cache (revalidate with ETag)"),
    OPT("ws-max-message-size", CFG_INT, ws_max_message_size, "4194304", 125, 1 * GiB,
        "WebSocket message bytes at most, after decompression (else close 1009)"),
    OPT("max-backpressure", CFG_INT, max_backpressure, "8388608", 64 * KiB, 4 * GiB,
        "unsent bytes queued for one connection at most (else close 1008)"),
    OPT("ws-idle-timeout", CFG_INT, ws_idle_timeout, "120000", 0, 86400000,
        "ms without any frame from a WebSocket client before it is closed (0 = never)"),
    OPT("ws-ping-interval", CFG_INT, ws_ping_interval, "30000", 0, 86400000,
        "ms of client silence after which the server sends a ping (0 = never)"),
    OPT("ws-deflate", CFG_BOOL, ws_deflate, "true", 0, 0,
        "accept permessage-deflate when a client offers it"),
    OPT("ws-deflate-threshold", CFG_INT, ws_deflate_threshold, "256", 0, 1 * GiB,
        "messages shorter than this are sent uncompressed"),
    OPT("ws-deflate-window-bits", CFG_INT, ws_deflate_window_bits, "15", 9, 15,
        "largest LZ77 window (server_max_window_bits) the server compresses with"),
    OPT("shutdown-grace", CFG_INT, shutdown_grace, "10000", 0, 600000,
        "ms to finish in-flight work after SIGTERM/SIGINT before exiting"),
    OPT("socketio-path", CFG_STR, socketio_path, "/socket.io/", 0, 0, "where Socket.IO (Engine.IO) is served"),
    OPT("ping-interval", CFG_INT, ping_interval, "25000", 50, 3600000,
        "ms between Engine.IO pings sent by the server"),
    OPT("ping-timeout", CFG_INT, ping_timeout, "20000", 50, 3600000,
        "ms to wait for a pong before the Engine.IO session is closed"),
    OPT("upgrade-timeout", CFG_INT, upgrade_timeout, "10000", 50, 3600000,
        "ms allowed to complete a polling-to-WebSocket upgrade"),
    OPT("connect-timeout", CFG_INT, connect_timeout, "45000", 50, 3600000,
        "ms allowed between the Engine.IO handshake and the first Socket.IO CONNECT"),
    OPT("max-http-buffer-size", CFG_INT, max_http_buffer_size, "1000000", 1024, 1 * GiB,
        "bytes per Engine.IO message or polling request at most (maxHttpBufferSize)"),
    OPT("max-eio-sessions", CFG_INT, max_eio_sessions, "10000", 1, 1000000,
        "Engine.IO sessions open at once over the node, authenticated or not (else the handshake gets 503)"),
    OPT("max-polling-bytes", CFG_INT, max_polling_bytes, "134217728", 64 * KiB, 64 * GiB,
        "bytes of Engine.IO polling output waiting for GETs over the node at most (each session also at most 8 MiB); "
        "past it the session pushed to is closed (transport error)"),
    OPT("eio-handshake-rate", CFG_INT, eio_handshake_rate, "20", 0, 1000000,
        "Engine.IO handshakes per second per client address (token bucket; else 429; 0 = no limit)"),
    OPT("eio-handshake-burst", CFG_INT, eio_handshake_burst, "40", 1, 1000000,
        "token bucket size for --eio-handshake-rate"),
    OPT("allow-eio3", CFG_BOOL, allow_eio3, "false", 0, 0,
        "accept Engine.IO v3 clients (socket.io-client 2.x, older mini-program ports)"),
    OPT("namespaces", CFG_STR, namespaces, "/", 0, 0, "comma-separated Socket.IO namespaces"),
    OPT("recovery-window", CFG_INT, recovery_window, "120000", 0, 86400000,
        "ms a disconnected Socket.IO client may come back and recover its state (0 = off)"),
    OPT("recovery-max-sessions", CFG_INT, recovery_max_sessions, "100000", 1, 10000000,
        "dropped Socket.IO sockets kept for recovery at once over the node (past it a dropping socket cannot recover)"),
    OPT("recovery-max-bytes", CFG_INT, recovery_max_bytes, "67108864", 1048576, 68719476736,
        "bytes of recovery state (kept sessions and recorded packets) at most; past it the oldest packets go first"),
    OPT("test-handlers", CFG_BOOL, test_handlers, "false", 0, 0,
        "Socket.IO conformance handlers on / and /custom (tests, benchmarks)"),
    OPT("max-rooms-per-socket", CFG_INT, max_rooms_per_socket, "1000", 1, 1000000,
        "rooms (topics) one Socket.IO socket or JSON connection may join at most"),
    OPT("socketio-client-dir", CFG_STR, socketio_client_dir, "node_modules/socket.io-client/dist", 0, 0,
        "directory of socket.io-client's dist files, served at <socketio-path>socket.io.js"),
    OPT("js-client-dir", CFG_STR, js_client_dir, "clients/js", 0, 0,
        "directory of herald-client.js, served at /herald-client.js"),
    OPT("admin-ui", CFG_BOOL, admin_ui, "false", 0, 0,
        "Socket.IO Admin UI: its server protocol on namespace /admin (admin users only) and the stock UI at /socket-admin/"),
    OPT("admin-ui-root", CFG_STR, admin_ui_root, "node_modules/@socket.io/admin-ui/ui/dist", 0, 0,
        "directory of the stock Admin UI (npm @socket.io/admin-ui's ui/dist), served at /socket-admin/"),
    OPT("admin-ui-server-id", CFG_STR, admin_ui_server_id, "", 0, 0,
        "the name of this node in the Admin UI's server list (empty: hostname#pid)"),
    {"admin-ui-mode", CFG_STR, offsetof(hd_config_t, admin_ui_mode), "development", 0, 0,
     "development | production: as admin-ui's `mode`; production sends only server stats (no sockets, rooms, events)",
     validate_admin_ui_mode},
    OPT("admin-ui-readonly", CFG_BOOL, admin_ui_readonly, "false", 0, 0,
        "Admin UI without actions (join, leave, disconnect, emit): it only watches"),
    OPT("ack-timeout", CFG_INT, ack_timeout, "10000", 100, 3600000,
        "ms before an unacknowledged JSON-protocol notification is sent again"),
    OPT("ack-retries", CFG_INT, ack_retries, "3", 0, 100,
        "redeliveries of an unacknowledged notification before it waits in the inbox"),
    OPT("topic-history", CFG_INT, topic_history, "100", 0, 100000,
        "messages kept per topic for replay (lastSequence)"),
    OPT("topic-history-age", CFG_INT, topic_history_age, "3600000", 0, 604800000,
        "ms a topic message stays replayable (0 = no age limit)"),
    OPT("topic-history-bytes", CFG_INT, topic_history_bytes, "67108864", 64 * KiB, 1024 * GiB,
        "bytes of topic history kept in memory on a single node, all topics together (the oldest go first)"),
    OPT("max-subscriptions", CFG_INT, max_subscriptions, "100", 1, 100000,
        "topics one JSON-protocol connection may subscribe to"),
    OPT("json-max-message", CFG_INT, json_max_message, "65536", 128, 64 * MiB,
        "bytes per JSON-protocol frame (else error 2001 and close 1009)"),
    OPT("json-rate", CFG_INT, json_rate, "50", 1, 1000000,
        "JSON-protocol frames per second per connection (token bucket; else error 2002)"),
    OPT("json-burst", CFG_INT, json_burst, "100", 1, 1000000, "token bucket size for --json-rate"),
    OPT("topic-subscribe-user", CFG_STR, topic_subscribe_user,
        "user:{sub},user:{sub}:*,public,public:*,system,system:*", 0, 0,
        "topics a `user` token may subscribe to ({sub} = its user id, trailing * = prefix); admins: all"),
    OPT("topic-publish-user", CFG_STR, topic_publish_user, "", 0, 0,
        "topics a `user` token may publish to over the JSON protocol (same patterns); admins: all"),
    OPT("inbox-max", CFG_INT, inbox_max, "1000", 0, 1000000,
        "unacknowledged notifications kept per user for the next connection"),
    OPT("max-connections-per-user", CFG_INT, max_connections_per_user, "20", 0, 1000000,
        "JSON-protocol clients (clientIds), and apart from them Socket.IO sockets (one per namespace joined), one user may have "
        "connected at once over the node (else JSON error 1000, close 1008; Socket.IO connect_error with data.code 429; 0 = no cap)"),
    OPT("inbox-page", CFG_INT, inbox_page, "100", 1, 100000,
        "inbox notifications sent to a connection at once; the next page follows when these are acknowledged"),
    OPT("dedupe-window", CFG_INT, dedupe_window, "256", 1, 65536,
        "client messageIds remembered per connection to acknowledge repeats without reprocessing"),
    OPT("db", CFG_STR, db, "", 0, 0, "SQLite database file (default <data-dir>/herald.db)"),
    OPT("store-queue-bytes", CFG_INT, store_queue_bytes, "67108864", 64 * KiB, 64 * GiB,
        "bytes of store requests waiting or being written at most (their copied inputs); beyond, a write is refused at once "
        "(REST 503 JSON, Socket.IO ack error)"),
    OPT("max-socket-store-requests", CFG_INT, max_socket_store_requests, "32", 1, 100000,
        "store writes one Socket.IO socket may have waiting for their ack (chat:send_message, notification:mark_read); "
        "beyond, the event's ack is an error with code 429 and nothing is stored"),
    OPT("postgres-url", CFG_STR, postgres_url, "", 0, 0,
        "postgresql://user:password@host:port/db: keep the store in PostgreSQL, shared by many nodes (empty = SQLite)"),
    OPT("retention-notifications-days", CFG_INT, retention_notifications_days, "0", 0, 36500,
        "days notifications are kept, then pruned in the background (0 = forever)"),
    OPT("retention-chat-days", CFG_INT, retention_chat_days, "0", 0, 36500,
        "days closed chat sessions and their messages are kept after closing (0 = forever)"),
    OPT("retention-interval", CFG_INT, retention_interval, "60000", 100, 86400000,
        "ms between background pruning rounds (each deletes in batches of 500 rows)"),
    {"time-offset", CFG_STR, offsetof(hd_config_t, time_offset), "+08:00", 0, 0,
     "UTC offset of the times in API payloads, +HH:MM | -HH:MM | Z", validate_offset},
    {"display-utc-offset", CFG_STR, offsetof(hd_config_t, display_utc_offset), "+08:00", 0, 0,
     "UTC offset the pages show times in (24-hour HH:mm), +HH:MM | -HH:MM | Z; pages read it from GET /api/v4/config",
     validate_offset},
    OPT("login-max-failures", CFG_INT, login_max_failures, "5", 1, 1000,
        "failed sign-ins per client address per --login-window before 429 (sign-ins still being checked count)"),
    OPT("login-window", CFG_INT, login_window, "60000", 100, 86400000,
        "ms over which --login-max-failures counts; an address with no failure in it is forgotten"),
    OPT("login-concurrency", CFG_INT, login_concurrency, "2", 1, 64,
        "sign-ins checked at once over the node (password hashes queued or running; else 503 with Retry-After)"),
    OPT("demo-users", CFG_BOOL, demo_users, "true", 0, 0,
        "on first start with no users and a loopback --host, create admin/admin123 and user/user123 and say so (refused beyond loopback until their password changes)"),
    OPT("token-ttl", CFG_INT, token_ttl, "86400", 60, 31536000, "seconds a token from /api/v4/auth/login is valid"),
    OPT("chat-max-open-sessions", CFG_INT, chat_max_open_sessions, "3", 0, 1000,
        "customer-service sessions one customer may have open (waiting or active) at once (else 429; 0 = no cap)"),
    OPT("chat-rate", CFG_INT, chat_rate, "2", 0, 1000000,
        "chat messages (and new sessions) per second per customer (token bucket; else 429; 0 = no limit)"),
    OPT("chat-burst", CFG_INT, chat_burst, "20", 1, 1000000, "token bucket size for --chat-rate"),
    OPT("link-hosts", CFG_STR, link_hosts, "", 0, 0,
        "comma-separated hosts notification links may point to as http(s) URLs (default: none, site paths only)"),
    OPT("tls-cert", CFG_STR, tls_cert, "", 0, 0,
        "PEM certificate (then its chain) to serve TLS (https, wss) with --tls-key; re-read on reload (SIGHUP, herald reload)"),
    OPT("tls-key", CFG_STR, tls_key, "", 0, 0, "PEM private key of --tls-cert; re-read on reload"),
    {"tls-min-version", CFG_STR, offsetof(hd_config_t, tls_min_version), "1.2", 0, 0, "1.2 or 1.3: the oldest TLS version accepted",
     validate_tls_version},
    OPT("tls-port", CFG_INT, tls_port, "-1", -1, 65535,
        "with --tls-cert: serve TLS on this port and plain HTTP on --port side by side (0 = any free port); -1 = TLS on --port itself, no plain"),
    OPT("tls-handshake-timeout", CFG_INT, tls_handshake_timeout, "10000", 100, 600000,
        "ms a client has from connecting to finishing its TLS handshake, then it is closed"),
    OPT("tls-max-handshakes", CFG_INT, tls_max_handshakes, "1024", 1, 1000000,
        "TLS handshakes in flight at most over the node; a connection past it is closed at once"),
    OPT("tls-max-handshakes-per-shard", CFG_INT, tls_max_handshakes_per_shard, "256", 1, 1000000,
        "TLS handshakes in flight at most on one shard; a connection past it is closed at once"),
    OPT("pid-file", CFG_STR, pid_file, "", 0, 0,
        "file the server writes its process id to while it runs (for `herald reload`); \"\" = none"),
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

const char *hd_config_store_location(const hd_config_t *cfg, char *buf, size_t len) {
  if (*cfg->postgres_url) snprintf(buf, len, "%s", cfg->postgres_url);
  else if (*cfg->db) snprintf(buf, len, "%s", cfg->db);
  else snprintf(buf, len, "%s/herald.db", cfg->data_dir);
  return buf;
}

static const cfg_option_t *find_option(const char *name, size_t len) {
  for (size_t i = 0; i < N_OPTIONS; i++) {
    const char *o = options[i].name;
    if (strlen(o) != len) continue;
    size_t j = 0;
    for (; j < len; j++) {
      char c = (char)tolower((unsigned char)name[j]);
      if (c == '_') c = '-';
      if (c != o[j]) break;
    }
    if (j == len) return &options[i];
  }
  return NULL;
}

static int parse_bool(const char *v, bool *out) {
  if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
    *out = true;
    return 0;
  }
  if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
    *out = false;
    return 0;
  }
  return HD_EINVAL;
}

static int apply(hd_config_t *cfg, const cfg_option_t *o, const char *value, char *err, size_t errlen) {
  char *field = (char *)cfg + o->offset;
  switch (o->type) {
    case CFG_INT: {
      errno = 0;
      char *end;
      long long v = strtoll(value, &end, 10);
      if (errno || end == value || *end || v < o->min || v > o->max) {
        snprintf(err, errlen, "invalid value '%s' for option '%s': expected an integer in [%lld, %lld]",
                 value, o->name, (long long)o->min, (long long)o->max);
        return HD_EINVAL;
      }
      *(int64_t *)field = v;
      return 0;
    }
    case CFG_BOOL:
      if (parse_bool(value, (bool *)field)) {
        snprintf(err, errlen, "invalid value '%s' for option '%s': expected true or false", value, o->name);
        return HD_EINVAL;
      }
      return 0;
    case CFG_STR: {
      if (o->validate && o->validate(value)) {
        snprintf(err, errlen, "invalid value '%s' for option '%s': expected %s", value, o->name, o->help);
        return HD_EINVAL;
      }
      char *copy = strdup(value);
      if (!copy) return HD_ENOMEM;
      free(*(char **)field);
      *(char **)field = copy;
      return 0;
    }
  }
  return HD_EINVAL;
}

void hd_config_defaults(hd_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  char err[8];
  for (size_t i = 0; i < N_OPTIONS; i++) apply(cfg, &options[i], options[i].def, err, sizeof err);
}

int hd_config_set(hd_config_t *cfg, const char *name, const char *value, char *err, size_t errlen) {
  const cfg_option_t *o = find_option(name, strlen(name));
  if (!o) {
    snprintf(err, errlen, "unknown option '%s' (see herald serve --help)", name);
    return HD_ENOTFOUND;
  }
  return apply(cfg, o, value, err, errlen);
}

static int load_file(hd_config_t *cfg, const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "--config '%s' is a directory: give the config file itself", path);
    return HD_EINVAL;
  }
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "cannot open config file '%s': %s", path, strerror(errno));
    return HD_EINVAL;
  }
  char line[4096];
  int lineno = 0, rc = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    char *p = line;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '#' || *p == '\0') continue;
    char *key = p;
    while (*p && !isspace((unsigned char)*p) && *p != '=') p++;
    char *key_end = p;
    while (isspace((unsigned char)*p) || *p == '=') p++;
    char *val = p;
    size_t vlen = strcspn(val, "\r\n");
    while (vlen && isspace((unsigned char)val[vlen - 1])) vlen--;
    val[vlen] = '\0';
    if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') val[vlen - 1] = '\0', val++;
    *key_end = '\0';
    char sub[512];
    rc = hd_config_set(cfg, key, val, sub, sizeof sub);
    if (rc) snprintf(err, errlen, "%s:%d: %s", path, lineno, sub);
  }
  fclose(f);
  return rc ? HD_EINVAL : 0;
}

/* HERALD_UPPER_SNAKE name for an option, into buf. */
static void env_name(const cfg_option_t *o, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "HERALD_%s", o->name);
  for (size_t i = 7; i < n && i < len; i++) buf[i] = buf[i] == '-' ? '_' : (char)toupper((unsigned char)buf[i]);
}

int hd_config_load(hd_config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen) {
  /* 1. config file: the flag wins over the environment for its location. */
  const char *path = NULL;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--config") && i + 1 < argc) path = argv[i + 1];
    else if (!strncmp(argv[i], "--config=", 9)) path = argv[i] + 9;
  }
  for (char **e = envp; !path && e && *e; e++)
    if (!strncmp(*e, "HERALD_CONFIG=", 14)) path = *e + 14;
  if (path && *path && load_file(cfg, path, err, errlen)) return HD_EINVAL;

  /* 2. environment */
  for (size_t i = 0; envp && i < N_OPTIONS; i++) {
    char name[96];
    env_name(&options[i], name, sizeof name);
    size_t nlen = strlen(name);
    for (char **e = envp; *e; e++) {
      if (strncmp(*e, name, nlen) || (*e)[nlen] != '=') continue;
      char sub[512];
      if (apply(cfg, &options[i], *e + nlen + 1, sub, sizeof sub)) {
        snprintf(err, errlen, "environment %s: %s", name, sub);
        return HD_EINVAL;
      }
    }
  }

  /* 3. flags: --name value, --name=value, or a bare --name for booleans */
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0) {
      snprintf(err, errlen, "unexpected argument '%s' (options are --name value)", arg);
      return HD_EINVAL;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    const cfg_option_t *o = find_option(name, nlen);
    if (!o) {
      snprintf(err, errlen, "unknown option '%.*s' (see herald serve --help)", (int)nlen + 2, arg);
      return HD_EINVAL;
    }
    const char *value;
    if (eq) value = eq + 1;
    else if (o->type == CFG_BOOL && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) value = "true";
    else if (i + 1 < argc) value = argv[++i];
    else {
      snprintf(err, errlen, "option '--%s' needs a value", o->name);
      return HD_EINVAL;
    }
    if (apply(cfg, o, value, err, errlen)) return HD_EINVAL;
  }
  return 0;
}

void hd_config_print_help(FILE *out, bool markdown) {
  static const char *type_names[] = {"int", "bool", "string"};
  if (markdown)
    fprintf(out, "| flag | environment | type | default | range | meaning |\n|---|---|---|---|---|---|\n");
  else
    fprintf(out, "Usage: herald serve [--option value ...]\n\n"
                 "Every option may also be set as HERALD_<NAME> in the environment or as `name = value`\n"
                 "in the --config file. Precedence: flag > environment > config file > default.\n\n");
  for (size_t i = 0; i < N_OPTIONS; i++) {
    const cfg_option_t *o = &options[i];
    char env[96], range[64] = "";
    env_name(o, env, sizeof env);
    if (o->type == CFG_INT) snprintf(range, sizeof range, "%lld..%lld", (long long)o->min, (long long)o->max);
    const char *def = *o->def ? o->def : "\"\"";
    if (markdown)
      fprintf(out, "| `--%s` | `%s` | %s | `%s` | %s | %s |\n", o->name, env, type_names[o->type], def, range, o->help);
    else
      fprintf(out, "  --%-24s %-6s default %s%s%s%s\n      %s (env %s)\n", o->name, type_names[o->type], def,
              *range ? " [" : "", range, *range ? "]" : "", o->help, env);
  }
}

void hd_config_each_change(const hd_config_t *a, const hd_config_t *b, void (*fn)(const char *name, void *arg), void *arg) {
  for (size_t i = 0; i < N_OPTIONS; i++) {
    const char *fa = (const char *)a + options[i].offset, *fb = (const char *)b + options[i].offset;
    bool same = options[i].type == CFG_INT ? *(const int64_t *)fa == *(const int64_t *)fb
                : options[i].type == CFG_BOOL ? *(const bool *)fa == *(const bool *)fb
                : !strcmp(*(char *const *)fa, *(char *const *)fb);
    if (!same) fn(options[i].name, arg);
  }
}

void hd_config_free(hd_config_t *cfg) {
  for (size_t i = 0; i < N_OPTIONS; i++)
    if (options[i].type == CFG_STR) {
      char **field = (char **)((char *)cfg + options[i].offset);
      free(*field);
      *field = NULL;
    }
}
