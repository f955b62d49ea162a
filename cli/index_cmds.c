/* kache stats | gc | list | purge | verify: thin shells over index/. When a
 * supervisor runs for the store it owns the index (RocksDB takes one writer), so
 * stats, list and gc ask it; otherwise the command opens the index itself. Either
 * way the output is printed from the same JSON document (index/index_json.c).
 * verify and purge go through the supervisor too (its indexer does the work)
 * and print the same lines either way. verify, purge and gc show their progress
 * on stderr when it is a terminal, one line redrawn in place and erased before
 * the result: from INDEX_PROGRESS messages, or from index/'s progress callback
 * when the command opens the index itself. */
#include "cli/index_cmds.h"
#include "cli/sign_cmds.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/gc_background.h"
#include "common/clock.h"
#include "common/config.h"
#include "index/index.h"
#include "index/index_json.h"
#include "proto/client.h"

/* How long a command waits for the supervisor before calling it hung. */
#define STATS_WAIT_MS 3000
/* verify re-hashes every blob, purge removes the whole store, gc may evict
 * much: they wait as long as progress keeps coming, at most PROGRESS_IDLE_MS
 * without any (the indexer may first finish another long request), and at
 * most a day in all, as the supervisor does. */
#define PROGRESS_IDLE_MS (120 * 1000)
#define LONG_CAP_MS (24LL * 3600 * 1000)
#define PROGRESS_REDRAW_MS 100
/* How long a command waits for a background gc that holds the index. */
#define GC_WAIT_MS (120 * 1000)

/* The progress line of a long command (drawn only when stderr is a tty). */
struct progress_line {
	const char *cmd; /* "verify" */
	int tty;
	int shown;
	int64_t next;
	char phase[MSG_PHASE_MAX + 1];
};

enum via { VIA_SUPERVISOR, VIA_DIRECT, VIA_FAILED };

static struct index *open_index(const char *dir);
static enum via ask_supervisor(const char *dir, struct msg *req, int64_t wait_ms, json_t **doc);
static enum via ask_long(const char *dir, struct msg *req, struct progress_line *pl, json_t **doc);
static enum via ask_result(const char *dir, enum proto_result r, struct msg *rep, const char *hung,
    json_t **doc);
static void progress_init(struct progress_line *pl, const char *cmd);
static void progress_show(struct progress_line *pl, const char *phase, uint64_t done,
    uint64_t total);
static void progress_clear(struct progress_line *pl);
static void progress_from_index(const char *phase, uint64_t done, uint64_t total, void *arg);
static void progress_from_msg(const struct msg *m, void *arg);
static int want_json(int argc, char **argv, int *json, const char **arg);
static void print_json(json_t *doc, size_t flags);
static void print_stats_text(const json_t *st);
static void print_reasons(const json_t *o);
static void print_langs(const json_t *o);
static void format_time(int64_t ms, char *out, size_t n);
static void print_list_row(const json_t *e);
static json_t *list_via_supervisor(const char *dir, const char *crate, enum via *v);
static json_t *run_gc(const char *dir, uint64_t cap, int64_t unused, int verbose,
    struct progress_line *pl);
static void print_gc(const json_t *doc, int verbose);
static void verify_cb(const char *what, const char *hex, void *arg);
static json_t *purge_doc(const char *dir, struct progress_line *pl);
static json_t *verify_doc(const char *dir, struct progress_line *pl);
static void print_verify(const json_t *doc);
static struct index *open_for_read(const char *dir);
static void print_refused(const char *dir);
static int store_read_only(const char *dir);
static json_t *stats_direct(const char *dir, int zero);

/* Opens the index of dir; prints why not on failure. A first build of the
 * index (a large store, a lost index) shows its progress on a terminal. */
