/* Wall-clock and monotonic time in milliseconds. */
#ifndef HD_CLOCK_H
#define HD_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (wall clock). */
int64_t hd_clock_wall_ms(void);
/* Milliseconds from an arbitrary fixed point (monotonic). */
uint64_t hd_clock_mono_ms(void);
/* Nanoseconds from an arbitrary fixed point (monotonic). */
uint64_t hd_clock_mono_ns(void);

#endif
