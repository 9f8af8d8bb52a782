/* Unit tests for the connection write path on a real libuv loop and a loopback TCP pair (the
 * server side adopted with hd_conn_adopt, the client side read with plain recv): writes of one
 * iteration go out together, backpressure (HD_ETOOBIG, write_force), a partial write resuming,
 * end() flushing before the close, abort dropping the queue; ASan checks nothing leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "net/conn.h"
#include "net/server.h"

#define BIG ((size_t)32 << 20) /* bytes: larger than loopback socket buffers */

typedef struct {
  int data, eof, drain, freed;
} counts_t;

static counts_t counts;

static void t_data(hd_conn_t *c, char *data, size_t len) { counts.data++; }
static void t_eof(hd_conn_t *c, int err) {
  counts.eof++;
  hd_conn_abort(c);
}
static void t_drain(hd_conn_t *c) { counts.drain++; }
static void t_sweep(hd_conn_t *c, uint64_t now_ms) {}
static void t_shutdown(hd_conn_t *c) { hd_conn_end(c); }
static void t_free(hd_conn_t *c) { counts.freed++; }

static const hd_conn_handler_t test_handler = {
    .name = "test",
    .on_data = t_data,
    .on_eof = t_eof,
    .on_drain = t_drain,
    .on_sweep = t_sweep,
    .on_shutdown = t_shutdown,
    .on_free = t_free,
};

typedef struct {
  uv_loop_t loop;
  hd_config_t cfg;
  hd_server_t *srv;
  hd_conn_t *conn;
  int client; /* our end, non-blocking */
} fixture_t;

/* A connected loopback pair: *server_fd and *client_fd. */
static void tcp_pair(int *server_fd, int *client_fd) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(l >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(l, 1), 0);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
  int s = accept(l, NULL, NULL);
  assert_true(s >= 0);
  close(l);
  fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
  *server_fd = s;
  *client_fd = c;
}

static fixture_t *setup(size_t max_backpressure) {
  fixture_t *f = calloc(1, sizeof(*f));
  memset(&counts, 0, sizeof counts);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  hd_config_defaults(&f->cfg);
  f->cfg.max_backpressure = (int64_t)max_backpressure;
  f->srv = malloc(sizeof(*f->srv));
  assert_int_equal(hd_server_init(f->srv, &f->loop, &f->cfg), 0);
  int sfd;
  tcp_pair(&sfd, &f->client);
  assert_int_equal(hd_conn_adopt(f->srv, sfd, &test_handler, f, &f->conn), 0);
  assert_ptr_equal(hd_conn_udata(f->conn), f);
  assert_ptr_equal(hd_conn_server(f->conn), f->srv);
  assert_int_equal(f->srv->conn_count, 1);
  return f;
}

static void teardown(fixture_t *f) {
  close(f->client);
  hd_server_free(f->srv); /* aborts what is left and runs the close callbacks */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f->srv);
  hd_config_free(&f->cfg);
  free(f);
}

/* One loop iteration without blocking (the flusher writes during it). */
static void turn(fixture_t *f) { uv_run(&f->loop, UV_RUN_NOWAIT); }

/* Reads what the client has now, up to cap; returns the count (0: nothing yet), -1 at EOF. */
static ssize_t client_read(fixture_t *f, void *buf, size_t cap) {
  ssize_t n = recv(f->client, buf, cap, 0);
  if (n < 0) {
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    return 0;
  }
  return n == 0 ? -1 : n;
}

/* Turns the loop and reads until want bytes came (into out) or 5 s passed; returns bytes read. */
static size_t pump_read(fixture_t *f, uint8_t *out, size_t want) {
  size_t got = 0;
  for (int i = 0; i < 20000 && got < want; i++) {
    turn(f);
    ssize_t n = client_read(f, out + got, want - got);
    assert_true(n >= 0);
    got += (size_t)n;
    if (!n) usleep(1000);
  }
  return got;
}

static void write_str(hd_conn_t *c, const char *s, int want) {
  hd_buf_t *b = hd_buf_from(s, strlen(s));
  assert_int_equal(hd_conn_write(c, b), want);
  hd_buf_unref(b); /* the queue holds its own reference */
}

static void test_batch_per_iteration(void **state) {
  fixture_t *f = setup(1 << 20);
  write_str(f->conn, "one ", 0);
  write_str(f->conn, "two ", 0);
  write_str(f->conn, "three", 0);
  assert_int_equal(hd_conn_pending_bytes(f->conn), 13);
  char buf[64];
  usleep(10000);
  assert_int_equal(client_read(f, buf, sizeof buf), 0); /* nothing goes out before the iteration */
  turn(f);
  assert_int_equal(hd_conn_pending_bytes(f->conn), 0);
  usleep(10000);
  ssize_t n = client_read(f, buf, sizeof buf); /* all three in one read: one batch */
  assert_int_equal(n, 13);
  assert_memory_equal(buf, "one two three", 13);
  assert_int_equal(counts.drain, 1);
  teardown(f);
  assert_int_equal(counts.freed, 1);
}

