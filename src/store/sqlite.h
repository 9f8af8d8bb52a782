/* Internals of the SQLite backend shared by its files (sqlite.c: connection, transactions,
 * migrations, dispatch; sqlite_<domain>.c: one file per domain's operations). Runs on the store
 * thread only. Every statement is prepared once from constant SQL, cached under its id, and bound
 * with parameters; statements taken during a request are reset when the request ends. */
#ifndef HD_STORE_SQLITE_H
#define HD_STORE_SQLITE_H

#include <sqlite3.h>

#include "store/backend.h"

typedef struct hd_sqlite hd_sqlite_t;

/* Cached statement ids. */
enum {
  HD_SQL_BEGIN,
  HD_SQL_BEGIN_IMMEDIATE,
  HD_SQL_COMMIT,
  HD_SQL_ROLLBACK,
  HD_SQL_SAVEPOINT,
  HD_SQL_RELEASE,
  HD_SQL_ROLLBACK_TO,
  HD_SQL_USER_INSERT,
  HD_SQL_USER_BY_NAME,
  HD_SQL_USER_BY_ID,
  HD_SQL_USERS_ALL,
  HD_SQL_USERS_ROLE,
  HD_SQL_USER_ID_BY_NAME,
  HD_SQL_USER_UPDATE,
  HD_SQL_USER_DELETE,
  HD_SQL_USER_TOMBSTONE,
  HD_SQL_USERS_SEARCH,
  HD_SQL_USER_STATES,
  HD_SQL_USERS_VERSION,
  HD_SQL_NOTIFICATION_INSERT,
  HD_SQL_NOTIFICATION_TARGET,
  HD_SQL_USERS_BY_IDS,
  HD_SQL_NOTIFICATIONS_LIST,
  HD_SQL_NOTIFICATIONS_UNREAD,
  HD_SQL_NOTIFICATION_VISIBLE,
  HD_SQL_NOTIFICATION_READ,
  HD_SQL_NOTIFICATIONS_READ_ALL,
  HD_SQL_SESSION_INSERT,
  HD_SQL_SESSIONS_OPEN_COUNT,
  HD_SQL_SESSION_BY_ID,
  HD_SQL_SESSIONS_OF_USER,
  HD_SQL_SESSIONS_OF_ADMIN,
  HD_SQL_SESSION_ASSIGN,
  HD_SQL_SESSION_CLAIM,
  HD_SQL_SESSION_CLOSE,
  HD_SQL_SESSIONS_WAITING,
  HD_SQL_ADMIN_LOADS,
  HD_SQL_SESSION_POST,
  HD_SQL_MESSAGE_INSERT,
  HD_SQL_MESSAGES_LIST,
  HD_SQL_SESSION_READ_USER,
  HD_SQL_SESSION_PRIORITY,
  HD_SQL_SESSION_READ_ADMIN,
  HD_SQL_INBOX_INSERT,
  HD_SQL_INBOX_TRIM,
  HD_SQL_INBOX_TAKE,
  HD_SQL_INBOX_DELETE,
  HD_SQL_TOPIC_INSERT,
  HD_SQL_TOPIC_TRIM,
  HD_SQL_TOPIC_EXPIRE,
  HD_SQL_TOPIC_STATE_SET,
  HD_SQL_TOPIC_STATE_GET,
  HD_SQL_TOPIC_ALL,
  HD_SQL_PRUNE_NOTIFICATIONS,
  HD_SQL_PRUNE_CHAT_MESSAGES,
  HD_SQL_PRUNE_CHAT_SESSIONS,
  HD_SQL_COUNT
};

/* The cached statement `id` (prepared from sql on first use), reset and unbound; NULL on failure (logged). */
sqlite3_stmt *hd_sqlite_stmt(hd_sqlite_t *s, int id, const char *sql);
/* One sqlite3_step, counted: SQLITE_ROW, SQLITE_DONE or an error code. */
int hd_sqlite_step(hd_sqlite_t *s, sqlite3_stmt *stmt);
/* Steps to the end of a statement that returns no rows; 0 or HD_E*. */
int hd_sqlite_run(hd_sqlite_t *s, sqlite3_stmt *stmt);
/* The HD_E* code for an SQLite result code (constraint: HD_EEXISTS / HD_EINVAL, busy: HD_EBUSY, else HD_EIO). */
int hd_sqlite_error(hd_sqlite_t *s, int rc);
/* Rows changed by the last INSERT, UPDATE or DELETE. */
int64_t hd_sqlite_changes(hd_sqlite_t *s);
/* The rowid of the last INSERT. */
int64_t hd_sqlite_last_id(hd_sqlite_t *s);

/* Binds text (NULL: SQL NULL); the text must stay put until the request ends (arena strings do). */
int hd_sqlite_bind_text(sqlite3_stmt *stmt, int i, const char *text);
/* Binds an id, 0 as SQL NULL. */
int hd_sqlite_bind_id(sqlite3_stmt *stmt, int i, int64_t id);
/* Column text copied into the request's arena; NULL for SQL NULL. Out of memory, it sets r->oom
 * (the request then fails with HD_ENOMEM) and returns "". len, when not NULL, gets the byte length. */
const char *hd_sqlite_text(hd_store_req_t *r, sqlite3_stmt *stmt, int col, size_t *len);
/* An integer column, SQL NULL as 0. */
int64_t hd_sqlite_int(sqlite3_stmt *stmt, int col);

/* The operations, one per hd_store_op_t; each fills r->out and returns 0 or HD_E*. */
int hd_sqlite_user_create(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_user_get(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_users_list(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_user_update(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_user_delete(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_users_search(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_user_states(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_users_version(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_users_get_many(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_notification_create(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_notifications_list(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_notifications_unread(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_notification_mark_read(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_notifications_mark_all(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_session_create(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_session_get(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_sessions_list(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_session_assign(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_session_claim(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_session_close(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_sessions_waiting(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_admin_loads(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_message_create(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_messages_list(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_session_mark_read(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_session_set_priority(hd_sqlite_t *s, hd_store_req_t *r);
/* The backend's inbox_put_one (backend.h). */
int hd_sqlite_inbox_put_one(hd_sqlite_t *s, const hd_store_inbox_entry_t *e, int64_t cap, bool *inserted, int64_t *dropped);
/* The backend's topic_insert, topic_trim, topics_saved (backend.h). */
int hd_sqlite_topic_insert(hd_sqlite_t *s, const hd_store_topic_entry_t *e, bool *inserted);
int hd_sqlite_topic_trim(hd_sqlite_t *s, const char *topic, int64_t keep);
int hd_sqlite_topics_saved(hd_sqlite_t *s, int64_t min_created_at, bool clean);
int hd_sqlite_topics_load(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_inbox_take(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_inbox_remove(hd_sqlite_t *s, hd_store_req_t *r);
int hd_sqlite_prune(hd_sqlite_t *s, hd_store_req_t *r);

#endif
