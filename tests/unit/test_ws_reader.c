/* Unit tests for the WebSocket reader: every RFC 6455 rule with its close code, fragmentation
 * with interleaved control frames, UTF-8 failing fast, size limits, zero-copy delivery, feeding
 * split anywhere (down to one byte at a time) matching feeding whole, and permessage-deflate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "net/ws_reader.h"

#define FIN 0x80
#define RSV1 0x40
#define L(lit) lit, sizeof(lit) - 1
#define KOSME "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5" /* Greek "kosme", Autobahn 6.2 */

/* ---- recording callbacks: events are logged as "M<op>:<data>;", "P:..;", "O:..;", "C<code>:..;" */

typedef struct {
  hd_sbuf_t log;
  const uint8_t *lo, *hi; /* the buffer being fed */
  int copied;             /* messages whose data lay outside it */
  int stop_rc;            /* returned by every callback */
} rec_t;

static void log_event(rec_t *t, const char *tag, const uint8_t *data, size_t len) {
  hd_sbuf_puts(&t->log, tag);
  hd_sbuf_append(&t->log, data, len);
  hd_sbuf_puts(&t->log, ";");
}

static int on_message(void *ud, uint8_t op, const uint8_t *data, size_t len) {
  rec_t *t = ud;
  char tag[8] = {'M', (char)('0' + op), ':'};
  log_event(t, tag, data, len);
  if (len && !(data >= t->lo && data + len <= t->hi)) t->copied++;
  return t->stop_rc;
}

static int on_ping(void *ud, const uint8_t *data, size_t len) {
  log_event(ud, "P:", data, len);
  return ((rec_t *)ud)->stop_rc;
}

static int on_pong(void *ud, const uint8_t *data, size_t len) {
  log_event(ud, "O:", data, len);
  return ((rec_t *)ud)->stop_rc;
}

static int on_close(void *ud, uint16_t code, const uint8_t *reason, size_t len) {
  rec_t *t = ud;
  hd_sbuf_printf(&t->log, "C%u:", code);
  log_event(t, "", reason, len);
  return t->stop_rc;
}

static const hd_ws_reader_callbacks_t CB = {on_message, on_ping, on_pong, on_close};
static const hd_ws_deflate_params_t DEFLATE = {.enabled = true, .server_max_window_bits = 15,
                                               .client_max_window_bits = 15};

/* ---- building client frames ---- */

/* Appends a masked frame with first byte b0 (FIN | RSV | opcode). */
static void put(hd_sbuf_t *s, uint8_t b0, const void *payload, size_t len) {
  uint8_t h[14], mask[4] = {(uint8_t)(0x5a + len), 0xc3, (uint8_t)len, 0x0f};
  size_t n = hd_ws_frame_header_write(h, b0 & FIN, b0 & RSV1, b0 & 0x0f, len);
  h[0] = b0;
  h[1] |= 0x80;
  memcpy(h + n, mask, 4);
  hd_sbuf_append(s, h, n + 4);
  size_t at = s->len;
  hd_sbuf_append(s, payload, len);
  hd_ws_mask((uint8_t *)s->ptr + at, len, mask, 0);
}

static void put_close(hd_sbuf_t *s, uint16_t code, const char *reason, size_t len) {
  uint8_t body[200] = {(uint8_t)(code >> 8), (uint8_t)code};
  memcpy(body + 2, reason, len);
  put(s, FIN | HD_WS_OP_CLOSE, body, 2 + len);
}

/* Raw deflate of one message with the 00 00 ff ff tail removed (RFC 7692 7.2.1). */
static void put_deflated(hd_sbuf_t *out, z_stream *zs, const void *in, size_t len) {
  size_t at = out->len;
  hd_sbuf_reserve(out, len + 64);
  zs->next_in = (Bytef *)in;
  zs->avail_in = (uInt)len;
  do {
    hd_sbuf_reserve(out, 4096);
    zs->next_out = (Bytef *)out->ptr + out->len;
    zs->avail_out = 4096;
    assert_int_not_equal(deflate(zs, Z_SYNC_FLUSH), Z_STREAM_ERROR);
    out->len += 4096 - zs->avail_out;
  } while (zs->avail_out == 0);
  assert_true(out->len - at >= 4);
  assert_memory_equal(out->ptr + out->len - 4, "\x00\x00\xff\xff", 4);
  out->len -= 4;
}

