/* The node: shared state, the shards and their threads, signals (stop, reload), the TLS context,
 * the pid file, start-up and teardown (see node.h). */
#include "node/node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app/admin_ui.h"
#include "cluster/forward.h"
#include "cluster/local.h"
#include "cluster/presence_redis.h"
#include "cluster/redis.h"
#include "cluster/redis_recovery.h"
#include "cluster/redis_topics.h"
#include "cluster/registry.h"
#include "core/error.h"
#include "core/log.h"
#include "core/path.h"
#include "net/tls.h"
#include "node/reload.h"
#include "node/service.h"
#include "node/shard.h"

typedef struct {
  const hd_config_t *cfg;
  uint32_t count;
  hd_app_shared_t shared;
  hd_adapter_t *adapter;
  bool clustered;             /* adapter is the Redis adapter (--redis-url) */
  hd_registry_t *registry;    /* clustered: the node registry (advertised URLs) */
  hd_recovery_cluster_t *recovery; /* clustered with --recovery-window: recovery kept in Redis */
  hd_forward_t **forwards;    /* clustered: each shard's forwarding of other nodes' Engine.IO requests */
  hd_topic_log_t *topics;     /* clustered: the topic log on Redis (owned by shared.hub) */
  hd_presence_redis_t *presence; /* clustered: who is online on every node */
  hd_shard_t *shards;
  hd_server_peer_t *peers;    /* what each shard's server knows of the others */
  uint32_t conn_count;        /* open connections over every shard (atomic), for --max-connections */
  hd_store_t *store;          /* the first handle (shard 0's) */
  uv_signal_t sig_term, sig_int, sig_hup;
  hd_tls_ctx_t *tls;          /* the TLS context at start (each shard holds its own reference), or NULL */
  uint32_t tls_handshakes;    /* TLS handshakes in flight over every shard (atomic) */
  hd_reload_t reload;
  bool stopping, pid_written;
} node_t;

unsigned hd_node_shard_count(const hd_config_t *cfg) {
  if (cfg->shards > 0) return (unsigned)cfg->shards;
  unsigned n = uv_available_parallelism();
  return n ? n : 1;
}

static void on_signal(uv_signal_t *h, int signum) {
  node_t *node = h->data;
  HD_INFO("server", "signal received, shutting down", "signal=%d grace_ms=%lld shards=%u", signum,
          (long long)node->cfg->shutdown_grace, node->count);
  hd_service_stopping();
  if (node->stopping) { /* a second signal: stop now */
    for (uint32_t i = 0; i < node->count; i++) hd_shard_halt(&node->shards[i]);
    return;
  }
  node->stopping = true; /* the handlers stay: a second signal stops at once */
  if (node->registry) hd_registry_stop(node->registry); /* its entry goes before the adapter disconnects */
  if (node->presence) hd_presence_redis_stop(node->presence);
  if (node->clustered) { /* on shard 0's loop, where they run */
    hd_redis_topics_stop(node->topics);
    hd_redis_adapter_stop(node->adapter);
  }
  for (uint32_t i = 0; i < node->count; i++) hd_shard_stop(&node->shards[i]);
}

static void on_hangup(uv_signal_t *h, int signum) {
  node_t *node = h->data;
  if (!node->stopping) hd_reload_run(&node->reload);
}

/* Writes our pid to --pid-file (for `herald reload`). 0 or HD_EIO with the cause logged. */
static int write_pid_file(node_t *node) {
  const char *path = node->cfg->pid_file;
  if (!*path) return 0;
  FILE *f = fopen(path, "w");
  if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f)) {
    HD_ERROR("server", "cannot write --pid-file", "path=%s err=\"%s\"", path, strerror(errno));
    if (f) fclose(f);
    return HD_EIO;
  }
  node->pid_written = true;
  return 0;
}

