/* No sticky sessions: an Engine.IO request (polling GET/POST or WebSocket upgrade) that reaches a
 * node other than its session's owner is forwarded there. The session id names its node (a 3-char
 * tag, proto/eio.c); the registry (cluster/registry.h) gives that node's advertised URL; the shard's
 * HTTP proxy (net/http_proxy.h) carries the request. A forwarded request carries
 * `X-Herald-Forwarded: <tag of the forwarding node>` and is never forwarded again, so nodes cannot
 * send a request round in circles: a node that does not own it answers "Session ID unknown". */
#ifndef HD_FORWARD_H
#define HD_FORWARD_H

#include <stddef.h>

#include "cluster/registry.h"
#include "core/config.h"
#include "net/http_conn.h"
#include "net/server.h"

typedef struct hd_forward hd_forward_t;

/* The header that marks a forwarded request. */
#define HD_FORWARD_HEADER "X-Herald-Forwarded"

/* Forwarding for shard srv (borrowed), looking node tags up in reg (borrowed), this node's tag
 * self_tag; installs itself as srv->forward. NULL when out of memory. */
hd_forward_t *hd_forward_new(hd_server_t *srv, hd_registry_t *reg, const char *self_tag);
/* Frees it (after srv's loop has ended). */
void hd_forward_free(hd_forward_t *f);
/* This node's advertised URL into out: --advertise-url, else http://<listen host>:<port> with a
 * wildcard host (0.0.0.0, ::, empty) replaced by the loopback address. 0 or HD_ERANGE. */
int hd_forward_advertise_url(const hd_config_t *cfg, int port, char *out, size_t cap);

#endif
