/* GET /api/v4/presence (an admin token or the API key): who is online, on which node — the whole
 * cluster with --redis-url, this node otherwise:
 * {scope: "cluster" | "node", self: tag,
 *  nodes: [{tag, self, url, age_ms, connections, sockets: {admin, user}, admins, users}],
 *  admins: [{id, sub, sockets, nodes: [tag]}], admins_online,
 *  users: [{id, sub, sockets, nodes: [tag]}], users_online, users_truncated}.
 * The other nodes are as of the last read from Redis (about a second old; age_ms is each one's
 * heartbeat age); users are listed up to HD_PRESENCE_LIST_USERS per node (users_truncated then). */
#include <jansson.h>

#include "app/app.h"
#include "app/presence.h"
#include "app/rest.h"

static void presence_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  hd_app_t *app = udata;
  hd_caller_t caller;
  if (!hd_rest_caller(app, ex, req, true, &caller) || !hd_rest_require_admin(ex, &caller)) return;
  const hd_app_shared_t *sh = app->shared;
  json_t *urls = sh->cluster_nodes ? sh->cluster_nodes(sh->cluster_nodes_arg) : NULL;
  json_t *out = hd_presence_json(app, urls);
  json_decref(urls);
  if (out) hd_rest_json(ex, 200, out);
  else hd_http_respond_error(ex, 500, "out of memory");
}

int hd_presence_rest_register(hd_app_t *app) {
  return hd_router_add(app->srv->router, "GET", "/api/v4/presence", presence_handle, app);
}