/* Loads --tls-cert/--tls-key when given. 0, or HD_EINVAL with the cause logged. */
static int load_tls(node_t *node) {
  const hd_config_t *cfg = node->cfg;
  char err[1024];
  if (!*cfg->tls_cert && !*cfg->tls_key) {
    if (cfg->tls_port < 0) return 0;
    HD_ERROR("tls", "--tls-port needs --tls-cert and --tls-key", "tls_port=%lld", (long long)cfg->tls_port);
    return HD_EINVAL;
  }
  if (cfg->tls_port > 0 && cfg->tls_port == cfg->port) {
    HD_ERROR("tls", "--tls-port must differ from --port (leave --tls-port out to serve TLS on --port)", "port=%lld",
             (long long)cfg->port);
    return HD_EINVAL;
  }
  if (hd_tls_ctx_load(cfg->tls_cert, cfg->tls_key, cfg->tls_min_version, &node->tls, err, sizeof err)) {
    HD_ERROR("tls", "cannot serve TLS", "err=\"%s\"", err);
    return HD_EINVAL;
  }
  char desc[512];
  hd_tls_ctx_describe(node->tls, desc, sizeof desc);
  HD_INFO("tls", "certificate loaded", "min_version=%s %s", cfg->tls_min_version, desc);
  return 0;
}

/* Every shard's listeners: plain on --port, TLS on --tls-port beside it, or TLS on --port alone.
 * Shard 0 picks the ports (0 = any free one), the others share them. 0 or the error, logged. */
static int listen_all(node_t *node, int *port_out) {
  const hd_config_t *cfg = node->cfg;
  int port = (int)cfg->port, tls_port = (int)cfg->tls_port, rc = 0;
  bool separate = node->tls && cfg->tls_port >= 0;
  for (uint32_t i = 0; i < node->count; i++) {
    hd_server_t *s = &node->shards[i].server;
    bool shared = node->count > 1;
    if ((rc = node->tls && !separate ? hd_server_listen_tls(s, port, shared, false) : hd_server_listen(s, port, shared))) {
      HD_ERROR("server", "cannot listen", "host=%s port=%d err=\"%s\"", cfg->host, port, rc < -100 ? uv_strerror(rc) : hd_strerror(rc));
      return rc;
    }
    if (separate && (rc = hd_server_listen_tls(s, tls_port, shared, true))) {
      HD_ERROR("server", "cannot listen", "host=%s tls_port=%d err=\"%s\"", cfg->host, tls_port,
               rc < -100 ? uv_strerror(rc) : hd_strerror(rc));
      return rc;
    }
    if (i == 0) {
      port = hd_server_port(s);
      tls_port = hd_server_tls_port(s);
    }
  }
  *port_out = port;
  return 0;
}

static void shard_thread(void *arg) {
  hd_shard_t *sh = arg;
  uv_run(&sh->loop, UV_RUN_DEFAULT);
}

/* Opens the store on shard 0's loop and a handle for each other shard. */
static int open_store(node_t *node) {
  const hd_config_t *cfg = node->cfg;
  char db[4096], err[512], shown[4096];
  hd_config_store_location(cfg, db, sizeof db);
  if (!(node->store = hd_store_open(&node->shards[0].loop, db, err, sizeof err))) {
    HD_ERROR("app", "cannot open the store", "path=%s err=\"%s\"", hd_store_redact(db, shown, sizeof shown), err);
    return HD_EIO;
  }
  node->shards[0].store = node->store;
  hd_store_set_queue_bytes(node->store, (size_t)cfg->store_queue_bytes);
  for (uint32_t i = 1; i < node->count; i++)
    if (!(node->shards[i].store = hd_store_attach(node->store, &node->shards[i].loop))) return HD_ENOMEM;
  return 0;
}

/* Refuses a port another process listens on: the shards' SO_REUSEPORT would otherwise share it with
 * that process silently. A plain bind (no SO_REUSEPORT) fails with EADDRINUSE when it is taken. */
static int probe_port(const hd_config_t *cfg, int port) {
  struct sockaddr_storage addr;
  int rc = strchr(cfg->host, ':') ? uv_ip6_addr(cfg->host, port, (struct sockaddr_in6 *)&addr)
                                   : uv_ip4_addr(cfg->host, port, (struct sockaddr_in *)&addr);
  if (rc) return rc;
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
  if (fd < 0) return uv_translate_sys_error(errno);
  socklen_t len = addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  rc = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) || bind(fd, (struct sockaddr *)&addr, len)
           ? uv_translate_sys_error(errno)
           : 0;
  close(fd);
  return rc;
}

/* Before anything is created or announced (data dir, keys, database, demo users): the host
 * resolves (its numeric address into numeric), the port can be bound there, and the pages directory
 * exists unless pages are off (--web-root ""). 0, or an error with its cause logged. */
