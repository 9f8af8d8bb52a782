/* PostgreSQL backend, users: the SQLite backend's semantics (sqlite_users.c). Create (a name taken in
 * any letter case is HD_EEXISTS: the unique index on lower(name)), look up by name (with the
 * password hash, for login) or id, list by role, search, update, delete (the id kept in
 * users_deleted), the states that refuse tokens, and the change counter bumped by a trigger. Each
 * operation is one statement, and none raises an SQL error for an expected outcome (a taken name,
 * a missing user), so the batch's transaction goes on. */
#include "core/clock.h"
#include "core/error.h"
#include "store/pg.h"

#define USER_COLS "id, name, role, display_name, created_at, password_hash, disabled, demo, tokens_after"
/* The id of the request's user: $n (in.user.id, NULL when 0), else the user named exactly $m. */
#define USER_ID(n, m) "coalesce($" #n "::bigint, (SELECT id FROM users WHERE name = $" #m "))"

/* Fills u from row i of USER_COLS; the hash only when asked for. */
static void read_user(hd_store_req_t *r, const PGresult *res, int i, hd_store_user_t *u, bool with_hash) {
  u->id = hd_pg_get_int(res, i, 0);
  u->name = hd_pg_get_text(r, res, i, 1);
  u->role = hd_pg_get_text(r, res, i, 2);
  u->display_name = hd_pg_get_text(r, res, i, 3);
  u->created_at = hd_pg_get_int(res, i, 4);
  u->password_hash = with_hash ? hd_pg_get_text(r, res, i, 5) : NULL;
  u->disabled = hd_pg_get_bool(res, i, 6);
  u->demo = hd_pg_get_bool(res, i, 7);
  u->tokens_after = hd_pg_get_int(res, i, 8);
}

/* Reads every row of res (USER_COLS, then optionally a boolean `deleted`) into r->out.users and
 * frees res; 0 or HD_ENOMEM. */
static int read_users(hd_store_req_t *r, PGresult *res, bool with_deleted) {
  hd_store_users_t *out = &r->out.users;
  int rc = 0;
  for (int i = 0; i < PQntuples(res) && !rc; i++) {
    hd_store_user_t *u = hd_store_req_list(r, sizeof *u, &out->count);
    if (!u) {
      rc = HD_ENOMEM;
      break;
    }
    read_user(r, res, i, u, false);
    if (with_deleted) u->deleted = hd_pg_get_bool(res, i, 9);
  }
  out->items = r->list;
  PQclear(res);
  return rc;
}

/* The first row of res (USER_COLS) into r->out.user without the hash, and frees res; HD_ENOTFOUND
 * when there is none. */
static int read_one(hd_store_req_t *r, PGresult *res) {
  int rc = PQntuples(res) ? 0 : HD_ENOTFOUND;
  if (!rc) read_user(r, res, 0, &r->out.user, false);
  PQclear(res);
  return rc;
}

int hd_pg_user_create(hd_pg_t *s, hd_store_req_t *r) {
  int64_t now = hd_clock_wall_ms();
  hd_pg_params_t p = {0};
  hd_pg_text(&p, r->in.user.name);
  hd_pg_text(&p, r->in.user.role);
  hd_pg_text(&p, r->in.user.password_hash);
  hd_pg_text(&p, r->in.user.display_name);
  hd_pg_int(&p, now);
  hd_pg_bool(&p, r->in.user.demo);
  PGresult *res;
  /* no conflict target: the name taken exactly (users.name) or in another letter case (lower(name)) */
  int rc = hd_pg_exec(s, HD_PG_USER_INSERT,
                      "INSERT INTO users (name, role, password_hash, display_name, created_at, demo) "
                      "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
                      &p, &res);
  if (rc) return rc;
  if (!PQntuples(res)) { /* the name is taken: no error, so the batch's transaction goes on */
    PQclear(res);
    return HD_EEXISTS;
  }
  r->out.user = (hd_store_user_t){
      .id = hd_pg_get_int(res, 0, 0),
      .name = r->in.user.name,
      .role = r->in.user.role,
      .display_name = r->in.user.display_name,
      .created_at = now,
      .demo = r->in.user.demo,
  };
  PQclear(res);
  return 0;
}

int hd_pg_user_get(hd_pg_t *s, hd_store_req_t *r) {
  bool by_name = r->op == HD_STORE_OP_USER_GET_BY_NAME;
  hd_pg_params_t p = {0};
  PGresult *res;
  int rc;
  if (by_name) {
    hd_pg_text(&p, r->in.user.name);
    rc = hd_pg_exec(s, HD_PG_USER_BY_NAME, "SELECT " USER_COLS " FROM users WHERE name = $1", &p, &res);
  } else {
    hd_pg_int(&p, r->in.user.id);
    rc = hd_pg_exec(s, HD_PG_USER_BY_ID, "SELECT " USER_COLS " FROM users WHERE id = $1", &p, &res);
  }
  if (rc) return rc;
  rc = PQntuples(res) ? 0 : HD_ENOTFOUND;
  if (!rc) read_user(r, res, 0, &r->out.user, by_name);
  PQclear(res);
  return rc;
}

