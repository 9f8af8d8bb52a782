/* Memory trim: after a wave of Engine.IO sessions went (a handshake flood expiring, a crowd of
 * clients leaving), the freed heap is handed back to the system, so resident memory returns near its
 * baseline instead of staying at the peak (glibc keeps freed memory in its arenas otherwise). */
#ifndef HD_APP_MEM_TRIM_H
#define HD_APP_MEM_TRIM_H

#include <stdint.h>

struct hd_app;

/* Starts the slow timer on app's loop (call on one shard only): every HD_MEM_TRIM_PERIOD_MS it calls
 * malloc_trim(0) when at least HD_MEM_TRIM_MIN_CLOSED sessions closed since the last check and at
 * least as many closed as are still open. 0 or HD_E*. */
int hd_mem_trim_start(struct hd_app *app);
/* Stops it (before the app is freed). */
void hd_mem_trim_stop(struct hd_app *app);

#define HD_MEM_TRIM_PERIOD_MS 2000
#define HD_MEM_TRIM_MIN_CLOSED 1000

#endif