static struct index *
open_index(const char *dir)
{
	struct progress_line pl;
	struct index_progress pg = { progress_from_index, &pl };
	struct index *ix;

	progress_init(&pl, "index");
	ix = index_open_progress(dir, &pg);
	progress_clear(&pl);
	if (ix == NULL && errno == EBUSY) {
		if (gc_background_wait(dir, GC_WAIT_MS)) {
			ix = index_open_progress(dir, &pg);
			progress_clear(&pl);
		} else {
			errno = EBUSY;
		}
	}

	if (ix == NULL && errno == ENOSPC)
		fprintf(stderr,
		    "kache: the disk of %s is full and the index cannot be opened; "
		    "free space (`kache purge` removes the whole cache) and try again\n",
		    dir);
	else if (ix == NULL && errno == EBUSY)
		fprintf(stderr,
		    "kache: another kache command or the supervisor holds the "
		    "index of %s; try again\n",
		    dir);
	else if (ix == NULL)
		fprintf(stderr, "kache: cannot open the index of %s\n", dir);
	else if (index_was_rebuilt(ix))
		fprintf(stderr,
		    "kache: the index was damaged; rebuilt it from the store (old "
		    "copy: %s/index.broken); counters restart from what the journal still "
		    "holds\n",
		    dir);
	return ix;
}

/* The client refused to talk to a socket in a directory that is not ours
 * alone: the supervisor's own rule, in its words. */
static void
print_refused(const char *dir)
{
	char err[512] = "the run directory is not safe";

	proto_client_check(dir, err, sizeof err);
	fprintf(stderr, "kache: not contacting the supervisor of %s: %s\n", dir, err);
}

/* The index for stats and list, journal folded in. On a store this process
 * may not write (a read-only mount) nothing is written: no lock, no ingest,
 * and the counters lack the journal's records not yet folded in; on a full
 * disk the index is open read-only and shows what it held at the last ingest.
 * NULL when it cannot be read (said why). */
static struct index *
open_for_read(const char *dir)
{
	struct index *ix;

	if (store_read_only(dir)) {
		if ((ix = index_open_readonly(dir)) == NULL)
			fprintf(stderr, "kache: cannot read the index of %s\n", dir);
		else
			fprintf(stderr,
			    "kache: the store is read-only here: counters as last "
			    "folded in, without newer journal records\n");
		return ix;
	}
	if ((ix = open_index(dir)) == NULL)
		return NULL;
	if (!index_no_space(ix) && index_ingest(ix) >= 0)
		return ix;
	if (index_no_space(ix))
		fprintf(stderr,
		    "kache: warning: the disk of %s is full: showing the index as "
		    "last updated (new journal records wait); `kache gc --max-size SIZE` "
		    "frees space\n",
		    dir);
	else
		fprintf(stderr, "kache: warning: could not read the whole journal\n");
	return ix;
}

/* Sends req to the supervisor of dir, if one runs. VIA_SUPERVISOR: *doc holds
 * the parsed reply. VIA_DIRECT: none runs (or it predates these requests and so
 * does not hold the index): open the index yourself. VIA_FAILED: said why. */
static enum via
ask_supervisor(const char *dir, struct msg *req, int64_t wait_ms, json_t **doc)
{
	enum proto_result r;
	struct msg rep;
	char hung[64];

	req->epoch = proto_client_epoch();
	r = proto_client_request(dir, req, &rep, clock_ms() + wait_ms);
	snprintf(hung, sizeof hung, "did not answer within %lld s", (long long)(wait_ms / 1000));
	return ask_result(dir, r, &rep, hung, doc);
}

/* ask_supervisor for a long request, its progress drawn on pl; waits while
 * progress keeps coming (see PROGRESS_IDLE_MS). */
static enum via
ask_long(const char *dir, struct msg *req, struct progress_line *pl, json_t **doc)
{
	enum proto_result r;
	struct msg rep;
	char hung[64];

	req->epoch = proto_client_epoch();
	r = proto_client_request_long(dir, req, &rep, PROGRESS_IDLE_MS, clock_ms() + LONG_CAP_MS,
	    progress_from_msg, pl);
	progress_clear(pl);
	snprintf(hung, sizeof hung, "sent no progress for %lld s",
	    (long long)(PROGRESS_IDLE_MS / 1000));
	return ask_result(dir, r, &rep, hung, doc);
}

/* What a request's outcome means for the command (see ask_supervisor); hung
 * says how long it waited for a timeout. Frees rep. */
