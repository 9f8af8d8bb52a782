/* The store: everything durable (users, notifications and their per-admin read state,
 * customer-service sessions and messages, the JSON-protocol inbox) goes through here.
 *
 * The event loop never blocks on it: every operation is queued from a loop thread, run on ONE
 * dedicated store thread, and answered on that loop thread (through a uv_async_t) in submission
 * order. Several loops (shards) share one store: each has its own handle (hd_store_open makes the
 * first, hd_store_attach the others), submits through it on its own thread, and gets the answers
 * on its own loop. Writes are group-committed across handles: the store thread takes every queued
 * request, runs them in one transaction (a savepoint per request where a failing one could take the
 * others with it: a failing request fails alone), commits, and only then answers — a write's
 * callback runs after its data is durable (SQLite WAL, synchronous=FULL; PostgreSQL:
 * synchronous_commit as the server has it, on by default).
 *
 * Every operation `hd_store_<op>(st, inputs..., cb, arg)` runs on the loop thread of handle st,
 * copies its inputs, and returns 0 (queued: cb will run exactly once, on that loop thread) or a
 * negative HD_E* code (not queued: cb never runs): HD_EINVAL for invalid input, HD_EBUSY when the
 * queue (shared by every handle) is full, HD_ECLOSED once st is closing, HD_ENOMEM. cb may be NULL
 * (fire and forget). The callback gets status 0 and a result, or a negative HD_E* status
 * (HD_ENOTFOUND, HD_EEXISTS, HD_EINVAL, HD_EBUSY, HD_EIO) and res == NULL. A result and everything
 * it points to is owned by the store and valid only during the callback: copy what you keep. Ids are
 * int64 (0 means "none"); times are int64 milliseconds since the Unix epoch (UTC). Text limits count
 * characters (UTF-8 code points; invalid UTF-8 is HD_EINVAL). User ids are not checked against the
 * users table: tokens minted elsewhere name them. */
#ifndef HD_STORE_H
#define HD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/histogram.h"

/* Limits enforced at submission (HD_EINVAL beyond them). */
#define HD_STORE_NAME_MAX 64          /* user name, display name (characters) */
#define HD_STORE_HASH_MAX 512         /* password hash (bytes) */
#define HD_STORE_TYPE_MAX 32          /* notification type (characters) */
#define HD_STORE_TITLE_MAX 200        /* notification title (characters) */
#define HD_STORE_CONTENT_MAX 10000    /* notification and chat message content (characters) */
#define HD_STORE_LINK_MAX 2048        /* notification link (characters) */
#define HD_STORE_PRIORITY_MAX 5       /* session priority: the contract's 1..5 (the store takes 0 too) */
#define HD_STORE_LIST_MAX 100         /* `limit` of every paged list is 1..HD_STORE_LIST_MAX */
#define HD_STORE_PREVIEW_MAX 200      /* a session's last_message keeps this many characters */
#define HD_STORE_SUB_MAX 256          /* inbox user_sub and message_id (bytes) */
#define HD_STORE_FRAME_MAX (1 << 20)  /* inbox frame (bytes) */
#define HD_STORE_INBOX_CAP_MAX 1000000
#define HD_STORE_USERS_MAX 10000      /* users_list returns at most this many (lowest ids) */
#define HD_STORE_BATCH_MAX 10000      /* entries of one hd_store_inbox_put_many */
#define HD_STORE_PRUNE_MAX 10000     /* rows one hd_store_prune deletes at most */
#define HD_STORE_QUEUE_MAX 100000     /* requests waiting for the store thread; beyond: HD_EBUSY */
#define HD_STORE_TOPICS_MAX 1000000   /* topic history entries one hd_store_topics_load answers at most */

typedef struct hd_store hd_store_t;

/* --- results ----------------------------------------------------------------------------------- */

typedef struct {
  int64_t id;
  const char *name;
  const char *role;          /* "admin" | "user" */
  const char *display_name;  /* "" when none */
  const char *password_hash; /* only from hd_store_user_get_by_name; NULL otherwise */
  int64_t created_at;
  bool disabled;             /* its sign-in and tokens are refused */
  bool demo;                 /* a demo account whose password was never changed */
  bool deleted;              /* only from hd_store_user_states: the id of a deleted user */
  int64_t tokens_after;      /* tokens issued (iat, s) before this are refused; 0: none */
} hd_store_user_t;

