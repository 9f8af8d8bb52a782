/* herald-echo-floor: the echo floor of this machine, the least a server spends per echo or per
 * Socket.IO ack. A minimal epoll loop that the benchmarks' own generators drive exactly as they
 * drive Herald and Node (same connections, same offered load, same wake-up pattern): per readable
 * socket one read, and every answer to what it held in one write. It speaks just enough for them:
 * the WebSocket handshake, then either (default) Engine.IO v4 / Socket.IO v5 on "/" — the open
 * packet, the CONNECT answer, and `42ID["echo",ARGS]` answered by `43ID[ARGS]` (herald-loadgen
 * sio-ack, bench/sio_load.py ack) — or, with --ws, every message echoed as it came (the echo
 * benchmarks' /ws/echo). No timers, no allocation per message, no parsing beyond the frame header
 * and the packet's first bytes: what is left is the epoll wake, the read, the write and loopback
 * TCP. Not a server to use: no UTF-8 check, no pings, messages up to one buffer.
 *
 * Usage: herald-echo-floor --port P [--ws]   (127.0.0.1; runs until SIGTERM or SIGINT)
 * The WebSocket accept key comes from Herald's hd_ws_accept_key (the handshake is not measured). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/ws_handshake.h"

#define MAX_FDS 65536
#define BUF_SIZE 16384 /* per connection: input not yet answered; a bigger message closes it */

static const char eio_open[] = "0{\"sid\":\"floor\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,"
                               "\"maxPayload\":1000000}";
static const char sio_connected[] = "40{\"sid\":\"floor\"}";

typedef struct {
  bool websocket; /* handshake answered */
  size_t in_len;
  uint8_t in[BUF_SIZE];
} conn_t;

static conn_t *conns[MAX_FDS];
static bool ws_only;
static volatile sig_atomic_t stopping;

static void on_signal(int sig) { stopping = 1; }

static void drop(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(conns[fd]);
  conns[fd] = NULL;
}

/* Appends the header of an unmasked server frame (opcode op, n payload bytes to follow) to out;
 * false when the frame does not fit in cap. */
static bool put_head(uint8_t *out, size_t *len, size_t cap, uint8_t op, size_t n) {
  size_t head = n < 126 ? 2 : 4;
  if (n > 65535 || *len + head + n > cap) return false;
  out[(*len)++] = (uint8_t)(0x80 | op);
  if (n < 126) {
    out[(*len)++] = (uint8_t)n;
  } else {
    out[(*len)++] = 126;
    out[(*len)++] = (uint8_t)(n >> 8);
    out[(*len)++] = (uint8_t)n;
  }
  return true;
}

static void put(uint8_t *out, size_t *len, const void *p, size_t n) {
  memcpy(out + *len, p, n);
  *len += n;
}

static bool put_frame(uint8_t *out, size_t *len, size_t cap, uint8_t op, const void *p, size_t n) {
  if (!put_head(out, len, cap, op, n)) return false;
  put(out, len, p, n);
  return true;
}

/* The answer to one text message of a Socket.IO client into out (its frame); false to close. */
static bool answer_sio(const uint8_t *p, size_t n, uint8_t *out, size_t *len, size_t cap) {
  static const char echo[] = "[\"echo\"";
  if (n >= 2 && p[0] == '4' && p[1] == '0') return put_frame(out, len, cap, 1, sio_connected, sizeof sio_connected - 1);
  if (n == 1 && p[0] == '2') return put_frame(out, len, cap, 1, "3", 1);
  if (n < 2 || p[0] != '4' || p[1] != '2') return true; /* pongs, disconnects: nothing to say */
  size_t i = 2, e = sizeof echo - 1;
  while (i < n && p[i] >= '0' && p[i] <= '9') i++;
  if (i == 2 || n - i < e + 1 || memcmp(p + i, echo, e)) return true; /* not an `echo` with an ack id */
  size_t rest = i + e + (p[i + e] == ',' ? 1 : 0); /* the arguments after "echo" and its comma */
  if (!put_head(out, len, cap, 1, 2 + (i - 2) + 1 + (n - rest))) return false;
  put(out, len, "43", 2); /* 43ID[ARGS] */
  put(out, len, p + 2, i - 2);
  put(out, len, "[", 1);
  put(out, len, p + rest, n - rest);
  return true;
}

