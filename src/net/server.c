/* The shard: listener, accept with a connection limit, per-iteration write flushing, the sweep
 * timer (timeouts, pings, loop lag) and graceful shutdown (see server.h). */
#define _GNU_SOURCE /* accept4 */
#include "net/server.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/path.h"
#include "net/conn.h"
#include "net/tls.h"

#define REFUSING_SLACK 64 /* connections accepted past the limit only to be told 503 / 1013 */
#define FD_OVERHEAD 64    /* descriptors besides connections: store, logs, files being served, the reserve */
#define FD_PER_SHARD 8    /* a shard's event loop, its wakeups and timers */
#define ACCEPT_WARN_EVERY_MS 10000

/* Takes the connection libuv holds for the listener: as a full conn (within --max-connections) or
 * one that only answers 503 / close 1013. False when past even the refusal budget: the connection
 * then stays in the listener's queue (libuv stops watching the listener until it is accepted), so
 * its client waits instead of being reset; the sweep tries again as connections close. */
/* Accepts the connection waiting on listener only to close it at once. False when out of memory. */
static bool accept_and_drop(hd_server_t *s, uv_tcp_t *listener) {
  uv_tcp_t *t = malloc(sizeof(*t));
  if (!t) return false;
  uv_tcp_init(s->loop, t);
  uv_accept((uv_stream_t *)listener, (uv_stream_t *)t);
  uv_close((uv_handle_t *)t, (uv_close_cb)free);
  return true;
}

/* True when listener's connections speak TLS. */
static bool listener_is_tls(const hd_server_t *s, const uv_tcp_t *listener) {
  return listener == &s->tls_listener || (listener == &s->listener && s->tls_on_port);
}

/* True when a new TLS handshake would pass the caps on handshakes in flight (shard or node). */
static bool tls_handshakes_full(const hd_server_t *s) {
  uint32_t node = s->node_tls_handshakes ? __atomic_load_n(s->node_tls_handshakes, __ATOMIC_RELAXED) : s->tls_handshakes;
  return s->tls_handshakes >= (uint32_t)s->cfg->tls_max_handshakes_per_shard || node >= (uint32_t)s->cfg->tls_max_handshakes;
}

static bool accept_one(hd_server_t *s, uv_tcp_t *listener) {
  uint32_t max = (uint32_t)s->cfg->max_connections;
  uint32_t open = hd_server_node_connections(s);
  /* past the refusal budget, or the descriptors left: accepting now would only meet EMFILE */
  if (open >= max + REFUSING_SLACK || (s->fd_conn_budget && open >= s->fd_conn_budget)) return false;
  bool tls = listener_is_tls(s, listener);
  if (tls && tls_handshakes_full(s)) { /* a handshake flood: shed the newcomer, cheaply */
    s->metrics.tls_handshakes_refused++;
    return accept_and_drop(s, listener);
  }
  bool over = open >= max;
  if (over) s->metrics.refused++;
  if (hd_conn_accept(s, listener, s->accept_handler, over, tls ? s->tls_ctx : NULL)) /* out of memory: drop this one */
    return accept_and_drop(s, listener);
  return true;
}

static void on_connection(uv_stream_t *stream, int status) {
  hd_server_t *s = stream->data;
  uv_tcp_t *listener = (uv_tcp_t *)stream;
  if (status < 0) { /* EMFILE/ENFILE: libuv's reserve descriptor already shed the queue; say so now and then */
    uint64_t now = uv_now(s->loop);
    s->metrics.accept_errors++;
    if (!s->accept_warned_ms || now - s->accept_warned_ms >= ACCEPT_WARN_EVERY_MS) {
      HD_WARN("server", "accept failed (connections waiting were closed)", "err=\"%s\" failures=%llu", uv_strerror(status),
              (unsigned long long)s->metrics.accept_errors);
      s->accept_warned_ms = now;
    }
    return;
  }
  bool paused = !accept_one(s, listener);
  if (listener == &s->tls_listener) s->tls_accept_paused = paused;
  else s->accept_paused = paused;
}

