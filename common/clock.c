#include "common/clock.h"

#include <time.h>

int64_t
clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_ms(void)
{
	return clock_us() / 1000;
}

int64_t
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return clock_ts_ms(&ts);
}

int64_t
clock_ts_ms(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

int64_t
clock_age_ms(const struct timespec *ts)
{
	int64_t age = clock_wall_ms() - clock_ts_ms(ts);

	return age < -1000 ? INT64_MAX : age;
}

int64_t
clock_left_ms(int64_t deadline)
{
	int64_t left = deadline - clock_ms();

	return left > 0 ? left : 0;
}
