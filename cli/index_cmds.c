/* kache stats | gc | list | purge | verify: thin shells over index/. Each opens
 * the store named by cache.dir, which takes the index lock for the command. */
#include "cli/index_cmds.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "common/config.h"
#include "index/index.h"

static struct index *open_index(struct config **cfgp);
static int want_json(int argc, char **argv, int *json, const char **arg);
static void print_stats_text(const struct index_stats *st);
static void print_stats_json(const struct index_stats *st);
static double hit_rate(const struct index_stats *st);
static void format_time(int64_t ms, char *out, size_t n);
static int list_text_cb(const struct index_entry_info *e, void *arg);
static int list_json_cb(const struct index_entry_info *e, void *arg);
static void gc_cb(const struct index_entry_info *e, void *arg);
static void verify_cb(const char *what, const char *hex, void *arg);

/* Loads the config and opens the index of cache.dir; prints why not on failure. */
static struct index *
open_index(struct config **cfgp)
{
	struct buf warnings;
	struct index *ix;
	const char *dir;

	buf_init(&warnings);
	*cfgp = config_load(&warnings);
	if (warnings.len)
		fprintf(stderr, "kache: warning: %s", warnings.p);
	buf_free(&warnings);
	dir = config_get(*cfgp, "cache.dir");
	ix = index_open(dir);
	if (ix == NULL && errno == EBUSY)
		fprintf(stderr, "kache: another kache command or the supervisor holds the "
		    "index of %s; try again\n", dir);
	else if (ix == NULL)
		fprintf(stderr, "kache: cannot open the index of %s\n", dir);
	else if (index_was_rebuilt(ix))
		fprintf(stderr, "kache: the index was damaged; rebuilt it from the store (old "
		    "copy: %s/index.broken); counters restart from what the journal still "
		    "holds\n", dir);
	if (ix == NULL)
		config_free(cfgp);
	return ix;
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

static double
hit_rate(const struct index_stats *st)
{
	uint64_t h = st->hits + st->remote_hits, all = h + st->misses;

	return all ? (double)h / (double)all : 0.0;
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
print_stats_text(const struct index_stats *st)
{
	char a[32], b[32], since[32];

	format_time(st->since_ms, since, sizeof since);
	printf("hits                %llu (local %llu, remote %llu)\n",
	    (unsigned long long)(st->hits + st->remote_hits), (unsigned long long)st->hits,
	    (unsigned long long)st->remote_hits);
	printf("misses              %llu\n", (unsigned long long)st->misses);
	printf("hit rate            %.1f%%\n", 100.0 * hit_rate(st));
	printf("pass-throughs       %llu\n", (unsigned long long)st->passes);
	for (size_t i = 0; i < st->n_pass_reasons; i++)
		printf("  %-17s %llu\n", st->pass_reasons[i].reason,
		    (unsigned long long)st->pass_reasons[i].count);
	printf("errors              %llu\n", (unsigned long long)st->errors);
	for (size_t i = 0; i < st->n_error_reasons; i++)
		printf("  %-17s %llu\n", st->error_reasons[i].reason,
		    (unsigned long long)st->error_reasons[i].count);
	printf("corrupt found       %llu\n", (unsigned long long)st->corrupt);
	format_size(st->store_bytes, a, sizeof a);
	printf("entries             %llu\n", (unsigned long long)st->entries);
	printf("store size          %s\n", a);
	format_size(st->bytes_restored, b, sizeof b);
	printf("bytes restored      %s\n", b);
	printf("compile time saved  %.1f s\n", (double)st->ms_saved / 1e3);
	printf("time in kache       %.3f s\n", (double)st->kache_us / 1e6);
	printf("counting since      %s\n", since);
}

static json_t *
reasons_json(const struct index_reason *r, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, r[i].reason, json_integer((json_int_t)r[i].count));
	return o;
}

static void
print_stats_json(const struct index_stats *st)
{
	json_t *o = json_object();

	json_object_set_new(o, "hits", json_integer((json_int_t)st->hits));
	json_object_set_new(o, "remote_hits", json_integer((json_int_t)st->remote_hits));
	json_object_set_new(o, "misses", json_integer((json_int_t)st->misses));
	json_object_set_new(o, "hit_rate", json_real(hit_rate(st)));
	json_object_set_new(o, "passes", json_integer((json_int_t)st->passes));
	json_object_set_new(o, "pass_reasons", reasons_json(st->pass_reasons, st->n_pass_reasons));
	json_object_set_new(o, "errors", json_integer((json_int_t)st->errors));
	json_object_set_new(o, "error_reasons",
	    reasons_json(st->error_reasons, st->n_error_reasons));
	json_object_set_new(o, "corrupt", json_integer((json_int_t)st->corrupt));
	json_object_set_new(o, "entries", json_integer((json_int_t)st->entries));
	json_object_set_new(o, "store_bytes", json_integer((json_int_t)st->store_bytes));
	json_object_set_new(o, "bytes_restored", json_integer((json_int_t)st->bytes_restored));
	json_object_set_new(o, "ms_saved", json_integer((json_int_t)st->ms_saved));
	json_object_set_new(o, "compile_ms", json_integer((json_int_t)st->compile_ms));
	json_object_set_new(o, "kache_us", json_integer((json_int_t)st->kache_us));
	json_object_set_new(o, "since_ms", json_integer((json_int_t)st->since_ms));
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	putchar('\n');
	json_decref(o);
}

int
cmd_stats(int argc, char **argv)
{
	struct index_stats st;
	struct config *cfg;
	struct index *ix;
	int json, rc = 1;

	if (want_json(argc, argv, &json, NULL) != 0) {
		fprintf(stderr, "usage: kache stats [--json]\n");
		return EXIT_USAGE;
	}
	if ((ix = open_index(&cfg)) == NULL)
		return 1;
	if (index_ingest(ix) < 0)
		fprintf(stderr, "kache: warning: could not read the whole journal\n");
	if (index_stats(ix, &st) == 0) {
		if (json)
			print_stats_json(&st);
		else
			print_stats_text(&st);
		rc = 0;
	}
	index_stats_clear(&st);
	index_free(&ix);
	config_free(&cfg);
	return rc;
}

static int
list_text_cb(const struct index_entry_info *e, void *arg)
{
	char hex[HASH_HEX_LEN + 1], size[32], when[32];

	(void)arg;
	hash_to_hex(e->key, hex);
	format_size(e->size, size, sizeof size);
	format_time(e->last_use_ms, when, sizeof when);
	printf("%-24s %.16s %10s  %s %6llu\n", e->crate[0] ? e->crate : "-", hex, size, when,
	    (unsigned long long)e->hits);
	return 0;
}

static int
list_json_cb(const struct index_entry_info *e, void *arg)
{
	char hex[HASH_HEX_LEN + 1];
	json_t *o = json_object();

	hash_to_hex(e->key, hex);
	json_object_set_new(o, "crate", json_string(e->crate));
	json_object_set_new(o, "key", json_string(hex));
	json_object_set_new(o, "size", json_integer((json_int_t)e->size));
	json_object_set_new(o, "created_ms", json_integer((json_int_t)e->created_ms));
	json_object_set_new(o, "last_use_ms", json_integer((json_int_t)e->last_use_ms));
	json_object_set_new(o, "hits", json_integer((json_int_t)e->hits));
	json_array_append_new(arg, o);
	return 0;
}

int
cmd_list(int argc, char **argv)
{
	struct config *cfg;
	struct index *ix;
	const char *crate;
	json_t *arr = NULL;
	int json, rc;

	if (want_json(argc, argv, &json, &crate) != 0) {
		fprintf(stderr, "usage: kache list [CRATE] [--json]\n");
		return EXIT_USAGE;
	}
	if ((ix = open_index(&cfg)) == NULL)
		return 1;
	index_ingest(ix);
	if (json)
		arr = json_array();
	else
		printf("%-24s %-16s %10s  %-16s %6s\n", "CRATE", "KEY", "SIZE", "LAST USE",
		    "HITS");
	rc = index_list(ix, crate, json ? list_json_cb : list_text_cb, arr);
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(arr);
	}
	index_free(&ix);
	config_free(&cfg);
	return rc < 0 ? 1 : 0;
}

