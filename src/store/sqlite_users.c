/* SQLite backend, users: create (a taken name is HD_EEXISTS), look up by name (with the password
 * hash, for login) or id, list by role. */
#include "core/clock.h"
#include "core/error.h"
#include "store/sqlite.h"

#define USER_COLS "id, name, role, display_name, created_at, password_hash"

/* Fills u from a row of USER_COLS; the hash only when asked for. */
static void read_user(hd_store_req_t *r, sqlite3_stmt *stmt, hd_store_user_t *u, bool with_hash) {
  u->id = hd_sqlite_int(stmt, 0);
  u->name = hd_sqlite_text(r, stmt, 1, NULL);
  u->role = hd_sqlite_text(r, stmt, 2, NULL);
  u->display_name = hd_sqlite_text(r, stmt, 3, NULL);
  u->created_at = hd_sqlite_int(stmt, 4);
  u->password_hash = with_hash ? hd_sqlite_text(r, stmt, 5, NULL) : NULL;
}

int hd_sqlite_user_create(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_USER_INSERT,
                                      "INSERT INTO users (name, role, password_hash, display_name, created_at) "
                                      "VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!stmt) return HD_EIO;
  int64_t now = hd_clock_wall_ms();
  hd_sqlite_bind_text(stmt, 1, r->in.user.name);
  hd_sqlite_bind_text(stmt, 2, r->in.user.role);
  hd_sqlite_bind_text(stmt, 3, r->in.user.password_hash);
  hd_sqlite_bind_text(stmt, 4, r->in.user.display_name);
  sqlite3_bind_int64(stmt, 5, now);
  int rc = hd_sqlite_run(s, stmt);
  if (rc) return rc;
  r->out.user = (hd_store_user_t){
      .id = hd_sqlite_last_id(s),
      .name = r->in.user.name,
      .role = r->in.user.role,
      .display_name = r->in.user.display_name,
      .created_at = now,
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
