/* Log lines to stderr in the chosen format, one write(2) per line so concurrent threads do not
 * interleave. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log_fields.h"

static hd_log_level_t min_level = HD_LOG_INFO;
static hd_log_format_t line_format = HD_LOG_TEXT;
static const char *level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *format_names[] = {"text", "logfmt", "json"};

void hd_log_set_level(hd_log_level_t level) { __atomic_store_n(&min_level, level, __ATOMIC_RELAXED); /* live reload */ }

void hd_log_set_format(hd_log_format_t format) { line_format = format; }

int hd_log_enabled(hd_log_level_t level) { return level >= __atomic_load_n(&min_level, __ATOMIC_RELAXED) && level < HD_LOG_OFF; }

int hd_log_level_parse(const char *name, hd_log_level_t *out) {
  for (int i = 0; i <= HD_LOG_OFF; i++)
    if (strcmp(name, level_names[i]) == 0) {
      *out = (hd_log_level_t)i;
      return 0;
    }
  return HD_EINVAL;
}

int hd_log_format_parse(const char *name, hd_log_format_t *out) {
  for (int i = 0; i <= HD_LOG_JSON; i++)
    if (strcmp(name, format_names[i]) == 0) {
      *out = (hd_log_format_t)i;
      return 0;
    }
  return HD_EINVAL;
}

/* True when a logfmt value must be quoted: empty, or holding a space, `=`, `"`, `\`, a control
 * character or a byte beyond ASCII (quoted, it is escaped, and bytes that are not UTF-8 replaced). */
static bool needs_quotes(const char *v, size_t len) {
  if (!len) return true;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c >= 0x7f) return true;
  }
  return false;
}

/* A field into a logfmt line. */
static void logfmt_field(void *arg, const char *key, size_t key_len, const char *value, size_t len, bool numeric) {
  hd_sbuf_t *line = arg;
  hd_sbuf_append(line, " ", 1);
  hd_sbuf_append(line, key, key_len);
  hd_sbuf_append(line, "=", 1);
  if (!needs_quotes(value, len)) {
    hd_sbuf_append(line, value, len);
    return;
  }
  hd_sbuf_append(line, "\"", 1);
  hd_log_escape(line, value, len);
  hd_sbuf_append(line, "\"", 1);
}

/* A field into a JSON line. */
static void json_field(void *arg, const char *key, size_t key_len, const char *value, size_t len, bool numeric) {
  hd_sbuf_t *line = arg;
  hd_sbuf_append(line, ",\"", 2);
  hd_log_escape(line, key, key_len);
  hd_sbuf_append(line, "\":", 2);
  if (numeric) {
    hd_sbuf_append(line, value, len);
    return;
  }
  hd_sbuf_append(line, "\"", 1);
  hd_log_escape(line, value, len);
  hd_sbuf_append(line, "\"", 1);
}

void hd_log(hd_log_level_t level, const char *comp, const char *msg, const char *fields, ...) {
  if (!hd_log_enabled(level)) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[32];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);

  hd_sbuf_t line = {0};
  va_list ap;
  va_start(ap, fields);
  if (line_format == HD_LOG_JSON) {
    hd_sbuf_printf(&line, "{\"ts\":\"%s.%03dZ\",\"level\":\"%s\",\"comp\":\"", ts, (int)(tv.tv_usec / 1000),
                   level_names[level]);
    hd_log_escape(&line, comp, strlen(comp));
    hd_sbuf_puts(&line, "\",\"msg\":\"");
    hd_log_escape(&line, msg, strlen(msg));
    hd_sbuf_puts(&line, "\"");
    if (fields && *fields) hd_log_fields_each(fields, &ap, json_field, &line);
    hd_sbuf_puts(&line, "}\n");
  } else {
    hd_sbuf_printf(&line, "ts=%s.%03dZ level=%s comp=%s msg=\"", ts, (int)(tv.tv_usec / 1000), level_names[level],
                   comp);
    if (line_format == HD_LOG_LOGFMT) hd_log_escape(&line, msg, strlen(msg));
    else hd_sbuf_json_escape(&line, msg, strlen(msg));
    hd_sbuf_puts(&line, "\"");
    if (fields && *fields && line_format == HD_LOG_LOGFMT) {
      hd_log_fields_each(fields, &ap, logfmt_field, &line);
    } else if (fields && *fields) {
      hd_sbuf_puts(&line, " ");
      hd_sbuf_vprintf(&line, fields, ap);
    }
    hd_sbuf_puts(&line, "\n");
  }
  va_end(ap);
  if (line.ptr) {
    ssize_t ignored = write(STDERR_FILENO, line.ptr, line.len);
    (void)ignored;
  } else {
    const char *oom = line_format == HD_LOG_JSON ? "{\"level\":\"error\",\"comp\":\"log\",\"msg\":\"out of memory\"}\n"
                                                 : "level=error comp=log msg=\"out of memory\"\n";
    ssize_t ignored = write(STDERR_FILENO, oom, strlen(oom));
    (void)ignored;
  }
  hd_sbuf_free(&line);
}

int hd_log_limit_pass(hd_log_limit_t *l, unsigned long long period_ms, unsigned long long *skipped) {
  unsigned long long now = (unsigned long long)hd_clock_mono_ms();
  if (l->last_ms && now - l->last_ms < period_ms) {
    l->suppressed++;
    return 0;
  }
  *skipped = l->suppressed;
  l->suppressed = 0;
  l->last_ms = now ? now : 1;
  return 1;
}