static int preflight(const hd_config_t *cfg, char *numeric, size_t len) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
  int gai = getaddrinfo(cfg->host, NULL, &hints, &res);
  if (gai || !res) {
    HD_ERROR("server", "cannot resolve host", "host=%s err=\"%s\"", cfg->host, gai ? gai_strerror(gai) : "no address");
    return HD_EINVAL;
  }
  const struct addrinfo *pick = res; /* an IPv4 address when the name has one, as uv_ip4_addr would */
  for (const struct addrinfo *a = res; a; a = a->ai_next)
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  int rc = getnameinfo(pick->ai_addr, pick->ai_addrlen, numeric, (socklen_t)len, NULL, 0, NI_NUMERICHOST);
  freeaddrinfo(res);
  if (rc) {
    HD_ERROR("server", "cannot resolve host", "host=%s err=\"%s\"", cfg->host, gai_strerror(rc));
    return HD_EINVAL;
  }
  hd_config_t probe = *cfg;
  probe.host = numeric;
  if ((rc = probe_port(&probe, (int)cfg->port))) {
    HD_ERROR("server", "cannot listen", "host=%s port=%lld err=\"%s\"", cfg->host, (long long)cfg->port, uv_strerror(rc));
    return rc;
  }
  if (cfg->tls_port > 0 && (rc = probe_port(&probe, (int)cfg->tls_port))) {
    HD_ERROR("server", "cannot listen", "host=%s tls_port=%lld err=\"%s\"", cfg->host, (long long)cfg->tls_port, uv_strerror(rc));
    return rc;
  }
  char real[PATH_MAX];
  if (*cfg->web_root && hd_path_resolve(cfg->web_root, real)) {
    HD_ERROR("server", "pages directory not found: give --web-root DIR, or --web-root '' to serve no pages",
             "web_root=%s", cfg->web_root);
    return HD_ENOTFOUND;
  }
  return 0;
}

static void *registry_nodes(void *arg) { return hd_registry_nodes_json(arg); }

/* Presence between the application (app/presence.h) and Redis (cluster/presence_redis.h). */
static char *presence_describe(void *arg) {
  node_t *node = arg;
  return hd_presence_shared_describe(node->shared.presence, hd_server_node_connections(&node->shards[0].server));
}

static void presence_snapshot(void *arg, const hd_presence_redis_entry_t *nodes, size_t count) {
  node_t *node = arg;
  hd_presence_entry_t *e = count ? calloc(count, sizeof(*e)) : NULL;
  if (count && !e) return;
  for (size_t i = 0; i < count; i++) e[i] = (hd_presence_entry_t){nodes[i].tag, nodes[i].entry, nodes[i].len, nodes[i].age_ms};
  hd_presence_shared_take(node->shared.presence, e, count);
  free(e);
}

static void presence_changed(void *arg) { hd_presence_redis_changed(arg); }

/* Clustered: this node's presence written to Redis, the other nodes' read back. 0 or HD_E*. */
static int start_presence(node_t *node) {
  hd_presence_redis_hooks_t hooks = {presence_describe, presence_snapshot, node};
  node->presence = hd_presence_redis_new(node->adapter, &node->shards[0].loop, node->cfg->redis_prefix,
                                         node->shared.node_tag, &hooks);
  if (!node->presence) return HD_ENOMEM;
  hd_presence_shared_set_cluster(node->shared.presence, node->shared.node_tag, presence_changed, node->presence);
  return 0;
}

/* Clustered: the node registry (this node's advertised URL) and every shard's forwarding of
 * Engine.IO requests whose session lives on another node. 0 or HD_E*. */
static int start_forwarding(node_t *node, int port) {
  hd_registry_self_t self = {.shards = node->count, .uid = hd_redis_adapter_uid(node->adapter)};
  memcpy(self.tag, node->shared.node_tag, 3);
  if (hd_forward_advertise_url(node->cfg, port, self.url, sizeof self.url)) return HD_ERANGE;
  node->registry = hd_registry_new(node->adapter, &node->shards[0].loop, node->cfg->redis_prefix, &self);
  if (!node->registry || !(node->forwards = calloc(node->count, sizeof(*node->forwards)))) return HD_ENOMEM;
  for (uint32_t i = 0; i < node->count; i++)
    if (!(node->forwards[i] = hd_forward_new(&node->shards[i].server, node->registry, self.tag))) return HD_ENOMEM;
  node->shared.cluster_nodes = registry_nodes;
  node->shared.cluster_nodes_arg = node->registry;
  HD_INFO("cluster", "advertised", "url=%s tag=%s", self.url, self.tag);
  return start_presence(node);
}

