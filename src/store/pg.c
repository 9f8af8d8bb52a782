/* The PostgreSQL backend: one libpq connection owned by the store thread, statements prepared once
 * per connection, transactions (the group commit of store.c: one COMMIT per batch; savepoints only
 * when a batch must run again because a request broke its first attempt), reconnection with backoff, and the dispatch of each request to its domain file
 * (pg_users.c, pg_notify.c, pg_chat.c, pg_inbox.c, pg_prune.c). Migrations are in pg_schema.c.
 *
 * Outage: when the connection is lost, the batch that noticed fails (HD_EBUSY; a COMMIT whose answer
 * never came may or may not have been applied) and every later batch first tries to reconnect,
 * at most once per backoff period (RETRY_MIN_MS doubling to RETRY_MAX_MS); between attempts
 * requests fail at once with HD_EBUSY, so nothing waits longer than one connection attempt
 * (connect_timeout, CONNECT_TIMEOUT_S unless the URL sets it). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "store/pg.h"

#define CONNECT_TIMEOUT_S "5"
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 8000

#define ERROR_LOG_EVERY_MS 10000 /* a failing database fails every request: one error line per 10 s */

struct hd_pg {
  PGconn *conn;
  char *url;
  bool prepared[HD_PG_COUNT];      /* on the current connection */
  uint64_t retry_ms;               /* current backoff */
  uint64_t next_attempt;           /* monotonic ms before which no reconnection is tried */
  bool down;                       /* the connection was lost (logged once) */
  uv_thread_t owner;
  atomic_uint_least64_t statements;
  atomic_uint_least64_t off_thread;
  atomic_int schema_version;
  hd_log_limit_t error_log;        /* store thread: SQL errors logged at most every ERROR_LOG_EVERY_MS */
};

/* --- parameters and results -------------------------------------------------------------------- */

static void add_param(hd_pg_params_t *p, const char *value, int len, int format) {
  if (p->n >= HD_PG_PARAMS_MAX) abort(); /* a programming error: the statements are constant */
  p->values[p->n] = value;
  p->lengths[p->n] = len;
  p->formats[p->n] = format;
  p->n++;
}

void hd_pg_int(hd_pg_params_t *p, int64_t v) {
  char *buf = p->buf[p->n < HD_PG_PARAMS_MAX ? p->n : 0];
  snprintf(buf, sizeof p->buf[0], "%lld", (long long)v);
  add_param(p, buf, 0, 0);
}

void hd_pg_id(hd_pg_params_t *p, int64_t id) {
  if (id) hd_pg_int(p, id);
  else add_param(p, NULL, 0, 0);
}

void hd_pg_text(hd_pg_params_t *p, const char *text) { add_param(p, text, 0, 0); }

void hd_pg_bool(hd_pg_params_t *p, bool v) { add_param(p, v ? "t" : "f", 0, 0); }

void hd_pg_bytes(hd_pg_params_t *p, const char *bytes, size_t len) { add_param(p, bytes, (int)len, 1); }

int64_t hd_pg_get_int(const PGresult *res, int row, int col) {
  return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

bool hd_pg_get_bool(const PGresult *res, int row, int col) {
  return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

const char *hd_pg_get_text(hd_store_req_t *r, const PGresult *res, int row, int col) {
  if (PQgetisnull(res, row, col)) return NULL;
  char *copy = hd_store_arena_strndup(&r->arena, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
  if (!copy) {
    r->oom = true;
    return "";
  }
  return copy;
}

const char *hd_pg_get_bytes(hd_store_req_t *r, const PGresult *res, int row, int col, size_t *len) {
  *len = 0;
  size_t n = 0;
  unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), &n);
  char *copy = raw ? hd_store_arena_strndup(&r->arena, (const char *)raw, n) : NULL;
  PQfreemem(raw);
  if (!copy) {
    r->oom = true;
    return "";
  }
  *len = n;
  return copy;
}

/* --- statements -------------------------------------------------------------------------------- */

PGconn *hd_pg_conn(hd_pg_t *s) { return s->conn; }

void hd_pg_count_statement(hd_pg_t *s) {
  atomic_fetch_add_explicit(&s->statements, 1, memory_order_relaxed);
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &s->owner)) atomic_fetch_add_explicit(&s->off_thread, 1, memory_order_relaxed);
}

