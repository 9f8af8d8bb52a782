/* herald-floor: the loopback floor of this machine, the cost a fan-out server cannot go below.
 * N connected TCP socket pairs on 127.0.0.1; a writer process (pinned like the server) writes one
 * small frame per socket, round-robin over the N sockets (or --batch frames in one write), and a
 * reader process (pinned like the generator) drains every socket with epoll. It reports the CPU
 * (user + system, getrusage) each side spends per write and per frame, measured over the same
 * window. On loopback the kernel runs the receiving side of TCP in the writer's context, so the
 * writer's µs per write is what one delivery costs a server that does nothing but write it: the
 * fan-out benchmarks divide Herald's CPU per delivery by it.
 *
 * Usage: herald-floor [--sockets N] [--size BYTES] [--batch FRAMES] [--duration S] [--warmup S]
 *                     [--writer-cpu C] [--reader-cpu C]
 * Prints one JSON line on stdout. No third-party code: POSIX sockets, epoll, getrusage. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 100000
#define MAX_BATCH 1024

typedef struct {
  int sockets, size, batch, writer_cpu, reader_cpu;
  double duration, warmup;
} options_t;

/* What the reader sends back to the writer once it has drained everything. */
typedef struct {
  double cpu_s;      /* reader CPU over the measured window */
  uint64_t bytes;    /* bytes read over the measured window */
  uint64_t reads;    /* read calls that returned data in the window */
} reader_report_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double u = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
  double s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  if (user) *user = u;
  if (sys) *sys = s;
  return u + s;
}

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set)) perror("herald-floor: sched_setaffinity");
}

static int fail(const char *what) {
  fprintf(stderr, "herald-floor: %s: %s\n", what, strerror(errno));
  return 1;
}

static int parse_options(int argc, char **argv, options_t *o) {
  *o = (options_t){.sockets = 1000, .size = 66, .batch = 1, .writer_cpu = -1, .reader_cpu = -1,
                   .duration = 5, .warmup = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help")) {
      puts("herald-floor [--sockets N (1000)] [--size BYTES (66)] [--batch FRAMES (1)] [--duration S (5)]\n"
           "             [--warmup S (1)] [--writer-cpu C] [--reader-cpu C]");
      exit(0);
    }
    if (!v) { fprintf(stderr, "herald-floor: %s needs a value\n", a); return -1; }
    if (!strcmp(a, "--sockets")) o->sockets = atoi(v);
    else if (!strcmp(a, "--size")) o->size = atoi(v);
    else if (!strcmp(a, "--batch")) o->batch = atoi(v);
    else if (!strcmp(a, "--duration")) o->duration = atof(v);
    else if (!strcmp(a, "--warmup")) o->warmup = atof(v);
    else if (!strcmp(a, "--writer-cpu")) o->writer_cpu = atoi(v);
    else if (!strcmp(a, "--reader-cpu")) o->reader_cpu = atoi(v);
    else { fprintf(stderr, "herald-floor: unknown option %s (see --help)\n", a); return -1; }
    i++;
  }
  if (o->sockets < 1 || o->sockets > MAX_SOCKETS || o->size < 1 || o->size > 65536 || o->batch < 1 ||
      o->batch > MAX_BATCH || (size_t)o->size * (size_t)o->batch > 1 << 20 || o->duration <= 0 || o->warmup < 0) {
    fprintf(stderr, "herald-floor: out of range: sockets 1..%d, size 1..65536, batch 1..%d (size x batch <= 1 MiB), "
                    "duration > 0, warmup >= 0\n", MAX_SOCKETS, MAX_BATCH);
    return -1;
  }
  return 0;
}

/* A listener on 127.0.0.1 (any port): its fd, *sa its address; -1 on error. */
static int listen_loopback(struct sockaddr_in *sa) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  socklen_t sl = sizeof *sa;
  *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (l < 0 || bind(l, (struct sockaddr *)sa, sizeof *sa) || listen(l, 4096) || getsockname(l, (struct sockaddr *)sa, &sl))
    return fail("listen on 127.0.0.1"), -1;
  return l;
}

/* The reader's ends: n connections to sa (each process holds only its own n ends, so N can reach
 * the descriptor limit rather than half of it). */
static int connect_all(int n, const struct sockaddr_in *sa, int *in) {
  for (int i = 0; i < n; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (const struct sockaddr *)sa, sizeof *sa)) return fail("connect");
    fcntl(c, F_SETFL, O_NONBLOCK);
    in[i] = c;
  }
  return 0;
}

/* The writer's ends: n accepted connections, non-blocking with TCP_NODELAY (as Herald's); fails
 * when none comes for 5 s. */
static int accept_all(int n, int l, int *out) {
  for (int i = 0; i < n; i++) {
    struct pollfd pf = {.fd = l, .events = POLLIN};
    if (poll(&pf, 1, 5000) != 1) { /* the reader gave up (it says why) */
      fprintf(stderr, "herald-floor: %d of %d connections accepted\n", i, n);
      return 1;
    }
    int a = accept(l, NULL, NULL);
    if (a < 0) return fail("accept");
    int one = 1;
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(a, F_SETFL, O_NONBLOCK);
    out[i] = a;
  }
  return 0;
}

/* The reader: drains every socket until the writer closes them all; measures between the two
 * bytes on `ctl` (start, stop) and writes its report to `ctl`. */