static enum via
ask_result(const char *dir, enum proto_result r, struct msg *rep, const char *hung, json_t **doc)
{
	enum via v = VIA_FAILED;
	json_error_t jerr;

	*doc = NULL;
	if (r == PROTO_UNAVAILABLE) {
		v = VIA_DIRECT;
	} else if (r == PROTO_REFUSED) {
		print_refused(dir);
	} else if (r == PROTO_TIMEOUT) {
		fprintf(stderr,
		    "kache: the supervisor of %s %s (hung?); restart it with `kache "
		    "supervisor restart`\n",
		    dir, hung);
	} else if (r != PROTO_OK) {
		fprintf(stderr,
		    "kache: the supervisor of %s sent a bad reply (%s); restart it "
		    "with `kache supervisor restart`\n",
		    dir, proto_result_name(r));
	} else if (rep->type == MSG_ERROR && rep->status == MSG_ERR_UNKNOWN) {
		v = VIA_DIRECT;
	} else if (rep->type == MSG_ERROR) {
		fprintf(stderr, "kache: supervisor: %s\n", rep->text ? rep->text : "error");
	} else if (rep->type != MSG_INDEX_REPLY || rep->text == NULL ||
	    (*doc = json_loads(rep->text, 0, &jerr)) == NULL) {
		fprintf(stderr,
		    "kache: the supervisor of %s sent a bad reply (%s); restart it "
		    "with `kache supervisor restart`\n",
		    dir, msg_type_name(rep->type));
	} else {
		v = VIA_SUPERVISOR;
	}
	msg_clear(rep);
	return v;
}

static void
progress_init(struct progress_line *pl, const char *cmd)
{
	memset(pl, 0, sizeof *pl);
	pl->cmd = cmd;
	pl->tty = isatty(STDERR_FILENO);
}

/* Redraws the line ("verify: 1234/5678 blobs (21%)") when the phase changed
 * or PROGRESS_REDRAW_MS passed; nothing at all when stderr is not a terminal,
 * so that logs hold only the result. */
static void
progress_show(struct progress_line *pl, const char *phase, uint64_t done, uint64_t total)
{
	int64_t now = clock_ms();

	if (!pl->tty || (now < pl->next && strcmp(phase, pl->phase) == 0))
		return;
	pl->next = now + PROGRESS_REDRAW_MS;
	snprintf(pl->phase, sizeof pl->phase, "%s", phase);
	if (total > 0)
		fprintf(stderr, "\r\033[K%s: %llu/%llu %s (%d%%)", pl->cmd,
		    (unsigned long long)done, (unsigned long long)total, phase,
		    (int)(done * 100 / total));
	else
		fprintf(stderr, "\r\033[K%s: %llu %s", pl->cmd, (unsigned long long)done, phase);
	fflush(stderr);
	pl->shown = 1;
}

/* Erases the progress line, before the result or an error is printed. */
static void
progress_clear(struct progress_line *pl)
{
	if (!pl->shown)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	pl->shown = 0;
}

/* index/'s progress callback, when the command works on the index itself. */
static void
progress_from_index(const char *phase, uint64_t done, uint64_t total, void *arg)
{
	progress_show(arg, phase, done, total);
}

/* An INDEX_PROGRESS from the supervisor (msg_decode checked its counts and
 * that the phase is a short lower-case word). */
static void
progress_from_msg(const struct msg *m, void *arg)
{
	progress_show(arg, m->phase, (uint64_t)m->count, (uint64_t)m->total);
}

/* Accepts [--json] and at most one operand. 0, or EXIT_USAGE. */
static int
want_json(int argc, char **argv, int *json, const char **arg)
{
	*json = 0;
	if (arg)
		*arg = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			*json = 1;
		else if (arg && *arg == NULL && argv[i][0] != '-')
			*arg = argv[i];
		else
			return EXIT_USAGE;
	}
	return 0;
}

static void
print_json(json_t *doc, size_t flags)
{
	json_dumpf(doc, stdout, flags);
	putchar('\n');
}

static void
format_time(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || localtime_r(&t, &tm) == NULL || strftime(out, n, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(out, n, "-");
}

static void
print_reasons(const json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)o, k, v)
		printf("  %-17s %llu\n", k, (unsigned long long)json_integer_value(v));
}

#define U(o, name) ((unsigned long long)index_json_u64((o), (name)))

/* "by language" and a line per language: rust, c, c++, asm. */
static void
print_langs(const json_t *o)
{
	static const char *const order[] = { "rust", "c", "c++", "asm" };

	if (json_object_size(o) == 0)
		return;
	printf("by language\n");
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		const json_t *v = json_object_get(o, order[i]);

		if (v != NULL)
			printf("  %-17s %llu hits, %llu misses, %llu pass-throughs, %llu errors\n",
			    order[i], U(v, "hits"), U(v, "misses"), U(v, "passes"), U(v, "errors"));
	}
}

