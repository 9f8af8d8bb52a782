/* notepack-compatible msgpack for redis-adapter broadcasts (see redis_codec.h). Encoding uses
 * msgpack-c's packer (smallest int forms, str8 from 32 bytes, float64); decoding is a bounded reader
 * of its own: counts are checked against the bytes left before anything is allocated. */
#include "cluster/redis_codec.h"

#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* --- encoding -------------------------------------------------------------------------------- */

/* The attachment index when v is a placeholder {"_placeholder":true,"num":i} with i < natt, else -1. */
static long placeholder(json_t *v, uint32_t natt) {
  json_t *num = json_object_get(v, "num");
  if (json_object_size(v) != 2 || !json_is_true(json_object_get(v, "_placeholder")) || !json_is_integer(num))
    return -1;
  json_int_t i = json_integer_value(num);
  return i >= 0 && (uint64_t)i < natt ? (long)i : -1;
}

static int pack_str(msgpack_packer *pk, const char *s, size_t len) {
  return msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, s, len) ? HD_ENOMEM : 0;
}

static int pack_json(msgpack_packer *pk, json_t *v, hd_buf_t *const *att, uint32_t natt, int depth) {
  if (depth > HD_REDIS_MAX_DEPTH) return HD_EINVAL;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    long i = placeholder(v, natt);
    if (i >= 0) return msgpack_pack_bin(pk, att[i]->len) || msgpack_pack_bin_body(pk, att[i]->data, att[i]->len) ? HD_ENOMEM : 0;
    if (json_object_get(v, "_placeholder") && json_is_true(json_object_get(v, "_placeholder"))) return HD_EINVAL;
    if (msgpack_pack_map(pk, json_object_size(v))) return HD_ENOMEM;
    const char *key;
    size_t key_len;
    json_t *val;
    json_object_keylen_foreach(v, key, key_len, val) {
      int rc = pack_str(pk, key, key_len);
      if (rc || (rc = pack_json(pk, val, att, natt, depth + 1))) return rc;
    }
    return 0;
  }
  case JSON_ARRAY: {
    if (msgpack_pack_array(pk, json_array_size(v))) return HD_ENOMEM;
    for (size_t i = 0; i < json_array_size(v); i++) {
      int rc = pack_json(pk, json_array_get(v, i), att, natt, depth + 1);
      if (rc) return rc;
    }
    return 0;
  }
  case JSON_STRING: return pack_str(pk, json_string_value(v), json_string_length(v));
  case JSON_INTEGER: return msgpack_pack_int64(pk, json_integer_value(v)) ? HD_ENOMEM : 0;
  case JSON_REAL: { /* JavaScript has one number type: integral values go as ints, as notepack does */
    double d = json_real_value(v);
    if (d == floor(d) && fabs(d) <= 9007199254740991.0 && !(d == 0 && signbit(d)))
      return msgpack_pack_int64(pk, (int64_t)d) ? HD_ENOMEM : 0;
    return msgpack_pack_double(pk, d) ? HD_ENOMEM : 0;
  }
  case JSON_TRUE: return msgpack_pack_true(pk) ? HD_ENOMEM : 0;
  case JSON_FALSE: return msgpack_pack_false(pk) ? HD_ENOMEM : 0;
  default: return msgpack_pack_nil(pk) ? HD_ENOMEM : 0;
  }
}

static int pack_strv(msgpack_packer *pk, char *const *v, uint32_t n) {
  if (msgpack_pack_array(pk, n)) return HD_ENOMEM;
  for (uint32_t i = 0; i < n; i++)
    if (pack_str(pk, v[i], strlen(v[i]))) return HD_ENOMEM;
  return 0;
}

/* opts.heraldOffset: the recovery offset as a decimal string (exact in JavaScript too). */
static int pack_offset(msgpack_packer *pk, uint64_t offset) {
  char text[24];
  int n = snprintf(text, sizeof text, "%llu", (unsigned long long)offset);
  return pack_str(pk, "heraldOffset", 12) || pack_str(pk, text, (size_t)n);
}

