/* Internals of the PostgreSQL backend shared by its files (pg.c: connection, reconnection,
 * prepared statements, transactions, dispatch; pg_schema.c: migrations under an advisory lock;
 * pg_<domain>.c: one file per domain's operations, the same ones as the SQLite backend's). Runs on
 * the store thread only. Every statement is constant SQL prepared once per connection under its id;
 * user data is always passed as parameters. */
#ifndef HD_STORE_PG_H
#define HD_STORE_PG_H

#include <libpq-fe.h>

#include "store/backend.h"

typedef struct hd_pg hd_pg_t;

/* Prepared statement ids. */
enum {
  HD_PG_USER_INSERT,
  HD_PG_USER_BY_NAME,
  HD_PG_USER_BY_ID,
  HD_PG_USERS_ALL,
  HD_PG_USERS_ROLE,
  HD_PG_USER_UPDATE,
  HD_PG_USER_DELETE,
  HD_PG_USERS_SEARCH,
  HD_PG_USER_STATES,
  HD_PG_USERS_VERSION,
  HD_PG_USERS_BY_IDS,
  HD_PG_NOTIFICATION_TARGET,
  HD_PG_NOTIFICATION_INSERT,
  HD_PG_NOTIFICATIONS_LIST,
  HD_PG_NOTIFICATIONS_UNREAD,
  HD_PG_NOTIFICATION_READ,
  HD_PG_NOTIFICATIONS_READ_ALL,
  HD_PG_SESSION_INSERT,
  HD_PG_SESSIONS_OPEN_LOCK,
  HD_PG_SESSIONS_OPEN_COUNT,
  HD_PG_SESSION_BY_ID,
  HD_PG_SESSIONS_OF_USER,
  HD_PG_SESSIONS_OF_ADMIN,
  HD_PG_SESSION_ASSIGN,
  HD_PG_SESSION_CLAIM,
  HD_PG_SESSION_CLOSE,
  HD_PG_SESSIONS_WAITING,
  HD_PG_ADMIN_LOADS,
  HD_PG_SESSION_POST,
  HD_PG_MESSAGE_INSERT,
  HD_PG_MESSAGES_LIST,
  HD_PG_SESSION_READ_USER,
  HD_PG_SESSION_PRIORITY,
  HD_PG_SESSION_READ_ADMIN,
  HD_PG_INBOX_INSERT,
  HD_PG_INBOX_TRIM,
  HD_PG_INBOX_TAKE,
  HD_PG_INBOX_DELETE,
  HD_PG_PRUNE_NOTIFICATIONS,
  HD_PG_PRUNE_CHAT_MESSAGES,
  HD_PG_PRUNE_CHAT_SESSIONS,
  HD_PG_TOPIC_INSERT,
  HD_PG_TOPIC_TRIM,
  HD_PG_TOPIC_EXPIRE,
  HD_PG_TOPIC_STATE_SET,
  HD_PG_TOPIC_STATE_GET,
  HD_PG_TOPIC_ALL,
  HD_PG_COUNT
};

#define HD_PG_PARAMS_MAX 8

/* The parameters of one statement: text values (or bytes in binary format), owned by the caller
 * or formatted into buf. */
typedef struct {
  int n;
  const char *values[HD_PG_PARAMS_MAX];
  int lengths[HD_PG_PARAMS_MAX];
  int formats[HD_PG_PARAMS_MAX];
  char buf[HD_PG_PARAMS_MAX][24];
} hd_pg_params_t;

/* Appends an integer parameter. */
void hd_pg_int(hd_pg_params_t *p, int64_t v);
/* Appends an id parameter, 0 as SQL NULL. */
void hd_pg_id(hd_pg_params_t *p, int64_t id);
/* Appends a text parameter (NULL: SQL NULL); the text must outlive the statement. */
void hd_pg_text(hd_pg_params_t *p, const char *text);
/* Appends a boolean parameter. */
void hd_pg_bool(hd_pg_params_t *p, bool v);
/* Appends len bytes for a bytea parameter (binary format). */
void hd_pg_bytes(hd_pg_params_t *p, const char *bytes, size_t len);

/* Runs the prepared statement `id` (preparing it from sql on this connection first). 0 with *res
 * set (free it with PQclear), or HD_E* (*res NULL): HD_EEXISTS for a unique violation, HD_EINVAL for
 * other constraint and data errors, HD_EBUSY for serialization failures, deadlocks and a lost
 * connection, else HD_EIO (logged). */
int hd_pg_exec(hd_pg_t *s, int id, const char *sql, const hd_pg_params_t *p, PGresult **res);
/* Runs a statement that returns no rows; 0 or HD_E*; *changed (when not NULL) gets the rows changed. */
int hd_pg_run(hd_pg_t *s, int id, const char *sql, const hd_pg_params_t *p, int64_t *changed);

/* An integer cell, SQL NULL as 0. */
int64_t hd_pg_get_int(const PGresult *res, int row, int col);
/* A boolean cell. */
bool hd_pg_get_bool(const PGresult *res, int row, int col);
/* A text cell copied into the request's arena; NULL for SQL NULL. Out of memory, it sets r->oom (the
 * request then fails with HD_ENOMEM) and returns "". */
const char *hd_pg_get_text(hd_store_req_t *r, const PGresult *res, int row, int col);
/* A bytea cell (text format) decoded into the request's arena, NUL-terminated, *len its byte length. */
const char *hd_pg_get_bytes(hd_store_req_t *r, const PGresult *res, int row, int col, size_t *len);

/* The connection (for migrations). */
PGconn *hd_pg_conn(hd_pg_t *s);
/* Counts one statement run (for the statistics). */
void hd_pg_count_statement(hd_pg_t *s);
/* Applies every missing migration while holding the migration advisory lock (pg_schema.c);
 * *applied gets their number, *version the schema version after. 0 or HD_E* with a message in err. */
int hd_pg_migrate(hd_pg_t *s, int *applied, int *version, char *err, size_t errlen);

/* The operations, one per hd_store_op_t; each fills r->out and returns 0 or HD_E*. */
int hd_pg_user_create(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_user_get(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_users_list(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_user_update(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_user_delete(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_users_search(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_user_states(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_users_version(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_users_get_many(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_notification_create(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_notifications_list(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_notifications_unread(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_notification_mark_read(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_notifications_mark_all(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_session_create(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_session_get(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_sessions_list(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_session_assign(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_session_claim(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_session_close(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_sessions_waiting(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_admin_loads(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_message_create(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_messages_list(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_session_mark_read(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_session_set_priority(hd_pg_t *s, hd_store_req_t *r);
/* The backend's inbox_put_one (backend.h). */
int hd_pg_inbox_put_one(hd_pg_t *s, const hd_store_inbox_entry_t *e, int64_t cap, bool *inserted, int64_t *dropped);
int hd_pg_inbox_take(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_inbox_remove(hd_pg_t *s, hd_store_req_t *r);
int hd_pg_prune(hd_pg_t *s, hd_store_req_t *r);
/* The backend's topic_insert, topic_trim, topics_saved (backend.h). */
int hd_pg_topic_insert(hd_pg_t *s, const hd_store_topic_entry_t *e, bool *inserted);
int hd_pg_topic_trim(hd_pg_t *s, const char *topic, int64_t keep);
int hd_pg_topics_saved(hd_pg_t *s, int64_t min_created_at, bool clean);
int hd_pg_topics_load(hd_pg_t *s, hd_store_req_t *r);

#endif
