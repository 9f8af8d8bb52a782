/* The `herald user` command (see users_cli.h). */
#include "app/users_cli.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include "app/users.h"
#include "core/config.h"
#include "core/error.h"
#include "store/store.h"

#define PASSWORD_MIN 6
#define PASSWORD_MAX 255

static const char usage_text[] =
    "Usage: herald user add NAME --role admin|user [--display-name TEXT] [--password PW]\n"
    "       herald user passwd NAME [--password PW]\n"
    "       herald user disable NAME | enable NAME | delete NAME\n"
    "       herald user list\n"
    "Options as for serve (--data-dir, --db, --config) choose the database; the command says which it\n"
    "uses. Without --password the password is asked for without echo on a terminal, else read from\n"
    "the first line of standard input. A running server on the same database applies a change within\n"
    "a second: a disabled or deleted user's connections close, tokens from before a new password are refused.\n";

int hd_users_name_valid(const char *name, const char **why) {
  const unsigned char *p = (const unsigned char *)name;
  size_t chars = 0;
  for (; *p; chars++) {
    if (*p <= 0x20 || *p == 0x7f) return *why = "a name may not hold spaces or control characters", HD_EINVAL;
    size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
    for (size_t i = 1; i < len; i++)
      if ((p[i] & 0xc0) != 0x80) len = 0;
    if (!len) return *why = "a name must be valid UTF-8", HD_EINVAL;
    uint32_t cp = len == 1 ? p[0] : len == 2 ? (p[0] & 0x1fu) << 6 | (p[1] & 0x3f)
                            : len == 3 ? (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3f)
                                       : (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 | (p[3] & 0x3f);
    /* C1 controls, no-break and other Unicode spaces, zero-width and direction marks, line separators */
    if ((cp >= 0x80 && cp <= 0xa0) || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
        cp == 0x205f || cp == 0x3000 || cp == 0xfeff)
      return *why = "a name may not hold spaces or control characters", HD_EINVAL;
    p += len;
  }
  if (!chars) return *why = "a name is required", HD_EINVAL;
  if (chars > HD_STORE_NAME_MAX) return *why = "a name has 64 characters at most", HD_EINVAL;
  return 0;
}

/* One line of standard input into buf without its end of line; on a terminal, asked for with
 * prompt and not echoed. false at end of input. */
static bool read_secret(const char *prompt, char *buf, size_t len) {
  bool tty = isatty(STDIN_FILENO);
  struct termios old, quiet;
  if (tty && tcgetattr(STDIN_FILENO, &old) == 0) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tcsetattr(STDIN_FILENO, TCSADRAIN, &quiet); /* echo off before the prompt: nothing typed is shown */
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
  } else {
    tty = false;
  }
  bool ok = fgets(buf, (int)len, stdin) != NULL;
  if (tty) tcsetattr(STDIN_FILENO, TCSADRAIN, &old);
  if (!ok) buf[0] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  return ok;
}

/* The new password: --password, else asked (twice on a terminal). 0, or 2 with the reason printed. */
static int new_password(const char *cmd, const char *given, const char *name, char *buf, size_t len) {
  if (given) {
    snprintf(buf, len, "%s", given);
  } else {
    char prompt[160], again[PASSWORD_MAX + 2];
    snprintf(prompt, sizeof prompt, "New password for %s: ", name);
    if (!read_secret(prompt, buf, len) && !*buf) {
      fprintf(stderr, "herald user %s: no password given (--password, or a line on standard input)\n", cmd);
      return 2;
    }
    if (isatty(STDIN_FILENO)) {
      read_secret("Again: ", again, sizeof again);
      bool same = !strcmp(again, buf);
      sodium_memzero(again, sizeof again);
      if (!same) {
        fprintf(stderr, "herald user %s: the two passwords differ\n", cmd);
        return 2;
      }
    }
  }
  size_t n = strlen(buf);
  if (n < PASSWORD_MIN || n > PASSWORD_MAX) {
    fprintf(stderr, "herald user %s: a password has %d to %d characters\n", cmd, PASSWORD_MIN, PASSWORD_MAX);
    return 2;
  }
  return 0;
}

typedef struct {
  int status;
  bool done;
  bool list;
  char line[400];
} result_t;

static void on_user(void *arg, int status, const hd_store_user_t *u) {
  result_t *r = arg;
  r->status = status;
  r->done = true;
  if (!status)
    snprintf(r->line, sizeof r->line, "%lld\t%s\t%s\t%s\t%s", (long long)u->id, u->name, u->role,
             *u->display_name ? u->display_name : u->name, u->disabled ? "disabled" : u->demo ? "demo" : "active");
}

static void on_users(void *arg, int status, const hd_store_users_t *users) {
  result_t *r = arg;
  r->status = status;
  r->done = true;
  if (!status) printf("id\tname\trole\tdisplay name\tstate\n");
  for (size_t i = 0; !status && i < users->count; i++) {
    const hd_store_user_t *u = &users->items[i];
    printf("%lld\t%s\t%s\t%s\t%s\n", (long long)u->id, u->name, u->role, *u->display_name ? u->display_name : u->name,
           u->disabled ? "disabled" : u->demo ? "demo" : "active");
  }
}

