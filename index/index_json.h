/* The JSON documents of the commands over the index (stats, list, gc), built in
 * one place so that `kache stats --json` prints the same document whether it
 * opened the index itself or asked the supervisor that owns it. */
#ifndef KACHE_INDEX_JSON_H
#define KACHE_INDEX_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "index/index.h"

/* At most this many entries per LIST reply, and evicted entries named in a GC
 * reply: each is under 400 bytes of JSON, so a reply stays far below MSG_MAX_SIZE. */
#define INDEX_JSON_PAGE 2000

/* The stats object (hits, misses, hit_rate, ...). NULL when index_stats fails.
 * Does not ingest: callers do that first. */
json_t *index_json_stats(struct index *ix);
/* One list row: crate, key, size, created_ms, last_use_ms, hits. */
json_t *index_json_entry(const struct index_entry_info *e);
/* The entries of crate (NULL: all), most recently used first, skipping the
 * first offset and taking at most max; *more is set when some were left. NULL on
 * failure. */
json_t *index_json_list(struct index *ix, const char *crate, size_t offset, size_t max, int *more);
/* Runs index_gc with cap bytes and unused_ms (0: no age bound) and returns
 * its summary: the index_gc_result fields, "cap", "unused_ms", "ok" (false
 * when gc failed part way), and when verbose a
 * "removed" array of evicted entries (crate, key, size), at most max_removed of
 * them, with "removed_more" counting the rest. pg (may be NULL): index_gc's. */
json_t *index_json_gc(struct index *ix, uint64_t cap, int64_t unused_ms, int verbose,
    size_t max_removed, const struct index_progress *pg);
/* The summary of a verify: "problems" (takes the caller's reference to the
 * array of {what, key}), "problems_more" (found beyond the array), "found"
 * (index_verify's return, -1 when it did not finish) and the
 * index_verify_result fields. */
json_t *index_json_verify(const struct index_verify_result *r, json_t *problems, long found,
    long more);
/* The summary of a purge: "ok" and the index_purge_result fields. */
json_t *index_json_purge(const struct index_purge_result *r, int ok);
/* A uint64 field of o, 0 when missing. */
uint64_t index_json_u64(const json_t *o, const char *name);

#endif
