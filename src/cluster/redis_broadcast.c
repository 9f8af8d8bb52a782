/* Socket.IO broadcasts through Redis (see redis_internal.h): this node's leave on the broadcast
 * channel of their namespace (or of their one room) in the adapter's msgpack form, posted to shard 0
 * in id order; a broadcast with acks leaves as request 7 instead. What other nodes broadcast is
 * published on this node through shard 0's hub, marked HD_MSG_REMOTE so it is never sent back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/redis_codec.h"
#include "cluster/redis_internal.h"
#include "core/error.h"
#include "core/log.h"
#include "proto/sio.h"

/* --- outgoing -------------------------------------------------------------------------------- */

typedef struct {
  hd_redis_t *r;
  hd_hub_msg_t *msg;
} publish_t;

static void publish_now(hd_redis_t *r, hd_hub_msg_t *msg) {
  if (!hd_redis_up(r)) { /* lost since it was posted */
    HD_REDIS_COUNT(r, dropped_down, 1);
    return;
  }
  char *rooms[HD_REDIS_MAX_ROOMS], *except[HD_REDIS_MAX_EXCEPT];
  uint32_t nr = msg->room_count, ne = msg->except_count;
  if (nr > HD_REDIS_MAX_ROOMS || ne > HD_REDIS_MAX_EXCEPT) {
    HD_WARN("cluster", "broadcast not sent to the cluster: too many rooms", "rooms=%u except=%u", nr, ne);
    return;
  }
  for (uint32_t i = 0; i < nr; i++)
    if (!(rooms[i] = (char *)hd_redis_room_name(msg->nsp, msg->rooms[i]))) nr = 0; /* the whole namespace */
  for (uint32_t i = 0; i < ne; i++) except[i] = (char *)hd_redis_room_name(msg->nsp, msg->except[i]);
  hd_redis_bcast_t b = {r->uid, msg->nsp, msg->event, msg->args, msg->args_len, msg->attachments,
                        msg->attachment_count, rooms, nr, except, ne,
                        (msg->flags & HD_MSG_VOLATILE) ? HD_REDIS_VOLATILE : 0, msg->cluster_offset};
  uint8_t *data = NULL;
  size_t len = 0;
  hd_sbuf_t ch = {0};
  int rc = hd_redis_encode_bcast(&b, &data, &len);
  if (!rc && hd_redis_channel(&ch, r->prefix, msg->nsp, nr == 1 ? rooms[0] : NULL)) rc = HD_ENOMEM;
  if (!rc && !hd_redis_publish(r, HD_REDIS_BROADCAST, ch.ptr, ch.len, data, len)) hd_redis_lag_sent(r, data, len);
  if (rc) HD_REDIS_COUNT(r, encode_errors, 1);
  if (rc) HD_WARN("cluster", "broadcast not sent to the cluster", "event=%s err=\"%s\"", msg->event, hd_strerror(rc));
  free(data);
  hd_sbuf_free(&ch);
}

/* A broadcast with acks: request 7 (msgpack) on the request channel; the other nodes answer with
 * their recipient count (8) and each client's ack (9), handed to msg->acks until its timeout. */
static void publish_with_acks(hd_redis_t *r, hd_hub_msg_t *msg) {
  hd_hub_target_t to = {msg->nsp, (const char *const *)msg->rooms, msg->room_count, (const char *const *)msg->except,
                        msg->except_count, msg->flags};
  json_t *args = json_loadb(msg->args, msg->args_len, 0, NULL), *opts = hd_redis_opts_of(&to);
  json_t *data = json_pack("[s]", msg->event), *req = NULL;
  char rid[32];
  hd_redis_request_id(r, rid);
  if (json_is_array(args) && data && opts) {
    json_array_extend(data, args);
    json_object_set_new(opts, "flags", json_pack("{s:I}", "timeout", (json_int_t)msg->acks->timeout_ms));
    if (msg->flags & HD_MSG_VOLATILE) json_object_set_new(json_object_get(opts, "flags"), "volatile", json_true());
    req = json_pack("{s:s,s:s,s:i,s:{s:i,s:O,s:s},s:O}", "uid", r->uid, "requestId", rid, "type", 7, "packet", "type", 2,
                    "data", data, "nsp", msg->nsp, "opts", opts);
  }
  uint8_t *bytes = NULL;
  size_t len = 0;
  int rc = req ? hd_redis_encode_value(req, msg->attachments, msg->attachment_count, &bytes, &len) : HD_ENOMEM;
  if (!rc) {
    hd_redis_ask_acks(r, rid, msg->acks, msg->acks->timeout_ms);
    hd_redis_publish_on(r, "request", msg->nsp, bytes, len);
  } else {
    HD_REDIS_COUNT(r, encode_errors, 1);
    HD_WARN("cluster", "broadcast with acks not sent to the cluster", "event=%s err=\"%s\"", msg->event, hd_strerror(rc));
  }
  free(bytes);
  json_decref(args), json_decref(opts), json_decref(data), json_decref(req);
}

static void run_publish_task(void *arg, bool cancelled) {
  publish_t *p = arg;
  if (!cancelled && !p->r->stopping) {
    if (p->msg->acks) publish_with_acks(p->r, p->msg);
    else publish_now(p->r, p->msg);
  }
  hd_hub_msg_unref(p->msg);
  free(p);
}

