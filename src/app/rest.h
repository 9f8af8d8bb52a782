/* Helpers shared by the REST handlers of /api/v4: JSON bodies, caller identity, JSON responses,
 * store errors as HTTP statuses, ISO 8601 times with the configured offset, integer parameters. */
#ifndef HD_REST_H
#define HD_REST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "app/auth.h"
#include "net/http_conn.h"

typedef struct hd_app hd_app_t;

/* The request body as a JSON object, or NULL after answering 400 (or 413 past limit bytes). */
json_t *hd_rest_body(hd_http_exchange_t *ex, const hd_http_request_t *req, size_t limit);
/* Identifies the caller into *out; answers 401 and returns false when it cannot. */
bool hd_rest_caller(hd_app_t *app, hd_http_exchange_t *ex, const hd_http_request_t *req, bool allow_api_key,
                    hd_caller_t *out);
/* True for an admin (or the API key); answers 403 and returns false otherwise. */
bool hd_rest_require_admin(hd_http_exchange_t *ex, const hd_caller_t *caller);
/* Sends value (a reference is stolen) as the JSON body with status. */
void hd_rest_json(hd_http_exchange_t *ex, int status, json_t *value);
/* Answers a store or validation error: ENOTFOUND 404, EEXISTS 409, EINVAL 400, ETOOBIG 413,
 * EFORBIDDEN 403, anything else 500; message may be NULL for a default. */
void hd_rest_error(hd_http_exchange_t *ex, int err, const char *message);
/* Writes ms-since-epoch as ISO 8601 with the configured offset, e.g. 2025-11-23T20:00:00.000+08:00. */
void hd_rest_time(const hd_app_t *app, int64_t ms, char out[40]);
/* json_string of hd_rest_time, or json null for 0. */
json_t *hd_rest_time_json(const hd_app_t *app, int64_t ms);
/* An integer query parameter in [min, max], def when absent; false after answering 400. */
bool hd_rest_query_int(hd_http_exchange_t *ex, const hd_http_request_t *req, const char *name, int64_t def,
                       int64_t min, int64_t max, int64_t *out);
/* The `:name` route parameter as a positive integer id; false after answering 400. */
bool hd_rest_param_id(hd_http_exchange_t *ex, const char *name, int64_t *out);
/* Characters (code points) of a valid UTF-8 string, as the store counts them. */
size_t hd_rest_chars(const char *s);
/* A string member of body with min..max characters into *out (NULL when absent or null and not
 * required). False with a 400 message in msg otherwise. */
bool hd_rest_text_field(json_t *body, const char *name, bool required, size_t min, size_t max, const char **out,
                        char *msg, size_t msglen);
/* The caller's user id as an integer (0 when the subject is not numeric, e.g. the API key). */
int64_t hd_rest_caller_id(const hd_caller_t *caller);

#endif
