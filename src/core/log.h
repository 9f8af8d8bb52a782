/* Structured logging to stderr, one line per message in the format of --log-format: text (today's
 * `ts=... level=info comp=http msg="..." key=value ...`, the fields as the caller wrote them),
 * logfmt (the same keys, every value quoted and escaped where logfmt needs it) or json (one object
 * per line: ts, level, comp, msg, then the fields; numbers as numbers). */
#ifndef HD_LOG_H
#define HD_LOG_H

typedef enum { HD_LOG_DEBUG = 0, HD_LOG_INFO, HD_LOG_WARN, HD_LOG_ERROR, HD_LOG_OFF } hd_log_level_t;
typedef enum { HD_LOG_TEXT = 0, HD_LOG_LOGFMT, HD_LOG_JSON } hd_log_format_t;

/* Sets the minimum level written; messages below it are dropped cheaply. */
void hd_log_set_level(hd_log_level_t level);
/* Parses "debug|info|warn|error|off"; 0 and *out set, or HD_EINVAL. */
int hd_log_level_parse(const char *name, hd_log_level_t *out);
/* Sets the format of the lines written from now on (set once at start, before any thread logs). */
void hd_log_set_format(hd_log_format_t format);
/* Parses "text|logfmt|json"; 0 and *out set, or HD_EINVAL. */
int hd_log_format_parse(const char *name, hd_log_format_t *out);
/* True when a message at this level would be written. */
int hd_log_enabled(hd_log_level_t level);
/* Writes one line. `fields` is printf-formatted logfmt (`key=%d key2=%s`, `key=\"%s\"` for text
 * with spaces) or NULL: each `key=value` becomes a field of the line's format; msg is escaped. */
void hd_log(hd_log_level_t level, const char *comp, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));

/* Keeps a line that may repeat fast (a failing disk) to one per period. Plain data, one owner. */
typedef struct {
  unsigned long long last_ms;    /* monotonic ms of the last line written (0: none yet) */
  unsigned long long suppressed; /* lines skipped since */
} hd_log_limit_t;

/* True when a line may be written now (at most one per period_ms); then *skipped is how many were
 * held back since the last one, and the count starts again. False: count it as held back. */
int hd_log_limit_pass(hd_log_limit_t *l, unsigned long long period_ms, unsigned long long *skipped);

#define HD_DEBUG(comp, msg, ...) \
  do { if (hd_log_enabled(HD_LOG_DEBUG)) hd_log(HD_LOG_DEBUG, comp, msg, __VA_ARGS__); } while (0)
#define HD_INFO(comp, msg, ...) hd_log(HD_LOG_INFO, comp, msg, __VA_ARGS__)
#define HD_WARN(comp, msg, ...) hd_log(HD_LOG_WARN, comp, msg, __VA_ARGS__)
#define HD_ERROR(comp, msg, ...) hd_log(HD_LOG_ERROR, comp, msg, __VA_ARGS__)

#endif