int hd_redis_encode_bcast(const hd_redis_bcast_t *b, uint8_t **out, size_t *len) {
  json_error_t jerr;
  json_t *args = json_loadb(b->args ? b->args : "[]", b->args ? b->args_len : 2, JSON_ALLOW_NUL, &jerr);
  if (!json_is_array(args)) {
    json_decref(args);
    return HD_EINVAL;
  }
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  const char *nsp = b->nsp ? b->nsp : "/";
  int rc = msgpack_pack_array(&pk, 3) || pack_str(&pk, b->uid, strlen(b->uid)) || msgpack_pack_map(&pk, 3) ||
                   pack_str(&pk, "type", 4) || msgpack_pack_int64(&pk, 2) || pack_str(&pk, "data", 4) ||
                   msgpack_pack_array(&pk, 1 + json_array_size(args)) || pack_str(&pk, b->event, strlen(b->event))
               ? HD_ENOMEM
               : 0;
  for (size_t i = 0; !rc && i < json_array_size(args); i++)
    rc = pack_json(&pk, json_array_get(args, i), b->attachments, b->attachment_count, 1);
  uint32_t nflags = !!(b->flags & HD_REDIS_VOLATILE) + !!(b->flags & HD_REDIS_COMPRESS) + !!(b->flags & HD_REDIS_LOCAL);
  if (!rc && (pack_str(&pk, "nsp", 3) || pack_str(&pk, nsp, strlen(nsp)) ||
              (b->offset ? msgpack_pack_map(&pk, 4) || pack_offset(&pk, b->offset) : msgpack_pack_map(&pk, 3)) ||
              pack_str(&pk, "rooms", 5) || pack_strv(&pk, b->rooms, b->room_count) || pack_str(&pk, "except", 6) ||
              pack_strv(&pk, b->except, b->except_count) || pack_str(&pk, "flags", 5) || msgpack_pack_map(&pk, nflags)))
    rc = HD_ENOMEM;
  if (!rc && (b->flags & HD_REDIS_VOLATILE) && (pack_str(&pk, "volatile", 8) || msgpack_pack_true(&pk))) rc = HD_ENOMEM;
  if (!rc && (b->flags & HD_REDIS_COMPRESS) && (pack_str(&pk, "compress", 8) || msgpack_pack_true(&pk))) rc = HD_ENOMEM;
  if (!rc && (b->flags & HD_REDIS_LOCAL) && (pack_str(&pk, "local", 5) || msgpack_pack_true(&pk))) rc = HD_ENOMEM;
  json_decref(args);
  if (rc) {
    msgpack_sbuffer_destroy(&sb);
    return rc;
  }
  *out = (uint8_t *)sb.data; /* msgpack_sbuffer grows with realloc: the caller frees it */
  *len = sb.size;
  return 0;
}

int hd_redis_channel(hd_sbuf_t *out, const char *prefix, const char *nsp, const char *room) {
  return room ? hd_sbuf_printf(out, "%s#%s#%s#", prefix, nsp, room) : hd_sbuf_printf(out, "%s#%s#", prefix, nsp);
}

/* --- decoding -------------------------------------------------------------------------------- */

typedef struct {
  const uint8_t *p, *end;
  bool bins;                  /* inside packet.data: bin becomes an attachment */
  hd_buf_t **att;
  uint32_t natt;
} rd_t;

static uint64_t be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

/* Takes n bytes; NULL when fewer are left. */
static const uint8_t *take(rd_t *r, uint64_t n) {
  if ((uint64_t)(r->end - r->p) < n) return NULL;
  const uint8_t *at = r->p;
  r->p += n;
  return at;
}

/* A length of n bytes, big endian; HD_EPROTO when short. */
static int len_of(rd_t *r, int n, uint64_t *out) {
  const uint8_t *b = take(r, (uint64_t)n);
  if (!b) return HD_EPROTO;
  *out = be(b, n);
  return 0;
}

static int attach(rd_t *r, const uint8_t *data, uint64_t n, json_t **out) {
  if (!r->bins) return HD_EPROTO;
  if (r->natt == HD_REDIS_MAX_ATTACHMENTS) return HD_ETOOBIG;
  hd_buf_t **grown = realloc(r->att, (r->natt + 1) * sizeof(*grown));
  if (!grown) return HD_ENOMEM;
  r->att = grown;
  if (!(grown[r->natt] = hd_buf_from(data, n))) return HD_ENOMEM;
  *out = json_pack("{s:b, s:i}", "_placeholder", 1, "num", (json_int_t)r->natt++);
  return *out ? 0 : HD_ENOMEM;
}

static int read_value(rd_t *r, int depth, json_t **out);

/* A JavaScript number: integral values (and -0) as integers, as JSON.stringify writes them; NaN and
 * the infinities as null (the same). */
