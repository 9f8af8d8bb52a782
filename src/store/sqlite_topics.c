/* SQLite backend, the JSON-protocol topic history of a single node: per topic its last `keep`
 * messages as entry texts, younger than an age, and whether the last save was a graceful stop's
 * (then the sequences restored go on without a gap). */
#include "core/error.h"
#include "store/sqlite.h"

static int set_clean(hd_sqlite_t *s, bool clean) {
  sqlite3_stmt *st = hd_sqlite_stmt(s, HD_SQL_TOPIC_STATE_SET,
                                    "INSERT OR REPLACE INTO topic_history_state (name, value) VALUES ('clean', ?1)");
  if (!st) return HD_EIO;
  sqlite3_bind_int(st, 1, clean ? 1 : 0);
  return hd_sqlite_run(s, st);
}

static int expire(hd_sqlite_t *s, int64_t min_created_at) {
  if (min_created_at <= 0) return 0;
  sqlite3_stmt *st = hd_sqlite_stmt(s, HD_SQL_TOPIC_EXPIRE, "DELETE FROM topic_history WHERE created_at < ?1");
  if (!st) return HD_EIO;
  sqlite3_bind_int64(st, 1, min_created_at);
  return hd_sqlite_run(s, st);
}

int hd_sqlite_topic_insert(hd_sqlite_t *s, const hd_store_topic_entry_t *e, bool *inserted) {
  sqlite3_stmt *ins = hd_sqlite_stmt(s, HD_SQL_TOPIC_INSERT,
                                     "INSERT OR IGNORE INTO topic_history (topic, seq, created_at, entry) "
                                     "VALUES (?1, ?2, ?3, ?4)");
  if (!ins) return HD_EIO;
  hd_sqlite_bind_text(ins, 1, e->topic);
  sqlite3_bind_int64(ins, 2, e->seq);
  sqlite3_bind_int64(ins, 3, e->created_at);
  sqlite3_bind_text64(ins, 4, e->entry, e->entry_len, SQLITE_STATIC, SQLITE_UTF8);
  int rc = hd_sqlite_run(s, ins);
  *inserted = !rc && hd_sqlite_changes(s) > 0;
  return rc;
}

int hd_sqlite_topic_trim(hd_sqlite_t *s, const char *topic, int64_t keep) {
  sqlite3_stmt *trim = hd_sqlite_stmt(s, HD_SQL_TOPIC_TRIM,
                                      "DELETE FROM topic_history WHERE topic = ?1 AND seq <= "
                                      "(SELECT seq FROM topic_history WHERE topic = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)");
  if (!trim) return HD_EIO;
  hd_sqlite_bind_text(trim, 1, topic);
  sqlite3_bind_int64(trim, 2, keep);
  return hd_sqlite_run(s, trim);
}

int hd_sqlite_topics_saved(hd_sqlite_t *s, int64_t min_created_at, bool clean) {
  int rc = expire(s, min_created_at);
  return rc ? rc : set_clean(s, clean);
}

int hd_sqlite_topics_load(hd_sqlite_t *s, hd_store_req_t *r) {
  int rc = expire(s, r->in.topics.min_created_at);
  if (rc) return rc;
  hd_store_topics_t *out = &r->out.topics;
  sqlite3_stmt *get = hd_sqlite_stmt(s, HD_SQL_TOPIC_STATE_GET, "SELECT value FROM topic_history_state WHERE name = 'clean'");
  if (!get) return HD_EIO;
  if ((rc = hd_sqlite_step(s, get)) == SQLITE_ROW) out->clean = sqlite3_column_int(get, 0) == 1;
  else if (rc != SQLITE_DONE) return hd_sqlite_error(s, rc);
  sqlite3_stmt *all = hd_sqlite_stmt(s, HD_SQL_TOPIC_ALL,
                                     "SELECT topic, seq, created_at, entry FROM (SELECT * FROM topic_history "
                                     "ORDER BY created_at DESC LIMIT ?1) ORDER BY topic, seq");
  if (!all) return HD_EIO;
  sqlite3_bind_int64(all, 1, HD_STORE_TOPICS_MAX);
  while ((rc = hd_sqlite_step(s, all)) == SQLITE_ROW) {
    hd_store_topic_entry_t *e = hd_store_req_list(r, sizeof *e, &out->count);
    if (!e) return HD_ENOMEM;
    e->topic = hd_sqlite_text(r, all, 0, NULL);
    e->seq = sqlite3_column_int64(all, 1);
    e->created_at = sqlite3_column_int64(all, 2);
    e->entry = hd_sqlite_text(r, all, 3, &e->entry_len);
  }
  out->items = r->list;
  if (rc != SQLITE_DONE) return hd_sqlite_error(s, rc);
  return set_clean(s, false); /* from now on, until the next graceful stop */
}
