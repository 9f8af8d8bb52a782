/* Unit tests for the store against a real SQLite file in a temp directory and a real uv loop, and
 * again against PostgreSQL when HERALD_TEST_POSTGRES_URL names a server (scripts/pg-test-server.sh;
 * each test gets a fresh database there):
 * every operation's results and refusals, callback order, group commit, savepoint isolation inside
 * a batch, durability across close/reopen and across kill -9, migrations, drain on close, that
 * no SQL ever runs on the loop thread, and several loops on their own threads sharing one store
 * through their own handles (answers on the submitting thread, in order, closes in any order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "store/store.h"

typedef struct {
  char dir[64];
  char path[512];
  char dbname[64];                 /* PostgreSQL: this test's database */
  uv_loop_t loop;
  hd_store_t *st;
} fx_t;

/* --- fixture ----------------------------------------------------------------------------------- */

static void rm_rf(const char *dir) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static hd_store_t *open_store(fx_t *fx) {
  char err[256];
  hd_store_t *st = hd_store_open(&fx->loop, fx->path, err, sizeof err);
  if (!st) fail_msg("open %s: %s", fx->path, err);
  return st;
}

/* PostgreSQL: the server URL (HERALD_TEST_POSTGRES_URL); NULL runs SQLite only. */
static const char *pg_url;
static bool pg; /* the tests now running use PostgreSQL */
static int pg_seq;

/* Runs one statement on the server's maintenance database; fails the test on error. */
static void pg_admin(const char *sql) {
  PGconn *c = PQconnectdb(pg_url);
  if (PQstatus(c) != CONNECTION_OK) fail_msg("postgres: %s", PQerrorMessage(c));
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
}

/* Runs one statement on this test's database; returns the first cell as an integer (0 when none). */
static long long pg_query(fx_t *fx, const char *sql) {
  PGconn *c = PQconnectdb(fx->path);
  if (PQstatus(c) != CONNECTION_OK) fail_msg("postgres: %s", PQerrorMessage(c));
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  long long v = st == PGRES_TUPLES_OK && PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
  PQclear(r);
  PQfinish(c);
  return v;
}

/* fx->path for a new database named after this process and a counter (created). */
static void pg_new_database(fx_t *fx) {
  char sql[160];
  snprintf(fx->dbname, sizeof fx->dbname, "herald_ut_%d_%d", (int)getpid(), ++pg_seq);
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", fx->dbname);
  pg_admin(sql);
  const char *slash = strrchr(pg_url, '/');
  size_t base = slash && slash > strstr(pg_url, "://") + 2 ? (size_t)(slash - pg_url) : strlen(pg_url);
  snprintf(fx->path, sizeof fx->path, "%.*s/%s", (int)base, pg_url, fx->dbname);
}

