/* The hub: rooms (Socket.IO rooms and JSON-protocol topics share one namespace of names), members and
 * fan-out, one per shard, plus the one publish path of the node. It knows nothing of protocols: a
 * message is protocol-neutral (event, JSON arguments, binary attachments, flags, target rooms); a
 * member carries the deliver callback of its protocol, and each protocol registers the encoder of
 * its wire form, run at most once per message per shard (each shard fills its own cache row).
 *
 * Publishing goes through the node's adapter (hub/adapter.h): the local adapter posts the message to
 * every shard's mailbox, a cluster adapter also to other nodes. Under one publish lock a message gets
 * its node-wide id, its topic sequence (SEQUENCED: delivery/history.h) and is shown to the observer
 * (Socket.IO recovery), so every shard sees messages in the same order as ids and sequences. */
#ifndef HD_HUB_H
#define HD_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/mailbox.h"
#include "core/map.h"
#include "hub/traffic.h"

#define HD_HUB_ENCODINGS 8 /* cached wire forms per message and shard (see hd_hub_encoding_id) */

typedef struct hd_hub hd_hub_t;
typedef struct hd_hub_room hd_hub_room_t;
typedef struct hd_hub_member hd_hub_member_t;
typedef struct hd_adapter hd_adapter_t;
typedef struct hd_history hd_history_t;
typedef struct hd_topic_log hd_topic_log_t;

/* Message flags. */
enum {
  HD_MSG_VOLATILE = 1u << 0,  /* may be dropped; never recorded for recovery */
  HD_MSG_SEQUENCED = 1u << 1, /* rooms[0] is a topic: the message gets its next sequence and is kept
                               * in its history (rooms[1], when present, is the topic with params) */
  HD_MSG_WANTS_ACKS = 1u << 2,/* recipients are asked to acknowledge (never recorded for recovery) */
  HD_MSG_LOCAL = 1u << 3,     /* this node only: every shard of this node, never another node (socket.io's
                               * `local` flag; a socket's own emit). Requests and fetches: this node's
                               * shards only. There is no "this shard only". */
  HD_MSG_REMOTE = 1u << 4,    /* came from another node (cluster adapter): every shard, never sent back */
};

typedef struct hd_hub_acks hd_hub_acks_t;
/* Where the answers of a broadcast with acks go (HD_MSG_WANTS_ACKS, hd_hub_msg_set_acks): every
 * recipient asks its client for an ack and hands the answer here. The callbacks run on any thread;
 * the sink takes them to its own. Refcounted (hd_hub_acks_ref / hd_hub_acks_unref). */
struct hd_hub_acks {
  uint32_t refs;            /* atomic; the creator holds the first */
  uint64_t timeout_ms;      /* how long a recipient waits for its client's answer */
  /* One client's answer: the JSON array text of its ack arguments with Socket.IO placeholders and
   * their binary attachments (all borrowed for the call). */
  void (*on_ack)(hd_hub_acks_t *acks, const char *args_json, size_t len, hd_buf_t *const *att, size_t natt);
  /* One node's number of recipients (each node once: this one from its publish count, the others'
   * from the cluster). */
  void (*on_clients)(hd_hub_acks_t *acks, size_t count);
  void (*free)(hd_hub_acks_t *acks);
};

hd_hub_acks_t *hd_hub_acks_ref(hd_hub_acks_t *acks);
/* Drops one reference (any thread); the last calls acks->free. */
void hd_hub_acks_unref(hd_hub_acks_t *acks);

/* A published message: immutable once published, refcounted across threads, shared by every
 * recipient on every shard. */
