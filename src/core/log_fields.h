/* The fields of a log line, one by one: a line's fields are written as printf-formatted logfmt
 * (`key=%d key2=\"%s\"`); this walks that format, formats each value with its own arguments and
 * hands over key and value apart, so a line can be written in any format (core/log.h) whatever the
 * values hold (spaces, quotes, newlines, bytes that are not UTF-8). */
#ifndef HD_LOG_FIELDS_H
#define HD_LOG_FIELDS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* One field: its key, its value as formatted (quotes of the format removed, nothing escaped) and
 * whether the value is a number (a lone numeric conversion: %d, %llu, %.3f, ... that printed one). */
typedef void (*hd_log_field_fn)(void *arg, const char *key, size_t key_len, const char *value, size_t len,
                                bool numeric);

/* Formats `fields` with the arguments in *ap (consumed in order, as printf would) and calls fn once
 * per `key=value` in it, in order; a word without `=` is a value under the key "extra". 0, or
 * HD_ENOMEM (fields after the failure are not reported). */
int hd_log_fields_each(const char *fields, va_list *ap, hd_log_field_fn fn, void *arg);

/* Appends s as the inside of a JSON string (also a quoted logfmt value): `"` `\` and control
 * characters escaped, bytes that are not UTF-8 replaced by \ufffd. 0 or HD_ENOMEM. */
int hd_log_escape(hd_sbuf_t *b, const char *s, size_t len);

#endif
