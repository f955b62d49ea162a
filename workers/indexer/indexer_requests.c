/* The index requests the supervisor routes to the indexer: stats, list and gc
 * reply with the same JSON documents the CLI builds when it opens the index
 * itself (index/index_json.c); verify and purge reply with their summaries. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "common/log.h"
#include "index/index.h"
#include "index/index_json.h"
#include "proto/worker.h"
#include "workers/indexer/indexer_internal.h"

static int not_open(struct indexer *x, struct msg *rep);
static void reply_json(struct msg *rep, json_t *doc);
static json_t *fresh_stats(struct indexer *x);
static void on_stats(struct indexer *x, struct msg *rep);
static void on_zero(struct indexer *x, struct msg *rep);
static void on_list(struct indexer *x, const struct msg *req, struct msg *rep);
static void on_gc(struct indexer *x, const struct msg *req, struct msg *rep);
static void on_verify(struct indexer *x, struct msg *rep);
static void on_purge(struct indexer *x, struct msg *rep);
static void verify_report(const char *what, const char *hex, void *arg);

/* verify, purge and gc send their progress to the client (and beat). */
static const struct index_progress progress = { indexer_progress, NULL };

static void
reply_json(struct msg *rep, json_t *doc)
{
	char *text;

	if (doc == NULL) {
		rep->status = MSG_ERR_STATE;
		msg_set_text(rep,
		    "the index could not be read; see the indexer's log "
		    "(`kache supervisor log indexer`)");
		return;
	}
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	rep->type = MSG_INDEX_REPLY;
	msg_set_text(rep, text);
	free(text);
}

/* -1 with rep set when the index cannot be opened now (a request is worth one
 * more try at once). */
static int
not_open(struct indexer *x, struct msg *rep)
{
	if (indexer_open(x, 0) == 0)
		return 0;
	rep->status = MSG_ERR_STATE;
	msg_set_text(rep,
	    errno == ENOSPC ? "the disk of the store is full and the index "
	                      "cannot be opened; free space and try again" :
	                      "the indexer cannot open the "
	                      "index yet (another kache command holds it); try again");
	return -1;
}

/* The stats with every journal record ingested first (unless the disk is
 * full: then as last ingested). */
static json_t *
fresh_stats(struct indexer *x)
{
	if (!index_no_space(x->ix))
		index_ingest(x->ix);
	return index_json_stats(x->ix);
}

static void
on_stats(struct indexer *x, struct msg *rep)
{
	reply_json(rep, fresh_stats(x));
}

/* Replies {"entries": [...], "more": bool}; the client asks again from
 * offset + INDEX_JSON_PAGE while more is true. */
static void
on_list(struct indexer *x, const struct msg *req, struct msg *rep)
{
	json_t *arr, *o;
	int more = 0;

	if (req->count < 0) {
		rep->status = MSG_ERR_MALFORMED;
		msg_set_text(rep, "negative offset");
		return;
	}
	if (!index_no_space(x->ix))
		index_ingest(x->ix);
	arr = index_json_list(x->ix, req->text && req->text[0] ? req->text : NULL,
	    (size_t)req->count, INDEX_JSON_PAGE, &more);
	if (arr == NULL) {
		reply_json(rep, NULL);
		return;
	}
	o = json_object();
	json_object_set_new(o, "entries", arr);
	json_object_set_new(o, "more", json_boolean(more));
	reply_json(rep, o);
}

static void
on_gc(struct indexer *x, const struct msg *req, struct msg *rep)
{
	int64_t cap = req->count < 0 ? indexer_max_size(x) : req->count;
	int64_t unused = req->total > 0 ? req->total : 0;

	log_info("gc requested (cap %lld bytes, unused for %lld ms at most)", (long long)cap,
	    (long long)unused);
	reply_json(rep,
	    index_json_gc(x->ix, (uint64_t)cap, unused, req->status != 0, INDEX_JSON_PAGE,
	        &progress));
}

/* One problem verify found: kept for the reply (at most a page of them). */
static void
verify_report(const char *what, const char *hex, void *arg)
{
	json_t *problems = arg;

	if (json_array_size(problems) < INDEX_JSON_PAGE)
		json_array_append_new(problems, json_pack("{s:s, s:s}", "what", what, "key", hex));
}

/* Replies with index_json_verify's summary. */
static void
on_verify(struct indexer *x, struct msg *rep)
{
	struct index_verify_result r = { 0 };
	json_t *problems = json_array();
	long n;

	if (index_no_space(x->ix)) {
		json_decref(problems);
		rep->status = MSG_ERR_STATE;
		msg_set_text(rep,
		    "the disk of the store is full: verify needs to update the "
		    "index; free space first (`kache gc --max-size SIZE`), then run `kache "
		    "verify` again");
		return;
	}
	log_info("verify requested");
	n = index_verify(x->ix, &r, verify_report, problems, &progress);
	reply_json(rep,
	    index_json_verify(&r, problems, n, n > INDEX_JSON_PAGE ? n - INDEX_JSON_PAGE : 0));
}

/* The stats up to now (fresh_stats), then every counter zeroed: in the
 * indexer's one thread, so no compile is counted in neither and none in
 * both. */
static void
on_zero(struct indexer *x, struct msg *rep)
{
	json_t *doc = fresh_stats(x);

	if (index_zero(x->ix) < 0) {
		json_decref(doc);
		rep->status = MSG_ERR_STATE;
		msg_set_text(rep,
		    "the counters could not be zeroed (the index did not take the "
		    "write: see `kache supervisor log indexer`)");
		return;
	}
	log_info("stats zeroed");
	reply_json(rep, doc);
}

/* Replies with index_json_purge's summary. */
static void
on_purge(struct indexer *x, struct msg *rep)
{
	struct index_purge_result r = { 0 };
	int rc;

	log_info("purge requested");
	rc = index_purge(x->ix, &r, &progress);
	reply_json(rep, index_json_purge(&r, rc == 0));
}

void
indexer_request(void *arg, const struct msg *req, struct msg *rep)
{
	struct indexer *x = arg;

	if (req->type < MSG_INDEX_STATS ||
	    (req->type > MSG_INDEX_VERIFY && req->type != MSG_INDEX_PURGE &&
	        req->type != MSG_INDEX_ZERO)) {
		rep->status = MSG_ERR_UNKNOWN;
		msg_set_text(rep, "not an index request");
		return;
	}
	if (not_open(x, rep) < 0)
		return;
	switch (req->type) {
	case MSG_INDEX_STATS: on_stats(x, rep); break;
	case MSG_INDEX_LIST: on_list(x, req, rep); break;
	case MSG_INDEX_GC: on_gc(x, req, rep); break;
	case MSG_INDEX_VERIFY: on_verify(x, rep); break;
	case MSG_INDEX_ZERO: on_zero(x, rep); break;
	default: on_purge(x, rep); break;
	}
}
