/* The node: shared state, the shards and their threads, signals, start-up and teardown (see node.h). */
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
  uv_signal_t sig_term, sig_int;
  bool stopping;
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
  for (uint32_t i = 0; i < node->count; i++)
    if ((rc = hd_shard_init(&node->shards[i], i, cfg))) return rc;
  if (*cfg->redis_url) { /* the cluster adapter wraps the local one; it runs on shard 0's loop */
    hd_redis_url_t url;
    if (hd_redis_url_parse(cfg->redis_url, &url)) {
      HD_ERROR("cluster", "invalid --redis-url (redis://[[user]:password@]host[:port][/db])", "url_len=%zu",
               strlen(cfg->redis_url));
      return HD_EINVAL;
    }
    char nsps[1100];
    snprintf(nsps, sizeof nsps, "%s%s", cfg->namespaces, cfg->test_handlers ? ",/custom" : "");
    hd_adapter_t *redis = hd_redis_adapter_new(local, &url, cfg->redis_prefix, nsps, &node->shards[0].loop,
                                               &node->shards[0].mailbox);
    if (!redis) return HD_ENOMEM;
    hd_redis_adapter_set_limits(redis, (uint64_t)cfg->redis_max_queue, (uint64_t)cfg->redis_timeout);
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
  int port = (int)cfg->port;
  for (uint32_t i = 0; i < node->count; i++) { /* shard 0 picks the port (--port 0), the others share it */
    if ((rc = hd_server_listen(&node->shards[i].server, port, node->count > 1))) {
      HD_ERROR("server", "cannot listen", "host=%s port=%d err=\"%s\"", cfg->host, port,
               rc < -100 ? uv_strerror(rc) : hd_strerror(rc));
      return rc;
    }
    if (i == 0) port = hd_server_port(&node->shards[0].server);
  }
  return node->clustered ? start_forwarding(node, port) : 0;
}

int hd_node_run(const hd_config_t *given) {
  char numeric[INET6_ADDRSTRLEN];
  if (preflight(given, numeric, sizeof numeric)) return 1;
  hd_config_t local = *given; /* the same options, the host as the address it resolved to */
  local.host = numeric;
  const hd_config_t *cfg = &local;
  node_t node = {.cfg = cfg, .count = hd_node_shard_count(cfg)};
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN); /* past a file-size limit a write fails (EFBIG) and the store says so; no crash */
  node.shards = calloc(node.count, sizeof(*node.shards));
  int rc = node.shards ? start(&node) : HD_ENOMEM;
  if (!rc) {
    uv_loop_t *main_loop = &node.shards[0].loop;
    uv_signal_init(main_loop, &node.sig_term);
    uv_signal_init(main_loop, &node.sig_int);
    node.sig_term.data = node.sig_int.data = &node;
    uv_signal_start(&node.sig_term, on_signal, SIGTERM);
    uv_signal_start(&node.sig_int, on_signal, SIGINT);
    if (node.clustered) hd_redis_adapter_start(node.adapter);
    if (node.registry) hd_registry_start(node.registry);
    if (node.presence) hd_presence_redis_start(node.presence);
    const hd_server_t *s0 = &node.shards[0].server;
    HD_INFO("server", "listening", "host=%s port=%d shards=%u version=%s echo_endpoint=%s web_root=%s", cfg->host,
            hd_server_port(s0), node.count, HERALD_VERSION, cfg->echo_endpoint ? "on" : "off",
            s0->web_root_real ? s0->web_root_real : "(off)");
    for (uint32_t i = 1; i < node.count; i++) {
      hd_shard_t *sh = &node.shards[i];
      if (uv_thread_create(&sh->thread, shard_thread, sh) == 0) sh->thread_started = true;
      else HD_ERROR("server", "cannot start a shard thread", "shard=%u", i);
    }
    uv_run(main_loop, UV_RUN_DEFAULT);
    for (uint32_t i = 1; i < node.count; i++)
      if (node.shards[i].thread_started) uv_thread_join(&node.shards[i].thread);
    uint32_t left = 0;
    for (uint32_t i = 0; i < node.count; i++) left += node.shards[i].server.conn_count;
    HD_INFO("server", "stopped", "connections_left=%u", left);
    uv_close((uv_handle_t *)&node.sig_term, NULL);
    uv_close((uv_handle_t *)&node.sig_int, NULL);
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
  return rc ? 1 : 0;
}