typedef struct {
  const hd_store_user_t *items;
  size_t count;
} hd_store_users_t;

typedef struct {
  int64_t id;
  const char *type;
  const char *title;
  const char *content;
  const char *link;          /* NULL when none */
  int64_t sender_id;         /* 0: sent by the system or an API key */
  int64_t target_user_id;    /* 0: broadcast to every admin */
  bool is_read;              /* for the admin who listed it (false on create) */
  int64_t created_at;
} hd_store_notification_t;

typedef struct {
  const hd_store_notification_t *items;
  size_t count;
} hd_store_notifications_t;

typedef struct {
  int64_t notification_id;
  bool is_read;              /* always true */
  bool changed;              /* false when it was already read */
} hd_store_notification_read_t;

/* A count: unread notifications, notifications marked read, inbox entries removed. */
typedef struct {
  int64_t count;
} hd_store_count_t;

typedef struct {
  int64_t id;
  int64_t user_id;
  int64_t admin_id;          /* 0: not assigned */
  const char *status;        /* "waiting" | "active" | "closed" */
  int priority;
  const char *last_message;  /* preview: the first HD_STORE_PREVIEW_MAX characters */
  int64_t last_message_at;   /* 0: no message yet */
  int64_t user_unread;       /* messages from the admin side the user has not read */
  int64_t admin_unread;      /* messages from the user the admin side has not read */
  int64_t created_at;
  int64_t updated_at;
  int64_t closed_at;         /* 0: open */
} hd_store_session_t;

typedef struct {
  const hd_store_session_t *items;
  size_t count;
} hd_store_sessions_t;

typedef struct {
  hd_store_session_t session;
  bool changed;              /* false when it was already closed (returned unchanged) */
} hd_store_session_close_t;

typedef struct {
  int64_t id;
  int64_t session_id;
  int64_t sender_id;
  const char *sender_role;   /* "user" | "admin" */
  const char *content;
  const char *message_type;  /* "text" | "image" | "file" | "system" */
  int64_t created_at;
} hd_store_message_t;

typedef struct {
  const hd_store_message_t *items;
  size_t count;
} hd_store_messages_t;

/* A stored chat message and its session as updated by it (session_create, message_create). */
typedef struct {
  hd_store_session_t session;
  hd_store_message_t message;
} hd_store_chat_post_t;

typedef struct {
  int64_t admin_id;
  int64_t open_count;        /* sessions with status "active" assigned to the admin */
} hd_store_admin_load_t;

typedef struct {
  const hd_store_admin_load_t *items; /* admins with at least one active session, by admin_id */
  size_t count;
} hd_store_admin_loads_t;

typedef struct {
  bool inserted;             /* false: (user_sub, message_id) was already there */
  int64_t dropped;           /* oldest entries removed to stay within the cap */
} hd_store_inbox_put_t;

/* What one hd_store_inbox_put_many did. */
typedef struct {
  int64_t inserted;          /* entries that were new */
  int64_t dropped;           /* oldest entries removed to stay within the cap */
} hd_store_inbox_puts_t;

typedef struct {
  const char *message_id;
  const char *frame;
  size_t frame_len;
} hd_store_inbox_item_t;

typedef struct {
  const hd_store_inbox_item_t *items; /* oldest first */
  size_t count;
} hd_store_inbox_t;

typedef struct {
  bool ok;                   /* the thread runs and the last transaction did not fail */
  const char *backend;       /* "sqlite" | "postgres" */
  int schema_version;
  size_t queue_depth;        /* requests waiting for the store thread */
  size_t in_flight;          /* requests taken by the store thread, not yet answered */
  uint64_t requests;         /* requests answered since open */
  uint64_t commits;          /* write transactions committed */
  uint64_t failed_transactions;
  uint64_t last_commit_us;   /* duration of the last write transaction, BEGIN to COMMIT */
  hd_histogram_t commit_duration; /* every committed write transaction's, BEGIN to COMMIT */
  size_t last_batch;         /* requests in the last transaction */
  size_t max_batch;
  uint64_t statements;       /* SQL statements run */
  uint64_t statements_off_thread; /* statements run on a thread other than the store thread: 0 */
} hd_store_health_t;

