/* The prefetch worker (workers/prefetch/prefetch.h). One session per job:
 * read Cargo.lock, choose the packs (prefetch_plan.c), import them with at
 * most s3.fetch_concurrency transfers in flight (prefetch_pool.c), niced, and
 * report what it did in JOB_DONE's text (JSON, summed by the supervisor into
 * its status) and one log line. */
#include "workers/prefetch/prefetch.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/exit.h"
#include "common/log.h"
#include "common/run.h"
#include "proto/hint.h"
#include "proto/worker.h"
#include "remote/remote.h"
#include "remote/session.h"
#include "store/pack.h"
#include "workers/prefetch/prefetch_internal.h"

#define PREFETCH_NICE 10
/* How often finished sessions are looked for (run/sessions/). */
#define PREFETCH_SAVE_TICK_MS 5000

struct prefetcher {
	const char *kache_dir;
	struct remote *remote[PREFETCH_CONCURRENCY_MAX]; /* one per import thread */
	int nremote;
	uint64_t max_bytes;
	int save;         /* prefetch.save_manifest, and the remote writable */
	int64_t cooldown; /* a session idle this long is over: its manifest is saved */
};

struct session {
	struct prefetch_done d;
	int64_t import_ms;
	uint64_t written[2]; /* blob bytes by enum store_put_how (pack_writes.c) */
	char refused[PROTO_HINT_PATH_MAX + 400];
};

/* A plan's source as the status document and the journal name it. */
static const char *const src_key[] = { "none", "exact", "closest", "packs", "planner" };

static void prefetch_job(void *arg, const struct msg *job, struct msg *done);
static void prefetch_tick(void *arg, int64_t now);
static int concurrency(const struct config *cfg);
static int open_remotes(struct prefetcher *pf, const struct config *cfg);
static void report(const struct proto_hint *h, const struct prefetch_plan *plan,
    const struct session *ss, int64_t ms, struct msg *done);

/* The session's numbers: one log line, and JSON for the supervisor. */
static void
report(const struct proto_hint *h, const struct prefetch_plan *plan, const struct session *ss,
    int64_t ms, struct msg *done)
{
	static const char *const from[] = { "none needed", "cargo metadata", "Cargo.lock" };
	const char *refused = ss->refused[0] ? ss->refused : plan->refused;
	char text[640], shared[64] = "";

	if (plan->source == PREFETCH_FROM_CLOSEST)
		snprintf(shared, sizeof shared, " (%ld crates shared)", plan->shared);
	if (refused[0] != '\0')
		log_warnx("prefetch %s: %s", h->root[0] ? h->root : "?", refused);
	else if (plan->unreachable)
		log_warnx("prefetch %s: the remote could not be reached (the line above says how); "
		          "nothing more asked of it: the build's misses are fetched or compiled",
		    h->root);
	else if (h->guess && plan->source == PREFETCH_FROM_NONE)
		log_info("prefetch %s: early hint (target \"%s\", profile \"%s\" guessed): no "
		         "%ssession manifest %.16s in the remote; the first compile's hint decides",
		    h->root, h->target, h->profile, plan->garbage > 0 ? "valid " : "",
		    plan->session[0] ? plan->session : "(no Cargo.lock hash)");
	else
		log_info("prefetch %s: %ld crates, %ld packs imported (%llu bytes) in %lld ms "
		         "from %s%s; names: %s; phases: names %lld ms, plan %lld ms, import %lld "
		         "ms; skipped: %ld present, %ld over prefetch.max_bytes, %ld rejected, "
		         "%ld failed, %ld listings failed; blobs written: %llu MB direct, %llu MB "
		         "buffered; %ld packs came in %ld bundle parts",
		    h->root, plan->crates, ss->d.packs, (unsigned long long)ss->d.bytes,
		    (long long)ms, prefetch_source_name(plan->source), shared,
		    from[plan->crates_from < 3 ? plan->crates_from : 0], (long long)plan->meta_ms,
		    (long long)plan->list_ms, (long long)ss->import_ms, plan->present,
		    plan->over_cap, ss->d.rejected, ss->d.failed, plan->list_failed,
		    (unsigned long long)(ss->written[STORE_PUT_DIRECT] >> 20),
		    (unsigned long long)(ss->written[STORE_PUT_BUFFERED] >> 20), ss->d.from_parts,
		    ss->d.parts);
	snprintf(text, sizeof text,
	    "{\"crates\": %ld, \"packs\": %ld, \"bytes\": %llu, "
	    "\"present\": %ld, \"over_cap\": %ld, \"rejected\": %ld, \"failed\": %ld, "
	    "\"list_failed\": %ld, \"refused\": %d, \"source\": \"%s\", \"shared\": %ld, "
	    "\"garbage_sessions\": %ld, \"parts\": %ld, \"from_parts\": %ld}",
	    plan->crates, ss->d.packs, (unsigned long long)ss->d.bytes, plan->present,
	    plan->over_cap, ss->d.rejected, ss->d.failed, plan->list_failed, refused[0] != '\0',
	    src_key[plan->source <= PREFETCH_FROM_PLANNER ? plan->source : 0], plan->shared,
	    plan->garbage, ss->d.parts, ss->d.from_parts);
	msg_set_text(done, text);
	done->status = refused[0]             ? JOB_MISS :
	    ss->d.failed || plan->list_failed ? JOB_FAILED :
	                                        JOB_OK;
}

