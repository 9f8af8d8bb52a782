/* sd_notify readiness and stopping (see service.h). */
#include "node/service.h"

#include "core/log.h"

#ifdef HERALD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

/* Sends state (sd_notify's newline-separated assignments); what names it in the log. */
static void notify(const char *what, const char *state) {
  int rc = sd_notify(0, state);
  if (rc < 0) HD_WARN("server", "cannot notify the service manager", "what=%s err=%d", what, rc);
  else if (rc > 0) HD_DEBUG("server", "service manager notified", "what=%s", what);
}
#else
static void notify(const char *what, const char *state) { (void)what, (void)state; }
#endif

void hd_service_ready(void) { notify("ready", "READY=1\nSTATUS=serving"); }

void hd_service_stopping(void) { notify("stopping", "STOPPING=1\nSTATUS=stopping"); }
