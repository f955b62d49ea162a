/* The imports of a session, several at once. A session's time is round trips
 * and decompression, one pack after the other; a few threads in flight cut
 * it to the slowest of them while the count stays bounded (the build it
 * serves keeps most of the bandwidth and, niced, the cores).
 *
 * Threads, not processes: each thread owns its remote (an S3 client is one
 * CURL handle and is not shared) and imports through the same verified path
 * a fetch takes (remote_import_pack); they share only the next plan index and
 * the counts, under one mutex. The calling thread only waits and beats, so
 * the supervisor hears from the worker while the imports run. A worker
 * killed mid-transfer leaves nothing partial: a pack is downloaded into an
 * unnamed file and verified whole before its records are written. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "proto/worker.h"
#include "workers/prefetch/prefetch_internal.h"

#define FAILED_IN_ROW_MAX 3
#define BEAT_WAIT_MS 100

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const struct prefetch_plan *plan;
	const char *kache_dir;
	struct prefetch_done *d;
	size_t next;
	int failed_in_row, running;
};

struct worker_arg {
	struct pool *p;
	struct remote *r;
};

static void *import_thread(void *arg);
static int take(struct pool *p, size_t *i);
static void count(struct pool *p, size_t i, enum remote_result r);
static void wait_all(struct pool *p);

/* The next pack to import into *i; 0 when none is left (or the remote failed
 * too often). Called with the mutex held. */
static int
take(struct pool *p, size_t *i)
{
	if (p->next >= p->plan->n || p->failed_in_row >= FAILED_IN_ROW_MAX)
		return 0;
	*i = p->next++;
	return 1;
}

/* Called with the mutex held. */
static void
count(struct pool *p, size_t i, enum remote_result r)
{
	p->failed_in_row = r == REMOTE_FAILED ? p->failed_in_row + 1 : 0;
	if (r == REMOTE_OK) {
		p->d->packs++;
		p->d->bytes += p->plan->p[i].size;
	} else if (r == REMOTE_MISS) {
		p->d->rejected++;
	} else {
		p->d->failed++;
	}
}

static void *
import_thread(void *arg)
{
	struct worker_arg *a = arg;
	struct pool *p = a->p;
	enum remote_result r;
	size_t i;

	pthread_mutex_lock(&p->mu);
	while (take(p, &i)) {
		pthread_mutex_unlock(&p->mu);
		r = remote_import_pack(a->r, p->kache_dir, p->plan->p[i].crate, p->plan->p[i].res);
		pthread_mutex_lock(&p->mu);
		count(p, i, r);
	}
	p->running--;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Waits for every thread to run out of work, beating meanwhile. */
static void
wait_all(struct pool *p)
{
	struct timespec ts;

	pthread_mutex_lock(&p->mu);
	while (p->running > 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += BEAT_WAIT_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		pthread_mutex_unlock(&p->mu);
		proto_worker_beat();
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
}

void
prefetch_import(struct remote **remote, int n, const char *kache_dir,
    const struct prefetch_plan *plan, struct prefetch_done *d)
{
	struct pool p = { .plan = plan, .kache_dir = kache_dir, .d = d };
	struct worker_arg a[PREFETCH_CONCURRENCY_MAX];
	pthread_t t[PREFETCH_CONCURRENCY_MAX] = { 0 };
	int started = 0, rc;

	memset(d, 0, sizeof *d);
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	if (n > PREFETCH_CONCURRENCY_MAX)
		n = PREFETCH_CONCURRENCY_MAX;
	if ((size_t)n > plan->n)
		n = (int)plan->n;
	for (int i = 0; i < n; i++) {
		a[i] = (struct worker_arg){ .p = &p, .r = remote[i] };
		pthread_mutex_lock(&p.mu);
		p.running++;
		pthread_mutex_unlock(&p.mu);
		if ((rc = pthread_create(&t[started], NULL, import_thread, &a[i])) != 0) {
			errno = rc;
			log_warn("prefetch: pthread_create (%d import threads run)", started);
			pthread_mutex_lock(&p.mu);
			p.running--;
			pthread_mutex_unlock(&p.mu);
			break;
		}
		started++;
	}
	if (started == 0 && plan->n > 0) { /* no thread at all: import here */
		a[0] = (struct worker_arg){ .p = &p, .r = remote[0] };
		p.running = 1;
		import_thread(&a[0]);
	}
	wait_all(&p);
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
}
