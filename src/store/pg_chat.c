/* PostgreSQL backend, customer-service chat: the SQLite backend's semantics (sqlite_chat.c).
 * Sessions go waiting -> active -> closed; posting a message updates its session in the same
 * savepoint (the UPDATE takes the row lock first, so concurrent posts from other nodes queue behind
 * it); a closed session takes no more messages; a claim assigns only a session still waiting. */
#include <stdint.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "store/pg.h"

#define SESSION_COLS                                                                                       \
  "id, user_id, admin_id, status, priority, last_message, last_message_at, user_unread, admin_unread, " \
  "created_at, updated_at, closed_at"
#define MESSAGE_COLS "id, session_id, sender_id, sender_role, content, message_type, created_at"

/* Fills x from row i of SESSION_COLS. */
static void read_session(hd_store_req_t *r, const PGresult *res, int i, hd_store_session_t *x) {
  x->id = hd_pg_get_int(res, i, 0);
  x->user_id = hd_pg_get_int(res, i, 1);
  x->admin_id = hd_pg_get_int(res, i, 2);
  x->status = hd_pg_get_text(r, res, i, 3);
  x->priority = (int)hd_pg_get_int(res, i, 4);
  x->last_message = hd_pg_get_text(r, res, i, 5);
  x->last_message_at = hd_pg_get_int(res, i, 6);
  x->user_unread = hd_pg_get_int(res, i, 7);
  x->admin_unread = hd_pg_get_int(res, i, 8);
  x->created_at = hd_pg_get_int(res, i, 9);
  x->updated_at = hd_pg_get_int(res, i, 10);
  x->closed_at = hd_pg_get_int(res, i, 11);
}

/* Runs a statement returning at most one session row into *x: 0, HD_ENOTFOUND or HD_E*. */
static int one_session(hd_pg_t *s, hd_store_req_t *r, int id, const char *sql, const hd_pg_params_t *p,
                       hd_store_session_t *x) {
  PGresult *res;
  int rc = hd_pg_exec(s, id, sql, p, &res);
  if (rc) return rc;
  rc = PQntuples(res) ? 0 : HD_ENOTFOUND;
  if (!rc) read_session(r, res, 0, x);
  PQclear(res);
  return rc;
}

/* Reads session id into *x: 0, HD_ENOTFOUND or HD_E*. */
static int get_session(hd_pg_t *s, hd_store_req_t *r, int64_t id, hd_store_session_t *x) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, id);
  return one_session(s, r, HD_PG_SESSION_BY_ID, "SELECT " SESSION_COLS " FROM chat_sessions WHERE id = $1", &p, x);
}

/* Runs a session list into r->out.sessions. */
static int list_sessions(hd_pg_t *s, hd_store_req_t *r, int id, const char *sql, const hd_pg_params_t *p) {
  PGresult *res;
  int rc = hd_pg_exec(s, id, sql, p, &res);
  if (rc) return rc;
  hd_store_sessions_t *out = &r->out.sessions;
  for (int i = 0; i < PQntuples(res) && !rc; i++) {
    hd_store_session_t *x = hd_store_req_list(r, sizeof *x, &out->count);
    if (x) read_session(r, res, i, x);
    else rc = HD_ENOMEM;
  }
  out->items = r->list;
  PQclear(res);
  return rc;
}

/* Inserts a message; fills *m (strings from the request's inputs). */
static int insert_message(hd_pg_t *s, hd_store_req_t *r, int64_t session_id, int64_t sender_id, const char *role,
                          int64_t now, hd_store_message_t *m) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, session_id);
  hd_pg_int(&p, sender_id);
  hd_pg_text(&p, role);
  hd_pg_text(&p, r->in.chat.content);
  hd_pg_text(&p, r->in.chat.message_type);
  hd_pg_int(&p, now);
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_MESSAGE_INSERT,
                      "INSERT INTO chat_messages (session_id, sender_id, sender_role, content, message_type, "
                      "created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                      &p, &res);
  if (rc) return rc;
  *m = (hd_store_message_t){
      .id = hd_pg_get_int(res, 0, 0),
      .session_id = session_id,
      .sender_id = sender_id,
      .sender_role = role,
      .content = r->in.chat.content,
      .message_type = r->in.chat.message_type,
      .created_at = now,
  };
  PQclear(res);
  return 0;
}