static void
print_stats_text(const json_t *st)
{
	const json_t *from = json_object_get(st, "prefetch_imported_from");
	char a[32], b[32], since[32];

	format_time((int64_t)index_json_u64(st, "since_ms"), since, sizeof since);
	printf("hits                %llu (local %llu, prefetched %llu, remote %llu)\n",
	    U(st, "hits") + U(st, "remote_hits"), U(st, "local_hits"), U(st, "prefetched_hits"),
	    U(st, "remote_hits"));
	printf("misses              %llu\n", U(st, "misses"));
	if (U(st, "kept_local") > 0)
		printf("  kept here         %llu (they read a secret-looking variable: not "
		       "uploaded)\n",
		    U(st, "kept_local"));
	printf("hit rate            %.1f%%\n",
	    100.0 * json_number_value(json_object_get(st, "hit_rate")));
	printf("pass-throughs       %llu\n", U(st, "passes"));
	print_reasons(json_object_get(st, "pass_reasons"));
	printf("errors              %llu\n", U(st, "errors"));
	print_reasons(json_object_get(st, "error_reasons"));
	print_langs(json_object_get(st, "languages"));
	printf("corrupt found       %llu\n", U(st, "corrupt"));
	printf("remote rejected     %llu\n", U(st, "rejected"));
	print_reasons(json_object_get(st, "rejected_reasons"));
	format_size(index_json_u64(st, "store_bytes"), a, sizeof a);
	printf("entries             %llu\n", U(st, "entries"));
	printf("imported            %llu by prefetch, %llu fetched on a miss\n",
	    U(st, "prefetch_imported"), U(st, "fetch_imported"));
	printf("  prefetched from   planner %llu, exact session %llu, closest session %llu, "
	       "packs %llu\n",
	    U(from, "planner"), U(from, "exact_session"), U(from, "closest_session"),
	    U(from, "packs"));
	if (json_object_get(st, "max_size") != NULL) {
		char cs[32];

		format_size(index_json_u64(st, "max_size"), cs, sizeof cs);
		printf("store size          %s of %s (cache.max_size)\n", a, cs);
	} else {
		printf("store size          %s\n", a);
	}
	format_size(index_json_u64(st, "bytes_restored"), b, sizeof b);
	printf("bytes restored      %s\n", b);
	printf("compile time saved  %.1f s\n", (double)U(st, "ms_saved") / 1e3);
	printf("time in kache       %.3f s\n", (double)U(st, "kache_us") / 1e6);
	printf("counting since      %s\n", since);
}

/* The stats from the index opened here, then (zero) every counter zeroed.
 * NULL when it could not be read (or zeroed: said). */
static json_t *
stats_direct(const char *dir, int zero)
{
	struct index *ix = NULL;
	json_t *doc = NULL;

	if (!zero) {
		if ((ix = open_for_read(dir)) != NULL)
			doc = index_json_stats(ix);
	} else if (store_read_only(dir)) {
		fprintf(stderr,
		    "kache stats: the store %s is read-only here: its counters cannot "
		    "be zeroed\n",
		    dir);
		return NULL;
	} else if ((ix = open_index(dir)) != NULL) {
		if (!index_no_space(ix))
			index_ingest(ix);
		doc = index_json_stats(ix);
		if (index_zero(ix) < 0) {
			fprintf(stderr,
			    "kache stats: the counters of %s could not be zeroed (%s)\n", dir,
			    index_no_space(ix) ? "its disk is full" :
			                         "the index refused the write");
			json_decref(doc);
			doc = NULL;
		}
	}
	index_free(&ix);
	return doc;
}

