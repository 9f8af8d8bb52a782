/* The hub: rooms (Socket.IO rooms and JSON-protocol topics share one namespace of names), members,
 * fan-out, and per-room sequence numbers with a bounded history for recovery. It knows nothing of
 * protocols: a member carries the deliver callback of its protocol adapter, and a message caches
 * one encoded frame per encoding so a publish to N members encodes each wire form once. */
#ifndef HD_HUB_H
#define HD_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/map.h"

#define HD_HUB_ENCODINGS 8 /* cached wire forms per message (see hd_hub_encoding_id) */

typedef struct hd_hub hd_hub_t;
typedef struct hd_hub_room hd_hub_room_t;
typedef struct hd_hub_member hd_hub_member_t;

/* A published message; immutable once published, refcounted, shared by every recipient. */
typedef struct hd_hub_msg {
  uint32_t refs;
  uint64_t id;          /* hub-wide, increasing: Socket.IO recovery offsets */
  uint64_t seq;         /* per-room sequence of `room` (0 when the room keeps none) */
  int64_t timestamp;    /* ms since the epoch */
  char *room;           /* the room (topic) it was published to, owned */
  char *subroom;        /* the narrower room it also went to (topic with params), owned, or NULL */
  char *event;          /* envelope type (JSON protocol) and, unless sio_event, the Socket.IO event; owned */
  char *sio_event;      /* Socket.IO event name when it differs from event; owned, or NULL */
  char *data;           /* JSON text: one value, or the arguments array when `args` */
  size_t data_len;
  bool args;            /* data is a JSON array of Socket.IO arguments */
  char message_id[40];  /* unique id for clients to drop duplicates */
  void *extra;          /* protocol-specific payload (e.g. binary attachments), freed by free_extra */
  void (*free_extra)(void *extra);
  hd_buf_t *encoded[HD_HUB_ENCODINGS];
} hd_hub_msg_t;

typedef void (*hd_hub_deliver_fn)(hd_hub_member_t *m, hd_hub_msg_t *msg);

typedef struct {
  hd_hub_room_t *room;
  uint32_t index; /* position in room->members */
} hd_hub_membership_t;

/* Something that can be in rooms: a Socket.IO socket or a JSON-protocol connection. Embed it. */
struct hd_hub_member {
  hd_hub_deliver_fn deliver;
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
  hd_hub_seat_t *seats;   /* the members: count used of cap */
  uint32_t count, cap;
  bool sequenced;         /* messages published to it get sequence numbers */
  uint64_t seq;           /* last sequence given (starts at process start ms x 1000, so sequences
                           * keep increasing across restarts while staying below 2^53) */
  uint64_t evicted_seq;   /* highest sequence dropped from history */
  hd_hub_msg_t **history; /* ring of the last `history_cap` messages */
  uint32_t history_head, history_len, history_cap;
  char name[];            /* NUL-terminated, in the same allocation */
};

typedef struct {
  uint32_t history_count;  /* messages kept per room at most (0 = none) */
  uint64_t history_max_age_ms;
  uint32_t max_rooms_per_member;
} hd_hub_limits_t;

/* A new hub, or NULL. */
hd_hub_t *hd_hub_new(const hd_hub_limits_t *limits);
void hd_hub_free(hd_hub_t *hub);
/* Registers an encoding name (e.g. "json/ws") and returns its cache slot, or HD_ERANGE when full. */
int hd_hub_encoding_id(hd_hub_t *hub, const char *name);

/* Initialises an embedded member with its protocol's deliver callback. */
void hd_hub_member_init(hd_hub_member_t *m, hd_hub_deliver_fn deliver);
/* Adds m to the room named name (created on first join). 0 (also when already in), HD_ERANGE past
 * max_rooms_per_member, HD_ENOMEM. */
int hd_hub_join(hd_hub_t *hub, hd_hub_member_t *m, const char *name, size_t len);
/* Removes m from the room; an empty room without history is freed. 0 or HD_ENOTFOUND. */
int hd_hub_leave(hd_hub_t *hub, hd_hub_member_t *m, const char *name, size_t len);
/* Removes m from every room (before freeing it). */
void hd_hub_leave_all(hd_hub_t *hub, hd_hub_member_t *m);
/* True when m is in the room. */
bool hd_hub_member_in(const hd_hub_member_t *m, const char *name, size_t len);
/* The room of that name, or NULL. */
hd_hub_room_t *hd_hub_room(const hd_hub_t *hub, const char *name, size_t len);
/* Number of rooms. */
size_t hd_hub_room_count(const hd_hub_t *hub);

/* A new message (refs 1) for publishing to room: copies event and data; NULL when out of memory. */
hd_hub_msg_t *hd_hub_msg_new(hd_hub_t *hub, const char *room, const char *event, const char *data, size_t data_len);
hd_hub_msg_t *hd_hub_msg_ref(hd_hub_msg_t *msg);
void hd_hub_msg_unref(hd_hub_msg_t *msg);
/* The frame for encoding slot `enc`, built by encode(msg, arg) on first use and cached; the result
 * is borrowed from the message (take a ref to keep it). NULL when encode fails. */
hd_buf_t *hd_hub_msg_encoded(hd_hub_msg_t *msg, int enc, hd_buf_t *(*encode)(const hd_hub_msg_t *msg, void *arg),
                             void *arg);

/* Delivers msg to every member of the rooms in `rooms` (each member once), skipping members of any
 * room in `except` and the member `skip` (may be NULL). When msg->room names a room with history,
 * msg gets that room's next sequence and is appended to its history (even with no member online).
 * Returns the number of deliveries. */
size_t hd_hub_publish(hd_hub_t *hub, hd_hub_msg_t *msg, const char *const *rooms, size_t room_count,
                      const char *const *except, size_t except_count, hd_hub_member_t *skip);
/* Sets the one observer told of every publish of a message with a room (msg->room), before
 * delivery: Socket.IO's recovery ring records topic publishes through it. */
void hd_hub_set_observer(hd_hub_t *hub,
                         void (*fn)(hd_hub_msg_t *msg, const char *const *rooms, size_t n, void *arg), void *arg);
/* Makes the room a sequenced topic: its messages get sequence numbers and the last history_count
 * of them are kept (the room outlives its members). */
int hd_hub_room_keep_history(hd_hub_t *hub, const char *name, size_t len);
/* Calls fn for each message in the room's history with seq > after_seq, oldest first, that a
 * member of room `member_room` received (member_room is the room itself or a message's subroom). Returns
 * true when history reaches back far enough (nothing after after_seq was dropped). */
bool hd_hub_replay(hd_hub_t *hub, const char *name, size_t len, const char *member_room, uint64_t after_seq,
                   void (*fn)(hd_hub_msg_t *msg, void *arg), void *arg);

#endif
