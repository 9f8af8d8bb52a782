/* SQLite backend, users: create (a name taken in any letter case is HD_EEXISTS), look up by name
 * (with the password hash, for login) or id, list by role, search, update, delete (the id kept in
 * users_deleted), the states that refuse tokens, and the change counter bumped by triggers. */
#include "core/clock.h"
#include "core/error.h"
#include "store/sqlite.h"

#define USER_COLS "id, name, role, display_name, created_at, password_hash, disabled, demo, tokens_after"

/* Fills u from a row of USER_COLS; the hash only when asked for. */
static void read_user(hd_store_req_t *r, sqlite3_stmt *stmt, hd_store_user_t *u, bool with_hash) {
  u->id = hd_sqlite_int(stmt, 0);
  u->name = hd_sqlite_text(r, stmt, 1, NULL);
  u->role = hd_sqlite_text(r, stmt, 2, NULL);
  u->display_name = hd_sqlite_text(r, stmt, 3, NULL);
  u->created_at = hd_sqlite_int(stmt, 4);
  u->password_hash = with_hash ? hd_sqlite_text(r, stmt, 5, NULL) : NULL;
  u->disabled = hd_sqlite_int(stmt, 6) != 0;
  u->demo = hd_sqlite_int(stmt, 7) != 0;
  u->tokens_after = hd_sqlite_int(stmt, 8);
}

int hd_sqlite_user_create(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_USER_INSERT,
                                      "INSERT INTO users (name, role, password_hash, display_name, created_at, demo) "
                                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!stmt) return HD_EIO;
  int64_t now = hd_clock_wall_ms();
  hd_sqlite_bind_text(stmt, 1, r->in.user.name);
  hd_sqlite_bind_text(stmt, 2, r->in.user.role);
  hd_sqlite_bind_text(stmt, 3, r->in.user.password_hash);
  hd_sqlite_bind_text(stmt, 4, r->in.user.display_name);
  sqlite3_bind_int64(stmt, 5, now);
  sqlite3_bind_int(stmt, 6, r->in.user.demo);
  int rc = hd_sqlite_run(s, stmt);
  if (rc) return rc;
  r->out.user = (hd_store_user_t){
      .id = hd_sqlite_last_id(s),
      .name = r->in.user.name,
      .role = r->in.user.role,
      .display_name = r->in.user.display_name,
      .created_at = now,
      .demo = r->in.user.demo,
  };
  return 0;
}

int hd_sqlite_user_get(hd_sqlite_t *s, hd_store_req_t *r) {
  bool by_name = r->op == HD_STORE_OP_USER_GET_BY_NAME;
  sqlite3_stmt *stmt = by_name
                           ? hd_sqlite_stmt(s, HD_SQL_USER_BY_NAME, "SELECT " USER_COLS " FROM users WHERE name = ?1")
                           : hd_sqlite_stmt(s, HD_SQL_USER_BY_ID, "SELECT " USER_COLS " FROM users WHERE id = ?1");
  if (!stmt) return HD_EIO;
  if (by_name) hd_sqlite_bind_text(stmt, 1, r->in.user.name);
  else sqlite3_bind_int64(stmt, 1, r->in.user.id);
  int rc = hd_sqlite_step(s, stmt);
  if (rc == SQLITE_DONE) return HD_ENOTFOUND;
  if (rc != SQLITE_ROW) return hd_sqlite_error(s, rc);
  read_user(r, stmt, &r->out.user, by_name);
  return 0;
}

int hd_sqlite_users_list(hd_sqlite_t *s, hd_store_req_t *r) {
  const char *role = r->in.user.role;
  sqlite3_stmt *stmt =
      role ? hd_sqlite_stmt(s, HD_SQL_USERS_ROLE,
                            "SELECT " USER_COLS " FROM users WHERE role = ?1 ORDER BY id LIMIT ?2")
           : hd_sqlite_stmt(s, HD_SQL_USERS_ALL, "SELECT " USER_COLS " FROM users ORDER BY id LIMIT ?2");
  if (!stmt) return HD_EIO;
  if (role) hd_sqlite_bind_text(stmt, 1, role);
  sqlite3_bind_int(stmt, 2, HD_STORE_USERS_MAX);
  hd_store_users_t *out = &r->out.users;
  int rc;
  while ((rc = hd_sqlite_step(s, stmt)) == SQLITE_ROW) {
    hd_store_user_t *u = hd_store_req_list(r, sizeof *u, &out->count);
    if (!u) return HD_ENOMEM;
    read_user(r, stmt, u, false);
  }
  out->items = r->list;
  return rc == SQLITE_DONE ? 0 : hd_sqlite_error(s, rc);
}

/* Reads every row of stmt into r->out.users. */
static int read_users(hd_sqlite_t *s, hd_store_req_t *r, sqlite3_stmt *stmt) {
  hd_store_users_t *out = &r->out.users;
  int rc;
  while ((rc = hd_sqlite_step(s, stmt)) == SQLITE_ROW) {
    hd_store_user_t *u = hd_store_req_list(r, sizeof *u, &out->count);
    if (!u) return HD_ENOMEM;
    read_user(r, stmt, u, false);
  }
  out->items = r->list;
  return rc == SQLITE_DONE ? 0 : hd_sqlite_error(s, rc);
}

/* The id of the request's user (in.user.id, else in.user.name, exactly); HD_ENOTFOUND. */
static int user_id(hd_sqlite_t *s, hd_store_req_t *r, int64_t *id) {
  if (r->in.user.id > 0) return *id = r->in.user.id, 0;
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_USER_ID_BY_NAME, "SELECT id FROM users WHERE name = ?1");
  if (!stmt) return HD_EIO;
  hd_sqlite_bind_text(stmt, 1, r->in.user.name);
  int rc = hd_sqlite_step(s, stmt);
  if (rc == SQLITE_DONE) return HD_ENOTFOUND;
  if (rc != SQLITE_ROW) return hd_sqlite_error(s, rc);
  *id = hd_sqlite_int(stmt, 0);
  return 0;
}

