/* The index: a RocksDB database at <store>/index over the local store, opened
 * read-write by one process at a time (today a CLI command, later the supervisor).
 *
 * It knows every entry (crate, size, created, last use, hits), a reference count
 * per blob so gc removes a blob only when no remaining entry uses it, and the
 * counters folded in from the wrappers' event journal (journal/events).
 *
 * The store is the truth; the index is a cache of it. A lost or damaged index is
 * moved aside and rebuilt by scanning entries/: entries come back (last use and
 * hit counts from the entry files), the journal counters restart from zero. */
#ifndef KACHE_INDEX_H
#define KACHE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

struct index;

/* How long index_open retries when another process holds the index: it takes
 * flock(<store>/index.lock), then RocksDB's own LOCK. */
#define INDEX_LOCK_WAIT_MS 2000
/* The live journal is rotated once it grows past this many bytes. */
#define INDEX_ROTATE_SIZE (8u << 20)
/* A rotated journal is finished and unlinked this long after the rename: a
 * wrapper that opened the file before the rename may still append to it. */
#define INDEX_ROTATE_GRACE_MS 5000
/* gc and verify leave younger files in tmp/ and unreferenced blobs alone. */
#define INDEX_STALE_MS (3600 * 1000)
/* gc removes per-file memos and memo records not written for this long: one
 * for a file long gone (an editor's rename leaves the old inode's behind) is
 * never read again; one still wanted costs one rehash to write anew. */
#define INDEX_MEMO_STALE_MS (30LL * 24 * 3600 * 1000)

/* Opens (creating when missing) the index of the store at store_dir. A damaged
 * index is moved to <store>/index.broken and rebuilt from the store. Returns NULL
 * on failure; errno is EBUSY when another process held the lock throughout. */
struct index *index_open(const char *store_dir);
/* index_open waiting at most wait_ms for the lock (0: one try, without logging
 * the busy lock; for the supervisor, which retries from its tick). */
struct index *index_open_wait(const char *store_dir, int64_t wait_ms);
struct index_progress;
/* index_open telling pg (may be NULL) how far the first build of a missing or
 * damaged index got: "entries scanned", no total (the store is not counted
 * first, so that nothing is read twice). */
struct index *index_open_progress(const char *store_dir, const struct index_progress *pg);
/* On a full disk (RocksDB cannot write) index_open opens the database
 * read-only: index_no_space() is then 1, reads work, index_ingest and
 * index_scan fail with errno ENOSPC without writing, index_gc frees space by
 * removing store files first, index_purge works. With no index at all on a full
 * disk, index_open fails with errno ENOSPC. index_no_space() also turns 1 when
 * a write of a read-write index fails for lack of space. */
int index_no_space(const struct index *ix);
/* Closes and reopens the database: read-write when the disk has room again (0),
 * read-only when it is still full (1), -1 when it cannot be opened. */
int index_reopen(struct index *ix);
/* With this set (the supervisor), index_ingest on a no-space index tries
 * index_reopen first, at most every min_ms, doubling to max_ms while the disk
 * stays full. */
void index_set_space_retry(struct index *ix, int64_t min_ms, int64_t max_ms);
/* Opens the index of an existing store for reading only (a read-only mount, a
 * store another user owns): no lock, no rebuild, nothing written. Only
 * index_stats, index_list and index_json_* may be called on it: no ingest, so
 * the journal's newest records are not counted. NULL when it cannot be read. */
struct index *index_open_readonly(const char *store_dir);
/* Closes the database and frees ix; NULLs the caller's pointer. */
void index_free(struct index **ix);
/* 1 when index_open found the index damaged, moved it aside and rebuilt it from
 * the store: the counters restarted (from what the journal still holds). A
 * missing index is simply created and filled from the store, without this flag. */
int index_was_rebuilt(const struct index *ix);
/* Overrides rotation size and grace (tests, the supervisor). */
void index_set_rotation(struct index *ix, uint64_t size, int64_t grace_ms);
/* Overrides the age past which tmp/ files and unreferenced blobs are stale. */
void index_set_stale_age(struct index *ix, int64_t ms);

/* Gives each blob of the store that this user owns and that lacks it its
 * owner's write bit, once per store (marked done in the index): a kache before
 * 2026-12-03 made blobs read-only, outputs in target/ are hardlinks of blobs,
 * and rustc refuses to replace an output it cannot write (a build with the
 * wrapper off failed). index_open calls it (the supervisor's indexer, or a
 * command with no supervisor running). The number of blobs changed, or -1; a
 * chmod that fails leaves the mark unset, for the next open. */
long index_upgrade_blob_modes(struct index *ix);

/* Folds new complete journal records into the index, remembering how far it got
 * (a torn tail is left for the next call); rotates and retires journal files.
 * Returns the number of records applied, or -1. */
long index_ingest(struct index *ix);
/* Called by index_ingest for each journal record it applies: type is the
 * record's (enum journal_type), res its result key or NULL, prefetched 1 for a
 * hit counted in prefetched_hits. A record whose batch then fails to commit is
 * applied, and reported, again by the next ingest. */
typedef void (*index_record_fn)(int type, const unsigned char *res, int prefetched, void *arg);
void index_set_record_hook(struct index *ix, index_record_fn fn, void *arg);

/* Reconciles the index with entries/ on disk: adds entries it does not know
 * (imported by another process), drops those whose file is gone, removes entry
 * files that do not decode. 0 / -1. */
