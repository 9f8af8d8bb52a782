/* SQLite backend, customer-service chat: sessions (waiting -> active -> closed) and their
 * messages. Posting a message updates its session in the same savepoint: the preview, the times
 * and the unread counter of the other side; a closed session takes no more messages. */
#include <stdint.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "store/sqlite.h"

#define SESSION_COLS                                                                                       \
  "id, user_id, admin_id, status, priority, last_message, last_message_at, user_unread, admin_unread, " \
  "created_at, updated_at, closed_at"
#define MESSAGE_COLS "id, session_id, sender_id, sender_role, content, message_type, created_at"

/* Fills x from a row of SESSION_COLS. */
static void read_session(hd_store_req_t *r, sqlite3_stmt *stmt, hd_store_session_t *x) {
  x->id = hd_sqlite_int(stmt, 0);
  x->user_id = hd_sqlite_int(stmt, 1);
  x->admin_id = hd_sqlite_int(stmt, 2);
  x->status = hd_sqlite_text(r, stmt, 3, NULL);
  x->priority = (int)hd_sqlite_int(stmt, 4);
  x->last_message = hd_sqlite_text(r, stmt, 5, NULL);
  x->last_message_at = hd_sqlite_int(stmt, 6);
  x->user_unread = hd_sqlite_int(stmt, 7);
  x->admin_unread = hd_sqlite_int(stmt, 8);
  x->created_at = hd_sqlite_int(stmt, 9);
  x->updated_at = hd_sqlite_int(stmt, 10);
  x->closed_at = hd_sqlite_int(stmt, 11);
}

/* Steps a statement returning at most one session row into *x: 0, HD_ENOTFOUND or HD_E*. */
static int one_session(hd_sqlite_t *s, hd_store_req_t *r, sqlite3_stmt *stmt, hd_store_session_t *x) {
  int rc = hd_sqlite_step(s, stmt);
  if (rc == SQLITE_DONE) return HD_ENOTFOUND;
  if (rc != SQLITE_ROW) return hd_sqlite_error(s, rc);
  read_session(r, stmt, x);
  return 0;
}

/* Reads session id into *x: 0, HD_ENOTFOUND or HD_E*. */
static int get_session(hd_sqlite_t *s, hd_store_req_t *r, int64_t id, hd_store_session_t *x) {
  sqlite3_stmt *stmt =
      hd_sqlite_stmt(s, HD_SQL_SESSION_BY_ID, "SELECT " SESSION_COLS " FROM chat_sessions WHERE id = ?1");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, id);
  return one_session(s, r, stmt, x);
}

/* Reads every row of a session list into r->out.sessions. */
static int list_sessions(hd_sqlite_t *s, hd_store_req_t *r, sqlite3_stmt *stmt) {
  hd_store_sessions_t *out = &r->out.sessions;
  int rc;
  while ((rc = hd_sqlite_step(s, stmt)) == SQLITE_ROW) {
    hd_store_session_t *x = hd_store_req_list(r, sizeof *x, &out->count);
    if (!x) return HD_ENOMEM;
    read_session(r, stmt, x);
  }
  out->items = r->list;
  return rc == SQLITE_DONE ? 0 : hd_sqlite_error(s, rc);
}

/* Inserts a message; fills *m (strings from the request's inputs). */
static int insert_message(hd_sqlite_t *s, hd_store_req_t *r, int64_t session_id, int64_t sender_id, const char *role,
                          int64_t now, hd_store_message_t *m) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_MESSAGE_INSERT,
                                      "INSERT INTO chat_messages (session_id, sender_id, sender_role, content, "
                                      "message_type, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, session_id);
  sqlite3_bind_int64(stmt, 2, sender_id);
  hd_sqlite_bind_text(stmt, 3, role);
  hd_sqlite_bind_text(stmt, 4, r->in.chat.content);
  hd_sqlite_bind_text(stmt, 5, r->in.chat.message_type);
  sqlite3_bind_int64(stmt, 6, now);
  int rc = hd_sqlite_run(s, stmt);
  if (rc) return rc;
  *m = (hd_store_message_t){
      .id = hd_sqlite_last_id(s),
      .session_id = session_id,
      .sender_id = sender_id,
      .sender_role = role,
      .content = r->in.chat.content,
      .message_type = r->in.chat.message_type,
      .created_at = now,
  };
  return 0;
}