/* --- callbacks (res is NULL unless status == 0) ------------------------------------------------ */

typedef void (*hd_store_user_cb)(void *arg, int status, const hd_store_user_t *res);
typedef void (*hd_store_users_cb)(void *arg, int status, const hd_store_users_t *res);
typedef void (*hd_store_notification_cb)(void *arg, int status, const hd_store_notification_t *res);
typedef void (*hd_store_notifications_cb)(void *arg, int status, const hd_store_notifications_t *res);
typedef void (*hd_store_notification_read_cb)(void *arg, int status, const hd_store_notification_read_t *res);
typedef void (*hd_store_count_cb)(void *arg, int status, const hd_store_count_t *res);
typedef void (*hd_store_session_cb)(void *arg, int status, const hd_store_session_t *res);
typedef void (*hd_store_sessions_cb)(void *arg, int status, const hd_store_sessions_t *res);
typedef void (*hd_store_session_close_cb)(void *arg, int status, const hd_store_session_close_t *res);
typedef void (*hd_store_chat_post_cb)(void *arg, int status, const hd_store_chat_post_t *res);
typedef void (*hd_store_message_cb)(void *arg, int status, const hd_store_message_t *res);
typedef void (*hd_store_messages_cb)(void *arg, int status, const hd_store_messages_t *res);
typedef void (*hd_store_admin_loads_cb)(void *arg, int status, const hd_store_admin_loads_t *res);
typedef void (*hd_store_inbox_put_cb)(void *arg, int status, const hd_store_inbox_put_t *res);
typedef void (*hd_store_inbox_puts_cb)(void *arg, int status, const hd_store_inbox_puts_t *res);
typedef void (*hd_store_inbox_cb)(void *arg, int status, const hd_store_inbox_t *res);
typedef struct hd_store_topics hd_store_topics_t;
typedef void (*hd_store_topics_cb)(void *arg, int status, const hd_store_topics_t *res);

/* --- lifecycle --------------------------------------------------------------------------------- */

/* path names the database: a SQLite file, or a PostgreSQL URL (postgres:// or postgresql://,
 * libpq's URI syntax). With PostgreSQL the store thread holds one connection; when it is lost,
 * requests fail at once with HD_EBUSY while the thread reconnects with backoff (0.25 s doubling to
 * 8 s between attempts, each attempt bounded by connect_timeout, 5 s unless the URL says otherwise).
 * Many Herald nodes may share one PostgreSQL database. */

/* Opens (creating it and its directory when missing) the database at path, applies pending
 * migrations and starts the store thread; call on the loop thread. Returns the first handle, answered
 * on loop; NULL with a message in err. */
hd_store_t *hd_store_open(uv_loop_t *loop, const char *path, char *err, size_t errlen);
/* Another handle on st's database and store thread, answered on loop. Call on the thread that runs
 * loop, or before loop runs on any thread; st is any open handle (of any thread) and must stay open
 * during the call. NULL when out of memory. Close it like any handle, on loop's thread. */
hd_store_t *hd_store_attach(hd_store_t *st, uv_loop_t *loop);
/* On st's loop thread (or after that loop stopped): refuses new requests through st, waits for the
 * store thread to finish st's queued ones, runs their callbacks synchronously and frees st (once the
 * current callback returns, when called from one); other handles keep working. The last handle to
 * close also stops the store thread and closes the database. Run st's loop once more to free its
 * uv_async_t before uv_loop_close(). */
void hd_store_close(hd_store_t *st);
/* Bounds the bytes of the requests queued or running over every handle (each request: itself and
 * the copies of its inputs) to max (0: no bound; the default); a submission that would pass it is
 * HD_EBUSY, unless nothing is queued. Any handle, any thread. */
void hd_store_set_queue_bytes(hd_store_t *st, size_t max);
/* `herald migrate`: opens path, applies pending migrations synchronously, closes. Returns the number
 * applied (0 when up to date) or HD_E* with a message in err. */
int hd_store_migrate_path(const char *path, char *err, size_t errlen);
/* path made fit for logs: a PostgreSQL URL's password replaced by ***; returns buf. */
const char *hd_store_redact(const char *path, char *buf, size_t len);
/* The backend's name ("sqlite" | "postgres"); never NULL. */
const char *hd_store_backend_name(const hd_store_t *st);
/* Fills out with a snapshot of the queue and transaction statistics for /health; 0. Any open handle,
 * from any thread: the figures are the shared store's (every handle's requests). */