static void deflater(z_stream *zs) {
  memset(zs, 0, sizeof(*zs));
  assert_int_equal(deflateInit2(zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
}

/* ---- feeding ---- */

typedef struct {
  rec_t rec;
  hd_ws_reader_t r;
  int rc;
} run_t;

static void start(run_t *x, size_t max, const hd_ws_deflate_params_t *deflate) {
  memset(x, 0, sizeof(*x));
  hd_ws_reader_init(&x->r, &CB, &x->rec, max, deflate);
}

/* Feeds data[0..len) (a copy of it, since the reader unmasks in place); keeps the first rc. */
static int feed(run_t *x, const void *data, size_t len) {
  uint8_t *copy = malloc(len + 1);
  memcpy(copy, data, len);
  x->rec.lo = copy, x->rec.hi = copy + len;
  int rc = hd_ws_reader_feed(&x->r, copy, len);
  if (!x->rc) x->rc = rc;
  free(copy);
  return rc;
}

static void finish(run_t *x) {
  hd_ws_reader_free(&x->r);
  hd_sbuf_free(&x->rec.log);
}

/* Runs a stream fed in pieces of `step` bytes (0: whole). */
static void run(run_t *x, const hd_sbuf_t *s, size_t step, size_t max, const hd_ws_deflate_params_t *deflate) {
  start(x, max, deflate);
  if (!step) step = s->len;
  for (size_t at = 0; at < s->len; at += step) feed(x, s->ptr + at, at + step > s->len ? s->len - at : step);
}

/* Feeds the stream whole, byte by byte and in several chunk sizes; all must report the same
 * events, return code and close code, which are checked against the expected ones. */
static void expect(const hd_sbuf_t *s, size_t max, const hd_ws_deflate_params_t *deflate, const char *log,
                   size_t log_len, int rc, uint16_t code) {
  static const size_t steps[] = {0, 1, 2, 3, 7, 64, 1000};
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    run_t x;
    run(&x, s, steps[i], max, deflate);
    const char *got = x.rec.log.ptr ? x.rec.log.ptr : "";
    if (x.rec.log.len != log_len || memcmp(got, log, log_len))
      fail_msg("step %zu: log '%.*s', want '%.*s'", steps[i], (int)x.rec.log.len, got, (int)log_len, log);
    assert_int_equal(x.rc, rc);
    assert_int_equal(x.r.close_code, code);
    if (rc < 0) assert_true(x.r.closed);
    /* split frames and fragments are buffered only while incomplete: an idle reader holds nothing */
    if (!rc && hd_ws_reader_idle(&x.r) && !(deflate && deflate->enabled)) assert_null(x.r.bufs);
    finish(&x);
  }
}

#define EXPECT(s, max, deflate, log, rc, code) expect(s, max, deflate, log, sizeof(log) - 1, rc, code)

/* ---- tests ---- */

static void test_single_frame_zero_copy(void **state) {
  hd_sbuf_t s = {0};
  put(&s, FIN | HD_WS_OP_TEXT, L("hello"));
  run_t x;
  run(&x, &s, 0, 1000, NULL);
  assert_int_equal(x.rc, 0);
  assert_string_equal(x.rec.log.ptr, "M1:hello;");
  assert_int_equal(x.rec.copied, 0);
  assert_null(x.r.bufs); /* nothing was buffered */
  assert_true(hd_ws_reader_idle(&x.r));
  finish(&x);
  hd_sbuf_free(&s);
}

static void test_many_frames_one_feed(void **state) {
  hd_sbuf_t s = {0};
  put(&s, FIN | HD_WS_OP_TEXT, L("one"));
  put(&s, FIN | HD_WS_OP_BINARY, "", 0);
  put(&s, FIN | HD_WS_OP_PING, L("p"));
  put(&s, FIN | HD_WS_OP_PONG, "", 0);
  put(&s, FIN | HD_WS_OP_BINARY, L("bbbb"));
  put(&s, FIN | HD_WS_OP_TEXT, L(KOSME));
  put_close(&s, 1000, L("bye"));
  put(&s, FIN | HD_WS_OP_TEXT, L("ignored after close"));
  run_t x;
  run(&x, &s, 0, 1000, NULL);
  assert_int_equal(x.rc, 0);
  assert_string_equal(x.rec.log.ptr, "M1:one;M2:;P:p;O:;M2:bbbb;M1:" KOSME ";C1000:bye;");
  assert_int_equal(x.rec.copied, 0);
  assert_true(x.r.closed);
  assert_int_equal(feed(&x, s.ptr, s.len), 0); /* still ignored */
  finish(&x);
  EXPECT(&s, 1000, NULL, "M1:one;M2:;P:p;O:;M2:bbbb;M1:" KOSME ";C1000:bye;", 0, 0);
  hd_sbuf_free(&s);
}

static void test_fragmented_with_control(void **state) {
  hd_sbuf_t s = {0};
  put(&s, HD_WS_OP_TEXT, L("Hel"));
  put(&s, FIN | HD_WS_OP_PING, L("x"));
  put(&s, HD_WS_OP_CONT, L("lo "));
  put(&s, FIN | HD_WS_OP_PONG, L("y"));
  put(&s, HD_WS_OP_CONT, "", 0);
  put(&s, FIN | HD_WS_OP_CONT, L("W\xe2\x82")); /* a character split across fragments */
  put(&s, HD_WS_OP_BINARY, L("a"));
  put_close(&s, 1001, "", 0); /* a close may also arrive mid-message */
  EXPECT(&s, 1000, NULL, "P:x;O:y;", HD_EUTF8, 1007); /* the last text fragment ends mid-character */

  hd_sbuf_t t = {0};
  put(&t, HD_WS_OP_TEXT, L("Hel"));
  put(&t, FIN | HD_WS_OP_PING, L("x"));
  put(&t, HD_WS_OP_CONT, L("lo W\xe2\x82"));
  put(&t, FIN | HD_WS_OP_PONG, L("y"));
  put(&t, FIN | HD_WS_OP_CONT, L("\xac!"));
  put(&t, HD_WS_OP_BINARY, L("a"));
  put(&t, FIN | HD_WS_OP_CONT, L("b"));
  put(&t, HD_WS_OP_BINARY, L("c"));
  put_close(&t, 1001, "", 0);
  EXPECT(&t, 1000, NULL, "P:x;O:y;M1:Hello W\xe2\x82\xac!;M2:ab;C1001:;", 0, 0);

  run_t x; /* idle only between messages */
  start(&x, 1000, NULL);
  const char *p = t.ptr;
  size_t first = 2 + 4 + 3;
  feed(&x, p, 1);
  assert_false(hd_ws_reader_idle(&x.r));
  feed(&x, p + 1, first - 1);
  assert_false(hd_ws_reader_idle(&x.r));
  assert_int_equal(x.r.msg_opcode, HD_WS_OP_TEXT);
  feed(&x, p + first, t.len - first);
  assert_true(x.r.closed);
  finish(&x);
  hd_sbuf_free(&s);
  hd_sbuf_free(&t);
}

static void test_split_equivalence(void **state) {
  size_t n = 70000;
  uint8_t *big = malloc(n);
  for (size_t i = 0; i < n; i++) big[i] = (uint8_t)(i * 31);
  hd_sbuf_t s = {0}, text = {0}; /* 16-byte units, the 1000th byte inside a character */
  for (int i = 0; i < 200; i++) hd_sbuf_puts(&text, KOSME " \xf0\x9f\x98\x80");
  char small[125];
  memset(small, 'a', sizeof(small));
  memcpy(small, text.ptr, 16);
  put(&s, FIN | HD_WS_OP_TEXT, small, 125);
  put(&s, FIN | HD_WS_OP_TEXT, text.ptr, 128); /* 16-bit length */
  put(&s, FIN | HD_WS_OP_BINARY, big, n);          /* 64-bit length */
  put(&s, HD_WS_OP_TEXT, text.ptr, 1000);
  put(&s, FIN | HD_WS_OP_PING, L("mid"));
  put(&s, FIN | HD_WS_OP_CONT, text.ptr + 1000, text.len - 1000);
  put(&s, FIN | HD_WS_OP_BINARY, "", 0);
  put_close(&s, 4000, L("done"));

  run_t whole;
  run(&whole, &s, 0, 1 << 20, NULL);
  assert_int_equal(whole.rc, 0);
  assert_int_equal(whole.rec.copied, 1); /* only the fragmented message was assembled */
  assert_true(whole.r.closed);
  static const size_t steps[] = {1, 2, 5, 13, 126, 4096, 65536};
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    run_t x;
    run(&x, &s, steps[i], 1 << 20, NULL);
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.rec.log.len, whole.rec.log.len);
    assert_memory_equal(x.rec.log.ptr, whole.rec.log.ptr, whole.rec.log.len);
    finish(&x);
  }
  /* every two-way split of a short stream */
  hd_sbuf_t t = {0};
  put(&t, FIN | HD_WS_OP_TEXT, L("ab\xe2\x82\xac"));
  put(&t, HD_WS_OP_BINARY, big, 130);
  put(&t, FIN | HD_WS_OP_PING, "", 0);
  put(&t, FIN | HD_WS_OP_CONT, L("z"));
  run_t ref;
  run(&ref, &t, 0, 1000, NULL);
  for (size_t cut = 0; cut <= t.len; cut++) {
    run_t x;
    start(&x, 1000, NULL);
    feed(&x, t.ptr, cut);
    feed(&x, t.ptr + cut, t.len - cut);
    assert_int_equal(x.rc, 0);
    assert_true(hd_ws_reader_idle(&x.r));
    assert_int_equal(x.rec.log.len, ref.rec.log.len);
    assert_memory_equal(x.rec.log.ptr, ref.rec.log.ptr, ref.rec.log.len);
    finish(&x);
  }
  finish(&ref);
  finish(&whole);
  hd_sbuf_free(&s);
  hd_sbuf_free(&t);
  hd_sbuf_free(&text);
  free(big);
}