int
cmd_stats(int argc, char **argv)
{
	struct config *cfg;
	struct msg req;
	json_t *doc = NULL;
	int64_t cap;
	enum via v;
	int json = 0, zero = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--zero") == 0) {
			zero = 1;
		} else {
			fprintf(stderr, "usage: kache stats [--json] [--zero]\n");
			return EXIT_USAGE;
		}
	}
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	msg_init(&req, zero ? MSG_INDEX_ZERO : MSG_INDEX_STATS, 0);
	v = ask_supervisor(config_get(cfg, "cache.dir"), &req, STATS_WAIT_MS, &doc);
	msg_clear(&req);
	if (v == VIA_DIRECT)
		doc = stats_direct(config_get(cfg, "cache.dir"), zero);
	if (doc != NULL && (cap = config_get_size(cfg, "cache.max_size")) >= 0)
		json_object_set_new(doc, "max_size", json_integer(cap)); /* this command's cap */
	config_free(&cfg);
	if (doc == NULL)
		return 1;
	if (zero)
		json_object_set_new(doc, "zeroed", json_true());
	if (json)
		print_json(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	else
		print_stats_text(doc);
	if (zero && !json)
		printf("zeroed: every counter above starts again from 0 now\n");
	json_decref(doc);
	return 0;
}

static void
print_list_row(const json_t *e)
{
	const char *crate = json_string_value(json_object_get(e, "crate"));
	const char *key = json_string_value(json_object_get(e, "key"));
	char size[32], when[32];

	format_size(index_json_u64(e, "size"), size, sizeof size);
	format_time((int64_t)index_json_u64(e, "last_use_ms"), when, sizeof when);
	printf("%-24s %.16s %10s  %s %6llu\n", crate && crate[0] ? crate : "-", key ? key : "-",
	    size, when, U(e, "hits"));
}

/* The whole list from the supervisor, a page (INDEX_JSON_PAGE entries) per
 * request. Pages are separate reads: an entry used between two may show twice
 * or not at all. */
static json_t *
list_via_supervisor(const char *dir, const char *crate, enum via *v)
{
	json_t *all = json_array(), *page;
	struct msg req;

	for (;;) {
		msg_init(&req, MSG_INDEX_LIST, 0);
		msg_set_text(&req, crate ? crate : "");
		req.count = (int64_t)json_array_size(all);
		*v = ask_supervisor(dir, &req, STATS_WAIT_MS, &page);
		msg_clear(&req);
		if (*v != VIA_SUPERVISOR)
			break;
		json_array_extend(all, json_object_get(page, "entries"));
		if (!json_is_true(json_object_get(page, "more")) ||
		    json_array_size(json_object_get(page, "entries")) == 0) {
			json_decref(page);
			return all;
		}
		json_decref(page);
	}
	json_decref(all);
	return NULL;
}

int
cmd_list(int argc, char **argv)
{
	struct config *cfg;
	struct index *ix;
	const char *crate;
	json_t *arr, *e;
	enum via v;
	size_t i;
	int json;

	if (want_json(argc, argv, &json, &crate) != 0) {
		fprintf(stderr, "usage: kache list [CRATE] [--json]\n");
		return EXIT_USAGE;
	}
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	arr = list_via_supervisor(config_get(cfg, "cache.dir"), crate, &v);
	if (v == VIA_DIRECT && (ix = open_for_read(config_get(cfg, "cache.dir"))) != NULL) {
		arr = index_json_list(ix, crate, 0, SIZE_MAX, NULL);
		index_free(&ix);
	}
	config_free(&cfg);
	if (arr == NULL)
		return 1;
	if (json) {
		print_json(arr, JSON_INDENT(2));
	} else {
		printf("%-24s %-16s %10s  %-16s %6s\n", "CRATE", "KEY", "SIZE", "LAST USE", "HITS");
		json_array_foreach(arr, i, e)
			print_list_row(e);
	}
	json_decref(arr);
	return 0;
}

/* gc by the supervisor when one runs, else here, its progress on pl. NULL
 * when it could not run. */
static json_t *
run_gc(const char *dir, uint64_t cap, int64_t unused, int verbose, struct progress_line *pl)
{
	struct index_progress pg = { progress_from_index, pl };
	struct index *ix;
	struct msg req;
	json_t *doc = NULL;
	enum via v;

	msg_init(&req, MSG_INDEX_GC, 0);
	req.count = (int64_t)cap;
	req.status = verbose;
	req.total = unused;
	v = ask_long(dir, &req, pl, &doc);
	msg_clear(&req);
	if (v == VIA_DIRECT && (ix = open_index(dir)) != NULL) {
		doc = index_json_gc(ix, cap, unused, verbose, SIZE_MAX, &pg);
		index_free(&ix);
		progress_clear(pl);
	}
	return doc;
}

