/* `herald user`: add, passwd, disable, enable, delete, list — on the database the server uses
 * (said on stderr), never a new one by accident. A running server on the same database notices
 * each change within a second (user_watch.h): a disabled, deleted or re-passworded user's live
 * connections are closed there and older tokens refused. */
#ifndef HD_USERS_CLI_H
#define HD_USERS_CLI_H

/* Runs `herald user <argv...>` (argv[0] is the subcommand); the process exit code. */
int hd_users_cli(int argc, char **argv, char **envp);
/* 0 when name can name a user: 1..64 characters of valid UTF-8, no white space, no control
 * characters; else HD_EINVAL with the reason in *why. */
int hd_users_name_valid(const char *name, const char **why);

#endif