/* HD_ERANGE when the user already has r->in.chat.limit sessions not closed (limit 0: no cap). */
static int open_sessions_capped(hd_sqlite_t *s, hd_store_req_t *r) {
  if (r->in.chat.limit <= 0) return 0;
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_SESSIONS_OPEN_COUNT,
                                      "SELECT count(*) FROM chat_sessions WHERE user_id = ?1 AND status != 'closed'");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.chat.user_id);
  int rc = hd_sqlite_step(s, stmt);
  if (rc != SQLITE_ROW) return hd_sqlite_error(s, rc);
  return sqlite3_column_int64(stmt, 0) >= r->in.chat.limit ? HD_ERANGE : 0;
}

int hd_sqlite_session_create(hd_sqlite_t *s, hd_store_req_t *r) {
  int capped = open_sessions_capped(s, r);
  if (capped) return capped;
  sqlite3_stmt *stmt = hd_sqlite_stmt(
      s, HD_SQL_SESSION_INSERT,
      "INSERT INTO chat_sessions (user_id, status, priority, last_message, last_message_at, user_unread, "
      "admin_unread, created_at, updated_at) VALUES (?1, 'waiting', ?2, substr(?3, 1, ?4), ?5, 0, 1, ?5, ?5) "
      "RETURNING " SESSION_COLS);
  if (!stmt) return HD_EIO;
  int64_t now = hd_clock_wall_ms();
  hd_store_chat_post_t *out = &r->out.chat_post;
  sqlite3_bind_int64(stmt, 1, r->in.chat.user_id);
  sqlite3_bind_int(stmt, 2, r->in.chat.priority);
  hd_sqlite_bind_text(stmt, 3, r->in.chat.content);
  sqlite3_bind_int(stmt, 4, HD_STORE_PREVIEW_MAX);
  sqlite3_bind_int64(stmt, 5, now);
  int rc = one_session(s, r, stmt, &out->session);
  if (rc) return rc == HD_ENOTFOUND ? HD_EIO : rc;
  return insert_message(s, r, out->session.id, r->in.chat.user_id, "user", now, &out->message);
}

int hd_sqlite_session_get(hd_sqlite_t *s, hd_store_req_t *r) {
  return get_session(s, r, r->in.chat.session_id, &r->out.session);
}

int hd_sqlite_sessions_list(hd_sqlite_t *s, hd_store_req_t *r) {
  bool admin = !strcmp(r->in.chat.role, "admin");
  sqlite3_stmt *stmt =
      admin ? hd_sqlite_stmt(s, HD_SQL_SESSIONS_OF_ADMIN,
                             "SELECT * FROM ("
                             "  SELECT " SESSION_COLS " FROM chat_sessions WHERE admin_id = ?1 AND "
                             "  (?2 IS NULL OR status = ?2) ORDER BY updated_at DESC, id DESC LIMIT ?3) "
                             "UNION ALL SELECT * FROM ("
                             "  SELECT " SESSION_COLS " FROM chat_sessions WHERE status = 'waiting' AND "
                             "  admin_id IS NULL AND (?2 IS NULL OR ?2 = 'waiting') "
                             "  ORDER BY updated_at DESC, id DESC LIMIT ?3) "
                             "ORDER BY updated_at DESC, id DESC LIMIT ?3")
            : hd_sqlite_stmt(s, HD_SQL_SESSIONS_OF_USER,
                             "SELECT " SESSION_COLS " FROM chat_sessions "
                             "WHERE user_id = ?1 AND (?2 IS NULL OR status = ?2) "
                             "ORDER BY updated_at DESC, id DESC LIMIT ?3");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.chat.user_id);
  hd_sqlite_bind_text(stmt, 2, r->in.chat.status);
  sqlite3_bind_int(stmt, 3, r->in.chat.limit);
  return list_sessions(s, r, stmt);
}