static int setup(void **state) {
  fx_t *fx = calloc(1, sizeof *fx);
  snprintf(fx->dir, sizeof fx->dir, "/tmp/herald-store-XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  if (pg) pg_new_database(fx);
  else snprintf(fx->path, sizeof fx->path, "%s/data/herald.db", fx->dir); /* data/ does not exist yet */
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  fx->st = open_store(fx);
  *state = fx;
  return 0;
}

/* Closes the store (if open) and lets the loop release its handle. */
static void close_store(fx_t *fx) {
  if (fx->st) hd_store_close(fx->st);
  fx->st = NULL;
  uv_run(&fx->loop, UV_RUN_DEFAULT);
}

static int teardown(void **state) {
  fx_t *fx = *state;
  close_store(fx);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
  rm_rf(fx->dir);
  if (pg) {
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", fx->dbname);
    pg_admin(sql);
  }
  free(fx);
  return 0;
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until *counter reaches want (fails after 20 s). */
static void run_until(fx_t *fx, const int *counter, int want) {
  uv_timer_t tick; /* wakes the loop so the deadline is checked even when nothing arrives */
  uv_timer_init(&fx->loop, &tick);
  uv_timer_start(&tick, on_tick, 50, 50);
  uint64_t deadline = uv_now(&fx->loop) + 20000;
  while (*counter < want) {
    if (uv_now(&fx->loop) > deadline) fail_msg("timed out: %d of %d callbacks", *counter, want);
    uv_run(&fx->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* --- result capture (results die with the callback: copy) -------------------------------------- */

typedef struct {
  int64_t id, user_id, admin_id, last_message_at, user_unread, admin_unread, closed_at, created_at, updated_at;
  int priority;
  char status[16];
  char last_message[1024];
} sess_t;

typedef struct {
  int calls;
  int status;
  int64_t id, n, dropped;
  bool flag, flag2;
  char text[1024], text2[1024];
  size_t count;
  int64_t ids[1100];
  bool reads[128];
  sess_t sess, sessions[16];
  int64_t msg_session_id, msg_sender_id;
  char msg_role[16], msg_type[16];
} got_t;

/* Appends s and a comma to buf (of size n) when it fits, else marks the overflow with '~'. */
static void append(char *buf, size_t n, const char *s) {
  size_t len = strlen(buf);
  if (len + strlen(s) + 2 > n) {
    if (len + 2 <= n && (!len || buf[len - 1] != '~')) strcat(buf, "~");
    return;
  }
  strcat(buf, s);
  strcat(buf, ",");
}

static void copy_session(sess_t *d, const hd_store_session_t *s) {
  *d = (sess_t){s->id, s->user_id, s->admin_id, s->last_message_at, s->user_unread, s->admin_unread,
                s->closed_at, s->created_at, s->updated_at, s->priority, "", ""};
  snprintf(d->status, sizeof d->status, "%s", s->status);
  snprintf(d->last_message, sizeof d->last_message, "%s", s->last_message);
}

static void on_user(void *arg, int status, const hd_store_user_t *u) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) {
    assert_null(u);
    return;
  }
  g->id = u->id;
  g->n = u->created_at;
  snprintf(g->text, sizeof g->text, "%s|%s|%s", u->name, u->role, u->display_name);
  snprintf(g->text2, sizeof g->text2, "%s", u->password_hash ? u->password_hash : "(null)");
}

static void on_users(void *arg, int status, const hd_store_users_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->count = res->count;
  g->text[0] = '\0';
  for (size_t i = 0; i < res->count; i++) {
    assert_null(res->items[i].password_hash);
    append(g->text, sizeof g->text, res->items[i].name);
  }
}

static void on_notification(void *arg, int status, const hd_store_notification_t *n) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->id = n->id;
  g->flag = n->is_read;
  snprintf(g->text, sizeof g->text, "%s|%s|%s|%s|%lld|%lld", n->type, n->title, n->content, n->link ? n->link : "-",
           (long long)n->sender_id, (long long)n->target_user_id);
  assert_true(n->created_at > 1600000000000);
}

static void on_notifications(void *arg, int status, const hd_store_notifications_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->count = res->count;
  for (size_t i = 0; i < res->count && i < 128; i++) {
    g->ids[i] = res->items[i].id;
    g->reads[i] = res->items[i].is_read;
  }
}

static void on_count(void *arg, int status, const hd_store_count_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  g->n = status ? -1 : res->count;
}

static void on_puts(void *arg, int status, const hd_store_inbox_puts_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  g->n = status ? -1 : res->inserted;
  g->dropped = status ? -1 : res->dropped;
}

static void on_read(void *arg, int status, const hd_store_notification_read_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->id = res->notification_id;
  g->flag = res->is_read;
  g->flag2 = res->changed;
}

static void on_post(void *arg, int status, const hd_store_chat_post_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  copy_session(&g->sess, &res->session);
  g->id = res->message.id;
  g->msg_session_id = res->message.session_id;
  g->msg_sender_id = res->message.sender_id;
  snprintf(g->msg_role, sizeof g->msg_role, "%s", res->message.sender_role);
  snprintf(g->msg_type, sizeof g->msg_type, "%s", res->message.message_type);
  snprintf(g->text, sizeof g->text, "%s", res->message.content);
}

static void on_session(void *arg, int status, const hd_store_session_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (!status) copy_session(&g->sess, res);
}

static void on_close(void *arg, int status, const hd_store_session_close_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  copy_session(&g->sess, &res->session);
  g->flag2 = res->changed;
}

static void on_sessions(void *arg, int status, const hd_store_sessions_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->count = res->count;
  for (size_t i = 0; i < res->count && i < 16; i++) copy_session(&g->sessions[i], &res->items[i]);
}

static void on_loads(void *arg, int status, const hd_store_admin_loads_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->count = res->count;
  for (size_t i = 0; i < res->count; i++) {
    g->ids[2 * i] = res->items[i].admin_id;
    g->ids[2 * i + 1] = res->items[i].open_count;
  }
}

static void on_messages(void *arg, int status, const hd_store_messages_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->count = res->count;
  g->text[0] = '\0';
  for (size_t i = 0; i < res->count; i++) {
    g->ids[i] = res->items[i].id;
    append(g->text, sizeof g->text, res->items[i].content);
  }
}

static void on_inbox_put(void *arg, int status, const hd_store_inbox_put_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->flag = res->inserted;
  g->n = res->dropped;
}

static void on_inbox(void *arg, int status, const hd_store_inbox_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->count = res->count;
  g->text[0] = g->text2[0] = '\0';
  for (size_t i = 0; i < res->count; i++) {
    append(g->text, sizeof g->text, res->items[i].message_id);
    assert_int_equal(strlen(res->items[i].frame), res->items[i].frame_len);
    append(g->text2, sizeof g->text2, res->items[i].frame);
  }
}

/* Submits one operation and runs the loop until it is answered; the result is in *g. */
#define DO(fx, g, call)                      \
  do {                                       \
    memset(&(g), 0, sizeof(g));              \
    assert_int_equal((call), 0);             \
    run_until((fx), &(g).calls, 1);          \
    assert_int_equal((g).calls, 1);          \
  } while (0)

static got_t g; /* large: static */

static int64_t make_user(fx_t *fx, const char *name, const char *role) {
  DO(fx, g, hd_store_user_create(fx->st, name, role, "$argon2id$hash", NULL, false, on_user, &g));
  assert_int_equal(g.status, 0);
  return g.id;
}

static int64_t notify(fx_t *fx, int64_t target, const char *title) {
  hd_store_notification_new_t n = {"info", title, "body", NULL, 0, target};
  DO(fx, g, hd_store_notification_create(fx->st, &n, on_notification, &g));
  assert_int_equal(g.status, 0);
  return g.id;
}

/* --- tests ------------------------------------------------------------------------------------- */

static void test_open_and_health(void **state) {
  fx_t *fx = *state;
  hd_store_health_t h;
  assert_int_equal(hd_store_health(fx->st, &h), 0);
  assert_true(h.ok);
  assert_string_equal(h.backend, "sqlite");
  assert_string_equal(hd_store_backend_name(fx->st), "sqlite");
  assert_int_equal(h.schema_version, 4);
  assert_int_equal(h.queue_depth, 0);
  assert_int_equal(h.in_flight, 0);
  assert_int_equal(h.commits, 0);

  /* the file is in WAL mode with the expected tables */
  sqlite3 *db;
  assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
  sqlite3_stmt *s;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
  sqlite3_finalize(s);
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT count(*) FROM sqlite_master WHERE name IN ('users', 'notifications', "
                                      "'notification_reads', 'chat_sessions', 'chat_messages', 'inbox', "
                                      "'schema_migrations', 'topic_history', 'topic_history_state', "
                                      "'users_deleted', 'counters')",
                                      -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(s, 0), 11);
  sqlite3_finalize(s);
  sqlite3_close(db);

  char err[256];
  assert_null(hd_store_open(&fx->loop, "postgresql://herald:secret@127.0.0.1:1/herald", err, sizeof err));
  assert_non_null(strstr(err, "cannot connect to postgresql://herald:***@127.0.0.1:1/herald"));
  assert_null(strstr(err, "secret"));
  assert_null(hd_store_open(&fx->loop, "/proc/no/such/dir/herald.db", err, sizeof err));
  assert_true(err[0] != '\0');
}

static void test_migrations_idempotent(void **state) {
  fx_t *fx = *state;
  char err[256], other[160];
  /* a second store on the same file while the first is open, then migrate: nothing to apply */
  hd_store_t *st2 = open_store(fx);
  hd_store_close(st2);
  assert_int_equal(hd_store_migrate_path(fx->path, err, sizeof err), 0);
  close_store(fx);
  fx->st = open_store(fx);

  /* a fresh file: migrate applies every migration, then none */
  snprintf(other, sizeof other, "%s/m/other.db", fx->dir);
  assert_int_equal(hd_store_migrate_path(other, err, sizeof err), 4);
  assert_int_equal(hd_store_migrate_path(other, err, sizeof err), 0);

  /* a database from a newer herald is refused */
  sqlite3 *db;
  assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (999, 'future', 0)", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(hd_store_migrate_path(other, err, sizeof err), HD_EVERSION);
  assert_non_null(strstr(err, "newer"));
  assert_null(hd_store_open(&fx->loop, other, err, sizeof err));
}

static void test_users(void **state) {
  fx_t *fx = *state;
  hd_store_t *st = fx->st;
  DO(fx, g, hd_store_user_create(st, "alice", "admin", "$argon2id$a", "Alice A", false, on_user, &g));
  assert_int_equal(g.status, 0);
  int64_t alice = g.id;
  assert_true(alice > 0);
  assert_string_equal(g.text, "alice|admin|Alice A");
  assert_string_equal(g.text2, "(null)"); /* the hash is not handed back */
  int64_t bob = make_user(fx, "bob", "user");
  assert_true(bob > alice);
  make_user(fx, "carol", "admin");

  DO(fx, g, hd_store_user_create(st, "alice", "user", "$x", NULL, false, on_user, &g));
  assert_int_equal(g.status, HD_EEXISTS);

  DO(fx, g, hd_store_user_get_by_name(st, "alice", on_user, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(g.id, alice);
  assert_string_equal(g.text2, "$argon2id$a");
  DO(fx, g, hd_store_user_get(st, bob, on_user, &g));
  assert_int_equal(g.status, 0);
  assert_string_equal(g.text, "bob|user|");
  assert_string_equal(g.text2, "(null)");
  DO(fx, g, hd_store_user_get(st, 9999, on_user, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_user_get_by_name(st, "nobody", on_user, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);

  DO(fx, g, hd_store_users_list(st, "admin", on_users, &g));
  assert_int_equal(g.count, 2);
  assert_string_equal(g.text, "alice,carol,");
  DO(fx, g, hd_store_users_list(st, NULL, on_users, &g));
  assert_string_equal(g.text, "alice,bob,carol,");
  DO(fx, g, hd_store_users_list(st, "user", on_users, &g));
  assert_string_equal(g.text, "bob,");

  /* limits are characters: 64 CJK characters (192 bytes) pass, 65 ASCII do not */
  char name[256] = "";
  for (int i = 0; i < 64; i++) strcat(name, "\xe5\xae\xa2");
  make_user(fx, name, "user");
  char long_name[66];
  memset(long_name, 'x', 65);
  long_name[65] = '\0';
  assert_int_equal(hd_store_user_create(st, long_name, "user", "$h", NULL, false, on_user, &g), HD_EINVAL);
  assert_int_equal(hd_store_user_create(st, "", "user", "$h", NULL, false, on_user, &g), HD_EINVAL);
  assert_int_equal(hd_store_user_create(st, "dave", "root", "$h", NULL, false, on_user, &g), HD_EINVAL);
  assert_int_equal(hd_store_user_create(st, "dave", "user", "", NULL, false, on_user, &g), HD_EINVAL);
  assert_int_equal(hd_store_user_create(st, "da\xc0\xafve", "user", "$h", NULL, false, on_user, &g), HD_EINVAL);
  assert_int_equal(hd_store_user_create(st, "dave", "user", "$h", long_name, false, on_user, &g), HD_EINVAL);
  assert_int_equal(hd_store_user_get(st, 0, on_user, &g), HD_EINVAL);
  assert_int_equal(hd_store_users_list(st, "root", on_users, &g), HD_EINVAL);
}

/* update, delete, search, the token-refusing states and the change counter */
static void test_user_states(void **state) {
  fx_t *fx = *state;
  hd_store_t *st = fx->st;
  DO(fx, g, hd_store_users_version(st, on_count, &g));
  int64_t v0 = g.n;
  DO(fx, g, hd_store_user_create(st, "wang", "admin", "$h1", "\xe7\x8e\x8b\xe8\x8a\xb3", true, on_user, &g));
  int64_t wang = g.id;
  DO(fx, g, hd_store_user_create(st, "WANG", "user", "$h", NULL, false, on_user, &g));
  assert_int_equal(g.status, HD_EEXISTS); /* unique in any letter case */
  int64_t li = make_user(fx, "li", "user");
  DO(fx, g, hd_store_users_version(st, on_count, &g));
  assert_true(g.n > v0);
  int64_t v1 = g.n;

  DO(fx, g, hd_store_user_states(st, on_users, &g));
  assert_string_equal(g.text, "wang,"); /* demo */
  hd_store_user_change_t pw = {.password_hash = "$h2", .disabled = -1};
  DO(fx, g, hd_store_user_update(st, 0, "wang", &pw, on_user, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(g.id, wang);
  DO(fx, g, hd_store_user_get_by_name(st, "wang", on_user, &g));
  assert_string_equal(g.text2, "$h2");
  hd_store_user_change_t off = {.disabled = 1}, name = {.display_name = "Li Lei", .disabled = -1};
  DO(fx, g, hd_store_user_update(st, li, NULL, &off, on_user, &g));
  DO(fx, g, hd_store_user_update(st, li, NULL, &name, on_user, &g));
  assert_string_equal(g.text, "li|user|Li Lei");
  DO(fx, g, hd_store_user_update(st, 0, "nobody", &off, on_user, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_users_version(st, on_count, &g));
  assert_true(g.n > v1);

  DO(fx, g, hd_store_users_search(st, "\xe8\x8a\xb3", NULL, 10, on_users, &g)); /* display name */
  assert_string_equal(g.text, "wang,");
  DO(fx, g, hd_store_users_search(st, "LI", "user", 10, on_users, &g));
  assert_string_equal(g.text, "li,");
  DO(fx, g, hd_store_users_search(st, "", "admin", 10, on_users, &g));
  assert_string_equal(g.text, "wang,");

  DO(fx, g, hd_store_user_delete(st, 0, "wang", on_user, &g));
  assert_int_equal(g.status, 0);
  DO(fx, g, hd_store_user_delete(st, wang, NULL, on_user, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_user_states(st, on_users, &g));
  assert_int_equal(g.count, 2); /* li (disabled, tokens_after 0) and wang's id (deleted) */
  assert_string_equal(g.text, "li,,");
  make_user(fx, "wang", "user"); /* the name is free again, the id is new */
  assert_int_equal(hd_store_user_update(st, 0, "", &off, on_user, &g), HD_EINVAL);
  hd_store_user_change_t bad = {.disabled = 2};
  assert_int_equal(hd_store_user_update(st, li, NULL, &bad, on_user, &g), HD_EINVAL);
  assert_int_equal(hd_store_users_search(st, "", NULL, 0, on_users, &g), HD_EINVAL);
}

/* a notification's target must be an admin of the database; a broadcast is read for its sender */
static void test_notification_targets(void **state) {
  fx_t *fx = *state;
  hd_store_t *st = fx->st;
  const int64_t A = make_user(fx, "a", "admin"), B = make_user(fx, "b", "admin"), C = make_user(fx, "c", "user");
  /* a target must be an admin of the database */
  hd_store_notification_new_t bad = {"info", "x", "y", NULL, 0, 999};
  DO(fx, g, hd_store_notification_create(st, &bad, on_notification, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  bad.target_user_id = C;
  DO(fx, g, hd_store_notification_create(st, &bad, on_notification, &g));
  assert_int_equal(g.status, HD_ERANGE);
  /* a broadcast is read for its sender only */
  hd_store_notification_new_t own = {"info", "mine", "y", NULL, B, 0};
  DO(fx, g, hd_store_notification_create(st, &own, on_notification, &g));
  assert_int_equal(g.status, 0);
  DO(fx, g, hd_store_notifications_unread_count(st, B, on_count, &g));
  assert_int_equal(g.n, 0);
  DO(fx, g, hd_store_notifications_unread_count(st, A, on_count, &g));
  assert_int_equal(g.n, 1);
  DO(fx, g, hd_store_notifications_mark_all_read(st, A, on_count, &g));
  int64_t ids[] = {B, 999, C};
  DO(fx, g, hd_store_users_get_many(st, ids, 3, on_users, &g));
  assert_string_equal(g.text, "b,c,");

}

static void test_notifications(void **state) {
  fx_t *fx = *state;
  hd_store_t *st = fx->st;
  const int64_t A = make_user(fx, "a", "admin"), B = make_user(fx, "b", "admin");
  assert_true(A == 1 && B == 2);
  hd_store_notification_new_t n = {"warning", "Disk", "Disk 91% full", "/admin/disk", 7, A};
  DO(fx, g, hd_store_notification_create(st, &n, on_notification, &g));
  assert_int_equal(g.status, 0);
  assert_string_equal(g.text, "warning|Disk|Disk 91% full|/admin/disk|7|1");
  assert_false(g.flag);
  int64_t to_a = g.id;
  int64_t to_b = notify(fx, B, "for B");
  int64_t all = notify(fx, 0, "everyone");
  assert_true(to_a < to_b && to_b < all);

  DO(fx, g, hd_store_notifications_list(st, A, false, 10, 0, on_notifications, &g));
  assert_int_equal(g.count, 2);
  assert_int_equal(g.ids[0], all); /* newest first */
  assert_int_equal(g.ids[1], to_a);
  DO(fx, g, hd_store_notifications_list(st, B, false, 10, 0, on_notifications, &g));
  assert_int_equal(g.count, 2);
  assert_int_equal(g.ids[1], to_b);
  DO(fx, g, hd_store_notifications_unread_count(st, A, on_count, &g));
  assert_int_equal(g.n, 2);

  /* not visible to A: B's, and one that does not exist */
  DO(fx, g, hd_store_notification_mark_read(st, A, to_b, on_read, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_notification_mark_read(st, A, 9999, on_read, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);

  DO(fx, g, hd_store_notification_mark_read(st, A, all, on_read, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(g.id, all);
  assert_true(g.flag);
  assert_true(g.flag2);
  DO(fx, g, hd_store_notification_mark_read(st, A, all, on_read, &g));
  assert_int_equal(g.status, 0);
  assert_false(g.flag2); /* idempotent */

  DO(fx, g, hd_store_notifications_unread_count(st, A, on_count, &g));
  assert_int_equal(g.n, 1);
  DO(fx, g, hd_store_notifications_unread_count(st, B, on_count, &g));
  assert_int_equal(g.n, 2); /* A's read state is A's alone */
  DO(fx, g, hd_store_notifications_list(st, A, false, 10, 0, on_notifications, &g));
  assert_true(g.reads[0]);
  assert_false(g.reads[1]);
  DO(fx, g, hd_store_notifications_list(st, A, true, 10, 0, on_notifications, &g));
  assert_int_equal(g.count, 1);
  assert_int_equal(g.ids[0], to_a);

  DO(fx, g, hd_store_notifications_mark_all_read(st, A, on_count, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(g.n, 1);
  DO(fx, g, hd_store_notifications_mark_all_read(st, A, on_count, &g));
  assert_int_equal(g.n, 0);
  DO(fx, g, hd_store_notifications_unread_count(st, A, on_count, &g));
  assert_int_equal(g.n, 0);
  DO(fx, g, hd_store_notifications_unread_count(st, B, on_count, &g));
  assert_int_equal(g.n, 2);

  /* paging: 25 more broadcasts, pages of 10 by before_id */
  for (int i = 0; i < 25; i++) notify(fx, 0, "page");
  int64_t before = 0, seen = 0, last = INT64_MAX;
  for (;;) {
    DO(fx, g, hd_store_notifications_list(st, B, false, 10, before, on_notifications, &g));
    if (!g.count) break;
    for (size_t i = 0; i < g.count; i++) {
      assert_true(g.ids[i] < last);
      last = g.ids[i];
    }
    seen += (int64_t)g.count;
    before = g.ids[g.count - 1];
  }
  assert_int_equal(seen, 27);

  hd_store_notification_new_t bad = n;
  char big[10002];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  bad.content = big;
  assert_int_equal(hd_store_notification_create(st, &bad, on_notification, &g), HD_EINVAL);
  big[10000] = '\0';
  bad.content = big; /* exactly 10000 */
  DO(fx, g, hd_store_notification_create(st, &bad, on_notification, &g));
  assert_int_equal(g.status, 0);
  bad = n;
  big[201] = '\0';
  bad.title = big;
  assert_int_equal(hd_store_notification_create(st, &bad, on_notification, &g), HD_EINVAL);
  bad.title = "";
  assert_int_equal(hd_store_notification_create(st, &bad, on_notification, &g), HD_EINVAL);
  bad.title = NULL;
  assert_int_equal(hd_store_notification_create(st, &bad, on_notification, &g), HD_EINVAL);
  assert_int_equal(hd_store_notifications_list(st, A, false, 0, 0, on_notifications, &g), HD_EINVAL);
  assert_int_equal(hd_store_notifications_list(st, A, false, 101, 0, on_notifications, &g), HD_EINVAL);
  assert_int_equal(hd_store_notifications_list(st, 0, false, 10, 0, on_notifications, &g), HD_EINVAL);
  assert_int_equal(hd_store_notification_mark_read(st, A, 0, on_read, &g), HD_EINVAL);
}

/* A customer's open sessions are capped: the cap is checked and the session inserted in one
 * transaction (HD_ERANGE, nothing written); a closed session frees a place. */
static void test_sessions_capped(void **state) {
  fx_t *fx = *state;
  hd_store_t *st = fx->st;
  const int64_t U = 20;
  DO(fx, g, hd_store_session_create_capped(st, U, "one", NULL, 3, 2, on_post, &g));
  assert_int_equal(g.status, 0);
  int64_t first = g.sess.id;
  DO(fx, g, hd_store_session_create_capped(st, U, "two", NULL, 3, 2, on_post, &g));
  assert_int_equal(g.status, 0);
  DO(fx, g, hd_store_session_create_capped(st, U, "three", NULL, 3, 2, on_post, &g));
  assert_int_equal(g.status, HD_ERANGE);
  DO(fx, g, hd_store_sessions_list(st, U, "user", NULL, 20, on_sessions, &g));
  assert_int_equal(g.count, 2); /* nothing written by the refusal */
  DO(fx, g, hd_store_session_create_capped(st, U + 1, "other", NULL, 3, 2, on_post, &g));
  assert_int_equal(g.status, 0); /* per customer */
  DO(fx, g, hd_store_session_close(st, first, on_close, &g));
  DO(fx, g, hd_store_session_create_capped(st, U, "three", NULL, 3, 2, on_post, &g));
  assert_int_equal(g.status, 0);
  DO(fx, g, hd_store_session_create_capped(st, U, "no cap", NULL, 3, 0, on_post, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(hd_store_session_create_capped(st, U, "x", NULL, 3, -1, on_post, &g), HD_EINVAL);
}

static void test_sessions(void **state) {
  fx_t *fx = *state;
  hd_store_t *st = fx->st;
  const int64_t U1 = 10, U2 = 11, A1 = 1, A2 = 2;
  DO(fx, g, hd_store_session_create(st, U1, "hello, I need help", NULL, 3, on_post, &g));
  assert_int_equal(g.status, 0);
  int64_t s1 = g.sess.id;
  assert_string_equal(g.sess.status, "waiting");
  assert_int_equal(g.sess.user_id, U1);
  assert_int_equal(g.sess.admin_id, 0);
  assert_int_equal(g.sess.priority, 3);
  assert_int_equal(g.sess.admin_unread, 1);
  assert_int_equal(g.sess.user_unread, 0);
  assert_int_equal(g.sess.closed_at, 0);
  assert_string_equal(g.sess.last_message, "hello, I need help");
  assert_int_equal(g.msg_session_id, s1);
  assert_int_equal(g.msg_sender_id, U1);
  assert_string_equal(g.msg_role, "user");
  assert_string_equal(g.msg_type, "text");
  int64_t first_msg = g.id;
  DO(fx, g, hd_store_session_create(st, U2, "order #42?", "text", 0, on_post, &g));
  int64_t s2 = g.sess.id;

  DO(fx, g, hd_store_sessions_list(st, U1, "user", NULL, 20, on_sessions, &g));
  assert_int_equal(g.count, 1);
  assert_int_equal(g.sessions[0].id, s1);
  DO(fx, g, hd_store_sessions_list(st, A1, "admin", NULL, 20, on_sessions, &g));
  assert_int_equal(g.count, 2); /* both waiting */
  DO(fx, g, hd_store_sessions_waiting(st, 10, on_sessions, &g));
  assert_int_equal(g.count, 2);
  assert_int_equal(g.sessions[0].id, s1); /* oldest first */
  assert_int_equal(g.sessions[1].id, s2);

  DO(fx, g, hd_store_session_assign(st, s1, A1, on_session, &g));
  assert_int_equal(g.status, 0);
  assert_string_equal(g.sess.status, "active");
  assert_int_equal(g.sess.admin_id, A1);
  DO(fx, g, hd_store_sessions_list(st, A2, "admin", NULL, 20, on_sessions, &g));
  assert_int_equal(g.count, 1); /* A1's session is not A2's business */
  assert_int_equal(g.sessions[0].id, s2);
  DO(fx, g, hd_store_sessions_list(st, A1, "admin", "active", 20, on_sessions, &g));
  assert_int_equal(g.count, 1);
  assert_int_equal(g.sessions[0].id, s1);
  DO(fx, g, hd_store_sessions_waiting(st, 10, on_sessions, &g));
  assert_int_equal(g.count, 1);
  DO(fx, g, hd_store_admin_open_session_counts(st, on_loads, &g));
  assert_int_equal(g.count, 1);
  assert_int_equal(g.ids[0], A1);
  assert_int_equal(g.ids[1], 1);

  /* messages move the other side's unread counter */
  DO(fx, g, hd_store_message_create(st, s1, A1, "admin", "how can I help?", NULL, on_post, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(g.sess.user_unread, 1);
  assert_int_equal(g.sess.admin_unread, 1);
  assert_string_equal(g.sess.last_message, "how can I help?");
  assert_true(g.sess.last_message_at >= g.sess.created_at);
  assert_string_equal(g.msg_role, "admin");
  char long_text[700] = "";
  for (int i = 0; i < 300; i++) strcat(long_text, i % 2 ? "a" : "\xe4\xbd\xa0"); /* 300 chars, mixed widths */
  DO(fx, g, hd_store_message_create(st, s1, U1, "user", long_text, "text", on_post, &g));
  assert_int_equal(g.sess.admin_unread, 2);
  assert_string_equal(g.text, long_text);
  assert_int_equal(strncmp(g.sess.last_message, long_text, strlen(g.sess.last_message)), 0);
  assert_int_equal(strlen(g.sess.last_message), 100 * 3 + 100); /* 200 characters */
  DO(fx, g, hd_store_message_create(st, s1, U1, "user", "pic.png", "image", on_post, &g));
  assert_string_equal(g.msg_type, "image");

  DO(fx, g, hd_store_sessions_list(st, A1, "admin", NULL, 20, on_sessions, &g));
  assert_int_equal(g.count, 2);
  assert_int_equal(g.sessions[0].id, s1); /* most recently updated first */
  assert_int_equal(g.sessions[1].id, s2);
  DO(fx, g, hd_store_sessions_list(st, A1, "admin", NULL, 1, on_sessions, &g));
  assert_int_equal(g.count, 1);
  assert_int_equal(g.sessions[0].id, s1);

  DO(fx, g, hd_store_messages_list(st, s1, 0, 2, on_messages, &g));
  assert_int_equal(g.count, 2); /* newest first */
  assert_true(g.ids[0] > g.ids[1]);
  assert_non_null(strstr(g.text, "pic.png,"));
  int64_t older = g.ids[1];
  DO(fx, g, hd_store_messages_list(st, s1, older, 10, on_messages, &g));
  assert_int_equal(g.count, 2);
  assert_int_equal(g.ids[1], first_msg);
  assert_string_equal(g.text, "how can I help?,hello, I need help,");

  DO(fx, g, hd_store_session_mark_read(st, s1, "admin", on_session, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(g.sess.admin_unread, 0);
  assert_int_equal(g.sess.user_unread, 1);
  DO(fx, g, hd_store_session_mark_read(st, s1, "user", on_session, &g));
  assert_int_equal(g.sess.user_unread, 0);

  DO(fx, g, hd_store_session_set_priority(st, s1, 5, on_session, &g)); /* an admin's decision */
  assert_int_equal(g.status, 0);
  assert_int_equal(g.sess.priority, 5);
  assert_int_equal(g.sess.user_unread, 0);
  DO(fx, g, hd_store_session_set_priority(st, 9999, 2, on_session, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  assert_int_equal(hd_store_session_set_priority(st, s1, 0, on_session, &g), HD_EINVAL);
  assert_int_equal(hd_store_session_set_priority(st, s1, 6, on_session, &g), HD_EINVAL);

  DO(fx, g, hd_store_session_close(st, s1, on_close, &g));
  assert_int_equal(g.status, 0);
  assert_true(g.flag2);
  assert_string_equal(g.sess.status, "closed");
  assert_true(g.sess.closed_at > 0);
  int64_t closed_at = g.sess.closed_at;
  DO(fx, g, hd_store_session_close(st, s1, on_close, &g));
  assert_int_equal(g.status, 0);
  assert_false(g.flag2); /* unchanged */
  assert_int_equal(g.sess.closed_at, closed_at);
  DO(fx, g, hd_store_message_create(st, s1, U1, "user", "still there?", NULL, on_post, &g));
  assert_int_equal(g.status, HD_EINVAL);
  DO(fx, g, hd_store_session_assign(st, s1, A2, on_session, &g));
  assert_int_equal(g.status, HD_EINVAL);
  DO(fx, g, hd_store_admin_open_session_counts(st, on_loads, &g));
  assert_int_equal(g.count, 0);
  DO(fx, g, hd_store_sessions_list(st, A1, "admin", "closed", 20, on_sessions, &g));
  assert_int_equal(g.count, 1);

  /* the missing session */
  DO(fx, g, hd_store_session_get(st, 9999, on_session, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_message_create(st, 9999, U1, "user", "hi", NULL, on_post, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_messages_list(st, 9999, 0, 10, on_messages, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_session_assign(st, 9999, A1, on_session, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_session_close(st, 9999, on_close, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_session_mark_read(st, 9999, "user", on_session, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_session_get(st, s2, on_session, &g));
  assert_int_equal(g.status, 0);
  assert_string_equal(g.sess.status, "waiting");

  /* refusals at submission */
  assert_int_equal(hd_store_session_create(st, U1, "", NULL, 0, on_post, &g), HD_EINVAL);
  assert_int_equal(hd_store_session_create(st, U1, "x", "video", 0, on_post, &g), HD_EINVAL);
  assert_int_equal(hd_store_session_create(st, U1, "x", NULL, -1, on_post, &g), HD_EINVAL);
  assert_int_equal(hd_store_message_create(st, s2, U2, "guest", "x", NULL, on_post, &g), HD_EINVAL);
  assert_int_equal(hd_store_sessions_list(st, U1, "user", "open", 20, on_sessions, &g), HD_EINVAL);
  assert_int_equal(hd_store_sessions_list(st, U1, "user", NULL, 0, on_sessions, &g), HD_EINVAL);
  assert_int_equal(hd_store_session_mark_read(st, s2, "bot", on_session, &g), HD_EINVAL);
}

/* One request puts the entries of many users (a publish to many), each within its user's cap. */
static void test_inbox_put_many(void **state) {
  fx_t *fx = *state;
  hd_store_inbox_entry_t e[4] = {
      {"ua", "m1", "{\"n\":1}", 7}, {"ub", "m1", "{\"n\":1}", 7}, {"ua", "m2", "{\"n\":2}", 7}, {"ua", "m3", "{\"n\":3}", 7}};
  DO(fx, g, hd_store_inbox_put_many(fx->st, e, 4, 2, on_puts, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(g.n, 4);
  assert_int_equal(g.dropped, 1); /* ua's m1 made room for m3 */
  DO(fx, g, hd_store_inbox_put_many(fx->st, e + 1, 1, 2, on_puts, &g)); /* already there */
  assert_int_equal(g.n, 0);
  assert_int_equal(g.dropped, 0);
  DO(fx, g, hd_store_inbox_take(fx->st, "ua", on_inbox, &g));
  assert_int_equal(g.count, 2); /* the cap: m2, m3 */
  DO(fx, g, hd_store_inbox_take(fx->st, "ub", on_inbox, &g));
  assert_int_equal(g.count, 1);
  hd_store_inbox_entry_t bad = {"ua", "", "{}", 2};
  assert_int_equal(hd_store_inbox_put_many(fx->st, &bad, 1, 2, NULL, NULL), HD_EINVAL);
  assert_int_equal(hd_store_inbox_put_many(fx->st, e, 0, 2, NULL, NULL), HD_EINVAL);
}

static void on_topics(void *arg, int status, const hd_store_topics_t *res) {
  got_t *g = arg;
  g->calls++;
  g->status = status;
  if (status) return;
  g->flag = res->clean;
  g->count = res->count;
  g->text[0] = '\0';
  for (size_t i = 0; i < res->count && i < 1100; i++) {
    char one[64];
    snprintf(one, sizeof one, "%s/%lld", res->items[i].topic, (long long)res->items[i].seq);
    append(g->text, sizeof g->text, one);
    g->ids[i] = res->items[i].created_at;
  }
}

/* Topic history: per topic the last `keep`, older than the cut-off dropped, a duplicate ignored,
 * the clean mark answered once (a load clears it). */
static void test_topics_save_load(void **state) {
  fx_t *fx = *state;
  int64_t now = hd_clock_wall_ms();
  hd_store_topic_entry_t e[5] = {{"a", 1, now, "{\"s\":1}", 7}, {"a", 2, now, "{\"s\":2}", 7}, {"a", 3, now, "{\"s\":3}", 7},
                                 {"b", 7, now - 5000, "{\"s\":7}", 7}, {"b", 8, now, "{\"s\":8}", 7}};
  DO(fx, g, hd_store_topics_save(fx->st, e, 5, 2, 0, false, on_count, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(g.n, 5);
  DO(fx, g, hd_store_topics_save(fx->st, e + 2, 1, 2, 0, true, on_count, &g)); /* already there */
  assert_int_equal(g.n, 0);
  DO(fx, g, hd_store_topics_load(fx->st, now - 1000, on_topics, &g));
  assert_int_equal(g.status, 0);
  assert_true(g.flag);
  assert_string_equal(g.text, "a/2,a/3,b/8,"); /* a kept 2; b/7 too old */
  DO(fx, g, hd_store_topics_load(fx->st, 0, on_topics, &g));
  assert_false(g.flag); /* cleared by the load before */
  assert_int_equal(g.count, 3);
  DO(fx, g, hd_store_topics_save(fx->st, NULL, 0, 2, 0, true, on_count, &g)); /* only the mark */
  DO(fx, g, hd_store_topics_load(fx->st, 0, on_topics, &g));
  assert_true(g.flag);
  hd_store_topic_entry_t bad = {"", 1, now, "{}", 2};
  assert_int_equal(hd_store_topics_save(fx->st, &bad, 1, 2, 0, false, NULL, NULL), HD_EINVAL);
  assert_int_equal(hd_store_topics_save(fx->st, e, 1, 0, 0, false, NULL, NULL), HD_EINVAL);
}

static void test_inbox(void **state) {
  fx_t *fx = *state;
  hd_store_t *st = fx->st;
  DO(fx, g, hd_store_inbox_put(st, "u1", "m1", "{\"a\":1}", 7, 3, on_inbox_put, &g));
  assert_int_equal(g.status, 0);
  assert_true(g.flag);
  DO(fx, g, hd_store_inbox_put(st, "u1", "m2", "{\"a\":2}XXX", 7, 3, on_inbox_put, &g)); /* only frame_len bytes */
  DO(fx, g, hd_store_inbox_put(st, "u1", "m1", "{\"dup\":1}", 9, 3, on_inbox_put, &g));
  assert_int_equal(g.status, 0);
  assert_false(g.flag); /* duplicate ignored */
  DO(fx, g, hd_store_inbox_put(st, "u2", "m1", "{\"b\":1}", 7, 3, on_inbox_put, &g));
  assert_true(g.flag); /* same message id, other user */

  DO(fx, g, hd_store_inbox_take(st, "u1", on_inbox, &g));
  assert_int_equal(g.count, 2);
  assert_string_equal(g.text, "m1,m2,");
  assert_string_equal(g.text2, "{\"a\":1},{\"a\":2},");
  DO(fx, g, hd_store_inbox_take(st, "u1", on_inbox, &g));
  assert_int_equal(g.count, 2); /* take does not remove */

  DO(fx, g, hd_store_inbox_put(st, "u1", "m3", "{\"a\":3}", 7, 3, on_inbox_put, &g));
  assert_int_equal(g.n, 0);
  DO(fx, g, hd_store_inbox_put(st, "u1", "m4", "{\"a\":4}", 7, 3, on_inbox_put, &g));
  assert_true(g.flag);
  assert_int_equal(g.n, 1); /* beyond the cap: the oldest went */
  DO(fx, g, hd_store_inbox_take(st, "u1", on_inbox, &g));
  assert_string_equal(g.text, "m2,m3,m4,");
  DO(fx, g, hd_store_inbox_put(st, "u1", "m5", "{}", 2, 1, on_inbox_put, &g));
  assert_int_equal(g.n, 3);
  DO(fx, g, hd_store_inbox_take(st, "u1", on_inbox, &g));
  assert_string_equal(g.text, "m5,");

  DO(fx, g, hd_store_inbox_remove(st, "u1", "m5", on_count, &g));
  assert_int_equal(g.status, 0);
  assert_int_equal(g.n, 1);
  DO(fx, g, hd_store_inbox_remove(st, "u1", "m5", on_count, &g));
  assert_int_equal(g.n, 0);
  DO(fx, g, hd_store_inbox_take(st, "u1", on_inbox, &g));
  assert_int_equal(g.count, 0);
  DO(fx, g, hd_store_inbox_take(st, "u2", on_inbox, &g));
  assert_string_equal(g.text, "m1,");

  assert_int_equal(hd_store_inbox_put(st, "u1", "m6", "{}", 2, 0, on_inbox_put, &g), HD_EINVAL);
  assert_int_equal(hd_store_inbox_put(st, "", "m6", "{}", 2, 5, on_inbox_put, &g), HD_EINVAL);
  assert_int_equal(hd_store_inbox_put(st, "u1", NULL, "{}", 2, 5, on_inbox_put, &g), HD_EINVAL);
  assert_int_equal(hd_store_inbox_put(st, "u1", "m6", NULL, 0, 5, on_inbox_put, &g), HD_EINVAL);
  assert_int_equal(hd_store_inbox_put(st, "u1", "m6", "{}", HD_STORE_FRAME_MAX + 1, 5, on_inbox_put, &g), HD_EINVAL);
  /* fire and forget: no callback */
  assert_int_equal(hd_store_inbox_remove(st, "u2", "m1", NULL, NULL), 0);
  DO(fx, g, hd_store_inbox_take(st, "u2", on_inbox, &g));
  assert_int_equal(g.count, 0);
}

/* --- ordering, group commit, batches --------------------------------------------------------- */

typedef struct {
  int calls;
  int order[2100];
  int status[2100];
  int64_t result[2100];
} seq_t;

typedef struct {
  seq_t *seq;
  int index;
} seq_arg_t;

static void seq_note(seq_arg_t *a, int status, int64_t result) {
  seq_t *s = a->seq;
  s->order[s->calls] = a->index;
  s->status[a->index] = status;
  s->result[a->index] = result;
  s->calls++;
}

static void seq_on_count(void *arg, int status, const hd_store_count_t *res) {
  seq_note(arg, status, res ? res->count : -1);
}

static void seq_on_notification(void *arg, int status, const hd_store_notification_t *res) {
  seq_note(arg, status, res ? res->id : -1);
}

static void seq_on_user(void *arg, int status, const hd_store_user_t *res) {
  seq_note(arg, status, res ? res->id : -1);
}

static void seq_on_inbox_put(void *arg, int status, const hd_store_inbox_put_t *res) {
  seq_note(arg, status, res ? res->inserted : -1);
}

static seq_t seq;
static seq_arg_t seq_args[2100];

static void test_callback_order(void **state) {
  fx_t *fx = *state;
  memset(&seq, 0, sizeof seq);
  hd_store_notification_new_t n = {"info", "t", "c", NULL, 0, 0};
  /* writes and reads interleaved: each count must see exactly the writes before it */
  for (int i = 0; i < 400; i++) {
    seq_args[i] = (seq_arg_t){&seq, i};
    if (i % 2 == 0) assert_int_equal(hd_store_notification_create(fx->st, &n, seq_on_notification, &seq_args[i]), 0);
    else assert_int_equal(hd_store_notifications_unread_count(fx->st, 5, seq_on_count, &seq_args[i]), 0);
  }
  run_until(fx, &seq.calls, 400);
  for (int i = 0; i < 400; i++) {
    assert_int_equal(seq.order[i], i);
    assert_int_equal(seq.status[i], 0);
    if (i % 2) assert_int_equal(seq.result[i], (i + 1) / 2);
    else if (i) assert_true(seq.result[i] > seq.result[i - 2]);
  }
}

static void test_group_commit(void **state) {
  fx_t *fx = *state;
  memset(&seq, 0, sizeof seq);
  hd_store_health_t h0, h;
  hd_store_health(fx->st, &h0);
  char id[32];
  for (int i = 0; i < 1000; i++) {
    seq_args[i] = (seq_arg_t){&seq, i};
    snprintf(id, sizeof id, "msg-%d", i);
    assert_int_equal(hd_store_inbox_put(fx->st, "bulk", id, "{\"n\":1}", 7, 100000, seq_on_inbox_put, &seq_args[i]), 0);
  }
  hd_store_health(fx->st, &h);
  assert_true(h.queue_depth + h.in_flight == 1000);
  run_until(fx, &seq.calls, 1000);
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(seq.order[i], i);
    assert_int_equal(seq.status[i], 0);
    assert_int_equal(seq.result[i], 1);
  }
  hd_store_health(fx->st, &h);
  uint64_t commits = h.commits - h0.commits;
  printf("# 1000 writes in %llu transactions, largest batch %zu, last commit %llu us\n", (unsigned long long)commits,
         h.max_batch, (unsigned long long)h.last_commit_us);
  assert_true(commits >= 1);
  assert_true(commits < 1000);
  assert_true(h.max_batch > 1);
  assert_int_equal(h.queue_depth, 0);
  assert_int_equal(h.in_flight, 0);
  assert_int_equal(h.requests - h0.requests, 1000);
  assert_true(h.ok);
  assert_int_equal(h.failed_transactions, 0);
  DO(fx, g, hd_store_inbox_take(fx->st, "bulk", on_inbox, &g));
  assert_int_equal(g.count, 1000);
}

static void test_failure_isolated_in_batch(void **state) {
  fx_t *fx = *state;
  memset(&seq, 0, sizeof seq);
  /* submitted together (one batch in practice); the duplicates fail alone */
  const char *names[] = {"u0", "u1", "u2", "u1", "u4", "u0", "u6"};
  for (int i = 0; i < 7; i++) {
    seq_args[i] = (seq_arg_t){&seq, i};
    assert_int_equal(hd_store_user_create(fx->st, names[i], "user", "$h", NULL, false, seq_on_user, &seq_args[i]), 0);
  }
  run_until(fx, &seq.calls, 7);
  for (int i = 0; i < 7; i++) assert_int_equal(seq.status[i], (i == 3 || i == 5) ? HD_EEXISTS : 0);
  DO(fx, g, hd_store_users_list(fx->st, NULL, on_users, &g));
  assert_string_equal(g.text, "u0,u1,u2,u4,u6,");
  hd_store_health_t h;
  hd_store_health(fx->st, &h);
  assert_true(h.ok);
  assert_int_equal(h.failed_transactions, 0);
}

/* --- durability, close ------------------------------------------------------------------------- */

static void test_durable_across_reopen(void **state) {
  fx_t *fx = *state;
  int64_t alice = make_user(fx, "alice", "admin");
  int64_t nid = notify(fx, alice, "kept");
  DO(fx, g, hd_store_notification_mark_read(fx->st, alice, nid, on_read, &g));
  DO(fx, g, hd_store_session_create(fx->st, 10, "persist me", NULL, 1, on_post, &g));
  int64_t sid = g.sess.id;
  DO(fx, g, hd_store_inbox_put(fx->st, "u", "m", "{}", 2, 10, on_inbox_put, &g));
  close_store(fx);

  fx->st = open_store(fx);
  DO(fx, g, hd_store_user_get_by_name(fx->st, "alice", on_user, &g));
  assert_int_equal(g.id, alice);
  DO(fx, g, hd_store_notifications_list(fx->st, alice, false, 10, 0, on_notifications, &g));
  assert_int_equal(g.count, 1);
  assert_true(g.reads[0]);
  DO(fx, g, hd_store_messages_list(fx->st, sid, 0, 10, on_messages, &g));
  assert_string_equal(g.text, "persist me,");
  DO(fx, g, hd_store_inbox_take(fx->st, "u", on_inbox, &g));
  assert_int_equal(g.count, 1);
  /* ids keep growing after a restart (AUTOINCREMENT) */
  assert_true(notify(fx, 0, "after") > nid);
}

static void kill_on_answer(void *arg, int status, const hd_store_notification_t *res) {
  int fd = *(int *)arg;
  int64_t id = status ? -1 : res->id;
  if (write(fd, &id, sizeof id) != sizeof id) _exit(3);
  raise(SIGKILL); /* no close, no checkpoint: only what was committed survives */
}

static void test_durable_across_kill(void **state) {
  fx_t *fx = *state;
  close_store(fx); /* fork with no store thread running */
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    uv_loop_t loop;
    char err[256];
    uv_loop_init(&loop);
    hd_store_t *st = hd_store_open(&loop, fx->path, err, sizeof err);
    if (!st) _exit(2);
    hd_store_notification_new_t n = {"info", "survives kill -9", "c", NULL, 0, 0};
    if (hd_store_notification_create(st, &n, kill_on_answer, &fds[1])) _exit(2);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(4);
  }
  close(fds[1]);
  int64_t id = 0;
  assert_int_equal(read(fds[0], &id, sizeof id), sizeof id);
  close(fds[0]);
  int wstatus;
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  assert_true(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
  assert_true(id > 0);

  fx->st = open_store(fx);
  DO(fx, g, hd_store_notifications_list(fx->st, 1, false, 10, 0, on_notifications, &g));
  assert_int_equal(g.count, 1);
  assert_int_equal(g.ids[0], id);
}

static int resubmit_rc = 1;
static hd_store_t *closing_store;

static void resubmit_on_close(void *arg, int status, const hd_store_inbox_put_t *res) {
  seq_on_inbox_put(arg, status, res);
  resubmit_rc = hd_store_inbox_remove(closing_store, "x", "y", NULL, NULL);
}

static void test_close_drains_queue(void **state) {
  fx_t *fx = *state;
  memset(&seq, 0, sizeof seq);
  char id[32];
  for (int i = 0; i < 50; i++) {
    seq_args[i] = (seq_arg_t){&seq, i};
    snprintf(id, sizeof id, "d%d", i);
    assert_int_equal(hd_store_inbox_put(fx->st, "drain", id, "{}", 2, 1000, seq_on_inbox_put, &seq_args[i]), 0);
  }
  /* the last one's callback submits again, during close: refused */
  closing_store = fx->st;
  seq_args[50] = (seq_arg_t){&seq, 50};
  assert_int_equal(hd_store_inbox_put(fx->st, "drain", "last", "{}", 2, 1000, resubmit_on_close, &seq_args[50]), 0);
  hd_store_close(fx->st); /* the loop never ran: every callback runs inside close */
  fx->st = NULL;
  assert_int_equal(seq.calls, 51);
  for (int i = 0; i < 51; i++) {
    assert_int_equal(seq.order[i], i);
    assert_int_equal(seq.status[i], 0);
  }
  assert_int_equal(resubmit_rc, HD_ECLOSED);
  uv_run(&fx->loop, UV_RUN_DEFAULT);

  fx->st = open_store(fx);
  DO(fx, g, hd_store_inbox_take(fx->st, "drain", on_inbox, &g));
  assert_int_equal(g.count, 51);
}

typedef struct {
  fx_t *fx;
  int calls;
} closer_t;

static void close_inside_callback(void *arg, int status, const hd_store_count_t *res) {
  closer_t *c = arg;
  if (c->calls++ == 0) {
    hd_store_close(c->fx->st); /* answers the rest now, frees the store once this callback returns */
    c->fx->st = NULL;
  }
}

static void test_close_inside_callback(void **state) {
  fx_t *fx = *state;
  closer_t c = {fx, 0};
  for (int i = 0; i < 20; i++)
    assert_int_equal(hd_store_notifications_unread_count(fx->st, 1, close_inside_callback, &c), 0);
  run_until(fx, &c.calls, 20);
  assert_int_equal(c.calls, 20);
  assert_null(fx->st);
}

typedef struct {
  sqlite3 *db;
  bool released;
} locker_t;

static void release_lock(uv_timer_t *t) {
  locker_t *l = t->data;
  assert_int_equal(sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  l->released = true;
  uv_close((uv_handle_t *)t, NULL);
}

static void test_external_writer(void **state) {
  fx_t *fx = *state;
  locker_t l = {NULL, false};
  assert_int_equal(sqlite3_open(fx->path, &l.db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(l.db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  /* another process holds the write lock: reads still go through (WAL) */
  DO(fx, g, hd_store_notifications_unread_count(fx->st, 1, on_count, &g));
  assert_int_equal(g.status, 0);
  /* a write waits (busy timeout) until the lock goes, then commits */
  uv_timer_t t;
  uv_timer_init(&fx->loop, &t);
  t.data = &l;
  uv_timer_start(&t, release_lock, 200, 0);
  hd_store_notification_new_t n = {"info", "after the lock", "c", NULL, 0, 0};
  DO(fx, g, hd_store_notification_create(fx->st, &n, on_notification, &g));
  assert_int_equal(g.status, 0);
  assert_true(l.released);
  sqlite3_close(l.db);
}

/* --- threads ----------------------------------------------------------------------------------- */

static void test_sql_never_on_loop_thread(void **state) {
  fx_t *fx = *state;
  uv_thread_t t, self = uv_thread_self();
  make_user(fx, "t", "user");
  notify(fx, 0, "x");
  DO(fx, g, hd_store_notifications_list(fx->st, 1, false, 10, 0, on_notifications, &g));
  assert_int_equal(hd_store_sql_thread(fx->st, &t), 0);
  assert_false(uv_thread_equal(&t, &self));
  hd_store_health_t h;
  hd_store_health(fx->st, &h);
  assert_true(h.statements > 0);
  assert_int_equal(h.statements_off_thread, 0); /* every statement, migrations included, ran on t */
}

/* --- several loops sharing one store ----------------------------------------------------------- */

/* Shard threads must not fail cmocka assertions (longjmp across threads): they count what went
 * wrong, and the main thread asserts the counts after joining them. */

#define SHARD_OPS 300 /* per shard: notification create, inbox put, inbox take, in turn */
#define SHARD_WAVE 150

static _Thread_local int tl_shard = -1; /* the shard whose loop runs on this thread */

typedef struct shard shard_t;

typedef struct {
  shard_t *s;
  int seq;                   /* submission number within the shard */
  int kind;                  /* 0: notification create, 1: inbox put, 2: inbox take */
  int want;                  /* inbox take: the puts submitted before it */
} shard_op_t;

struct shard {
  int index;
  uv_loop_t own;             /* the loop of a shard on its own thread */
  uv_loop_t *loop;
  hd_store_t *st;            /* NULL: attach from parent on the shard's own thread */
  hd_store_t *parent;
  uv_thread_t thread, self;  /* self: what the shard's thread calls itself */
  bool close;                /* close st on its thread once every answer came */
  uv_sem_t *waved, *go;      /* set: after the first wave post waved, wait for go, then the rest */
  uv_sem_t *attached;        /* set: posted once the shard's thread holds its handle */
  int submitted, calls, puts;
  int wrong_thread, out_of_order, bad_result, refused, timed_out, unhealthy;
  int64_t last_id;
  char sub[24];
  shard_op_t ops[SHARD_OPS];
};

static void shard_note(shard_op_t *op, int status) {
  shard_t *s = op->s;
  uv_thread_t self = uv_thread_self();
  if (tl_shard != s->index || !uv_thread_equal(&self, &s->self)) s->wrong_thread++;
  if (op->seq != s->calls) s->out_of_order++;
  if (status) s->bad_result++;
  s->calls++;
  if (s->calls % 50 == 0) { /* health from this thread, while others submit and answer */
    hd_store_health_t h;
    if (hd_store_health(s->st, &h) || !h.ok || strcmp(h.backend, pg ? "postgres" : "sqlite")) s->unhealthy++;
  }
}

static void shard_on_notification(void *arg, int status, const hd_store_notification_t *res) {
  shard_op_t *op = arg;
  shard_note(op, status);
  if (status) return;
  if (res->id <= op->s->last_id) op->s->bad_result++; /* ids grow in submission order */
  op->s->last_id = res->id;
}

static void shard_on_put(void *arg, int status, const hd_store_inbox_put_t *res) {
  shard_op_t *op = arg;
  shard_note(op, status);
  if (!status && !res->inserted) op->s->bad_result++;
}

static void shard_on_take(void *arg, int status, const hd_store_inbox_t *res) {
  shard_op_t *op = arg;
  shard_note(op, status);
  if (!status && res->count != (size_t)op->want) op->s->bad_result++; /* every earlier put, none later */
}

static void shard_submit(shard_t *s) {
  int i = s->submitted++;
  shard_op_t *op = &s->ops[i];
  *op = (shard_op_t){s, i, i % 3, s->puts};
  char id[32];
  int rc;
  if (op->kind == 0) {
    hd_store_notification_new_t n = {"info", s->sub, "c", NULL, 0, 0};
    rc = hd_store_notification_create(s->st, &n, shard_on_notification, op);
  } else if (op->kind == 1) {
    snprintf(id, sizeof id, "m%d", i);
    rc = hd_store_inbox_put(s->st, s->sub, id, "{}", 2, 100000, shard_on_put, op);
    s->puts++;
  } else {
    rc = hd_store_inbox_take(s->st, s->sub, shard_on_take, op);
  }
  if (rc) s->refused++;
}

/* Runs s's loop until want answers came (false after 20 s). */
static bool shard_wait(shard_t *s, int want) {
  uv_timer_t tick;
  uv_timer_init(s->loop, &tick);
  uv_timer_start(&tick, on_tick, 50, 50);
  uint64_t deadline = uv_now(s->loop) + 20000;
  while (s->calls < want && uv_now(s->loop) <= deadline) uv_run(s->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(s->loop, UV_RUN_NOWAIT);
  return s->calls >= want;
}

/* A shard's life on its thread: attach if needed, submit in small steps while answers come, wait. */
static void shard_run(shard_t *s) {
  tl_shard = s->index;
  s->self = uv_thread_self();
  if (!s->st && !(s->st = hd_store_attach(s->parent, s->loop))) {
    s->refused++;
    if (s->attached) uv_sem_post(s->attached);
    return;
  }
  if (s->attached) uv_sem_post(s->attached);
  while (s->submitted < SHARD_OPS) {
    if (s->waved && s->submitted == SHARD_WAVE) {
      if (!shard_wait(s, SHARD_WAVE)) s->timed_out++;
      uv_sem_post(s->waved);
      uv_sem_wait(s->go);
    }
    for (int k = 0; k < 10 && s->submitted < SHARD_OPS; k++) shard_submit(s);
    uv_run(s->loop, UV_RUN_NOWAIT);
  }
  if (!shard_wait(s, SHARD_OPS)) s->timed_out++;
  if (s->close) {
    hd_store_close(s->st);
    s->st = NULL;
    uv_run(s->loop, UV_RUN_DEFAULT); /* frees the handle's uv_async_t */
  }
}

static void shard_thread(void *p) { shard_run(p); }

static void shard_init(shard_t *s, int index, fx_t *fx) {
  memset(s, 0, sizeof *s);
  s->index = index;
  snprintf(s->sub, sizeof s->sub, "shard-%d", index);
  if (index == 0) { /* the main thread's loop and the first handle */
    s->loop = &fx->loop;
    s->st = fx->st;
    return;
  }
  assert_int_equal(uv_loop_init(&s->own), 0);
  s->loop = &s->own;
  s->parent = fx->st;
  s->close = true;
}

static void shard_check(shard_t *s, int want) {
  assert_int_equal(s->refused, 0);
  assert_int_equal(s->timed_out, 0);
  assert_int_equal(s->calls, want);
  assert_int_equal(s->wrong_thread, 0);
  assert_int_equal(s->out_of_order, 0);
  assert_int_equal(s->bad_result, 0);
  assert_int_equal(s->unhealthy, 0);
}

static bool wal_exists(fx_t *fx) {
  char wal[600];
  snprintf(wal, sizeof wal, "%s-wal", fx->path);
  return access(wal, F_OK) == 0;
}

/* What every shard wrote is there: its inbox, and SHARD_OPS / 3 notifications titled with its name. */
static void check_shards_data(fx_t *fx, int n) {
  fx->st = open_store(fx);
  for (int i = 0; i < n; i++) {
    char sub[24];
    snprintf(sub, sizeof sub, "shard-%d", i);
    DO(fx, g, hd_store_inbox_take(fx->st, sub, on_inbox, &g));
    assert_int_equal(g.status, 0);
    assert_int_equal(g.count, SHARD_OPS / 3);
  }
  DO(fx, g, hd_store_notifications_unread_count(fx->st, 1, on_count, &g));
  assert_int_equal(g.n, n * SHARD_OPS / 3);
}

static shard_t shards[3]; /* large: static */

/* Three loops (the main one and two threads) submit writes and reads at once through their own
 * handles; shard 1 attaches before its thread starts, shard 2 on its own thread. */
static void run_shards(fx_t *fx, bool first_handle_first) {
  tl_shard = 0;
  for (int i = 0; i < 3; i++) shard_init(&shards[i], i, fx);
  assert_non_null(shards[1].st = hd_store_attach(fx->st, shards[1].loop));
  shards[0].close = first_handle_first;
  for (int i = 1; i < 3; i++) assert_int_equal(uv_thread_create(&shards[i].thread, shard_thread, &shards[i]), 0);
  shard_run(&shards[0]);
  if (first_handle_first) fx->st = NULL; /* closed by shard_run, maybe while the others still work */
  for (int i = 1; i < 3; i++) {
    assert_int_equal(uv_thread_join(&shards[i].thread), 0);
    assert_int_equal(uv_loop_close(&shards[i].own), 0);
  }
  for (int i = 0; i < 3; i++) shard_check(&shards[i], SHARD_OPS);
  if (!first_handle_first) { /* the others closed; the first handle still sees the whole store */
    hd_store_health_t h;
    assert_int_equal(hd_store_health(fx->st, &h), 0);
    assert_true(h.ok);
    assert_int_equal(h.requests, 3 * SHARD_OPS);
    assert_int_equal(h.queue_depth, 0);
    assert_int_equal(h.in_flight, 0);
    assert_true(h.commits >= 1);
    assert_true(pg || wal_exists(fx)); /* the database is still open */
  }
  close_store(fx); /* first_handle_first: already closed, this only runs the main loop */
  assert_false(!pg && wal_exists(fx)); /* the last close closed the database (SQLite removes the WAL) */
  check_shards_data(fx, 3);
}

static void test_shards_close_first_handle_first(void **state) { run_shards(*state, true); }

static void test_shards_close_first_handle_last(void **state) { run_shards(*state, false); }

/* The first handle closes (answering its queued writes at once, on its own thread) while another
 * handle's loop works; that one keeps working afterwards, and its close releases everything. */
static void test_close_one_handle_while_another_works(void **state) {
  fx_t *fx = *state;
  uv_sem_t waved, go, attached;
  assert_int_equal(uv_sem_init(&waved, 0), 0);
  assert_int_equal(uv_sem_init(&go, 0), 0);
  assert_int_equal(uv_sem_init(&attached, 0), 0);
  shard_init(&shards[0], 0, fx);
  shard_init(&shards[1], 1, fx);
  shards[1].waved = &waved;
  shards[1].go = &go;
  shards[1].attached = &attached;
  tl_shard = 0;
  assert_int_equal(uv_thread_create(&shards[1].thread, shard_thread, &shards[1]), 0);
  uv_sem_wait(&attached); /* the database stays open for shard 1 when handle 0 closes below */

  memset(&seq, 0, sizeof seq);
  char id[32];
  for (int i = 0; i < 100; i++) {
    seq_args[i] = (seq_arg_t){&seq, i};
    snprintf(id, sizeof id, "c%d", i);
    assert_int_equal(hd_store_inbox_put(fx->st, "shard-0", id, "{}", 2, 1000, seq_on_inbox_put, &seq_args[i]), 0);
  }
  hd_store_close(fx->st); /* the loop never ran: every callback runs inside close, here */
  fx->st = NULL;
  assert_int_equal(seq.calls, 100);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(seq.order[i], i);
    assert_int_equal(seq.status[i], 0);
  }
  uv_run(&fx->loop, UV_RUN_DEFAULT);

  uv_sem_wait(&waved); /* shard 1's first wave is answered; the second starts after the close */
  assert_true(pg || wal_exists(fx));
  uv_sem_post(&go);
  assert_int_equal(uv_thread_join(&shards[1].thread), 0);
  assert_int_equal(uv_loop_close(&shards[1].own), 0);
  shard_check(&shards[1], SHARD_OPS);
  assert_false(!pg && wal_exists(fx));
  uv_sem_destroy(&waved);
  uv_sem_destroy(&go);
  uv_sem_destroy(&attached);

  fx->st = open_store(fx);
  DO(fx, g, hd_store_inbox_take(fx->st, "shard-0", on_inbox, &g));
  assert_int_equal(g.count, 100);
  DO(fx, g, hd_store_inbox_take(fx->st, "shard-1", on_inbox, &g));
  assert_int_equal(g.count, SHARD_OPS / 3);
}

typedef struct {
  hd_store_t *st;
  int calls, close_at, refused_rc;
  int answered_in_close;     /* calls when close returned: all of them, none left for the loop */
  int order[300];
} two_t;

typedef struct {
  two_t *t;
  int index;
} two_arg_t;

static void two_on_put(void *arg, int status, const hd_store_inbox_put_t *res) {
  two_arg_t *a = arg;
  two_t *t = a->t;
  assert_int_equal(status, 0);
  t->order[t->calls++] = a->index;
  if (t->calls == t->close_at) {
    hd_store_close(t->st); /* answers its other requests now; frees it once this callback returns */
    t->answered_in_close = t->calls;
    t->refused_rc = hd_store_inbox_take(t->st, "both", NULL, NULL);
    t->st = NULL;
  }
}

/* Two handles on the same loop, submissions alternating: a batch of more than one request holds
 * both handles' requests, and each answer still goes to its own handle, in its order. Handle b
 * closes inside one of its callbacks; a keeps working. */
static void test_handles_share_batches(void **state) {
  fx_t *fx = *state;
  static two_t a, b;
  static two_arg_t args[2][300];
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.st = fx->st;
  assert_non_null(b.st = hd_store_attach(fx->st, &fx->loop));
  b.close_at = 100;
  char id[32];
  for (int i = 0; i < 600; i++) {
    two_t *t = i % 2 ? &b : &a;
    args[i % 2][i / 2] = (two_arg_t){t, i / 2};
    snprintf(id, sizeof id, "%c%d", i % 2 ? 'b' : 'a', i / 2);
    assert_int_equal(hd_store_inbox_put(t->st, "both", id, "{}", 2, 100000, two_on_put, &args[i % 2][i / 2]), 0);
  }
  run_until(fx, &a.calls, 300);
  assert_int_equal(b.calls, 300);
  for (int i = 0; i < 300; i++) {
    assert_int_equal(a.order[i], i);
    assert_int_equal(b.order[i], i);
  }
  assert_int_equal(b.answered_in_close, 300);
  assert_int_equal(b.refused_rc, HD_ECLOSED);
  assert_null(b.st);
  hd_store_health_t h;
  hd_store_health(fx->st, &h);
  assert_true(h.max_batch > 1);
  assert_int_equal(h.requests, 600);
  DO(fx, g, hd_store_inbox_take(fx->st, "both", on_inbox, &g));
  assert_int_equal(g.count, 600);
}

/* --- claim (assignment exactly once), retention ------------------------------------------------ */

static int claims_won[64], claims_lost[64], claims_other[64], claims_done;

static void on_claim(void *arg, int status, const hd_store_session_t *res) {
  int i = (int)(intptr_t)arg;
  if (status == 0 && res) claims_won[i]++;
  else if (status == HD_EEXISTS) claims_lost[i]++;
  else claims_other[i]++;
  claims_done++;
}

static void test_claim_once(void **state) {
  fx_t *fx = *state;
  DO(fx, g, hd_store_session_create(fx->st, 10, "help", NULL, 1, on_post, &g));
  int64_t sid = g.sess.id;
  /* two claims in one batch: the first wins, the second finds it taken */
  got_t a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  assert_int_equal(hd_store_session_claim(fx->st, sid, 7, on_session, &a), 0);
  assert_int_equal(hd_store_session_claim(fx->st, sid, 8, on_session, &b), 0);
  run_until(fx, &b.calls, 1);
  assert_int_equal(a.status, 0);
  assert_int_equal(a.sess.admin_id, 7);
  assert_string_equal(a.sess.status, "active");
  assert_int_equal(b.status, HD_EEXISTS);
  DO(fx, g, hd_store_session_get(fx->st, sid, on_session, &g));
  assert_int_equal(g.sess.admin_id, 7);
  /* an explicit assignment (transfer) still moves it */
  DO(fx, g, hd_store_session_assign(fx->st, sid, 8, on_session, &g));
  assert_int_equal(g.sess.admin_id, 8);
  DO(fx, g, hd_store_session_close(fx->st, sid, on_close, &g));
  DO(fx, g, hd_store_session_claim(fx->st, sid, 7, on_session, &g));
  assert_int_equal(g.status, HD_EINVAL);
  DO(fx, g, hd_store_session_claim(fx->st, 999999, 7, on_session, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  assert_int_equal(hd_store_session_claim(fx->st, 0, 7, on_session, &g), HD_EINVAL);

  /* two stores (two connections, two store threads, as two nodes) claim the same 64 sessions at once */
  int64_t ids[64];
  for (int i = 0; i < 64; i++) {
    DO(fx, g, hd_store_session_create(fx->st, 100 + i, "race", NULL, 1, on_post, &g));
    ids[i] = g.sess.id;
  }
  hd_store_t *other = open_store(fx);
  memset(claims_won, 0, sizeof claims_won);
  memset(claims_lost, 0, sizeof claims_lost);
  memset(claims_other, 0, sizeof claims_other);
  claims_done = 0;
  for (int i = 0; i < 64; i++) {
    assert_int_equal(hd_store_session_claim(fx->st, ids[i], 1, on_claim, (void *)(intptr_t)i), 0);
    assert_int_equal(hd_store_session_claim(other, ids[63 - i], 2, on_claim, (void *)(intptr_t)(63 - i)), 0);
  }
  run_until(fx, &claims_done, 128);
  hd_store_close(other);
  for (int i = 0; i < 64; i++) {
    assert_int_equal(claims_won[i], 1);
    assert_int_equal(claims_lost[i], 1);
    assert_int_equal(claims_other[i], 0);
  }
}

static void test_prune(void **state) {
  fx_t *fx = *state;
  int64_t admin = make_user(fx, "pruner", "admin");
  for (int i = 0; i < 5; i++) notify(fx, i % 2 ? admin : 0, "old");
  DO(fx, g, hd_store_notifications_mark_all_read(fx->st, admin, on_count, &g));
  assert_int_equal(g.n, 5);
  /* a closed session with 3 messages, an open one */
  DO(fx, g, hd_store_session_create(fx->st, 10, "m1", NULL, 1, on_post, &g));
  int64_t closed = g.sess.id;
  DO(fx, g, hd_store_message_create(fx->st, closed, 10, "user", "m2", NULL, on_post, &g));
  DO(fx, g, hd_store_message_create(fx->st, closed, 10, "user", "m3", NULL, on_post, &g));
  DO(fx, g, hd_store_session_close(fx->st, closed, on_close, &g));
  DO(fx, g, hd_store_session_create(fx->st, 11, "open", NULL, 1, on_post, &g));
  int64_t open = g.sess.id;

  /* nothing is older than an hour ago */
  int64_t past = g.sess.created_at - 3600 * 1000, future = g.sess.created_at + 60 * 1000;
  DO(fx, g, hd_store_prune(fx->st, HD_STORE_PRUNE_NOTIFICATIONS, past, 100, on_count, &g));
  assert_int_equal(g.n, 0);
  /* batches of 2: 2, 2, 1, 0 */
  int64_t want[] = {2, 2, 1, 0};
  for (int i = 0; i < 4; i++) {
    DO(fx, g, hd_store_prune(fx->st, HD_STORE_PRUNE_NOTIFICATIONS, future, 2, on_count, &g));
    assert_int_equal(g.status, 0);
    assert_int_equal(g.n, want[i]);
  }
  DO(fx, g, hd_store_notifications_unread_count(fx->st, admin, on_count, &g));
  assert_int_equal(g.n, 0); /* the read state went with them: no negative count */
  DO(fx, g, hd_store_notifications_list(fx->st, admin, false, 10, 0, on_notifications, &g));
  assert_int_equal(g.count, 0);
  notify(fx, admin, "new");
  DO(fx, g, hd_store_notifications_unread_count(fx->st, admin, on_count, &g));
  assert_int_equal(g.n, 1);

  /* sessions: messages first (2, 1, 0), then the emptied session; the open one stays */
  DO(fx, g, hd_store_prune(fx->st, HD_STORE_PRUNE_CHAT_SESSIONS, future, 10, on_count, &g));
  assert_int_equal(g.n, 0); /* it still has messages */
  int64_t msgs[] = {2, 1, 0};
  for (int i = 0; i < 3; i++) {
    DO(fx, g, hd_store_prune(fx->st, HD_STORE_PRUNE_CHAT_MESSAGES, future, 2, on_count, &g));
    assert_int_equal(g.n, msgs[i]);
  }
  DO(fx, g, hd_store_prune(fx->st, HD_STORE_PRUNE_CHAT_SESSIONS, future, 10, on_count, &g));
  assert_int_equal(g.n, 1);
  DO(fx, g, hd_store_session_get(fx->st, closed, on_session, &g));
  assert_int_equal(g.status, HD_ENOTFOUND);
  DO(fx, g, hd_store_messages_list(fx->st, open, 0, 10, on_messages, &g));
  assert_string_equal(g.text, "open,");
  assert_int_equal(hd_store_prune(fx->st, HD_STORE_PRUNE_NOTIFICATIONS, future, 0, on_count, &g), HD_EINVAL);
  assert_int_equal(hd_store_prune(fx->st, HD_STORE_PRUNE_NOTIFICATIONS, future, HD_STORE_PRUNE_MAX + 1, on_count, &g),
                   HD_EINVAL);
}

/* --- PostgreSQL only --------------------------------------------------------------------------- */

typedef struct {
  const char *url;
  int rc;
  char err[256];
} migrate_arg_t;

static void migrate_thread(void *p) {
  migrate_arg_t *m = p;
  m->rc = hd_store_migrate_path(m->url, m->err, sizeof m->err);
}

static void test_pg_open_and_migrate(void **state) {
  fx_t *fx = *state;
  hd_store_health_t h;
  assert_int_equal(hd_store_health(fx->st, &h), 0);
  assert_true(h.ok);
  assert_string_equal(h.backend, "postgres");
  assert_string_equal(hd_store_backend_name(fx->st), "postgres");
  assert_int_equal(h.schema_version, 4);
  assert_int_equal(pg_query(fx, "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users', "
                                "'notifications', 'notification_reads', 'chat_sessions', 'chat_messages', 'inbox', "
                                "'schema_migrations', 'topic_history', 'topic_history_state', 'users_deleted', "
                                "'counters')"),
                   11);
  char err[256];
  assert_int_equal(hd_store_migrate_path(fx->path, err, sizeof err), 0);

  /* four nodes migrate a fresh database at once: the advisory lock lets each migration run once */
  close_store(fx);
  char sql[160];
  snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", fx->dbname);
  pg_admin(sql);
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", fx->dbname);
  pg_admin(sql);
  migrate_arg_t m[4];
  uv_thread_t t[4];
  for (int i = 0; i < 4; i++) {
    m[i] = (migrate_arg_t){fx->path, -1, ""};
    assert_int_equal(uv_thread_create(&t[i], migrate_thread, &m[i]), 0);
  }
  int total = 0;
  for (int i = 0; i < 4; i++) {
    uv_thread_join(&t[i]);
    if (m[i].rc < 0) fail_msg("migrate %d: %s", i, m[i].err);
    total += m[i].rc;
  }
  assert_int_equal(total, 4);
  assert_int_equal(pg_query(fx, "SELECT count(*) FROM schema_migrations"), 4);

  /* a database from a newer herald is refused */
  pg_query(fx, "INSERT INTO schema_migrations VALUES (999, 'future', 0)");
  assert_int_equal(hd_store_migrate_path(fx->path, err, sizeof err), HD_EVERSION);
  assert_non_null(strstr(err, "newer"));
  assert_null(hd_store_open(&fx->loop, fx->path, err, sizeof err));
}

static void test_pg_reconnect(void **state) {
  fx_t *fx = *state;
  int64_t before = notify(fx, 0, "before");
  /* the server drops our connection (a restart, a failover) */
  assert_int_equal(pg_query(fx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                                "datname = current_database() AND pid <> pg_backend_pid()"),
                   1);
  usleep(100 * 1000);
  hd_store_notification_new_t n = {"info", "during", "c", NULL, 0, 0};
  DO(fx, g, hd_store_notification_create(fx->st, &n, on_notification, &g));
  assert_int_equal(g.status, HD_EBUSY); /* the batch that finds the connection gone fails, clearly */
  hd_store_health_t h;
  hd_store_health(fx->st, &h);
  assert_false(h.ok);
  /* the next one reconnects (prepared statements again) and works */
  int64_t after = notify(fx, 0, "after");
  assert_true(after > before);
  hd_store_health(fx->st, &h);
  assert_true(h.ok);
  DO(fx, g, hd_store_notifications_list(fx->st, 1, false, 10, 0, on_notifications, &g));
  assert_int_equal(g.count, 2);
}

static void test_pg_error_isolated_in_batch(void **state) {
  fx_t *fx = *state;
  /* a trigger makes one insert fail with an SQL error, which breaks PostgreSQL's transaction: the
   * batch runs again with savepoints and only that request fails */
  pg_query(fx, "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               "IF NEW.title = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$");
  pg_query(fx, "CREATE TRIGGER boom BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION boom()");
  memset(&seq, 0, sizeof seq);
  const char *titles[] = {"a", "b", "boom", "d", "e"};
  for (int i = 0; i < 5; i++) {
    seq_args[i] = (seq_arg_t){&seq, i};
    hd_store_notification_new_t n = {"info", titles[i], "c", NULL, 0, 0};
    assert_int_equal(hd_store_notification_create(fx->st, &n, seq_on_notification, &seq_args[i]), 0);
  }
  run_until(fx, &seq.calls, 5);
  for (int i = 0; i < 5; i++) assert_int_equal(seq.status[i], i == 2 ? HD_EIO : 0);
  DO(fx, g, hd_store_notifications_list(fx->st, 1, false, 10, 0, on_notifications, &g));
  assert_int_equal(g.count, 4);
  hd_store_health_t h;
  hd_store_health(fx->st, &h);
  assert_true(h.ok);
  assert_int_equal(h.failed_transactions, 0);
}

int main(void) {
  hd_log_set_level(HD_LOG_WARN);
#define BOTH(X)                                  \
  X(test_users), X(test_notifications), X(test_sessions), X(test_inbox), X(test_inbox_put_many), \
  X(test_callback_order), X(test_group_commit), X(test_failure_isolated_in_batch), X(test_durable_across_reopen), \
  X(test_durable_across_kill), X(test_close_drains_queue), X(test_close_inside_callback), \
  X(test_sql_never_on_loop_thread), X(test_shards_close_first_handle_first), X(test_shards_close_first_handle_last), \
  X(test_close_one_handle_while_another_works), X(test_handles_share_batches), X(test_claim_once), X(test_prune), \
  X(test_topics_save_load), X(test_user_states), X(test_notification_targets), \
  X(test_sessions_capped)
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest sqlite_tests[] = {
      T(test_open_and_health), T(test_migrations_idempotent), T(test_external_writer), BOTH(T),
  };
  const struct CMUnitTest pg_tests[] = {
      T(test_pg_open_and_migrate), T(test_pg_reconnect), T(test_pg_error_isolated_in_batch), BOTH(T),
  };
  int failed = cmocka_run_group_tests_name("store (sqlite)", sqlite_tests, NULL, NULL);
  pg_url = getenv("HERALD_TEST_POSTGRES_URL");
  if (pg_url && *pg_url) {
    pg = true;
    failed += cmocka_run_group_tests_name("store (postgres)", pg_tests, NULL, NULL);
  } else {
    printf("# store (postgres): skipped, HERALD_TEST_POSTGRES_URL is not set\n");
  }
  return failed;
}
