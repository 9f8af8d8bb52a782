/* PostgreSQL backend, retention: deletes one small batch of expired rows per request, oldest first
 * (notifications with their read state; messages of long-closed sessions, then those sessions).
 * SKIP LOCKED: nodes pruning the same database at once take different rows instead of waiting. */
#include "core/error.h"
#include "store/pg.h"

int hd_pg_prune(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.prune.before);
  hd_pg_int(&p, r->in.prune.limit);
  int64_t *count = &r->out.count.count;
  switch (r->in.prune.what) {
    case HD_STORE_PRUNE_NOTIFICATIONS:
      return hd_pg_run(s, HD_PG_PRUNE_NOTIFICATIONS,
                       "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications "
                       "WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                       &p, count);
    case HD_STORE_PRUNE_CHAT_MESSAGES:
      return hd_pg_run(s, HD_PG_PRUNE_CHAT_MESSAGES,
                       "DELETE FROM chat_messages WHERE id IN (SELECT m.id FROM chat_sessions c "
                       "JOIN chat_messages m ON m.session_id = c.id WHERE c.closed_at < $1 "
                       "ORDER BY c.closed_at, m.id LIMIT $2 FOR UPDATE OF m SKIP LOCKED)",
                       &p, count);
    case HD_STORE_PRUNE_CHAT_SESSIONS:
      return hd_pg_run(s, HD_PG_PRUNE_CHAT_SESSIONS,
                       "DELETE FROM chat_sessions WHERE id IN (SELECT c.id FROM chat_sessions c "
                       "WHERE c.closed_at < $1 AND NOT EXISTS (SELECT 1 FROM chat_messages m "
                       "WHERE m.session_id = c.id) ORDER BY c.closed_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                       &p, count);
  }
  return HD_EINVAL;
}
