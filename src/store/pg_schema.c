/* PostgreSQL backend, migrations: the numbered scripts of schema.c applied in order, each in its own
 * transaction with its row in schema_migrations, while holding a session advisory lock so that
 * nodes starting together (or `herald migrate` beside a starting node) apply each migration once:
 * the others wait for the lock, then find the schema up to date. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "store/pg.h"

#define MIGRATION_LOCK "310417443908" /* pg_advisory_lock key ("HERLD" as a number) */

/* Runs a constant script; 0, or HD_EIO with the server's message in err. */
static int script(hd_pg_t *s, const char *sql, char *err, size_t errlen) {
  hd_pg_count_statement(s);
  PGresult *res = PQexec(hd_pg_conn(s), sql);
  ExecStatusType st = PQresultStatus(res);
  int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : HD_EIO;
  if (rc) {
    snprintf(err, errlen, "%s", PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res) : PQerrorMessage(hd_pg_conn(s)));
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
  }
  PQclear(res);
  return rc;
}

/* The schema version recorded (0 for none), or -1 with the message in err. */
static int current_version(hd_pg_t *s, char *err, size_t errlen) {
  hd_pg_count_statement(s);
  PGresult *res = PQexec(hd_pg_conn(s), "SELECT coalesce(max(version), 0) FROM schema_migrations");
  int v = -1;
  if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) v = atoi(PQgetvalue(res, 0, 0));
  else snprintf(err, errlen, "cannot read schema_migrations: %s", PQresultErrorMessage(res));
  PQclear(res);
  return v;
}

/* Applies migration m in one transaction; 0 or HD_E* with the message in msg. */
static int apply(hd_pg_t *s, const hd_store_migration_t *m, char *msg, size_t msglen) {
  int rc = script(s, "BEGIN", msg, msglen);
  if (!rc) rc = script(s, m->postgres, msg, msglen);
  if (!rc) {
    char version[16], at[24];
    snprintf(version, sizeof version, "%d", m->version);
    snprintf(at, sizeof at, "%lld", (long long)hd_clock_wall_ms());
    const char *const values[] = {version, m->name, at};
    hd_pg_count_statement(s);
    PGresult *res = PQexecParams(hd_pg_conn(s),
                                 "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", 3,
                                 NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      snprintf(msg, msglen, "%s", PQresultErrorMessage(res));
      rc = HD_EIO;
    }
    PQclear(res);
  }
  if (!rc) rc = script(s, "COMMIT", msg, msglen);
  if (rc && PQtransactionStatus(hd_pg_conn(s)) != PQTRANS_IDLE) {
    char ignored[64];
    script(s, "ROLLBACK", ignored, sizeof ignored);
  }
  return rc;
}

int hd_pg_migrate(hd_pg_t *s, int *applied, int *version, char *err, size_t errlen) {
  size_t n;
  const hd_store_migration_t *m = hd_store_migrations(&n);
  int latest = m[n - 1].version;
  char msg[512] = "";
  *applied = 0;
  if (script(s, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", msg, sizeof msg)) {
    snprintf(err, errlen, "cannot take the migration lock: %s", msg);
    return HD_EIO;
  }
  int rc = script(s,
                  "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                  "  version INTEGER PRIMARY KEY,\n"
                  "  name TEXT NOT NULL,\n"
                  "  applied_at BIGINT NOT NULL\n"
                  ")",
                  msg, sizeof msg);
  if (rc) snprintf(err, errlen, "cannot create schema_migrations: %s", msg);
  int current = rc ? -1 : current_version(s, err, errlen);
  if (current < 0) rc = HD_EIO;
  if (!rc && current > latest) {
    snprintf(err, errlen, "the database's schema version %d is newer than this herald's (%d)", current, latest);
    rc = HD_EVERSION;
  }
  for (size_t i = 0; !rc && i < n; i++) {
    if (m[i].version <= current) continue;
    if ((rc = apply(s, &m[i], msg, sizeof msg))) {
      snprintf(err, errlen, "migration %d (%s) failed: %s", m[i].version, m[i].name, msg);
      break;
    }
    (*applied)++;
    current = m[i].version;
  }
  *version = current;
  char ignored[64];
  script(s, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")", ignored, sizeof ignored);
  return rc;
}
