/* The shard: listener, accept with a connection limit, per-iteration write flushing, the sweep
 * timer (timeouts, pings, loop lag) and graceful shutdown (see server.h). */
#define _GNU_SOURCE /* accept4 */
#include "net/server.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
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

/* Accepts the connection waiting on listener_fd only to close it at once. False when none waits. */
static bool accept_and_drop(int listener_fd) {
  int fd = accept4(listener_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return errno == ECONNABORTED || errno == EINTR;
  close(fd);
  return true;
}

/* True when listener's connections speak TLS. */
static bool listener_is_tls(const hd_server_t *s, const uv_poll_t *listener) {
  return listener == &s->tls_listener || (listener == &s->listener && s->tls_on_port);
}

static int listener_fd(const hd_server_t *s, const uv_poll_t *listener) {
  return listener == &s->tls_listener ? s->tls_listen_fd : s->listen_fd;
}

/* True when a new TLS handshake would pass the caps on handshakes in flight (shard or node). */
static bool tls_handshakes_full(const hd_server_t *s) {
  uint32_t node = s->node_tls_handshakes ? __atomic_load_n(s->node_tls_handshakes, __ATOMIC_RELAXED) : s->tls_handshakes;
  return s->tls_handshakes >= (uint32_t)s->cfg->tls_max_handshakes_per_shard || node >= (uint32_t)s->cfg->tls_max_handshakes;
}

/* Out of descriptors: the reserve one makes room to accept and close the connections waiting, so
 * their clients hear at once instead of hanging (as libuv does); said now and then. */
static void shed_waiting(hd_server_t *s, int lfd, int err) {
  uint64_t now = uv_now(s->loop);
  s->metrics.accept_errors++;
  if (s->reserve_fd >= 0) {
    close(s->reserve_fd);
    for (int fd; (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) close(fd);
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  if (!s->accept_warned_ms || now - s->accept_warned_ms >= ACCEPT_WARN_EVERY_MS) {
    HD_WARN("server", "accept failed (connections waiting were closed)", "err=\"%s\" failures=%llu", strerror(err),
            (unsigned long long)s->metrics.accept_errors);
    s->accept_warned_ms = now;
  }
}

typedef enum { ACCEPT_TAKEN, ACCEPT_NONE, ACCEPT_FULL } accept_result_t;

/* Takes one connection waiting on listener: as a full conn (within --max-connections) or one that
 * only answers 503 / close 1013. ACCEPT_FULL when past even the refusal budget: the connection
 * then stays in the listener's queue (the listener is not watched until the sweep retries), so its
 * client waits instead of being reset; also when out of descriptors (those waiting are shed). ACCEPT_NONE
 * when nothing waits. */
static accept_result_t accept_one(hd_server_t *s, uv_poll_t *listener) {
  uint32_t max = (uint32_t)s->cfg->max_connections;
  uint32_t open = hd_server_node_connections(s);
  int lfd = listener_fd(s, listener);
  /* past the refusal budget, or the descriptors left: accepting now would only meet EMFILE */
  if (open >= max + REFUSING_SLACK || (s->fd_conn_budget && open >= s->fd_conn_budget)) return ACCEPT_FULL;
  bool tls = listener_is_tls(s, listener);
  if (tls && tls_handshakes_full(s)) { /* a handshake flood: shed the newcomer, cheaply */
    if (!accept_and_drop(lfd)) return ACCEPT_NONE;
    s->metrics.tls_handshakes_refused++;
    return ACCEPT_TAKEN;
  }
  int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno != EMFILE && errno != ENFILE) return errno == ECONNABORTED || errno == EINTR ? ACCEPT_TAKEN : ACCEPT_NONE;
    shed_waiting(s, lfd, errno);
    return ACCEPT_FULL; /* descriptors may stay short: the sweep tries again rather than the listener spin */
  }
  bool over = open >= max;
  if (over) s->metrics.refused++;
  if (hd_conn_accept(s, fd, s->accept_handler, over, tls ? s->tls_ctx : NULL)) close(fd); /* out of memory: drop this one */
  return ACCEPT_TAKEN;
}

/* Pauses or resumes watching listener (a connection waits past the budget). */
static void set_accept_paused(hd_server_t *s, uv_poll_t *listener, bool paused);

static void on_listener_ready(uv_poll_t *listener, int status, int events) {
  hd_server_t *s = listener->data;
  accept_result_t r;
  while ((r = accept_one(s, listener)) == ACCEPT_TAKEN) {}
  if (r == ACCEPT_FULL) set_accept_paused(s, listener, true);
}

static void set_accept_paused(hd_server_t *s, uv_poll_t *listener, bool paused) {
  if (listener == &s->tls_listener) s->tls_accept_paused = paused;
  else s->accept_paused = paused;
  if (paused) uv_poll_stop(listener);
  else uv_poll_start(listener, UV_READABLE, on_listener_ready);
}

/* Resumes a paused listener once a connection can be taken again. */
static void retry_accept(hd_server_t *s, uv_poll_t *listener, bool paused, bool listening) {
  if (!paused || !listening) return;
  accept_result_t r = accept_one(s, listener);
  if (r != ACCEPT_FULL) set_accept_paused(s, listener, false);
}

static void on_conns_ready(uv_poll_t *h, int status, int events) { hd_conn_serve_ready(h->data); }

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
  retry_accept(s, &s->listener, s->accept_paused, s->listening);
  retry_accept(s, &s->tls_listener, s->tls_accept_paused, s->tls_listening);
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
  s->listen_fd = s->tls_listen_fd = -1;
  s->listener.data = s->tls_listener.data = s;
  s->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (s->epfd < 0 || uv_poll_init(loop, &s->conns_ready, s->epfd)) {
    if (s->epfd >= 0) close(s->epfd);
    hd_router_free(s->router);
    free(s->web_root_real);
    return HD_EIO;
  }
  s->conns_ready.data = s;
  uv_poll_start(&s->conns_ready, UV_READABLE, on_conns_ready);
  s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
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

/* A listening socket bound to addr (SO_REUSEPORT when shared, so the shards of a node listen on one
 * port side by side). The descriptor, or a negative uv error. */
static int bind_listen(const struct sockaddr *addr, bool shared, int backlog) {
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  int on = 1;
  socklen_t len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) ||
      (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on)) || bind(fd, addr, len) || listen(fd, backlog)) {
    int err = uv_translate_sys_error(errno);
    close(fd);
    return err;
  }
  return fd;
}

