/* The journal read back for a person. report: the events of one build
 * session (by default the newest run of events with no pause longer than
 * prefetch.cooldown between two; --since takes every event that recent),
 * counted and summed, each miss given its cause by why_explain. why-miss: the
 * crate's last recorded miss explained. */
#include "cli/report.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/why_explain.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/hash.h"
#include "cli/commands.h"
#include "common/fs.h"
#include "common/util.h"
#include "store/journal.h"

#define REPORT_SLOWEST 10
#define REPORT_JOURNAL_MAX (256u << 20)

struct events {
	struct journal_event *v;
	size_t n;
};

static void on_event(const struct journal_event *ev, void *arg);
static int cmp_ext(const void *a, const void *b);
static void load_journal(const char *dir, struct events *out);
static size_t session_start(const struct events *e, int64_t since_ms, int64_t gap_ms);
static void bump(json_t *obj, const char *key, json_int_t by);
static const char *miss_cause(struct whyx *x, const struct journal_event *ev);
static json_t *build_report(const char *dir, const struct events *e, size_t from);
static void add_slowest(json_t *slow, const struct journal_event *ev, const char *cause);
static void print_text(json_t *r);
static void print_markdown(json_t *r);
static json_int_t ival(json_t *o, const char *path);
static void bump_lang(json_t *r, const struct journal_event *ev);
static void print_langs(json_t *r, const char *head, const char *sep, const char *end);
static int why_parse_args(int argc, char **argv, const char **crate, int *json);
static void why_print(const struct why_rec *m, const struct why_list *l, int json);

static void
on_event(const struct journal_event *ev, void *arg)
{
	struct events *e = arg;

	e->v = xrealloc(e->v, (e->n + 1) * sizeof *e->v);
	e->v[e->n++] = *ev;
}

/* Rotated journal files by their number: events.2 before events.10. */
static int
cmp_ext(const void *a, const void *b)
{
	unsigned long x = strtoul(strrchr(*(char *const *)a, '.') + 1, NULL, 10);
	unsigned long y = strtoul(strrchr(*(char *const *)b, '.') + 1, NULL, 10);

	return x < y ? -1 : x > y;
}

/* Every record still in the journal (rotated files first), oldest first. */
static void
load_journal(const char *dir, struct events *out)
{
	char *jdir = xasprintf("%s/journal", dir);
	struct strv files;
	DIR *d;
	struct dirent *de;

	strv_init(&files);
	if ((d = opendir(jdir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, "events.", 7) == 0 &&
			    !str_ends_with(de->d_name, ".done"))
				strv_push_owned(&files, xasprintf("%s/%s", jdir, de->d_name));
		closedir(d);
	}
	if (files.n > 0)
		if (files.n > 1) /* an empty array may be NULL */
			qsort(files.v, files.n, sizeof *files.v, cmp_ext);
	strv_push_owned(&files, xasprintf("%s/events", jdir));
	for (size_t i = 0; i < files.n; i++) {
		struct buf b;

		buf_init(&b);
		if (fs_read_file(files.v[i], &b, REPORT_JOURNAL_MAX) == 0)
			journal_parse(b.p ? b.p : "", b.len, on_event, out);
		buf_free(&b);
	}
	strv_free(&files);
	free(jdir);
}

/* The first event of the session: the first at or after since_ms when given,
 * else the one after the newest pause longer than gap_ms. */
static size_t
session_start(const struct events *e, int64_t since_ms, int64_t gap_ms)
{
	size_t i;

	if (since_ms > 0) {
		for (i = 0; i < e->n && e->v[i].ts_ms < since_ms; i++)
			;
		return i;
	}
	for (i = e->n; i > 1; i--)
		if (e->v[i - 1].ts_ms - e->v[i - 2].ts_ms > gap_ms)
			return i - 1;
	return 0;
}

static void
bump(json_t *obj, const char *key, json_int_t by)
{
	json_t *v = json_object_get(obj, key);

	json_object_set_new(obj, key, json_integer((v ? json_integer_value(v) : 0) + by));
}

