/* System events: POST /api/v4/system/alerts, /maintenance and /status pushed as system:alert,
 * system:maintenance and system:status_change to admins (or everyone) (see system_events.h).
 *
 * Nothing is stored: an event goes to the sockets online now, and the answer says how many got it;
 * only the last status is kept in memory (last_status.h), for GET /api/v4/system/status.
 * Admins are the sockets in room `admins` (joined by presence.c); `all_users` means every socket of
 * namespace "/". Every payload carries `at`, the time it was sent, in the configured offset. */
#include "app/system_events.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/events.h"
#include "app/last_status.h"
#include "app/push.h"
#include "app/rest.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

#define ALERTS_PATH "/api/v4/system/alerts"
/* Room for every field at its limit even when each character is a \uXXXX\uXXXX pair (12 bytes). */
#define BODY_MAX (256 * 1024)
#define TITLE_MAX 200
#define MESSAGE_MAX 10000
#define STATUS_MAX 32
#define TIME_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

typedef struct {
  hd_app_t *app;
  hd_system_events_stats_t stats;
} sys_t;

static void alert_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata);

/* The module\'s state. */
static sys_t *state_of(const hd_app_t *app) {
  return app ? app->system_events : NULL;
}

/* --- input -------------------------------------------------------------------------------- */

/* `all_users`: absent, null or a boolean. */
static bool all_users_field(json_t *body, bool *out, char *msg, size_t msglen) {
  json_t *v = json_object_get(body, "all_users");
  *out = json_is_true(v);
  if (!v || json_is_null(v) || json_is_boolean(v)) return true;
  snprintf(msg, msglen, "`all_users` must be true or false");
  return false;
}

static bool digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    char ch = (*p)[i];
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  *p += n;
  *out = v;
  return true;
}

/* "+HH:MM" / "-HH:MM" / "Z" as minutes east of UTC; false when it is none of them. */
static bool zone_minutes(const char **p, int *out) {
  const char *s = *p;
  int h, m;
  if (*s == 'Z' || *s == 'z') {
    *p = s + 1;
    *out = 0;
    return true;
  }
  if (*s != '+' && *s != '-') return false;
  const char *q = s + 1;
  if (!digits(&q, 2, &h) || *q++ != ':' || !digits(&q, 2, &m) || h > 23 || m > 59) return false;
  *out = (*s == '-' ? -1 : 1) * (h * 60 + m);
  *p = q;
  return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* ISO 8601 "YYYY-MM-DDTHH:MM[:SS[.fff...]][Z|±HH:MM]" (no zone: the configured offset) as ms since
 * the epoch; false when malformed. */
static bool parse_iso(const hd_app_t *app, const char *s, int64_t *out) {
  int y, mo, d, h, mi, sec = 0, ms = 0, zone;
  if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' || !digits(&s, 2, &d)) return false;
  if (*s != 'T' && *s != 't' && *s != ' ') return false;
  s++;
  if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi)) return false;
  if (*s == ':') {
    s++;
    if (!digits(&s, 2, &sec)) return false;
    if (*s == '.') {
      s++;
      int scale = 100, n = 0;
      for (; *s >= '0' && *s <= '9'; s++, n++) ms += scale * (*s - '0'), scale /= 10;
      if (!n) return false;
    }
  }
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 ||
      sec > 59)
    return false;
  if (*s) {
    if (!zone_minutes(&s, &zone) || *s) return false;
  } else {
    const char *cfg = app->srv->cfg->time_offset;
    if (!zone_minutes(&cfg, &zone)) zone = 0;
  }
  *out = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - (int64_t)zone * 60) * 1000 + ms;
  return *out >= 0 && *out <= TIME_MAX_MS;
}

/* An optional time member: an ISO 8601 string or ms since the epoch; *out 0 when absent or null. */
static bool time_field(const hd_app_t *app, json_t *body, const char *name, int64_t *out, char *msg, size_t msglen) {
  json_t *v = json_object_get(body, name);
  *out = 0;
  if (!v || json_is_null(v)) return true;
  if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= TIME_MAX_MS) {
    *out = (int64_t)json_integer_value(v);
    return true;
  }
  if (json_is_string(v) && parse_iso(app, json_string_value(v), out) && *out) return true;
  snprintf(msg, msglen, "`%s` must be an ISO 8601 time (e.g. 2025-11-23T20:00:00+08:00) or milliseconds since the epoch",
           name);
  return false;
}

/* --- pushing ------------------------------------------------------------------------------ */

