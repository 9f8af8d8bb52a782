/* REST helpers (see rest.h). */
#include "app/rest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "app/user_states.h"
#include "core/error.h"

json_t *hd_rest_body(hd_http_exchange_t *ex, const hd_http_request_t *req, size_t limit) {
  if (req->body.len > limit) {
    hd_http_respond_error(ex, 413, "request body too large");
    return NULL;
  }
  json_error_t err;
  json_t *body = json_loadb(req->body.ptr ? req->body.ptr : "", req->body.len, JSON_REJECT_DUPLICATES, &err);
  if (!json_is_object(body)) {
    json_decref(body);
    hd_http_respond_error(ex, 400, "body must be a JSON object");
    return NULL;
  }
  return body;
}

bool hd_rest_caller(hd_app_t *app, hd_http_exchange_t *ex, const hd_http_request_t *req, bool allow_api_key,
                    hd_caller_t *out) {
  const char *why = "unauthorized";
  if (hd_auth_request(req, &app->shared->jwt, app->srv->cfg->api_key, allow_api_key, out, &why) ||
      (!out->api_key && hd_user_states_check(app->shared->user_states, &out->claims, &why))) {
    hd_http_respond_error(ex, 401, why);
    return false;
  }
  return true;
}

bool hd_rest_require_admin(hd_http_exchange_t *ex, const hd_caller_t *caller) {
  if (hd_caller_is_admin(caller)) return true;
  hd_http_respond_error(ex, 403, "this needs an admin");
  return false;
}

void hd_rest_json(hd_http_exchange_t *ex, int status, json_t *value) {
  char *text = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  json_decref(value);
  if (text) hd_http_respond_json(ex, status, text);
  else hd_http_respond_error(ex, 500, "cannot encode the response");
  free(text);
}

void hd_rest_error(hd_http_exchange_t *ex, int err, const char *message) {
  int status;
  const char *def;
  switch (err) {
    case HD_ENOTFOUND: status = 404, def = "not found"; break;
    case HD_EEXISTS: status = 409, def = "already exists"; break;
    case HD_EINVAL: status = 400, def = "invalid request"; break;
    case HD_ETOOBIG: status = 413, def = "too large"; break;
    case HD_EFORBIDDEN: status = 403, def = "forbidden"; break;
    case HD_EBUSY: status = 503, def = "busy, try again"; break;
    case HD_EIO: status = 503, def = "the store cannot read or write now (disk full?): nothing was saved, try again later"; break;
    default: status = 500, def = "internal error";
  }
  hd_http_respond_error(ex, status, message ? message : def);
}

void hd_rest_time(const hd_app_t *app, int64_t ms, char out[40]) {
  const char *offset = app->srv->cfg->time_offset;
  int sign = offset[0] == '-' ? -1 : 1, minutes = 0;
  if (offset[0] != 'Z') minutes = sign * (((offset[1] - '0') * 10 + offset[2] - '0') * 60 + (offset[4] - '0') * 10 + offset[5] - '0');
  time_t secs = (time_t)(ms / 1000) + minutes * 60;
  struct tm tm;
  gmtime_r(&secs, &tm);
  char base[24];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 40, "%s.%03d%s", base, (int)(ms % 1000), offset[0] == 'Z' ? "Z" : offset);
}

json_t *hd_rest_time_json(const hd_app_t *app, int64_t ms) {
  if (!ms) return json_null();
  char buf[40];
  hd_rest_time(app, ms, buf);
  return json_string(buf);
}

/* Parses a whole decimal integer strictly: an optional '-' then digits only (no '+', no spaces,
 * no trailing characters), within [min, max]. The one parser of integer query parameters and ids. */
static bool parse_int(const char *text, int64_t min, int64_t max, int64_t *out) {
  const char *d = text[0] == '-' ? text + 1 : text;
  if (*d < '0' || *d > '9') return false;
  errno = 0;
  char *end;
  long long v = strtoll(text, &end, 10);
  if (errno || end == text || *end || v < min || v > max) return false;
  *out = v;
  return true;
}

bool hd_rest_query_int(hd_http_exchange_t *ex, const hd_http_request_t *req, const char *name, int64_t def,
                       int64_t min, int64_t max, int64_t *out) {
  char value[32];
  int n = hd_http_request_query(req, name, value, sizeof value);
  if (n < 0 || (n == 0 && !value[0])) {
    *out = def;
    return true;
  }
  /* a NUL decoded from %00, or a value cut short by the buffer, is not a number */
  if ((size_t)n == strlen(value) && (size_t)n < sizeof value - 1 && parse_int(value, min, max, out)) return true;
  char msg[128];
  snprintf(msg, sizeof msg, "`%s` must be an integer in [%lld, %lld]", name, (long long)min, (long long)max);
  hd_http_respond_error(ex, 400, msg);
  return false;
}

bool hd_rest_param_id(hd_http_exchange_t *ex, const char *name, int64_t *out) {
  hd_slice_t v = hd_http_param(ex, name);
  char text[24];
  if (v.ptr && v.len < sizeof text) {
    memcpy(text, v.ptr, v.len);
    text[v.len] = '\0';
    if (parse_int(text, 1, INT64_MAX, out)) return true;
  }
  hd_http_respond_error(ex, 400, "the id in the path must be a positive integer");
  return false;
}

size_t hd_rest_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

bool hd_rest_text_field(json_t *body, const char *name, bool required, size_t min, size_t max, const char **out,
                        char *msg, size_t msglen) {
  json_t *v = json_object_get(body, name);
  *out = NULL;
  if (!v || json_is_null(v)) {
    if (!required) return true;
    snprintf(msg, msglen, "`%s` is required", name);
    return false;
  }
  size_t n = json_is_string(v) ? hd_rest_chars(json_string_value(v)) : 0;
  if (!json_is_string(v) || n < min || n > max) {
    snprintf(msg, msglen, "`%s` must be a string of %zu to %zu characters", name, min, max);
    return false;
  }
  *out = json_string_value(v);
  return true;
}

int64_t hd_rest_caller_id(const hd_caller_t *caller) {
  int64_t id = 0;
  return caller->api_key || !parse_int(caller->claims.sub, 1, INT64_MAX, &id) ? 0 : id;
}