/* One bad stream per rule; each must fail with its code however it is split. */
static void test_protocol_rules(void **state) {
  hd_sbuf_t s = {0};
  static const hd_ws_deflate_params_t off = {.enabled = false};
#define BAD(setup, deflate, rc, code)          \
  do {                                         \
    s.len = 0;                                 \
    setup;                                     \
    EXPECT(&s, 1000, deflate, "", rc, code);   \
  } while (0)
  BAD(hd_sbuf_append(&s, "\x81\x02hi", 4), NULL, HD_EPROTO, 1002); /* unmasked */
  BAD(put(&s, FIN | 0x20 | HD_WS_OP_TEXT, L("hi")), NULL, HD_EPROTO, 1002);  /* RSV2 */
  BAD(put(&s, FIN | 0x10 | HD_WS_OP_TEXT, L("hi")), &DEFLATE, HD_EPROTO, 1002); /* RSV3 */
  BAD(put(&s, FIN | RSV1 | HD_WS_OP_TEXT, L("hi")), NULL, HD_EPROTO, 1002);  /* RSV1, no deflate */
  BAD(put(&s, FIN | RSV1 | HD_WS_OP_TEXT, L("hi")), &off, HD_EPROTO, 1002);
  BAD(put(&s, FIN | RSV1 | HD_WS_OP_PING, "", 0), &DEFLATE, HD_EPROTO, 1002);
  BAD((put(&s, RSV1 | HD_WS_OP_TEXT, "", 0), put(&s, FIN | RSV1 | HD_WS_OP_CONT, "\x03\x00", 2)), &DEFLATE,
      HD_EPROTO, 1002);
  for (uint8_t op = 3; op <= 0xf; op++)
    if (op < 8 || op > 0xa) BAD(put(&s, FIN | op, L("x")), NULL, HD_EPROTO, 1002);
  static uint8_t big[126];
  BAD(put(&s, FIN | HD_WS_OP_PING, big, 126), NULL, HD_EPROTO, 1002);
  BAD(put(&s, FIN | HD_WS_OP_CLOSE, big, 126), NULL, HD_EPROTO, 1002);
  BAD(put(&s, HD_WS_OP_PING, L("x")), NULL, HD_EPROTO, 1002); /* control without FIN */
  BAD(put(&s, HD_WS_OP_CLOSE, "", 0), NULL, HD_EPROTO, 1002);
  BAD(put(&s, FIN | HD_WS_OP_CONT, L("x")), NULL, HD_EPROTO, 1002); /* nothing to continue */
  BAD(put(&s, HD_WS_OP_CONT, L("x")), NULL, HD_EPROTO, 1002);
  BAD((put(&s, HD_WS_OP_TEXT, L("a")), put(&s, FIN | HD_WS_OP_TEXT, L("b"))), NULL, HD_EPROTO, 1002);
  BAD((put(&s, HD_WS_OP_BINARY, L("a")), put(&s, HD_WS_OP_BINARY, L("b"))), NULL, HD_EPROTO, 1002);
  BAD(hd_sbuf_append(&s, "\x82\xff\x80\0\0\0\0\0\0\0mask", 14), NULL, HD_EPROTO, 1002); /* 64-bit top bit */
  BAD(put(&s, FIN | HD_WS_OP_CLOSE, "\x03", 1), NULL, HD_EPROTO, 1002);
  static const uint16_t bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
  for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++)
    BAD(put_close(&s, bad_codes[i], L("x")), NULL, HD_EPROTO, 1002);
  BAD(put_close(&s, 1000, L("bad \xc0\xaf")), NULL, HD_EUTF8, 1007);
  BAD(put_close(&s, 1000, L("cut \xe2\x82")), NULL, HD_EUTF8, 1007);
  BAD(put_close(&s, 1000, L("\x80")), NULL, HD_EUTF8, 1007);
  BAD(put(&s, FIN | HD_WS_OP_TEXT, L("\xed\xa0\x80")), NULL, HD_EUTF8, 1007);
  BAD(put(&s, FIN | HD_WS_OP_TEXT, L("ok\xf0\x9f")), NULL, HD_EUTF8, 1007);
  static uint8_t payload[1001];
  BAD(put(&s, FIN | HD_WS_OP_BINARY, payload, 1001), NULL, HD_ETOOBIG, 1009);
  BAD((put(&s, HD_WS_OP_BINARY, payload, 600), put(&s, FIN | HD_WS_OP_CONT, payload, 401)), NULL, HD_ETOOBIG, 1009);