/* Notes that the connection is gone (once per outage); HD_EBUSY. */
static int lost(hd_pg_t *s) {
  if (!s->down) HD_ERROR("store", "postgres connection lost", "err=\"%s\"", PQerrorMessage(s->conn));
  s->down = true;
  return HD_EBUSY;
}

/* The HD_E* code for a failed result (which it frees). */
static int result_error(hd_pg_t *s, PGresult *res, int id) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  int rc = HD_EIO;
  if (PQstatus(s->conn) != CONNECTION_OK) rc = lost(s);
  else if (state && !strcmp(state, "23505")) rc = HD_EEXISTS;
  else if (state && (!strncmp(state, "23", 2) || !strncmp(state, "22", 2))) rc = HD_EINVAL;
  else if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01"))) rc = HD_EBUSY;
  unsigned long long skipped;
  if (rc == HD_EIO && hd_log_limit_pass(&s->error_log, ERROR_LOG_EVERY_MS, &skipped))
    HD_ERROR("store", "postgres error", "statement=%d state=%s err=\"%s\" errors_not_logged=%llu", id,
             state ? state : "-", res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn), skipped);
  PQclear(res);
  return rc;
}

int hd_pg_exec(hd_pg_t *s, int id, const char *sql, const hd_pg_params_t *p, PGresult **res) {
  *res = NULL;
  char name[16];
  snprintf(name, sizeof name, "s%d", id);
  if (!s->prepared[id]) {
    PGresult *prep = PQprepare(s->conn, name, sql, 0, NULL);
    if (PQresultStatus(prep) != PGRES_COMMAND_OK) return result_error(s, prep, id);
    PQclear(prep);
    s->prepared[id] = true;
  }
  hd_pg_count_statement(s);
  PGresult *out = PQexecPrepared(s->conn, name, p->n, p->values, p->lengths, p->formats, 0);
  ExecStatusType st = PQresultStatus(out);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return result_error(s, out, id);
  *res = out;
  return 0;
}

int hd_pg_run(hd_pg_t *s, int id, const char *sql, const hd_pg_params_t *p, int64_t *changed) {
  PGresult *res;
  int rc = hd_pg_exec(s, id, sql, p, &res);
  if (rc) return rc;
  if (changed) *changed = strtoll(PQcmdTuples(res), NULL, 10);
  PQclear(res);
  return 0;
}

/* Runs a constant control statement (BEGIN, SAVEPOINT ...) with the simple protocol; 0 or HD_E*. */
static int control(hd_pg_t *s, const char *sql) {
  if (PQstatus(s->conn) != CONNECTION_OK) return lost(s);
  hd_pg_count_statement(s);
  PGresult *res = PQexec(s->conn, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) return result_error(s, res, -1);
  PQclear(res);
  return 0;
}

/* --- connection -------------------------------------------------------------------------------- */

/* Copies libpq's message into buf with the URL it may quote (libpq quotes a URI it cannot parse)
 * redacted, and without the trailing newline; returns buf. */
static const char *scrub(const char *msg, const char *url, char *buf, size_t len) {
  char shown[512];
  const char *hit = msg ? strstr(msg, url) : NULL;
  if (hit)
    snprintf(buf, len, "%.*s%s%s", (int)(hit - msg), msg, hd_store_redact(url, shown, sizeof shown), hit + strlen(url));
  else
    snprintf(buf, len, "%s", msg ? msg : "");
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
  return buf;
}

static void ignore_notice(void *arg, const char *message) { (void)arg, (void)message; }

/* A new connection to s->url (check PQstatus). The URL's own settings win over the defaults. */
static PGconn *connect_to(const char *url) {
  const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
  const char *const values[] = {CONNECT_TIMEOUT_S, "herald", url, NULL};
  PGconn *conn = PQconnectdbParams(keys, values, 1);
  if (conn) PQsetNoticeProcessor(conn, ignore_notice, NULL);
  return conn;
}

