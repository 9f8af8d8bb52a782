/* SQLite backend, notifications: create, and per-admin views of them. An admin sees the ones
 * targeted at them and the broadcasts (target NULL); their read state is a row per (notification,
 * admin) in notification_reads, so marking read is an idempotent INSERT OR IGNORE. A read row is
 * only ever written for a notification visible to that admin, so unread = visible - read, both
 * counted on indexes alone. A notification's target must be an admin of this database; a
 * broadcast is stored read for the admin who sent it. Lists walk each visibility branch down its index and stop at the limit. */
#include <stdint.h>

#include "core/clock.h"
#include "core/error.h"
#include "store/sqlite.h"

#define VISIBLE_TO_ADMIN "(n.target_user_id = ?1 OR n.target_user_id IS NULL)"

/* 0 when the target names an admin of this database; HD_ENOTFOUND (no such user), HD_ERANGE (a customer). */
static int target_is_admin(hd_sqlite_t *s, int64_t id) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, HD_SQL_NOTIFICATION_TARGET, "SELECT role = 'admin' FROM users WHERE id = ?1");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, id);
  int rc = hd_sqlite_step(s, stmt);
  if (rc == SQLITE_DONE) return HD_ENOTFOUND;
  if (rc != SQLITE_ROW) return hd_sqlite_error(s, rc);
  return hd_sqlite_int(stmt, 0) ? 0 : HD_ERANGE;
}

int hd_sqlite_notification_create(hd_sqlite_t *s, hd_store_req_t *r) {
  if (r->in.notification.target_user_id) {
    int rc = target_is_admin(s, r->in.notification.target_user_id);
    if (rc) return rc;
  }
  sqlite3_stmt *stmt =
      hd_sqlite_stmt(s, HD_SQL_NOTIFICATION_INSERT,
                     "INSERT INTO notifications (type, title, content, link, sender_id, target_user_id, created_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!stmt) return HD_EIO;
  const hd_store_notification_new_t *n = &r->in.notification;
  int64_t now = hd_clock_wall_ms();
  hd_sqlite_bind_text(stmt, 1, n->type);
  hd_sqlite_bind_text(stmt, 2, n->title);
  hd_sqlite_bind_text(stmt, 3, n->content);
  hd_sqlite_bind_text(stmt, 4, n->link);
  hd_sqlite_bind_id(stmt, 5, n->sender_id);
  hd_sqlite_bind_id(stmt, 6, n->target_user_id);
  sqlite3_bind_int64(stmt, 7, now);
  int rc = hd_sqlite_run(s, stmt);
  if (rc) return rc;
  int64_t id = hd_sqlite_last_id(s);
  if (!n->target_user_id && n->sender_id) { /* the sender's own broadcast is read for them */
    sqlite3_stmt *read = hd_sqlite_stmt(s, HD_SQL_NOTIFICATION_READ,
                                        "INSERT OR IGNORE INTO notification_reads (notification_id, admin_id, read_at) "
                                        "VALUES (?1, ?2, ?3)");
    if (!read) return HD_EIO;
    sqlite3_bind_int64(read, 1, id);
    sqlite3_bind_int64(read, 2, n->sender_id);
    sqlite3_bind_int64(read, 3, now);
    if ((rc = hd_sqlite_run(s, read))) return rc;
  }
  r->out.notification = (hd_store_notification_t){
      .id = id,
      .type = n->type,
      .title = n->title,
      .content = n->content,
      .link = n->link,
      .sender_id = n->sender_id,
      .target_user_id = n->target_user_id,
      .is_read = false,
      .created_at = now,
  };
  return 0;
}

int hd_sqlite_notifications_list(hd_sqlite_t *s, hd_store_req_t *r) {
#define UNREAD_FILTER \
  "(?3 = 0 OR NOT EXISTS (SELECT 1 FROM notification_reads r WHERE r.notification_id = n.id AND r.admin_id = ?1))"
  sqlite3_stmt *stmt = hd_sqlite_stmt(
      s, HD_SQL_NOTIFICATIONS_LIST,
      "WITH page(id) AS ("
      "  SELECT id FROM (SELECT n.id FROM notifications n WHERE n.target_user_id = ?1 AND n.id < ?2 AND "
      UNREAD_FILTER " ORDER BY n.id DESC LIMIT ?4)"
      "  UNION ALL"
      "  SELECT id FROM (SELECT n.id FROM notifications n WHERE n.target_user_id IS NULL AND n.id < ?2 AND "
      UNREAD_FILTER " ORDER BY n.id DESC LIMIT ?4)) "
      "SELECT n.id, n.type, n.title, n.content, n.link, n.sender_id, n.target_user_id, n.created_at, "
      "  EXISTS (SELECT 1 FROM notification_reads r WHERE r.notification_id = n.id AND r.admin_id = ?1) "
      "FROM page JOIN notifications n ON n.id = page.id ORDER BY n.id DESC LIMIT ?4");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.notifications.admin_id);
  sqlite3_bind_int64(stmt, 2, r->in.notifications.before_id ? r->in.notifications.before_id : INT64_MAX);
  sqlite3_bind_int(stmt, 3, r->in.notifications.unread_only);
  sqlite3_bind_int(stmt, 4, r->in.notifications.limit);
  hd_store_notifications_t *out = &r->out.notifications;
  int rc;
  while ((rc = hd_sqlite_step(s, stmt)) == SQLITE_ROW) {
    hd_store_notification_t *n = hd_store_req_list(r, sizeof *n, &out->count);
    if (!n) return HD_ENOMEM;
    n->id = hd_sqlite_int(stmt, 0);
    n->type = hd_sqlite_text(r, stmt, 1, NULL);
    n->title = hd_sqlite_text(r, stmt, 2, NULL);
    n->content = hd_sqlite_text(r, stmt, 3, NULL);
    n->link = hd_sqlite_text(r, stmt, 4, NULL);
    n->sender_id = hd_sqlite_int(stmt, 5);
    n->target_user_id = hd_sqlite_int(stmt, 6);
    n->created_at = hd_sqlite_int(stmt, 7);
    n->is_read = hd_sqlite_int(stmt, 8) != 0;
  }
  out->items = r->list;
  return rc == SQLITE_DONE ? 0 : hd_sqlite_error(s, rc);
}