typedef struct hd_hub_msg {
  uint32_t refs;          /* atomic */
  uint32_t flags;         /* HD_MSG_* */
  uint64_t id;            /* node-wide, increasing in publish order: Socket.IO recovery offsets */
  uint64_t seq;           /* topic sequence (SEQUENCED), else 0 */
  int64_t timestamp;      /* ms since the epoch */
  char *nsp;              /* Socket.IO namespace of the rooms ("/" also holds the JSON topics) */
  char **rooms;           /* hub room keys it goes to (room_count >= 1) */
  char **except;          /* members of these rooms are skipped */
  uint32_t room_count, except_count;
  char *event;            /* the event name (Socket.IO event, JSON-protocol envelope type) */
  char *type;             /* the envelope type when a publisher names it apart from event, or NULL */
  char *args;             /* JSON array text of the arguments */
  size_t args_len;
  bool single_arg;        /* args is "[" value "]": JSON protocol data is that value */
  hd_buf_t **attachments; /* binary attachments (Socket.IO placeholders in args), or NULL */
  uint32_t attachment_count;
  hd_hub_acks_t *acks;    /* WANTS_ACKS: where the answers go (a reference), else NULL */
  uint32_t rows;          /* shards: rows of the encoded cache */
  char message_id[40];    /* unique, for clients to drop duplicates */
  uint64_t cluster_offset;/* clustered recovery: the offset every Herald node gives it (its publisher's,
                           * carried to the others; delivery/recovery.h), else 0 */
  uint64_t published_ns;  /* monotonic (uv_hrtime) when it was made on this node: its frames carry it,
                           * for the publish-to-write histogram */
  hd_buf_t *encoded[];    /* rows x HD_HUB_ENCODINGS: row r is written by shard r only */
} hd_hub_msg_t;

/* A membership request from the adapter (hub/adapter.h), applied to one matching member.
 * DISCONNECT leaves the namespace (disconnectSockets(false)); CLOSE closes the member's whole
 * connection (disconnectSockets(true)). */
typedef enum { HD_HUB_REQ_JOIN, HD_HUB_REQ_LEAVE, HD_HUB_REQ_DISCONNECT, HD_HUB_REQ_CLOSE } hd_hub_req_t;

/* What a kind of member (a protocol) does with what the hub hands it. */
typedef struct {
  void (*deliver)(hd_hub_member_t *m, hd_hub_msg_t *msg);
  /* Optional: join or leave `room` (a room key), or disconnect (room NULL). */
  void (*on_request)(hd_hub_member_t *m, hd_hub_req_t req, const char *room);
  /* Optional: appends a JSON object describing the member (fetch sockets) to out. */
  void (*describe)(hd_hub_member_t *m, hd_sbuf_t *out);
  hd_traffic_protocol_t protocol; /* what its deliveries count under in /metrics */
  /* Optional: writes the key of the member's own room (hd_hub_own_rooms_t) into out (cap bytes,
   * NUL-terminated) and returns its length; 0 when it is in none. */
  size_t (*own_room)(const hd_hub_member_t *m, char *out, size_t cap);
} hd_hub_member_ops_t;

/* Rooms of one member that the hub holds no entry for: a Socket.IO socket's own room, named by its
 * id, is found through the protocol's map of sockets (no room, seat or membership per socket).
 * Wherever the hub resolves a room key (delivery, except, requests, fetches, room keys) it also
 * asks owner(); a hub room of the same name (another member joined it) is resolved as well, so
 * the own room then holds both, as in socket.io's adapter. Installed with hd_hub_set_own_rooms. */
typedef struct {
  /* The member whose own room is `name`, or NULL (this shard's thread). */
  hd_hub_member_t *(*owner)(void *arg, const char *name, size_t len);
  /* How many own rooms there are on this shard. */
  size_t (*count)(void *arg);
} hd_hub_own_rooms_t;

/* The descriptions of the matching members of every shard (or their room keys, all_rooms): a JSON
 * array text (borrowed for the call) and how many it holds; runs on the asking shard. */
typedef void (*hd_hub_fetch_fn)(void *arg, const char *members_json, size_t count);
/* Total deliveries of one publish over every shard (runs on the publishing shard); msg is the
 * published message (its id, sequence and message id set), borrowed for the call. status is 0, or
 * the HD_E* of a shard that could not make durable what its deliveries must keep (hd_hub_persisted):
 * the message went out, but is not kept for an ack or the recipient's next connection. */
typedef void (*hd_hub_count_fn)(void *arg, const hd_hub_msg_t *msg, size_t delivered, int status);
/* Makes durable what this shard's deliveries so far must keep (the JSON-protocol inbox rows): 0 and
 * done(done_arg, status) later on this shard's thread once committed (0) or not (HD_E*), or
 * HD_ENOTFOUND when nothing waits (done is not called). Installed by the app (hd_hub_set_persist). */
typedef int (*hd_hub_persist_fn)(void *arg, void (*done)(void *done_arg, int status), void *done_arg);