static void
prefetch_job(void *arg, const struct msg *job, struct msg *done)
{
	struct prefetcher *pf = arg;
	struct prefetch_plan plan = { 0 };
	struct session ss = { 0 };
	struct pack_writes_state w0, w1;
	struct proto_hint h;
	struct prefetch_input in = { .h = &h,
		.kache_dir = pf->kache_dir,
		.remote = pf->remote,
		.nremote = pf->nremote,
		.max_bytes = pf->max_bytes };
	int64_t t0 = clock_ms(), t1;

	if (job->type != MSG_JOB_PREFETCH || proto_hint_from_msg(job, &h) < 0) {
		memset(&h, 0, sizeof h);
		snprintf(ss.refused, sizeof ss.refused, "not a prefetch job");
	} else if (pf->remote[0] == NULL) {
		snprintf(ss.refused, sizeof ss.refused, "no remote configured");
	} else {
		prefetch_plan_make(&in, &plan);
		for (int k = 0; k < pf->nremote; k++) /* the imports' journal records say it */
			remote_set_import_source(pf->remote[k],
			    src_key[plan.source <= PREFETCH_FROM_PLANNER ? plan.source : 0]);
		t1 = clock_ms();
		pack_writes_reprobe(); /* the machine may have changed since the last session */
		pack_writes_state(&w0);
		prefetch_import(pf->remote, pf->nremote, pf->kache_dir, &plan, &ss.d);
		pack_writes_state(&w1);
		pack_memory_release(); /* held only while a session runs */
		ss.import_ms = clock_ms() - t1;
		for (int k = 0; k < 2; k++)
			ss.written[k] = w1.bytes[k] - w0.bytes[k];
	}
	report(&h, &plan, &ss, clock_ms() - t0, done);
	prefetch_plan_free(&plan);
}

/* The end of a build session without a `supervisor stop`: a workspace whose
 * last compile is a cooldown old has its session manifest saved. */
static void
prefetch_tick(void *arg, int64_t now)
{
	struct prefetcher *pf = arg;

	(void)now;
	if (pf->save && pf->remote[0] != NULL)
		remote_session_save(pf->remote[0], pf->kache_dir, pf->cooldown, proto_worker_beat);
}

/* s3.fetch_concurrency, within 1..PREFETCH_CONCURRENCY_MAX. */
static int
concurrency(const struct config *cfg)
{
	int64_t n = config_get_int(cfg, "s3.fetch_concurrency");

	if (n < 1 || n > PREFETCH_CONCURRENCY_MAX) {
		log_warnx("s3.fetch_concurrency = %lld is not within 1..%d; using 4", (long long)n,
		    PREFETCH_CONCURRENCY_MAX);
		n = 4;
	}
	return (int)n;
}

/* A remote (an S3 client: one connection) per import thread; 0, or -1 when
 * the settings are refused. */
static int
open_remotes(struct prefetcher *pf, const struct config *cfg)
{
	pf->nremote = config_has_remote(cfg) ? concurrency(cfg) : 1;
	for (int i = 0; i < pf->nremote; i++)
		if (remote_open_for_worker(cfg, &pf->remote[i]) < 0)
			return -1;
	return 0;
}

int
prefetch_main(const struct config *cfg, unsigned index)
{
	static const struct proto_worker_ops ops = { .job = prefetch_job,
		.request = NULL,
		.tick = prefetch_tick,
		.tick_ms = PREFETCH_SAVE_TICK_MS };
	const char *kache_dir = config_get(cfg, "cache.dir");
	struct prefetcher pf = { .kache_dir = kache_dir };
	int64_t max = config_get_size(cfg, "prefetch.max_bytes");
	int rc = KACHE_EXIT_CONFIG;

	pf.max_bytes = max > 0 ? (uint64_t)max : 0;
	/* beside the build, never ahead of it; the import threads inherit it */
	if (run_in_background(PREFETCH_NICE) < 0)
		log_warn("prefetch: lowering its priority");
	pf.cooldown = config_get_duration(cfg, "prefetch.cooldown");
	if (pf.cooldown < 1000) /* a session is at least a second long */
		pf.cooldown = 1000;
	if (open_remotes(&pf, cfg) == 0) {
		pf.save = config_get_bool(cfg, "prefetch.save_manifest") && pf.remote[0] != NULL &&
		    !remote_read_only(pf.remote[0]);
		rc = proto_worker_run(kache_dir, "prefetch", index, &ops, &pf);
	}
	for (int i = 0; i < pf.nremote; i++)
		remote_free(&pf.remote[i]);
	return rc;
}
