/* Application set-up: hub, Socket.IO, route table (see app.h). */
#include "app/app.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/admin_ui.h"
#include "app/chat.h"
#include "app/health.h"
#include "app/last_status.h"
#include "app/notifications.h"
#include "app/page_config.h"
#include "app/retention.h"
#include "app/system_events.h"
#include "app/presence.h"
#include "app/topic_policy.h"
#include "app/users.h"
#include "app/users_api.h"
#include "app/user_conns.h"
#include "app/user_states.h"
#include "app/user_watch.h"
#include "app/mem_trim.h"
#include "app/publish_api.h"
#include "app/topic_store.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/path.h"
#include "delivery/topic_log.h"
#include "proto/echo.h"
#include "proto/eio_echo.h"
#include "proto/sio_test_handlers.h"

#define EIO_RATE_SLOTS 4096  /* client addresses tracked for --eio-handshake-rate (fixed memory) */
#define CHAT_RATE_SLOTS 4096 /* customers tracked for --chat-rate (fixed memory) */

/* The signing key: --jwt-secret, else <data-dir>/jwt-secret, created (0600) on first start. */
static int load_secret(const hd_config_t *cfg, char *out, size_t len) {
  if (*cfg->jwt_secret) {
    snprintf(out, len, "%s", cfg->jwt_secret);
    return 0;
  }
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/jwt-secret", cfg->data_dir);
  FILE *f = fopen(path, "r");
  if (f) {
    size_t n = fread(out, 1, len - 1, f);
    fclose(f);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r')) n--;
    out[n] = '\0';
    if (n >= 16) return 0;
    HD_ERROR("app", "jwt-secret file too short (16 characters at least)", "path=%s", path);
    return HD_EINVAL;
  }
  if (mkdir(cfg->data_dir, 0700) && errno != EEXIST) {
    HD_ERROR("app", "cannot create data directory", "path=%s err=\"%s\"", cfg->data_dir, strerror(errno));
    return HD_EIO;
  }
  hd_id_random(out, 43); /* 258 bits */
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0 || write(fd, out, strlen(out)) != (ssize_t)strlen(out)) {
    HD_ERROR("app", "cannot write jwt-secret", "path=%s err=\"%s\"", path, strerror(errno));
    if (fd >= 0) close(fd);
    return HD_EIO;
  }
  close(fd);
  HD_INFO("app", "generated a JWT signing key (set --jwt-secret to share one between nodes)", "path=%s", path);
  return 0;
}

/* Reads a whole (small) file into a malloc'd string. */
static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *text = malloc(65537);
  size_t n = text ? fread(text, 1, 65536, f) : 0;
  fclose(f);
  if (text) text[n] = '\0';
  return text;
}

int hd_app_jwt_setup(const hd_config_t *cfg, hd_app_keys_t *keys, hd_jwt_config_t *jwt) {
  memset(keys, 0, sizeof(*keys));
  *jwt = (hd_jwt_config_t){.issuer = cfg->jwt_issuer, .audience = cfg->jwt_audience, .leeway_s = 5,
                           .algorithm = cfg->jwt_algorithm, .max_ttl_s = cfg->jwt_max_ttl};
  if (!*cfg->jwt_algorithm || !strcmp(cfg->jwt_algorithm, "HS256")) {
    int rc = load_secret(cfg, keys->secret, sizeof keys->secret);
    jwt->secret = keys->secret;
    return rc;
  }
  if (!*cfg->jwt_public_key || !(keys->public_key = read_file(cfg->jwt_public_key))) {
    HD_ERROR("app", "--jwt-algorithm RS256/ES256 needs a readable --jwt-public-key PEM file", "path=%s",
             cfg->jwt_public_key);
    return HD_EINVAL;
  }
  if (*cfg->jwt_private_key && !(keys->private_key = read_file(cfg->jwt_private_key))) {
    HD_ERROR("app", "cannot read --jwt-private-key", "path=%s", cfg->jwt_private_key);
    hd_app_keys_free(keys);
    return HD_EINVAL;
  }
  jwt->public_key = keys->public_key;
  jwt->private_key = keys->private_key;
  return 0;
}

void hd_app_keys_free(hd_app_keys_t *keys) {
  free(keys->public_key);
  free(keys->private_key);
  memset(keys, 0, sizeof(*keys));
}

/* Token verification installed into the protocols: a valid token of a user who is not refused. */
static int authenticate(void *arg, const char *token, hd_claims_t *out, const char **why) {
  hd_app_shared_t *sh = arg;
  int rc = hd_jwt_verify(&sh->jwt, token, out, why);
  return rc ? rc : hd_user_states_check(sh->user_states, out, why);
}

/* True when host names the loopback interface only. */
static bool loopback_host(const char *host) {
  return !strncmp(host, "127.", 4) || !strcmp(host, "::1") || !strcmp(host, "localhost");
}

