/* Method + path routing (see http_router.h). Routes are kept in a list, each pattern split into
 * segments; a match scans every route and keeps the best one, comparing segment by segment
 * (literal > :param > *), which is the order a backtracking trie would try. Fine for the few
 * dozen routes a server has. Segments split on '/', so "/a/" has a trailing empty segment and
 * does not match "/a"; a final '*' after "/a" matches "/a/" and below but not "/a". */
#include "net/http_router.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { K_STAR, K_PARAM, K_LIT, K_NONE };

typedef struct {
  char method[16]; /* "GET", or "*" for any */
  char *pat;       /* owned copy of the pattern; segs point into it */
  hd_slice_t *segs;
  size_t nseg;
  bool star;
  hd_http_handler_fn fn;
  void *udata;
} route_t;

struct hd_router {
  route_t *routes;
  size_t n, cap;
};

hd_router_t *hd_router_new(void) { return calloc(1, sizeof(hd_router_t)); }

static int seg_kind(const route_t *rt, size_t i) {
  if (i < rt->nseg) return rt->segs[i].len && rt->segs[i].ptr[0] == ':' ? K_PARAM : K_LIT;
  return rt->star ? K_STAR : K_NONE;
}

/* Splits pattern into rt; HD_EINVAL when malformed. */
static int parse_pattern(route_t *rt, const char *pattern) {
  size_t len = strlen(pattern), params = 0;
  if (len == 0 || pattern[0] != '/' || strpbrk(pattern, "?#")) return HD_EINVAL;
  if (!(rt->pat = strdup(pattern))) return HD_ENOMEM;
  size_t nmax = 1;
  for (size_t i = 1; i < len; i++) nmax += pattern[i] == '/';
  if (!(rt->segs = calloc(nmax, sizeof(hd_slice_t)))) return HD_ENOMEM;
  const char *s = rt->pat + 1, *end = rt->pat + len;
  for (;;) {
    const char *e = memchr(s, '/', (size_t)(end - s));
    hd_slice_t seg = {s, e ? (size_t)(e - s) : (size_t)(end - s)};
    if (seg.len == 1 && seg.ptr[0] == '*') {
      if (e) return HD_EINVAL; /* '*' only as the final segment */
      rt->star = true;
    } else {
      if (memchr(seg.ptr, '*', seg.len)) return HD_EINVAL;
      if (seg.len && seg.ptr[0] == ':') {
        if (seg.len == 1) return HD_EINVAL;
        for (size_t i = 0; i < rt->nseg; i++)
          if (rt->segs[i].len == seg.len && memcmp(rt->segs[i].ptr, seg.ptr, seg.len) == 0) return HD_EINVAL;
        params++;
      }
      rt->segs[rt->nseg++] = seg;
    }
    if (!e) break;
    s = e + 1;
  }
  return params + rt->star > HD_ROUTE_MAX_PARAMS ? HD_EINVAL : 0;
}

static bool valid_method(const char *m) {
  size_t n = strlen(m);
  if (n == 0 || n >= sizeof(((route_t *)0)->method)) return false;
  if (strcmp(m, "*") == 0) return true;
  for (size_t i = 0; i < n; i++)
    if (!((m[i] >= 'A' && m[i] <= 'Z') || m[i] == '-' || m[i] == '_')) return false;
  return true;
}

/* Same shape: equal literals, params (names aside) and star in the same places. */
static bool same_pattern(const route_t *a, const route_t *b) {
  if (a->nseg != b->nseg || a->star != b->star) return false;
  for (size_t i = 0; i < a->nseg; i++) {
    int k = seg_kind(a, i);
    if (k != seg_kind(b, i)) return false;
    if (k == K_LIT && (a->segs[i].len != b->segs[i].len || memcmp(a->segs[i].ptr, b->segs[i].ptr, a->segs[i].len)))
      return false;
  }
  return true;
}

int hd_router_add(hd_router_t *r, const char *method, const char *pattern, hd_http_handler_fn fn, void *udata) {
  if (!valid_method(method) || !fn) return HD_EINVAL;
  route_t rt = {.fn = fn, .udata = udata};
  strcpy(rt.method, method);
  int rc = parse_pattern(&rt, pattern);
  for (size_t i = 0; rc == 0 && i < r->n; i++)
    if (strcmp(r->routes[i].method, method) == 0 && same_pattern(&r->routes[i], &rt)) rc = HD_EEXISTS;
  if (rc == 0 && r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    route_t *p = realloc(r->routes, cap * sizeof(*p));
    if (p) r->routes = p, r->cap = cap;
    else rc = HD_ENOMEM;
  }
  if (rc) {
    free(rt.pat);
    free(rt.segs);
    return rc;
  }
  r->routes[r->n++] = rt;
  return 0;
}

