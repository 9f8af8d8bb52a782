/* libFuzzer target: arbitrary bytes as pipelined HTTP/1.1 requests under small limits, arriving in
 * two reads split where the first byte says. Each request is checked against the limits, its slices
 * against its storage, and its path goes through the static-file path check. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "net/http_parse.h"
#include "net/http_static.h"

static void check(const hd_http_request_t *req, const hd_http_limits_t *l) {
  const char *lo = req->head.ptr, *hi = req->head.ptr + req->head.len;
  assert(req->header_count <= l->max_header_count);
  assert(req->body.len <= l->max_body_size);
  assert(req->target.len <= l->max_request_line);
  assert(req->path.ptr == lo && req->path.len <= req->target.len);
  assert(req->query.ptr >= lo && req->query.ptr + req->query.len <= hi);
  for (size_t i = 0; i < req->header_count; i++) {
    const hd_http_header_t *h = &req->headers[i];
    assert(h->name.ptr >= lo && h->name.ptr + h->name.len <= hi);
    assert(h->value.ptr >= lo && h->value.ptr + h->value.len <= hi);
    assert(!memchr(h->value.ptr, '\r', h->value.len) && !memchr(h->name.ptr, '\0', h->name.len));
  }
  char out[128];
  hd_http_request_query(req, "q", out, sizeof(out));
  int rc = hd_static_safe_path(req->path, out, sizeof(out));
  if (rc == 0) assert(out[0] != '/' && out[0] != '.' && !strstr(out, "/.") && !strchr(out, '\\'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t split = data[0] % size;
  const char *in = (const char *)data + 1;
  size--;
  static const hd_http_limits_t limits = {128, 256, 8, 64};
  hd_http_parser_t p;
  hd_http_parser_init(&p, &limits);
  size_t reads[2][2] = {{0, split}, {split, size}};
  for (int r = 0; r < 2; r++) {
    size_t off = reads[r][0], end = reads[r][1];
    while (off < end) {
      hd_http_request_t *req;
      ssize_t n = hd_http_parser_feed(&p, in + off, end - off, &req);
      if (n < 0) goto done;
      assert((size_t)n <= end - off);
      off += (size_t)n;
      if (!req) {
        assert(off == end); /* an incomplete request keeps everything it was given */
        break;
      }
      check(req, &limits);
      if (req->upgrade) goto done; /* the rest belongs to another protocol */
      hd_http_parser_reset(&p);
    }
  }
done:
  hd_http_parser_free(&p);
  return 0;
}
