/* GET /api/v4/config for the pages (see page_config.h): no token needed, nothing secret in it. */
#include "app/page_config.h"

#include <jansson.h>

#include "app/app.h"
#include "app/rest.h"

/* {display_utc_offset, time_offset}: the offset pages show times in, and the one API payloads carry. */
static void config_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  (void)req;
  const hd_app_t *app = udata;
  const hd_config_t *cfg = app->srv->cfg;
  hd_rest_json(ex, 200,
               json_pack("{s:s, s:s}", "display_utc_offset", cfg->display_utc_offset, "time_offset", cfg->time_offset));
}

int hd_page_config_register(hd_app_t *app) {
  return hd_router_add(app->srv->router, "GET", "/api/v4/config", config_handle, app);
}