int hd_store_health(hd_store_t *st, hd_store_health_t *out);
/* For tests: the thread that ran the last SQL statement (any handle); 0, or HD_ENOTFOUND before any. */
int hd_store_sql_thread(hd_store_t *st, uv_thread_t *out);

/* --- users ------------------------------------------------------------------------------------- */

/* Creates a user (role "admin" | "user", name 1..64 chars, display_name NULL or <= 64; demo: a demo
 * account until its password changes); HD_EEXISTS on a name taken in any letter case. */
int hd_store_user_create(hd_store_t *st, const char *name, const char *role, const char *password_hash,
                         const char *display_name, bool demo, hd_store_user_cb cb, void *arg);
/* The user with that name, password_hash included; HD_ENOTFOUND. */
int hd_store_user_get_by_name(hd_store_t *st, const char *name, hd_store_user_cb cb, void *arg);
/* The user with that id; HD_ENOTFOUND. */
int hd_store_user_get(hd_store_t *st, int64_t id, hd_store_user_cb cb, void *arg);
/* Users of a role (NULL: all), by id, at most HD_STORE_USERS_MAX. */
int hd_store_users_list(hd_store_t *st, const char *role, hd_store_users_cb cb, void *arg);

/* What hd_store_user_update changes: NULL / -1 keep a field. A new password_hash also sets
 * tokens_after to now (older tokens refused) and clears demo. */
typedef struct {
  const char *password_hash;
  const char *display_name;  /* 1..64 characters */
  int disabled;              /* -1 keep, 0 enable, 1 disable */
} hd_store_user_change_t;

/* Changes the user with that id (> 0), else that name; the updated user; HD_ENOTFOUND. */
int hd_store_user_update(hd_store_t *st, int64_t id, const char *name, const hd_store_user_change_t *change,
                         hd_store_user_cb cb, void *arg);
/* Deletes the user with that id (> 0), else that name, remembering the id as deleted (its tokens
 * are refused; ids are never reused); the user as it was; HD_ENOTFOUND. */
int hd_store_user_delete(hd_store_t *st, int64_t id, const char *name, hd_store_user_cb cb, void *arg);
/* Users whose name or display name contains query (case-insensitive for ASCII; "" = all), of a role
 * (NULL: all), by display name, at most limit (1..HD_STORE_LIST_MAX). */
int hd_store_users_search(hd_store_t *st, const char *query, const char *role, int limit, hd_store_users_cb cb,
                          void *arg);
/* Every user whose tokens may be refused (disabled, demo, tokens_after set) and every deleted id
 * (deleted set, name ""), at most HD_STORE_USERS_MAX. */
int hd_store_user_states(hd_store_t *st, hd_store_users_cb cb, void *arg);
/* The users with these ids (1..HD_STORE_LIST_MAX of them, > 0), by id; ids that name nobody are absent. */
int hd_store_users_get_many(hd_store_t *st, const int64_t *ids, size_t n, hd_store_users_cb cb, void *arg);
/* A counter that grows with every change to the users (from any process sharing the database). */
int hd_store_users_version(hd_store_t *st, hd_store_count_cb cb, void *arg);

/* --- notifications ----------------------------------------------------------------------------- */

typedef struct {
  const char *type;          /* 1..HD_STORE_TYPE_MAX chars, e.g. "info" */
  const char *title;         /* 1..HD_STORE_TITLE_MAX chars */
  const char *content;       /* 0..HD_STORE_CONTENT_MAX chars */
  const char *link;          /* NULL or <= HD_STORE_LINK_MAX chars */
  int64_t sender_id;         /* 0: none */
  int64_t target_user_id;    /* 0: broadcast to every admin */
} hd_store_notification_new_t;

/* Stores a notification (the struct and its strings are copied). A target must be an admin of
 * this database: HD_ENOTFOUND (no such user), HD_ERANGE (not an admin). A broadcast with a sender
 * is stored read for that sender. */
int hd_store_notification_create(hd_store_t *st, const hd_store_notification_new_t *n,
                                 hd_store_notification_cb cb, void *arg);
