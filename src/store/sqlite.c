/* The SQLite backend: connection set-up (WAL, synchronous=FULL, foreign keys, busy timeout),
 * the statement cache, transactions and per-request savepoints, schema migrations, and the
 * dispatch of each request to its domain file (sqlite_users.c, sqlite_notify.c, sqlite_chat.c,
 * sqlite_inbox.c, sqlite_prune.c). Only constant SQL is ever compiled; user data is always bound. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "store/sqlite.h"

#define STORE_LOG_EVERY_MS 10000 /* a failing disk fails every request: one error line per 10 s */

#define BUSY_TIMEOUT_MS 5000

struct hd_sqlite {
  sqlite3 *db;
  sqlite3_stmt *stmts[HD_SQL_COUNT];
  int used[HD_SQL_COUNT];          /* ids taken during the current request, to reset after it */
  size_t nused;
  bool in_use[HD_SQL_COUNT];
  uv_thread_t owner;               /* the thread that opened the database */
  atomic_uint_least64_t statements;
  atomic_uint_least64_t off_thread;
  atomic_int schema_version;
  hd_log_limit_t error_log;        /* store thread: errors logged at most every STORE_LOG_EVERY_MS */
};

/* --- statements -------------------------------------------------------------------------------- */

static void count_statement(hd_sqlite_t *s) {
  atomic_fetch_add_explicit(&s->statements, 1, memory_order_relaxed);
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &s->owner)) atomic_fetch_add_explicit(&s->off_thread, 1, memory_order_relaxed);
}