static bool goes_to_cluster(const hd_hub_msg_t *msg) {
  return !(msg->flags & (HD_MSG_LOCAL | HD_MSG_REMOTE)) && !msg->single_arg && msg->room_count;
}

int hd_redis_broadcast(hd_adapter_t *a, hd_hub_t *from, hd_hub_msg_t *msg, hd_hub_member_t *skip,
                       hd_hub_count_fn on_count, void *arg) {
  hd_redis_t *r = (hd_redis_t *)a;
  int rc = r->local->ops->broadcast(r->local, from, msg, skip, on_count, arg);
  if (rc || !goes_to_cluster(msg)) return rc;
  if (!hd_redis_up(r)) { /* delivered on this node only */
    HD_REDIS_COUNT(r, dropped_down, 1);
    return rc;
  }
  publish_t *p = malloc(sizeof(*p)); /* encoded on shard 0, in id order (posted under the publish lock) */
  if (!p) return 0;
  *p = (publish_t){r, hd_hub_msg_ref(msg)};
  if (hd_mailbox_post(r->mailbox, run_publish_task, p)) run_publish_task(p, true);
  return 0;
}

/* --- incoming -------------------------------------------------------------------------------- */

/* The namespace whose broadcast channels hold channel, and the room of a room channel into *room
 * (NULL for the namespace channel); NULL when none of ours. */
static const char *channel_nsp(hd_redis_t *r, const char *ch, size_t len, char *room, size_t room_cap, bool *has_room) {
  size_t pl = strlen(r->prefix);
  if (len < pl + 2 || memcmp(ch, r->prefix, pl) || ch[pl] != '#') return NULL;
  for (uint32_t i = 0; i < r->nsp_count; i++) {
    size_t nl = strlen(r->nsps[i]), base = pl + 1 + nl + 1;
    if (len < base || memcmp(ch + pl + 1, r->nsps[i], nl) || ch[base - 1] != '#') continue;
    size_t rest = len - base;
    *has_room = rest > 0;
    if (rest && (ch[len - 1] != '#' || rest - 1 >= room_cap)) return NULL;
    if (rest) {
      memcpy(room, ch + base, rest - 1);
      room[rest - 1] = '\0';
    }
    return r->nsps[i];
  }
  return NULL;
}

int hd_redis_deliver(hd_redis_t *r, const char *nsp, hd_redis_bcast_t *b, hd_hub_acks_t *acks,
                     hd_hub_count_fn on_count, void *arg) {
  if (b->except_count > HD_REDIS_MAX_EXCEPT || b->room_count > HD_REDIS_MAX_ROOMS) {
    HD_WARN("cluster", "broadcast from the cluster dropped: too many rooms", "rooms=%u except=%u", b->room_count,
            b->except_count);
    return HD_ERANGE;
  }
  char keys[64][300], ekeys[16][300], all[300];
  const char *rk[64], *ek[16];
  uint32_t nr = 0;
  for (uint32_t i = 0; i < b->room_count; i++)
    if (hd_sio_room_key(nsp, b->rooms[i], keys[nr], sizeof keys[nr]) >= 0) rk[nr] = keys[nr], nr++;
  for (uint32_t i = 0; i < b->except_count; i++)
    if (hd_sio_room_key(nsp, b->except[i], ekeys[i], sizeof ekeys[i]) < 0) return HD_EINVAL;
    else ek[i] = ekeys[i];
  if (!b->room_count) {
    snprintf(all, sizeof all, "\x1e%s", nsp);
    rk[nr++] = all;
  }
  if (!nr) return HD_EINVAL;
  hd_hub_target_t to = {nsp, rk, nr, ek, b->except_count,
                        HD_MSG_REMOTE | ((b->flags & HD_REDIS_VOLATILE) ? HD_MSG_VOLATILE : 0)};
  hd_hub_msg_t *msg = hd_hub_msg_new(r->hub, &to, b->event, b->args, b->args_len, b->attachments, b->attachment_count);
  b->attachments = NULL; /* taken over */
  b->attachment_count = 0;
  if (!msg) return HD_ENOMEM;
  msg->cluster_offset = b->offset; /* a Herald publisher's recovery offset (cluster recovery) */
  if (acks) hd_hub_msg_set_acks(msg, acks);
  int rc = hd_hub_publish(r->hub, msg, NULL, on_count, arg);
  hd_hub_msg_unref(msg);
  return rc;
}

void hd_redis_got_broadcast(hd_redis_t *r, const char *channel, size_t channel_len, const char *data, size_t len) {
  char room[256];
  bool has_room = false;
  const char *nsp = channel_nsp(r, channel, channel_len, room, sizeof room, &has_room);
  if (!nsp) return;
  hd_redis_bcast_t b;
  int rc = hd_redis_decode_bcast(data, len, &b);
  if (rc) {
    HD_REDIS_COUNT(r, decode_errors, 1);
    HD_DEBUG("cluster", "undecodable broadcast dropped", "channel=%.*s err=\"%s\"", (int)channel_len, channel,
             hd_strerror(rc));
    return;
  }
  if (!strcmp(b.uid, r->uid)) hd_redis_lag_echo(r, data, len);
  else if (!strcmp(b.nsp, nsp)) hd_redis_deliver(r, nsp, &b, NULL, NULL, NULL);
  hd_redis_bcast_free(&b);
}
