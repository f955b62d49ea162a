/* The supervisor owns the RocksDB index of its store (one writer only): it opens
 * it at start-up (retrying from the tick while a CLI command holds it), ingests
 * the wrappers' journal every second, runs a size-capped gc every
 * supervisor.gc_interval seconds, and answers INDEX_STATS, INDEX_LIST and
 * INDEX_GC for the CLI with the same JSON documents the CLI builds itself when
 * no supervisor runs. Verify and purge stay CLI-only (see docs/supervisor.md). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "index/index.h"
#include "index/index_json.h"
#include "store/journal.h"
#include "supervisor/supervisor.h"

#define INGEST_MS 1000
#define OPEN_RETRY_MS 1000
#define SPACE_RETRY_MAX_MS 60000

struct sup_index {
	struct supervisor *s;
	struct index *ix;
	int64_t next_open;
	int64_t next_gc;
	int busy_logged;
	int nospace_logged;
};

void sup_index_attach(struct supervisor *s);

static int ensure_open(struct sup_index *si, int64_t now);
static void on_tick(void *arg, int64_t now);
static void note_space(struct sup_index *si);
static void run_gc(struct sup_index *si, int64_t now);
static int64_t gc_interval_ms(const struct sup_index *si);
static int64_t max_size(const struct sup_index *si);
static int reply_json(struct msg *rep, json_t *doc);
static int not_open(struct sup_index *si, struct msg *rep);
static int on_stats(void *arg, const struct msg *req, struct msg *rep);
static int on_list(void *arg, const struct msg *req, struct msg *rep);
static int on_gc(void *arg, const struct msg *req, struct msg *rep);
static void on_exit_hook(void *arg);
static void on_record(int type, const unsigned char *res, void *arg);

/* Ingested hits and misses become EVENT_HIT / EVENT_MISS on the PUB socket,
 * keyed by the result key ("" when the record has none). */
static void
on_record(int type, const unsigned char *res, void *arg)
{
	struct sup_index *si = arg;
	char hex[HASH_HEX_LEN + 1] = "";

	if (type != JOURNAL_HIT && type != JOURNAL_MISS)
		return;
	if (res != NULL)
		hash_to_hex(res, hex);
	supervisor_publish(si->s, type == JOURNAL_HIT ? EVENT_HIT : EVENT_MISS, hex);
}

/* Opens the index without waiting: a CLI command holding it for an instant
 * must not stall the loop. Retried at most once a second. 0 when open. */
static int
ensure_open(struct sup_index *si, int64_t now)
{
	const char *dir = supervisor_kache_dir(si->s);

	if (si->ix != NULL)
		return 0;
	if (now < si->next_open)
		return -1;
	si->next_open = now + OPEN_RETRY_MS;
	if ((si->ix = index_open_wait(dir, 0)) == NULL) {
		if (!si->busy_logged)
			log_warnx("index of %s: %s; retrying every second", dir,
			    errno == EBUSY ? "held by another process" :
			    errno == ENOSPC ? "no space left on its disk" : "cannot open");
		si->busy_logged = 1;
		return -1;
	}
	index_set_record_hook(si->ix, on_record, si);
	index_set_space_retry(si->ix, OPEN_RETRY_MS, SPACE_RETRY_MAX_MS);
	if (index_was_rebuilt(si->ix))
		log_warnx("the index of %s was damaged; rebuilt it from the store (old copy: "
		    "%s/index.broken)", dir, dir);
	log_info("index of %s open", dir);
	si->busy_logged = 0;
	return 0;
}

static int64_t
gc_interval_ms(const struct sup_index *si)
{
	int64_t v = config_get_int(supervisor_config(si->s), "supervisor.gc_interval");

	return v > 0 ? v * 1000 : 600 * 1000;
}

static int64_t
max_size(const struct sup_index *si)
{
	int64_t v = config_get_size(supervisor_config(si->s), "cache.max_size");

	return v >= 0 ? v : 10LL << 30;
}

