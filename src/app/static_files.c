/* Static files through uv_queue_work (see static_files.h). */
#include "app/static_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_static.h"
#include "net/server.h"

#define STATIC_MAX_FILE (64 * 1024 * 1024)

/* Every page and asset: scripts only from files of this origin (no inline script, no eval), no
 * framing, no MIME sniffing, no Referer to other sites. Inline style attributes stay allowed. */
#define SECURITY_HEADERS                                                                              \
  "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " \
  "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "  \
  "frame-ancestors 'none'\r\n"                                                                       \
  "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: same-origin\r\n"

typedef struct {
  uv_work_t work;
  hd_http_exchange_t *ex;
  const char *root;
  const char *security_headers;
  char path[8192]; /* the request line limit bounds it */
  char inm[256];
  hd_static_result_t result;
} static_job_t;

static void load(uv_work_t *w) {
  static_job_t *job = w->data;
  hd_static_load(job->root, (hd_slice_t){job->path, strlen(job->path)}, (hd_slice_t){job->inm, strlen(job->inm)},
                 STATIC_MAX_FILE, &job->result);
}

static void respond(uv_work_t *w, int status) {
  static_job_t *job = w->data;
  hd_http_exchange_t *ex = job->ex;
  hd_static_result_t *r = &job->result;
  const hd_config_t *cfg = hd_http_server(ex)->cfg;
  char headers[2048];
  const char *security = job->security_headers ? job->security_headers : SECURITY_HEADERS;
  if (cfg->static_max_age > 0)
    snprintf(headers, sizeof headers, "ETag: %s\r\nCache-Control: public, max-age=%lld\r\n%s", r->etag,
             (long long)cfg->static_max_age, security);
  else snprintf(headers, sizeof headers, "ETag: %s\r\nCache-Control: no-cache\r\n%s", r->etag, security);
  if (status < 0) hd_http_respond_error(ex, 500, "file read cancelled");
  else if (r->status == 200) hd_http_respond_buf(ex, 200, r->mime, r->body, headers);
  else if (r->status == 304) hd_http_respond(ex, 304, NULL, NULL, 0, headers);
  else if (r->status == 403) hd_http_respond_error(ex, 403, "forbidden path");
  else if (r->status == 404) hd_http_respond_error(ex, 404, "no such resource");
  else hd_http_respond_error(ex, 500, "cannot read file");
  hd_buf_unref(r->body);
  free(job);
}

void hd_static_files_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_server_t *s = hd_http_server(ex);
  const hd_static_root_t *alt = udata;
  const char *root = alt ? alt->root : s->web_root_real;
  hd_slice_t path = req->path;
  if (alt) path.ptr += alt->strip, path.len -= alt->strip;
  if (!root) {
    hd_http_respond_error(ex, 404, "no such resource");
    return;
  }
  if (path.len >= sizeof(((static_job_t *)0)->path)) {
    hd_http_respond_error(ex, 414, "path too long");
    return;
  }
  static_job_t *job = calloc(1, sizeof(*job));
  if (!job) {
    hd_http_respond_error(ex, 500, "out of memory");
    return;
  }
  job->work.data = job;
  job->ex = ex;
  job->root = root;
  job->security_headers = alt ? alt->security_headers : NULL;
  memcpy(job->path, path.ptr, path.len);
  hd_slice_t inm = hd_http_request_header(req, "If-None-Match");
  if (inm.ptr && inm.len < sizeof job->inm) memcpy(job->inm, inm.ptr, inm.len);
  hd_http_defer(ex);
  if (uv_queue_work(s->loop, &job->work, load, respond) != 0) {
    free(job);
    hd_http_respond_error(ex, 500, "cannot schedule file read");
  }
}