int hd_sqlite_session_assign(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_SESSION_ASSIGN,
                                      "UPDATE chat_sessions SET admin_id = ?2, status = 'active', updated_at = ?3 "
                                      "WHERE id = ?1 AND status <> 'closed' RETURNING " SESSION_COLS);
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.chat.session_id);
  sqlite3_bind_int64(stmt, 2, r->in.chat.admin_id);
  sqlite3_bind_int64(stmt, 3, hd_clock_wall_ms());
  int rc = one_session(s, r, stmt, &r->out.session);
  if (rc != HD_ENOTFOUND) return rc;
  rc = get_session(s, r, r->in.chat.session_id, &r->out.session); /* missing, or closed */
  return rc ? rc : HD_EINVAL;
}

int hd_sqlite_session_claim(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_SESSION_CLAIM,
                                      "UPDATE chat_sessions SET admin_id = ?2, status = 'active', updated_at = ?3 "
                                      "WHERE id = ?1 AND status = 'waiting' AND admin_id IS NULL "
                                      "RETURNING " SESSION_COLS);
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.chat.session_id);
  sqlite3_bind_int64(stmt, 2, r->in.chat.admin_id);
  sqlite3_bind_int64(stmt, 3, hd_clock_wall_ms());
  int rc = one_session(s, r, stmt, &r->out.session);
  if (rc != HD_ENOTFOUND) return rc;
  rc = get_session(s, r, r->in.chat.session_id, &r->out.session); /* missing, closed, or taken */
  return rc ? rc : !strcmp(r->out.session.status, "closed") ? HD_EINVAL : HD_EEXISTS;
}

int hd_sqlite_session_close(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_SESSION_CLOSE,
                                      "UPDATE chat_sessions SET status = 'closed', closed_at = ?2, updated_at = ?2 "
                                      "WHERE id = ?1 AND status <> 'closed' RETURNING " SESSION_COLS);
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.chat.session_id);
  sqlite3_bind_int64(stmt, 2, hd_clock_wall_ms());
  hd_store_session_close_t *out = &r->out.session_close;
  int rc = one_session(s, r, stmt, &out->session);
  out->changed = rc == 0;
  if (rc != HD_ENOTFOUND) return rc;
  return get_session(s, r, r->in.chat.session_id, &out->session); /* missing, or already closed */
}

int hd_sqlite_sessions_waiting(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_SESSIONS_WAITING,
                                      "SELECT " SESSION_COLS " FROM chat_sessions WHERE status = 'waiting' "
                                      "ORDER BY created_at, id LIMIT ?1");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int(stmt, 1, r->in.chat.limit);
  return list_sessions(s, r, stmt);
}

int hd_sqlite_admin_loads(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_ADMIN_LOADS,
                                      "SELECT admin_id, count(*) FROM chat_sessions "
                                      "WHERE status = 'active' AND admin_id IS NOT NULL "
                                      "GROUP BY admin_id ORDER BY admin_id");
  if (!stmt) return HD_EIO;
  hd_store_admin_loads_t *out = &r->out.admin_loads;
  int rc;
  while ((rc = hd_sqlite_step(s, stmt)) == SQLITE_ROW) {
    hd_store_admin_load_t *l = hd_store_req_list(r, sizeof *l, &out->count);
    if (!l) return HD_ENOMEM;
    l->admin_id = hd_sqlite_int(stmt, 0);
    l->open_count = hd_sqlite_int(stmt, 1);
  }
  out->items = r->list;
  return rc == SQLITE_DONE ? 0 : hd_sqlite_error(s, rc);
}

