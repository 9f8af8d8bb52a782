/* The herald command line: `serve` runs the server; `token`, `user` and `migrate` manage auth and
 * storage (filled in by the application layer). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "app/app.h"
#include "app/events.h"
#include "auth/jwt.h"
#include "app/users_cli.h"
#include "store/store.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "node/node.h"
#include "net/server.h"
#include "net/ws_conn.h"

extern char **environ;

static void usage(FILE *out) {
  fprintf(out,
          "herald %s - real-time messaging server\n\n"
          "Usage: herald <command> [options]\n\n"
          "Commands:\n"
          "  serve     run the server (herald serve --help lists every option)\n"
          "  reload    make the running server re-read its config and TLS certificate (--pid-file)\n"
          "  token     print a signed JWT for scripts and tests\n"
          "  user      manage users (add, passwd, disable, enable, delete, list)\n"
          "  migrate   apply storage schema migrations (SQLite, or PostgreSQL with --postgres-url)\n"
          "  events    print the Socket.IO event catalog (JSON)\n"
          "  version   print the version\n",
          HERALD_VERSION);
}

/* Raises the open-file limit to its hard maximum so max-connections can be reached. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int cmd_serve(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help-markdown")) {
      hd_config_print_help(stdout, !strcmp(argv[i], "--help-markdown"));
      return 0;
    }
  hd_config_t cfg;
  hd_config_defaults(&cfg);
  char err[1024];
  if (hd_config_load(&cfg, argc, argv, environ, err, sizeof err)) {
    fprintf(stderr, "herald: %s\n", err);
    hd_config_free(&cfg);
    return 2;
  }
  hd_log_level_t level;
  hd_log_level_parse(cfg.log_level, &level);
  hd_log_set_level(level);
  hd_log_format_t format;
  hd_log_format_parse(cfg.log_format, &format);
  hd_log_set_format(format);
  raise_fd_limit();

  int rc = hd_node_run(&cfg, argc, argv);
  hd_config_free(&cfg);
  return rc;
}

/* True when process pid runs herald (its name in /proc, into comm), or when /proc cannot tell. */
static bool is_herald(long pid, char *comm, size_t len) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/comm", pid);
  FILE *f = fopen(path, "r");
  if (!f) return true; /* gone or no /proc: kill() says which */
  bool ok = fgets(comm, (int)len, f) != NULL;
  fclose(f);
  comm[strcspn(comm, "\n")] = '\0';
  return !ok || !strncmp(comm, "herald", 6);
}

/* `herald reload`: asks the running server (its --pid-file, found with the same options and config
 * file as serve) to reload with SIGHUP; the server logs the outcome. */
static int cmd_reload(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("Usage: herald reload [--pid-file PATH | --config FILE]\n\n"
             "Makes the running server re-read its configuration and TLS certificate (as SIGHUP does).\n");
      return 0;
    }
  hd_config_t cfg;
  hd_config_defaults(&cfg);
  char err[1024];
  int rc = 1;
  if (hd_config_load(&cfg, argc, argv, environ, err, sizeof err)) {
    fprintf(stderr, "herald reload: %s\n", err);
  } else if (!*cfg.pid_file) {
    fprintf(stderr, "herald reload: no --pid-file (give the one the server was started with, or its --config)\n");
  } else {
    FILE *f = fopen(cfg.pid_file, "r");
    long pid = 0;
    char comm[64] = "";
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
      fprintf(stderr, "herald reload: cannot read a pid from %s: %s\n", cfg.pid_file, f ? "no number" : strerror(errno));
    } else if (!is_herald(pid, comm, sizeof comm)) {
      fprintf(stderr, "herald reload: pid %ld (from %s) is '%s', not herald: a stale pid file? Nothing signalled\n", pid,
              cfg.pid_file, comm);
    } else if (kill((pid_t)pid, SIGHUP)) {
      fprintf(stderr, "herald reload: cannot signal pid %ld (from %s): %s\n", pid, cfg.pid_file, strerror(errno));
    } else {
      printf("herald reload: asked pid %ld to reload (its log says how it went)\n", pid);
      rc = 0;
    }
    if (f) fclose(f);
  }
  hd_config_free(&cfg);
  return rc;
}

/* True when cfg names a signing key that exists (said on stderr): --jwt-secret, a private key file, or
 * <data-dir>/jwt-secret made by the server's first start; `herald token` never creates one. */