static int run_reader(const options_t *o, const int *in, int ctl) {
  pin(o->reader_cpu);
  int ep = epoll_create1(0);
  if (ep < 0) return fail("epoll_create1");
  for (int i = 0; i < o->sockets; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = in[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, in[i], &ev)) return fail("epoll_ctl");
  }
  struct epoll_event ctl_ev = {.events = EPOLLIN, .data.fd = ctl};
  epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &ctl_ev);
  static char buf[1 << 16];
  static struct epoll_event evs[1024];
  int open = o->sockets, phase = 0; /* 0 warm-up, 1 measuring, 2 after */
  reader_report_t rep = {0};
  double cpu0 = 0;
  while (open > 0 || phase < 2) {
    int n = epoll_wait(ep, evs, 1024, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("epoll_wait");
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ctl) {
        char b;
        if (read(ctl, &b, 1) == 1) {
          if (phase == 0) cpu0 = cpu_s(NULL, NULL);
          else if (phase == 1) rep.cpu_s = cpu_s(NULL, NULL) - cpu0;
          phase++;
        }
        continue;
      }
      for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          if (phase == 1) rep.bytes += (uint64_t)r, rep.reads++;
          if ((size_t)r < sizeof buf) break;
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
          close(fd);
          open--;
        }
        break;
      }
    }
  }
  if (write(ctl, &rep, sizeof rep) != (ssize_t)sizeof rep) return fail("report");
  return 0;
}

/* One write of `len` bytes to fd, waiting for room when the socket is full; false on error. */
static bool write_all(int fd, const char *p, size_t len, uint64_t *stalls) {
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w > 0) { p += w; len -= (size_t)w; continue; }
    if (w < 0 && errno == EAGAIN) {
      struct pollfd pf = {.fd = fd, .events = POLLOUT};
      (*stalls)++;
      poll(&pf, 1, 1000);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_options(argc, argv, &o)) return 2;
  struct rlimit rl;
  if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)(o.sockets + 64)) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  int *out = calloc((size_t)o.sockets, sizeof(int)), *in = calloc((size_t)o.sockets, sizeof(int));
  if (!out || !in) return fail("calloc");
  struct sockaddr_in sa;
  int l = listen_loopback(&sa);
  if (l < 0) return 1;
  int ctl[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctl)) return fail("socketpair");
  pid_t child = fork();
  if (child < 0) return fail("fork");
  if (child == 0) {
    close(l);
    close(ctl[0]);
    _exit(connect_all(o.sockets, &sa, in) ? 1 : run_reader(&o, in, ctl[1]));
  }
  close(ctl[1]);
  if (accept_all(o.sockets, l, out)) {
    kill(child, SIGKILL);
    return 1;
  }
  close(l);
  pin(o.writer_cpu);

  size_t len = (size_t)o.size * (size_t)o.batch;
  char *frames = malloc(len);
  if (!frames) return fail("malloc");
  for (size_t i = 0; i < len; i++) frames[i] = (char)('a' + i % 26);
  uint64_t writes = 0, stalls = 0, i = 0;
  double start = now_s(), t0 = 0, cpu0 = 0, u0 = 0, s0 = 0, t1 = 0, cpu1 = 0, u1 = 0, s1 = 0;
  int phase = 0;
  for (;; i++) {
    if ((i & 1023) == 0) { /* check the clock every 1024 writes */
      double t = now_s();
      if (phase == 0 && t - start >= o.warmup) {
        if (write(ctl[0], "s", 1) != 1) return fail("control");
        t0 = now_s(), cpu0 = cpu_s(&u0, &s0), phase = 1, writes = 0, stalls = 0;
      } else if (phase == 1 && t - t0 >= o.duration) {
        t1 = now_s(), cpu1 = cpu_s(&u1, &s1);
        if (write(ctl[0], "e", 1) != 1) return fail("control");
        break;
      }
    }
    if (!write_all(out[i % (uint64_t)o.sockets], frames, len, &stalls)) return fail("write");
    writes++;
  }
  for (int k = 0; k < o.sockets; k++) close(out[k]);
  reader_report_t rep = {0};
  ssize_t got = read(ctl[0], &rep, sizeof rep);
  int status = 0;
  waitpid(child, &status, 0);
  if (got != (ssize_t)sizeof rep || !WIFEXITED(status) || WEXITSTATUS(status)) {
    fprintf(stderr, "herald-floor: the reader failed\n");
    return 1;
  }
  double wall = t1 - t0, wcpu = cpu1 - cpu0, frames_n = (double)writes * o.batch;
  printf("{\"mode\":\"floor\",\"sockets\":%d,\"size\":%d,\"batch\":%d,\"duration_s\":%.3f,\"writes\":%llu,"
         "\"frames\":%.0f,\"writes_per_s\":%.0f,\"stalls\":%llu,\"writer_cpu_s\":%.3f,\"writer_sys_pct\":%.1f,"
         "\"writer_cpu_us_per_write\":%.3f,\"writer_cpu_us_per_frame\":%.3f,\"reader_cpu_s\":%.3f,"
         "\"reader_cpu_us_per_frame\":%.3f,\"reader_frames_per_read\":%.2f,\"bytes_read\":%llu}\n",
         o.sockets, o.size, o.batch, wall, (unsigned long long)writes, frames_n, writes / wall,
         (unsigned long long)stalls, wcpu, wcpu > 0 ? 100 * (s1 - s0) / wcpu : 0, 1e6 * wcpu / (double)writes,
         1e6 * wcpu / frames_n, rep.cpu_s, 1e6 * rep.cpu_s / frames_n,
         rep.reads ? (double)rep.bytes / o.size / (double)rep.reads : 0, (unsigned long long)rep.bytes);
  return 0;
}