/* Socket.IO sockets per user (--max-connections-per-user), counted over the node. */
static int admit_socket(void *arg, const hd_claims_t *claims, const char **why) {
  int rc = hd_user_conns_take(arg, claims->sub);
  if (rc == HD_ERANGE) *why = "too many connections for this user (--max-connections-per-user): close one first";
  else if (rc) *why = "cannot accept now";
  return rc;
}

static void release_socket(void *arg, const hd_claims_t *claims) { hd_user_conns_give(arg, claims->sub); }

static int setup_sio(hd_app_t *app) {
  const hd_config_t *cfg = app->srv->cfg;
  char namespaces[1024];
  snprintf(namespaces, sizeof namespaces, "%s%s%s", cfg->namespaces, cfg->test_handlers ? ",/,/custom" : "",
           cfg->admin_ui ? "," HD_ADMIN_UI_NAMESPACE : "");
  hd_sio_options_t opt = {
      .path = cfg->socketio_path,
      .namespaces = namespaces,
      .ping_interval_ms = (uint64_t)cfg->ping_interval,
      .ping_timeout_ms = (uint64_t)cfg->ping_timeout,
      .upgrade_timeout_ms = (uint64_t)cfg->upgrade_timeout,
      .connect_timeout_ms = (uint64_t)cfg->connect_timeout,
      .max_payload = (size_t)cfg->max_http_buffer_size,
      .allow_eio3 = cfg->allow_eio3,
      .node_tag = app->shared->node_tag,
      .recovery = app->shared->recovery,
      .max_rooms_per_socket = (uint32_t)cfg->max_rooms_per_socket,
      .max_attachments = 10,
      .auth_optional = cfg->test_handlers,
      .authenticate = authenticate,
      .auth_arg = app->shared,
      .admit = cfg->max_connections_per_user ? admit_socket : NULL,
      .release = release_socket,
      .admit_arg = app->shared->sio_users,
      .eio_limits = {(uint32_t)cfg->max_eio_sessions, &app->shared->eio_sessions, app->shared->eio_handshakes,
                     (size_t)cfg->max_polling_bytes, &app->shared->eio_polling_bytes, &app->shared->eio_closed},
      .keep_handshake = cfg->admin_ui && strcmp(cfg->admin_ui_mode, "production"), /* shown with the sockets */
  };
  app->sio = hd_sio_server_new(app->srv, app->hub, &opt);
  if (!app->sio) return HD_EINVAL;
  if (cfg->test_handlers) {
    const char *nsps[] = {"/", "/custom"};
    int rc = hd_sio_test_handlers_register(app->sio, nsps, 2);
    if (rc) return rc;
    /* the raw Engine.IO echo the engine.io protocol's test suite expects */
    hd_eio_options_t eo = {"/engine.io/", opt.ping_interval_ms, opt.ping_timeout_ms, opt.upgrade_timeout_ms,
                           opt.max_payload, cfg->allow_eio3, {0}, opt.eio_limits, 0};
    memcpy(eo.node_tag, app->shared->node_tag, 3);
    if (!(app->eio_echo = hd_eio_echo_new(app->srv, &eo))) return HD_ENOMEM;
    if ((rc = hd_eio_server_route(app->eio_echo, app->srv->router))) return rc;
  }
  return hd_sio_server_route(app->sio, app->srv->router);
}

static int setup_json(hd_app_t *app) {
  const hd_config_t *cfg = app->srv->cfg;
  app->json_inbox = (hd_json_inbox_t){.store = app->store, .srv = app->srv, .max = (uint32_t)cfg->inbox_max};
  if (cfg->inbox_max && hd_server_add_flush_hook(app->srv, hd_json_inbox_flush, &app->json_inbox)) return HD_ERANGE;
  if (cfg->inbox_max) hd_hub_set_persist(app->hub, hd_json_inbox_persisted, &app->json_inbox); /* persist, then answer */
  hd_jp_options_t opt = {
      .ack_timeout_ms = (uint64_t)cfg->ack_timeout,
      .ack_retries = (uint32_t)cfg->ack_retries,
      /* both bound a JSON connection (README: --max-rooms-per-socket covers it too) */
      .max_subscriptions = (uint32_t)(cfg->max_subscriptions < cfg->max_rooms_per_socket ? cfg->max_subscriptions : cfg->max_rooms_per_socket),
      .max_message = (size_t)cfg->json_max_message,
      .rate = (uint32_t)cfg->json_rate,
      .burst = (uint32_t)cfg->json_burst,
      .policy = {authenticate, app->shared, hd_topic_policy_may_subscribe, hd_topic_policy_may_publish,
                 app->shared->topics},
      .inbox = hd_json_inbox(&app->json_inbox),
      .inbox_page = (uint32_t)cfg->inbox_page,
      .max_per_user = (uint32_t)cfg->max_connections_per_user,
      .dedupe = app->shared->dedupe,
      .clients = app->shared->json_clients,
  };
  app->jp = hd_jp_server_new(app->srv, app->hub, &opt);
  if (!app->jp) return HD_ENOMEM;
  int rc = hd_jp_server_route(app->jp, app->srv->router);
  return rc ? rc : hd_router_add(app->srv->router, "POST", "/api/v1/publish", hd_publish_handle, app);
}

