/* Latency histograms (see histogram.h). */
#include "core/histogram.h"

/* Upper bounds of the buckets in µs (seconds in `le`). */
static const uint64_t bounds_us[HD_HISTOGRAM_BOUNDS] = {100,    250,    500,     1000,    2500,    5000,
                                                        10000,  25000,  50000,   100000,  250000,  500000,
                                                        1000000, 2500000, 5000000, 10000000};

void hd_histogram_observe(hd_histogram_t *h, uint64_t us) {
  uint32_t b = 0;
  while (b < HD_HISTOGRAM_BOUNDS && us > bounds_us[b]) b++;
  h->counts[b]++;
  h->sum_us += us;
}

void hd_histogram_add(hd_histogram_t *to, const hd_histogram_t *from) {
  for (uint32_t b = 0; b <= HD_HISTOGRAM_BOUNDS; b++) to->counts[b] += from->counts[b];
  to->sum_us += from->sum_us;
}

uint64_t hd_histogram_count(const hd_histogram_t *h) {
  uint64_t n = 0;
  for (uint32_t b = 0; b <= HD_HISTOGRAM_BOUNDS; b++) n += h->counts[b];
  return n;
}

void hd_histogram_write_header(hd_sbuf_t *out, const char *name, const char *help) {
  hd_sbuf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
}

void hd_histogram_write(hd_sbuf_t *out, const char *name, const char *labels, const hd_histogram_t *h) {
  const char *sep = labels && *labels ? "," : "";
  if (!labels) labels = "";
  uint64_t cumulative = 0;
  for (uint32_t b = 0; b < HD_HISTOGRAM_BOUNDS; b++) {
    cumulative += h->counts[b];
    hd_sbuf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, (double)bounds_us[b] / 1e6,
                   (unsigned long long)cumulative);
  }
  cumulative += h->counts[HD_HISTOGRAM_BOUNDS];
  hd_sbuf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cumulative);
  const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
  hd_sbuf_printf(out, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, open, labels, close, (double)h->sum_us / 1e6,
                 name, open, labels, close, (unsigned long long)cumulative);
}
