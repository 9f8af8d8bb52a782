/* PostgreSQL backend, the JSON-protocol topic history of a single node: the SQLite backend's
 * semantics (sqlite_topics.c). Per topic its last `keep` messages as entry texts, younger than an
 * age, and whether the last save was a graceful stop's. */
#include <string.h>

#include "core/error.h"
#include "store/pg.h"

static int set_clean(hd_pg_t *s, bool clean) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, clean ? 1 : 0);
  return hd_pg_run(s, HD_PG_TOPIC_STATE_SET,
                   "INSERT INTO topic_history_state (name, value) VALUES ('clean', $1) "
                   "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                   &p, NULL);
}

static int expire(hd_pg_t *s, int64_t min_created_at) {
  if (min_created_at <= 0) return 0;
  hd_pg_params_t p = {0};
  hd_pg_int(&p, min_created_at);
  return hd_pg_run(s, HD_PG_TOPIC_EXPIRE, "DELETE FROM topic_history WHERE created_at < $1", &p, NULL);
}

int hd_pg_topic_insert(hd_pg_t *s, const hd_store_topic_entry_t *e, bool *inserted) {
  hd_pg_params_t p = {0};
  hd_pg_text(&p, e->topic);
  hd_pg_int(&p, e->seq);
  hd_pg_int(&p, e->created_at);
  hd_pg_text(&p, e->entry);
  int64_t n = 0;
  int rc = hd_pg_run(s, HD_PG_TOPIC_INSERT,
                     "INSERT INTO topic_history (topic, seq, created_at, entry) VALUES ($1, $2, $3, $4) "
                     "ON CONFLICT DO NOTHING",
                     &p, &n);
  *inserted = !rc && n > 0;
  return rc;
}

int hd_pg_topic_trim(hd_pg_t *s, const char *topic, int64_t keep) {
  hd_pg_params_t t = {0};
  hd_pg_text(&t, topic);
  hd_pg_int(&t, keep);
  return hd_pg_run(s, HD_PG_TOPIC_TRIM,
                   "DELETE FROM topic_history WHERE topic = $1 AND seq <= "
                   "(SELECT seq FROM topic_history WHERE topic = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                   &t, NULL);
}

int hd_pg_topics_saved(hd_pg_t *s, int64_t min_created_at, bool clean) {
  int rc = expire(s, min_created_at);
  return rc ? rc : set_clean(s, clean);
}

int hd_pg_topics_load(hd_pg_t *s, hd_store_req_t *r) {
  int rc = expire(s, r->in.topics.min_created_at);
  if (rc) return rc;
  hd_store_topics_t *out = &r->out.topics;
  PGresult *res;
  hd_pg_params_t none = {0};
  if ((rc = hd_pg_exec(s, HD_PG_TOPIC_STATE_GET, "SELECT value FROM topic_history_state WHERE name = 'clean'", &none,
                       &res)))
    return rc;
  if (PQntuples(res) > 0) out->clean = hd_pg_get_int(res, 0, 0) == 1;
  PQclear(res);
  hd_pg_params_t p = {0};
  hd_pg_int(&p, HD_STORE_TOPICS_MAX);
  if ((rc = hd_pg_exec(s, HD_PG_TOPIC_ALL,
                       "SELECT topic, seq, created_at, entry FROM (SELECT * FROM topic_history "
                       "ORDER BY created_at DESC LIMIT $1) AS newest ORDER BY topic, seq",
                       &p, &res)))
    return rc;
  for (int i = 0; i < PQntuples(res) && !rc; i++) {
    hd_store_topic_entry_t *e = hd_store_req_list(r, sizeof *e, &out->count);
    if (!e) {
      rc = HD_ENOMEM;
      break;
    }
    e->topic = hd_pg_get_text(r, res, i, 0);
    e->seq = hd_pg_get_int(res, i, 1);
    e->created_at = hd_pg_get_int(res, i, 2);
    e->entry = hd_pg_get_text(r, res, i, 3);
    e->entry_len = e->entry ? strlen(e->entry) : 0;
  }
  out->items = r->list;
  PQclear(res);
  return rc ? rc : set_clean(s, false); /* from now on, until the next graceful stop */
}