/* A miss's cause: from its why record, else the journal's reason. */
static const char *
miss_cause(struct whyx *x, const struct journal_event *ev)
{
	static char word[32];
	const struct why_rec *r;
	struct why_list l = { NULL, 0 };

	if (ev->reason[0] != '\0')
		return ev->reason; /* compile-failed, or why it was not stored */
	if (ev->lang[0] != '\0')
		return "c-no-why-record"; /* C compiles keep no key parts (docs/design.md) */
	if (!ev->has_inv || (r = whyx_find(x, ev->crate, ev->inv, ev->ts_ms)) == NULL)
		return "unknown";
	whyx_explain(x, r, &l);
	snprintf(word, sizeof word, "%s", whyx_cause(&l));
	whyx_list_clear(&l);
	return word;
}

static void
add_slowest(json_t *slow, const struct journal_event *ev, const char *cause)
{
	size_t n = json_array_size(slow), at;

	for (at = 0; at < n; at++)
		if (ival(json_array_get(slow, at), "ms") < (json_int_t)ev->ms)
			break;
	if (at >= REPORT_SLOWEST)
		return;
	json_array_insert_new(slow, at,
	    json_pack("{s:s, s:I, s:I, s:s}", "crate", ev->crate, "ms", (json_int_t)ev->ms, "ts",
	        (json_int_t)ev->ts_ms, "cause", cause));
	if (json_array_size(slow) > REPORT_SLOWEST)
		json_array_remove(slow, REPORT_SLOWEST);
}

const char *
report_hit_kind(json_t *pre, const struct journal_event *ev)
{
	char hex[HASH_HEX_LEN + 1] = "";

	if (ev->has_res)
		hash_to_hex(ev->res, hex);
	if (ev->type == JOURNAL_IMPORT) {
		if (hex[0] && journal_import_is_prefetch(ev->reason))
			json_object_set_new(pre, hex, json_true());
		return NULL;
	}
	if (ev->type == JOURNAL_REMOTE_HIT || ev->type == JOURNAL_MISS) {
		if (hex[0])
			json_object_del(pre, hex); /* used otherwise first */
		return ev->type == JOURNAL_REMOTE_HIT ? "remote" : NULL;
	}
	if (ev->type != JOURNAL_HIT)
		return NULL;
	if (hex[0] && json_object_get(pre, hex) != NULL) {
		json_object_del(pre, hex);
		return "prefetched";
	}
	return "local";
}

/* languages.<rust|c|c++|asm>.<hits|misses|pass_throughs|errors> += 1 for a
 * compile record. */
static void
bump_lang(json_t *r, const struct journal_event *ev)
{
	const char *what = ev->type == JOURNAL_HIT || ev->type == JOURNAL_REMOTE_HIT ? "hits" :
	    ev->type == JOURNAL_MISS                                                 ? "misses" :
	    ev->type == JOURNAL_PASS  ? "pass_throughs" :
	    ev->type == JOURNAL_ERROR ? "errors" :
	                                NULL;
	json_t *langs = json_object_get(r, "languages"), *l;

	if (what == NULL)
		return;
	if ((l = json_object_get(langs, journal_lang(ev))) == NULL) {
		l = json_pack("{s:i, s:i, s:i, s:i}", "hits", 0, "misses", 0, "pass_throughs", 0,
		    "errors", 0);
		json_object_set_new(langs, journal_lang(ev), l);
	}
	bump(l, what, 1);
}