#define OPEN_SESSIONS_LOCK "1213355331" /* first key of the per-user advisory lock ("HEREC") */

/* HD_ERANGE when the user already has r->in.chat.limit sessions not closed (limit 0: no cap). A
 * transaction-scoped advisory lock on the user makes the count and the insert one step across nodes:
 * the count runs (a new snapshot) once any other node's session for this user is committed. */
static int open_sessions_capped(hd_pg_t *s, hd_store_req_t *r) {
  if (r->in.chat.limit <= 0) return 0;
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.user_id);
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_SESSIONS_OPEN_LOCK,
                      "SELECT pg_advisory_xact_lock(" OPEN_SESSIONS_LOCK ", hashint8($1::bigint))", &p, &res);
  if (rc) return rc;
  PQclear(res);
  rc = hd_pg_exec(s, HD_PG_SESSIONS_OPEN_COUNT,
                  "SELECT count(*) FROM chat_sessions WHERE user_id = $1 AND status <> 'closed'", &p, &res);
  if (rc) return rc;
  int64_t open = hd_pg_get_int(res, 0, 0);
  PQclear(res);
  return open >= r->in.chat.limit ? HD_ERANGE : 0;
}

int hd_pg_session_create(hd_pg_t *s, hd_store_req_t *r) {
  int capped = open_sessions_capped(s, r);
  if (capped) return capped;
  int64_t now = hd_clock_wall_ms();
  hd_store_chat_post_t *out = &r->out.chat_post;
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.user_id);
  hd_pg_int(&p, r->in.chat.priority);
  hd_pg_text(&p, r->in.chat.content);
  hd_pg_int(&p, HD_STORE_PREVIEW_MAX);
  hd_pg_int(&p, now);
  int rc = one_session(s, r, HD_PG_SESSION_INSERT,
                       "INSERT INTO chat_sessions (user_id, status, priority, last_message, last_message_at, "
                       "user_unread, admin_unread, created_at, updated_at) "
                       "VALUES ($1, 'waiting', $2, substr($3, 1, $4), $5, 0, 1, $5, $5) RETURNING " SESSION_COLS,
                       &p, &out->session);
  if (rc) return rc == HD_ENOTFOUND ? HD_EIO : rc;
  return insert_message(s, r, out->session.id, r->in.chat.user_id, "user", now, &out->message);
}

int hd_pg_session_get(hd_pg_t *s, hd_store_req_t *r) {
  return get_session(s, r, r->in.chat.session_id, &r->out.session);
}

int hd_pg_sessions_list(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.user_id);
  hd_pg_text(&p, r->in.chat.status);
  hd_pg_int(&p, r->in.chat.limit);
  if (!strcmp(r->in.chat.role, "admin"))
    return list_sessions(s, r, HD_PG_SESSIONS_OF_ADMIN,
                         "SELECT * FROM ("
                         "  (SELECT " SESSION_COLS " FROM chat_sessions WHERE admin_id = $1::bigint AND "
                         "   ($2::text IS NULL OR status = $2::text) ORDER BY updated_at DESC, id DESC LIMIT $3::int)"
                         "  UNION ALL"
                         "  (SELECT " SESSION_COLS " FROM chat_sessions WHERE status = 'waiting' AND "
                         "   admin_id IS NULL AND ($2::text IS NULL OR $2::text = 'waiting') "
                         "   ORDER BY updated_at DESC, id DESC LIMIT $3::int)) x "
                         "ORDER BY updated_at DESC, id DESC LIMIT $3::int",
                         &p);
  return list_sessions(s, r, HD_PG_SESSIONS_OF_USER,
                       "SELECT " SESSION_COLS " FROM chat_sessions "
                       "WHERE user_id = $1::bigint AND ($2::text IS NULL OR status = $2::text) "
                       "ORDER BY updated_at DESC, id DESC LIMIT $3::int",
                       &p);
}