static json_t *number(double d) {
  if (!isfinite(d)) return json_null();
  if (d == floor(d) && fabs(d) <= 9007199254740991.0) return json_integer((json_int_t)d);
  return json_real(d);
}

/* A string value of n bytes (UTF-8 checked by jansson). */
static int read_str(rd_t *r, uint64_t n, json_t **out) {
  const uint8_t *s = take(r, n);
  if (!s) return HD_EPROTO;
  *out = json_stringn((const char *)s, n);
  return *out ? 0 : HD_EUTF8;
}

static int read_array(rd_t *r, uint64_t n, int depth, json_t **out) {
  if (n > (uint64_t)(r->end - r->p)) return HD_EPROTO; /* every element takes a byte at least */
  json_t *a = json_array();
  if (!a) return HD_ENOMEM;
  for (uint64_t i = 0; i < n; i++) {
    json_t *v = NULL;
    int rc = read_value(r, depth + 1, &v);
    if (!rc && json_array_append_new(a, v ? v : json_null())) rc = HD_ENOMEM; /* undefined: null, as JSON.stringify */
    if (rc) {
      json_decref(a);
      return rc;
    }
  }
  *out = a;
  return 0;
}

static int read_map(rd_t *r, uint64_t n, int depth, json_t **out) {
  if (n > (uint64_t)(r->end - r->p) / 2) return HD_EPROTO;
  json_t *m = json_object();
  if (!m) return HD_ENOMEM;
  for (uint64_t i = 0; i < n; i++) {
    json_t *k = NULL, *v = NULL;
    int rc = read_value(r, depth + 1, &k);
    if (!rc && (!json_is_string(k) || memchr(json_string_value(k), 0, json_string_length(k))))
      rc = HD_EPROTO; /* notepack writes object keys only; a NUL in one is refused (JSON text can't hold it) */
    if (!rc && json_object_getn(m, json_string_value(k), json_string_length(k)))
      rc = HD_EPROTO; /* a key twice (no JavaScript object has that): the first value's attachments would dangle */
    if (!rc) rc = read_value(r, depth + 1, &v);
    if (!rc && v && json_object_setn_new(m, json_string_value(k), json_string_length(k), v)) rc = HD_ENOMEM;
    json_decref(k);
    if (rc) {
      json_decref(m);
      return rc;
    }
  }
  *out = m;
  return 0;
}

/* ext type t of n bytes: type 0 of one byte is undefined (*out NULL), type 0 otherwise an ArrayBuffer
 * (an attachment), anything else (a Date) null. */
static int read_ext(rd_t *r, uint64_t n, bool fixed, json_t **out) {
  const uint8_t *t = take(r, 1), *body = t ? take(r, n) : NULL;
  if (!body) return HD_EPROTO;
  if ((int8_t)*t == 0 && fixed && n == 1) return 0;
  if ((int8_t)*t == 0) return attach(r, body, n, out);
  *out = json_null();
  return 0;
}

