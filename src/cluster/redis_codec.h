/* The wire form of @socket.io/redis-adapter 8.x (classic) broadcasts, as notepack.io 3.0.1 writes
 * them: msgpack of [uid, {type:2, data:[event, ...args], nsp}, {rooms, except, flags}]. Herald holds
 * arguments as JSON text with Socket.IO placeholders ({"_placeholder":true,"num":i}) for binary
 * attachments; on the wire those are msgpack `bin` in place. Channels: <prefix>#<nsp># and, for
 * exactly one room, <prefix>#<nsp>#<room>#. See ../shared/CLUSTER.md. */
#ifndef HD_REDIS_CODEC_H
#define HD_REDIS_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Broadcast flags as the adapter's `flags` object carries them. */
enum {
  HD_REDIS_VOLATILE = 1u << 0,
  HD_REDIS_COMPRESS = 1u << 1, /* compress: false is carried as the absence of this bit */
  HD_REDIS_LOCAL = 1u << 2,
};

#define HD_REDIS_MAX_DEPTH 32     /* nesting of arrays and maps at most */
#define HD_REDIS_MAX_ATTACHMENTS 64

/* One broadcast. Encoding reads it; decoding fills it (everything malloc'd, hd_redis_bcast_free). */
typedef struct {
  char *uid;                  /* the sending node's id ("emitter" for @socket.io/redis-emitter) */
  char *nsp;                  /* "/" when the packet names none */
  char *event;
  char *args;                 /* JSON array text of the arguments after the event */
  size_t args_len;
  hd_buf_t **attachments;     /* bin values of the data, in placeholder order */
  uint32_t attachment_count;
  char **rooms;               /* application room names; none = every socket of the namespace */
  uint32_t room_count;
  char **except;
  uint32_t except_count;
  uint32_t flags;             /* HD_REDIS_* */
  uint64_t offset;            /* Herald's recovery offset (opts.heraldOffset, a decimal string that
                               * socket.io nodes ignore); 0 = none */
} hd_redis_bcast_t;

/* The msgpack bytes of b into *out (malloc'd, *len bytes); attachments replace their placeholders
 * in args as bin. 0, HD_EINVAL (args not a JSON array, a placeholder out of range) or HD_ENOMEM. */
int hd_redis_encode_bcast(const hd_redis_bcast_t *b, uint8_t **out, size_t *len);
/* Decodes a broadcast message into out (zeroed first). 0, or HD_EPROTO for malformed or foreign
 * msgpack (trailing bytes, not [str, map, map], packet type not EVENT/BINARY_EVENT, data not
 * [str, ...], bin outside packet.data, nesting too deep), HD_EUTF8, HD_ETOOBIG, HD_ENOMEM. */
int hd_redis_decode_bcast(const void *data, size_t len, hd_redis_bcast_t *out);
/* Releases what hd_redis_decode_bcast filled in (and zeroes b). */
void hd_redis_bcast_free(hd_redis_bcast_t *b);
/* Appends the broadcast channel <prefix>#<nsp># (room NULL) or <prefix>#<nsp>#<room># to out. 0 or HD_ENOMEM. */
int hd_redis_channel(hd_sbuf_t *out, const char *prefix, const char *nsp, const char *room);

/* The msgpack bytes of any JSON value v into *out (malloc'd, *len bytes), Socket.IO placeholders
 * replaced by att as bin (requests of type 7, responses of type 9). 0, HD_EINVAL, HD_ENOMEM. */
int hd_redis_encode_value(json_t *v, hd_buf_t *const *att, uint32_t natt, uint8_t **out, size_t *len);
/* Decodes one msgpack value (the whole of data) into *out (a new reference); bin and ArrayBuffer
 * values anywhere become placeholders, their bytes in *att (malloc'd, *natt references; release
 * each and free the vector). 0, HD_EPROTO (malformed, trailing bytes, undefined alone, too deep),
 * HD_EUTF8, HD_ETOOBIG (too many attachments), HD_ENOMEM. */
int hd_redis_decode_value(const void *data, size_t len, json_t **out, hd_buf_t ***att, uint32_t *natt);

#endif