typedef struct {
  sys_t *sys;
  hd_http_exchange_t *ex;
  const char *event;
  bool everyone;
} pushed_t;

/* Every shard delivered: answer {delivered}. */
static void pushed(void *arg, const hd_hub_msg_t *msg, size_t delivered, int status) {
  pushed_t *p = arg;
  p->sys->stats.deliveries += delivered;
  HD_INFO("system", "system event pushed", "event=%s audience=%s delivered=%zu", p->event,
          p->everyone ? "everyone" : "admins", delivered);
  hd_rest_json(p->ex, 200, json_pack("{s:I}", "delivered", (json_int_t)delivered));
  free(p);
}

/* Pushes event with payload (reference stolen) to the admins, or to every socket of "/" when
 * everyone; answers {delivered} once every shard delivered. */
static void push(sys_t *sys, hd_http_exchange_t *ex, const char *event, json_t *payload, bool everyone,
                 uint64_t *counter) {
  json_t *args = payload ? json_pack("[o]", payload) : NULL;
  char *text = args ? json_dumps(args, JSON_COMPACT) : NULL;
  json_decref(args);
  pushed_t *p = text ? malloc(sizeof(*p)) : NULL;
  if (!p) {
    free(text);
    return hd_http_respond_error(ex, 500, "out of memory");
  }
  *p = (pushed_t){sys, ex, event, everyone};
  hd_http_defer(ex);
  int rc = hd_app_push(sys->app, everyone ? NULL : "admins", event, text, pushed, p);
  free(text);
  (*counter)++;
  if (rc) {
    free(p);
    hd_http_respond_error(ex, rc == HD_ENOMEM ? 500 : 503, "cannot push the event now");
  }
}

/* The caller must be an admin or hold the API key; then the body. NULL after answering. */
static json_t *admin_body(sys_t *sys, hd_http_exchange_t *ex, const hd_http_request_t *req) {
  hd_caller_t caller;
  if (!hd_rest_caller(sys->app, ex, req, true, &caller) || !hd_rest_require_admin(ex, &caller)) return NULL;
  return hd_rest_body(ex, req, BODY_MAX);
}

static json_t *now_json(const hd_app_t *app) { return hd_rest_time_json(app, (int64_t)hd_clock_wall_ms()); }

/* --- handlers ----------------------------------------------------------------------------- */

/* POST /api/v4/system/alerts {level, title, message, all_users?} -> system:alert {level, title, message, at}. */
static void alert_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  sys_t *sys = udata;
  json_t *body = admin_body(sys, ex, req);
  if (!body) return;
  static const char *const levels[] = {"info", "success", "warning", "error", "critical"};
  const char *level = json_string_value(json_object_get(body, "level")), *title, *message;
  char msg[200] = "";
  bool everyone, ok = false;
  for (size_t i = 0; level && i < sizeof levels / sizeof levels[0]; i++) ok |= !strcmp(level, levels[i]);
  if (!ok) snprintf(msg, sizeof msg, "`level` must be one of info, success, warning, error, critical");
  ok = ok && hd_rest_text_field(body, "title", true, 1, TITLE_MAX, &title, msg, sizeof msg) &&
       hd_rest_text_field(body, "message", true, 0, MESSAGE_MAX, &message, msg, sizeof msg) &&
       all_users_field(body, &everyone, msg, sizeof msg);
  if (ok)
    push(sys, ex, HD_EV_SYSTEM_ALERT,
         json_pack("{s:s, s:s, s:s, s:o}", "level", level, "title", title, "message", message, "at",
                   now_json(sys->app)),
         everyone, &sys->stats.alerts);
  else hd_http_respond_error(ex, 400, msg);
  json_decref(body);
}

/* POST /api/v4/system/maintenance {title, message, start_at?, end_at?, all_users?}
 * -> system:maintenance {title, message, start_at, end_at, at} (times null when not given). */
