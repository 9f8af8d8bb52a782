/* Unit tests for permessage-deflate: offer negotiation, deflater frames, the bounded inflater. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "net/ws_deflate.h"
#include "net/ws_frame.h"

#define MIB (1024 * 1024)

/* ---- helpers ---- */

static uint32_t rng = 2463534242u;

static void random_bytes(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    p[i] = (uint8_t)rng;
  }
}

/* Text with plenty of repeats, like a stream of chat JSON. */
static uint8_t *compressible(size_t n) {
  static const char *words[] = {"{\"type\":\"message\",", "\"channel\":\"general\",", "\"text\":\"hello ",
                                "world\",", "\"user\":42}", " lorem ", "ipsum "};
  uint8_t *p = malloc(n ? n : 1);
  for (size_t i = 0; i < n;) {
    uint8_t r;
    random_bytes(&r, 1);
    const char *w = words[r % 7];
    for (size_t j = 0; w[j] && i < n; j++) p[i++] = (uint8_t)w[j];
  }
  return p;
}

static hd_ws_deflate_params_t params_of(bool cnct) {
  return (hd_ws_deflate_params_t){true, cnct, 15, 15};
}

/* Checks the frame header of b (FIN, RSV1, opcode) and returns its payload. */
static const uint8_t *frame_payload(const hd_buf_t *b, uint8_t opcode, size_t *len) {
  hd_ws_frame_t f;
  int hlen = hd_ws_frame_parse_header(b->data, b->len, &f);
  assert_true(hlen >= 2);
  assert_true(f.fin && f.rsv1 && !f.rsv2 && !f.rsv3 && !f.masked);
  assert_int_equal(f.opcode, opcode);
  assert_int_equal(hlen + f.payload_len, b->len);
  /* minimal length encoding */
  assert_int_equal(hlen, f.payload_len < 126 ? 2 : f.payload_len <= 0xffff ? 4 : 10);
  *len = (size_t)f.payload_len;
  return b->data + hlen;
}

/* Inflates one whole message given as one fragment; returns the rc. */
static int inflate_all(hd_ws_inflater_t *inf, const uint8_t *in, size_t len, hd_sbuf_t *out, size_t max) {
  out->len = 0;
  return hd_ws_inflater_feed(inf, in, len, true, out, max);
}

/* ---- negotiation ---- */

typedef struct {
  const char *offer;
  int limit;
  const char *resp; /* NULL: declined */
  bool cnct;
  int smwb, cmwb;
} nego_case_t;

#define BASE "permessage-deflate; server_no_context_takeover"

