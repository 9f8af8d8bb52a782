/* PostgreSQL backend, users: create (a taken name is HD_EEXISTS), look up by name (with the password
 * hash, for login) or id, list by role. */
#include "core/clock.h"
#include "core/error.h"
#include "store/pg.h"

#define USER_COLS "id, name, role, display_name, created_at, password_hash"

/* Fills u from row i of USER_COLS; the hash only when asked for. */
static void read_user(hd_store_req_t *r, const PGresult *res, int i, hd_store_user_t *u, bool with_hash) {
  u->id = hd_pg_get_int(res, i, 0);
  u->name = hd_pg_get_text(r, res, i, 1);
  u->role = hd_pg_get_text(r, res, i, 2);
  u->display_name = hd_pg_get_text(r, res, i, 3);
  u->created_at = hd_pg_get_int(res, i, 4);
  u->password_hash = with_hash ? hd_pg_get_text(r, res, i, 5) : NULL;
}

int hd_pg_user_create(hd_pg_t *s, hd_store_req_t *r) {
  int64_t now = hd_clock_wall_ms();
  hd_pg_params_t p = {0};
  hd_pg_text(&p, r->in.user.name);
  hd_pg_text(&p, r->in.user.role);
  hd_pg_text(&p, r->in.user.password_hash);
  hd_pg_text(&p, r->in.user.display_name);
  hd_pg_int(&p, now);
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_USER_INSERT,
                      "INSERT INTO users (name, role, password_hash, display_name, created_at) "
                      "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id",
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
  if (rc) return rc;
  hd_store_users_t *out = &r->out.users;
  for (int i = 0; i < PQntuples(res) && !rc; i++) {
    hd_store_user_t *u = hd_store_req_list(r, sizeof *u, &out->count);
    if (u) read_user(r, res, i, u, false);
    else rc = HD_ENOMEM;
  }
  out->items = r->list;
  PQclear(res);
  return rc;
}
