/* The indexer's life: open the index (retrying while a CLI command holds it),
 * then the worker loop with a one-second tick that ingests the journal and
 * runs gc when due; on shutdown one last ingest, then close, which releases
 * the index for the CLI. */
#include "workers/indexer/indexer.h"

#include <errno.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "index/index.h"
#include "proto/worker.h"
#include "store/journal.h"
#include "workers/indexer/indexer_internal.h"

#define INGEST_MS 1000
#define OPEN_RETRY_MS 1000
#define SPACE_RETRY_MAX_MS 60000

static void on_record(int type, const unsigned char *res, int prefetched, void *arg);
static void on_tick(void *arg, int64_t now);
static void note_space(struct indexer *x);
static void run_gc(struct indexer *x, int64_t now);
static int64_t gc_interval_ms(const struct indexer *x);

/* Ingested hits and misses go up as EVENT_HIT (EVENT_PREFETCH_HIT for the
 * first use of an entry prefetch imported: the supervisor counts those in its
 * status) / EVENT_MISS, keyed by the result key ("" when the record has none);
 * the supervisor publishes them. */
static void
on_record(int type, const unsigned char *res, int prefetched, void *arg)
{
	char hex[HASH_HEX_LEN + 1] = "";
	struct msg m;

	(void)arg;
	if (type != JOURNAL_HIT && type != JOURNAL_MISS)
		return;
	if (res != NULL)
		hash_to_hex(res, hex);
	msg_init(&m, MSG_EVENT, 0);
	m.status = type == JOURNAL_MISS ? EVENT_MISS : prefetched ? EVENT_PREFETCH_HIT : EVENT_HIT;
	snprintf(m.key, sizeof m.key, "%s", hex);
	proto_worker_send(&m);
}

int
indexer_open(struct indexer *x, int64_t now)
{
	if (x->ix != NULL)
		return 0;
	if (now != 0 && now < x->next_open)
		return -1;
	x->next_open = clock_ms() + OPEN_RETRY_MS;
	if ((x->ix = index_open_wait(x->kache_dir, 0)) == NULL) {
		if (!x->busy_logged)
			log_warnx("index of %s: %s; retrying every second", x->kache_dir,
			    errno == EBUSY      ? "held by another process" :
			        errno == ENOSPC ? "no space left on its disk" :
			                          "cannot open");
		x->busy_logged = 1;
		return -1;
	}
	index_set_record_hook(x->ix, on_record, x);
	index_set_space_retry(x->ix, OPEN_RETRY_MS, SPACE_RETRY_MAX_MS);
	if (index_was_rebuilt(x->ix))
		log_warnx("the index of %s was damaged; rebuilt it from the store (old copy: "
		          "%s/index.broken)",
		    x->kache_dir, x->kache_dir);
	log_info("index of %s open", x->kache_dir);
	x->busy_logged = 0;
	return 0;
}

static int64_t
gc_interval_ms(const struct indexer *x)
{
	return config_get_duration(x->cfg, "supervisor.gc_interval");
}

int64_t
indexer_max_size(const struct indexer *x)
{
	return config_get_size(x->cfg, "cache.max_size");
}

/* The progress of a long index operation: to the client that asked for it,
 * and in any case the heartbeat that keeps the worker from looking hung. */
void
indexer_progress(const char *phase, uint64_t done, uint64_t total, void *arg)
{
	(void)arg;
	proto_worker_progress(phase, (int64_t)done, (int64_t)total);
}

static void
run_gc(struct indexer *x, int64_t now)
{
	static const struct index_progress pg = { indexer_progress, NULL };
	struct index_gc_result r;

	x->next_gc = now + gc_interval_ms(x);
	if (index_gc(x->ix, (uint64_t)indexer_max_size(x), 0, &r, NULL, NULL, &pg) < 0) {
		log_warnx("gc of %s did not finish", x->kache_dir);
		return;
	}
	if (r.entries_removed || r.tmp_removed || r.orphans_removed)
		log_info("gc: removed %llu entries, %llu blobs; freed %llu bytes; store now %llu",
		    (unsigned long long)r.entries_removed, (unsigned long long)r.blobs_removed,
		    (unsigned long long)r.bytes_freed, (unsigned long long)r.size_after);
}

/* Says once that the store's disk is full (index/ keeps the index read-only and
 * retries with back-off from index_ingest), and once that it has room again. */
static void
note_space(struct indexer *x)
{
	int full = index_no_space(x->ix);

	if (full && !x->nospace_logged)
		log_warnx("index: no space left on the disk of %s: the index is read-only and "
		          "journal records wait on disk; retrying every %d s at most",
		    x->kache_dir, SPACE_RETRY_MAX_MS / 1000);
	else if (!full && x->nospace_logged)
		log_info("index: the disk of %s has room again; the index is writable",
		    x->kache_dir);
	x->nospace_logged = full;
}

/* Every second: open if needed, fold in the journal, gc when due. */
static void
on_tick(void *arg, int64_t now)
{
	struct indexer *x = arg;
	long n;

	if (indexer_open(x, now) < 0)
		return;
	n = index_ingest(x->ix);
	note_space(x);
	if (n < 0 && !index_no_space(x->ix))
		log_warnx("index: could not read the whole journal");
	else if (n > 0)
		log_info("index: ingested %ld journal records", n);
	if (x->next_gc == 0)
		x->next_gc = now + gc_interval_ms(x);
	else if (now >= x->next_gc)
		run_gc(x, now);
}

int
indexer_main(const struct config *cfg, unsigned index)
{
	static const struct proto_worker_ops ops = { .request = indexer_request,
		.tick = on_tick,
		.tick_ms = INGEST_MS };
	struct indexer x = { .cfg = cfg, .kache_dir = config_get(cfg, "cache.dir") };
	int rc;

	rc = proto_worker_run(x.kache_dir, "indexer", index, &ops, &x);
	if (x.ix != NULL && !index_no_space(x.ix))
		index_ingest(x.ix); /* the last records, while we still hold it */
	index_free(&x.ix);
	return rc;
}