int hd_sqlite_message_create(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(
      s, HD_SQL_SESSION_POST,
      "UPDATE chat_sessions SET last_message = substr(?2, 1, ?3), last_message_at = ?4, updated_at = ?4, "
      "user_unread = user_unread + (?5 = 'admin'), admin_unread = admin_unread + (?5 = 'user') "
      "WHERE id = ?1 AND status <> 'closed' RETURNING " SESSION_COLS);
  if (!stmt) return HD_EIO;
  int64_t now = hd_clock_wall_ms();
  hd_store_chat_post_t *out = &r->out.chat_post;
  sqlite3_bind_int64(stmt, 1, r->in.chat.session_id);
  hd_sqlite_bind_text(stmt, 2, r->in.chat.content);
  sqlite3_bind_int(stmt, 3, HD_STORE_PREVIEW_MAX);
  sqlite3_bind_int64(stmt, 4, now);
  hd_sqlite_bind_text(stmt, 5, r->in.chat.role);
  int rc = one_session(s, r, stmt, &out->session);
  if (rc == HD_ENOTFOUND) {
    rc = get_session(s, r, r->in.chat.session_id, &out->session); /* missing, or closed */
    return rc ? rc : HD_EINVAL;
  }
  if (rc) return rc;
  return insert_message(s, r, r->in.chat.session_id, r->in.chat.sender_id, r->in.chat.role, now, &out->message);
}

int hd_sqlite_messages_list(hd_sqlite_t *s, hd_store_req_t *r) {
  hd_store_session_t session;
  int rc = get_session(s, r, r->in.chat.session_id, &session);
  if (rc) return rc;
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_MESSAGES_LIST,
                                      "SELECT " MESSAGE_COLS " FROM chat_messages WHERE session_id = ?1 AND id < ?2 "
                                      "ORDER BY id DESC LIMIT ?3");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.chat.session_id);
  sqlite3_bind_int64(stmt, 2, r->in.chat.before_id ? r->in.chat.before_id : INT64_MAX);
  sqlite3_bind_int(stmt, 3, r->in.chat.limit);
  hd_store_messages_t *out = &r->out.messages;
  while ((rc = hd_sqlite_step(s, stmt)) == SQLITE_ROW) {
    hd_store_message_t *m = hd_store_req_list(r, sizeof *m, &out->count);
    if (!m) return HD_ENOMEM;
    m->id = hd_sqlite_int(stmt, 0);
    m->session_id = hd_sqlite_int(stmt, 1);
    m->sender_id = hd_sqlite_int(stmt, 2);
    m->sender_role = hd_sqlite_text(r, stmt, 3, NULL);
    m->content = hd_sqlite_text(r, stmt, 4, NULL);
    m->message_type = hd_sqlite_text(r, stmt, 5, NULL);
    m->created_at = hd_sqlite_int(stmt, 6);
  }
  out->items = r->list;
  return rc == SQLITE_DONE ? 0 : hd_sqlite_error(s, rc);
}

int hd_sqlite_session_mark_read(hd_sqlite_t *s, hd_store_req_t *r) {
  bool admin = !strcmp(r->in.chat.role, "admin");
  sqlite3_stmt *stmt =
      admin ? hd_sqlite_stmt(s, HD_SQL_SESSION_READ_ADMIN,
                             "UPDATE chat_sessions SET admin_unread = 0 WHERE id = ?1 RETURNING " SESSION_COLS)
            : hd_sqlite_stmt(s, HD_SQL_SESSION_READ_USER,
                             "UPDATE chat_sessions SET user_unread = 0 WHERE id = ?1 RETURNING " SESSION_COLS);
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.chat.session_id);
  return one_session(s, r, stmt, &r->out.session);
}

int hd_sqlite_session_set_priority(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_SESSION_PRIORITY,
                                      "UPDATE chat_sessions SET priority = ?2, updated_at = ?3 WHERE id = ?1 RETURNING " SESSION_COLS);
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.chat.session_id);
  sqlite3_bind_int(stmt, 2, r->in.chat.priority);
  sqlite3_bind_int64(stmt, 3, hd_clock_wall_ms());
  return one_session(s, r, stmt, &r->out.session);
}