#undef BAD
  s.len = 0;
  put(&s, HD_WS_OP_BINARY, payload, 600);
  put(&s, FIN | HD_WS_OP_CONT, payload, 400); /* exactly the limit */
  put(&s, FIN | HD_WS_OP_CLOSE, "", 0);
  run_t x;
  run(&x, &s, 0, 1000, NULL);
  assert_int_equal(x.rc, 0);
  assert_int_equal(x.rec.log.len, 3 + 1000 + 1 + 7);
  assert_memory_equal(x.rec.log.ptr + 1004, "C1005:;", 7);
  finish(&x);
  hd_sbuf_free(&s);
}

static void test_close_frames(void **state) {
  hd_sbuf_t s = {0};
  put(&s, FIN | HD_WS_OP_CLOSE, "", 0);
  EXPECT(&s, 100, NULL, "C1005:;", 0, 0);
  s.len = 0;
  put_close(&s, 1000, "", 0);
  EXPECT(&s, 100, NULL, "C1000:;", 0, 0);
  static const uint16_t good[] = {1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 4999};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    s.len = 0;
    put_close(&s, good[i], L("r\xc3\xa9sum\xc3\xa9"));
    char want[32];
    snprintf(want, sizeof(want), "C%u:r\xc3\xa9sum\xc3\xa9;", good[i]);
    expect(&s, 100, NULL, want, strlen(want), 0, 0);
  }
  s.len = 0;
  put_close(&s, 1000, L("bye"));
  put(&s, FIN | HD_WS_OP_TEXT, L("after"));
  put(&s, FIN | 0x20, L("even a bad frame")); /* ignored, not an error */
  EXPECT(&s, 100, NULL, "C1000:bye;", 0, 0);
  hd_sbuf_free(&s);
}