/* After each poll: write everything queued during this iteration, one batch per connection. */
static void on_check(uv_check_t *h) {
  hd_server_t *s = h->data;
  for (uint32_t i = 0; i < s->flush_hook_count; i++) s->flush_hooks[i].fn(s->flush_hooks[i].arg);
  hd_conn_flush_all(s);
  uv_idle_stop(&s->waker);
}

static void on_idle(uv_idle_t *h) {}

void hd_server_wake(hd_server_t *s) {
  if (!uv_is_active((uv_handle_t *)&s->waker)) uv_idle_start(&s->waker, on_idle);
}

int hd_server_add_stop_hook(hd_server_t *s, void (*fn)(void *arg), void *arg) {
  if (s->stop_hook_count == sizeof s->stop_hooks / sizeof s->stop_hooks[0]) return HD_ERANGE;
  s->stop_hooks[s->stop_hook_count].fn = fn;
  s->stop_hooks[s->stop_hook_count++].arg = arg;
  return 0;
}

int hd_server_add_flush_hook(hd_server_t *s, void (*fn)(void *arg), void *arg) {
  if (s->flush_hook_count == sizeof s->flush_hooks / sizeof s->flush_hooks[0]) return HD_ERANGE;
  s->flush_hooks[s->flush_hook_count].fn = fn;
  s->flush_hooks[s->flush_hook_count++].arg = arg;
  return 0;
}

static uint64_t sweep_period(const hd_config_t *cfg) {
  int64_t p = 1000;
  int64_t candidates[] = {cfg->header_timeout, cfg->keepalive_timeout, cfg->ws_idle_timeout, cfg->ws_ping_interval};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    if (candidates[i] > 0 && candidates[i] / 4 < p) p = candidates[i] / 4;
  return (uint64_t)(p < 25 ? 25 : p);
}

static void on_sweep(uv_timer_t *t) {
  hd_server_t *s = t->data;
  uint64_t now = uv_now(s->loop);
  if (s->sweep_expected_ms) {
    uint64_t lag = now > s->sweep_expected_ms ? now - s->sweep_expected_ms : 0;
    s->metrics.loop_lag_ms = lag;
    if (lag > s->metrics.loop_lag_max_ms) s->metrics.loop_lag_max_ms = lag;
  }
  s->sweep_expected_ms = now + uv_timer_get_repeat(t);
  hd_conn_sweep_all(s, now);
  if (s->accept_paused && s->listening && accept_one(s, &s->listener)) s->accept_paused = false;
  if (s->tls_accept_paused && s->tls_listening && accept_one(s, &s->tls_listener)) s->tls_accept_paused = false;
  if (s->stopping && !s->conns) uv_stop(s->loop);
}

static void on_grace_expired(uv_timer_t *t) {
  hd_server_t *s = t->data;
  HD_WARN("server", "grace period over, closing remaining connections", "count=%u", s->conn_count);
  hd_conn_abort_all(s);
  uv_stop(s->loop);
}

int hd_server_init(hd_server_t *s, uv_loop_t *loop, const hd_config_t *cfg) {
  memset(s, 0, sizeof(*s));
  s->loop = loop;
  s->cfg = cfg;
  s->router = hd_router_new();
  if (!s->router) return HD_ENOMEM;
  s->started_ms = uv_now(loop);
  char real[PATH_MAX];
  if (*cfg->web_root && !hd_path_resolve(cfg->web_root, real)) s->web_root_real = strdup(real); /* "": no pages */
  hd_server_protocol_id(s, "http"); /* id 0 unused by WebSocket protocols; keeps ids stable */
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  uv_tcp_init(loop, &s->tls_listener);
  s->tls_listener.data = s;
  uv_check_init(loop, &s->flusher);
  s->flusher.data = s;
  uv_check_start(&s->flusher, on_check);
  uv_idle_init(loop, &s->waker);
  uv_timer_init(loop, &s->sweeper);
  s->sweeper.data = s;
  uv_timer_init(loop, &s->grace);
  s->grace.data = s;
  return 0;
}