typedef struct {
  hd_hub_room_t *room;
  uint32_t index;     /* position in room->seats */
} hd_hub_membership_t;

/* Something that can be in rooms: a Socket.IO socket or a JSON-protocol connection. Embed it. */
struct hd_hub_member {
  const hd_hub_member_ops_t *ops;
  hd_hub_membership_t *rooms;
  uint32_t room_count, room_cap;
  uint64_t last_msg_id; /* delivery stamp: at most one copy per publish */
};

typedef struct {
  hd_hub_member_t *member;
  uint32_t slot;          /* index of this room in member->rooms */
} hd_hub_seat_t;

struct hd_hub_room {
  size_t name_len;
  hd_hub_seat_t *seats;   /* the members: count used of cap (first_seat until a second member joins) */
  uint32_t count, cap;
  hd_hub_seat_t first_seat; /* a room of one member (a socket's own room) needs no second allocation */
  char name[];            /* NUL-terminated, in the same allocation */
};

typedef struct {
  uint32_t max_rooms_per_member;
} hd_hub_limits_t;

/* What the shards of one node share: the publish lock, the id counter, the adapter, the topic
 * history and the publish observer. Set up by the node before any shard publishes. */
typedef struct {
  uv_mutex_t publish_mu;
  uint64_t next_msg_id;   /* under publish_mu */
  uint64_t id_prefix;     /* random per process: message ids stay unique across restarts */
  uint32_t shard_count;
  hd_adapter_t *adapter;
  hd_history_t *history;  /* sequences and replay of topics kept on this node (NULL in a cluster) */
  hd_topic_log_t *topics; /* where JSON-protocol topic publishes and replays go (delivery/topic_log.h) */
  /* Told of every published message under the publish lock, in id order (recovery records). */
  void (*observer)(hd_hub_msg_t *msg, void *arg);
  void *observer_arg;
} hd_hub_shared_t;

/* Prepares shared for shard_count shards (adapter and history set by the caller). 0 or HD_E*. */
int hd_hub_shared_init(hd_hub_shared_t *shared, uint32_t shard_count);
void hd_hub_shared_destroy(hd_hub_shared_t *shared);

/* A new hub for shard `shard` of the node sharing `shared`; mailbox is that shard's (own-shard
 * deliveries drain it at once). NULL when out of memory. */
hd_hub_t *hd_hub_new(const hd_hub_limits_t *limits, hd_hub_shared_t *shared, uint32_t shard, hd_mailbox_t *mailbox);
void hd_hub_free(hd_hub_t *hub);
/* This hub's shard index. */
uint32_t hd_hub_shard(const hd_hub_t *hub);
/* This shard's message counters by namespace and protocol (owned by the hub, this shard only). */
hd_traffic_t *hd_hub_traffic(hd_hub_t *hub);
/* This shard's mailbox. */
hd_mailbox_t *hd_hub_mailbox(const hd_hub_t *hub);
/* The node-level part shared by every shard. */
hd_hub_shared_t *hd_hub_shared(const hd_hub_t *hub);
/* Registers an encoding name (e.g. "json/ws") and returns its cache slot, or HD_ERANGE when full.
 * Every shard registers the same names in the same order. */
int hd_hub_encoding_id(hd_hub_t *hub, const char *name);

/* Initialises an embedded member with its protocol's callbacks (static storage). */
void hd_hub_member_init(hd_hub_member_t *m, const hd_hub_member_ops_t *ops);
/* Adds m to the room named name (created on first join). 0 (also when already in), HD_ERANGE past
 * max_rooms_per_member, HD_ENOMEM. */
int hd_hub_join(hd_hub_t *hub, hd_hub_member_t *m, const char *name, size_t len);
/* Removes m from the room; an empty room is freed. 0 or HD_ENOTFOUND. */
int hd_hub_leave(hd_hub_t *hub, hd_hub_member_t *m, const char *name, size_t len);
/* Removes m from every room (before freeing it). */
void hd_hub_leave_all(hd_hub_t *hub, hd_hub_member_t *m);
/* True when m is in the room. */
bool hd_hub_member_in(const hd_hub_member_t *m, const char *name, size_t len);
/* The room of that name on this shard, or NULL (an own room is not one: hd_hub_own_rooms_t). */
hd_hub_room_t *hd_hub_room(const hd_hub_t *hub, const char *name, size_t len);
/* Number of rooms on this shard, own rooms included. */
size_t hd_hub_room_count(const hd_hub_t *hub);
/* Installs the resolver of this shard's own rooms (ops static, arg outliving the hub's use of it;
 * NULL: none). Before any delivery. */