/* Answers every complete frame in c->in into out; false to close. */
static bool answer_frames(conn_t *c, uint8_t *out, size_t *len, size_t cap) {
  size_t at = 0;
  bool ok = true;
  while (ok && c->in_len - at >= 6) {
    uint8_t *f = c->in + at, op = f[0] & 0x0f;
    size_t n = f[1] & 0x7f, head = 6;
    if (!(f[0] & 0x80) || !(f[1] & 0x80) || n == 127) return false; /* fragments, unmasked, > 64 KiB */
    if (n == 126) {
      if (c->in_len - at < 8) break;
      n = (size_t)f[2] << 8 | f[3];
      head = 8;
    }
    if (c->in_len - at < head + n) break;
    uint8_t *mask = f + head - 4, *p = f + head;
    for (size_t i = 0; i < n; i++) p[i] ^= mask[i & 3];
    at += head + n;
    if (op == 8) return put_frame(out, len, cap, 8, p, n < 2 ? n : 2), false; /* close: its code back */
    if (op == 9) ok = put_frame(out, len, cap, 10, p, n);
    else if (op == 1 || op == 2) ok = ws_only ? put_frame(out, len, cap, op, p, n) : op == 1 && answer_sio(p, n, out, len, cap);
  }
  memmove(c->in, c->in + at, c->in_len - at);
  c->in_len -= at;
  return ok;
}

/* The upgrade request, once complete: the 101 answer (and the Engine.IO open) into out. */
static bool answer_handshake(conn_t *c, uint8_t *out, size_t *len, size_t cap) {
  uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) return c->in_len < BUF_SIZE;
  *end = '\0';
  char *k = strcasestr((char *)c->in, "\r\nSec-WebSocket-Key:");
  if (!k) return false;
  k += 20;
  while (*k == ' ') k++;
  size_t kl = strcspn(k, " \r\n");
  char accept[HD_WS_ACCEPT_LEN + 1];
  hd_ws_accept_key((hd_slice_t){k, kl}, accept);
  int n = snprintf((char *)out, cap, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
  *len = (size_t)n;
  size_t used = (size_t)(end + 4 - c->in);
  memmove(c->in, c->in + used, c->in_len - used);
  c->in_len -= used;
  c->websocket = true;
  return ws_only || put_frame(out, len, cap, 1, eio_open, sizeof eio_open - 1);
}

/* One readable connection: one read, the answers in one write. */
static void on_readable(int ep, int fd) {
  conn_t *c = conns[fd];
  ssize_t r = read(fd, c->in + c->in_len, BUF_SIZE - c->in_len);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (r <= 0) return drop(ep, fd);
  c->in_len += (size_t)r;
  uint8_t out[BUF_SIZE + 16];
  size_t len = 0;
  bool ok = c->websocket ? answer_frames(c, out, &len, sizeof out) : answer_handshake(c, out, &len, sizeof out);
  if (ok && c->websocket && c->in_len) ok = answer_frames(c, out, &len, sizeof out); /* after the handshake */
  if (len && write(fd, out, len) != (ssize_t)len) ok = false; /* one message in flight: the socket has room */
  if (!ok) drop(ep, fd);
}

static void on_accept(int ep, int l) {
  for (;;) {
    int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (fd >= MAX_FDS || !(conns[fd] = calloc(1, sizeof(conn_t))) || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
      if (fd < MAX_FDS) free(conns[fd]), conns[fd] = NULL;
      close(fd);
    }
  }
}

int main(int argc, char **argv) {
  int port = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ws")) ws_only = true;
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else port = -2;
  }
  if (port < 0 || port > 65535) {
    fprintf(stderr, "usage: herald-echo-floor --port P [--ws]\n");
    return 2;
  }
  struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (l < 0 || bind(l, (struct sockaddr *)&addr, sizeof addr) || listen(l, 4096)) {
    perror("herald-echo-floor: listen on 127.0.0.1");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, evs[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  while (!stopping) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.fd == l) on_accept(ep, l);
      else if (conns[evs[i].data.fd]) on_readable(ep, evs[i].data.fd);
    }
  }
  for (int fd = 0; fd < MAX_FDS; fd++)
    if (conns[fd]) drop(ep, fd);
  return 0;
}