/* The report document (schema 1, docs/report.schema.json) over e->v[from..]. */
static json_t *
build_report(const char *dir, const struct events *e, size_t from)
{
	json_t *r =
	    json_pack("{s:i, s:I, s:I, s:I, s:{s:i, s:i, s:i}, s:{s:i, s:{}}, s:{s:i, s:{}}, "
	              "s:i, s:i, s:i, s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:[], s:{}}",
	        "schema", 1, "from_ms", (json_int_t)(from < e->n ? e->v[from].ts_ms : 0), "to_ms",
	        (json_int_t)(e->n ? e->v[e->n - 1].ts_ms : 0), "compiles",
	        (json_int_t)(e->n - from), "hits", "local", 0, "prefetched", 0, "remote", 0,
	        "misses", "total", 0, "by_cause", "pass_throughs", "total", 0, "by_reason",
	        "errors", 0, "corrupt", 0, "rejected", 0, "time_saved_ms", (json_int_t)0,
	        "compile_ms", (json_int_t)0, "kache_ms", (json_int_t)0, "bytes", "restored",
	        (json_int_t)0, "fetched", (json_int_t)0, "stored", (json_int_t)0, "slowest_misses",
	        "languages");
	struct whyx *x = whyx_new(dir);
	json_t *pre = json_object();
	uint64_t us = 0;

	for (size_t i = 0; i < from; i++) /* imports before the session, and their uses */
		report_hit_kind(pre, &e->v[i]);
	for (size_t i = from; i < e->n; i++) {
		const struct journal_event *ev = &e->v[i];
		json_t *hits = json_object_get(r, "hits"), *b = json_object_get(r, "bytes");
		const char *cause;

		us += ev->us;
		bump_lang(r, ev);
		switch (ev->type) {
		case JOURNAL_HIT:
		case JOURNAL_REMOTE_HIT:
			bump(hits, report_hit_kind(pre, ev), 1);
			bump(r, "time_saved_ms", (json_int_t)ev->ms);
			bump(b, ev->type == JOURNAL_HIT ? "restored" : "fetched",
			    (json_int_t)ev->bytes);
			break;
		case JOURNAL_MISS:
			cause = miss_cause(x, ev);
			bump(json_object_get(r, "misses"), "total", 1);
			bump(json_object_get(json_object_get(r, "misses"), "by_cause"), cause, 1);
			bump(r, "compile_ms", (json_int_t)ev->ms);
			bump(b, "stored", (json_int_t)ev->bytes);
			add_slowest(json_object_get(r, "slowest_misses"), ev, cause);
			break;
		case JOURNAL_PASS:
			bump(json_object_get(r, "pass_throughs"), "total", 1);
			bump(json_object_get(json_object_get(r, "pass_throughs"), "by_reason"),
			    ev->reason[0] ? ev->reason : "unknown", 1);
			break;
		case JOURNAL_ERROR: bump(r, "errors", 1); break;
		case JOURNAL_CORRUPT: bump(r, "corrupt", 1); break;
		case JOURNAL_REJECTED: bump(r, "rejected", 1); break;
		case JOURNAL_IMPORT: report_hit_kind(pre, ev); break;
		}
	}
	json_object_set_new(r, "kache_ms", json_integer((json_int_t)(us / 1000)));
	json_object_set_new(r, "compiles",
	    json_integer(ival(r, "hits.local") + ival(r, "hits.prefetched") +
	        ival(r, "hits.remote") + ival(r, "misses.total") + ival(r, "pass_throughs.total") +
	        ival(r, "errors")));
	whyx_free(&x);
	json_decref(pre);
	return r;
}

/* An integer member by dotted path ("hits.local"); 0 when absent. */
static json_int_t
ival(json_t *o, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.')) != NULL && o != NULL) {
		snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	return o ? json_integer_value(json_object_get(o, path)) : 0;
}