int hd_users_cli(int argc, char **argv, char **envp) {
  static const char *commands[] = {"add", "passwd", "disable", "enable", "delete", "list"};
  const char *cmd = argc > 0 ? argv[0] : "";
  bool known = false;
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) known |= !strcmp(cmd, commands[i]);
  if (!known || (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))) {
    fputs(usage_text, known ? stdout : stderr);
    return known ? 0 : 2;
  }
  bool add = !strcmp(cmd, "add"), list = !strcmp(cmd, "list");
  const char *name = NULL, *role = NULL, *password = NULL, *display = NULL, *why = NULL;
  char **rest = calloc((size_t)argc + 1, sizeof(*rest)), pwbuf[PASSWORD_MAX + 2] = "";
  int nrest = 0, i = 1;
  if (!list && argc > 1 && strncmp(argv[1], "--", 2)) name = argv[i++];
  for (; rest && i < argc; i++) {
    if (add && !strcmp(argv[i], "--role") && i + 1 < argc) role = argv[++i];
    else if ((add || !strcmp(cmd, "passwd")) && !strcmp(argv[i], "--password") && i + 1 < argc) password = argv[++i];
    else if (add && !strcmp(argv[i], "--display-name") && i + 1 < argc) display = argv[++i];
    else rest[nrest++] = argv[i];
  }
  hd_config_t cfg;
  hd_config_defaults(&cfg);
  char err[1024] = "", path[PATH_MAX], abs[PATH_MAX];
  int rc = 2;
  if (!rest) fprintf(stderr, "herald user: out of memory\n");
  else if (hd_config_load(&cfg, nrest, rest, envp, err, sizeof err)) fprintf(stderr, "herald user: %s\n", err);
  else if (!list && !name) fprintf(stderr, "herald user %s: a NAME is required (see herald user --help)\n", cmd);
  else if (!list && hd_users_name_valid(name, &why)) fprintf(stderr, "herald user %s: %s\n", cmd, why);
  else if (add && !role) fprintf(stderr, "herald user add: --role is required: admin (console staff) or user (customer)\n");
  else if (add && strcmp(role, "admin") && strcmp(role, "user")) fprintf(stderr, "herald user add: --role must be admin or user\n");
  else if (add && display && (!*display || strlen(display) > 4 * HD_STORE_NAME_MAX))
    fprintf(stderr, "herald user add: --display-name has 1 to 64 characters\n");
  else rc = 0;
  if (!rc) {
    hd_config_store_location(&cfg, path, sizeof path); /* --postgres-url, --db or <data-dir>/herald.db */
    bool remote = strstr(path, "://") != NULL;
    struct stat stt;
    bool exists = remote || stat(path, &stt) == 0;
    if (!remote && !realpath(path, abs)) snprintf(abs, sizeof abs, "%s", path);
    if (!exists && !add) {
      fprintf(stderr, "herald user %s: no database at %s (data dir %s): give the server's --data-dir or --db\n", cmd,
              path, cfg.data_dir);
      rc = 1;
    } else if (!exists) {
      fprintf(stderr, "herald user: no database at %s yet: creating it (serve with --data-dir %s to use it)\n", path,
              cfg.data_dir);
    } else {
      fprintf(stderr, "herald user: database %s\n", remote ? "(remote)" : abs);
    }
  }
  if (!rc && (add || !strcmp(cmd, "passwd"))) rc = new_password(cmd, password, name, pwbuf, sizeof pwbuf);
  if (!rc) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    hd_store_t *st = hd_store_open(&loop, path, err, sizeof err);
    result_t r = {0};
    if (!st) {
      char shown[4096];
      fprintf(stderr, "herald user: cannot open %s: %s\n", hd_store_redact(path, shown, sizeof shown), err);
      rc = 1;
    } else {
      char hash[crypto_pwhash_STRBYTES];
      int sub = *pwbuf ? hd_users_hash_password(pwbuf, hash, sizeof hash) : 0;
      hd_store_user_change_t change = {.disabled = -1};
      if (sub) { /* the hash failed: reported below */
        r.done = true;
      } else if (add) {
        sub = hd_store_user_create(st, name, role, hash, display ? display : name, false, on_user, &r);
      } else if (list) {
        sub = hd_store_users_list(st, NULL, on_users, &r);
      } else if (!strcmp(cmd, "delete")) {
        sub = hd_store_user_delete(st, 0, name, on_user, &r);
      } else {
        if (!strcmp(cmd, "passwd")) change.password_hash = hash;
        else change.disabled = !strcmp(cmd, "disable");
        sub = hd_store_user_update(st, 0, name, &change, on_user, &r);
      }
      while (!sub && !r.done && uv_run(&loop, UV_RUN_ONCE)) {}
      int status = sub ? sub : r.status;
      rc = status ? 1 : 0;
      if (status == HD_EEXISTS)
        fprintf(stderr, "herald user add: a user named %s exists (names are compared without regard to case)\n", name);
      else if (status == HD_ENOTFOUND) fprintf(stderr, "herald user %s: no user named %s\n", cmd, name);
      else if (status) fprintf(stderr, "herald user %s: %s\n", cmd, hd_strerror(status));
      else if (!list) printf("%s %s\n", add ? "created" : !strcmp(cmd, "delete") ? "deleted" : "updated", r.line);
      sodium_memzero(hash, sizeof hash);
      hd_store_close(st);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  sodium_memzero(pwbuf, sizeof pwbuf);
  hd_config_free(&cfg);
  free(rest);
  return rc;
}