static const nego_case_t nego_cases[] = {
    {"", 15, NULL, false, 0, 0},
    {"x-webkit-deflate-frame", 15, NULL, false, 0, 0},
    {"permessage-deflate", 15, BASE, false, 15, 15},
    {"  permessage-deflate  ", 15, BASE, false, 15, 15},
    {"Permessage-Deflate; Client_No_Context_Takeover", 15, BASE "; client_no_context_takeover", true, 15, 15},
    {"permessage-deflate; server_no_context_takeover", 15, BASE, false, 15, 15},
    {"permessage-deflate; client_no_context_takeover", 15, BASE "; client_no_context_takeover", true, 15, 15},
    {"permessage-deflate; client_max_window_bits", 15, BASE, false, 15, 15},
    {"permessage-deflate; client_max_window_bits=10", 15, BASE "; client_max_window_bits=10", false, 15, 10},
    {"permessage-deflate; client_max_window_bits=8", 15, BASE "; client_max_window_bits=8", false, 15, 8},
    {"permessage-deflate; client_max_window_bits=15", 15, BASE, false, 15, 15},
    {"permessage-deflate; server_max_window_bits=10", 15, BASE "; server_max_window_bits=10", false, 10, 15},
    {"permessage-deflate; server_max_window_bits=15", 15, BASE "; server_max_window_bits=15", false, 15, 15},
    {"permessage-deflate; server_max_window_bits=9", 15, BASE "; server_max_window_bits=9", false, 9, 15},
    {"permessage-deflate; server_max_window_bits=\"12\"", 15, BASE "; server_max_window_bits=12", false, 12, 15},
    {"permessage-deflate; client_max_window_bits=\"1\\1\"", 15, BASE "; client_max_window_bits=11", false, 15, 11},
    {"permessage-deflate;client_no_context_takeover;server_max_window_bits = 11 ;client_max_window_bits=9", 15,
     BASE "; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=9", true, 11, 9},
    /* the server's limit */
    {"permessage-deflate", 10, BASE "; server_max_window_bits=10", false, 10, 15},
    {"permessage-deflate; server_max_window_bits=12", 10, BASE "; server_max_window_bits=10", false, 10, 15},
    {"permessage-deflate; server_max_window_bits=9", 10, BASE "; server_max_window_bits=9", false, 9, 15},
    /* declined: bad values */
    {"permessage-deflate; server_max_window_bits=8", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=16", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=7", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=010", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=09", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=1a", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=\"\"", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=\"10", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=\"1\\\"", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=1 0", 15, NULL, false, 0, 0},
    {"permessage-deflate; client_max_window_bits=16", 15, NULL, false, 0, 0},
    {"permessage-deflate; client_max_window_bits=7", 15, NULL, false, 0, 0},
    {"permessage-deflate; client_max_window_bits=", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_no_context_takeover=1", 15, NULL, false, 0, 0},
    {"permessage-deflate; client_no_context_takeover=\"\"", 15, NULL, false, 0, 0},
    /* declined: unknown and repeated parameters */
    {"permessage-deflate; foo", 15, NULL, false, 0, 0},
    {"permessage-deflate; x=1; client_no_context_takeover", 15, NULL, false, 0, 0},
    {"permessage-deflate; ; client_no_context_takeover", 15, NULL, false, 0, 0},
    {"permessage-deflate; client_no_context_takeover; client_no_context_takeover", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", 15, NULL, false, 0, 0},
    {"permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", 15, NULL, false, 0, 0},
    {"permessage-deflate; client_max_window_bits; client_max_window_bits=10", 15, NULL, false, 0, 0},
    /* several offers: the first acceptable wins */
    {"permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits", 15, BASE, false,
     15, 15},
    {"permessage-deflate; foo, permessage-deflate; client_no_context_takeover", 15,
     BASE "; client_no_context_takeover", true, 15, 15},
    {"x-foo; a=\"b, permessage-deflate; c\", permessage-deflate; client_max_window_bits=12", 15,
     BASE "; client_max_window_bits=12", false, 15, 12},
    {"permessage-deflate; server_max_window_bits=10, permessage-deflate", 15, BASE "; server_max_window_bits=10",
     false, 10, 15},
    {",, x-foo ,permessage-deflate", 15, BASE, false, 15, 15},
    {"x-foo, permessage-deflate; bad=\"unterminated, permessage-deflate", 15, NULL, false, 0, 0},
};

static void test_negotiate_table(void **state) {
  for (size_t i = 0; i < sizeof(nego_cases) / sizeof(nego_cases[0]); i++) {
    const nego_case_t *c = &nego_cases[i];
    hd_ws_deflate_params_t p;
    char resp[256] = "unchanged";
    hd_slice_t offers = {c->offer, strlen(c->offer)};
    assert_int_equal(hd_ws_deflate_negotiate(offers, c->limit, &p, resp, sizeof(resp)), 0);
    if (p.enabled != (c->resp != NULL)) fail_msg("case %zu (%s): enabled %d", i, c->offer, p.enabled);
    if (!c->resp) continue;
    if (strcmp(resp, c->resp)) fail_msg("case %zu (%s): got \"%s\"", i, c->offer, resp);
    assert_int_equal(p.client_no_context_takeover, c->cnct);
    assert_int_equal(p.server_max_window_bits, c->smwb);
    assert_int_equal(p.client_max_window_bits, c->cmwb);
  }
}

static void test_negotiate_errors(void **state) {
  hd_ws_deflate_params_t p;
  char resp[256];
  assert_int_equal(hd_ws_deflate_negotiate(HD_SLICE_LIT("permessage-deflate"), 8, &p, resp, sizeof(resp)), HD_EINVAL);
  assert_int_equal(hd_ws_deflate_negotiate(HD_SLICE_LIT("permessage-deflate"), 16, &p, resp, sizeof(resp)),
                   HD_EINVAL);
  assert_int_equal(hd_ws_deflate_negotiate(HD_SLICE_LIT("permessage-deflate"), 15, &p, resp, 10), HD_ETOOBIG);
  assert_false(p.enabled);
  hd_slice_t longest = HD_SLICE_LIT("permessage-deflate; client_no_context_takeover; server_max_window_bits=10; "
                                    "client_max_window_bits=10");
  assert_int_equal(hd_ws_deflate_negotiate(longest, 15, &p, resp, 129), 0); /* 128 characters */
  assert_true(p.enabled);
  assert_int_equal(strlen(resp), 128);
  assert_int_equal(hd_ws_deflate_negotiate(longest, 15, &p, resp, 128), HD_ETOOBIG);
}

/* ---- deflater -> inflater ---- */

static void round_trip(hd_ws_deflater_t *def, hd_ws_inflater_t *inf, const uint8_t *msg, size_t len) {
  hd_buf_t *b = hd_ws_deflater_frame(def, HD_WS_OP_BINARY, msg, len);
  assert_non_null(b);
  assert_int_equal(b->refs, 1);
  size_t plen;
  const uint8_t *payload = frame_payload(b, HD_WS_OP_BINARY, &plen);
  hd_sbuf_t out = {0};
  assert_int_equal(inflate_all(inf, payload, plen, &out, len), 0);
  assert_int_equal(out.len, len);
  if (len) assert_memory_equal(out.ptr, msg, len);
  hd_sbuf_free(&out);
  hd_buf_unref(b);
}

static void test_empty_message(void **state) {
  hd_ws_deflater_t *def = hd_ws_deflater_new(15);
  hd_buf_t *b = hd_ws_deflater_frame(def, HD_WS_OP_TEXT, (const uint8_t *)"", 0);
  assert_non_null(b);
  size_t plen;
  const uint8_t *payload = frame_payload(b, HD_WS_OP_TEXT, &plen);
  assert_int_equal(plen, 1); /* RFC 7692 7.2.3.6 */
  assert_int_equal(payload[0], 0x00);
  hd_ws_deflate_params_t p = params_of(false);
  hd_ws_inflater_t *inf = hd_ws_inflater_new(&p);
  hd_sbuf_t out = {0};
  assert_int_equal(inflate_all(inf, payload, plen, &out, 0), 0);
  assert_int_equal(out.len, 0);
  round_trip(def, inf, NULL, 0);
  hd_buf_unref(b);
  hd_sbuf_free(&out);
  hd_ws_inflater_free(inf);
  hd_ws_deflater_free(def);
}

static void test_round_trips(void **state) {
  size_t n = MIB;
  uint8_t *rnd = malloc(n);
  random_bytes(rnd, n);
  uint8_t *txt = compressible(n);
  hd_ws_deflate_params_t p = params_of(false);
  hd_ws_inflater_t *inf = hd_ws_inflater_new(&p);
  for (int bits = 9; bits <= 15; bits++) {
    hd_ws_deflater_t *def = hd_ws_deflater_new(bits);
    assert_non_null(def);
    round_trip(def, inf, (const uint8_t *)"Hello", 5);
    round_trip(def, inf, txt, 125);
    round_trip(def, inf, txt, 70000);
    round_trip(def, inf, rnd, n);
    round_trip(def, inf, txt, n);
    round_trip(def, inf, rnd, 1);
    hd_ws_deflater_free(def);
  }
  hd_ws_inflater_free(inf);
  free(rnd);
  free(txt);
}

static void test_deflater_window(void **state) {
  assert_null(hd_ws_deflater_new(8));
  assert_null(hd_ws_deflater_new(16));
  /* a 9-bit deflater's output decodes with a 9-bit window: no distance reaches further */
  size_t n = 256 * 1024;
  uint8_t *txt = compressible(n);
  hd_ws_deflater_t *def = hd_ws_deflater_new(9);
  hd_buf_t *b = hd_ws_deflater_frame(def, HD_WS_OP_TEXT, txt, n);
  size_t plen;
  const uint8_t *payload = frame_payload(b, HD_WS_OP_TEXT, &plen);
  assert_true(plen < n / 2);
  uint8_t *in = malloc(plen + 4), *out = malloc(n + 1);
  memcpy(in, payload, plen);
  memcpy(in + plen, "\x00\x00\xff\xff", 4);
  z_stream zs = {0};
  assert_int_equal(inflateInit2(&zs, -9), Z_OK);
  zs.next_in = in;
  zs.avail_in = (uInt)(plen + 4);
  zs.next_out = out;
  zs.avail_out = (uInt)(n + 1);
  assert_int_equal(inflate(&zs, Z_SYNC_FLUSH), Z_OK);
  assert_int_equal(zs.total_out, n);
  assert_memory_equal(out, txt, n);
  inflateEnd(&zs);
  free(in);
  free(out);
  hd_buf_unref(b);
  hd_ws_deflater_free(def);
  free(txt);
}

static void test_fragmented(void **state) {
  size_t n = 200000;
  uint8_t *txt = compressible(n);
  hd_ws_deflater_t *def = hd_ws_deflater_new(15);
  hd_ws_deflate_params_t p = params_of(true);
  hd_ws_inflater_t *inf = hd_ws_inflater_new(&p);
  hd_sbuf_t out = {0};

  /* every two-way split of a small message, including empty fragments */
  hd_buf_t *b = hd_ws_deflater_frame(def, HD_WS_OP_TEXT, txt, 300);
  size_t plen;
  const uint8_t *payload = frame_payload(b, HD_WS_OP_TEXT, &plen);
  for (size_t cut = 0; cut <= plen; cut++) {
    out.len = 0;
    assert_int_equal(hd_ws_inflater_feed(inf, payload, cut, false, &out, 300), 0);
    assert_int_equal(hd_ws_inflater_feed(inf, payload + cut, plen - cut, true, &out, 300), 0);
    assert_int_equal(out.len, 300);
    assert_memory_equal(out.ptr, txt, 300);
  }
  /* byte by byte, then an empty final fragment */
  out.len = 0;
  for (size_t i = 0; i < plen; i++) assert_int_equal(hd_ws_inflater_feed(inf, payload + i, 1, false, &out, 300), 0);
  assert_int_equal(hd_ws_inflater_feed(inf, NULL, 0, true, &out, 300), 0);
  assert_memory_equal(out.ptr, txt, 300);
  hd_buf_unref(b);

  /* a large message at random split points */
  b = hd_ws_deflater_frame(def, HD_WS_OP_TEXT, txt, n);
  payload = frame_payload(b, HD_WS_OP_TEXT, &plen);
  for (int round = 0; round < 20; round++) {
    out.len = 0;
    size_t at = 0;
    while (at < plen) {
      uint32_t r;
      random_bytes((uint8_t *)&r, sizeof(r));
      size_t take = r % 4096;
      if (take > plen - at) take = plen - at;
      assert_int_equal(hd_ws_inflater_feed(inf, payload + at, take, false, &out, n), 0);
      at += take;
    }
    assert_int_equal(hd_ws_inflater_feed(inf, NULL, 0, true, &out, n), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.ptr, txt, n);
  }
  hd_buf_unref(b);
  hd_sbuf_free(&out);
  hd_ws_inflater_free(inf);
  hd_ws_deflater_free(def);
  free(txt);
}

static void test_max_and_zip_bomb(void **state) {
  size_t n = 10 * MIB;
  uint8_t *zeros = calloc(1, n);
  hd_ws_deflater_t *def = hd_ws_deflater_new(15);
  hd_buf_t *b = hd_ws_deflater_frame(def, HD_WS_OP_BINARY, zeros, n);
  size_t plen;
  const uint8_t *payload = frame_payload(b, HD_WS_OP_BINARY, &plen);
  assert_true(plen < 64 * 1024);
  hd_ws_deflate_params_t p = params_of(false);
  hd_ws_inflater_t *inf = hd_ws_inflater_new(&p);
  hd_sbuf_t out = {0};

  assert_int_equal(inflate_all(inf, payload, plen, &out, MIB), HD_ETOOBIG);
  assert_true(out.len <= MIB + 1);
  assert_true(out.cap <= MIB + 2); /* memory stays bounded by max, not by the bomb */
  hd_sbuf_free(&out);

  /* fed in fragments, the limit stops at the first fragment that passes it */
  hd_ws_inflater_free(inf);
  inf = hd_ws_inflater_new(&p);
  int rc = 0;
  size_t at = 0;
  while (rc == 0 && at < plen) {
    size_t take = plen - at < 100 ? plen - at : 100;
    rc = hd_ws_inflater_feed(inf, payload + at, take, false, &out, 4096);
    at += take;
  }
  assert_int_equal(rc, HD_ETOOBIG);
  assert_true(at < plen);
  assert_true(out.cap <= 4096 + 2);
  hd_sbuf_free(&out);
  hd_buf_unref(b);

  /* exactly max is fine; one byte less is too big */
  b = hd_ws_deflater_frame(def, HD_WS_OP_BINARY, zeros, 100000);
  payload = frame_payload(b, HD_WS_OP_BINARY, &plen);
  hd_ws_inflater_free(inf);
  inf = hd_ws_inflater_new(&p);
  assert_int_equal(inflate_all(inf, payload, plen, &out, 100000), 0);
  assert_int_equal(out.len, 100000);
  hd_ws_inflater_free(inf);
  inf = hd_ws_inflater_new(&p);
  assert_int_equal(inflate_all(inf, payload, plen, &out, 99999), HD_ETOOBIG);
  hd_ws_inflater_free(inf);
  inf = hd_ws_inflater_new(&p);
  assert_int_equal(inflate_all(inf, payload, plen, &out, 0), HD_ETOOBIG);

  hd_sbuf_free(&out);
  hd_buf_unref(b);
  hd_ws_inflater_free(inf);
  hd_ws_deflater_free(def);
  free(zeros);
}

static void test_corrupt(void **state) {
  hd_ws_deflate_params_t p = params_of(false);
  hd_sbuf_t out = {0};
  static const uint8_t bad_type[] = {0xff, 0xff, 0xff};          /* BTYPE 11 */
  static const uint8_t bad_stored[] = {0x00, 0x05, 0x00, 0x00, 0x00}; /* NLEN != ~LEN */
  static const uint8_t far_back[] = {0xf2, 0x00, 0x11, 0x00, 0x00};   /* a distance before any data */
  static const uint8_t truncated[] = {0xf2, 0x48, 0xcd, 0xc9};        /* "Hello" cut mid-block */
  const struct {
    const uint8_t *p;
    size_t n;
  } cases[] = {{bad_type, 3}, {bad_stored, 5}, {far_back, 5}, {truncated, 4}};
  for (size_t i = 0; i < 4; i++) {
    hd_ws_inflater_t *inf = hd_ws_inflater_new(&p);
    assert_int_equal(inflate_all(inf, cases[i].p, cases[i].n, &out, MIB), HD_EDEFLATE);
    hd_ws_inflater_free(inf);
  }
  hd_sbuf_free(&out);
}

/* RFC 7692 7.2.3: the sample messages, and context takeover between two "Hello"s. */
static void test_rfc_samples(void **state) {
  static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  static const uint8_t again[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
  static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00};
  static const uint8_t bfinal[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
  hd_sbuf_t out = {0};
  hd_ws_deflate_params_t p = params_of(false);
  hd_ws_inflater_t *inf = hd_ws_inflater_new(&p);
  const struct {
    const uint8_t *p;
    size_t n;
  } msgs[] = {{hello, 7}, {again, 5}, {stored, 11}, {bfinal, 8}, {hello, 7}, {bfinal, 8}, {bfinal, 8}};
  for (size_t i = 0; i < 7; i++) {
    assert_int_equal(inflate_all(inf, msgs[i].p, msgs[i].n, &out, 5), 0);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.ptr, "Hello", 5);
  }
  /* BFINAL split over fragments, the trailing byte alone */
  out.len = 0;
  assert_int_equal(hd_ws_inflater_feed(inf, bfinal, 7, false, &out, 5), 0);
  assert_int_equal(hd_ws_inflater_feed(inf, bfinal + 7, 1, true, &out, 5), 0);
  assert_memory_equal(out.ptr, "Hello", 5);
  hd_ws_inflater_free(inf);

  /* client_no_context_takeover: the window is gone after each message */
  p = params_of(true);
  inf = hd_ws_inflater_new(&p);
  assert_int_equal(inflate_all(inf, hello, 7, &out, 5), 0);
  assert_int_equal(inflate_all(inf, again, 5, &out, 5), HD_EDEFLATE);
  hd_ws_inflater_free(inf);
  inf = hd_ws_inflater_new(&p);
  assert_int_equal(inflate_all(inf, hello, 7, &out, 5), 0);
  assert_int_equal(inflate_all(inf, hello, 7, &out, 5), 0);
  assert_memory_equal(out.ptr, "Hello", 5);
  hd_ws_inflater_free(inf);
  hd_sbuf_free(&out);
}

/* A plain zlib client compressor with context takeover across messages. */
static size_t zlib_message(z_stream *zs, const uint8_t *msg, size_t len, uint8_t *dst, size_t cap) {
  zs->next_in = (Bytef *)msg;
  zs->avail_in = (uInt)len;
  zs->next_out = dst;
  zs->avail_out = (uInt)cap;
  assert_int_equal(deflate(zs, Z_SYNC_FLUSH), Z_OK);
  size_t n = cap - zs->avail_out;
  assert_true(n >= 4);
  assert_memory_equal(dst + n - 4, "\x00\x00\xff\xff", 4);
  return n - 4;
}

static void test_zlib_interop(void **state) {
  size_t n = 20000, cap = n + 1024; /* fits the window: message 2 can refer to all of message 1 */
  uint8_t *txt = malloc(n), *c1 = malloc(cap), *c2 = malloc(cap);
  random_bytes(txt, n);
  z_stream zs = {0};
  assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t n1 = zlib_message(&zs, txt, n, c1, cap);
  size_t n2 = zlib_message(&zs, txt, n, c2, cap); /* mostly back-references into message 1 */
  assert_true(n2 < n1 / 10);
  deflateEnd(&zs);

  hd_ws_deflate_params_t p = params_of(false);
  hd_ws_inflater_t *inf = hd_ws_inflater_new(&p);
  hd_sbuf_t out = {0};
  assert_int_equal(inflate_all(inf, c1, n1, &out, n), 0);
  assert_int_equal(out.len, n);
  assert_memory_equal(out.ptr, txt, n);
  out.len = 0;
  assert_int_equal(hd_ws_inflater_feed(inf, c2, n2 / 2, false, &out, n), 0);
  assert_int_equal(hd_ws_inflater_feed(inf, c2 + n2 / 2, n2 - n2 / 2, true, &out, n), 0);
  assert_int_equal(out.len, n);
  assert_memory_equal(out.ptr, txt, n);
  hd_ws_inflater_free(inf);

  /* the same second message is undecodable once the client promised no context takeover */
  p = params_of(true);
  inf = hd_ws_inflater_new(&p);
  assert_int_equal(inflate_all(inf, c1, n1, &out, n), 0);
  assert_int_equal(inflate_all(inf, c2, n2, &out, n), HD_EDEFLATE);
  hd_ws_inflater_free(inf);

  hd_sbuf_free(&out);
  free(txt);
  free(c1);
  free(c2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_negotiate_table), cmocka_unit_test(test_negotiate_errors),
      cmocka_unit_test(test_empty_message),   cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_deflater_window), cmocka_unit_test(test_fragmented),
      cmocka_unit_test(test_max_and_zip_bomb), cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_rfc_samples),     cmocka_unit_test(test_zlib_interop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
