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
/* How long ago ts was (a stamp's mtime: the last gc, the last hint), in ms.
 * A time more than a second ahead of now (the clock was set back since it was
 * written) reads as INT64_MAX, long ago: a stamp that holds back its action
 * while it is young must not hold it back until the clock catches up (a day,
 * a year). Not for grace periods that protect a live writer: there a time
 * ahead must read as young. */
int64_t clock_age_ms(const struct timespec *ts);
/* Milliseconds left until deadline (a clock_ms() value), never negative. */
int64_t clock_left_ms(int64_t deadline);

#endif