static void test_size_checked_before_payload(void **state) {
  run_t x;
  start(&x, 1000, NULL);
  static const uint8_t huge[14] = {0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}; /* 2^62 bytes */
  for (size_t i = 0; i < 13; i++) assert_int_equal(feed(&x, huge + i, 1), 0);
  assert_int_equal(feed(&x, huge + 13, 1), HD_ETOOBIG);
  assert_int_equal(x.r.close_code, 1009);
  finish(&x);
  start(&x, 1000, NULL);
  static const uint8_t medium[8] = {0x81, 0xfe, 0xff, 0xff, 1, 2, 3, 4}; /* 65535 bytes, none sent */
  assert_int_equal(feed(&x, medium, 8), HD_ETOOBIG);
  assert_int_equal(x.r.close_code, 1009);
  assert_null(x.r.bufs);
  finish(&x);
}

/* Invalid UTF-8 fails on the feed that brings the bad byte, not at the end of the message. */
static void test_utf8_fails_fast(void **state) {
  hd_sbuf_t s = {0};
  put(&s, HD_WS_OP_TEXT, L("\xce\xba\xe1\xbd"));
  size_t a = s.len;
  put(&s, HD_WS_OP_CONT, L("\xb9\xf4\x90\x80\x80"));
  size_t b = s.len;
  put(&s, FIN | HD_WS_OP_CONT, L("fine"));
  run_t x;
  start(&x, 1000, NULL);
  assert_int_equal(feed(&x, s.ptr, a), 0);
  assert_int_equal(feed(&x, s.ptr + a, b - a), HD_EUTF8);
  assert_int_equal(x.r.close_code, 1007);
  assert_int_equal(feed(&x, s.ptr + b, s.len - b), 0); /* ignored */
  assert_int_equal(x.rec.log.len, 0);
  finish(&x);

  /* within one frame: the first chunk holding the bad byte fails, whole frame or not */
  uint8_t text[100];
  memset(text, 'a', sizeof(text));
  text[30] = 0xff;
  s.len = 0;
  put(&s, FIN | HD_WS_OP_TEXT, text, sizeof(text));
  size_t hl = 2 + 4;
  start(&x, 1000, NULL);
  assert_int_equal(feed(&x, s.ptr, hl + 20), 0);
  assert_int_equal(feed(&x, s.ptr + hl + 20, 10), 0);
  assert_int_equal(feed(&x, s.ptr + hl + 30, 1), HD_EUTF8);
  finish(&x);
  start(&x, 1000, NULL);
  assert_int_equal(feed(&x, s.ptr, hl + 31), HD_EUTF8);
  finish(&x);

  s.len = 0; /* binary payloads are not validated */
  put(&s, FIN | HD_WS_OP_BINARY, L("\xff\xfe"));
  EXPECT(&s, 1000, NULL, "M2:\xff\xfe;", 0, 0);
  hd_sbuf_free(&s);
}