int hd_pg_session_assign(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.session_id);
  hd_pg_int(&p, r->in.chat.admin_id);
  hd_pg_int(&p, hd_clock_wall_ms());
  int rc = one_session(s, r, HD_PG_SESSION_ASSIGN,
                       "UPDATE chat_sessions SET admin_id = $2, status = 'active', updated_at = $3 "
                       "WHERE id = $1 AND status <> 'closed' RETURNING " SESSION_COLS,
                       &p, &r->out.session);
  if (rc != HD_ENOTFOUND) return rc;
  rc = get_session(s, r, r->in.chat.session_id, &r->out.session); /* missing, or closed */
  return rc ? rc : HD_EINVAL;
}

int hd_pg_session_claim(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.session_id);
  hd_pg_int(&p, r->in.chat.admin_id);
  hd_pg_int(&p, hd_clock_wall_ms());
  /* SKIP LOCKED: a row another transaction holds (another node claiming it, in a batch not yet
   * committed) is left to that one instead of waiting for it, so batches of two nodes claiming the
   * same sessions in different orders neither wait on each other nor deadlock; one of them wins */
  int rc = one_session(s, r, HD_PG_SESSION_CLAIM,
                       "UPDATE chat_sessions SET admin_id = $2, status = 'active', updated_at = $3 "
                       "WHERE id = (SELECT id FROM chat_sessions WHERE id = $1 AND status = 'waiting' AND "
                       "admin_id IS NULL FOR UPDATE SKIP LOCKED) RETURNING " SESSION_COLS,
                       &p, &r->out.session);
  if (rc != HD_ENOTFOUND) return rc;
  rc = get_session(s, r, r->in.chat.session_id, &r->out.session); /* missing, closed, taken or being taken */
  return rc ? rc : !strcmp(r->out.session.status, "closed") ? HD_EINVAL : HD_EEXISTS;
}

int hd_pg_session_close(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.session_id);
  hd_pg_int(&p, hd_clock_wall_ms());
  hd_store_session_close_t *out = &r->out.session_close;
  int rc = one_session(s, r, HD_PG_SESSION_CLOSE,
                       "UPDATE chat_sessions SET status = 'closed', closed_at = $2, updated_at = $2 "
                       "WHERE id = $1 AND status <> 'closed' RETURNING " SESSION_COLS,
                       &p, &out->session);
  out->changed = rc == 0;
  if (rc != HD_ENOTFOUND) return rc;
  return get_session(s, r, r->in.chat.session_id, &out->session); /* missing, or already closed */
}

int hd_pg_sessions_waiting(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.limit);
  return list_sessions(s, r, HD_PG_SESSIONS_WAITING,
                       "SELECT " SESSION_COLS " FROM chat_sessions WHERE status = 'waiting' "
                       "ORDER BY created_at, id LIMIT $1",
                       &p);
}

int hd_pg_admin_loads(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_ADMIN_LOADS,
                      "SELECT admin_id, count(*) FROM chat_sessions WHERE status = 'active' AND admin_id IS NOT NULL "
                      "GROUP BY admin_id ORDER BY admin_id",
                      &p, &res);
  if (rc) return rc;
  hd_store_admin_loads_t *out = &r->out.admin_loads;
  for (int i = 0; i < PQntuples(res) && !rc; i++) {
    hd_store_admin_load_t *l = hd_store_req_list(r, sizeof *l, &out->count);
    if (!l) {
      rc = HD_ENOMEM;
      break;
    }
    l->admin_id = hd_pg_get_int(res, i, 0);
    l->open_count = hd_pg_get_int(res, i, 1);
  }
  out->items = r->list;
  PQclear(res);
  return rc;
}

