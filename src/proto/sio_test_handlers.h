/* The Socket.IO conformance handlers of `herald serve --test-handlers`, on namespaces / and /custom:
 * `auth` emitted on connect with the CONNECT payload; `message` -> `message-back`; `message-with-ack`
 * and `echo` acked; `broadcast` -> `msg` to the whole namespace; `server-ack` {timeout, data} ->
 * the server emits `ack-me` with data and waits for the client's ack, then emits
 * `server-ack-result` with the ack's arguments or "timeout"; the server API over every shard (acked):
 * `join` room, `sockets-join` / `sockets-leave` {rooms, except, room}, `disconnect-sockets` {rooms,
 * except}, `fetch-sockets` {rooms, except} (acked with the sockets), `broadcast-to` {rooms, except,
 * event, data}; across the cluster (sio_cluster.h): `all-rooms` (acked with the room names of every
 * node), `server-side-emit` event, ...args (serverSideEmit; with an ack, acked with {complete,
 * answers}), `broadcast-with-ack` {rooms, except, event, data, timeout} (acked with {complete,
 * responses}). A serverSideEmit from another node is emitted as `server-side` [event, ...args] to
 * this node's sockets of the namespace and answered {from: "herald", event} when the sender waits.
 * Benchmarks use them too. */
#ifndef HD_SIO_TEST_HANDLERS_H
#define HD_SIO_TEST_HANDLERS_H

#include "proto/sio.h"

/* Registers the handlers on every namespace given. 0 or HD_E*. */
int hd_sio_test_handlers_register(hd_sio_server_t *sio, const char *const *nsps, size_t count);

#endif
