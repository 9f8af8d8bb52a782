/* Walking the printf-formatted fields of a log line (see log_fields.h). */
#include "core/log_fields.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "core/error.h"

/* Length of the valid UTF-8 sequence at s (at most len bytes), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
  else return 0;
  if (len < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return n;
}

int hd_log_escape(hd_sbuf_t *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  int rc = hd_sbuf_reserve(b, len + 2);
  for (size_t i = 0; i < len && !rc;) {
    unsigned char c = p[i];
    size_t n = utf8_sequence(p + i, len - i);
    if (!n) {
      rc = hd_sbuf_puts(b, "\\ufffd");
      i++;
      continue;
    }
    if (c == '"') rc = hd_sbuf_puts(b, "\\\"");
    else if (c == '\\') rc = hd_sbuf_puts(b, "\\\\");
    else if (c == '\n') rc = hd_sbuf_puts(b, "\\n");
    else if (c == '\r') rc = hd_sbuf_puts(b, "\\r");
    else if (c == '\t') rc = hd_sbuf_puts(b, "\\t");
    else if (c < 0x20 || c == 0x7f) {
      char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
      rc = hd_sbuf_puts(b, esc);
    } else {
      rc = hd_sbuf_append(b, p + i, n);
    }
    i += n;
  }
  return rc;
}

/* True when text is a JSON number (what %d, %u, %f, %g print for finite values). */
static bool json_number(const char *t, size_t len) {
  size_t i = 0;
  if (i < len && t[i] == '-') i++;
  size_t digits = i;
  while (i < len && t[i] >= '0' && t[i] <= '9') i++;
  if (i == digits) return false;
  if (i < len && t[i] == '.') {
    size_t frac = ++i;
    while (i < len && t[i] >= '0' && t[i] <= '9') i++;
    if (i == frac) return false;
  }
  if (i < len && (t[i] == 'e' || t[i] == 'E')) {
    i++;
    if (i < len && (t[i] == '+' || t[i] == '-')) i++;
    size_t exp = i;
    while (i < len && t[i] >= '0' && t[i] <= '9') i++;
    if (i == exp) return false;
  }
  return i == len;
}

/* Formats the conversion at fmt (just after its '%') into out with its arguments from *ap; returns
 * the length of the conversion in fmt, or 0 when it is not one this knows (then nothing is taken). */