static void
print_text(json_t *r)
{
	const char *k;
	json_t *v;
	size_t i;
	char sz[3][32];

	format_size((uint64_t)ival(r, "bytes.restored"), sz[0], sizeof sz[0]);
	format_size((uint64_t)ival(r, "bytes.fetched"), sz[1], sizeof sz[1]);
	format_size((uint64_t)ival(r, "bytes.stored"), sz[2], sizeof sz[2]);
	printf("compiles: %lld\n", (long long)ival(r, "compiles"));
	printf("hits: %lld local, %lld prefetched, %lld remote\n", (long long)ival(r, "hits.local"),
	    (long long)ival(r, "hits.prefetched"), (long long)ival(r, "hits.remote"));
	printf("misses: %lld\n", (long long)ival(r, "misses.total"));
	json_object_foreach(json_object_get(json_object_get(r, "misses"), "by_cause"), k, v)
		printf("  %s: %lld\n", k, (long long)json_integer_value(v));
	printf("pass-throughs: %lld\n", (long long)ival(r, "pass_throughs.total"));
	json_object_foreach(json_object_get(json_object_get(r, "pass_throughs"), "by_reason"), k, v)
		printf("  %s: %lld\n", k, (long long)json_integer_value(v));
	printf("errors: %lld, corrupt: %lld, rejected: %lld\n", (long long)ival(r, "errors"),
	    (long long)ival(r, "corrupt"), (long long)ival(r, "rejected"));
	printf("time saved: %.1f s (compiling: %.1f s, kache itself: %.1f s)\n",
	    (double)ival(r, "time_saved_ms") / 1000, (double)ival(r, "compile_ms") / 1000,
	    (double)ival(r, "kache_ms") / 1000);
	printf("bytes: %s restored, %s fetched, %s stored\n", sz[0], sz[1], sz[2]);
	print_langs(r, "by language: ", "; ", "\n");
	if (json_array_size(json_object_get(r, "slowest_misses")) > 0)
		printf("slowest misses:\n");
	json_array_foreach(json_object_get(r, "slowest_misses"), i, v)
		printf("  %-24s %8.1f s  %s\n", json_string_value(json_object_get(v, "crate")),
		    (double)ival(v, "ms") / 1000, json_string_value(json_object_get(v, "cause")));
}

/* "rust 10 hits, 2 misses, 1 pass-throughs, 0 errors; c ..." in the order
 * rust, c, c++, asm; nothing when no compile was counted. */
static void
print_langs(json_t *r, const char *head, const char *sep, const char *end)
{
	static const char *const order[] = { "rust", "c", "c++", "asm" };
	json_t *langs = json_object_get(r, "languages");
	int n = 0;

	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		json_t *l = json_object_get(langs, order[i]);

		if (l == NULL)
			continue;
		printf("%s%s %lld hits, %lld misses, %lld pass-throughs, %lld errors",
		    n++ ? sep : head, order[i], (long long)ival(l, "hits"),
		    (long long)ival(l, "misses"), (long long)ival(l, "pass_throughs"),
		    (long long)ival(l, "errors"));
	}
	if (n > 0)
		printf("%s", end);
}

/* GitHub-flavoured markdown for a CI job summary ($GITHUB_STEP_SUMMARY). */
static void
print_markdown(json_t *r)
{
	const char *k;
	json_t *v;
	size_t i;
	json_int_t c = ival(r, "compiles"),
	           h = ival(r, "hits.local") + ival(r, "hits.prefetched") + ival(r, "hits.remote");

	printf("### kache: %lld of %lld compiles from the cache\n\n", (long long)h, (long long)c);
	printf("| | count |\n|---|---:|\n");
	printf("| hits (local) | %lld |\n| hits (prefetched) | %lld |\n| hits (remote) | %lld |\n",
	    (long long)ival(r, "hits.local"), (long long)ival(r, "hits.prefetched"),
	    (long long)ival(r, "hits.remote"));
	printf("| misses | %lld |\n", (long long)ival(r, "misses.total"));
	json_object_foreach(json_object_get(json_object_get(r, "misses"), "by_cause"), k, v)
		printf("| &nbsp;&nbsp;miss: %s | %lld |\n", k, (long long)json_integer_value(v));
	printf("| pass-throughs | %lld |\n", (long long)ival(r, "pass_throughs.total"));
	json_object_foreach(json_object_get(json_object_get(r, "pass_throughs"), "by_reason"), k, v)
		printf("| &nbsp;&nbsp;pass: %s | %lld |\n", k, (long long)json_integer_value(v));
	printf("| errors | %lld |\n\n", (long long)ival(r, "errors"));
	printf("Time saved: **%.1f s**; compiling took %.1f s; bytes restored %lld, fetched %lld, "
	       "stored %lld.\n",
	    (double)ival(r, "time_saved_ms") / 1000, (double)ival(r, "compile_ms") / 1000,
	    (long long)ival(r, "bytes.restored"), (long long)ival(r, "bytes.fetched"),
	    (long long)ival(r, "bytes.stored"));
	print_langs(r, "\nBy language: ", "; ", ".\n");
	if (json_array_size(json_object_get(r, "slowest_misses")) == 0)
		return;
	printf("\n| slowest misses | s | cause |\n|---|---:|---|\n");
	json_array_foreach(json_object_get(r, "slowest_misses"), i, v)
		printf("| `%s` | %.1f | %s |\n", json_string_value(json_object_get(v, "crate")),
		    (double)ival(v, "ms") / 1000, json_string_value(json_object_get(v, "cause")));
}

