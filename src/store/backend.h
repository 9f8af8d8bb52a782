/* Store internals shared by the queue machinery (store.c) and the database backends: the request
 * (one queued operation, its copied inputs and its result), the per-request arena that owns every
 * string and array of both, the backend interface, and the numbered schema migrations. */
#ifndef HD_STORE_BACKEND_H
#define HD_STORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Every operation; `X(name, writes)`. Reads run in the batch's transaction without a savepoint. */
#define HD_STORE_OPS(X)             \
  X(USER_CREATE, true)              \
  X(USER_GET_BY_NAME, false)        \
  X(USER_GET, false)                \
  X(USERS_LIST, false)              \
  X(USER_UPDATE, true)              \
  X(USER_DELETE, true)              \
  X(USERS_SEARCH, false)            \
  X(USER_STATES, false)             \
  X(USERS_VERSION, false)           \
  X(USERS_GET_MANY, false)          \
  X(NOTIFICATION_CREATE, true)      \
  X(NOTIFICATIONS_LIST, false)      \
  X(NOTIFICATIONS_UNREAD, false)    \
  X(NOTIFICATION_MARK_READ, true)   \
  X(NOTIFICATIONS_MARK_ALL, true)   \
  X(SESSION_CREATE, true)           \
  X(SESSION_GET, false)             \
  X(SESSIONS_LIST, false)           \
  X(SESSION_ASSIGN, true)           \
  X(SESSION_CLAIM, true)            \
  X(SESSION_CLOSE, true)            \
  X(SESSIONS_WAITING, false)        \
  X(ADMIN_LOADS, false)             \
  X(MESSAGE_CREATE, true)           \
  X(MESSAGES_LIST, false)           \
  X(SESSION_MARK_READ, true)        \
  X(SESSION_SET_PRIORITY, true)     \
  X(INBOX_PUT, true)                \
  X(INBOX_PUT_MANY, true)           \
  X(INBOX_TAKE, false)              \
  X(INBOX_REMOVE, true)             \
  X(TOPICS_SAVE, true)              \
  X(TOPICS_LOAD, true)              \
  X(PRUNE, true)

typedef enum {
#define HD_STORE_OP_ENUM(name, w) HD_STORE_OP_##name,
  HD_STORE_OPS(HD_STORE_OP_ENUM)
#undef HD_STORE_OP_ENUM
  HD_STORE_OP_COUNT
} hd_store_op_t;

/* A bump allocator: blocks freed all at once with the request. */
typedef struct hd_store_block hd_store_block_t;
typedef struct {
  hd_store_block_t *head;
} hd_store_arena_t;

/* size bytes aligned for any type, or NULL. */
void *hd_store_arena_alloc(hd_store_arena_t *a, size_t size);
/* A NUL-terminated copy of len bytes of s (s may be NULL when len is 0), or NULL. */
char *hd_store_arena_strndup(hd_store_arena_t *a, const char *s, size_t len);
/* Frees every block. */
void hd_store_arena_free(hd_store_arena_t *a);

typedef struct hd_store_req hd_store_req_t;
struct hd_store_req {
  hd_store_req_t *next;
  hd_store_op_t op;
  int status;                      /* set by the store thread */
  bool oom;                        /* the backend ran out of memory filling the result */
  hd_store_t *handle;              /* submitted through it: answered on its loop */
  size_t bytes;                    /* counted against the queue's byte bound from submission to hand-over */
  void *arg;
  union {
    hd_store_user_cb user;
    hd_store_users_cb users;
    hd_store_notification_cb notification;
    hd_store_notifications_cb notifications;
    hd_store_notification_read_cb notification_read;
    hd_store_count_cb count;
    hd_store_session_cb session;
    hd_store_sessions_cb sessions;
    hd_store_session_close_cb session_close;
    hd_store_chat_post_cb chat_post;
    hd_store_messages_cb messages;
    hd_store_admin_loads_cb admin_loads;
    hd_store_inbox_put_cb inbox_put;
    hd_store_inbox_puts_cb inbox_puts;
    hd_store_inbox_cb inbox;
    hd_store_topics_cb topics;
  } cb;
  hd_store_arena_t arena;          /* owns the copied input strings and the result's strings */
  void *list;                      /* malloc'd result array (see hd_store_req_list), freed with the request */
  size_t list_cap;
  union {                          /* inputs, strings in the arena */
    struct {
      const char *name, *role, *password_hash, *display_name, *query;
      int64_t id;
      int disabled;                /* update: -1 keep, 0 enable, 1 disable */
      bool demo;                   /* create: a demo account (cleared by a new password) */
      int limit;
    } user;
    hd_store_notification_new_t notification;
    struct { int64_t admin_id, notification_id, before_id; int limit; bool unread_only; } notifications;
    struct {
      int64_t session_id, user_id, admin_id, sender_id, before_id;
      const char *role, *status, *content, *message_type;
      int priority, limit;
    } chat;
    struct { const char *user_sub, *message_id, *frame; size_t frame_len; int64_t cap; } inbox;
    struct { hd_store_inbox_entry_t *items; size_t count; int64_t cap; } inbox_many;
    struct { hd_store_topic_entry_t *items; size_t count; int64_t keep, min_created_at; bool clean; } topics;
    struct { hd_store_prune_t what; int64_t before; int limit; } prune;
  } in;
  union {                          /* the result, strings in the arena */
    hd_store_user_t user;
    hd_store_users_t users;
    hd_store_notification_t notification;
    hd_store_notifications_t notifications;
    hd_store_notification_read_t notification_read;
    hd_store_count_t count;
    hd_store_session_t session;
    hd_store_sessions_t sessions;
    hd_store_session_close_t session_close;
    hd_store_chat_post_t chat_post;
    hd_store_messages_t messages;
    hd_store_admin_loads_t admin_loads;
    hd_store_inbox_put_t inbox_put;
    hd_store_inbox_puts_t inbox_puts;
    hd_store_inbox_t inbox;
    hd_store_topics_t topics;
  } out;
};

