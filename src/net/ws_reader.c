/* WebSocket frame reader (see ws_reader.h). Each frame goes through begin (header rules, size
 * limits), chunk (unmask and, for plain text, validate UTF-8 as bytes arrive) and deliver. Frames
 * wholly inside the caller's buffer are handled in place; a trailing partial frame is copied to
 * r->bufs->partial, whose bytes past max(header, previous length) are the only ones not yet
 * chunked. r->bufs exists only while something is buffered: an idle reader holds no allocation. */
#include "net/ws_reader.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define KEEP_CAP 65536 /* buffers up to this size are kept for reuse between messages */

static const hd_ws_reader_callbacks_t no_callbacks;

void hd_ws_reader_init(hd_ws_reader_t *r, const hd_ws_reader_callbacks_t *cb, void *ud, size_t max_message,
                       const hd_ws_deflate_params_t *deflate) {
  memset(r, 0, sizeof(*r));
  r->cb = cb ? cb : &no_callbacks;
  r->ud = ud;
  r->max_message = max_message > UINT32_MAX ? UINT32_MAX : (uint32_t)max_message;
  r->deflate = deflate;
}

/* r's buffers, allocated on first use; NULL when out of memory. */
static hd_ws_reader_bufs_t *bufs_of(hd_ws_reader_t *r) {
  if (!r->bufs) r->bufs = calloc(1, sizeof(*r->bufs));
  return r->bufs;
}

static size_t partial_len(const hd_ws_reader_t *r) { return r->bufs ? r->bufs->partial.len : 0; }
static size_t message_len(const hd_ws_reader_t *r) { return r->bufs ? r->bufs->message.len : 0; }

/* Empties b; once nothing at all is buffered (and no inflater keeps a context), frees r's buffers. */
static void reset(hd_ws_reader_t *r, hd_sbuf_t *b) {
  if (b->cap > KEEP_CAP) hd_sbuf_free(b);
  b->len = 0;
  hd_ws_reader_bufs_t *rb = r->bufs;
  if (rb->partial.len || rb->message.len || rb->inflater) return;
  hd_sbuf_free(&rb->partial);
  hd_sbuf_free(&rb->message);
  free(rb);
  r->bufs = NULL;
}

/* Appends data[0..len) to the partial frame; 0 or HD_ENOMEM. */
static int keep_partial(hd_ws_reader_t *r, const uint8_t *data, size_t len) {
  hd_ws_reader_bufs_t *rb = bufs_of(r);
  return rb && !hd_sbuf_append(&rb->partial, data, len) ? 0 : HD_ENOMEM;
}

static int fail(hd_ws_reader_t *r, int err) {
  r->closed = true;
  r->close_code = err == HD_EPROTO                       ? HD_WS_CLOSE_PROTOCOL
                  : err == HD_EUTF8 || err == HD_EDEFLATE ? HD_WS_CLOSE_BAD_DATA
                  : err == HD_ETOOBIG                     ? HD_WS_CLOSE_TOO_BIG
                                                          : HD_WS_CLOSE_INTERNAL;
  return err;
}

/* Compressed payload may exceed its inflated size by deflate's stored-block overhead. */
static uint64_t wire_limit(size_t max) {
  size_t slack = (max >> 11) + 16;
  return max > SIZE_MAX - slack ? SIZE_MAX : max + slack;
}

/* Checks a new frame's header against the connection state and opens a message on TEXT/BINARY. */
static int begin(hd_ws_reader_t *r, const hd_ws_frame_t *h) {
  uint8_t op = h->opcode;
  bool control = op & 0x8, deflate = r->deflate && r->deflate->enabled;
  if (!h->masked || h->rsv2 || h->rsv3) return HD_EPROTO;
  if (h->rsv1 && (!deflate || control || op == HD_WS_OP_CONT)) return HD_EPROTO;
  if (control) return op > HD_WS_OP_PONG || h->payload_len > 125 || !h->fin ? HD_EPROTO : 0;
  if (op > HD_WS_OP_BINARY || (op == HD_WS_OP_CONT) != (r->msg_opcode != 0)) return HD_EPROTO;
  if (op != HD_WS_OP_CONT) {
    r->msg_opcode = op;
    r->msg_compressed = h->rsv1;
    hd_utf8_init(&r->utf8);
  }
  if (r->msg_compressed) return h->payload_len > wire_limit(r->max_message) ? HD_ETOOBIG : 0;
  return h->payload_len > r->max_message - message_len(r) ? HD_ETOOBIG : 0;
}

/* Unmasks payload bytes p[0..n), which start at `offset` within the frame's payload. */
static int chunk(hd_ws_reader_t *r, const hd_ws_frame_t *h, uint8_t *p, size_t n, uint64_t offset) {
  hd_ws_mask(p, n, h->mask, offset);
  bool plain_text = !(h->opcode & 0x8) && r->msg_opcode == HD_WS_OP_TEXT && !r->msg_compressed;
  return plain_text ? hd_utf8_feed(&r->utf8, p, n) : 0;
}

static int control(hd_ws_reader_t *r, uint8_t op, const uint8_t *p, size_t n) {
  const hd_ws_reader_callbacks_t *cb = r->cb;
  if (op == HD_WS_OP_PING) return cb->on_ping ? cb->on_ping(r->ud, p, n) : 0;
  if (op == HD_WS_OP_PONG) return cb->on_pong ? cb->on_pong(r->ud, p, n) : 0;
  uint16_t code = n >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : HD_WS_CLOSE_NO_STATUS;
  if (n == 1 || (n >= 2 && !hd_ws_close_code_valid(code))) return fail(r, HD_EPROTO);
  if (n > 2 && hd_utf8_validate(p + 2, n - 2)) return fail(r, HD_EUTF8);
  r->closed = true;
  return cb->on_close ? cb->on_close(r->ud, code, p + (n ? 2 : 0), n ? n - 2 : 0) : 0;
}