int
cmd_report(int argc, char **argv)
{
	const char *format = "text";
	int64_t since = 0, gap;
	struct config *cfg;
	struct events e = { NULL, 0 };
	json_t *r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--since") == 0 && i + 1 < argc &&
		    parse_duration(argv[i + 1], &since) == 0 && since > 0) {
			i++;
		} else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc &&
		    (strcmp(argv[i + 1], "text") == 0 || strcmp(argv[i + 1], "json") == 0 ||
		        strcmp(argv[i + 1], "markdown") == 0)) {
			format = argv[++i];
		} else {
			fprintf(stderr,
			    "usage: kache report [--since DURATION] "
			    "[--format text|json|markdown]\n"
			    "DURATION: 90s, 10m, 1h\n");
			return EXIT_USAGE;
		}
	}
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	gap = config_get_duration(cfg, "prefetch.cooldown");
	load_journal(config_get(cfg, "cache.dir"), &e);
	r = build_report(config_get(cfg, "cache.dir"), &e,
	    session_start(&e, since > 0 ? clock_wall_ms() - since : 0, gap));
	if (strcmp(format, "json") == 0) {
		json_dumpf(r, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else if (strcmp(format, "markdown") == 0) {
		print_markdown(r);
	} else {
		print_text(r);
	}
	json_decref(r);
	free(e.v);
	config_free(&cfg);
	return 0;
}

static int
why_parse_args(int argc, char **argv, const char **crate, int *json)
{
	*crate = NULL;
	*json = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			*json = 1;
		else if (*crate == NULL && argv[i][0] != '-')
			*crate = argv[i];
		else
			*crate = NULL, i = argc;
	}
	if (*crate != NULL && why_crate_valid(*crate))
		return 0;
	fprintf(stderr,
	    "usage: kache why-miss CRATE [--json]\n"
	    "CRATE: a crate name as rustc knows it (fixture_core, not fixture-core)\n");
	return -1;
}

static void
why_print(const struct why_rec *m, const struct why_list *l, int json)
{
	json_t *doc, *causes;

	if (!json) {
		for (size_t i = 0; i < l->n; i++)
			printf("%*s%s%s%s\n", 2 * l->v[i].depth, "",
			    l->v[i].depth ? l->v[i].crate : "", l->v[i].depth ? ": " : "",
			    l->v[i].message);
		return;
	}
	causes = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(causes,
		    json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "crate", l->v[i].crate, "depth",
		        l->v[i].depth, "part", l->v[i].part, "change", l->v[i].change, "name",
		        l->v[i].name, "message", l->v[i].message));
	doc = json_pack("{s:i, s:s, s:I, s:s, s:o}", "schema", 1, "crate", m->crate, "ts",
	    (json_int_t)m->ts_ms, "cause", whyx_cause(l), "causes", causes);
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	putchar('\n');
	json_decref(doc);
}

int
cmd_why_miss(int argc, char **argv)
{
	const char *crate;
	struct config *cfg;
	struct whyx *x;
	const struct why_rec *m;
	struct why_list l = { NULL, 0 };
	int json, rc = 0;

	if (why_parse_args(argc, argv, &crate, &json) < 0)
		return EXIT_USAGE;
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	x = whyx_new(config_get(cfg, "cache.dir"));
	if ((m = whyx_find(x, crate, NULL, 0)) == NULL) {
		fprintf(stderr,
		    "kache: no miss of %s is recorded in %s/%s (a stored miss records "
		    "why it missed; check the crate name: `kache list`)\n",
		    crate, config_get(cfg, "cache.dir"), WHY_DIR);
		rc = 1;
	} else {
		whyx_explain(x, m, &l);
		why_print(m, &l, json);
		whyx_list_clear(&l);
	}
	whyx_free(&x);
	config_free(&cfg);
	return rc;
}