/* The notifications visible to admin_id (targeted at them or broadcast) with id < before_id
 * (0: from the newest), newest first, at most limit (1..100), only unread ones when unread_only. */
int hd_store_notifications_list(hd_store_t *st, int64_t admin_id, bool unread_only, int limit, int64_t before_id,
                                hd_store_notifications_cb cb, void *arg);
/* How many notifications visible to admin_id they have not read. */
int hd_store_notifications_unread_count(hd_store_t *st, int64_t admin_id, hd_store_count_cb cb, void *arg);
/* Marks one notification read for admin_id (idempotent: changed is false the second time);
 * HD_ENOTFOUND when it does not exist or is not visible to that admin. */
int hd_store_notification_mark_read(hd_store_t *st, int64_t admin_id, int64_t notification_id,
                                    hd_store_notification_read_cb cb, void *arg);
/* Marks every notification visible to admin_id read; count is how many changed. */
int hd_store_notifications_mark_all_read(hd_store_t *st, int64_t admin_id, hd_store_count_cb cb, void *arg);

/* --- customer service -------------------------------------------------------------------------- */

/* Opens a "waiting" session for user_id with its first message (sender role "user") in one transaction. */
int hd_store_session_create(hd_store_t *st, int64_t user_id, const char *content, const char *message_type,
                            int priority, hd_store_chat_post_cb cb, void *arg);
/* The same, refused with HD_ERANGE (nothing written) when user_id already has max_open sessions
 * that are not closed (0 = no cap); counted and inserted in one transaction. */
int hd_store_session_create_capped(hd_store_t *st, int64_t user_id, const char *content, const char *message_type,
                                   int priority, int max_open, hd_store_chat_post_cb cb, void *arg);
/* The session with that id; HD_ENOTFOUND. */
int hd_store_session_get(hd_store_t *st, int64_t session_id, hd_store_session_cb cb, void *arg);
/* Sessions visible to the viewer, most recently updated first: a "user" sees their own, an "admin"
 * those assigned to them plus the waiting ones. status: NULL or "waiting" | "active" | "closed". */
int hd_store_sessions_list(hd_store_t *st, int64_t viewer_id, const char *viewer_role, const char *status, int limit,
                           hd_store_sessions_cb cb, void *arg);
/* Assigns (or transfers) a session to admin_id, status "active"; HD_ENOTFOUND, HD_EINVAL when closed. */
int hd_store_session_assign(hd_store_t *st, int64_t session_id, int64_t admin_id, hd_store_session_cb cb, void *arg);
/* Closes a session (status "closed", closed_at); an already closed one comes back unchanged, changed false. */
int hd_store_session_close(hd_store_t *st, int64_t session_id, hd_store_session_close_cb cb, void *arg);
/* Assigns a session to admin_id only if it is still waiting and unassigned (automatic assignment:
 * whichever node or request claims it first wins, the others get HD_EEXISTS, also while another
 * node's transaction holds the session: a later assignment round picks it up if that one did not
 * take it); the updated session; HD_ENOTFOUND, HD_EINVAL when it is closed. */
int hd_store_session_claim(hd_store_t *st, int64_t session_id, int64_t admin_id, hd_store_session_cb cb, void *arg);
/* Waiting sessions, oldest first. */
int hd_store_sessions_waiting(hd_store_t *st, int limit, hd_store_sessions_cb cb, void *arg);
/* Active-session counts per admin, for least-loaded assignment (admins with none are absent). */
int hd_store_admin_open_session_counts(hd_store_t *st, hd_store_admin_loads_cb cb, void *arg);
/* Stores a message and updates the session (preview, times, the other side's unread count);
 * HD_ENOTFOUND, HD_EINVAL when the session is closed. */
int hd_store_message_create(hd_store_t *st, int64_t session_id, int64_t sender_id, const char *sender_role,
                            const char *content, const char *message_type, hd_store_chat_post_cb cb, void *arg);
/* A session's messages with id < before_id (0: from the newest), newest first; HD_ENOTFOUND. */
int hd_store_messages_list(hd_store_t *st, int64_t session_id, int64_t before_id, int limit,
                           hd_store_messages_cb cb, void *arg);
/* Sets a session's priority (1..HD_STORE_PRIORITY_MAX; an admin's decision), updated_at now; the
 * updated session; HD_ENOTFOUND. */
