/* Socket.IO connection state recovery (a delivery guarantee), shared by the shards of a node: the
 * packets broadcast in each namespace during the recovery window (recorded under the hub's publish
 * lock, in id order), and the sessions of sockets that dropped, by private id (pid), so a client
 * that comes back on any shard gets its id, its rooms and what it missed. */
#ifndef HD_RECOVERY_H
#define HD_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mailbox.h"
#include "hub/hub.h"

#define HD_RECOVERY_MAX_PACKETS 10000 /* per namespace, besides the age limit */

typedef struct hd_recovery hd_recovery_t;

/* What a dropped socket leaves behind. rooms: hub room keys (NULL-terminated, owned). */
typedef struct {
  char pid[24];
  char id[64];
  char sub[128];          /* identity of its token ("" when anonymous): only it may take it back */
  char nsp[128];
  char **rooms;
  uint64_t last_msg_id;   /* the last message it was sent */
} hd_recovery_session_t;

/* --- clustered recovery (--redis-url): sessions and packets kept where every node finds them ----
 * The cluster part (cluster/redis_recovery.h) implements this table. With it, every published message
 * gets a cluster-wide offset (hd_hub_msg_t.cluster_offset: its publisher's, carried to the other
 * nodes), dropped sessions are saved there (not kept here), and sio takes them back asynchronously. */
typedef struct hd_recovery_cluster hd_recovery_cluster_t;
/* A session taken back (status 0: *s filled, the callee takes its rooms) or not (HD_ENOTFOUND, or an
 * error: Redis down...). Runs on the thread of the reply_to mailbox given to the call. */
typedef void (*hd_recovery_session_fn)(void *arg, int status, hd_recovery_session_t *s);
/* The packets after an offset, in order (status 0: msgs are refs the callee drops, array freed with
 * free()), or HD_ENOTFOUND when the offset is no longer kept, or an error. On reply_to's thread. */
typedef void (*hd_recovery_missed_fn)(void *arg, int status, hd_hub_msg_t **msgs, size_t n);
struct hd_recovery_cluster {
  /* Keeps msg (under the hub's publish lock, any thread; not VOLATILE / WANTS_ACKS / REMOTE). */
  void (*record)(hd_recovery_cluster_t *c, const hd_hub_msg_t *msg);
  /* Keeps a dropped socket's session for the window (any thread; s's rooms are left to the caller). */
  void (*save)(hd_recovery_cluster_t *c, const hd_recovery_session_t *s);
  /* Takes (reads and removes) the session of pid; fn runs on reply_to's thread. 0 or HD_E* (fn not run). */
  int (*take)(hd_recovery_cluster_t *c, const char *pid, hd_mailbox_t *reply_to, hd_recovery_session_fn fn, void *arg);
  /* The packets of nsp after offset `after`, as messages of hub; fn runs on reply_to's thread. 0 or HD_E*. */
  int (*missed)(hd_recovery_cluster_t *c, hd_hub_t *hub, const char *nsp, uint64_t after, hd_mailbox_t *reply_to,
                hd_recovery_missed_fn fn, void *arg);
};

/* Makes rec clustered (before any publish): cluster (borrowed) keeps sessions and packets. */
void hd_recovery_set_cluster(hd_recovery_t *rec, hd_recovery_cluster_t *cluster);
/* The cluster part, or NULL on a single node. */
hd_recovery_cluster_t *hd_recovery_cluster(const hd_recovery_t *rec);
/* Would a socket in `rooms` (hub room keys, NULL-terminated) have received msg? */
bool hd_recovery_reaches(const hd_hub_msg_t *msg, char *const *rooms);
/* Time a clustered CONNECT waits for Redis before it becomes a new session. */
#define HD_RECOVERY_CLUSTER_TIMEOUT_MS 2000

/* A recovery store keeping window_ms of packets (at most max_packets per namespace). NULL on OOM. */
hd_recovery_t *hd_recovery_new(uint64_t window_ms, uint32_t max_packets);
/* Bounds what is kept besides the window: at most max_sessions dropped sockets (a socket dropping
 * past it is not kept: it cannot recover) and max_bytes for sessions and packets together (past it
 * the oldest packets go first, then sessions are not kept). 0 = no bound. Call before use. */
void hd_recovery_set_limits(hd_recovery_t *rec, size_t max_sessions, size_t max_bytes);
void hd_recovery_free(hd_recovery_t *rec);
/* Hub observer (hd_hub_shared_t.observer): records msg unless it is volatile or wants acks; when
 * clustered, gives it its cluster offset and hands it to the cluster part instead. */
void hd_recovery_observe(hd_hub_msg_t *msg, void *rec);
/* Keeps a dropped socket's session (rooms taken over; any older one with its pid replaced); when
 * clustered, in the cluster only. */
void hd_recovery_save(hd_recovery_t *rec, hd_recovery_session_t *s);
/* Takes back the session of pid for identity sub in nsp when it is still within the window and the
 * client's offset (NULL: the session's last message) is still recorded: fills *out (caller frees
 * with hd_recovery_session_clear) and the missed messages that a socket in its rooms would have got,
 * in order, rebuilt as messages of hub (*missed: refs the caller drops, array freed with free()). False
 * when not recoverable. */
bool hd_recovery_take(hd_recovery_t *rec, hd_hub_t *hub, const char *nsp, const char *pid, const char *sub, const char *offset,
                      hd_recovery_session_t *out, hd_hub_msg_t ***missed, size_t *n_missed);
/* Frees a session's rooms. */
void hd_recovery_session_clear(hd_recovery_session_t *s);
/* Drops sessions and packets older than the window (any thread). */
void hd_recovery_sweep(hd_recovery_t *rec);
/* Sessions waiting to be taken back. */
size_t hd_recovery_session_count(hd_recovery_t *rec);

#endif
