/* Static files through uv_queue_work (see static_files.h). A directory named without its trailing
 * slash is redirected (301) to it; a missing page asked for by a browser (Accept: text/html, not an
 * API path) gets the web root's 404.html with status 404, everything else the JSON 404. */
#include "app/static_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
  char query[8192]; /* "?..." of the request (kept by a redirect), or "" */
  char inm[256];
  bool html_404;    /* answer a miss with 404.html */
  hd_static_result_t result;
} static_job_t;

static void load(uv_work_t *w) {
  static_job_t *job = w->data;
  hd_static_load(job->root, (hd_slice_t){job->path, strlen(job->path)}, (hd_slice_t){job->inm, strlen(job->inm)},
                 STATIC_MAX_FILE, &job->result);
  if (job->result.status == 404 && job->html_404) {
    hd_static_load(job->root, (hd_slice_t){"/404.html", 9}, (hd_slice_t){NULL, 0}, STATIC_MAX_FILE, &job->result);
    if (job->result.status == 200) job->result.status = -404; /* the page, sent with status 404 */
    else {
      hd_buf_unref(job->result.body);
      job->result.body = NULL;
      job->result.status = 404;
    }
  }
}

/* True for paths of the API and the protocols: their misses stay JSON whatever Accept says. */
static bool api_path(const hd_config_t *cfg, hd_slice_t path) {
  static const char *const prefixes[] = {"/api/", "/ws/", "/engine.io/", "/health", "/metrics", "/herald-client.js"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (path.len >= strlen(prefixes[i]) && !memcmp(path.ptr, prefixes[i], strlen(prefixes[i]))) return true;
  size_t n = strlen(cfg->socketio_path);
  while (n && cfg->socketio_path[n - 1] == '/') n--;
  return n && path.len >= n && !memcmp(path.ptr, cfg->socketio_path, n) && (path.len == n || path.ptr[n] == '/');
}

/* True when the client says it takes HTML (a browser navigating). */
static bool wants_html(const hd_http_request_t *req) {
  hd_slice_t accept = hd_http_request_header(req, "Accept");
  for (size_t i = 0; i + 9 <= accept.len; i++)
    if (!strncasecmp(accept.ptr + i, "text/html", 9)) return true;
  return false;
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
  else if (r->status == -404)
    hd_http_respond_buf(ex, 404, r->mime, r->body, "Cache-Control: no-cache\r\n" SECURITY_HEADERS);
  else if (r->status == 301 && job->path[1] == '/') /* "//host/dir": never a redirect to another site */
    hd_http_respond_error(ex, 404, "no such resource");
  else if (r->status == 301) {
    hd_sbuf_t loc = {0};
    hd_sbuf_printf(&loc, "Location: %s/%s\r\nCache-Control: no-cache\r\n", job->path, job->query);
    if (loc.ptr) hd_http_respond(ex, 301, "text/plain; charset=utf-8", "moved\n", 6, loc.ptr);
    else hd_http_respond_error(ex, 500, "out of memory");
    hd_sbuf_free(&loc);
  } else if (r->status == 403) hd_http_respond_error(ex, 403, "forbidden path");
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
  const char *q = memchr(req->target.ptr, '?', req->target.len);
  size_t qlen = q ? req->target.len - (size_t)(q - req->target.ptr) : 0;
  if (q && qlen < sizeof job->query) memcpy(job->query, q, qlen);
  job->html_404 = !alt && wants_html(req) && !api_path(s->cfg, req->path);
  hd_slice_t inm = hd_http_request_header(req, "If-None-Match");
  if (inm.ptr && inm.len < sizeof job->inm) memcpy(job->inm, inm.ptr, inm.len);
  hd_http_defer(ex);
  if (uv_queue_work(s->loop, &job->work, load, respond) != 0) {
    free(job);
    hd_http_respond_error(ex, 500, "cannot schedule file read");
  }
}