/* Routes <socketio-path>socket.io.js, .min.js and their maps to the installed socket.io-client. */
static int route_client_bundle(hd_app_t *app) {
  const hd_config_t *cfg = app->srv->cfg;
  char real[PATH_MAX];
  if (hd_path_resolve(cfg->socketio_client_dir, real)) {
    HD_WARN("app", "socket.io-client files not found: the bundle is not served", "dir=%s", cfg->socketio_client_dir);
    return 0;
  }
  app->client_root.root = strdup(real);
  app->client_root.strip = strlen(cfg->socketio_path) - (cfg->socketio_path[strlen(cfg->socketio_path) - 1] == '/');
  static const char *files[] = {"socket.io.js", "socket.io.min.js", "socket.io.js.map", "socket.io.min.js.map"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char route[512];
    snprintf(route, sizeof route, "%s%s%s", cfg->socketio_path,
             cfg->socketio_path[strlen(cfg->socketio_path) - 1] == '/' ? "" : "/", files[i]);
    int rc = hd_router_add(app->srv->router, "GET", route, hd_static_files_handle, &app->client_root);
    if (rc) return rc;
  }
  return 0;
}

/* Routes /herald-client.js to the JSON-protocol client in --js-client-dir. */
static int route_js_client(hd_app_t *app) {
  char real[PATH_MAX];
  if (hd_path_resolve(app->srv->cfg->js_client_dir, real)) {
    HD_WARN("app", "herald-client.js not found: it is not served", "dir=%s", app->srv->cfg->js_client_dir);
    return 0;
  }
  app->js_root.root = strdup(real);
  return app->js_root.root ? hd_router_add(app->srv->router, "GET", "/herald-client.js", hd_static_files_handle,
                                           &app->js_root)
                           : HD_ENOMEM;
}

/* The hub's publish observer: Socket.IO recovery records (when on) and the last system status. */
static void observe_publish(hd_hub_msg_t *msg, void *arg) {
  hd_app_shared_t *sh = arg;
  if (sh->recovery) hd_recovery_observe(msg, sh->recovery);
  hd_last_status_observe(sh->last_status, msg);
}

int hd_app_shared_init(hd_app_shared_t *sh, const hd_config_t *cfg, uint32_t shard_count) {
  memset(sh, 0, sizeof(*sh));
  sh->cfg = cfg;
  sh->shard_count = shard_count;
  hd_id_random(sh->node_tag, 3);
  int rc = hd_app_jwt_setup(cfg, &sh->keys, &sh->jwt);
  if (rc) return rc;
  if ((rc = hd_hub_shared_init(&sh->hub, shard_count))) return rc;
  sh->history = hd_history_new((uint32_t)cfg->topic_history, (uint64_t)cfg->topic_history_age);
  sh->dedupe = hd_dedupe_new((uint32_t)cfg->dedupe_window, DEDUPE_KEEP_MS);
  sh->json_clients = hd_jp_clients_new(shard_count);
  sh->sio_users = hd_user_conns_new((uint32_t)cfg->max_connections_per_user);
  sh->topics = hd_topic_policy_new(cfg->topic_subscribe_user, cfg->topic_publish_user);
  if (!sh->dedupe || !sh->json_clients || !sh->sio_users || !sh->topics) return HD_ENOMEM;
  sh->presence = hd_presence_shared_new();
  if (!(sh->last_status = hd_last_status_new())) return HD_ENOMEM;
  if (!(sh->user_states = hd_user_states_new(loopback_host(cfg->host)))) return HD_ENOMEM;
  if (cfg->eio_handshake_rate &&
      !(sh->eio_handshakes = hd_addr_rate_new(EIO_RATE_SLOTS, (uint32_t)cfg->eio_handshake_rate,
                                              (uint32_t)cfg->eio_handshake_burst)))
    return HD_ENOMEM;
  if (cfg->chat_rate &&
      !(sh->chat_senders = hd_addr_rate_new(CHAT_RATE_SLOTS, (uint32_t)cfg->chat_rate, (uint32_t)cfg->chat_burst)))
    return HD_ENOMEM;
  sh->apps = calloc(shard_count, sizeof(*sh->apps));
  if (cfg->recovery_window > 0)
    sh->recovery = hd_recovery_new((uint64_t)cfg->recovery_window, HD_RECOVERY_MAX_PACKETS);
  if (sh->recovery)
    hd_recovery_set_limits(sh->recovery, (size_t)cfg->recovery_max_sessions, (size_t)cfg->recovery_max_bytes);
  if (!sh->history || !sh->presence || !sh->apps || (cfg->recovery_window > 0 && !sh->recovery)) return HD_ENOMEM;
  sh->hub.history = sh->history;
  hd_history_set_max_bytes(sh->history, (size_t)cfg->topic_history_bytes);
  if (!(sh->hub.topics = hd_topic_log_local_new(sh->history))) return HD_ENOMEM; /* a cluster's replaces it */
  sh->hub.observer = observe_publish;
  sh->hub.observer_arg = sh;
  return 0;
}