static void test_backpressure(void **state) {
  fixture_t *f = setup(1000);
  char big[600];
  memset(big, 'x', sizeof big);
  hd_buf_t *b = hd_buf_from(big, sizeof big);
  assert_int_equal(hd_conn_write(f->conn, b), 0);
  assert_int_equal(hd_conn_write(f->conn, b), HD_ETOOBIG); /* 1200 > 1000 */
  assert_int_equal(hd_conn_pending_bytes(f->conn), 600);
  assert_int_equal(hd_conn_write_force(f->conn, b), 0); /* past the limit on purpose */
  assert_int_equal(hd_conn_pending_bytes(f->conn), 1200);
  assert_int_equal(b->refs, 3);
  uint8_t out[1200];
  assert_int_equal(pump_read(f, out, sizeof out), sizeof out);
  assert_int_equal(hd_conn_pending_bytes(f->conn), 0);
  assert_int_equal(b->refs, 1); /* written buffers are released */
  assert_int_equal(hd_conn_write(f->conn, b), 0); /* room again */
  hd_buf_unref(b);
  teardown(f);
  assert_int_equal(counts.freed, 1);
}

static void test_partial_write_resumes(void **state) {
  fixture_t *f = setup((size_t)256 << 20);
  size_t len = BIG; /* more than the socket buffers take at once */
  hd_buf_t *b = hd_buf_new(len);
  for (size_t i = 0; i < len; i++) b->data[i] = (uint8_t)(i * 7 + (i >> 12));
  b->len = len;
  assert_int_equal(hd_conn_write(f->conn, b), 0);
  write_str(f->conn, "tail", 0);
  turn(f);
  size_t pending = hd_conn_pending_bytes(f->conn);
  assert_true(pending > 0 && pending < len + 4); /* the socket took part of it */
  assert_int_equal(counts.drain, 0);
  uint8_t *out = malloc(len + 4);
  assert_int_equal(pump_read(f, out, len + 4), len + 4);
  assert_memory_equal(out, b->data, len);
  assert_memory_equal(out + len, "tail", 4);
  for (int i = 0; i < 100 && hd_conn_pending_bytes(f->conn); i++) turn(f);
  assert_int_equal(hd_conn_pending_bytes(f->conn), 0);
  assert_int_equal(counts.drain, 1);
  assert_int_equal(b->refs, 1);
  free(out);
  hd_buf_unref(b);
  teardown(f);
}

static void test_end_flushes_then_closes(void **state) {
  fixture_t *f = setup(1 << 20);
  write_str(f->conn, "goodbye", 0);
  hd_conn_end(f->conn);
  assert_true(hd_conn_is_ending(f->conn));
  assert_false(hd_conn_is_closing(f->conn));
  write_str(f->conn, "late", HD_ECLOSED);
  uint8_t out[16];
  assert_int_equal(pump_read(f, out, 7), 7);
  assert_memory_equal(out, "goodbye", 7);
  ssize_t n = 0;
  for (int i = 0; i < 5000 && n == 0; i++) { /* then our FIN */
    turn(f);
    n = client_read(f, out, sizeof out);
    if (!n) usleep(1000);
  }
  assert_int_equal(n, -1);
  assert_int_equal(counts.freed, 0); /* lingering until the peer closes too */
  shutdown(f->client, SHUT_WR);
  for (int i = 0; i < 5000 && !counts.freed; i++) {
    turn(f);
    usleep(1000);
  }
  assert_int_equal(counts.freed, 1);
  assert_int_equal(f->srv->conn_count, 0);
  teardown(f);
}

static void test_abort_drops_queue(void **state) {
  fixture_t *f = setup((size_t)256 << 20);
  hd_buf_t *b = hd_buf_new(BIG);
  memset(b->data, 'z', BIG);
  b->len = BIG;
  for (int i = 0; i < 4; i++) assert_int_equal(hd_conn_write_force(f->conn, b), 0);
  turn(f); /* part written, the rest handed to uv_write */
  assert_true(hd_conn_pending_bytes(f->conn) > 0);
  hd_conn_abort(f->conn);
  assert_true(hd_conn_is_closing(f->conn));
  assert_int_equal(counts.freed, 1);
  assert_int_equal(hd_conn_write(f->conn, b), HD_ECLOSED);
  hd_conn_abort(f->conn); /* idempotent */
  for (int i = 0; i < 100; i++) turn(f);
  assert_int_equal(b->refs, 1); /* every queued reference was dropped */
  assert_int_equal(f->srv->conn_count, 0);
  assert_null(f->srv->conns);
  hd_buf_unref(b);
  teardown(f);
  assert_int_equal(counts.freed, 1);
}

static void test_peer_close_reaches_handler(void **state) {
  fixture_t *f = setup(1 << 20);
  assert_int_equal(send(f->client, "hi", 2, 0), 2);
  for (int i = 0; i < 5000 && !counts.data; i++) {
    turn(f);
    usleep(1000);
  }
  assert_int_equal(counts.data, 1);
  shutdown(f->client, SHUT_WR);
  for (int i = 0; i < 5000 && !counts.eof; i++) {
    turn(f);
    usleep(1000);
  }
  assert_int_equal(counts.eof, 1);
  assert_int_equal(counts.freed, 1);
  teardown(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batch_per_iteration),     cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_partial_write_resumes),   cmocka_unit_test(test_end_flushes_then_closes),
      cmocka_unit_test(test_abort_drops_queue),       cmocka_unit_test(test_peer_close_reaches_handler),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
