/* Customer-service chat: sessions, messages over REST and chat:send_message, least-loaded assignment with a waiting queue, typing relay, reassign and close. */
#ifndef HD_CHAT_H
#define HD_CHAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

typedef struct hd_app hd_app_t;

/* Registers the routes and Socket.IO handlers. 0 or HD_E*. */
int hd_chat_register(hd_app_t *app);

/* --- shared by chat.c (sessions, pushes, Socket.IO) and chat_rest.c (the REST handlers) ----------- */

/* Who acts: a token with a numeric subject and role "user" or "admin". */
typedef struct {
  int64_t id;
  bool admin;
} hd_chat_actor_t;

/* Session priority, as the contract has it: 1 (lowest) .. 5 (most urgent); a session started without
 * one gets HD_CHAT_PRIORITY_DEFAULT ("normal"). */
#define HD_CHAT_PRIORITY_MIN 1
#define HD_CHAT_PRIORITY_MAX HD_STORE_PRIORITY_MAX
#define HD_CHAT_PRIORITY_DEFAULT 3
/* The priority shown for a stored one: itself when in range; rows written before the 1..5 range
 * (0 = none given, the old default, or up to 100) read as the default (below 1) or 5 (above 5). */
int hd_chat_priority(int stored);

/* A session is visible to its user and to every admin; to anyone else it does not exist (404). */
bool hd_chat_visible(hd_chat_actor_t who, const hd_store_session_t *s);
/* SessionData with unread_count for the admin side or the user side (new reference): the contract's
 * fields (session_id, user_id, admin_id, status, priority, unread_count, last_message, created_at,
 * updated_at) plus id (= session_id, for older clients), last_message_at, user_unread, admin_unread and
 * closed_at. */
json_t *hd_chat_session_json(const hd_app_t *app, const hd_store_session_t *s, bool admin_view);
/* ChatMessageData (new reference): message_id, session_id, sender_type ("user" | "admin"), sender_id,
 * message_content, message_type, created_at, plus id (= message_id, for older clients). */
json_t *hd_chat_message_json(const hd_app_t *app, const hd_store_message_t *m);
/* Checks {content, message_type?} of obj: NULL with *content and *type set (borrowed from obj), or a
 * human reason for a 400. Users cannot send "system" messages. */
const char *hd_chat_check_message(json_t *obj, bool admin, const char **content, const char **type);
/* An HTTP status and a message for a store error. */
int hd_chat_store_status(int err, const char **message);

/* chat:session_update to each side of s (user:<uid> with the user's unread count, admin:<aid> with the
 * admin's), and to admin:<prev_admin> too when it is another admin (0: none). */
void hd_chat_push_session(hd_app_t *app, const hd_store_session_t *s, int64_t prev_admin);
/* chat:session_update to one side's room only (a read on another tab). */
void hd_chat_push_session_to(hd_app_t *app, const hd_store_session_t *s, bool admin_side, int64_t id);
/* chat:session_assigned {session_id, user_id, priority} to admin:<s->admin_id>. */
void hd_chat_push_assigned(hd_app_t *app, const hd_store_session_t *s);
/* Broadcasts event with payload (stolen) to user:<user_id> and admin:<admin_id> (each when > 0). */
void hd_chat_emit(hd_app_t *app, int64_t user_id, int64_t admin_id, const char *event, json_t *payload);
/* chat:new_message to user:<uid> and, when assigned, admin:<aid> (every tab). */
void hd_chat_push_message(hd_app_t *app, const hd_store_session_t *s, const hd_store_message_t *m);

/* Called once with the session as assigned, or NULL when it stays waiting (no admin online, or the
 * store refused); pushes to the admin are done before. */
typedef void (*hd_chat_assigned_fn)(void *arg, const hd_store_session_t *assigned);
/* Assigns a waiting session to the least-loaded online admin (ties: lowest id). fn may run before
 * this returns. */
void hd_chat_assign_least_loaded(hd_app_t *app, int64_t session_id, hd_chat_assigned_fn fn, void *arg);

/* Called once: status 0 and the stored message, or an HTTP status and a message. */
typedef void (*hd_chat_posted_fn)(void *arg, int status, const char *error, const hd_store_message_t *m);
/* True when a customer may send one more chat message (or open a session) now: --chat-rate per
 * customer over the node; admins always may. */
bool hd_chat_rate_take(hd_app_t *app, hd_chat_actor_t who);
#define HD_CHAT_RATE_MESSAGE "sending too fast: wait a moment (--chat-rate)"
/* Stores a message from who into session_id (content and type already checked, copied), then pushes
 * it. A closed session refuses (409); an admin writing into a waiting session takes it first. fn may
 * run before this returns. */
void hd_chat_post(hd_app_t *app, hd_chat_actor_t who, int64_t session_id, const char *content, const char *type,
                  hd_chat_posted_fn fn, void *arg);

/* The REST routes (chat_rest.c). 0 or HD_E*. */
int hd_chat_rest_register(hd_app_t *app);

#endif