void hd_hub_set_own_rooms(hd_hub_t *hub, const hd_hub_own_rooms_t *ops, void *arg);

/* Describes a message's target for hd_hub_msg_new. */
typedef struct {
  const char *nsp;                 /* NULL = "/" */
  const char *const *rooms;        /* room keys, at least one */
  size_t room_count;
  const char *const *except;
  size_t except_count;
  uint32_t flags;                  /* HD_MSG_* */
} hd_hub_target_t;

/* A new message (refs 1) for `to` (no rooms: a message that is never published): copies everything.
 * args_json is the JSON array of the arguments (one value: hd_hub_msg_new_value). attachments (may
 * be NULL) are taken over: the message owns those references. NULL when out of memory (attachments
 * released). */
hd_hub_msg_t *hd_hub_msg_new(hd_hub_t *hub, const hd_hub_target_t *to, const char *event, const char *args_json,
                             size_t len, hd_buf_t **attachments, uint32_t attachment_count);
/* Same, with one argument given as a JSON value text (the JSON protocol's `data`). */
hd_hub_msg_t *hd_hub_msg_new_value(hd_hub_t *hub, const hd_hub_target_t *to, const char *event,
                                   const char *value_json, size_t len);
hd_hub_msg_t *hd_hub_msg_ref(hd_hub_msg_t *msg);
/* Drops one reference (any thread); the last frees the message and its cached frames. */
void hd_hub_msg_unref(hd_hub_msg_t *msg);
/* This shard's frame for encoding slot `enc`, built by encode(msg, arg) on first use and cached;
 * borrowed from the message (take a ref to keep it). NULL when encode fails. */
hd_buf_t *hd_hub_msg_encoded(hd_hub_t *hub, hd_hub_msg_t *msg, int enc,
                             hd_buf_t *(*encode)(const hd_hub_msg_t *msg, void *arg), void *arg);
/* Sets the envelope type of a not yet published message (copied). 0 or HD_ENOMEM. */
int hd_hub_msg_set_type(hd_hub_msg_t *msg, const char *type);
/* Puts a prebuilt frame (reference taken) in this shard's cache slot enc of a not yet shared msg. */
void hd_hub_msg_set_encoded(hd_hub_t *hub, hd_hub_msg_t *msg, int enc, hd_buf_t *frame);
/* Makes a not yet published msg a broadcast with acks: WANTS_ACKS set, a reference to acks kept. */
void hd_hub_msg_set_acks(hd_hub_msg_t *msg, hd_hub_acks_t *acks);
/* True when msg's target includes room name (for replays that filter by the member's room). */
bool hd_hub_msg_targets(const hd_hub_msg_t *msg, const char *name);

/* Publishes msg to its target on every shard through the adapter (and other nodes with a cluster
 * adapter): under the publish lock it gets its id, its message id unless one is set already (a
 * message from another node keeps its own), its sequence when SEQUENCED and the node keeps a
 * history, and is shown to the observer; this shard's share is delivered before returning unless a delivery is already running
 * on this shard's stack. skip: a member of this shard to leave out (or NULL). on_count (may be NULL)
 * runs on this shard with the total deliveries once every shard has delivered. 0 or HD_E* (then
 * on_count is not called). */
int hd_hub_publish(hd_hub_t *hub, hd_hub_msg_t *msg, hd_hub_member_t *skip, hd_hub_count_fn on_count, void *arg);
/* For a message that leaves this node before it is published here (a cluster topic log sends it to
 * Redis and publishes what comes back): gives it, under the publish lock, its id, its message id
 * unless one is set, and shows it to the observer (which gives it its recovery offset and records
 * it), as hd_hub_publish would. */
void hd_hub_stamp(hd_hub_t *hub, hd_hub_msg_t *msg);
/* Delivers msg to this shard's members of its target rooms (each once), minus except rooms and skip.
 * Called by adapters on the shard's thread. Returns the number of deliveries. */