static void
run_gc(struct sup_index *si, int64_t now)
{
	struct index_gc_result r;

	si->next_gc = now + gc_interval_ms(si);
	if (index_gc(si->ix, (uint64_t)max_size(si), &r, NULL, NULL) < 0) {
		log_warnx("gc of %s did not finish", supervisor_kache_dir(si->s));
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
note_space(struct sup_index *si)
{
	int full = index_no_space(si->ix);

	if (full && !si->nospace_logged)
		log_warnx("index: no space left on the disk of %s: the index is read-only and "
		    "journal records wait on disk; retrying every %d s at most",
		    supervisor_kache_dir(si->s), SPACE_RETRY_MAX_MS / 1000);
	else if (!full && si->nospace_logged)
		log_info("index: the disk of %s has room again; the index is writable",
		    supervisor_kache_dir(si->s));
	si->nospace_logged = full;
}

/* Every second: open if needed, fold in the journal, gc when due. */
static void
on_tick(void *arg, int64_t now)
{
	struct sup_index *si = arg;
	long n;

	if (ensure_open(si, now) < 0)
		return;
	n = index_ingest(si->ix);
	note_space(si);
	if (n < 0 && !index_no_space(si->ix))
		log_warnx("index: could not read the whole journal");
	else if (n > 0)
		log_info("index: ingested %ld journal records", n);
	if (si->next_gc == 0)
		si->next_gc = now + gc_interval_ms(si);
	else if (now >= si->next_gc)
		run_gc(si, now);
}

static int
reply_json(struct msg *rep, json_t *doc)
{
	char *text;

	if (doc == NULL) {
		rep->status = MSG_ERR_STATE;
		msg_set_text(rep, "the index could not be read; see the supervisor log");
		return 0;
	}
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	rep->type = MSG_INDEX_REPLY;
	msg_set_text(rep, text);
	free(text);
	return 0;
}

static int
not_open(struct sup_index *si, struct msg *rep)
{
	si->next_open = 0; /* a request is worth one more try now */
	if (ensure_open(si, clock_ms()) == 0)
		return 0;
	rep->status = MSG_ERR_STATE;
	msg_set_text(rep, "the supervisor cannot open the index yet (another kache command "
	    "holds it); try again");
	return -1;
}

static int
on_stats(void *arg, const struct msg *req, struct msg *rep)
{
	struct sup_index *si = arg;

	(void)req;
	if (not_open(si, rep) < 0)
		return 0;
	index_ingest(si->ix);
	return reply_json(rep, index_json_stats(si->ix));
}

/* Replies {"entries": [...], "more": bool}; the client asks again from
 * offset + INDEX_JSON_PAGE while more is true. */
static int
on_list(void *arg, const struct msg *req, struct msg *rep)
{
	struct sup_index *si = arg;
	json_t *arr, *o;
	int more = 0;

	if (req->count < 0) {
		rep->status = MSG_ERR_MALFORMED;
		msg_set_text(rep, "negative offset");
		return 0;
	}
	if (not_open(si, rep) < 0)
		return 0;
	index_ingest(si->ix);
	arr = index_json_list(si->ix, req->text && req->text[0] ? req->text : NULL,
	    (size_t)req->count, INDEX_JSON_PAGE, &more);
	if (arr == NULL)
		return reply_json(rep, NULL);
	o = json_object();
	json_object_set_new(o, "entries", arr);
	json_object_set_new(o, "more", json_boolean(more));
	return reply_json(rep, o);
}

static int
on_gc(void *arg, const struct msg *req, struct msg *rep)
{
	struct sup_index *si = arg;
	int64_t cap = req->count < 0 ? max_size(si) : req->count;

	if (not_open(si, rep) < 0)
		return 0;
	log_info("gc requested (cap %lld bytes)", (long long)cap);
	return reply_json(rep, index_json_gc(si->ix, (uint64_t)cap, req->status != 0,
	    INDEX_JSON_PAGE));
}

static void
on_exit_hook(void *arg)
{
	struct sup_index *si = arg;

	if (si->ix != NULL)
		index_ingest(si->ix); /* the last records, while we still hold it */
	index_free(&si->ix);
	free(si);
}

/* The entry in plugins[]: registers the tick, the request handlers and the
 * exit hook that closes the index (releasing its lock for the CLI). */
void
sup_index_attach(struct supervisor *s)
{
	struct sup_index *si = xcalloc(1, sizeof *si);

	si->s = s;
	ensure_open(si, clock_ms());
	if (supervisor_add_tick(s, INGEST_MS, on_tick, si) == -1 ||
	    supervisor_add_handler(s, MSG_INDEX_STATS, on_stats, si) == -1 ||
	    supervisor_add_handler(s, MSG_INDEX_LIST, on_list, si) == -1 ||
	    supervisor_add_handler(s, MSG_INDEX_GC, on_gc, si) == -1 ||
	    supervisor_add_exit(s, on_exit_hook, si) == -1)
		log_warnx("index: cannot register with the supervisor");
}
