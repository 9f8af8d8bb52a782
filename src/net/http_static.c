/* Static files under a root directory (see http_static.h). A URL path is percent-decoded once
 * and refused when it could climb out (dot segments, encoded '/', NUL, backslash); the file's
 * realpath must then still lie under the root, so symlinks may point anywhere inside it. */
#include "net/http_static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int hd_static_safe_path(hd_slice_t url_path, char *out, size_t outlen) {
  static const char index[] = "index.html";
  size_t n = 0, seg = 0; /* seg: where the current segment starts in out */
  if (outlen == 0) return HD_EINVAL;
  for (size_t i = 0; i < url_path.len;) {
    char c = url_path.ptr[i++];
    if (c == '%') {
      if (url_path.len - i < 2 || hex_value(url_path.ptr[i]) < 0 || hex_value(url_path.ptr[i + 1]) < 0)
        return HD_EINVAL;
      c = (char)(hex_value(url_path.ptr[i]) * 16 + hex_value(url_path.ptr[i + 1]));
      i += 2;
      if (c == '/') return HD_EFORBIDDEN;
    } else if (c == '/') {
      if (n == seg) continue; /* leading or repeated '/' */
      if (n + 1 >= outlen) return HD_EINVAL;
      out[n++] = '/';
      seg = n;
      continue;
    }
    if (c == '\0' || c == '\\' || (n == seg && c == '.')) return HD_EFORBIDDEN;
    if (n + 1 >= outlen) return HD_EINVAL;
    out[n++] = c;
  }
  if (n == seg) { /* empty, or a directory path ending in '/' */
    if (n + sizeof(index) > outlen) return HD_EINVAL;
    memcpy(out + n, index, sizeof(index));
    return 0;
  }
  out[n] = '\0';
  return 0;
}

const char *hd_static_mime_type(const char *name) {
  static const struct {
    const char *ext, *mime;
  } types[] = {
      {"html", "text/html; charset=utf-8"},       {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},         {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},  {"json", "application/json"},
      {"map", "application/json"},                {"svg", "image/svg+xml"},
      {"png", "image/png"},                       {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},                     {"gif", "image/gif"},
      {"ico", "image/x-icon"},                    {"webp", "image/webp"},
      {"woff", "font/woff"},                      {"woff2", "font/woff2"},
      {"txt", "text/plain; charset=utf-8"},       {"wasm", "application/wasm"},
      {"xml", "application/xml"},                 {"pdf", "application/pdf"},
  };
  const char *base = strrchr(name, '/');
  const char *dot = strrchr(base ? base : name, '.');
  if (dot)
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
      if (strcasecmp(dot + 1, types[i].ext) == 0) return types[i].mime;
  return "application/octet-stream";
}

bool hd_static_etag_matches(hd_slice_t inm, const char *etag) {
  if (hd_slice_eq(hd_slice_trim(inm), "*")) return true;
  if (strncmp(etag, "W/", 2) == 0) etag += 2; /* weak comparison, RFC 7232 3.2 */
  size_t elen = strlen(etag), i = 0, n = inm.len;
  const char *s = inm.ptr;
  while (i < n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
    if (n - i >= 2 && s[i] == 'W' && s[i + 1] == '/') i += 2;
    size_t start = i;
    if (i < n && s[i] == '"') {
      for (i++; i < n && s[i] != '"'; i++) {}
      if (i < n) i++;
    }
    while (i < n && s[i] != ',') i++;
    hd_slice_t tag = hd_slice_trim((hd_slice_t){s + start, i - start});
    if (tag.len == elen && memcmp(tag.ptr, etag, elen) == 0) return true;
  }
  return false;
}

/* Opens the regular file (or a directory's index.html) behind rel, checking it stays under root.
 * Returns the fd, or -status: -301 for a directory with an index.html named without its trailing
 * slash (slash false). */
static int open_under(const char *root, size_t rlen, const char *rel, bool slash, char *name, struct stat *st) {
  char real[PATH_MAX];
  if ((size_t)snprintf(name, PATH_MAX, "%.*s/%s", (int)rlen, root, rel) >= PATH_MAX) return -404;
  for (int tries = 0;; tries++) {
    if (!realpath(name, real)) return errno == EACCES ? -403 : -404;
    if (strncmp(real, root, rlen) != 0 || (real[rlen] != '/' && real[rlen] != '\0')) return -403;
    /* O_NONBLOCK: a FIFO must not hang the worker; it is refused below anyway. */
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return errno == EACCES ? -403 : -404;
    if (fstat(fd, st) < 0) {
      close(fd);
      return -500;
    }
    if (S_ISREG(st->st_mode)) return fd;
    close(fd);
    if (!S_ISDIR(st->st_mode) || tries > 0) return -404;
    if ((size_t)snprintf(name, PATH_MAX, "%s/index.html", real) >= PATH_MAX) return -404;
    if (!slash) { /* relative links in its index.html need the slash: redirect when there is one */
      struct stat index;
      return stat(name, &index) == 0 && S_ISREG(index.st_mode) ? -301 : -404;
    }
  }
}

void hd_static_load(const char *root_real, hd_slice_t url_path, hd_slice_t if_none_match, size_t max_size,
                    hd_static_result_t *out) {
  char rel[PATH_MAX], name[PATH_MAX];
  struct stat st;
  memset(out, 0, sizeof(*out));
  out->mime = "application/octet-stream";
  int rc = hd_static_safe_path(url_path, rel, sizeof(rel));
  if (rc) {
    out->status = rc == HD_EFORBIDDEN ? 403 : 404;
    return;
  }
  size_t rlen = strlen(root_real);
  while (rlen && root_real[rlen - 1] == '/') rlen--; /* "/" becomes "" */
  bool slash = url_path.len && url_path.ptr[url_path.len - 1] == '/';
  int fd = open_under(root_real, rlen, rel, slash, name, &st);
  if (fd < 0) {
    out->status = -fd;
    return;
  }
  out->mime = hd_static_mime_type(name);
  out->mtime = (int64_t)st.st_mtim.tv_sec;
  uint64_t ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
  snprintf(out->etag, sizeof(out->etag), "\"%llx-%llx\"", (unsigned long long)st.st_size, (unsigned long long)ns);
  if (if_none_match.len && hd_static_etag_matches(if_none_match, out->etag)) {
    out->status = 304;
  } else if ((uint64_t)st.st_size > max_size || !(out->body = hd_buf_new((size_t)st.st_size))) {
    out->status = 500;
  } else {
    size_t got = 0;
    while (got < out->body->cap) {
      ssize_t r = read(fd, out->body->data + got, out->body->cap - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        hd_buf_unref(out->body);
        out->body = NULL;
        break;
      }
      if (r == 0) break; /* the file shrank meanwhile */
      got += (size_t)r;
    }
    if (out->body) out->body->len = got;
    out->status = out->body ? 200 : 500;
  }
  close(fd);
}
