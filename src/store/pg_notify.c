/* PostgreSQL backend, notifications: the SQLite backend's semantics (sqlite_notify.c). An admin
 * sees the ones targeted at them and the broadcasts (target NULL); their read state is a row per
 * (notification, admin) in notification_reads, so marking read is an idempotent insert and nodes
 * sharing the database agree on it; unread = visible - read, counted in one statement (one
 * snapshot). A notification's target must be an admin of this database; a broadcast is stored read
 * for the admin who sent it. */
#include <stdint.h>

#include "core/clock.h"
#include "core/error.h"
#include "store/pg.h"

#define VISIBLE_TO_ADMIN "(n.target_user_id = $1 OR n.target_user_id IS NULL)"

/* 0 when the target names an admin of this database; HD_ENOTFOUND (no such user), HD_ERANGE (a customer). */
static int target_is_admin(hd_pg_t *s, int64_t id) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, id);
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_NOTIFICATION_TARGET, "SELECT role = 'admin' FROM users WHERE id = $1", &p, &res);
  if (rc) return rc;
  rc = !PQntuples(res) ? HD_ENOTFOUND : hd_pg_get_bool(res, 0, 0) ? 0 : HD_ERANGE;
  PQclear(res);
  return rc;
}

int hd_pg_notification_create(hd_pg_t *s, hd_store_req_t *r) {
  const hd_store_notification_new_t *n = &r->in.notification;
  if (n->target_user_id) {
    int rc = target_is_admin(s, n->target_user_id);
    if (rc) return rc;
  }
  int64_t now = hd_clock_wall_ms();
  hd_pg_params_t p = {0};
  hd_pg_text(&p, n->type);
  hd_pg_text(&p, n->title);
  hd_pg_text(&p, n->content);
  hd_pg_text(&p, n->link);
  hd_pg_id(&p, n->sender_id);
  hd_pg_id(&p, n->target_user_id);
  hd_pg_int(&p, now);
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_NOTIFICATION_INSERT,
                      "WITH made AS (INSERT INTO notifications "
                      "  (type, title, content, link, sender_id, target_user_id, created_at) "
                      "  VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id), "
                      /* the sender's own broadcast is read for them */
                      "own AS (INSERT INTO notification_reads (notification_id, admin_id, read_at) "
                      "  SELECT id, $5::bigint, $7::bigint FROM made "
                      "  WHERE $6::bigint IS NULL AND $5::bigint IS NOT NULL) "
                      "SELECT id FROM made",
                      &p, &res);
  if (rc) return rc;
  r->out.notification = (hd_store_notification_t){
      .id = hd_pg_get_int(res, 0, 0),
      .type = n->type,
      .title = n->title,
      .content = n->content,
      .link = n->link,
      .sender_id = n->sender_id,
      .target_user_id = n->target_user_id,
      .is_read = false,
      .created_at = now,
  };
  PQclear(res);
  return 0;
}

