/* Route table of the server (see app.h). */
#include "app/app.h"

#include "app/health.h"
#include "app/static_files.h"
#include "proto/echo.h"

int hd_app_register(hd_server_t *s) {
  hd_router_t *r = s->router;
  int rc;
  if ((rc = hd_router_add(r, "GET", "/health", hd_health_handle, NULL))) return rc;
  if ((rc = hd_router_add(r, "GET", "/metrics", hd_metrics_handle, NULL))) return rc;
  if (s->cfg->echo_endpoint && (rc = hd_router_add(r, "GET", "/ws/echo", hd_echo_handle, NULL))) return rc;
  return hd_router_add(r, "GET", "/*", hd_static_files_handle, NULL);
}