static void maintenance_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  sys_t *sys = udata;
  json_t *body = admin_body(sys, ex, req);
  if (!body) return;
  const char *title, *message;
  int64_t start = 0, end = 0;
  char msg[200] = "";
  bool everyone;
  bool ok = hd_rest_text_field(body, "title", true, 1, TITLE_MAX, &title, msg, sizeof msg) &&
            hd_rest_text_field(body, "message", true, 0, MESSAGE_MAX, &message, msg, sizeof msg) &&
            time_field(sys->app, body, "start_at", &start, msg, sizeof msg) &&
            time_field(sys->app, body, "end_at", &end, msg, sizeof msg) &&
            all_users_field(body, &everyone, msg, sizeof msg);
  if (ok && start && end && end < start) {
    snprintf(msg, sizeof msg, "`end_at` must not be before `start_at`");
    ok = false;
  }
  if (ok)
    push(sys, ex, HD_EV_SYSTEM_MAINTENANCE,
         json_pack("{s:s, s:s, s:o, s:o, s:o}", "title", title, "message", message, "start_at",
                   hd_rest_time_json(sys->app, start), "end_at", hd_rest_time_json(sys->app, end), "at",
                   now_json(sys->app)),
         everyone, &sys->stats.maintenance);
  else hd_http_respond_error(ex, 400, msg);
  json_decref(body);
}

/* POST /api/v4/system/status {status, message?} -> system:status_change {status, message, at} to the
 * admins (message null when not given). */
static void status_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  sys_t *sys = udata;
  json_t *body = admin_body(sys, ex, req);
  if (!body) return;
  const char *status, *message;
  char msg[200] = "";
  if (hd_rest_text_field(body, "status", true, 1, STATUS_MAX, &status, msg, sizeof msg) &&
      hd_rest_text_field(body, "message", false, 0, MESSAGE_MAX, &message, msg, sizeof msg)) {
    /* the hub's observer records it as the last status (last_status.h), here and on the other nodes */
    push(sys, ex, HD_EV_SYSTEM_STATUS_CHANGE,
         json_pack("{s:s, s:o, s:o}", "status", status, "message", message ? json_string(message) : json_null(),
                   "at", now_json(sys->app)),
         false, &sys->stats.status_changes);
  } else hd_http_respond_error(ex, 400, msg);
  json_decref(body);
}

/* GET /api/v4/system/status (admin or API key) -> the last status posted (on this node or another
 * of its cluster) {status, message, at}, or all three null when none was posted since start. */
static void status_get_handle(hd_http_exchange_t *ex, const hd_http_request_t *req, void *udata) {
  sys_t *sys = udata;
  hd_caller_t caller;
  if (!hd_rest_caller(sys->app, ex, req, true, &caller) || !hd_rest_require_admin(ex, &caller)) return;
  char *text = hd_last_status_get(sys->app->shared->last_status);
  if (text) hd_http_respond_json(ex, 200, text);
  else hd_http_respond_json(ex, 200, "{\"status\":null,\"message\":null,\"at\":null}");
  free(text);
}

/* --- registration, counters --------------------------------------------------------------- */

int hd_system_events_register(hd_app_t *app) {
  sys_t *sys = calloc(1, sizeof(*sys));
  if (!sys) return HD_ENOMEM;
  sys->app = app;
  app->system_events = sys;
  hd_router_t *r = app->srv->router;
  int rc = hd_router_add(r, "POST", ALERTS_PATH, alert_handle, sys);
  if (!rc) rc = hd_router_add(r, "POST", "/api/v4/system/maintenance", maintenance_handle, sys);
  if (!rc) rc = hd_router_add(r, "POST", "/api/v4/system/status", status_handle, sys);
  if (!rc) rc = hd_router_add(r, "GET", "/api/v4/system/status", status_get_handle, sys);
  return rc;
}

void hd_system_events_stats(const hd_app_t *app, hd_system_events_stats_t *out) {
  const sys_t *sys = state_of(app);
  if (sys) *out = sys->stats;
  else memset(out, 0, sizeof(*out));
}

void hd_system_events_metrics(const hd_system_events_stats_t *s, hd_sbuf_t *out) {
  hd_sbuf_printf(out,
                 "# HELP herald_system_events_total System events pushed, by event.\n"
                 "# TYPE herald_system_events_total counter\n"
                 "herald_system_events_total{event=\"alert\"} %llu\n"
                 "herald_system_events_total{event=\"maintenance\"} %llu\n"
                 "herald_system_events_total{event=\"status_change\"} %llu\n"
                 "# HELP herald_system_event_deliveries_total Socket.IO deliveries of system events.\n"
                 "# TYPE herald_system_event_deliveries_total counter\nherald_system_event_deliveries_total %llu\n",
                 (unsigned long long)s->alerts, (unsigned long long)s->maintenance,
                 (unsigned long long)s->status_changes, (unsigned long long)s->deliveries);
}

void hd_system_events_free(hd_app_t *app) {
  free(app->system_events);
  app->system_events = NULL;
}