/* One value into *out; *out stays NULL for undefined. */
static int read_value(rd_t *r, int depth, json_t **out) {
  *out = NULL;
  if (depth > HD_REDIS_MAX_DEPTH) return HD_EPROTO;
  const uint8_t *tp = take(r, 1);
  if (!tp) return HD_EPROTO;
  uint8_t t = *tp;
  uint64_t n;
  int rc = 0;
  if (t <= 0x7f) return (*out = json_integer(t)) ? 0 : HD_ENOMEM;
  if (t >= 0xe0) return (*out = json_integer((int8_t)t)) ? 0 : HD_ENOMEM;
  if (t >= 0x80 && t <= 0x8f) return read_map(r, t & 0x0f, depth, out);
  if (t >= 0x90 && t <= 0x9f) return read_array(r, t & 0x0f, depth, out);
  if (t >= 0xa0 && t <= 0xbf) return read_str(r, t & 0x1f, out);
  switch (t) {
  case 0xc0: *out = json_null(); return 0;
  case 0xc2: *out = json_false(); return 0;
  case 0xc3: *out = json_true(); return 0;
  case 0xc4: case 0xc5: case 0xc6: {
    if ((rc = len_of(r, 1 << (t - 0xc4), &n))) return rc;
    const uint8_t *b = take(r, n);
    return b ? attach(r, b, n, out) : HD_EPROTO;
  }
  case 0xc7: case 0xc8: case 0xc9:
    return (rc = len_of(r, 1 << (t - 0xc7), &n)) ? rc : read_ext(r, n, false, out);
  case 0xca: {
    const uint8_t *b = take(r, 4);
    if (!b) return HD_EPROTO;
    uint32_t u = (uint32_t)be(b, 4);
    float f;
    memcpy(&f, &u, 4);
    return (*out = number(f)) ? 0 : HD_ENOMEM;
  }
  case 0xcb: {
    const uint8_t *b = take(r, 8);
    if (!b) return HD_EPROTO;
    uint64_t u = be(b, 8);
    double d;
    memcpy(&d, &u, 8);
    return (*out = number(d)) ? 0 : HD_ENOMEM;
  }
  case 0xcc: case 0xcd: case 0xce: case 0xcf:
    if ((rc = len_of(r, 1 << (t - 0xcc), &n))) return rc;
    *out = n > INT64_MAX ? json_real((double)n) : json_integer((json_int_t)n);
    return *out ? 0 : HD_ENOMEM;
  case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
    int w = 1 << (t - 0xd0);
    if ((rc = len_of(r, w, &n))) return rc;
    int64_t v = w == 8 ? (int64_t)n : (int64_t)(n << (64 - 8 * w)) >> (64 - 8 * w); /* sign-extend */
    return (*out = json_integer(v)) ? 0 : HD_ENOMEM;
  }
  case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return read_ext(r, 1u << (t - 0xd4), true, out);
  case 0xd9: case 0xda: case 0xdb: return (rc = len_of(r, 1 << (t - 0xd9), &n)) ? rc : read_str(r, n, out);
  case 0xdc: case 0xdd: return (rc = len_of(r, 2 << (t - 0xdc), &n)) ? rc : read_array(r, n, depth, out);
  case 0xde: case 0xdf: return (rc = len_of(r, 2 << (t - 0xde), &n)) ? rc : read_map(r, n, depth, out);
  default: return HD_EPROTO; /* 0xc1 */
  }
}

/* A JSON array of strings into a malloc'd vector; HD_EPROTO when v is neither absent nor such an array. */
static int strv_of(json_t *v, char ***out, uint32_t *count) {
  if (!v || json_is_null(v)) return 0;
  if (!json_is_array(v)) return HD_EPROTO;
  size_t n = json_array_size(v);
  if (!n) return 0;
  if (!(*out = calloc(n, sizeof(char *)))) return HD_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    json_t *s = json_array_get(v, i);
    if (!json_is_string(s)) return HD_EPROTO;
    if (!((*out)[i] = strdup(json_string_value(s)))) return HD_ENOMEM;
    *count = (uint32_t)(i + 1);
  }
  return 0;
}

/* The packet map: type, data (bins allowed), nsp. */
static int read_packet(rd_t *r, hd_redis_bcast_t *b) {
  const uint8_t *tp = take(r, 1);
  uint64_t n;
  int rc = 0;
  if (!tp) return HD_EPROTO;
  if (*tp >= 0x80 && *tp <= 0x8f) n = *tp & 0x0f;
  else if (*tp == 0xde || *tp == 0xdf) rc = len_of(r, 2 << (*tp - 0xde), &n);
  else return HD_EPROTO;
  json_t *type = NULL, *data = NULL, *nsp = NULL;
  for (uint64_t i = 0; !rc && i < n; i++) {
    json_t *k = NULL, *v = NULL;
    if (!(rc = read_value(r, 2, &k)) && !json_is_string(k)) rc = HD_EPROTO;
    bool is_data = !rc && !strcmp(json_string_value(k), "data");
    r->bins = is_data;
    if (!rc) rc = read_value(r, 2, &v);
    r->bins = false;
    json_t **slot = rc ? NULL : is_data ? &data : !strcmp(json_string_value(k), "type") ? &type
                                               : !strcmp(json_string_value(k), "nsp")   ? &nsp : NULL;
    if (slot && *slot) { /* a key twice: refused, as in any map (the first data's attachments would dangle) */
      json_decref(v);
      rc = HD_EPROTO;
    } else if (slot) {
      *slot = v;
    } else {
      json_decref(v);
    }
    json_decref(k);
  }
  json_int_t ty = json_integer_value(type);
  if (!rc && (!json_is_integer(type) || (ty != 2 && ty != 5) || !json_is_array(data) || !json_array_size(data) ||
              !json_is_string(json_array_get(data, 0)) || (nsp && !json_is_null(nsp) && !json_is_string(nsp))))
    rc = HD_EPROTO;
  if (!rc) {
    b->nsp = strdup(json_is_string(nsp) ? json_string_value(nsp) : "/");
    b->event = strdup(json_string_value(json_array_get(data, 0)));
    json_array_remove(data, 0);
    b->args = json_dumps(data, JSON_COMPACT);
    b->args_len = b->args ? strlen(b->args) : 0;
    if (!b->nsp || !b->event || !b->args) rc = HD_ENOMEM;
  }
  json_decref(type);
  json_decref(data);
  json_decref(nsp);
  return rc;
}