static void
gc_cb(const struct index_entry_info *e, void *arg)
{
	char hex[HASH_HEX_LEN + 1], size[32];

	if (!*(int *)arg)
		return;
	hash_to_hex(e->key, hex);
	format_size(e->size, size, sizeof size);
	printf("removed %s %.16s (%s)\n", e->crate[0] ? e->crate : "-", hex, size);
}

int
cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = { { "max-size", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' }, { NULL, 0, NULL, 0 } };
	struct index_gc_result r;
	struct config *cfg;
	struct index *ix;
	int64_t cap = -1;
	int c, verbose = 0, rc;
	char fr[32], now[32], cs[32];

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:v", opts, NULL)) != -1) {
		if (c == 's' && (cap = parse_size(optarg)) < 0) {
			fprintf(stderr, "kache: --max-size: '%s' is not a size\n", optarg);
			return EXIT_USAGE;
		} else if (c == 'v') {
			verbose = 1;
		} else if (c != 's') {
			fprintf(stderr, "usage: kache gc [--max-size SIZE] [-v]\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: kache gc [--max-size SIZE] [-v]\n");
		return EXIT_USAGE;
	}
	if ((ix = open_index(&cfg)) == NULL)
		return 1;
	if (cap < 0 && (cap = config_get_size(cfg, "cache.max_size")) < 0) {
		fprintf(stderr, "kache: cache.max_size is not a size; using 10G\n");
		cap = 10LL << 30;
	}
	rc = index_gc(ix, (uint64_t)cap, &r, gc_cb, &verbose);
	format_size(r.bytes_freed, fr, sizeof fr);
	format_size(r.size_after, now, sizeof now);
	format_size((uint64_t)cap, cs, sizeof cs);
	printf("gc: removed %llu entries, %llu blobs, %llu manifests, %llu stale tmp files, "
	    "%llu unreferenced blobs; freed %s; store now %s (cap %s)\n",
	    (unsigned long long)r.entries_removed, (unsigned long long)r.blobs_removed,
	    (unsigned long long)r.manifests_removed, (unsigned long long)r.tmp_removed,
	    (unsigned long long)r.orphans_removed, fr, now, cs);
	index_free(&ix);
	config_free(&cfg);
	return rc < 0 ? 1 : 0;
}

int
cmd_purge(int argc, char **argv)
{
	struct index_purge_result r;
	struct config *cfg;
	struct index *ix;
	char fr[32];
	int rc;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: kache purge\n");
		return EXIT_USAGE;
	}
	if ((ix = open_index(&cfg)) == NULL)
		return 1;
	rc = index_purge(ix, &r);
	format_size(r.bytes_freed, fr, sizeof fr);
	printf("purge: removed %llu entries and %llu blobs; freed %s\n",
	    (unsigned long long)r.entries, (unsigned long long)r.blobs, fr);
	index_free(&ix);
	config_free(&cfg);
	return rc < 0 ? 1 : 0;
}

static void
verify_cb(const char *what, const char *hex, void *arg)
{
	(void)arg;
	printf("%s: %s\n", what, hex);
}

int
cmd_verify(int argc, char **argv)
{
	struct index_verify_result r;
	struct config *cfg;
	struct index *ix;
	char sz[32];
	long n;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: kache verify\n");
		return EXIT_USAGE;
	}
	if ((ix = open_index(&cfg)) == NULL)
		return 1;
	n = index_verify(ix, &r, verify_cb, NULL);
	format_size(r.bytes_checked, sz, sizeof sz);
	printf("verify: checked %llu blobs (%s): %llu corrupt blobs, %llu undecodable entries, "
	    "%llu entries removed for missing blobs\n", (unsigned long long)r.blobs_checked, sz,
	    (unsigned long long)r.blobs_corrupt, (unsigned long long)r.entries_corrupt,
	    (unsigned long long)r.entries_removed);
	index_free(&ix);
	config_free(&cfg);
	if (n < 0)
		fprintf(stderr, "kache: verify did not finish\n");
	return n != 0 ? 1 : 0;
}
