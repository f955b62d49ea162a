#include "workers/fetcher/fetcher.h"

#include "common/clock.h"
#include "common/config.h"
#include "common/exit.h"
#include "common/hash.h"
#include "common/log.h"
#include "proto/worker.h"
#include "remote/remote.h"

/* The memory pack_read keeps is given back after this long without a
 * fetch: kept from one fetch to the next of a build, not held by an idle
 * fetcher. */
#define FETCHER_IDLE_MS 10000

struct fetcher {
	const char *kache_dir;
	struct remote *remote;
	int64_t last_ms; /* the end of the last fetch; 0: memory given back */
};

static void fetch_job(void *arg, const struct msg *job, struct msg *done);
static void fetch_tick(void *arg, int64_t now_ms);

/* Gives back pack_read's memory once the fetcher has been idle a while. */
static void
fetch_tick(void *arg, int64_t now_ms)
{
	struct fetcher *f = arg;

	if (f->last_ms != 0 && now_ms - f->last_ms >= FETCHER_IDLE_MS) {
		remote_memory_release();
		f->last_ms = 0;
	}
}

static void
fetch_job(void *arg, const struct msg *job, struct msg *done)
{
	struct fetcher *f = arg;
	enum remote_result r;

	if (job->type != MSG_JOB_FETCH || !hash_hex_valid(job->key)) {
		msg_set_text(done, "not a fetch job");
		return;
	}
	if (f->remote == NULL) {
		done->status = JOB_MISS;
		return;
	}
	/* an import of the same pack in flight elsewhere is joined, never for
	 * longer than the wrapper waits */
	r = remote_fetch(f->remote, f->kache_dir, job->key,
	    job->deadline > 0 ? clock_ms() + job->deadline : 0);
	done->status = r == REMOTE_OK     ? JOB_OK :
	    r == REMOTE_MISS              ? JOB_MISS :
	    remote_unreachable(f->remote) ? JOB_UNREACHABLE :
	                                    JOB_FAILED;
	f->last_ms = clock_ms();
	log_debug("fetch %s: %d", job->key, (int)done->status);
}

int
fetcher_main(const struct config *cfg, unsigned index)
{
	static const struct proto_worker_ops ops = { .job = fetch_job,
		.tick = fetch_tick,
		.tick_ms = FETCHER_IDLE_MS / 2 };
	const char *kache_dir = config_get(cfg, "cache.dir");
	struct fetcher f = { .kache_dir = kache_dir };
	int rc;

	if (remote_open_for_worker(cfg, &f.remote) < 0)
		return KACHE_EXIT_CONFIG;
	if (f.remote != NULL) /* a wrapper waits on every fetch */
		remote_fail_fast(f.remote, 1);
	rc = proto_worker_run(kache_dir, "fetcher", index, &ops, &f);
	remote_free(&f.remote);
	return rc;
}