static int decode(rd_t *r, hd_redis_bcast_t *b) {
  const uint8_t *tp = take(r, 1);
  if (!tp || *tp != 0x93) return HD_EPROTO;
  json_t *uid = NULL, *opts = NULL;
  int rc = read_value(r, 1, &uid);
  if (!rc && !json_is_string(uid)) rc = HD_EPROTO;
  if (!rc && !(b->uid = strdup(json_string_value(uid)))) rc = HD_ENOMEM;
  if (!rc) rc = read_packet(r, b);
  if (!rc) rc = read_value(r, 1, &opts);
  if (!rc && (!json_is_object(opts) || r->p != r->end)) rc = HD_EPROTO;
  if (!rc) rc = strv_of(json_object_get(opts, "rooms"), &b->rooms, &b->room_count);
  if (!rc) rc = strv_of(json_object_get(opts, "except"), &b->except, &b->except_count);
  json_t *flags = rc ? NULL : json_object_get(opts, "flags");
  if (flags && !json_is_null(flags) && !json_is_object(flags)) rc = HD_EPROTO;
  if (json_is_true(json_object_get(flags, "volatile"))) b->flags |= HD_REDIS_VOLATILE;
  if (json_is_true(json_object_get(flags, "compress"))) b->flags |= HD_REDIS_COMPRESS;
  if (json_is_true(json_object_get(flags, "local"))) b->flags |= HD_REDIS_LOCAL;
  const char *offset = json_string_value(json_object_get(opts, "heraldOffset"));
  if (offset && strspn(offset, "0123456789") == strlen(offset) && strlen(offset) <= 20)
    b->offset = strtoull(offset, NULL, 10);
  json_decref(uid);
  json_decref(opts);
  return rc;
}

int hd_redis_decode_bcast(const void *data, size_t len, hd_redis_bcast_t *out) {
  memset(out, 0, sizeof(*out));
  rd_t r = {data, (const uint8_t *)data + len, false, NULL, 0};
  int rc = decode(&r, out);
  out->attachments = r.att;
  out->attachment_count = r.natt;
  if (rc) hd_redis_bcast_free(out);
  return rc;
}

static void free_strv(char **v, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

void hd_redis_bcast_free(hd_redis_bcast_t *b) {
  free(b->uid);
  free(b->nsp);
  free(b->event);
  free(b->args);
  for (uint32_t i = 0; i < b->attachment_count; i++) hd_buf_unref(b->attachments[i]);
  free(b->attachments);
  free_strv(b->rooms, b->room_count);
  free_strv(b->except, b->except_count);
  memset(b, 0, sizeof(*b));
}

/* --- any value (requests and responses in msgpack: types 7 and 9) ---------------------------- */

int hd_redis_encode_value(json_t *v, hd_buf_t *const *att, uint32_t natt, uint8_t **out, size_t *len) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  int rc = pack_json(&pk, v, att, natt, 0);
  if (rc) {
    msgpack_sbuffer_destroy(&sb);
    return rc;
  }
  *out = (uint8_t *)sb.data;
  *len = sb.size;
  return 0;
}

int hd_redis_decode_value(const void *data, size_t len, json_t **out, hd_buf_t ***att, uint32_t *natt) {
  rd_t r = {data, (const uint8_t *)data + len, true, NULL, 0};
  *out = NULL;
  int rc = read_value(&r, 0, out);
  if (!rc && (!*out || r.p != r.end)) rc = HD_EPROTO;
  if (rc) {
    json_decref(*out);
    *out = NULL;
    for (uint32_t i = 0; i < r.natt; i++) hd_buf_unref(r.att[i]);
    free(r.att);
    return rc;
  }
  *att = r.att;
  *natt = r.natt;
  return 0;
}