size_t hd_hub_deliver(hd_hub_t *hub, hd_hub_msg_t *msg, hd_hub_member_t *skip);
/* Installs this shard's persist hook (fn NULL: none; deliveries keep nothing). Before it runs. */
void hd_hub_set_persist(hd_hub_t *hub, hd_hub_persist_fn fn, void *arg);
/* Adapters, on the shard's thread after hd_hub_deliver of a publish someone counts: as the persist
 * hook (HD_ENOTFOUND without one). The count is reported once done ran. */
int hd_hub_persisted(hd_hub_t *hub, void (*done)(void *done_arg, int status), void *done_arg);
/* Runs this shard's queued deliveries now (own thread). */
void hd_hub_drain(hd_hub_t *hub);
/* Applies a membership request to this shard's members of to's rooms minus its except rooms
 * (called by adapters on the shard's thread). Returns the number of members it was applied to. */
size_t hd_hub_apply(hd_hub_t *hub, hd_hub_req_t req, const hd_hub_target_t *to, const char *room);
/* Asks every shard (and node) through the adapter to apply req to the members matching to. */
int hd_hub_request(hd_hub_t *hub, hd_hub_req_t req, const hd_hub_target_t *to, const char *room);
/* Appends the descriptions of this shard's members matching to (comma-separated JSON objects) to
 * out; returns how many (called by adapters on the shard's thread). */
size_t hd_hub_describe(hd_hub_t *hub, const hd_hub_target_t *to, hd_sbuf_t *out);
/* Asks every shard (and node) through the adapter for the members matching to (fetchSockets);
 * fn runs on this shard once all have answered. 0 or HD_E* (fn not called). */
int hd_hub_fetch(hd_hub_t *hub, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg);
/* Appends the keys of the rooms (JSON strings, comma-separated, each once, all-rooms "\x1e..." left
 * out) that this shard's describable members matching to are in; returns how many. */
size_t hd_hub_room_keys(hd_hub_t *hub, const hd_hub_target_t *to, hd_sbuf_t *out);
/* Asks every shard (and node) for the room keys of the members matching to (allRooms): fn gets a
 * JSON array of keys, each once, on this shard. 0 or HD_E* (fn not called). */
int hd_hub_all_rooms(hd_hub_t *hub, const hd_hub_target_t *to, hd_hub_fetch_fn fn, void *arg);

/* --- serverSideEmit: messages between the servers of a cluster, never to clients -------------- */

typedef struct hd_hub_reply hd_hub_reply_t;
/* The way back to a node that waits for an answer to its serverSideEmit. */
struct hd_hub_reply {
  /* Answers with one JSON value (value_json), or with nothing when NULL; frees the reply. Called
   * exactly once, on the thread the reply was handed to. */
  void (*send)(hd_hub_reply_t *reply, const char *value_json);
};
/* A serverSideEmit from another node to namespace nsp: args_json is [event, ...args] (borrowed);
 * reply is non-NULL when the sender waits for an answer (then the handler must call reply->send). */
typedef void (*hd_hub_server_emit_fn)(void *arg, const char *nsp, const char *args_json, hd_hub_reply_t *reply);
/* The other nodes' answers to a serverSideEmit: a JSON array text (borrowed) of count answers;
 * complete is false when not every node answered in time. Runs on the asking shard. */
typedef void (*hd_hub_answers_fn)(void *arg, bool complete, const char *answers_json, size_t count);

/* Sets this shard's handler of serverSideEmits from other nodes (NULL: none, they are dropped and
 * never answered, as a socket.io server without a listener does). */
void hd_hub_on_server_emit(hd_hub_t *hub, hd_hub_server_emit_fn fn, void *arg);
/* Hands a serverSideEmit from another node to this shard's handler (adapters, on this shard's
 * thread); without a handler reply (if any) is sent NULL. */
void hd_hub_server_emit(hd_hub_t *hub, const char *nsp, const char *args_json, hd_hub_reply_t *reply);
/* Sends [event, ...args] (args_json) to every other node of the cluster (never to this one); fn
 * (NULL: no answer wanted) gets their answers on this shard, at once with none on a single node.
 * 0 or HD_E* (fn not called). */
int hd_hub_server_side_emit(hd_hub_t *hub, const char *nsp, const char *args_json, hd_hub_answers_fn fn, void *arg);

#endif