void hd_server_set_accept(hd_server_t *s, const hd_conn_handler_t *h, size_t ext_size) {
  s->accept_handler = h;
  s->conn_ext_size = ext_size;
}

/* A socket bound to addr with SO_REUSEPORT (libuv 1.44 cannot ask for it), handed to the listener. */
static int bind_shared(uv_tcp_t *listener, const struct sockaddr *addr) {
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  int on = 1;
  socklen_t len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) ||
      bind(fd, addr, len)) {
    int err = uv_translate_sys_error(errno);
    close(fd);
    return err;
  }
  int rc = uv_tcp_open(listener, fd);
  if (rc) close(fd);
  return rc;
}

/* Binds listener to cfg host and port and listens. 0 or a uv/HD error. */
static int listen_on(hd_server_t *s, uv_tcp_t *listener, int port, bool shared) {
  const hd_config_t *cfg = s->cfg;
  if (!s->accept_handler) return HD_EINVAL;
  struct sockaddr_storage addr;
  int rc = strchr(cfg->host, ':') ? uv_ip6_addr(cfg->host, port, (struct sockaddr_in6 *)&addr)
                                   : uv_ip4_addr(cfg->host, port, (struct sockaddr_in *)&addr);
  if (rc) return rc;
  if ((rc = shared ? bind_shared(listener, (struct sockaddr *)&addr) : uv_tcp_bind(listener, (struct sockaddr *)&addr, 0)))
    return rc;
  return uv_listen((uv_stream_t *)listener, (int)cfg->backlog, on_connection);
}

void hd_server_set_tls(hd_server_t *s, hd_tls_ctx_t *ctx) {
  hd_tls_ctx_t *old = s->tls_ctx;
  s->tls_ctx = ctx ? hd_tls_ctx_ref(ctx) : NULL;
  hd_tls_ctx_unref(old);
}

int hd_server_listen_tls(hd_server_t *s, int port, bool shared, bool separate) {
  if (!s->tls_ctx) return HD_EINVAL;
  if (!separate) {
    s->tls_on_port = true;
    return hd_server_listen(s, port, shared);
  }
  int rc = listen_on(s, &s->tls_listener, port, shared);
  if (!rc) s->tls_listening = true;
  return rc;
}

int hd_server_tls_port(const hd_server_t *s) {
  const uv_tcp_t *l = s->tls_on_port ? &s->listener : s->tls_listening ? &s->tls_listener : NULL;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (!l || uv_tcp_getsockname(l, (struct sockaddr *)&ss, &len)) return -1;
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
}

int hd_server_listen(hd_server_t *s, int port, bool shared) {
  int rc = listen_on(s, &s->listener, port, shared);
  if (rc) return rc;
  s->listening = true;
  uint64_t period = sweep_period(s->cfg);
  uv_timer_start(&s->sweeper, on_sweep, period, period);
  return 0;
}

int hd_server_port(const hd_server_t *s) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len)) return -1;
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                        : ((struct sockaddr_in *)&ss)->sin_port);
}

/* Takes the connections still waiting in the listener's queue: with SO_REUSEPORT the kernel would
 * reset them when the listener closes, instead of letting the stopping server answer them. */