void hd_app_shared_free(hd_app_shared_t *sh) {
  hd_recovery_free(sh->recovery);
  if (sh->hub.topics) sh->hub.topics->ops->free(sh->hub.topics);
  hd_history_free(sh->history);
  hd_dedupe_free(sh->dedupe);
  hd_jp_clients_free(sh->json_clients);
  hd_user_conns_free(sh->sio_users);
  hd_topic_policy_free(sh->topics);
  hd_presence_shared_free(sh->presence);
  hd_users_limiter_free(sh->login_limiter);
  hd_user_states_free(sh->user_states);
  hd_last_status_free(sh->last_status);
  hd_addr_rate_free(sh->eio_handshakes);
  hd_addr_rate_free(sh->chat_senders);
  hd_hub_shared_destroy(&sh->hub);
  free(sh->apps);
  hd_app_keys_free(&sh->keys);
  memset(sh, 0, sizeof(*sh));
}

int hd_app_init(hd_app_t *app, hd_app_shared_t *shared, uint32_t shard, hd_server_t *srv, hd_mailbox_t *mailbox,
                hd_store_t *store) {
  memset(app, 0, sizeof(*app));
  app->shared = shared;
  app->shard = shard;
  app->mailbox = mailbox;
  app->srv = srv;
  app->store = store;
  shared->apps[shard] = app;
  const hd_config_t *cfg = srv->cfg;
  int rc;
  hd_hub_limits_t limits = {.max_rooms_per_member = (uint32_t)cfg->max_rooms_per_socket + 1}; /* + a socket's all-room */
  app->hub = hd_hub_new(&limits, &shared->hub, shard, mailbox);
  if (!app->hub) return HD_ENOMEM;
  if ((rc = hd_topic_store_start(app))) return rc;
  if ((rc = setup_sio(app))) return rc;
  if ((rc = setup_json(app))) return rc;
  if ((rc = hd_presence_register(app))) return rc;
  if ((rc = hd_users_register(app))) return rc;
  if ((rc = hd_users_api_register(app))) return rc;
  if ((rc = hd_notifications_register(app))) return rc;
  if ((rc = hd_system_events_register(app))) return rc;
  if ((rc = hd_page_config_register(app))) return rc;
  if ((rc = hd_chat_register(app))) return rc;
  if ((rc = hd_admin_ui_register(app))) return rc;
  if (shard == 0 && (rc = hd_retention_start(app))) return rc;
  if (shard == 0 && (rc = hd_mem_trim_start(app))) return rc;
  if ((rc = route_client_bundle(app))) return rc;
  if ((rc = route_js_client(app))) return rc;
  hd_router_t *r = srv->router;
  if ((rc = hd_router_add(r, "GET", "/health", hd_health_handle, app))) return rc;
  if ((rc = hd_router_add(r, "GET", "/metrics", hd_metrics_handle, app))) return rc;
  if (cfg->echo_endpoint && (rc = hd_router_add(r, "GET", "/ws/echo", hd_echo_handle, NULL))) return rc;
  return hd_router_add(r, "GET", "/*", hd_static_files_handle, NULL);
}

void hd_app_free(hd_app_t *app) {
  /* the store first: its last callbacks (answers, pushes) still find every module alive; when it
   * returns, every answered write of this shard is durable */
  hd_json_inbox_close(&app->json_inbox);
  hd_topic_store_stop(app);
  hd_retention_stop(app);
  hd_mem_trim_stop(app);
  hd_store_close(app->store);
  app->store = NULL;
  hd_user_watch_stop(app);
  hd_notifications_free(app);
  hd_system_events_free(app);
  hd_jp_server_free(app->jp);
  hd_admin_ui_free(app);
  hd_sio_server_free(app->sio);
  hd_eio_server_free(app->eio_echo);
  hd_presence_free(app);
  hd_hub_free(app->hub);
  free((char *)app->client_root.root);
  free((char *)app->js_root.root);
  if (app->shared) app->shared->apps[app->shard] = NULL;
  memset(app, 0, sizeof(*app));
}