static int stop_after_first(void *ud, uint8_t op, const uint8_t *data, size_t len) {
  on_message(ud, op, data, len);
  return 42;
}

static void test_callback_stops(void **state) {
  hd_sbuf_t s = {0};
  put(&s, FIN | HD_WS_OP_PING, L("1"));
  put(&s, FIN | HD_WS_OP_TEXT, L("2"));
  run_t x;
  start(&x, 100, NULL);
  x.rec.stop_rc = 7;
  assert_int_equal(feed(&x, s.ptr, s.len), 7);
  assert_string_equal(x.rec.log.ptr, "P:1;");
  assert_false(x.r.closed);
  assert_int_equal(x.r.close_code, 0);
  finish(&x);

  static const hd_ws_reader_callbacks_t cb = {.on_message = stop_after_first};
  s.len = 0;
  put(&s, FIN | HD_WS_OP_TEXT, L("a"));
  put(&s, FIN | HD_WS_OP_TEXT, L("b"));
  start(&x, 100, NULL);
  x.r.cb = &cb;
  assert_int_equal(feed(&x, s.ptr, s.len), 42);
  assert_string_equal(x.rec.log.ptr, "M1:a;");
  finish(&x);
  hd_sbuf_free(&s);
}

static void test_null_callbacks(void **state) {
  hd_sbuf_t s = {0};
  put(&s, FIN | HD_WS_OP_TEXT, L("a"));
  put(&s, FIN | HD_WS_OP_PING, L("b"));
  put(&s, FIN | HD_WS_OP_PONG, L("c"));
  put(&s, HD_WS_OP_BINARY, L("d"));
  put(&s, FIN | HD_WS_OP_CONT, L("e"));
  put_close(&s, 1000, "", 0);
  static const hd_ws_reader_callbacks_t none;
  const hd_ws_reader_callbacks_t *cbs[] = {NULL, &none};
  for (int i = 0; i < 2; i++) {
    hd_ws_reader_t r;
    hd_ws_reader_init(&r, cbs[i], NULL, 100, NULL);
    uint8_t *copy = malloc(s.len);
    memcpy(copy, s.ptr, s.len);
    assert_int_equal(hd_ws_reader_feed(&r, copy, s.len), 0);
    assert_true(r.closed);
    assert_int_equal(r.close_code, 0);
    hd_ws_reader_free(&r);
    free(copy);
  }
  hd_sbuf_free(&s);
}

