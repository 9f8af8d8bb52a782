/* Socket.IO server API that spans the cluster (socket.io's io.timeout(ms).emit(ev, ..., cb),
 * io.allRooms() / io.of(nsp).adapter.allRooms(), io.serverSideEmit(ev, ..., cb) and io.on(ev) for
 * server-side events), over the hub and its adapter: on a single node they cover this node's
 * shards; with a cluster adapter every node. Results come back on the calling shard's thread. */
#ifndef HD_SIO_CLUSTER_H
#define HD_SIO_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/sio.h"

/* The answers of a broadcast with acks: complete is false when the timeout came first (socket.io's
 * "operation has timed out"); responses_json is a JSON array (borrowed) of each client's first ack
 * argument (binary arguments as Socket.IO placeholders, their bytes not kept). */
typedef void (*hd_sio_acks_fn)(void *arg, bool complete, const char *responses_json, size_t count);

/* Broadcasts event with args_json to `to` on every node; every recipient's client is asked for an
 * ack; fn runs once, when every node counted its recipients and each of them answered, or after
 * timeout_ms with what came. 0 or HD_E* (fn not called). */
int hd_sio_broadcast_with_ack(hd_sio_server_t *sio, const hd_sio_target_t *to, const char *event,
                              const char *args_json, uint64_t timeout_ms, hd_sio_acks_fn fn, void *arg);
/* The rooms of namespace nsp on every node (socket ids included, as socket.io's allRooms): fn gets
 * a JSON array of their names, each once. 0 or HD_E*. */
int hd_sio_all_rooms(hd_sio_server_t *sio, const char *nsp, hd_hub_fetch_fn fn, void *arg);
/* serverSideEmit of [event, ...args] (args_json) to every other node; fn (NULL: no answer wanted)
 * gets their answers (hub.h). 0 or HD_E*. */
int hd_sio_server_side_emit(hd_sio_server_t *sio, const char *nsp, const char *args_json, hd_hub_answers_fn fn,
                            void *arg);
/* Sets the handler of serverSideEmits from other nodes (any namespace) on this shard's hub; the
 * cluster adapter hands them to shard 0's. */
void hd_sio_on_server_emit(hd_sio_server_t *sio, hd_hub_server_emit_fn fn, void *arg);

#endif