/* Makes sure the connection is up, reconnecting when the backoff allows; 0 or HD_EBUSY. */
static int ensure_connected(hd_pg_t *s) {
  if (PQstatus(s->conn) == CONNECTION_OK) return 0;
  uint64_t now = hd_clock_mono_ns() / 1000000;
  if (now < s->next_attempt) return HD_EBUSY;
  lost(s);
  PQreset(s->conn);
  if (PQstatus(s->conn) == CONNECTION_OK) {
    PQsetNoticeProcessor(s->conn, ignore_notice, NULL);
    memset(s->prepared, 0, sizeof s->prepared);
    s->down = false;
    s->retry_ms = RETRY_MIN_MS;
    s->next_attempt = 0;
    HD_INFO("store", "postgres connection restored", "backend=%s", "postgres");
    return 0;
  }
  char msg[512];
  HD_WARN("store", "postgres reconnection failed", "retry_ms=%llu err=\"%s\"", (unsigned long long)s->retry_ms,
          scrub(PQerrorMessage(s->conn), s->url, msg, sizeof msg));
  s->next_attempt = hd_clock_mono_ns() / 1000000 + s->retry_ms;
  s->retry_ms = s->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : s->retry_ms * 2;
  return HD_EBUSY;
}

static void pg_close(void *p) {
  hd_pg_t *s = p;
  if (!s) return;
  PQfinish(s->conn);
  free(s->url);
  free(s);
}

static int pg_open(const char *url, void **out, int *applied, char *err, size_t errlen) {
  *out = NULL;
  *applied = 0;
  hd_pg_t *s = calloc(1, sizeof *s);
  if (!s || !(s->url = strdup(url))) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return HD_ENOMEM;
  }
  s->owner = uv_thread_self();
  s->retry_ms = RETRY_MIN_MS;
  s->conn = connect_to(url);
  if (PQstatus(s->conn) != CONNECTION_OK) {
    char where[512], msg[512];
    snprintf(err, errlen, "cannot connect to %s: %s", hd_store_redact(url, where, sizeof where),
             s->conn ? scrub(PQerrorMessage(s->conn), url, msg, sizeof msg) : "out of memory");
    pg_close(s);
    return HD_EIO;
  }
  int version = 0;
  int rc = hd_pg_migrate(s, applied, &version, err, errlen);
  if (rc) {
    pg_close(s);
    return rc;
  }
  atomic_store(&s->schema_version, version);
  *out = s;
  return 0;
}

/* --- transactions ------------------------------------------------------------------------------ */

static int pg_begin(void *p, bool write) {
  (void)write; /* READ COMMITTED; conflicting writers wait on row locks */
  hd_pg_t *s = p;
  int rc = ensure_connected(s);
  return rc ? rc : control(s, "BEGIN");
}

static int pg_commit(void *p) {
  hd_pg_t *s = p;
  if (PQstatus(s->conn) != CONNECTION_OK) return lost(s);
  if (PQtransactionStatus(s->conn) != PQTRANS_INTRANS) return HD_EIO; /* COMMIT would roll back */
  hd_pg_count_statement(s);
  PGresult *res = PQexec(s->conn, "COMMIT");
  bool ok = PQresultStatus(res) == PGRES_COMMAND_OK && !strcmp(PQcmdStatus(res), "COMMIT");
  if (!ok) return result_error(s, res, -1);
  PQclear(res);
  return 0;
}

static void pg_rollback(void *p) {
  hd_pg_t *s = p;
  if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE) control(s, "ROLLBACK");
}

static int pg_savepoint(void *p) { return control(p, "SAVEPOINT req"); }

static int pg_release(void *p) { return control(p, "RELEASE SAVEPOINT req"); }

static int pg_undo(void *p) {
  int rc = control(p, "ROLLBACK TO SAVEPOINT req");
  return rc ? rc : control(p, "RELEASE SAVEPOINT req");
}

/* --- dispatch ---------------------------------------------------------------------------------- */

