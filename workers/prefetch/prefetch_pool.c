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
#include "remote/bundle.h"
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

/* One unit of a session's imports: a pack, or a bundle part and the plan's
 * packs it holds. */
struct job {
	const char *part; /* NULL: the pack items[0] alone */
	size_t *items;    /* plan indices */
	size_t n;
	struct bundle_want *w; /* a part's: what became of each */
	enum remote_result rr;
};

struct imports {
	const struct prefetch_plan *plan;
	const char *kache_dir;
	struct prefetch_done *d;
	struct job *jobs;
};

static void *item_thread(void *arg);
static int take(struct pool *p, size_t *i);
static void wait_all(struct pool *p);
static int start_threads(struct pool *p, struct remote **remote, int n, pthread_t *t,
    struct worker_arg *a);
static enum remote_result import_job(void *ctx, struct remote *r, size_t i);
static void import_count(void *ctx, size_t i, enum remote_result rr);
static size_t make_jobs(const struct prefetch_plan *plan, int parts, struct job *jobs,
    size_t *slots);
static size_t make_fallbacks(const struct job *done, size_t n, struct job *jobs, size_t *slots);
static void jobs_free(struct job *jobs, size_t n);

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
import_job(void *ctx, struct remote *r, size_t i)
{
	struct imports *im = ctx;
	struct job *j = &im->jobs[i];
	const struct prefetch_pack *pk;

	if (j->part == NULL) {
		pk = &im->plan->p[j->items[0]];
		return remote_import_pack(r, im->kache_dir, pk->crate, pk->res);
	}
	for (size_t k = 0; k < j->n; k++) {
		pk = &im->plan->p[j->items[k]];
		j->w[k] = (struct bundle_want){ .crate = pk->crate, .res = pk->res };
	}
	j->rr = bundle_import(r, im->kache_dir, j->part, j->w, j->n);
	return j->rr;
}

/* Called with the pool's mutex held. A part counts the packs it brought; the
 * rest of its packs are counted when fetched one by one after it. */
static void
import_count(void *ctx, size_t i, enum remote_result rr)
{
	struct imports *im = ctx;
	const struct job *j = &im->jobs[i];

	if (j->part != NULL) {
		im->d->parts += rr == REMOTE_OK;
		for (size_t k = 0; k < j->n; k++) {
			if (!j->w[k].done)
				continue;
			im->d->packs++; /* as a fetch counts a pack found present */
			im->d->from_parts += j->w[k].imported;
			im->d->bytes += im->plan->p[j->items[k]].size;
		}
	} else if (rr == REMOTE_OK) {
		im->d->packs++;
		im->d->bytes += im->plan->p[j->items[0]].size;
	} else if (rr == REMOTE_MISS) {
		im->d->rejected++;
	} else {
		im->d->failed++;
	}
}

/* The plan as jobs, in its order: a pack no part holds is a job; the packs
 * of one part are one job, where its first pack stands, when there are two or
 * more of them (a part read for one pack would bring the rest for nothing).
 * parts 0 (prefetch.bundles off): every pack a job of its own. slots:
 * plan->n indices for the jobs' items. */
static size_t
make_jobs(const struct prefetch_plan *plan, int parts, struct job *jobs, size_t *slots)
{
	size_t nj = 0, used = 0, i, k, m;
	char *taken = xcalloc(plan->n + 1, 1);

	for (i = 0; i < plan->n; i++) {
		if (taken[i])
			continue;
		for (m = 0, k = i; parts && plan->p[i].part[0] && k < plan->n; k++)
			m += strcmp(plan->p[k].part, plan->p[i].part) == 0;
		jobs[nj] = (struct job){ .items = slots + used };
		if (m < 2) {
			jobs[nj].items[jobs[nj].n++] = i;
		} else {
			jobs[nj].part = plan->p[i].part;
			for (k = i; k < plan->n; k++)
				if (strcmp(plan->p[k].part, plan->p[i].part) == 0) {
					taken[k] = 1;
					jobs[nj].items[jobs[nj].n++] = k;
				}
			jobs[nj].w = xcalloc(jobs[nj].n, sizeof *jobs[nj].w);
		}
		used += jobs[nj++].n;
	}
	free(taken);
	return nj;
}

/* The packs the parts of done[0..n-1] did not bring (the part missing, not
 * valid, the remote failing, the pack not in it or in flight elsewhere), each
 * a job of its own: fetched as a pack, or found present by then. */
static size_t
make_fallbacks(const struct job *done, size_t n, struct job *jobs, size_t *slots)
{
	size_t nj = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; done[i].part != NULL && k < done[i].n; k++)
			if (!done[i].w[k].done) {
				slots[nj] = done[i].items[k];
				jobs[nj] = (struct job){ .items = &slots[nj], .n = 1 };
				nj++;
			}
	return nj;
}

static void
jobs_free(struct job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(jobs[i].w);
	free(jobs);
}

void
prefetch_import(struct remote **remote, int n, const char *kache_dir,
    const struct prefetch_plan *plan, struct prefetch_done *d)
{
	static const struct prefetch_pool_ops ops = { import_job, import_count };
	struct imports im = { .plan = plan, .kache_dir = kache_dir, .d = d };
	size_t *slots, *again, nj, nf;
	struct job *first, *after;

	memset(d, 0, sizeof *d);
	if (plan->n == 0)
		return;
	remote_format_share(remote, n, kache_dir);
	slots = xcalloc(plan->n, sizeof *slots);
	first = xcalloc(plan->n, sizeof *first);
	nj = make_jobs(plan, remote_bundles(remote[0]), first, slots);
	im.jobs = first;
	prefetch_pool_run(remote, n, nj, &ops, &im);
	again = xcalloc(plan->n, sizeof *again);
	after = xcalloc(plan->n, sizeof *after);
	if ((nf = make_fallbacks(first, nj, after, again)) > 0) {
		log_info("prefetch: %zu packs the bundle parts did not bring are fetched one by "
		         "one",
		    nf);
		im.jobs = after;
		prefetch_pool_run(remote, n, nf, &ops, &im);
	}
	jobs_free(first, nj);
	jobs_free(after, nf);
	free(slots);
	free(again);
}