static void
print_gc(const json_t *doc, int verbose)
{
	const char *crate, *key;
	char size[32], line[512];
	json_t *e;
	size_t i;

	if (verbose) {
		json_array_foreach(json_object_get(doc, "removed"), i, e) {
			crate = json_string_value(json_object_get(e, "crate"));
			key = json_string_value(json_object_get(e, "key"));
			format_size(index_json_u64(e, "size"), size, sizeof size);
			printf("removed %s %.16s (%s)\n", crate && crate[0] ? crate : "-",
			    key ? key : "-", size);
		}
		if (U(doc, "removed_more"))
			printf("... and %llu more entries\n", U(doc, "removed_more"));
	}
	gc_summary(doc, line, sizeof line);
	printf("%s\n", line);
}

void
gc_summary(const json_t *doc, char *out, size_t n)
{
	char fr[32], now[32], cs[32], age[64] = "";
	double unused_h = (double)index_json_u64(doc, "unused_ms") / 3600000.0;

	format_size(index_json_u64(doc, "bytes_freed"), fr, sizeof fr);
	format_size(index_json_u64(doc, "size_after"), now, sizeof now);
	format_size(index_json_u64(doc, "cap"), cs, sizeof cs);
	if (unused_h >= 48)
		snprintf(age, sizeof age, "; none unused for %.3g days", unused_h / 24);
	else if (unused_h > 0)
		snprintf(age, sizeof age, "; none unused for %.3g hours", unused_h);
	snprintf(out, n,
	    "gc: removed %llu entries, %llu blobs, %llu manifests, %llu stale tmp files, "
	    "%llu unreferenced blobs, %llu old memo files; freed %s; store now %s (cap %s%s)",
	    U(doc, "entries_removed"), U(doc, "blobs_removed"), U(doc, "manifests_removed"),
	    U(doc, "tmp_removed"), U(doc, "orphans_removed"), U(doc, "memo_removed"), fr, now, cs,
	    age);
}

int
cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = { { "max-size", required_argument, NULL, 's' },
		{ "older-than", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' }, { NULL, 0, NULL, 0 } };
	static const char usage[] =
	    "usage: kache gc [--max-size SIZE] [--older-than DURATION] [-v]\n";
	struct progress_line pl;
	struct config *cfg;
	int64_t cap = -1, unused = 0;
	int c, verbose = 0, rc;
	json_t *doc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:o:v", opts, NULL)) != -1) {
		if (c == 's' && (cap = parse_size(optarg)) < 0) {
			fprintf(stderr, "kache: --max-size: '%s' is not a size\n", optarg);
			return EXIT_USAGE;
		} else if (c == 'o' && (parse_duration(optarg, &unused) < 0 || unused <= 0)) {
			fprintf(stderr, "kache: --older-than: '%s' is not a duration (12h, 7d)\n",
			    optarg);
			return EXIT_USAGE;
		} else if (c == 'v') {
			verbose = 1;
		} else if (c != 's' && c != 'o') {
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	if (cap < 0)
		cap = config_get_size(cfg, "cache.max_size");
	progress_init(&pl, "gc");
	doc = run_gc(config_get(cfg, "cache.dir"), (uint64_t)cap, unused, verbose, &pl);
	config_free(&cfg);
	if (doc == NULL)
		return 1;
	print_gc(doc, verbose);
	rc = json_is_true(json_object_get(doc, "ok")) ? 0 : 1;
	json_decref(doc);
	return rc;
}

/* {"ok", "entries", "blobs", "bytes_freed"}: from the supervisor's indexer
 * when one runs, else from the index opened here. NULL when it could not run. */
static json_t *
purge_doc(const char *dir, struct progress_line *pl)
{
	struct index_progress pg = { progress_from_index, pl };
	struct index_purge_result r = { 0 };
	struct index *ix;
	struct msg req;
	json_t *doc = NULL;
	enum via v;
	int rc;

	msg_init(&req, MSG_INDEX_PURGE, 0);
	v = ask_long(dir, &req, pl, &doc);
	msg_clear(&req);
	if (v != VIA_DIRECT || (ix = open_index(dir)) == NULL)
		return doc;
	rc = index_purge(ix, &r, &pg);
	index_free(&ix);
	progress_clear(pl);
	return index_json_purge(&r, rc == 0);
}

int
cmd_purge(int argc, char **argv)
{
	struct progress_line pl;
	struct config *cfg;
	json_t *doc;
	char fr[32];
	int rc;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: kache purge\n");
		return EXIT_USAGE;
	}
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	progress_init(&pl, "purge");
	doc = purge_doc(config_get(cfg, "cache.dir"), &pl);
	config_free(&cfg);
	if (doc == NULL)
		return 1;
	format_size(index_json_u64(doc, "bytes_freed"), fr, sizeof fr);
	printf("purge: removed %llu entries and %llu blobs; freed %s\n", U(doc, "entries"),
	    U(doc, "blobs"), fr);
	rc = json_is_true(json_object_get(doc, "ok")) ? 0 : 1;
	json_decref(doc);
	return rc;
}

/* 1 when the store at dir exists but this process may not write into it (a
 * read-only mount, an immutable or another user's directory). */
static int
store_read_only(const char *dir)
{
	return access(dir, F_OK) == 0 && access(dir, W_OK) < 0;
}

/* Collects verify's problems as the indexer's reply does. */
static void
verify_cb(const char *what, const char *hex, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:s}", "what", what, "key", hex));
}

