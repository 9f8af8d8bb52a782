/* Latency histograms for /metrics: fixed buckets from 100 µs to 10 s, plain counters with one owner
 * (a shard, or the store thread under its lock), added up at scrape time and written in the
 * Prometheus text format (`_bucket{le=...}` cumulative, `_sum`, `_count`). */
#ifndef HD_HISTOGRAM_H
#define HD_HISTOGRAM_H

#include <stdint.h>

#include "core/buf.h"

#define HD_HISTOGRAM_BOUNDS 16

typedef struct {
  uint64_t counts[HD_HISTOGRAM_BOUNDS + 1]; /* by bucket, not cumulative; the last: above every bound */
  uint64_t sum_us;
} hd_histogram_t;

/* Counts one observation of `us` microseconds. */
void hd_histogram_observe(hd_histogram_t *h, uint64_t us);
/* Adds every bucket and the sum of `from` to `to`. */
void hd_histogram_add(hd_histogram_t *to, const hd_histogram_t *from);
/* Total observations. */
uint64_t hd_histogram_count(const hd_histogram_t *h);
/* Appends `# HELP` and `# TYPE name histogram` for the metric `name` (a `_seconds` name). */
void hd_histogram_write_header(hd_sbuf_t *out, const char *name, const char *help);
/* Appends the series of h: name_bucket{labels,le="..."} for every bound and +Inf, name_sum (seconds)
 * and name_count. labels: "" or `key="value",...` without braces (values already escaped). */
void hd_histogram_write(hd_sbuf_t *out, const char *name, const char *labels, const hd_histogram_t *h);

#endif