int hd_sqlite_notifications_unread(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(
      s, HD_SQL_NOTIFICATIONS_UNREAD,
      "SELECT (SELECT count(*) FROM notifications WHERE target_user_id = ?1)"
      "     + (SELECT count(*) FROM notifications WHERE target_user_id IS NULL)"
      "     - (SELECT count(*) FROM notification_reads WHERE admin_id = ?1)");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.notifications.admin_id);
  int rc = hd_sqlite_step(s, stmt);
  if (rc != SQLITE_ROW) return hd_sqlite_error(s, rc);
  r->out.count.count = hd_sqlite_int(stmt, 0);
  return 0;
}

int hd_sqlite_notification_mark_read(hd_sqlite_t *s, hd_store_req_t *r) {
  int64_t admin = r->in.notifications.admin_id, id = r->in.notifications.notification_id;
  sqlite3_stmt *vis = hd_sqlite_stmt(s, HD_SQL_NOTIFICATION_VISIBLE,
                                     "SELECT 1 FROM notifications n WHERE n.id = ?2 AND " VISIBLE_TO_ADMIN);
  if (!vis) return HD_EIO;
  sqlite3_bind_int64(vis, 1, admin);
  sqlite3_bind_int64(vis, 2, id);
  int rc = hd_sqlite_step(s, vis);
  if (rc == SQLITE_DONE) return HD_ENOTFOUND;
  if (rc != SQLITE_ROW) return hd_sqlite_error(s, rc);
  sqlite3_stmt *ins = hd_sqlite_stmt(s, HD_SQL_NOTIFICATION_READ,
                                     "INSERT OR IGNORE INTO notification_reads (notification_id, admin_id, read_at) "
                                     "VALUES (?1, ?2, ?3)");
  if (!ins) return HD_EIO;
  sqlite3_bind_int64(ins, 1, id);
  sqlite3_bind_int64(ins, 2, admin);
  sqlite3_bind_int64(ins, 3, hd_clock_wall_ms());
  if ((rc = hd_sqlite_run(s, ins))) return rc;
  r->out.notification_read = (hd_store_notification_read_t){
      .notification_id = id, .is_read = true, .changed = hd_sqlite_changes(s) > 0};
  return 0;
}

int hd_sqlite_notifications_mark_all(hd_sqlite_t *s, hd_store_req_t *r) {
  sqlite3_stmt *stmt =
      hd_sqlite_stmt(s, HD_SQL_NOTIFICATIONS_READ_ALL,
                     "INSERT OR IGNORE INTO notification_reads (notification_id, admin_id, read_at) "
                     "SELECT n.id, ?1, ?2 FROM notifications n WHERE " VISIBLE_TO_ADMIN " AND NOT EXISTS "
                     "(SELECT 1 FROM notification_reads r WHERE r.notification_id = n.id AND r.admin_id = ?1)");
  if (!stmt) return HD_EIO;
  sqlite3_bind_int64(stmt, 1, r->in.notifications.admin_id);
  sqlite3_bind_int64(stmt, 2, hd_clock_wall_ms());
  int rc = hd_sqlite_run(s, stmt);
  if (rc) return rc;
  r->out.count.count = hd_sqlite_changes(s);
  return 0;
}