static size_t format_one(const char *fmt, va_list *ap, hd_sbuf_t *out, char *conv) {
  char spec[48] = "%";
  size_t s = 1, i = 0;
  while (fmt[i] && strchr("-+ #0", fmt[i]) && s < 8) spec[s++] = fmt[i++];
  if (fmt[i] == '*') {
    s += (size_t)snprintf(spec + s, sizeof spec - s, "%d", va_arg(*ap, int));
    i++;
  } else {
    while (fmt[i] >= '0' && fmt[i] <= '9' && s < 20) spec[s++] = fmt[i++];
  }
  if (fmt[i] == '.') {
    spec[s++] = fmt[i++];
    if (fmt[i] == '*') {
      int precision = va_arg(*ap, int);
      s += (size_t)snprintf(spec + s, sizeof spec - s, "%d", precision < 0 ? 0 : precision);
      i++;
    } else {
      while (fmt[i] >= '0' && fmt[i] <= '9' && s < 32) spec[s++] = fmt[i++];
    }
  }
  char length[3] = {0};
  for (size_t l = 0; l < 2 && fmt[i] && strchr("hlzjtL", fmt[i]); l++) length[l] = spec[s++] = fmt[i++];
  *conv = fmt[i];
  spec[s++] = fmt[i++];
  spec[s] = '\0';
  bool ll = !strcmp(length, "ll"), l = !strcmp(length, "l"), z = !strcmp(length, "z");
  bool j = !strcmp(length, "j"), t = !strcmp(length, "t");
  int rc;
  switch (*conv) {
    case 'd': case 'i':
      if (ll) rc = hd_sbuf_printf(out, spec, va_arg(*ap, long long));
      else if (l) rc = hd_sbuf_printf(out, spec, va_arg(*ap, long));
      else if (z) rc = hd_sbuf_printf(out, spec, va_arg(*ap, ssize_t));
      else if (j) rc = hd_sbuf_printf(out, spec, va_arg(*ap, intmax_t));
      else if (t) rc = hd_sbuf_printf(out, spec, va_arg(*ap, ptrdiff_t));
      else rc = hd_sbuf_printf(out, spec, va_arg(*ap, int));
      break;
    case 'u': case 'x': case 'X': case 'o':
      if (ll) rc = hd_sbuf_printf(out, spec, va_arg(*ap, unsigned long long));
      else if (l) rc = hd_sbuf_printf(out, spec, va_arg(*ap, unsigned long));
      else if (z) rc = hd_sbuf_printf(out, spec, va_arg(*ap, size_t));
      else if (j) rc = hd_sbuf_printf(out, spec, va_arg(*ap, uintmax_t));
      else if (t) rc = hd_sbuf_printf(out, spec, va_arg(*ap, ptrdiff_t));
      else rc = hd_sbuf_printf(out, spec, va_arg(*ap, unsigned));
      break;
    case 'c': rc = hd_sbuf_printf(out, spec, va_arg(*ap, int)); break;
    case 'f': case 'F': case 'g': case 'G': case 'e': case 'E': case 'a': case 'A':
      if (length[0] == 'L') rc = hd_sbuf_printf(out, spec, va_arg(*ap, long double));
      else rc = hd_sbuf_printf(out, spec, va_arg(*ap, double));
      break;
    case 's': {
      const char *str = va_arg(*ap, const char *);
      rc = hd_sbuf_printf(out, spec, str ? str : "(null)");
      break;
    }
    case 'p': rc = hd_sbuf_printf(out, spec, va_arg(*ap, void *)); break;
    default: return 0;
  }
  return rc ? 0 : i;
}

int hd_log_fields_each(const char *fields, va_list *ap, hd_log_field_fn fn, void *arg) {
  hd_sbuf_t value = {0};
  int rc = 0;
  const char *p = fields;
  while (*p && !rc) {
    while (*p == ' ') p++;
    if (!*p) break;
    const char *key = p;
    size_t key_len = strcspn(p, "= ");
    if (p[key_len] == '=') {
      p += key_len + 1;
    } else { /* a bare word: a value of its own */
      key = "extra";
      key_len = 5;
    }
    bool quoted = *p == '"';
    if (quoted) p++;
    value.len = 0;
    int conversions = 0, literals = 0;
    char conv = 0;
    while (*p && (quoted ? *p != '"' : *p != ' ')) {
      if (*p == '%' && p[1] == '%') {
        rc = hd_sbuf_append(&value, "%", 1);
        p += 2, literals++;
      } else if (*p == '%') {
        size_t n = format_one(p + 1, ap, &value, &conv);
        if (!n) { /* not a conversion this knows: kept as text, nothing more can be taken safely */
          rc = hd_sbuf_puts(&value, p);
          p += strlen(p);
          break;
        }
        p += 1 + n, conversions++;
      } else {
        rc = hd_sbuf_append(&value, p++, 1);
        literals++;
      }
    }
    if (quoted && *p == '"') p++;
    bool numeric = !quoted && conversions == 1 && !literals && conv && strchr("diufFgGeE", conv) &&
                   json_number(value.ptr ? value.ptr : "", value.len);
    if (!rc && !value.ptr) rc = hd_sbuf_reserve(&value, 1);
    if (!rc) fn(arg, key, key_len, value.ptr, value.len, numeric);
  }
  hd_sbuf_free(&value);
  return rc ? HD_ENOMEM : 0;
}
