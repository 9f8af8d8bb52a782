/* SQLite backend, retention: deletes one small batch of expired rows per request, oldest first
 * (notifications with their read state; messages of long-closed sessions, then those sessions). */
#include "core/error.h"
#include "store/sqlite.h"

int hd_sqlite_prune(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = NULL;
  switch (r->in.prune.what) {
    case HD_STORE_PRUNE_NOTIFICATIONS:
      stmt = hd_sqlite_stmt(s, HD_SQL_PRUNE_NOTIFICATIONS,
                            "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications "
                            "WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)");
      break;
    case HD_STORE_PRUNE_CHAT_MESSAGES:
      stmt = hd_sqlite_stmt(s, HD_SQL_PRUNE_CHAT_MESSAGES,
                            "DELETE FROM chat_messages WHERE id IN (SELECT m.id FROM chat_sessions c "
                            "JOIN chat_messages m ON m.session_id = c.id WHERE c.closed_at < ?1 "
                            "ORDER BY c.closed_at, m.id LIMIT ?2)");
      break;
    case HD_STORE_PRUNE_CHAT_SESSIONS:
      stmt = hd_sqlite_stmt(s, HD_SQL_PRUNE_CHAT_SESSIONS,
                            "DELETE FROM chat_sessions WHERE id IN (SELECT c.id FROM chat_sessions c "
                            "WHERE c.closed_at < ?1 AND NOT EXISTS (SELECT 1 FROM chat_messages m "
                            "WHERE m.session_id = c.id) ORDER BY c.closed_at LIMIT ?2)");
      break;
  }
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.prune.before);
  sqlite3_bind_int(stmt, 2, r->in.prune.limit);
  int rc = hd_sqlite_run(s, stmt);
  if (rc) return rc;
  r->out.count.count = hd_sqlite_changes(s);
  return 0;
}