static void accept_pending(hd_server_t *s, uv_tcp_t *listener) {
  uv_os_fd_t lfd;
  if (uv_fileno((uv_handle_t *)listener, &lfd)) return;
  bool tls = listener_is_tls(s, listener);
  for (int fd; (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
    hd_conn_t *c;
    hd_tls_t *t = tls ? hd_tls_new(s->tls_ctx) : NULL;
    if ((tls && !t) || hd_conn_adopt(s, fd, s->accept_handler, NULL, &c)) {
      hd_tls_free(t);
      close(fd);
    } else if (t) {
      hd_conn_attach_tls(c, t);
    }
  }
}

void hd_server_stop(hd_server_t *s) {
  if (s->stopping) return;
  s->stopping = true;
  if (s->listening) {
    accept_pending(s, &s->listener);
    uv_close((uv_handle_t *)&s->listener, NULL);
    s->listening = false;
  }
  if (s->tls_listening) {
    accept_pending(s, &s->tls_listener);
    uv_close((uv_handle_t *)&s->tls_listener, NULL);
    s->tls_listening = false;
  }
  for (uint32_t i = 0; i < s->stop_hook_count; i++) s->stop_hooks[i].fn(s->stop_hooks[i].arg);
  hd_conn_shutdown_all(s);
  uv_timer_start(&s->grace, on_grace_expired, (uint64_t)s->cfg->shutdown_grace, 0);
  uv_timer_stop(&s->sweeper);
  uv_timer_start(&s->sweeper, on_sweep, 25, 25); /* notices quickly when the last conn is gone */
}

static void close_if_open(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void hd_server_free(hd_server_t *s) {
  hd_conn_abort_all(s);
  close_if_open((uv_handle_t *)&s->listener);
  close_if_open((uv_handle_t *)&s->tls_listener);
  close_if_open((uv_handle_t *)&s->flusher);
  close_if_open((uv_handle_t *)&s->waker);
  close_if_open((uv_handle_t *)&s->sweeper);
  close_if_open((uv_handle_t *)&s->grace);
  uv_run(s->loop, UV_RUN_DEFAULT); /* let close callbacks run */
  hd_router_free(s->router);
  for (size_t i = 0; i < sizeof s->deflaters / sizeof s->deflaters[0]; i++) hd_ws_deflater_free(s->deflaters[i]);
  free(s->web_root_real);
  hd_server_set_tls(s, NULL);
}

uint32_t hd_server_raise_fd_limit(const hd_config_t *cfg, unsigned shards) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim)) return 0;
  rlim_t overhead = FD_OVERHEAD + (rlim_t)FD_PER_SHARD * shards;
  rlim_t need = (rlim_t)cfg->max_connections + (rlim_t)REFUSING_SLACK + overhead;
  if (lim.rlim_cur < need) {
    rlim_t want = lim.rlim_max == RLIM_INFINITY || lim.rlim_max >= need ? need : lim.rlim_max;
    struct rlimit raised = {want, lim.rlim_max};
    if (want > lim.rlim_cur && !setrlimit(RLIMIT_NOFILE, &raised)) {
      lim.rlim_cur = want;
      HD_INFO("server", "open-file limit raised for --max-connections", "nofile=%llu", (unsigned long long)want);
    }
  }
  if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= need) return 0;
  rlim_t budget = lim.rlim_cur > overhead + 1 ? lim.rlim_cur - overhead : 1;
  HD_WARN("server", "open-file limit is below what --max-connections needs: raise it (ulimit -n, LimitNOFILE) or lower --max-connections",
          "nofile=%llu needed=%llu max_connections=%lld shortfall=%llu connections_accepted_at_most=%llu",
          (unsigned long long)lim.rlim_cur, (unsigned long long)need, (long long)cfg->max_connections,
          (unsigned long long)(need - lim.rlim_cur), (unsigned long long)budget);
  return (uint32_t)budget;
}

uint32_t hd_server_node_connections(const hd_server_t *s) {
  return s->node_conn_count ? __atomic_load_n(s->node_conn_count, __ATOMIC_RELAXED) : s->conn_count;
}

int hd_server_protocol_id(hd_server_t *s, const char *name) {
  hd_metrics_t *m = &s->metrics;
  for (uint32_t i = 0; i < m->protocol_count; i++)
    if (!strcmp(m->protocol_names[i], name)) return (int)i;
  if (m->protocol_count == HD_MAX_PROTOCOLS) return 0;
  m->protocol_names[m->protocol_count] = name;
  return (int)m->protocol_count++;
}

hd_ws_deflater_t *hd_server_deflater(hd_server_t *s, int window_bits) {
  if (window_bits < 9 || window_bits > 15) window_bits = 15;
  if (!s->deflaters[window_bits]) s->deflaters[window_bits] = hd_ws_deflater_new(window_bits);
  return s->deflaters[window_bits];
}

uint64_t hd_server_uptime_ms(const hd_server_t *s) { return uv_now(s->loop) - s->started_ms; }