/* Matches path against rt's pattern, filling params (when non-NULL). */
static bool match_path(const route_t *rt, hd_slice_t path, hd_route_param_t *params, size_t *np) {
  size_t pos = 1, n = 0;
  bool done = false; /* no segments left in path */
  for (size_t i = 0; i < rt->nseg; i++) {
    if (done) return false;
    const char *e = memchr(path.ptr + pos, '/', path.len - pos);
    hd_slice_t seg = {path.ptr + pos, e ? (size_t)(e - path.ptr) - pos : path.len - pos};
    if (e) pos = (size_t)(e - path.ptr) + 1;
    else done = true;
    hd_slice_t ps = rt->segs[i];
    if (ps.len && ps.ptr[0] == ':') {
      if (seg.len == 0) return false;
      if (params) params[n++] = (hd_route_param_t){{ps.ptr + 1, ps.len - 1}, seg};
    } else if (ps.len != seg.len || memcmp(ps.ptr, seg.ptr, seg.len) != 0) {
      return false;
    }
  }
  if (rt->star) {
    if (done) return false; /* the prefix must be followed by '/' */
    if (params) params[n++] = (hd_route_param_t){HD_SLICE_LIT("*"), {path.ptr + pos, path.len - pos}};
  } else if (!done) {
    return false;
  }
  if (np) *np = n;
  return true;
}

static bool method_ok(const route_t *rt, hd_slice_t method) {
  return strcmp(rt->method, "*") == 0 || hd_slice_eq(method, rt->method) ||
         (hd_slice_eq(method, "HEAD") && strcmp(rt->method, "GET") == 0);
}

/* True when a should win over b for the same path. */
static bool better(const route_t *a, const route_t *b, hd_slice_t method) {
  for (size_t i = 0;; i++) {
    int ka = seg_kind(a, i), kb = seg_kind(b, i);
    if (ka != kb) return ka > kb; /* both match the path, so never K_NONE against K_STAR */
    if (ka == K_STAR || ka == K_NONE) break;
  }
  /* Same shape: an exact method beats "*" and GET-for-HEAD; otherwise the first added wins. */
  return hd_slice_eq(method, a->method) && !hd_slice_eq(method, b->method);
}

static void allow_add(char *allow, const char *m) {
  size_t n = strlen(allow), ml = strlen(m);
  const char *p = allow;
  while ((p = strstr(p, m))) { /* already listed? */
    if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0')) return;
    p += ml;
  }
  if (n + (n ? 2 : 0) + ml + 1 > sizeof(((hd_route_match_t *)0)->allow)) return;
  if (n) memcpy(allow + n, ", ", 2), n += 2;
  memcpy(allow + n, m, ml + 1);
}

int hd_router_match(const hd_router_t *r, hd_slice_t method, hd_slice_t path, hd_route_match_t *out) {
  memset(out, 0, sizeof(*out));
  if (path.len == 0 || path.ptr[0] != '/') return HD_ENOTFOUND;
  const route_t *best = NULL;
  bool path_matched = false;
  for (size_t i = 0; i < r->n; i++) {
    const route_t *rt = &r->routes[i];
    if (!match_path(rt, path, NULL, NULL)) continue;
    path_matched = true;
    if (!method_ok(rt, method)) {
      allow_add(out->allow, rt->method);
      if (strcmp(rt->method, "GET") == 0) allow_add(out->allow, "HEAD");
      continue;
    }
    if (!best || better(rt, best, method)) best = rt;
  }
  if (!best) return path_matched ? HD_EMETHOD : HD_ENOTFOUND;
  out->allow[0] = '\0';
  match_path(best, path, out->params, &out->param_count);
  out->handler = best->fn;
  out->udata = best->udata;
  return 0;
}

hd_slice_t hd_route_param(const hd_route_match_t *m, const char *name) {
  for (size_t i = 0; i < m->param_count; i++)
    if (hd_slice_eq(m->params[i].name, name)) return m->params[i].value;
  return (hd_slice_t){NULL, 0};
}

void hd_router_free(hd_router_t *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) {
    free(r->routes[i].pat);
    free(r->routes[i].segs);
  }
  free(r->routes);
  free(r);
}
