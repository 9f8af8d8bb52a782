/* PostgreSQL backend, the JSON-protocol inbox: the SQLite backend's semantics (sqlite_inbox.c).
 * Per user, the frames of notifications not yet acknowledged, oldest first, unique per (user_sub,
 * message_id), at most `cap` per user (the oldest go first). Frames are stored as bytes (bytea):
 * exactly what was put comes back. */
#include "core/clock.h"
#include "core/error.h"
#include "store/pg.h"

int hd_pg_inbox_put_one(hd_pg_t *s, const hd_store_inbox_entry_t *e, int64_t cap, bool *inserted, int64_t *dropped) {
  hd_pg_params_t p = {0};
  hd_pg_text(&p, e->user_sub);
  hd_pg_text(&p, e->message_id);
  hd_pg_bytes(&p, e->frame, e->frame_len);
  hd_pg_int(&p, hd_clock_wall_ms());
  int64_t n = 0;
  int rc = hd_pg_run(s, HD_PG_INBOX_INSERT,
                     "INSERT INTO inbox (user_sub, message_id, frame, created_at) VALUES ($1, $2, $3, $4) "
                     "ON CONFLICT DO NOTHING",
                     &p, &n);
  if (rc) return rc;
  *inserted = n > 0;
  *dropped = 0;
  if (!*inserted) return 0;
  hd_pg_params_t t = {0};
  hd_pg_text(&t, e->user_sub);
  hd_pg_int(&t, cap);
  return hd_pg_run(s, HD_PG_INBOX_TRIM,
                   "DELETE FROM inbox WHERE user_sub = $1 AND id <= "
                   "(SELECT id FROM inbox WHERE user_sub = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                   &t, dropped);
}

int hd_pg_inbox_take(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_text(&p, r->in.inbox.user_sub);
  hd_pg_int(&p, r->in.inbox.cap > 0 ? r->in.inbox.cap : HD_STORE_INBOX_CAP_MAX);
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_INBOX_TAKE,
                      "SELECT message_id, frame FROM inbox WHERE user_sub = $1 ORDER BY id LIMIT $2", &p, &res);
  if (rc) return rc;
  hd_store_inbox_t *out = &r->out.inbox;
  for (int i = 0; i < PQntuples(res) && !rc; i++) {
    hd_store_inbox_item_t *it = hd_store_req_list(r, sizeof *it, &out->count);
    if (!it) {
      rc = HD_ENOMEM;
      break;
    }
    it->message_id = hd_pg_get_text(r, res, i, 0);
    it->frame = hd_pg_get_bytes(r, res, i, 1, &it->frame_len);
  }
  out->items = r->list;
  PQclear(res);
  return rc;
}

int hd_pg_inbox_remove(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_text(&p, r->in.inbox.user_sub);
  hd_pg_text(&p, r->in.inbox.message_id);
  return hd_pg_run(s, HD_PG_INBOX_DELETE, "DELETE FROM inbox WHERE user_sub = $1 AND message_id = $2", &p,
                   &r->out.count.count);
}