/* Builds everything up to the listeners. 0, or an HD_E* or uv error with the cause logged. */
static int start(node_t *node) {
  const hd_config_t *cfg = node->cfg;
  uint32_t fd_budget = hd_server_raise_fd_limit(cfg, node->count); /* or a warning naming the shortfall */
  int rc = hd_app_shared_init(&node->shared, cfg, node->count);
  if (rc) return rc;
  hd_adapter_t *local = hd_local_adapter_new(node->count);
  if (!(node->adapter = local)) return HD_ENOMEM;
  for (uint32_t i = 0; i < node->count; i++) {
    if ((rc = hd_shard_init(&node->shards[i], i, cfg))) return rc;
    hd_server_set_tls(&node->shards[i].server, node->tls);
    node->shards[i].server.node_tls_handshakes = &node->tls_handshakes;
  }
  if (*cfg->redis_url) { /* the cluster adapter wraps the local one; it runs on shard 0's loop */
    hd_redis_url_t url;
    if (hd_redis_url_parse(cfg->redis_url, &url)) {
      HD_ERROR("cluster", "invalid --redis-url (redis://[[user]:password@]host[:port][/db])", "url_len=%zu",
               strlen(cfg->redis_url));
      return HD_EINVAL;
    }
    char nsps[1100];
    snprintf(nsps, sizeof nsps, "%s%s%s", cfg->namespaces, cfg->test_handlers ? ",/custom" : "",
             cfg->admin_ui ? "," HD_ADMIN_UI_NAMESPACE : "");
    hd_adapter_t *redis = hd_redis_adapter_new(local, &url, cfg->redis_prefix, nsps, &node->shards[0].loop,
                                               &node->shards[0].mailbox);
    if (!redis) return HD_ENOMEM;
    hd_redis_adapter_set_limits(redis, (uint64_t)cfg->redis_max_queue, (uint64_t)cfg->redis_timeout);
    hd_redis_adapter_keep_handshakes(redis, cfg->admin_ui);
    node->adapter = redis;
    node->clustered = true;
    if (node->shared.recovery) { /* sessions and missed packets in Redis, for every node */
      node->recovery = hd_redis_recovery_new(redis, &node->shards[0].mailbox, cfg->redis_prefix,
                                             (uint64_t)cfg->recovery_window, HD_RECOVERY_MAX_PACKETS);
      if (!node->recovery) return HD_ENOMEM;
      hd_recovery_set_cluster(node->shared.recovery, node->recovery);
    }
    /* JSON-protocol topics: sequences and history in Redis, none kept in this node's memory */
    node->topics = hd_redis_topics_new(redis, cfg->redis_prefix, (uint32_t)cfg->topic_history,
                                       (uint64_t)cfg->topic_history_age, &node->shards[0].loop, &node->shards[0].mailbox);
    if (!node->topics) return HD_ENOMEM;
    node->shared.hub.topics->ops->free(node->shared.hub.topics);
    node->shared.hub.topics = node->topics;
    node->shared.hub.history = NULL;
  }
  node->shared.hub.adapter = node->adapter;
  if (!(node->peers = calloc(node->count, sizeof(*node->peers)))) return HD_ENOMEM;
  for (uint32_t i = 0; i < node->count; i++) { /* every shard may hand a connection to any other */
    node->peers[i] = (hd_server_peer_t){&node->shards[i].server, &node->shards[i].mailbox};
    node->shards[i].server.peers = node->peers;
    node->shards[i].server.peer_count = node->count;
    node->shards[i].server.node_conn_count = &node->conn_count;
    node->shards[i].server.fd_conn_budget = fd_budget;
  }
  if ((rc = open_store(node))) return rc;
  for (uint32_t i = 0; i < node->count; i++) {
    hd_shard_t *sh = &node->shards[i];
    if ((rc = hd_shard_start_app(sh, &node->shared, sh->store))) return rc;
    hd_local_adapter_attach(local, i, sh->app.hub, &sh->mailbox);
  }
  if (node->clustered) {
    hd_redis_adapter_set_hub(node->adapter, node->shards[0].app.hub);
    hd_redis_topics_start(node->topics, node->shards[0].app.hub);
  }
  int port;
  if ((rc = listen_all(node, &port))) return rc;
  return node->clustered ? start_forwarding(node, port) : 0;
}

