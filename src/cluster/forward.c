/* Forwarding Engine.IO requests to their session's node (see forward.h). */
#include "cluster/forward.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "net/http_proxy.h"

#define CONNECT_TIMEOUT_MS 3000
#define ANSWER_MARGIN_MS 5000            /* beyond the longest a long-polling GET waits (ping interval) */
#define MAX_ANSWER (16 * 1024 * 1024)    /* a polling answer holds at most 8 MiB of queued packets */

struct hd_forward {
  hd_http_proxy_t *proxy;
  hd_registry_t *reg;
  char header[64]; /* "X-Herald-Forwarded: <tag>\r\n" */
};

/* host and port of an http://host[:port] URL ("[v6]" unbracketed into host). 0 or HD_EINVAL. */
static int split_url(const char *url, char *host, size_t cap, int *port) {
  if (strncmp(url, "http://", 7)) return HD_EINVAL;
  const char *h = url + 7, *end;
  size_t n;
  if (*h == '[') {
    if (!(end = strchr(h, ']'))) return HD_EINVAL;
    n = (size_t)(end - h - 1), h++, end++;
  } else {
    n = strcspn(h, ":/");
    end = h + n;
  }
  if (!n || n >= cap) return HD_EINVAL;
  memcpy(host, h, n);
  host[n] = '\0';
  *port = 80;
  if (*end == ':') {
    char *stop;
    long p = strtol(end + 1, &stop, 10);
    if (stop == end + 1 || p < 1 || p > 65535) return HD_EINVAL;
    *port = (int)p;
  }
  return 0;
}

/* The server's forward hook: 0 when the request went (or was answered here), else the caller
 * answers "Session ID unknown". */
static int forward_request(void *arg, hd_http_exchange_t *ex, const char *node_tag) {
  hd_forward_t *f = arg;
  if (hd_http_request_header(ex->req, HD_FORWARD_HEADER).ptr) return HD_EINVAL; /* forwarded once already */
  char url[256], host[256];
  int port;
  if (hd_registry_lookup(f->reg, node_tag, url, sizeof url) || split_url(url, host, sizeof host, &port))
    return HD_ENOTFOUND;
  int rc = hd_http_proxy_forward(f->proxy, ex, host, port, f->header);
  if (rc == HD_EBUSY) {
    HD_WARN("cluster", "request not forwarded: too many under way (--forward-max)", "to=%s", url);
    hd_http_respond_error(ex, 503, "too many requests forwarded to other nodes; try again");
  } else if (rc) {
    bool oom = rc == HD_ENOMEM;
    hd_http_respond_error(ex, oom ? 503 : 400, oom ? "out of memory" : "cannot forward this request");
  }
  return 0;
}

hd_forward_t *hd_forward_new(hd_server_t *srv, hd_registry_t *reg, const char *self_tag) {
  hd_forward_t *f = calloc(1, sizeof(*f));
  if (!f) return NULL;
  const hd_config_t *cfg = srv->cfg;
  uint64_t wait = (uint64_t)cfg->ping_interval + (uint64_t)cfg->ping_timeout + ANSWER_MARGIN_MS;
  hd_http_proxy_limits_t limits = {(uint32_t)cfg->forward_max, CONNECT_TIMEOUT_MS, wait, wait, MAX_ANSWER};
  if (!(f->proxy = hd_http_proxy_new(srv, &limits))) {
    free(f);
    return NULL;
  }
  f->reg = reg;
  snprintf(f->header, sizeof f->header, "%s: %.3s\r\n", HD_FORWARD_HEADER, self_tag);
  srv->forward = forward_request;
  srv->forward_arg = f;
  return f;
}

void hd_forward_free(hd_forward_t *f) {
  if (!f) return;
  hd_http_proxy_free(f->proxy);
  free(f);
}

int hd_forward_advertise_url(const hd_config_t *cfg, int port, char *out, size_t cap) {
  int n;
  if (*cfg->advertise_url) {
    n = snprintf(out, cap, "%s", cfg->advertise_url);
  } else {
    const char *h = cfg->host;
    bool v6 = strchr(h, ':') != NULL;
    if (!*h || !strcmp(h, "0.0.0.0")) h = "127.0.0.1";
    else if (!strcmp(h, "::") || !strcmp(h, "[::]")) h = "::1";
    n = snprintf(out, cap, v6 ? "http://[%s]:%d" : "http://%s:%d", h, port);
  }
  return n < 0 || (size_t)n >= cap ? HD_ERANGE : 0;
}
