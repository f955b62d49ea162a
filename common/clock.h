/* Monotonic time and deadlines. */
#ifndef KACHE_CLOCK_H
#define KACHE_CLOCK_H

#include <stdint.h>

struct timespec;

/* Milliseconds on the monotonic clock. */
int64_t clock_ms(void);
/* Microseconds on the monotonic clock. */
int64_t clock_us(void);
/* Milliseconds since the epoch, for records that outlive a process. */
int64_t clock_wall_ms(void);
/* A timespec (a file's mtime, say) in milliseconds, as clock_wall_ms counts
 * them for CLOCK_REALTIME. */
int64_t clock_ts_ms(const struct timespec *ts);
/* Milliseconds left until deadline (a clock_ms() value), never negative. */
int64_t clock_left_ms(int64_t deadline);

#endif
