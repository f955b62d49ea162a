/* The supervisor's watchdog. Its loop polls with a timeout of at most a
 * second, so a healthy supervisor goes round at least once a second. One
 * that stopped going round (a bug, a descriptor that blocks, a filesystem
 * that hangs) still holds the store's lock: no other supervisor can start,
 * uploads and prefetch stop, and every wrapper's first miss pays its whole
 * fetch deadline. A thread that only sleeps and reads one counter ends the
 * process then (abort: a core where cores are kept, the lock released with
 * it), and the next kache that needs a supervisor starts a fresh one; its
 * workers follow their parent (PR_SET_PDEATHSIG) and the queued uploads wait
 * on disk as after any crash.
 *
 * Only seconds in which the watchdog itself ran on time count: when the
 * whole process was frozen (SIGSTOP, a debugger, a suspended machine) the
 * loop is not to blame, and after SIGCONT the count starts again. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "supervisor/sup_internal.h"

#define WATCH_TICK_MS 1000
/* A tick that took this much longer than asked: the process was frozen. */
#define WATCH_LATE_MS (2 * WATCH_TICK_MS)
/* The most the last log line may take. */
#define WATCH_LOG_S 5

static uint64_t beats;      /* bumped by the loop (atomic) */
static int64_t watch_limit; /* ms, atomic: a reload may change it; <= 0: off */

static void *watch(void *arg);
static void sleep_tick(void);

static void
sleep_tick(void)
{
	struct timespec ts = { WATCH_TICK_MS / 1000, (WATCH_TICK_MS % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1)
		;
}

int
sup_watchdog_step(struct sup_watch *w, int64_t now, uint64_t now_beats)
{
	if (w->limit <= 0 || now - w->then > WATCH_TICK_MS + WATCH_LATE_MS || now_beats != w->seen)
		w->still = 0;
	else
		w->still += now - w->then;
	w->seen = now_beats;
	w->then = now;
	return w->limit > 0 && w->still >= w->limit;
}

static void *
watch(void *arg)
{
	struct sup_watch w = { 0, clock_ms(), __atomic_load_n(&beats, __ATOMIC_RELAXED), 0 };

	(void)arg;
	for (;;) {
		sleep_tick();
		w.limit = __atomic_load_n(&watch_limit, __ATOMIC_RELAXED);
		if (sup_watchdog_step(&w, clock_ms(), __atomic_load_n(&beats, __ATOMIC_RELAXED))) {
			/* the log line must not become the next hang (the loop may be
			 * stuck writing to the same file): SIGALRM, not blocked here,
			 * ends the process if it takes longer */
			alarm(WATCH_LOG_S);
			log_warnx("the main loop has not moved for %lld s (supervisor.watchdog); "
			          "ending this supervisor so that the next kache starts a fresh "
			          "one",
			    (long long)(w.still / 1000));
			abort();
		}
	}
	return NULL;
}

void
sup_watchdog_set(int64_t limit_ms)
{
	__atomic_store_n(&watch_limit, limit_ms, __ATOMIC_RELAXED);
}

/* The thread runs whatever the limit, so that a reload can turn it on; off,
 * it wakes once a second and does nothing. */
int
sup_watchdog_start(void)
{
	pthread_attr_t a;
	pthread_t t;
	int rc;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &a, watch, NULL);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		log_warnx("watchdog: cannot start its thread (error %d); running without", rc);
		return -1;
	}
	return 0;
}

void
sup_watchdog_beat(void)
{
	__atomic_fetch_add(&beats, 1, __ATOMIC_RELAXED);
}
