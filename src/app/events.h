/* The event catalog: the one list of Socket.IO event names the application uses, with direction,
 * payload and audience. Server code uses these constants; `herald events` prints the catalog as JSON
 * and a test fails when a page or the server uses a name that is not here or not `<module>:<action>`. */
#ifndef HD_EVENTS_H
#define HD_EVENTS_H

#include <stddef.h>

/* X(CONSTANT, name, direction, payload, audience) */
#define HD_EVENT_CATALOG(X)                                                                                      \
  X(NOTIFICATION_NEW, "notification:new", "s2c", "NotificationData", "the target admin (all their tabs)")        \
  X(NOTIFICATION_BROADCAST, "notification:broadcast", "s2c", "NotificationData", "every online admin")          \
  X(NOTIFICATION_UPDATE, "notification:update", "s2c", "{notification_id, is_read}",                           \
    "the admin who read it (all tabs)")                                                                        \
  X(NOTIFICATION_MARK_READ, "notification:mark_read", "c2s", "{notification_id}; ack {success, data|error}",     \
    "admin")                                                                                                   \
  X(CHAT_NEW_MESSAGE, "chat:new_message", "s2c", "ChatMessageData", "both parties of the session")              \
  X(CHAT_SESSION_UPDATE, "chat:session_update", "s2c", "SessionData", "the session's admin and user")           \
  X(CHAT_SESSION_ASSIGNED, "chat:session_assigned", "s2c", "{session_id, user_id, priority}", "the assigned admin") \
  X(CHAT_SEND_MESSAGE, "chat:send_message", "c2s", "{session_id, content, message_type?}; ack {success, data|error}", \
    "participants")                                                                                            \
  X(CHAT_TYPING, "chat:typing", "both", "{session_id} (relayed with user_id, role)", "the other party")         \
  X(SYSTEM_STATUS_CHANGE, "system:status_change", "s2c", "{status, message, ...}", "all admins")                \
  X(SYSTEM_ALERT, "system:alert", "s2c", "{level, title, message, ...}", "all admins (everyone when all_users)") \
  X(SYSTEM_MAINTENANCE, "system:maintenance", "s2c", "{title, message, start_at, end_at, ...}",                 \
    "all admins (everyone when all_users)")                                                                    \
  X(SYSTEM_REGISTER_USER, "system:register_user", "c2s", "{user_id}; ack {success}",                           \
    "anyone (legacy register_user, checked against the token)")

#define HD_EVENT_CONST(constant, name, dir, payload, who) static const char HD_EV_##constant[] = name;
HD_EVENT_CATALOG(HD_EVENT_CONST)
#undef HD_EVENT_CONST

/* The catalog as a JSON array of {name, direction, payload, audience} (malloc'd). */
char *hd_events_catalog_json(void);

#endif
