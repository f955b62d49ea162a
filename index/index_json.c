/* JSON documents over the index, shared by the CLI and the supervisor. */
#include "index/index_json.h"

#include <stdio.h>
#include <string.h>

struct list_ctx {
	json_t *arr;
	size_t skip, max;
	int more;
};

struct gc_ctx {
	json_t *removed;
	size_t max;
	uint64_t more;
};

static double hit_rate(const struct index_stats *st);
static json_t *reasons_json(const struct index_reason *r, size_t n);
static json_t *langs_json(const struct index_reason *r, size_t n);
static int list_cb(const struct index_entry_info *e, void *arg);
static void gc_cb(const struct index_entry_info *e, void *arg);

static double
hit_rate(const struct index_stats *st)
{
	uint64_t h = st->hits + st->remote_hits, all = h + st->misses;

	return all ? (double)h / (double)all : 0.0;
}

static json_t *
reasons_json(const struct index_reason *r, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, r[i].reason, json_integer((json_int_t)r[i].count));
	return o;
}

uint64_t
index_json_u64(const json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) :
	                                                         0;
}

#define SET_INT(o, name, v) json_object_set_new((o), (name), json_integer((json_int_t)(v)))

/* {"rust": {"hits": n, "misses": n, "passes": n, "errors": n}, "c": ...}
 * from the lang.<language>.<what> counters; a language appears once counted. */
static json_t *
langs_json(const struct index_reason *r, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++) {
		const char *dot = strrchr(r[i].reason, '.');
		char lang[16];
		json_t *l;

		if (dot == NULL || dot == r[i].reason || (size_t)(dot - r[i].reason) >= sizeof lang)
			continue;
		snprintf(lang, sizeof lang, "%.*s", (int)(dot - r[i].reason), r[i].reason);
		if ((l = json_object_get(o, lang)) == NULL) {
			l = json_pack("{s:I,s:I,s:I,s:I}", "hits", (json_int_t)0, "misses",
			    (json_int_t)0, "passes", (json_int_t)0, "errors", (json_int_t)0);
			json_object_set_new(o, lang, l);
		}
		if (json_object_get(l, dot + 1) != NULL)
			json_object_set_new(l, dot + 1, json_integer((json_int_t)r[i].count));
	}
	return o;
}

json_t *
index_json_stats(struct index *ix)
{
	struct index_stats st;
	json_t *o;

	if (index_stats(ix, &st) != 0) {
		index_stats_clear(&st);
		return NULL;
	}
	o = json_object();
	SET_INT(o, "hits", st.hits);
	SET_INT(o, "local_hits", st.hits - st.prefetched_hits);
	SET_INT(o, "prefetched_hits", st.prefetched_hits);
	SET_INT(o, "remote_hits", st.remote_hits);
	SET_INT(o, "prefetch_imported", st.prefetch_imported);
	json_object_set_new(o, "prefetch_imported_from",
	    json_pack("{s:I, s:I, s:I, s:I}", "planner", (json_int_t)st.prefetch_imported_from[0],
	        "exact_session", (json_int_t)st.prefetch_imported_from[1], "closest_session",
	        (json_int_t)st.prefetch_imported_from[2], "packs",
	        (json_int_t)st.prefetch_imported_from[3]));
	SET_INT(o, "fetch_imported", st.fetch_imported);
	SET_INT(o, "misses", st.misses);
	json_object_set_new(o, "hit_rate", json_real(hit_rate(&st)));
	SET_INT(o, "passes", st.passes);
	json_object_set_new(o, "pass_reasons", reasons_json(st.pass_reasons, st.n_pass_reasons));
	SET_INT(o, "errors", st.errors);
	json_object_set_new(o, "error_reasons", reasons_json(st.error_reasons, st.n_error_reasons));
	SET_INT(o, "corrupt", st.corrupt);
	SET_INT(o, "kept_local", st.kept_local);
	SET_INT(o, "rejected", st.rejected);
	json_object_set_new(o, "rejected_reasons",
	    reasons_json(st.rejected_reasons, st.n_rejected_reasons));
	SET_INT(o, "entries", st.entries);
	SET_INT(o, "store_bytes", st.store_bytes);
	SET_INT(o, "bytes_restored", st.bytes_restored);
	SET_INT(o, "ms_saved", st.ms_saved);
	SET_INT(o, "compile_ms", st.compile_ms);
	SET_INT(o, "kache_us", st.kache_us);
	SET_INT(o, "since_ms", st.since_ms);
	json_object_set_new(o, "languages", langs_json(st.lang_counts, st.n_lang_counts));
	index_stats_clear(&st);
	return o;
}

