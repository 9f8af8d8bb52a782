/* The configuration table: one row per option (name, type, default, limits, help), fed alike by
 * a config file, HERALD_* environment variables and --kebab-case flags, in that order of precedence
 * (flags win). `herald serve --help` prints the table. */
#ifndef HD_CONFIG_H
#define HD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  char *config;
  char *host;
  int64_t port;
  char *data_dir;
  char *log_level;
  char *log_format;
  char *web_root;
  int64_t max_connections;
  int64_t backlog;
  int64_t shards;
  char *cors_origin;
  bool cors_credentials;
  char *ws_origins;
  bool echo_endpoint;
  char *jwt_secret;
  char *jwt_algorithm;
  char *jwt_public_key;
  char *jwt_private_key;
  char *jwt_issuer;
  char *jwt_audience;
  int64_t jwt_max_ttl;
  char *api_key;
  char *redis_url;
  char *redis_prefix;
  char *advertise_url;
  int64_t forward_max;
  int64_t redis_max_queue;
  int64_t redis_timeout;
  int64_t max_request_line;
  int64_t max_header_size;
  int64_t max_header_count;
  int64_t max_body_size;
  int64_t header_timeout;
  int64_t keepalive_timeout;
  int64_t send_timeout;
  int64_t static_max_age;
  int64_t ws_max_message_size;
  int64_t max_backpressure;
  int64_t ws_idle_timeout;
  int64_t ws_ping_interval;
  bool ws_deflate;
  int64_t ws_deflate_threshold;
  int64_t ws_deflate_window_bits;
  int64_t shutdown_grace;
  char *socketio_path;
  int64_t ping_interval;
  int64_t ping_timeout;
  int64_t upgrade_timeout;
  int64_t connect_timeout;
  int64_t max_http_buffer_size;
  bool allow_eio3;
  char *namespaces;
  int64_t recovery_window;
  bool test_handlers;
  int64_t max_rooms_per_socket;
  char *socketio_client_dir;
  char *js_client_dir;
  bool admin_ui;
  char *admin_ui_root;
  char *admin_ui_server_id;
  char *admin_ui_mode;
  bool admin_ui_readonly;
  int64_t ack_timeout;
  int64_t ack_retries;
  int64_t topic_history;
  int64_t topic_history_age;
  int64_t topic_history_bytes;
  int64_t max_subscriptions;
  int64_t json_max_message;
  int64_t json_rate;
  int64_t json_burst;
  char *topic_subscribe_user;
  char *topic_publish_user;
  int64_t inbox_max;
  int64_t dedupe_window;
  char *db;
  char *postgres_url;
  int64_t retention_notifications_days;
  int64_t retention_chat_days;
  int64_t retention_interval;
  char *time_offset;
  char *display_utc_offset;
  int64_t login_max_failures;
  int64_t login_window;
  int64_t store_queue_bytes;
  int64_t max_socket_store_requests;
  bool demo_users;
  int64_t token_ttl;
  char *link_hosts;
  int64_t max_eio_sessions;
  int64_t max_polling_bytes;
  int64_t eio_handshake_rate;
  int64_t eio_handshake_burst;
  int64_t login_concurrency;
  int64_t chat_max_open_sessions;
  int64_t chat_rate;
  int64_t chat_burst;
  int64_t recovery_max_sessions;
  int64_t recovery_max_bytes;
  int64_t inbox_page;
  int64_t max_connections_per_user;
  char *tls_cert;
  char *tls_key;
  char *tls_min_version;
  int64_t tls_port;
  int64_t tls_handshake_timeout;
  int64_t tls_max_handshakes;
  int64_t tls_max_handshakes_per_shard;
  char *pid_file;
} hd_config_t;

/* Where the store lives: --postgres-url when set, else --db, else <data-dir>/herald.db (in buf). */
const char *hd_config_store_location(const hd_config_t *cfg, char *buf, size_t len);
/* Fills cfg with every option's default. Free with hd_config_free(). */
void hd_config_defaults(hd_config_t *cfg);
/* Applies, in order, the config file (--config / HERALD_CONFIG), HERALD_* variables from envp
 * and the flags in argv[0..argc). Returns 0, or HD_EINVAL with a message naming the option in err. */
int hd_config_load(hd_config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen);
/* Sets one option by its kebab-case or snake_case name from text; 0 or HD_EINVAL/HD_ENOTFOUND with err. */
int hd_config_set(hd_config_t *cfg, const char *name, const char *value, char *err, size_t errlen);
/* Prints the table (flag, env, type, default, limits, help) for --help, as text or markdown. */
void hd_config_print_help(FILE *out, bool markdown);
/* Calls fn with the name of every option whose value differs between a and b (e.g. at a reload). */
void hd_config_each_change(const hd_config_t *a, const hd_config_t *b, void (*fn)(const char *name, void *arg), void *arg);
/* Releases the strings the config owns. */
void hd_config_free(hd_config_t *cfg);

#endif