int hd_node_run(const hd_config_t *given, int argc, char **argv) {
  char numeric[INET6_ADDRSTRLEN];
  if (preflight(given, numeric, sizeof numeric)) return 1;
  hd_config_t local = *given; /* the same options, the host as the address it resolved to */
  local.host = numeric;
  const hd_config_t *cfg = &local;
  node_t node = {.cfg = cfg, .count = hd_node_shard_count(cfg)};
  if (load_tls(&node)) return 1; /* before anything is created: a bad certificate changes nothing */
  node.reload = (hd_reload_t){.argc = argc, .argv = argv, .running = given, .tls = node.tls != NULL,
                              .count = node.count, .log_level = strdup(given->log_level)};
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN); /* past a file-size limit a write fails (EFBIG) and the store says so; no crash */
  node.shards = node.reload.shards = calloc(node.count, sizeof(*node.shards));
  int rc = node.shards ? start(&node) : HD_ENOMEM;
  if (!rc) rc = write_pid_file(&node);
  if (!rc) {
    uv_loop_t *main_loop = &node.shards[0].loop;
    uv_signal_init(main_loop, &node.sig_term);
    uv_signal_init(main_loop, &node.sig_int);
    uv_signal_init(main_loop, &node.sig_hup);
    node.sig_term.data = node.sig_int.data = node.sig_hup.data = &node;
    uv_signal_start(&node.sig_term, on_signal, SIGTERM);
    uv_signal_start(&node.sig_int, on_signal, SIGINT);
    uv_signal_start(&node.sig_hup, on_hangup, SIGHUP);
    if (node.clustered) hd_redis_adapter_start(node.adapter);
    if (node.registry) hd_registry_start(node.registry);
    if (node.presence) hd_presence_redis_start(node.presence);
    const hd_server_t *s0 = &node.shards[0].server;
    HD_INFO("server", "listening", "host=%s port=%d tls_port=%d shards=%u version=%s echo_endpoint=%s web_root=%s",
            cfg->host, hd_server_port(s0), hd_server_tls_port(s0), node.count, HERALD_VERSION,
            cfg->echo_endpoint ? "on" : "off", s0->web_root_real ? s0->web_root_real : "(off)");
    for (uint32_t i = 1; i < node.count; i++) {
      hd_shard_t *sh = &node.shards[i];
      if (uv_thread_create(&sh->thread, shard_thread, sh) == 0) sh->thread_started = true;
      else HD_ERROR("server", "cannot start a shard thread", "shard=%u", i);
    }
    hd_service_ready();
    uv_run(main_loop, UV_RUN_DEFAULT);
    for (uint32_t i = 1; i < node.count; i++)
      if (node.shards[i].thread_started) uv_thread_join(&node.shards[i].thread);
    uint32_t left = 0;
    for (uint32_t i = 0; i < node.count; i++) left += node.shards[i].server.conn_count;
    HD_INFO("server", "stopped", "connections_left=%u", left);
    uv_close((uv_handle_t *)&node.sig_term, NULL);
    uv_close((uv_handle_t *)&node.sig_int, NULL);
    uv_close((uv_handle_t *)&node.sig_hup, NULL);
  } else {
    HD_ERROR("server", "cannot start", "err=\"%s\"", rc < -100 ? uv_strerror(rc) : hd_strerror(rc));
  }
  for (uint32_t i = 0; node.shards && i < node.count; i++) hd_shard_close_mailbox(&node.shards[i]);
  for (uint32_t i = 0; node.shards && i < node.count; i++) hd_shard_free(&node.shards[i]);
  if (node.adapter) node.adapter->ops->free(node.adapter);
  for (uint32_t i = 0; node.forwards && i < node.count; i++) hd_forward_free(node.forwards[i]);
  free(node.forwards);
  hd_registry_free(node.registry); /* after the adapter: its last replies are in */
  hd_redis_recovery_free(node.recovery);
  hd_presence_redis_free(node.presence);
  hd_app_shared_free(&node.shared);
  free(node.shards);
  free(node.peers);
  hd_tls_ctx_unref(node.tls);
  hd_reload_free(&node.reload);
  if (node.pid_written) unlink(cfg->pid_file);
  return rc ? 1 : 0;
}