/* The user with that id into r->out.user (without the hash). */
static int read_by_id(hd_sqlite_t *s, hd_store_req_t *r, int64_t id) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_USER_BY_ID, "SELECT " USER_COLS " FROM users WHERE id = ?1");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, id);
  int rc = hd_sqlite_step(s, stmt);
  if (rc == SQLITE_DONE) return HD_ENOTFOUND;
  if (rc != SQLITE_ROW) return hd_sqlite_error(s, rc);
  read_user(r, stmt, &r->out.user, false);
  return 0;
}

int hd_sqlite_user_update(hd_sqlite_t *s, hd_store_req_t *r) {
  int64_t id;
  int rc = user_id(s, r, &id);
  if (rc) return rc;
  sqlite3_stmt *stmt = hd_sqlite_stmt(
      s, HD_SQL_USER_UPDATE,
      "UPDATE users SET password_hash = coalesce(?1, password_hash), display_name = coalesce(?2, display_name), "
      "disabled = CASE WHEN ?3 < 0 THEN disabled ELSE ?3 END, "
      "tokens_after = CASE WHEN ?1 IS NULL THEN tokens_after ELSE ?4 END, "
      "demo = CASE WHEN ?1 IS NULL THEN demo ELSE 0 END WHERE id = ?5");
  if (!stmt) return HD_EIO;
  hd_sqlite_bind_text(stmt, 1, r->in.user.password_hash);
  hd_sqlite_bind_text(stmt, 2, r->in.user.display_name);
  sqlite3_bind_int(stmt, 3, r->in.user.disabled);
  sqlite3_bind_int64(stmt, 4, hd_clock_wall_ms() / 1000);
  sqlite3_bind_int64(stmt, 5, id);
  if ((rc = hd_sqlite_run(s, stmt))) return rc;
  return hd_sqlite_changes(s) ? read_by_id(s, r, id) : HD_ENOTFOUND;
}

int hd_sqlite_user_delete(hd_sqlite_t *s, hd_store_req_t *r) {
  int64_t id;
  int rc = user_id(s, r, &id);
  if (rc || (rc = read_by_id(s, r, id))) return rc;
  sqlite3_stmt *del = hd_sqlite_stmt(s, HD_SQL_USER_DELETE, "DELETE FROM users WHERE id = ?1");
  if (!del) return HD_EIO;
  sqlite3_bind_int64(del, 1, id);
  if ((rc = hd_sqlite_run(s, del))) return rc;
  sqlite3_stmt *keep = hd_sqlite_stmt(s, HD_SQL_USER_TOMBSTONE,
                                      "INSERT OR REPLACE INTO users_deleted (id, deleted_at) VALUES (?1, ?2)");
  if (!keep) return HD_EIO;
  sqlite3_bind_int64(keep, 1, id);
  sqlite3_bind_int64(keep, 2, hd_clock_wall_ms());
  r->out.user.deleted = true;
  return hd_sqlite_run(s, keep);
}

int hd_sqlite_users_search(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(
      s, HD_SQL_USERS_SEARCH,
      "SELECT " USER_COLS " FROM users WHERE (?2 IS NULL OR role = ?2) AND "
      "(instr(lower(name), lower(?1)) > 0 OR instr(lower(display_name), lower(?1)) > 0) "
      "ORDER BY CASE display_name WHEN '' THEN name ELSE display_name END, id LIMIT ?3");
  if (!stmt) return HD_EIO;
  hd_sqlite_bind_text(stmt, 1, r->in.user.query);
  hd_sqlite_bind_text(stmt, 2, r->in.user.role);
  sqlite3_bind_int(stmt, 3, r->in.user.limit);
  return read_users(s, r, stmt);
}

int hd_sqlite_user_states(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(
      s, HD_SQL_USER_STATES,
      "SELECT " USER_COLS ", 0 FROM users WHERE disabled <> 0 OR demo <> 0 OR tokens_after > 0 UNION ALL "
      "SELECT id, '', 'user', '', deleted_at, NULL, 1, 0, 0, 1 FROM users_deleted LIMIT ?1");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int(stmt, 1, HD_STORE_USERS_MAX);
  hd_store_users_t *out = &r->out.users;
  int rc;
  while ((rc = hd_sqlite_step(s, stmt)) == SQLITE_ROW) {
    hd_store_user_t *u = hd_store_req_list(r, sizeof *u, &out->count);
    if (!u) return HD_ENOMEM;
    read_user(r, stmt, u, false);
    u->deleted = hd_sqlite_int(stmt, 9) != 0;
  }
  out->items = r->list;
  return rc == SQLITE_DONE ? 0 : hd_sqlite_error(s, rc);
}

int hd_sqlite_users_version(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_USERS_VERSION, "SELECT value FROM counters WHERE name = 'users'");
  if (!stmt) return HD_EIO;
  int rc = hd_sqlite_step(s, stmt);
  if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? HD_ENOTFOUND : hd_sqlite_error(s, rc);
  r->out.count.count = hd_sqlite_int(stmt, 0);
  return 0;
}

int hd_sqlite_users_get_many(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_USERS_BY_IDS,
                                      "SELECT " USER_COLS " FROM users WHERE id IN (SELECT value FROM json_each(?1)) "
                                      "ORDER BY id");
  if (!stmt) return HD_EIO;
  hd_sqlite_bind_text(stmt, 1, r->in.user.query); /* a JSON array of the ids */
  return read_users(s, r, stmt);
}