static bool signing_key_exists(const hd_config_t *cfg) {
  if (*cfg->jwt_secret) return true;
  if (*cfg->jwt_algorithm && strcmp(cfg->jwt_algorithm, "HS256")) return true; /* PEM files: checked by the setup */
  char path[4096], abs[PATH_MAX];
  snprintf(path, sizeof path, "%s/jwt-secret", cfg->data_dir);
  if (access(path, R_OK)) {
    fprintf(stderr, "herald token: no signing key at %s (data dir %s): give the server's --data-dir, or --jwt-secret\n",
            path, cfg->data_dir);
    return false;
  }
  fprintf(stderr, "herald token: signing key %s\n", realpath(path, abs) ? abs : path);
  return true;
}

/* herald token --sub ID --role ROLE [--ttl SECONDS] [config options]: prints a signed JWT. */
static int cmd_token(int argc, char **argv) {
  const char *sub = NULL, *role = "user";
  long long ttl = 3600;
  char **rest = calloc((size_t)argc + 1, sizeof(*rest));
  int nrest = 0;
  for (int i = 0; rest && i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("Usage: herald token --sub ID [--role admin|user] [--ttl SECONDS] [--jwt-secret K | --data-dir D]\n"
             "Prints a JWT signed with the server's key (--jwt-secret, else <data-dir>/jwt-secret).\n");
      free(rest);
      return 0;
    }
    if (!strcmp(argv[i], "--sub") && i + 1 < argc) sub = argv[++i];
    else if (!strcmp(argv[i], "--role") && i + 1 < argc) role = argv[++i];
    else if (!strcmp(argv[i], "--ttl") && i + 1 < argc) ttl = strtoll(argv[++i], NULL, 10);
    else rest[nrest++] = argv[i];
  }
  hd_config_t cfg;
  hd_config_defaults(&cfg);
  char err[1024];
  hd_app_keys_t keys = {0};
  hd_jwt_config_t jwt;
  int rc = 2;
  if (!rest) fprintf(stderr, "herald token: out of memory\n");
  else if (!sub || !*sub) fprintf(stderr, "herald token: --sub ID is required (see herald token --help)\n");
  else if (strcmp(role, "admin") && strcmp(role, "user")) fprintf(stderr, "herald token: --role must be admin or user\n");
  else if (ttl <= 0 || ttl > 31536000) fprintf(stderr, "herald token: --ttl must be 1..31536000 seconds\n");
  else if (hd_config_load(&cfg, nrest, rest, environ, err, sizeof err)) fprintf(stderr, "herald token: %s\n", err);
  else if (!signing_key_exists(&cfg)) {
  } else if (hd_app_jwt_setup(&cfg, &keys, &jwt)) fprintf(stderr, "herald token: no signing key\n");
  else {
    char *token = NULL;
    rc = hd_jwt_sign(&jwt, sub, role, ttl, &token) ? 1 : 0;
    if (!rc) printf("%s\n", token);
    else fprintf(stderr, "herald token: cannot sign (RS256/ES256 need --jwt-private-key)\n");
    free(token);
  }
  hd_app_keys_free(&keys);
  hd_config_free(&cfg);
  free(rest);
  return rc;
}

/* herald migrate [options]: applies the store's schema migrations and says how many ran. */
static int cmd_migrate(int argc, char **argv) {
  hd_config_t cfg;
  hd_config_defaults(&cfg);
  char err[1024] = "", path[4096], shown[4096];
  int rc = 2;
  if (hd_config_load(&cfg, argc, argv, environ, err, sizeof err)) {
    fprintf(stderr, "herald migrate: %s\n", err);
  } else {
    hd_config_store_location(&cfg, path, sizeof path);
    hd_store_redact(path, shown, sizeof shown);
    int n = hd_store_migrate_path(path, err, sizeof err);
    if (n < 0) fprintf(stderr, "herald migrate: %s: %s\n", shown, *err ? err : hd_strerror(n)), rc = 1;
    else printf("%s: %d migration(s) applied, schema up to date\n", shown, n), rc = 0;
  }
  hd_config_free(&cfg);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    printf("herald %s\n", HERALD_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "serve")) return cmd_serve(argc - 2, argv + 2);
  if (!strcmp(argv[1], "token")) return cmd_token(argc - 2, argv + 2);
  if (!strcmp(argv[1], "reload")) return cmd_reload(argc - 2, argv + 2);
  if (!strcmp(argv[1], "events")) { /* the event catalog, for tools and tests */
    char *json = hd_events_catalog_json();
    printf("%s\n", json ? json : "[]");
    free(json);
    return json ? 0 : 1;
  }
  if (!strcmp(argv[1], "user")) return hd_users_cli(argc - 2, argv + 2, environ);
  if (!strcmp(argv[1], "migrate")) return cmd_migrate(argc - 2, argv + 2);
  fprintf(stderr, "herald: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