json_t *
index_json_entry(const struct index_entry_info *e)
{
	char hex[HASH_HEX_LEN + 1];
	json_t *o = json_object();

	hash_to_hex(e->key, hex);
	json_object_set_new(o, "crate", json_string(e->crate));
	json_object_set_new(o, "key", json_string(hex));
	SET_INT(o, "size", e->size);
	SET_INT(o, "created_ms", e->created_ms);
	SET_INT(o, "last_use_ms", e->last_use_ms);
	SET_INT(o, "hits", e->hits);
	return o;
}

static int
list_cb(const struct index_entry_info *e, void *arg)
{
	struct list_ctx *c = arg;

	if (c->skip > 0) {
		c->skip--;
		return 0;
	}
	if (json_array_size(c->arr) >= c->max) {
		c->more = 1;
		return 1;
	}
	json_array_append_new(c->arr, index_json_entry(e));
	return 0;
}

json_t *
index_json_list(struct index *ix, const char *crate, size_t offset, size_t max, int *more)
{
	struct list_ctx c = { json_array(), offset, max, 0 };

	if (index_list(ix, crate, list_cb, &c) < 0) {
		json_decref(c.arr);
		return NULL;
	}
	if (more)
		*more = c.more;
	return c.arr;
}

static void
gc_cb(const struct index_entry_info *e, void *arg)
{
	struct gc_ctx *c = arg;
	char hex[HASH_HEX_LEN + 1];
	json_t *o;

	if (json_array_size(c->removed) >= c->max) {
		c->more++;
		return;
	}
	hash_to_hex(e->key, hex);
	o = json_object();
	json_object_set_new(o, "crate", json_string(e->crate));
	json_object_set_new(o, "key", json_string(hex));
	SET_INT(o, "size", e->size);
	json_array_append_new(c->removed, o);
}

json_t *
index_json_gc(struct index *ix, uint64_t cap, int64_t unused_ms, int verbose, size_t max_removed,
    const struct index_progress *pg)
{
	struct gc_ctx c = { json_array(), max_removed, 0 };
	struct index_gc_result r;
	json_t *o = json_object();
	int rc;

	memset(&r, 0, sizeof r);
	rc = index_gc(ix, cap, unused_ms, &r, verbose ? gc_cb : NULL, &c, pg);
	json_object_set_new(o, "ok", json_boolean(rc == 0));
	SET_INT(o, "cap", cap);
	SET_INT(o, "unused_ms", unused_ms > 0 ? unused_ms : 0);
	SET_INT(o, "size_before", r.size_before);
	SET_INT(o, "size_after", r.size_after);
	SET_INT(o, "entries_removed", r.entries_removed);
	SET_INT(o, "blobs_removed", r.blobs_removed);
	SET_INT(o, "bytes_freed", r.bytes_freed);
	SET_INT(o, "manifests_removed", r.manifests_removed);
	SET_INT(o, "tmp_removed", r.tmp_removed);
	SET_INT(o, "orphans_removed", r.orphans_removed);
	SET_INT(o, "memo_removed", r.memo_removed);
	if (verbose) {
		json_object_set_new(o, "removed", c.removed);
		SET_INT(o, "removed_more", c.more);
	} else {
		json_decref(c.removed);
	}
	return o;
}

json_t *
index_json_verify(const struct index_verify_result *r, json_t *problems, long found, long more)
{
	return json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "problems",
	    problems, "problems_more", (json_int_t)more, "found", (json_int_t)found,
	    "blobs_checked", (json_int_t)r->blobs_checked, "bytes_checked",
	    (json_int_t)r->bytes_checked, "entries_checked", (json_int_t)r->entries_checked,
	    "manifests_checked", (json_int_t)r->manifests_checked, "blobs_corrupt",
	    (json_int_t)r->blobs_corrupt, "entries_corrupt", (json_int_t)r->entries_corrupt,
	    "entries_removed", (json_int_t)r->entries_removed, "manifests_corrupt",
	    (json_int_t)r->manifests_corrupt);
}

json_t *
index_json_purge(const struct index_purge_result *r, int ok)
{
	return json_pack("{s:b, s:I, s:I, s:I}", "ok", ok, "entries", (json_int_t)r->entries,
	    "blobs", (json_int_t)r->blobs, "bytes_freed", (json_int_t)r->bytes_freed);
}