int hd_store_session_set_priority(hd_store_t *st, int64_t session_id, int priority, hd_store_session_cb cb, void *arg);
/* Resets the reader side's ("user" | "admin") unread count; the updated session; HD_ENOTFOUND. */
int hd_store_session_mark_read(hd_store_t *st, int64_t session_id, const char *reader_role,
                               hd_store_session_cb cb, void *arg);

/* --- JSON-protocol inbox (durable unacknowledged notifications) -------------------------------- */

/* Keeps frame (frame_len bytes of text) for user_sub under message_id (a duplicate is ignored), then
 * drops that user's oldest entries beyond cap (1..HD_STORE_INBOX_CAP_MAX). */
int hd_store_inbox_put(hd_store_t *st, const char *user_sub, const char *message_id, const char *frame,
                       size_t frame_len, int64_t cap, hd_store_inbox_put_cb cb, void *arg);
/* One inbox entry of hd_store_inbox_put_many. */
typedef struct {
  const char *user_sub, *message_id, *frame;
  size_t frame_len;
} hd_store_inbox_entry_t;
/* Puts `count` entries (1..HD_STORE_BATCH_MAX, each as hd_store_inbox_put would, same cap) in one
 * request: one publish to many users is one write. cb gets how many were new and how many old ones
 * went. */
int hd_store_inbox_put_many(hd_store_t *st, const hd_store_inbox_entry_t *items, size_t count, int64_t cap,
                            hd_store_inbox_puts_cb cb, void *arg);
/* Everything kept for user_sub, oldest first (not removed). */
int hd_store_inbox_take(hd_store_t *st, const char *user_sub, hd_store_inbox_cb cb, void *arg);
/* The same, at most limit entries (the oldest; 1..HD_STORE_INBOX_CAP_MAX): a page. */
int hd_store_inbox_take_page(hd_store_t *st, const char *user_sub, int64_t limit, hd_store_inbox_cb cb, void *arg);
/* Removes one entry (acknowledged); count is 1, or 0 when it was not there. */
int hd_store_inbox_remove(hd_store_t *st, const char *user_sub, const char *message_id, hd_store_count_cb cb,
                          void *arg);

/* --- JSON-protocol topic history of a single node (kept across restarts) ------------------------ */

/* One kept topic message: its topic, sequence, time and entry text (delivery/topic_entry.h). */
typedef struct {
  const char *topic;
  int64_t seq, created_at;
  const char *entry;
  size_t entry_len;
} hd_store_topic_entry_t;

struct hd_store_topics {
  const hd_store_topic_entry_t *items; /* by topic, then sequence */
  size_t count;
  bool clean;                /* the last save before this load was a graceful stop's */
};

/* Keeps `count` entries (0..HD_STORE_BATCH_MAX; a duplicate (topic, seq) is ignored), then drops
 * the oldest of their topics beyond keep (1..1000000) and every entry older than min_created_at;
 * records whether this is a graceful stop's last save (clean). cb gets how many were new. */
int hd_store_topics_save(hd_store_t *st, const hd_store_topic_entry_t *items, size_t count, int64_t keep,
                         int64_t min_created_at, bool clean, hd_store_count_cb cb, void *arg);
/* Drops entries older than min_created_at, then answers every kept entry (at most HD_STORE_TOPICS_MAX,
 * the newest first when over) by topic and sequence, with the clean mark, which it clears. */
int hd_store_topics_load(hd_store_t *st, int64_t min_created_at, hd_store_topics_cb cb, void *arg);

/* --- retention -------------------------------------------------------------------------------- */

typedef enum {
  HD_STORE_PRUNE_NOTIFICATIONS,  /* notifications created before `before` (their read state with them) */
  HD_STORE_PRUNE_CHAT_MESSAGES,  /* messages of sessions closed before `before` */
  HD_STORE_PRUNE_CHAT_SESSIONS,  /* sessions closed before `before` that have no message left */
} hd_store_prune_t;

/* Deletes at most limit (1..HD_STORE_PRUNE_MAX) rows of that kind, oldest first; count is how many. */
int hd_store_prune(hd_store_t *st, hd_store_prune_t what, int64_t before, int limit, hd_store_count_cb cb, void *arg);

#endif