/* The verify summary (see workers/indexer/indexer_requests.c), from the
 * supervisor's indexer or the index opened here. NULL when it could not run. */
static json_t *
verify_doc(const char *dir, struct progress_line *pl)
{
	struct index_progress pg = { progress_from_index, pl };
	struct index_verify_result r = { 0 };
	json_t *doc = NULL, *problems;
	struct index *ix;
	struct msg req;
	enum via v;
	long n;

	msg_init(&req, MSG_INDEX_VERIFY, 0);
	v = ask_long(dir, &req, pl, &doc);
	msg_clear(&req);
	if (v != VIA_DIRECT || (ix = open_index(dir)) == NULL)
		return doc;
	if (index_no_space(ix)) {
		fprintf(stderr,
		    "kache: the disk of %s is full: verify needs to update the index; "
		    "free space first (`kache gc --max-size SIZE`), then run `kache verify` "
		    "again\n",
		    dir);
		index_free(&ix);
		return NULL;
	}
	problems = json_array();
	n = index_verify(ix, &r, verify_cb, problems, &pg);
	index_free(&ix);
	progress_clear(pl);
	return index_json_verify(&r, problems, n, 0);
}

static void
print_verify(const json_t *doc)
{
	char sz[32];
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(doc, "problems"), i, e)
		printf("%s: %s\n", json_string_value(json_object_get(e, "what")),
		    json_string_value(json_object_get(e, "key")));
	if (U(doc, "problems_more"))
		printf("... and %llu more problems\n", U(doc, "problems_more"));
	format_size(index_json_u64(doc, "bytes_checked"), sz, sizeof sz);
	printf("verify: checked %llu blobs (%s), %llu entries, %llu manifests: %llu corrupt "
	       "blobs, %llu corrupt entries, %llu corrupt manifests, %llu entries removed for "
	       "missing blobs\n",
	    U(doc, "blobs_checked"), sz, U(doc, "entries_checked"), U(doc, "manifests_checked"),
	    U(doc, "blobs_corrupt"), U(doc, "entries_corrupt"), U(doc, "manifests_corrupt"),
	    U(doc, "entries_removed"));
}

int
cmd_verify(int argc, char **argv)
{
	struct progress_line pl;
	struct config *cfg;
	json_t *doc;
	json_int_t n;

	if (argc > 1 && strcmp(argv[1], "--remote") == 0)
		return cmd_verify_remote(argc, argv);
	if (argc > 1) {
		fprintf(stderr, "usage: kache verify [--remote [--max N]]\n");
		return EXIT_USAGE;
	}
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	progress_init(&pl, "verify");
	doc = verify_doc(config_get(cfg, "cache.dir"), &pl);
	config_free(&cfg);
	if (doc == NULL)
		return 1;
	print_verify(doc);
	n = json_integer_value(json_object_get(doc, "found"));
	if (n < 0)
		fprintf(stderr, "kache: verify did not finish\n");
	json_decref(doc);
	return n != 0 ? 1 : 0;
}