struct index_scan_result {
	uint64_t added, dropped, corrupt;
};
int index_scan(struct index *ix, struct index_scan_result *r);

struct index_reason {
	char *reason;
	uint64_t count;
};

struct index_stats {
	uint64_t hits, misses, remote_hits, passes, errors, corrupt;
	uint64_t prefetched_hits; /* of hits: first uses of entries prefetch imported */
	uint64_t prefetch_imported, fetch_imported; /* entries imported by each */
	/* of prefetch_imported, by the plan's source (JOURNAL_IMPORT_SOURCES'
	 * order: planner, exact session, closest session, packs) */
	uint64_t prefetch_imported_from[4];
	uint64_t bytes_restored;           /* sum of `bytes` over hits and remote hits */
	uint64_t ms_saved;                 /* sum of `ms` over hits and remote hits */
	uint64_t compile_ms;               /* sum of `ms` over misses */
	uint64_t kache_us;                 /* sum of `us` over every record: time spent in kache */
	uint64_t entries;                  /* entries in the index */
	uint64_t store_bytes;              /* distinct blobs plus entry files, per the index */
	int64_t since_ms;                  /* wall ms when the counters started */
	struct index_reason *pass_reasons; /* sorted by reason */
	size_t n_pass_reasons;
	struct index_reason *error_reasons;
	size_t n_error_reasons;
	uint64_t kept_local; /* compiles stored here but not uploaded: they read a secret */
	uint64_t rejected;   /* remote objects refused by signature */
	struct index_reason *rejected_reasons; /* unsigned, unknown_key, ... */
	size_t n_rejected_reasons;
	struct index_reason *lang_counts; /* "c.hits", "rust.misses", ...: by compiler language */
	size_t n_lang_counts;
};
/* Fills st from the index (call index_ingest first for fresh numbers). */
int index_stats(struct index *ix, struct index_stats *st);
/* Sets every counter of the stats back to zero and their start (since_ms)
 * to now, in one write; entries, blobs and the journal's place are kept
 * (call index_ingest first: what is not ingested yet counts after). 0 / -1. */
int index_zero(struct index *ix);
void index_stats_clear(struct index_stats *st);

struct index_entry_info {
	unsigned char key[HASH_LEN];
	char crate[128];
	uint64_t size; /* sum of its outputs' blob sizes */
	int64_t created_ms, last_use_ms;
	uint64_t hits;
};
/* Calls fn for each entry, most recently used first; crate NULL for all, else
 * only that crate's. fn returns nonzero to stop. 0 / -1. */
int index_list(struct index *ix, const char *crate,
    int (*fn)(const struct index_entry_info *e, void *arg), void *arg);

/* How far a long operation (index_verify, index_gc, index_purge) got: fn is
 * called for every file it handles with what it counts ("blobs"), how many
 * are done and of how many (0: not known). Cheap and frequent on purpose: fn
 * decides how often to show it. The CLI draws it on a terminal; the indexer
 * sends it to the CLI as INDEX_PROGRESS: one algorithm, two transports. */
struct index_progress {
	void (*fn)(const char *phase, uint64_t done, uint64_t total, void *arg);
	void *arg;
};

struct index_gc_result {
	uint64_t size_before, size_after;
	uint64_t entries_removed, blobs_removed, bytes_freed;
	uint64_t manifests_removed, tmp_removed, orphans_removed, memo_removed;
};
/* Ingests and scans, then evicts least recently used entries (entry file, blobs
 * no longer referenced, manifests with no candidate left) until the store is at
 * most max_size bytes and, when unused_ms > 0, no entry left was last used
 * more than unused_ms ago (ccache's --evict-older-than); removes stale tmp/ files, stale
 * ".<name>.tmp.*" temporaries anywhere in the store, unreferenced blobs, and memo files not written
 * for INDEX_MEMO_STALE_MS. fn (may be NULL) is told of each evicted entry; pg (may be NULL) of its
 * progress: entries removed (no total), then blobs looked at for orphans. 0 / -1. */
int index_gc(struct index *ix, uint64_t max_size, int64_t unused_ms, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg,
    const struct index_progress *pg);

struct index_verify_result {
	uint64_t blobs_checked, bytes_checked;
	uint64_t entries_checked, manifests_checked;
	uint64_t blobs_corrupt;     /* content did not match the name: removed */
	uint64_t entries_corrupt;   /* entry files failing their checksum or decode: removed */
	uint64_t entries_removed;   /* entries naming a missing, wrong-size or corrupt blob */
	uint64_t manifests_corrupt; /* manifest files failing their checksum or decode: removed */
};
/* Checks every entry and manifest file (checksum, decode; an entry's blobs
 * present with the sizes it records) and re-hashes every blob; removes what
 * fails (entries through the index, releasing their blobs). report (may be NULL)
 * gets one line per problem, naming the file's hex; pg (may be NULL) the
 * progress: entries, manifests, then blobs, each of a total counted first.
 * Returns the number of problems found, or -1. */
long index_verify(struct index *ix, struct index_verify_result *r,
    void (*report)(const char *what, const char *hex, void *arg), void *arg,
    const struct index_progress *pg);

struct index_purge_result {
	uint64_t bytes_freed, entries, blobs;
};
/* Removes every entry, blob, manifest, memo, intent, journal and tmp file and
 * empties the index (ix stays open and usable); pg (may be NULL) is told of
 * the entries, then the blobs removed. 0 / -1. */
int index_purge(struct index *ix, struct index_purge_result *r, const struct index_progress *pg);

#endif