sqlite3_stmt *hd_sqlite_stmt(hd_sqlite_t *s, int id, const char *sql) {
  sqlite3_stmt *stmt = s->stmts[id];
  if (!stmt) {
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
    if (rc != SQLITE_OK) {
      HD_ERROR("store", "cannot prepare statement", "id=%d err=\"%s\"", id, sqlite3_errmsg(s->db));
      return NULL;
    }
    s->stmts[id] = stmt;
  }
  if (!s->in_use[id]) {
    s->in_use[id] = true;
    s->used[s->nused++] = id;
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  return stmt;
}

/* Resets every statement the request took, so none holds a cursor or a pointer to its arena. */
static void release_statements(hd_sqlite_t *s) {
  for (size_t i = 0; i < s->nused; i++) {
    sqlite3_reset(s->stmts[s->used[i]]);
    sqlite3_clear_bindings(s->stmts[s->used[i]]);
    s->in_use[s->used[i]] = false;
  }
  s->nused = 0;
}

int hd_sqlite_step(hd_sqlite_t *s, sqlite3_stmt *stmt) {
  count_statement(s);
  return sqlite3_step(stmt);
}

int hd_sqlite_run(hd_sqlite_t *s, sqlite3_stmt *stmt) {
  int rc;
  while ((rc = hd_sqlite_step(s, stmt)) == SQLITE_ROW) {
  }
  return rc == SQLITE_DONE ? 0 : hd_sqlite_error(s, rc);
}

int hd_sqlite_error(hd_sqlite_t *s, int rc) {
  switch (rc & 0xff) {
  case SQLITE_CONSTRAINT:
    return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ? HD_EEXISTS : HD_EINVAL;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return HD_EBUSY;
  case SQLITE_NOMEM: return HD_ENOMEM;
  case SQLITE_TOOBIG: return HD_ETOOBIG;
  default: {
    unsigned long long skipped;
    if (hd_log_limit_pass(&s->error_log, STORE_LOG_EVERY_MS, &skipped))
      HD_ERROR("store", "sqlite error", "code=%d err=\"%s\" errors_not_logged=%llu", rc, sqlite3_errmsg(s->db), skipped);
    return HD_EIO;
  }
  }
}

int64_t hd_sqlite_changes(hd_sqlite_t *s) { return sqlite3_changes64(s->db); }
int64_t hd_sqlite_last_id(hd_sqlite_t *s) { return sqlite3_last_insert_rowid(s->db); }

int hd_sqlite_bind_text(sqlite3_stmt *stmt, int i, const char *text) {
  return text ? sqlite3_bind_text(stmt, i, text, -1, SQLITE_STATIC) : sqlite3_bind_null(stmt, i);
}

int hd_sqlite_bind_id(sqlite3_stmt *stmt, int i, int64_t id) {
  return id ? sqlite3_bind_int64(stmt, i, id) : sqlite3_bind_null(stmt, i);
}

const char *hd_sqlite_text(hd_store_req_t *r, sqlite3_stmt *stmt, int col, size_t *len) {
  const char *p = (const char *)sqlite3_column_text(stmt, col);
  size_t n = (size_t)sqlite3_column_bytes(stmt, col);
  if (len) *len = p ? n : 0;
  if (!p) return NULL;
  char *copy = hd_store_arena_strndup(&r->arena, p, n);
  if (!copy) {
    r->oom = true;
    if (len) *len = 0;
    return "";
  }
  return copy;
}

int64_t hd_sqlite_int(sqlite3_stmt *stmt, int col) { return sqlite3_column_int64(stmt, col); }

/* Runs one of the cached transaction-control statements; 0 or HD_E*. */
static int control(hd_sqlite_t *s, int id, const char *sql) {
  sqlite3_stmt *stmt = hd_sqlite_stmt(s, id, sql);
  int rc = stmt ? hd_sqlite_run(s, stmt) : HD_EIO;
  release_statements(s);
  return rc;
}

/* Runs a constant SQL script (set-up and migrations only); 0 or HD_E* with the message in err. */
static int script(hd_sqlite_t *s, const char *sql, char *err, size_t errlen) {
  count_statement(s);
  char *msg = NULL;
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
  sqlite3_free(msg);
  return rc == SQLITE_OK ? 0 : HD_EIO;
}

/* The first column of the first row of a constant query with an optional integer parameter, or
 * `none` when it returns no row or fails. */
static int64_t query_int(hd_sqlite_t *s, const char *sql, int64_t param, int64_t none) {
  sqlite3_stmt *stmt;
  int64_t v = none;
  if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK) return none;
  if (sqlite3_bind_parameter_count(stmt)) sqlite3_bind_int64(stmt, 1, param);
  if (hd_sqlite_step(s, stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL)
    v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return v;
}

/* --- migrations -------------------------------------------------------------------------------- */

/* Applies every migration the database lacks, each in its own IMMEDIATE transaction (another
 * process migrating at the same time waits, then finds it done). */
static int migrate(hd_sqlite_t *s, int *applied, char *err, size_t errlen) {
  size_t n;
  const hd_store_migration_t *m = hd_store_migrations(&n);
  int latest = m[n - 1].version;
  char msg[200] = "";
  if (script(s,
             "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
             "  version INTEGER PRIMARY KEY,\n"
             "  name TEXT NOT NULL,\n"
             "  applied_at INTEGER NOT NULL\n"
             ")",
             msg, sizeof msg)) {
    snprintf(err, errlen, "cannot create schema_migrations: %s", msg);
    return HD_EIO;
  }
  int64_t current = query_int(s, "SELECT max(version) FROM schema_migrations", 0, 0);
  if (current > latest) {
    snprintf(err, errlen, "the database's schema version %lld is newer than this herald's (%d)", (long long)current,
             latest);
    return HD_EVERSION;
  }
  for (size_t i = 0; i < n; i++) {
    if (script(s, "BEGIN IMMEDIATE", msg, sizeof msg)) {
      snprintf(err, errlen, "cannot start migration %d: %s", m[i].version, msg);
      return HD_EIO;
    }
    if (query_int(s, "SELECT 1 FROM schema_migrations WHERE version = ?1", m[i].version, 0)) {
      script(s, "COMMIT", msg, sizeof msg);
      continue;
    }
    sqlite3_stmt *ins = NULL;
    int rc = script(s, m[i].sqlite, msg, sizeof msg);
    static const char insert[] = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)";
    if (!rc && sqlite3_prepare_v2(s->db, insert, -1, &ins, NULL) != SQLITE_OK) {
      snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(s->db));
      rc = HD_EIO;
    }
    if (!rc) {
      sqlite3_bind_int(ins, 1, m[i].version);
      sqlite3_bind_text(ins, 2, m[i].name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(ins, 3, hd_clock_wall_ms());
      if (hd_sqlite_step(s, ins) != SQLITE_DONE) {
        snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(s->db));
        rc = HD_EIO;
      }
    }
    sqlite3_finalize(ins);
    if (!rc) rc = script(s, "COMMIT", msg, sizeof msg);
    if (rc) {
      char ignored[64];
      if (!sqlite3_get_autocommit(s->db)) script(s, "ROLLBACK", ignored, sizeof ignored);
      snprintf(err, errlen, "migration %d (%s) failed: %s", m[i].version, m[i].name, msg);
      return rc;
    }
    (*applied)++;
  }
  atomic_store(&s->schema_version, (int)query_int(s, "SELECT max(version) FROM schema_migrations", 0, 0));
  return 0;
}

/* --- open / close ------------------------------------------------------------------------------ */

