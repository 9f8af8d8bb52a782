/* The Herald JSON protocol envelope `{type, data, timestamp, messageId, sequence?, topic?, params?}`:
 * parsing a client frame with field checks, encoding server frames, and the canonical form of a
 * topic's params (so `topic` + params names one room). Pure. */
#ifndef HD_ENVELOPE_H
#define HD_ENVELOPE_H

#include <jansson.h>
#include <stdint.h>

#include "core/buf.h"

#define HD_ENVELOPE_MAX_ID 128    /* messageId characters */
#define HD_ENVELOPE_MAX_TYPE 64   /* type characters */
#define HD_ENVELOPE_MAX_TOPIC 200 /* topic characters */

typedef struct {
  json_t *root;           /* owned */
  const char *type;       /* borrowed from root */
  json_t *data;           /* borrowed; NULL when absent */
  const char *message_id; /* borrowed; NULL when absent */
} hd_envelope_t;

/* Parses one client frame. Returns 0, or HD_EPROTO with *why set: not JSON, not an object, `type`
 * missing or not a non-empty string (<= 64 chars), `messageId` present but not a non-empty string
 * (<= 128 chars), `timestamp` present but not a number. Free with hd_envelope_free. */
int hd_envelope_parse(const char *text, size_t len, hd_envelope_t *out, const char **why);
void hd_envelope_free(hd_envelope_t *e);

/* Appends a server frame's JSON to out. data_json: JSON text or NULL (null); sequence 0 and NULL
 * topic/params_json are left out. 0 or HD_ENOMEM. */
int hd_envelope_encode(hd_sbuf_t *out, const char *type, const char *data_json, int64_t timestamp,
                       const char *message_id, uint64_t sequence, const char *topic, const char *params_json);

/* Canonical text of a params object, appended to out: compact JSON with sorted keys
 * (`{"a":1,"b":"x"}`). Nothing for NULL or {}. HD_EINVAL when params is not a flat object of
 * strings and numbers, or has over 16 keys or 512 bytes. */
int hd_params_key(const json_t *params, hd_sbuf_t *out);
/* True when topic is a usable topic name: 1..200 characters, no control characters. */
int hd_topic_valid(const char *topic);

#endif