static void test_compressed(void **state) {
  z_stream zs;
  deflater(&zs);
  hd_sbuf_t s = {0}, z = {0};
  const char *m1 = "hello hello hello hello \xe2\x82\xac", *m2 = "hello hello hello again";
  put_deflated(&z, &zs, m1, strlen(m1));
  put(&s, FIN | RSV1 | HD_WS_OP_TEXT, z.ptr, z.len);
  z.len = 0; /* the second message refers back into the first (context takeover) */
  put_deflated(&z, &zs, m2, strlen(m2));
  assert_true(z.len > 5);
  put(&s, RSV1 | HD_WS_OP_TEXT, z.ptr, 3);
  put(&s, FIN | HD_WS_OP_PING, L("p"));
  put(&s, HD_WS_OP_CONT, z.ptr + 3, 2);
  put(&s, FIN | HD_WS_OP_CONT, z.ptr + 5, z.len - 5);
  put(&s, FIN | HD_WS_OP_BINARY, L("plain")); /* uncompressed messages stay allowed */
  put(&s, FIN | RSV1 | HD_WS_OP_BINARY, "\x00", 1); /* an empty message */
  EXPECT(&s, 1000, &DEFLATE, "M1:hello hello hello hello \xe2\x82\xac;P:p;M1:hello hello hello again;M2:plain;M2:;", 0,
         0);

  s.len = z.len = 0; /* invalid UTF-8 inside the compressed text */
  put_deflated(&z, &zs, "ok \xed\xa0\x80", 6);
  put(&s, FIN | RSV1 | HD_WS_OP_TEXT, z.ptr, z.len);
  EXPECT(&s, 1000, &DEFLATE, "", HD_EUTF8, 1007);

  s.len = 0; /* corrupt deflate data: an invalid block type */
  put(&s, FIN | RSV1 | HD_WS_OP_BINARY, "\xff\xff\xff\xff", 4);
  EXPECT(&s, 1000, &DEFLATE, "", HD_EDEFLATE, 1007);
  deflateEnd(&zs);

  deflater(&zs); /* a zip bomb stops at the limit */
  size_t n = 1 << 20;
  uint8_t *zeros = calloc(1, n);
  s.len = z.len = 0;
  put_deflated(&z, &zs, zeros, n);
  assert_true(z.len < 2000);
  put(&s, FIN | RSV1 | HD_WS_OP_BINARY, z.ptr, z.len);
  EXPECT(&s, 10000, &DEFLATE, "", HD_ETOOBIG, 1009);
  run_t x;
  run(&x, &s, 0, n, &DEFLATE); /* the same message fits a larger limit */
  assert_int_equal(x.rc, 0);
  assert_int_equal(x.rec.log.len, 3 + n + 1);
  finish(&x);
  deflateEnd(&zs);
  free(zeros);
  hd_sbuf_free(&s);
  hd_sbuf_free(&z);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_frame_zero_copy),
      cmocka_unit_test(test_many_frames_one_feed),
      cmocka_unit_test(test_fragmented_with_control),
      cmocka_unit_test(test_split_equivalence),
      cmocka_unit_test(test_protocol_rules),
      cmocka_unit_test(test_close_frames),
      cmocka_unit_test(test_size_checked_before_payload),
      cmocka_unit_test(test_utf8_fails_fast),
      cmocka_unit_test(test_callback_stops),
      cmocka_unit_test(test_null_callbacks),
      cmocka_unit_test(test_compressed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
