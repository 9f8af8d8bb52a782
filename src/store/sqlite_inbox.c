/* SQLite backend, the JSON-protocol inbox: per user, the frames of notifications not yet
 * acknowledged, oldest first, unique per (user_sub, message_id), at most `cap` per user (the
 * oldest go first). */
#include "core/clock.h"
#include "core/error.h"
#include "store/sqlite.h"

int hd_sqlite_inbox_put_one(hd_sqlite_t *s, const hd_store_inbox_entry_t *e, int64_t cap, bool *inserted, int64_t *dropped) {
  sqlite3_stmt *ins = hd_sqlite_stmt(s, HD_SQL_INBOX_INSERT,
                                     "INSERT OR IGNORE INTO inbox (user_sub, message_id, frame, created_at) "
                                     "VALUES (?1, ?2, ?3, ?4)");
  if (!ins) return HD_EIO;
  hd_sqlite_bind_text(ins, 1, e->user_sub);
  hd_sqlite_bind_text(ins, 2, e->message_id);
  sqlite3_bind_text64(ins, 3, e->frame, e->frame_len, SQLITE_STATIC, SQLITE_UTF8);
  sqlite3_bind_int64(ins, 4, hd_clock_wall_ms());
  int rc = hd_sqlite_run(s, ins);
  if (rc) return rc;
  *inserted = hd_sqlite_changes(s) > 0;
  *dropped = 0;
  if (!*inserted) return 0;
  sqlite3_stmt *trim = hd_sqlite_stmt(s, HD_SQL_INBOX_TRIM,
                                      "DELETE FROM inbox WHERE user_sub = ?1 AND id <= "
                                      "(SELECT id FROM inbox WHERE user_sub = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)");
  if (!trim) return HD_EIO;
  hd_sqlite_bind_text(trim, 1, e->user_sub);
  sqlite3_bind_int64(trim, 2, cap);
  if ((rc = hd_sqlite_run(s, trim))) return rc;
  *dropped = hd_sqlite_changes(s);
  return 0;
}

int hd_sqlite_inbox_take(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_INBOX_TAKE,
                                      "SELECT message_id, frame FROM inbox WHERE user_sub = ?1 ORDER BY id LIMIT ?2");
  if (!stmt) return HD_EIO;
  hd_sqlite_bind_text(stmt, 1, r->in.inbox.user_sub);
  sqlite3_bind_int64(stmt, 2, r->in.inbox.cap > 0 ? r->in.inbox.cap : HD_STORE_INBOX_CAP_MAX);
  hd_store_inbox_t *out = &r->out.inbox;
  int rc;
  while ((rc = hd_sqlite_step(s, stmt)) == SQLITE_ROW) {
    hd_store_inbox_item_t *it = hd_store_req_list(r, sizeof *it, &out->count);
    if (!it) return HD_ENOMEM;
    it->message_id = hd_sqlite_text(r, stmt, 0, NULL);
    it->frame = hd_sqlite_text(r, stmt, 1, &it->frame_len);
  }
  out->items = r->list;
  return rc == SQLITE_DONE ? 0 : hd_sqlite_error(s, rc);
}

int hd_sqlite_inbox_remove(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt =
      hd_sqlite_stmt(s, HD_SQL_INBOX_DELETE, "DELETE FROM inbox WHERE user_sub = ?1 AND message_id = ?2");
  if (!stmt) return HD_EIO;
  hd_sqlite_bind_text(stmt, 1, r->in.inbox.user_sub);
  hd_sqlite_bind_text(stmt, 2, r->in.inbox.message_id);
  int rc = hd_sqlite_run(s, stmt);
  if (rc) return rc;
  r->out.count.count = hd_sqlite_changes(s);
  return 0;
}
