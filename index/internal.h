/* Shared by the files of index/: the handle, the key layout, records, batches.
 *
 * Keys (one column family):
 *   'e' <key 32>                 entry record (ix_entry_encode)
 *   'l' <last use ms, be64> <key 32>   LRU order; value empty
 *   'b' <hash 32>                be64 refs, be64 size
 *   'c' <name>                   be64 counter ("hits", "pass.<reason>", ...)
 *   'o' <inode, be64>            be64 offset ingested in that journal file
 *   'p' <key 32>                 "p": an entry prefetch imported, not used yet
 *                                (ingest.c; dropped with the entry)
 *   'm' <name>                   metadata ("created": be64 wall ms; "blob-modes":
 *                                be64 wall ms of upgrade.c's one walk) */
#ifndef KACHE_INDEX_INTERNAL_H
#define KACHE_INDEX_INTERNAL_H

#include <rocksdb/c.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/util.h"
#include "index/index.h"
#include "store/store.h"

struct ix_counter {
	char *name;
	uint64_t v;
};

struct index {
	char *dir;
	char *db_path;
	struct store *store;
	rocksdb_t *db;
	rocksdb_options_t *opt;
	rocksdb_readoptions_t *ro;
	rocksdb_writeoptions_t *wo;
	struct ix_counter *c;
	size_t n_c, cap_c;
	uint64_t rotate_size;
	int64_t grace_ms, stale_ms;
	index_record_fn on_record; /* index_set_record_hook */
	void *on_record_arg;
	int rebuilt;
	int read_only;                         /* opened read-only: the disk was full, or reader */
	int reader;                            /* index_open_readonly: never reopened writable */
	int nospace;                           /* a write failed for lack of space */
	int64_t retry_min_ms, retry_max_ms;    /* index_set_space_retry; 0: never */
	int64_t retry_ms, next_retry;          /* current back-off, next reopen (clock_ms) */
	int lock_fd;                           /* flock on <store>/index.lock, held while open */
	const struct index_progress *progress; /* of the verify, gc or purge running */
	const struct index_progress *open_progress; /* of a first build in index_open */
};

/* An entry as the index keeps it. */
struct ix_entry {
	struct index_entry_info info;
	uint64_t file_size;
	int has_inv;
	unsigned char inv[HASH_LEN];
	unsigned char (*blobs)[HASH_LEN]; /* distinct blobs of its outputs */
	uint64_t *blob_sizes;
	size_t n_blobs;
};

/* A batch of changes, read back by later steps before it is committed. */
struct ix_txn {
	struct index *ix;
	rocksdb_writebatch_wi_t *wb;
	struct strv unlink_after; /* blob paths to unlink once committed */
	uint64_t blobs_freed, bytes_freed;
};

void put_be64(unsigned char *p, uint64_t v);
uint64_t get_be64(const unsigned char *p);

void ix_txn_begin(struct ix_txn *t, struct index *ix);
/* Writes the batch (and the in-memory counters), then unlinks released blobs. */
int ix_txn_commit(struct ix_txn *t);
void ix_txn_abort(struct ix_txn *t);
/* 1 found (value in v), 0 absent, -1 error; sees the txn's own changes when t is set. */
int ix_get(struct index *ix, struct ix_txn *t, const void *k, size_t kn, struct buf *v);
void ix_put(struct ix_txn *t, const void *k, size_t kn, const void *v, size_t vn);
void ix_del(struct ix_txn *t, const void *k, size_t kn);
/* An iterator over keys starting with byte p (caller destroys it). */
rocksdb_iterator_t *ix_iter_prefix(struct index *ix, char p);
int ix_iter_valid(rocksdb_iterator_t *it, char p);
int ix_iter_error(rocksdb_iterator_t *it);

void ix_counter_add(struct index *ix, const char *name, uint64_t n);
uint64_t ix_counter_get(const struct index *ix, const char *name);
int ix_counters_load(struct index *ix);

void ix_entry_clear(struct ix_entry *e);
void ix_entry_encode(const struct ix_entry *e, struct buf *out);
int ix_entry_decode(const unsigned char key[HASH_LEN], const char *d, size_t n, struct ix_entry *e);
/* Reads the index record of key: 1 found, 0 absent, -1 error. */
int ix_entry_get(struct index *ix, struct ix_txn *t, const unsigned char key[HASH_LEN],
    struct ix_entry *e);
/* Stores e (and its LRU key, replacing old_last_use's when known, -1 if none). */
void ix_entry_put(struct ix_txn *t, const struct ix_entry *e, int64_t old_last_use);
/* Indexes the entry file of key (refs its blobs); last_use -1 means the file's
 * created time. 1 added, 0 absent on disk, -2 corrupt on disk, -1 error. */
int ix_entry_add_from_store(struct ix_txn *t, const unsigned char key[HASH_LEN], int64_t last_use,
    const unsigned char *inv);
/* Drops e from the index and releases its blobs (unlinked on commit when unused). */
void ix_entry_drop(struct ix_txn *t, const struct ix_entry *e);

/* Removes one entry: its file, its index record, the blobs nobody else uses,
 * and its manifest when no candidate is left; adds to r. 0 / -1. */
int ix_evict(struct index *ix, const struct ix_entry *e, struct index_gc_result *r);

/* Calls fn for each file named by 64 hex digits under <store>/<kind>/xx/. */
int ix_walk(struct index *ix, const char *kind,
    int (*fn)(const char *hex, const char *path, const struct stat *st, void *arg), void *arg);
/* The number of files ix_walk(kind) would visit (a total for progress). */
uint64_t ix_count(struct index *ix, const char *kind);
/* Tells ix->progress (when set) how far the running operation got; total 0:
 * not known. */
void ix_progress(struct index *ix, const char *phase, uint64_t done, uint64_t total);
/* Removes regular files older than age_ms directly under dir; returns the count. */
uint64_t ix_remove_stale(const char *dir, int64_t age_ms);

/* Opens the database at ix->db_path (read-only when ix->read_only); 0, -1,
 * -2 when the lock is held, -3 when the disk is full. */
int ix_db_open(struct index *ix);
void ix_db_close(struct index *ix);
/* Reopens a no-space index read-write when its back-off allows; 0 when writable. */
int ix_space_retry(struct index *ix);
/* Frees space on a full disk without writing to RocksDB (gc.c); cutoff as
 * index_gc's, in wall-clock ms (0: none). */
int ix_gc_nospace(struct index *ix, uint64_t max_size, int64_t cutoff, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg);
/* Records when the counters started (a new or emptied database). */
void ix_set_created(struct index *ix);
/* Counts indexed entries and adds up distinct blob sizes plus entry file sizes. */
int ix_store_totals(struct index *ix, uint64_t *entries, uint64_t *bytes);

#endif
