/* Static files under a root directory: safe path resolution (no `..`, encoded dots or slashes,
 * NUL, backslashes, or symlinks leading outside the root), MIME types, ETags. The loading
 * function does blocking file I/O and is meant to run on a worker thread. */
#ifndef HD_HTTP_STATIC_H
#define HD_HTTP_STATIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct {
  int status;           /* 200, 301 (a directory with an index.html, named without its slash), 304, 403, 404, 500 */
  const char *mime;     /* static string, e.g. "text/html; charset=utf-8" */
  char etag[48];        /* quoted strong ETag, e.g. "\"5f3a-1a2b\"" */
  int64_t mtime;        /* seconds since the epoch */
  hd_buf_t *body;       /* file contents when status is 200 (refs 1, caller owns), else NULL */
} hd_static_result_t;

/* Decodes and checks a URL path; writes the safe relative path (no leading '/', "index.html" for
 * a directory path ending in '/') into out. Returns 0, HD_EFORBIDDEN (traversal, NUL, backslash,
 * encoded '/', dot segments, hidden files) or HD_EINVAL (bad percent-encoding, too long). */
int hd_static_safe_path(hd_slice_t url_path, char *out, size_t outlen);
/* MIME type for a file name by extension; "application/octet-stream" when unknown. */
const char *hd_static_mime_type(const char *name);
/* True when an If-None-Match value (list, W/ prefixes, or "*") matches etag. */
bool hd_static_etag_matches(hd_slice_t if_none_match, const char *etag);
/* Resolves url_path under root_real (a realpath) and loads the file (a directory's index.html when
 * url_path ends in '/'; 301 when a directory with one is named without that slash): 404 when missing or not a
 * regular file, 403 when unsafe or the real path leaves root, 304 when if_none_match matches,
 * 500 when unreadable or larger than max_size. Blocking; run it on a worker thread. */
void hd_static_load(const char *root_real, hd_slice_t url_path, hd_slice_t if_none_match, size_t max_size,
                    hd_static_result_t *out);

#endif