/* Handles a complete, unmasked data frame: buffers or inflates it, delivers on FIN. */
static int data(hd_ws_reader_t *r, const hd_ws_frame_t *h, const uint8_t *p, size_t n) {
  bool buffered = r->msg_compressed || !h->fin || h->opcode == HD_WS_OP_CONT;
  hd_ws_reader_bufs_t *rb = buffered ? bufs_of(r) : NULL;
  if (buffered && !rb) return fail(r, HD_ENOMEM);
  hd_sbuf_t *m = buffered ? &rb->message : NULL;
  if (r->msg_compressed) {
    if (!rb->inflater && !(rb->inflater = hd_ws_inflater_new(r->deflate))) return fail(r, HD_ENOMEM);
    size_t old = m->len;
    int rc = hd_ws_inflater_feed(rb->inflater, p, n, h->fin, m, r->max_message);
    if (!rc && r->msg_opcode == HD_WS_OP_TEXT && m->len > old)
      rc = hd_utf8_feed(&r->utf8, (uint8_t *)m->ptr + old, m->len - old);
    if (rc) return fail(r, rc);
  } else if (buffered && hd_sbuf_append(m, p, n)) {
    return fail(r, HD_ENOMEM);
  }
  if (!h->fin) return 0;
  uint8_t op = r->msg_opcode;
  if (op == HD_WS_OP_TEXT && hd_utf8_finish(&r->utf8)) return fail(r, HD_EUTF8);
  r->msg_opcode = 0;
  r->msg_compressed = false;
  if (buffered) n = m->len, p = n ? (const uint8_t *)m->ptr : p;
  int rc = r->cb->on_message ? r->cb->on_message(r->ud, op, p, n) : 0;
  if (buffered && r->bufs) reset(r, &r->bufs->message);
  return rc;
}

static int deliver(hd_ws_reader_t *r, const hd_ws_frame_t *h, const uint8_t *p, size_t n) {
  return h->opcode & 0x8 ? control(r, h->opcode, p, n) : data(r, h, p, n);
}

/* Continues the frame in r->partial with data; sets *used to the bytes taken from data. */
static int resume(hd_ws_reader_t *r, uint8_t *data, size_t len, size_t *used) {
  hd_sbuf_t *b = &r->bufs->partial; /* resumed only while a partial frame is buffered */
  uint8_t hdr[HD_WS_MAX_HEADER];
  size_t have = b->len < sizeof(hdr) ? b->len : sizeof(hdr);
  size_t extra = len < sizeof(hdr) - have ? len : sizeof(hdr) - have;
  memcpy(hdr, b->ptr, have);
  memcpy(hdr + have, data, extra);
  hd_ws_frame_t h;
  int rc = hd_ws_frame_parse_header(hdr, have + extra, &h);
  if (rc == HD_EAGAIN) {
    *used = len;
    return hd_sbuf_append(b, data, len) ? fail(r, HD_ENOMEM) : 0;
  }
  if (rc > 0 && b->len < h.header_len) rc = begin(r, &h); /* the header completes now */
  if (rc < 0) return fail(r, rc);
  size_t start = b->len > h.header_len ? b->len : h.header_len;
  size_t total = h.header_len + (size_t)h.payload_len;
  *used = total - b->len < len ? total - b->len : len;
  if (hd_sbuf_append(b, data, *used)) return fail(r, HD_ENOMEM);
  uint8_t *frame = (uint8_t *)b->ptr;
  if ((rc = chunk(r, &h, frame + start, b->len - start, start - h.header_len))) return fail(r, rc);
  if (b->len < total) return 0;
  rc = deliver(r, &h, frame + h.header_len, (size_t)h.payload_len);
  if (r->bufs) reset(r, &r->bufs->partial);
  return rc;
}

int hd_ws_reader_feed(hd_ws_reader_t *r, uint8_t *data, size_t len) {
  if (r->closed || !len) return 0;
  if (partial_len(r)) {
    size_t used = 0;
    int rc = resume(r, data, len, &used);
    if (rc || partial_len(r)) return rc;
    data += used, len -= used;
  }
  while (len && !r->closed) {
    hd_ws_frame_t h;
    int rc = hd_ws_frame_parse_header(data, len, &h);
    if (rc >= 0) rc = begin(r, &h);
    if (rc == HD_EAGAIN) return keep_partial(r, data, len) ? fail(r, HD_ENOMEM) : 0;
    if (rc < 0) return fail(r, rc);
    size_t avail = len - h.header_len;
    uint8_t *payload = data + h.header_len;
    if (avail < h.payload_len) {
      if ((rc = chunk(r, &h, payload, avail, 0))) return fail(r, rc);
      return keep_partial(r, data, len) ? fail(r, HD_ENOMEM) : 0;
    }
    size_t n = (size_t)h.payload_len;
    if ((rc = chunk(r, &h, payload, n, 0))) return fail(r, rc);
    if ((rc = deliver(r, &h, payload, n))) return rc;
    data += h.header_len + n, len -= h.header_len + n;
  }
  return 0;
}

bool hd_ws_reader_idle(const hd_ws_reader_t *r) { return partial_len(r) == 0 && r->msg_opcode == 0; }

void hd_ws_reader_free(hd_ws_reader_t *r) {
  hd_ws_reader_bufs_t *rb = r->bufs;
  if (!rb) return;
  hd_sbuf_free(&rb->partial);
  hd_sbuf_free(&rb->message);
  hd_ws_inflater_free(rb->inflater);
  free(rb);
  r->bufs = NULL;
}
