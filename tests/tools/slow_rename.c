/* LD_PRELOAD shim for crash tests: rename(2) sleeps KACHE_SLOW_RENAME_MS first,
 * widening the window between a temporary being written and its rename, so a
 * kill -9 lands there (and leaves the temporary) reliably rather than by luck.
 * Built without sanitizers: it is preloaded into cargo and rustc too. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int rename(const char *from, const char *to);

int
rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	const char *ms = getenv("KACHE_SLOW_RENAME_MS");

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "rename");
	if (ms != NULL) {
		long n = strtol(ms, NULL, 10);
		struct timespec ts = { n / 1000, (n % 1000) * 1000000L };

		if (n > 0 && n < 10000)
			nanosleep(&ts, NULL);
	}
	return real(from, to);
}
