/* The listings and imports of a session, several at once. A session's time
 * is round trips and decompression, one after the other; a few threads in
 * flight cut it to the slowest of them while the count stays bounded (the
 * build it serves keeps most of the bandwidth and, niced, the cores).
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
	const struct prefetch_pool_ops *ops;
	void *ctx;
	size_t items, next;
	int failed_in_row, running;
};

struct worker_arg {
	struct pool *p;
	struct remote *r;
};

struct imports {
	const struct prefetch_plan *plan;
	const char *kache_dir;
	struct prefetch_done *d;
};

static void *item_thread(void *arg);
static int take(struct pool *p, size_t *i);
static void wait_all(struct pool *p);
static int start_threads(struct pool *p, struct remote **remote, int n, pthread_t *t,
    struct worker_arg *a);
static enum remote_result import_one(void *ctx, struct remote *r, size_t i);
static void import_count(void *ctx, size_t i, enum remote_result rr);

/* The next item into *i; 0 when none is left (or the remote failed too
 * often). Called with the mutex held. */
static int
take(struct pool *p, size_t *i)
{
	if (p->next >= p->items || p->failed_in_row >= FAILED_IN_ROW_MAX)
		return 0;
	*i = p->next++;
	return 1;
}

static void *
item_thread(void *arg)
{
	struct worker_arg *a = arg;
	struct pool *p = a->p;
	enum remote_result r;
	size_t i;

	pthread_mutex_lock(&p->mu);
	while (take(p, &i)) {
		pthread_mutex_unlock(&p->mu);
		r = p->ops->run(p->ctx, a->r, i);
		pthread_mutex_lock(&p->mu);
		p->failed_in_row = r == REMOTE_FAILED ? p->failed_in_row + 1 : 0;
		p->ops->count(p->ctx, i, r);
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

/* Starts up to n threads, thread i over remote[i]; how many started. */
static int
start_threads(struct pool *p, struct remote **remote, int n, pthread_t *t, struct worker_arg *a)
{
	int started = 0, rc;

	for (int i = 0; i < n; i++) {
		a[i] = (struct worker_arg){ .p = p, .r = remote[i] };
		pthread_mutex_lock(&p->mu);
		p->running++;
		pthread_mutex_unlock(&p->mu);
		if ((rc = pthread_create(&t[started], NULL, item_thread, &a[i])) != 0) {
			errno = rc;
			log_warn("prefetch: pthread_create (%d threads run)", started);
			pthread_mutex_lock(&p->mu);
			p->running--;
			pthread_mutex_unlock(&p->mu);
			break;
		}
		started++;
	}
	return started;
}

void
prefetch_pool_run(struct remote **remote, int n, size_t items, const struct prefetch_pool_ops *ops,
    void *ctx)
{
	struct pool p = { .ops = ops, .ctx = ctx, .items = items };
	struct worker_arg a[PREFETCH_CONCURRENCY_MAX];
	pthread_t t[PREFETCH_CONCURRENCY_MAX] = { 0 };
	int started;

	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	if (n > PREFETCH_CONCURRENCY_MAX)
		n = PREFETCH_CONCURRENCY_MAX;
	if ((size_t)n > items)
		n = (int)items;
	started = start_threads(&p, remote, n, t, a);
	if (started == 0 && items > 0) { /* no thread at all: work here */
		a[0] = (struct worker_arg){ .p = &p, .r = remote[0] };
		p.running = 1;
		item_thread(&a[0]);
	}
	wait_all(&p);
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
}

static enum remote_result
import_one(void *ctx, struct remote *r, size_t i)
{
	struct imports *im = ctx;

	return remote_import_pack(r, im->kache_dir, im->plan->p[i].crate, im->plan->p[i].res);
}

/* Called with the pool's mutex held. */
static void
import_count(void *ctx, size_t i, enum remote_result rr)
{
	struct imports *im = ctx;

	if (rr == REMOTE_OK) {
		im->d->packs++;
		im->d->bytes += im->plan->p[i].size;
	} else if (rr == REMOTE_MISS) {
		im->d->rejected++;
	} else {
		im->d->failed++;
	}
}

void
prefetch_import(struct remote **remote, int n, const char *kache_dir,
    const struct prefetch_plan *plan, struct prefetch_done *d)
{
	static const struct prefetch_pool_ops ops = { import_one, import_count };
	struct imports im = { .plan = plan, .kache_dir = kache_dir, .d = d };

	memset(d, 0, sizeof *d);
	if (plan->n > 0)
		remote_format_share(remote, n, kache_dir);
	prefetch_pool_run(remote, n, plan->n, &ops, &im);
}