/* True when the operation writes (runs inside a savepoint). */
bool hd_store_op_writes(hd_store_op_t op);
/* The next slot (zeroed) of the request's result array of `size`-byte items holding *count items;
 * increments *count. NULL when out of memory. The array is r->list. */
void *hd_store_req_list(hd_store_req_t *r, size_t size, size_t *count);

/* Backend statistics, safe to read from any thread. */
typedef struct {
  uint64_t statements;
  uint64_t statements_off_thread;
  int schema_version;
} hd_store_backend_stats_t;

/* A database backend. Every function but stats runs on the thread that called open. */
typedef struct {
  const char *name;
  /* Opens (creating) the database at path and applies pending migrations; *applied gets their number. */
  int (*open)(const char *path, void **db, int *applied, char *err, size_t errlen);
  void (*close)(void *db);
  /* Starts a transaction; write: take the write lock now (BEGIN IMMEDIATE). */
  int (*begin)(void *db, bool write);
  int (*commit)(void *db);
  void (*rollback)(void *db);
  /* A savepoint around one request: open, then release (keep) or undo; undo fails when the
   * whole transaction was lost (the batch must then fail). */
  int (*savepoint)(void *db);
  int (*release)(void *db);
  int (*undo)(void *db);
  /* NULL, or: true when the transaction can no longer be used (an error broke it). A backend that
   * sets it has savepoints that cost round trips: store.c runs a batch without them first. */
  bool (*aborted)(void *db);
  /* Runs one request: fills r->out (strings in r->arena), returns 0 or HD_E*. Not called for the
   * inbox puts and topic saves: store.c runs those through the functions below. */
  int (*exec)(void *db, hd_store_req_t *r);
  /* Keeps one inbox entry (a duplicate (user_sub, message_id) is ignored: *inserted false), then
   * drops that user's oldest entries beyond cap (*dropped: how many). 0 or HD_E*. */
  int (*inbox_put_one)(void *db, const hd_store_inbox_entry_t *e, int64_t cap, bool *inserted, int64_t *dropped);
  /* The topic history saves (store.c runs the loop): keeps one entry (a duplicate (topic, seq) is
   * ignored; *inserted); drops the oldest of a topic beyond keep; drops every entry older than
   * min_created_at (0: none) and records the clean mark. 0 or HD_E* each. */
  int (*topic_insert)(void *db, const hd_store_topic_entry_t *e, bool *inserted);
  int (*topic_trim)(void *db, const char *topic, int64_t keep);
  int (*topics_saved)(void *db, int64_t min_created_at, bool clean);
  /* The thread that ran the last statement; false before any. */
  bool (*last_thread)(void *db, uv_thread_t *out);
  void (*stats)(void *db, hd_store_backend_stats_t *out);
} hd_store_backend_t;

extern const hd_store_backend_t hd_store_sqlite_backend;
extern const hd_store_backend_t hd_store_pg_backend;

/* One numbered schema migration: applied in version order, each in its own transaction. */
typedef struct {
  int version;
  const char *name;
  const char *sqlite;              /* SQL script for the SQLite backend */
  const char *postgres;            /* the same schema change for the PostgreSQL backend */
} hd_store_migration_t;

/* The migrations, in version order; *count gets their number. */
const hd_store_migration_t *hd_store_migrations(size_t *count);

#endif