int hd_pg_users_list(hd_pg_t *s, hd_store_req_t *r) {
  const char *role = r->in.user.role;
  hd_pg_params_t p = {0};
  PGresult *res;
  int rc;
  if (role) {
    hd_pg_text(&p, role);
    hd_pg_int(&p, HD_STORE_USERS_MAX);
    rc = hd_pg_exec(s, HD_PG_USERS_ROLE, "SELECT " USER_COLS " FROM users WHERE role = $1 ORDER BY id LIMIT $2", &p,
                    &res);
  } else {
    hd_pg_int(&p, HD_STORE_USERS_MAX);
    rc = hd_pg_exec(s, HD_PG_USERS_ALL, "SELECT " USER_COLS " FROM users ORDER BY id LIMIT $1", &p, &res);
  }
  return rc ? rc : read_users(r, res, false);
}

int hd_pg_user_update(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_text(&p, r->in.user.password_hash);
  hd_pg_text(&p, r->in.user.display_name);
  hd_pg_int(&p, r->in.user.disabled);
  hd_pg_int(&p, hd_clock_wall_ms() / 1000);
  hd_pg_id(&p, r->in.user.id);
  hd_pg_text(&p, r->in.user.name);
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_USER_UPDATE,
                      "UPDATE users SET password_hash = coalesce($1, password_hash), "
                      "display_name = coalesce($2, display_name), "
                      "disabled = CASE WHEN $3::int < 0 THEN disabled ELSE $3::int <> 0 END, "
                      "tokens_after = CASE WHEN $1::text IS NULL THEN tokens_after ELSE $4::bigint END, "
                      "demo = demo AND $1::text IS NULL "
                      "WHERE id = " USER_ID(5, 6) " RETURNING " USER_COLS,
                      &p, &res);
  return rc ? rc : read_one(r, res);
}

int hd_pg_user_delete(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_id(&p, r->in.user.id);
  hd_pg_text(&p, r->in.user.name);
  hd_pg_int(&p, hd_clock_wall_ms());
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_USER_DELETE,
                      "WITH gone AS (DELETE FROM users WHERE id = " USER_ID(1, 2) " RETURNING " USER_COLS "), "
                      "kept AS (INSERT INTO users_deleted (id, deleted_at) SELECT id, $3::bigint FROM gone "
                      "  ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at) "
                      "SELECT " USER_COLS " FROM gone",
                      &p, &res);
  if (rc || (rc = read_one(r, res))) return rc;
  r->out.user.deleted = true;
  return 0;
}

int hd_pg_users_search(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_text(&p, r->in.user.query);
  hd_pg_text(&p, r->in.user.role);
  hd_pg_int(&p, r->in.user.limit);
  PGresult *res;
  /* ordered by bytes (COLLATE "C"), as SQLite orders text */
  int rc = hd_pg_exec(s, HD_PG_USERS_SEARCH,
                      "SELECT " USER_COLS " FROM users WHERE ($2::text IS NULL OR role = $2) AND "
                      "(strpos(lower(name), lower($1)) > 0 OR strpos(lower(display_name), lower($1)) > 0) "
                      "ORDER BY (CASE display_name WHEN '' THEN name ELSE display_name END) COLLATE \"C\", id "
                      "LIMIT $3::int",
                      &p, &res);
  return rc ? rc : read_users(r, res, false);
}

int hd_pg_user_states(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, HD_STORE_USERS_MAX);
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_USER_STATES,
                      "SELECT * FROM (SELECT " USER_COLS ", false AS deleted FROM users "
                      "  WHERE disabled OR demo OR tokens_after > 0 UNION ALL "
                      "  SELECT id, '', 'user', '', deleted_at, NULL, true, false, 0, true FROM users_deleted) u "
                      "ORDER BY deleted, id LIMIT $1::int",
                      &p, &res);
  return rc ? rc : read_users(r, res, true);
}

int hd_pg_users_version(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_USERS_VERSION, "SELECT value FROM counters WHERE name = 'users'", &p, &res);
  if (rc) return rc;
  rc = PQntuples(res) ? 0 : HD_ENOTFOUND;
  if (!rc) r->out.count.count = hd_pg_get_int(res, 0, 0);
  PQclear(res);
  return rc;
}

int hd_pg_users_get_many(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_text(&p, r->in.user.query); /* a JSON array of the ids */
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_USERS_BY_IDS,
                      "SELECT " USER_COLS " FROM users WHERE id IN "
                      "(SELECT json_array_elements_text($1::json)::bigint) ORDER BY id",
                      &p, &res);
  return rc ? rc : read_users(r, res, false);
}