/* Binds listener to cfg host and port and listens. 0 or a uv/HD error. */
static int listen_on(hd_server_t *s, uv_poll_t *listener, int *fd_out, int port, bool shared) {
  const hd_config_t *cfg = s->cfg;
  if (!s->accept_handler) return HD_EINVAL;
  struct sockaddr_storage addr;
  int rc = strchr(cfg->host, ':') ? uv_ip6_addr(cfg->host, port, (struct sockaddr_in6 *)&addr)
                                   : uv_ip4_addr(cfg->host, port, (struct sockaddr_in *)&addr);
  if (rc) return rc;
  int fd = bind_listen((struct sockaddr *)&addr, shared, (int)cfg->backlog);
  if (fd < 0) return fd;
  if ((rc = uv_poll_init(s->loop, listener, fd))) {
    close(fd);
    return rc;
  }
  listener->data = s;
  if ((rc = uv_poll_start(listener, UV_READABLE, on_listener_ready))) {
    uv_close((uv_handle_t *)listener, NULL);
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
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
  int rc = listen_on(s, &s->tls_listener, &s->tls_listen_fd, port, shared);
  if (!rc) s->tls_listening = true;
  return rc;
}

int hd_server_tls_port(const hd_server_t *s) {
  int fd = s->tls_on_port ? s->listen_fd : s->tls_listening ? s->tls_listen_fd : -1;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len)) return -1;
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
}

int hd_server_listen(hd_server_t *s, int port, bool shared) {
  int rc = listen_on(s, &s->listener, &s->listen_fd, port, shared);
  if (rc) return rc;
  s->listening = true;
  uint64_t period = sweep_period(s->cfg);
  uv_timer_start(&s->sweeper, on_sweep, period, period);
  return 0;
}

int hd_server_port(const hd_server_t *s) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (s->listen_fd < 0 || getsockname(s->listen_fd, (struct sockaddr *)&ss, &len)) return -1;
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                        : ((struct sockaddr_in *)&ss)->sin_port);
}

/* Takes the connections still waiting in the listener's queue: with SO_REUSEPORT the kernel would
 * reset them when the listener closes, instead of letting the stopping server answer them. */
static void accept_pending(hd_server_t *s, uv_poll_t *listener) {
  int lfd = listener_fd(s, listener);
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
    close(s->listen_fd);
    s->listening = false;
  }
  if (s->tls_listening) {
    accept_pending(s, &s->tls_listener);
    uv_close((uv_handle_t *)&s->tls_listener, NULL);
    close(s->tls_listen_fd);
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
  if (s->listening) close_if_open((uv_handle_t *)&s->listener), close(s->listen_fd);
  if (s->tls_listening) close_if_open((uv_handle_t *)&s->tls_listener), close(s->tls_listen_fd);
  close_if_open((uv_handle_t *)&s->conns_ready);
  close_if_open((uv_handle_t *)&s->flusher);
  close_if_open((uv_handle_t *)&s->waker);
  close_if_open((uv_handle_t *)&s->sweeper);
  close_if_open((uv_handle_t *)&s->grace);
  uv_run(s->loop, UV_RUN_DEFAULT); /* let close callbacks run */
  close(s->epfd);
  if (s->reserve_fd >= 0) close(s->reserve_fd);
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