/* Creates the directories above a database file (mode 0700), like `mkdir -p`. */
static int make_parent_dirs(const char *path, char *err, size_t errlen) {
  if (!strcmp(path, ":memory:") || !strncmp(path, "file:", 5)) return 0;
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path) return 0;
  size_t len = (size_t)(slash - path);
  if (len >= sizeof dir) {
    snprintf(err, errlen, "database path too long");
    return HD_EINVAL;
  }
  memcpy(dir, path, len);
  dir[len] = '\0';
  for (char *p = dir + 1;; p++) {
    char c = *p;
    if (c != '/' && c != '\0') continue;
    *p = '\0';
    if (mkdir(dir, 0700) && errno != EEXIST) {
      snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
      return HD_EIO;
    }
    *p = c;
    if (!c) return 0;
  }
}

static void sq_close(void *p) {
  hd_sqlite_t *s = p;
  if (!s) return;
  for (int i = 0; i < HD_SQL_COUNT; i++) sqlite3_finalize(s->stmts[i]);
  if (sqlite3_close(s->db) != SQLITE_OK) HD_ERROR("store", "sqlite close failed", "err=\"%s\"", sqlite3_errmsg(s->db));
  free(s);
}

static int sq_open(const char *path, void **out, int *applied, char *err, size_t errlen) {
  *out = NULL;
  *applied = 0;
  int rc = make_parent_dirs(path, err, errlen);
  if (rc) return rc;
  hd_sqlite_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return HD_ENOMEM;
  }
  s->owner = uv_thread_self();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  if ((rc = sqlite3_open_v2(path, &s->db, flags, NULL)) != SQLITE_OK) {
    snprintf(err, errlen, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    sq_close(s);
    return HD_EIO;
  }
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
  char msg[200] = "";
  bool memory = !strcmp(path, ":memory:");
  sqlite3_stmt *wal = NULL;
  const char *mode = "";
  if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &wal, NULL) == SQLITE_OK &&
      hd_sqlite_step(s, wal) == SQLITE_ROW)
    mode = (const char *)sqlite3_column_text(wal, 0);
  bool wal_ok = memory || (mode && !strcmp(mode, "wal"));
  if (!wal_ok) snprintf(msg, sizeof msg, "cannot switch to WAL (journal mode %s): %s", mode ? mode : "?",
                        sqlite3_errmsg(s->db));
  sqlite3_finalize(wal);
  rc = wal_ok ? 0 : HD_EIO;
  if (!rc) rc = script(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF", msg,
                       sizeof msg);
  if (!rc && (query_int(s, "PRAGMA synchronous", 0, -1) != 2 || query_int(s, "PRAGMA foreign_keys", 0, -1) != 1)) {
    snprintf(msg, sizeof msg, "synchronous=FULL or foreign_keys=ON did not take effect");
    rc = HD_EIO;
  }
  if (rc) {
    snprintf(err, errlen, "%s: %s", path, msg);
    sq_close(s);
    return rc;
  }
  if ((rc = migrate(s, applied, err, errlen))) {
    sq_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* --- transactions ------------------------------------------------------------------------------ */

static int sq_begin(void *p, bool write) {
  return write ? control(p, HD_SQL_BEGIN_IMMEDIATE, "BEGIN IMMEDIATE") : control(p, HD_SQL_BEGIN, "BEGIN");
}

static int sq_commit(void *p) { return control(p, HD_SQL_COMMIT, "COMMIT"); }

static void sq_rollback(void *p) {
  hd_sqlite_t *s = p;
  if (!sqlite3_get_autocommit(s->db)) control(s, HD_SQL_ROLLBACK, "ROLLBACK");
}

static int sq_savepoint(void *p) { return control(p, HD_SQL_SAVEPOINT, "SAVEPOINT req"); }

static int sq_release(void *p) { return control(p, HD_SQL_RELEASE, "RELEASE req"); }

static int sq_undo(void *p) {
  hd_sqlite_t *s = p;
  if (sqlite3_get_autocommit(s->db)) return HD_EIO; /* the error already rolled the transaction back */
  int rc = control(s, HD_SQL_ROLLBACK_TO, "ROLLBACK TO req");
  return rc ? rc : control(s, HD_SQL_RELEASE, "RELEASE req");
}

/* --- dispatch ---------------------------------------------------------------------------------- */

static int (*const ops[HD_STORE_OP_COUNT])(hd_sqlite_t *, hd_store_req_t *) = {
    [HD_STORE_OP_USER_CREATE] = hd_sqlite_user_create,
    [HD_STORE_OP_USER_GET_BY_NAME] = hd_sqlite_user_get,
    [HD_STORE_OP_USER_GET] = hd_sqlite_user_get,
    [HD_STORE_OP_USERS_LIST] = hd_sqlite_users_list,
    [HD_STORE_OP_USER_UPDATE] = hd_sqlite_user_update,
    [HD_STORE_OP_USER_DELETE] = hd_sqlite_user_delete,
    [HD_STORE_OP_USERS_SEARCH] = hd_sqlite_users_search,
    [HD_STORE_OP_USER_STATES] = hd_sqlite_user_states,
    [HD_STORE_OP_USERS_VERSION] = hd_sqlite_users_version,
    [HD_STORE_OP_USERS_GET_MANY] = hd_sqlite_users_get_many,
    [HD_STORE_OP_NOTIFICATION_CREATE] = hd_sqlite_notification_create,
    [HD_STORE_OP_NOTIFICATIONS_LIST] = hd_sqlite_notifications_list,
    [HD_STORE_OP_NOTIFICATIONS_UNREAD] = hd_sqlite_notifications_unread,
    [HD_STORE_OP_NOTIFICATION_MARK_READ] = hd_sqlite_notification_mark_read,
    [HD_STORE_OP_NOTIFICATIONS_MARK_ALL] = hd_sqlite_notifications_mark_all,
    [HD_STORE_OP_SESSION_CREATE] = hd_sqlite_session_create,
    [HD_STORE_OP_SESSION_GET] = hd_sqlite_session_get,
    [HD_STORE_OP_SESSIONS_LIST] = hd_sqlite_sessions_list,
    [HD_STORE_OP_SESSION_ASSIGN] = hd_sqlite_session_assign,
    [HD_STORE_OP_SESSION_CLAIM] = hd_sqlite_session_claim,
    [HD_STORE_OP_SESSION_CLOSE] = hd_sqlite_session_close,
    [HD_STORE_OP_SESSIONS_WAITING] = hd_sqlite_sessions_waiting,
    [HD_STORE_OP_ADMIN_LOADS] = hd_sqlite_admin_loads,
    [HD_STORE_OP_MESSAGE_CREATE] = hd_sqlite_message_create,
    [HD_STORE_OP_MESSAGES_LIST] = hd_sqlite_messages_list,
    [HD_STORE_OP_SESSION_MARK_READ] = hd_sqlite_session_mark_read,
    [HD_STORE_OP_SESSION_SET_PRIORITY] = hd_sqlite_session_set_priority,
    [HD_STORE_OP_INBOX_TAKE] = hd_sqlite_inbox_take,
    [HD_STORE_OP_INBOX_REMOVE] = hd_sqlite_inbox_remove,
    [HD_STORE_OP_TOPICS_LOAD] = hd_sqlite_topics_load,
    [HD_STORE_OP_PRUNE] = hd_sqlite_prune,
};

static int sq_exec(void *p, hd_store_req_t *r) {
  hd_sqlite_t *s = p;
  int rc = ops[r->op](s, r);
  if (!rc && r->oom) rc = HD_ENOMEM;
  release_statements(s);
  return rc;
}

static int sq_topic_insert(void *p, const hd_store_topic_entry_t *e, bool *inserted) {
  hd_sqlite_t *s = p;
  int rc = hd_sqlite_topic_insert(s, e, inserted);
  release_statements(s); /* its bindings point into the request */
  return rc;
}

static int sq_topic_trim(void *p, const char *topic, int64_t keep) {
  hd_sqlite_t *s = p;
  int rc = hd_sqlite_topic_trim(s, topic, keep);
  release_statements(s);
  return rc;
}

static int sq_topics_saved(void *p, int64_t min_created_at, bool clean) {
  hd_sqlite_t *s = p;
  int rc = hd_sqlite_topics_saved(s, min_created_at, clean);
  release_statements(s);
  return rc;
}

static int sq_inbox_put_one(void *p, const hd_store_inbox_entry_t *e, int64_t cap, bool *inserted, int64_t *dropped) {
  hd_sqlite_t *s = p;
  int rc = hd_sqlite_inbox_put_one(s, e, cap, inserted, dropped);
  release_statements(s); /* its bindings point into the request */
  return rc;
}

static bool sq_last_thread(void *p, uv_thread_t *out) {
  hd_sqlite_t *s = p;
  if (!atomic_load(&s->statements)) return false;
  *out = s->owner; /* every statement ran there unless statements_off_thread says otherwise */
  return true;
}

static void sq_stats(void *p, hd_store_backend_stats_t *out) {
  hd_sqlite_t *s = p;
  out->statements = atomic_load(&s->statements);
  out->statements_off_thread = atomic_load(&s->off_thread);
  out->schema_version = atomic_load(&s->schema_version);
}

const hd_store_backend_t hd_store_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .undo = sq_undo,
    .exec = sq_exec,
    .inbox_put_one = sq_inbox_put_one,
    .topic_insert = sq_topic_insert,
    .topic_trim = sq_topic_trim,
    .topics_saved = sq_topics_saved,
    .last_thread = sq_last_thread,
    .stats = sq_stats,
};