int hd_pg_message_create(hd_pg_t *s, hd_store_req_t *r) {
  int64_t now = hd_clock_wall_ms();
  hd_store_chat_post_t *out = &r->out.chat_post;
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.session_id);
  hd_pg_text(&p, r->in.chat.content);
  hd_pg_int(&p, HD_STORE_PREVIEW_MAX);
  hd_pg_int(&p, now);
  hd_pg_text(&p, r->in.chat.role);
  int rc = one_session(s, r, HD_PG_SESSION_POST,
                       "UPDATE chat_sessions SET last_message = substr($2, 1, $3), last_message_at = $4, "
                       "updated_at = $4, user_unread = user_unread + ($5::text = 'admin')::int, "
                       "admin_unread = admin_unread + ($5::text = 'user')::int "
                       "WHERE id = $1 AND status <> 'closed' RETURNING " SESSION_COLS,
                       &p, &out->session);
  if (rc == HD_ENOTFOUND) {
    rc = get_session(s, r, r->in.chat.session_id, &out->session); /* missing, or closed */
    return rc ? rc : HD_EINVAL;
  }
  if (rc) return rc;
  return insert_message(s, r, r->in.chat.session_id, r->in.chat.sender_id, r->in.chat.role, now, &out->message);
}

int hd_pg_messages_list(hd_pg_t *s, hd_store_req_t *r) {
  hd_store_session_t session;
  int rc = get_session(s, r, r->in.chat.session_id, &session);
  if (rc) return rc;
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.session_id);
  hd_pg_int(&p, r->in.chat.before_id ? r->in.chat.before_id : INT64_MAX);
  hd_pg_int(&p, r->in.chat.limit);
  PGresult *res;
  if ((rc = hd_pg_exec(s, HD_PG_MESSAGES_LIST,
                       "SELECT " MESSAGE_COLS " FROM chat_messages WHERE session_id = $1 AND id < $2 "
                       "ORDER BY id DESC LIMIT $3",
                       &p, &res)))
    return rc;
  hd_store_messages_t *out = &r->out.messages;
  for (int i = 0; i < PQntuples(res) && !rc; i++) {
    hd_store_message_t *m = hd_store_req_list(r, sizeof *m, &out->count);
    if (!m) {
      rc = HD_ENOMEM;
      break;
    }
    m->id = hd_pg_get_int(res, i, 0);
    m->session_id = hd_pg_get_int(res, i, 1);
    m->sender_id = hd_pg_get_int(res, i, 2);
    m->sender_role = hd_pg_get_text(r, res, i, 3);
    m->content = hd_pg_get_text(r, res, i, 4);
    m->message_type = hd_pg_get_text(r, res, i, 5);
    m->created_at = hd_pg_get_int(res, i, 6);
  }
  out->items = r->list;
  PQclear(res);
  return rc;
}

int hd_pg_session_mark_read(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.session_id);
  if (!strcmp(r->in.chat.role, "admin"))
    return one_session(s, r, HD_PG_SESSION_READ_ADMIN,
                       "UPDATE chat_sessions SET admin_unread = 0 WHERE id = $1 RETURNING " SESSION_COLS, &p,
                       &r->out.session);
  return one_session(s, r, HD_PG_SESSION_READ_USER,
                     "UPDATE chat_sessions SET user_unread = 0 WHERE id = $1 RETURNING " SESSION_COLS, &p,
                     &r->out.session);
}

int hd_pg_session_set_priority(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.chat.session_id);
  hd_pg_int(&p, r->in.chat.priority);
  hd_pg_int(&p, hd_clock_wall_ms());
  return one_session(s, r, HD_PG_SESSION_PRIORITY,
                     "UPDATE chat_sessions SET priority = $2, updated_at = $3 WHERE id = $1 RETURNING " SESSION_COLS, &p,
                     &r->out.session);
}