static int (*const ops[HD_STORE_OP_COUNT])(hd_pg_t *, hd_store_req_t *) = {
    [HD_STORE_OP_USER_CREATE] = hd_pg_user_create,
    [HD_STORE_OP_USER_GET_BY_NAME] = hd_pg_user_get,
    [HD_STORE_OP_USER_GET] = hd_pg_user_get,
    [HD_STORE_OP_USERS_LIST] = hd_pg_users_list,
    [HD_STORE_OP_USER_UPDATE] = hd_pg_user_update,
    [HD_STORE_OP_USER_DELETE] = hd_pg_user_delete,
    [HD_STORE_OP_USERS_SEARCH] = hd_pg_users_search,
    [HD_STORE_OP_USER_STATES] = hd_pg_user_states,
    [HD_STORE_OP_USERS_VERSION] = hd_pg_users_version,
    [HD_STORE_OP_USERS_GET_MANY] = hd_pg_users_get_many,
    [HD_STORE_OP_NOTIFICATION_CREATE] = hd_pg_notification_create,
    [HD_STORE_OP_NOTIFICATIONS_LIST] = hd_pg_notifications_list,
    [HD_STORE_OP_NOTIFICATIONS_UNREAD] = hd_pg_notifications_unread,
    [HD_STORE_OP_NOTIFICATION_MARK_READ] = hd_pg_notification_mark_read,
    [HD_STORE_OP_NOTIFICATIONS_MARK_ALL] = hd_pg_notifications_mark_all,
    [HD_STORE_OP_SESSION_CREATE] = hd_pg_session_create,
    [HD_STORE_OP_SESSION_GET] = hd_pg_session_get,
    [HD_STORE_OP_SESSIONS_LIST] = hd_pg_sessions_list,
    [HD_STORE_OP_SESSION_ASSIGN] = hd_pg_session_assign,
    [HD_STORE_OP_SESSION_CLAIM] = hd_pg_session_claim,
    [HD_STORE_OP_SESSION_CLOSE] = hd_pg_session_close,
    [HD_STORE_OP_SESSIONS_WAITING] = hd_pg_sessions_waiting,
    [HD_STORE_OP_ADMIN_LOADS] = hd_pg_admin_loads,
    [HD_STORE_OP_MESSAGE_CREATE] = hd_pg_message_create,
    [HD_STORE_OP_MESSAGES_LIST] = hd_pg_messages_list,
    [HD_STORE_OP_SESSION_MARK_READ] = hd_pg_session_mark_read,
    [HD_STORE_OP_SESSION_SET_PRIORITY] = hd_pg_session_set_priority,
    [HD_STORE_OP_INBOX_TAKE] = hd_pg_inbox_take,
    [HD_STORE_OP_INBOX_REMOVE] = hd_pg_inbox_remove,
    [HD_STORE_OP_PRUNE] = hd_pg_prune,
    [HD_STORE_OP_TOPICS_LOAD] = hd_pg_topics_load,
};

static bool pg_aborted(void *p) {
  hd_pg_t *s = p;
  return PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) != PQTRANS_INTRANS;
}

static int pg_exec(void *p, hd_store_req_t *r) {
  if (!ops[r->op]) return HD_EIO; /* an operation this backend lacks: an error, not a crash */
  int rc = ops[r->op](p, r);
  return !rc && r->oom ? HD_ENOMEM : rc;
}

static int pg_inbox_put_one(void *p, const hd_store_inbox_entry_t *e, int64_t cap, bool *inserted, int64_t *dropped) {
  return hd_pg_inbox_put_one(p, e, cap, inserted, dropped);
}

static int pg_topic_insert(void *p, const hd_store_topic_entry_t *e, bool *inserted) {
  return hd_pg_topic_insert(p, e, inserted);
}

static int pg_topic_trim(void *p, const char *topic, int64_t keep) { return hd_pg_topic_trim(p, topic, keep); }

static int pg_topics_saved(void *p, int64_t min_created_at, bool clean) {
  return hd_pg_topics_saved(p, min_created_at, clean);
}

static bool pg_last_thread(void *p, uv_thread_t *out) {
  hd_pg_t *s = p;
  if (!atomic_load(&s->statements)) return false;
  *out = s->owner; /* every statement ran there unless statements_off_thread says otherwise */
  return true;
}

static void pg_stats(void *p, hd_store_backend_stats_t *out) {
  hd_pg_t *s = p;
  out->statements = atomic_load(&s->statements);
  out->statements_off_thread = atomic_load(&s->off_thread);
  out->schema_version = atomic_load(&s->schema_version);
}

const hd_store_backend_t hd_store_pg_backend = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .undo = pg_undo,
    .aborted = pg_aborted,
    .exec = pg_exec,
    .inbox_put_one = pg_inbox_put_one,
    .topic_insert = pg_topic_insert,
    .topic_trim = pg_topic_trim,
    .topics_saved = pg_topics_saved,
    .last_thread = pg_last_thread,
    .stats = pg_stats,
};