int hd_pg_notifications_list(hd_pg_t *s, hd_store_req_t *r) {
#define UNREAD_FILTER \
  "(NOT $3::boolean OR NOT EXISTS (SELECT 1 FROM notification_reads r WHERE r.notification_id = n.id AND r.admin_id = $1))"
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.notifications.admin_id);
  hd_pg_int(&p, r->in.notifications.before_id ? r->in.notifications.before_id : INT64_MAX);
  hd_pg_bool(&p, r->in.notifications.unread_only);
  hd_pg_int(&p, r->in.notifications.limit);
  PGresult *res;
  int rc = hd_pg_exec(
      s, HD_PG_NOTIFICATIONS_LIST,
      "WITH page(id) AS ("
      "  (SELECT n.id FROM notifications n WHERE n.target_user_id = $1::bigint AND n.id < $2::bigint AND "
      UNREAD_FILTER " ORDER BY n.id DESC LIMIT $4::int)"
      "  UNION ALL"
      "  (SELECT n.id FROM notifications n WHERE n.target_user_id IS NULL AND n.id < $2::bigint AND "
      UNREAD_FILTER " ORDER BY n.id DESC LIMIT $4::int)) "
      "SELECT n.id, n.type, n.title, n.content, n.link, n.sender_id, n.target_user_id, n.created_at, "
      "  EXISTS (SELECT 1 FROM notification_reads r WHERE r.notification_id = n.id AND r.admin_id = $1) "
      "FROM page JOIN notifications n ON n.id = page.id ORDER BY n.id DESC LIMIT $4::int",
      &p, &res);
  if (rc) return rc;
  hd_store_notifications_t *out = &r->out.notifications;
  for (int i = 0; i < PQntuples(res) && !rc; i++) {
    hd_store_notification_t *n = hd_store_req_list(r, sizeof *n, &out->count);
    if (!n) {
      rc = HD_ENOMEM;
      break;
    }
    n->id = hd_pg_get_int(res, i, 0);
    n->type = hd_pg_get_text(r, res, i, 1);
    n->title = hd_pg_get_text(r, res, i, 2);
    n->content = hd_pg_get_text(r, res, i, 3);
    n->link = hd_pg_get_text(r, res, i, 4);
    n->sender_id = hd_pg_get_int(res, i, 5);
    n->target_user_id = hd_pg_get_int(res, i, 6);
    n->created_at = hd_pg_get_int(res, i, 7);
    n->is_read = hd_pg_get_bool(res, i, 8);
  }
  out->items = r->list;
  PQclear(res);
  return rc;
}

int hd_pg_notifications_unread(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.notifications.admin_id);
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_NOTIFICATIONS_UNREAD,
                      "SELECT (SELECT count(*) FROM notifications WHERE target_user_id = $1::bigint)"
                      "     + (SELECT count(*) FROM notifications WHERE target_user_id IS NULL)"
                      "     - (SELECT count(*) FROM notification_reads WHERE admin_id = $1::bigint)",
                      &p, &res);
  if (rc) return rc;
  r->out.count.count = hd_pg_get_int(res, 0, 0);
  PQclear(res);
  return 0;
}

int hd_pg_notification_mark_read(hd_pg_t *s, hd_store_req_t *r) {
  int64_t admin = r->in.notifications.admin_id, id = r->in.notifications.notification_id;
  hd_pg_params_t p = {0};
  hd_pg_int(&p, admin);
  hd_pg_int(&p, id);
  hd_pg_int(&p, hd_clock_wall_ms());
  /* one statement: the visibility check and the insert (visible tells a missing notification apart) */
  PGresult *res;
  int rc = hd_pg_exec(s, HD_PG_NOTIFICATION_READ,
                      "WITH visible AS (SELECT n.id FROM notifications n WHERE n.id = $2::bigint AND "
                      VISIBLE_TO_ADMIN "), "
                      "ins AS (INSERT INTO notification_reads (notification_id, admin_id, read_at) "
                      "  SELECT id, $1, $3 FROM visible ON CONFLICT DO NOTHING RETURNING 1) "
                      "SELECT (SELECT count(*) FROM visible), (SELECT count(*) FROM ins)",
                      &p, &res);
  if (rc) return rc;
  bool visible = hd_pg_get_int(res, 0, 0) > 0, changed = hd_pg_get_int(res, 0, 1) > 0;
  PQclear(res);
  if (!visible) return HD_ENOTFOUND;
  r->out.notification_read = (hd_store_notification_read_t){.notification_id = id, .is_read = true, .changed = changed};
  return 0;
}

int hd_pg_notifications_mark_all(hd_pg_t *s, hd_store_req_t *r) {
  hd_pg_params_t p = {0};
  hd_pg_int(&p, r->in.notifications.admin_id);
  hd_pg_int(&p, hd_clock_wall_ms());
  return hd_pg_run(s, HD_PG_NOTIFICATIONS_READ_ALL,
                   "INSERT INTO notification_reads (notification_id, admin_id, read_at) "
                   "SELECT n.id, $1, $2 FROM notifications n WHERE " VISIBLE_TO_ADMIN " AND NOT EXISTS "
                   "(SELECT 1 FROM notification_reads r WHERE r.notification_id = n.id AND r.admin_id = $1) "
                   "ON CONFLICT DO NOTHING",
                   &p, &r->out.count.count);
}
