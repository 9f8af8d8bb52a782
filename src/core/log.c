/* logfmt lines to stderr, one write(2) per line so concurrent threads do not interleave. */
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

static hd_log_level_t min_level = HD_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void hd_log_set_level(hd_log_level_t level) { __atomic_store_n(&min_level, level, __ATOMIC_RELAXED); /* live reload */ }

int hd_log_enabled(hd_log_level_t level) { return level >= __atomic_load_n(&min_level, __ATOMIC_RELAXED) && level < HD_LOG_OFF; }

int hd_log_level_parse(const char *name, hd_log_level_t *out) {
  for (int i = 0; i <= HD_LOG_OFF; i++)
    if (strcmp(name, level_names[i]) == 0) {
      *out = (hd_log_level_t)i;
      return 0;
    }
  return HD_EINVAL;
}

void hd_log(hd_log_level_t level, const char *comp, const char *msg, const char *fields, ...) {
  if (!hd_log_enabled(level)) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[32];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);

  char stack[512];
  hd_sbuf_t line = {0};
  hd_sbuf_printf(&line, "ts=%s.%03dZ level=%s comp=%s msg=\"", ts, (int)(tv.tv_usec / 1000),
                 level_names[level], comp);
  hd_sbuf_json_escape(&line, msg, strlen(msg));
  hd_sbuf_puts(&line, "\"");
  if (fields && *fields) {
    va_list ap;
    va_start(ap, fields);
    hd_sbuf_puts(&line, " ");
    hd_sbuf_vprintf(&line, fields, ap);
    va_end(ap);
  }
  hd_sbuf_puts(&line, "\n");
  if (line.ptr) {
    ssize_t ignored = write(STDERR_FILENO, line.ptr, line.len);
    (void)ignored;
  } else {
    snprintf(stack, sizeof stack, "level=error comp=log msg=\"out of memory\"\n");
    ssize_t ignored = write(STDERR_FILENO, stack, strlen(stack));
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
