/* Maintenance over the store: size-capped gc (LRU), verify, purge. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "index/internal.h"

static const char *const purge_dirs[] = { "blobs", "entries", "manifests", "memo", STORE_INTENTS,
	"journal", "tmp", "index", "index.broken" };

static int evict(struct index *ix, const struct ix_entry *e, struct index_gc_result *r);
static int manifest_prune(struct index *ix, const unsigned char inv[HASH_LEN]);
static int orphan_cb(const char *hex, const char *path, const struct stat *st, void *arg);
static int verify_blob_cb(const char *hex, const char *path, const struct stat *st, void *arg);
static int verify_entries(struct index *ix, struct index_verify_result *r,
    void (*report)(const char *, const char *, void *), void *arg);
static int gc_normal(struct index *ix, uint64_t max_size, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg);
static void unlink_now(struct ix_txn *t);
static int count_cb(const char *hex, const char *path, const struct stat *st, void *arg);

/* Removes a manifest none of whose candidates has an entry left. 1 removed, 0 not. */
static int
manifest_prune(struct index *ix, const unsigned char inv[HASH_LEN])
{
	struct store_manifest m;
	char hex[HASH_HEX_LEN + 1];
	struct stat st;
	int live = 0;
	char *p;

	if (store_manifest_read(ix->store, inv, &m) != STORE_FOUND)
		return 0;
	for (size_t i = 0; i < m.n && !live; i++) {
		hash_to_hex(m.c[i].result, hex);
		p = store_path(ix->store, "entries", hex);
		live = stat(p, &st) == 0;
		free(p);
	}
	store_manifest_clear(&m);
	if (live)
		return 0;
	hash_to_hex(inv, hex);
	p = store_path(ix->store, "manifests", hex);
	live = unlink(p) == 0;
	free(p);
	return live;
}

/* Removes one entry: its file first (no new hit can start on it), then its index
 * record and the blobs nobody else uses. Returns the bytes freed, or -1. */
static int
evict(struct index *ix, const struct ix_entry *e, struct index_gc_result *r)
{
	struct ix_txn t;

	if (store_entry_remove(ix->store, e->info.key) < 0 && errno != ENOENT) {
		log_warn("index: remove entry");
		return -1;
	}
	ix_txn_begin(&t, ix);
	ix_entry_drop(&t, e);
	r->blobs_removed += t.blobs_freed;
	r->bytes_freed += t.bytes_freed + e->file_size;
	if (ix_txn_commit(&t) < 0)
		return -1;
	r->entries_removed++;
	if (e->has_inv)
		r->manifests_removed += (uint64_t)manifest_prune(ix, e->inv);
	return 0;
}

struct orphan_ctx {
	struct index *ix;
	struct index_gc_result *r;
};

/* A blob no indexed entry references, older than the stale age: a leftover of a
 * wrapper that stored blobs but no entry. */
static int
orphan_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	struct orphan_ctx *c = arg;
	unsigned char k[1 + HASH_LEN];
	struct buf v;
	int r;

	k[0] = 'b';
	if (hash_from_hex(hex, k + 1) < 0)
		return 0;
	buf_init(&v);
	r = ix_get(c->ix, NULL, k, sizeof k, &v);
	buf_free(&v);
	if (r == 0 && clock_wall_ms() - (int64_t)st->st_mtime * 1000 >= c->ix->stale_ms &&
	    unlink(path) == 0) {
		c->r->orphans_removed++;
		c->r->bytes_freed += (uint64_t)st->st_size;
	}
	return r < 0 ? -1 : 0;
}

/* The gc of a writable index: ingest, scan, evict to max_size, stale files. */
static int
gc_normal(struct index *ix, uint64_t max_size, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg)
{
	struct orphan_ctx oc = { ix, r };
	rocksdb_iterator_t *it;
	uint64_t n, size;
	char *tmp;
	int rc = 0;

	memset(r, 0, sizeof *r);
	if (index_ingest(ix) < 0 || index_scan(ix, NULL) < 0 ||
	    ix_store_totals(ix, &n, &r->size_before) < 0)
		return -1;
	size = r->size_before;
	it = ix_iter_prefix(ix, 'l');
	for (; rc == 0 && size > max_size && ix_iter_valid(it, 'l'); rocksdb_iter_next(it)) {
		size_t kn;
		const char *k = rocksdb_iter_key(it, &kn);
		uint64_t before = r->bytes_freed;
		struct ix_entry e;

		if (kn != 1 + 8 + HASH_LEN ||
		    ix_entry_get(ix, NULL, (const unsigned char *)k + 9, &e) != 1)
			continue;
		rc = evict(ix, &e, r);
		if (rc == 0 && fn)
			fn(&e.info, arg);
		size -= r->bytes_freed - before < size ? r->bytes_freed - before : size;
		ix_entry_clear(&e);
	}
	if (ix_iter_error(it) < 0)
		rc = -1;
	rocksdb_iter_destroy(it);
	tmp = xasprintf("%s/tmp", ix->dir);
	r->tmp_removed = ix_remove_stale(tmp, ix->stale_ms);
	free(tmp);
	if (rc == 0)
		rc = ix_walk(ix, "blobs", orphan_cb, &oc);
	if (ix_store_totals(ix, &n, &r->size_after) < 0)
		rc = -1;
	return rc;
}

/* Unlinks the blobs t released, now rather than after a commit. */
static void
unlink_now(struct ix_txn *t)
{
	for (size_t i = 0; i < t->unlink_after.n; i++)
		if (unlink(t->unlink_after.v[i]) < 0 && errno != ENOENT)
			log_warn("index: unlink %s", t->unlink_after.v[i]);
	strv_free(&t->unlink_after);
	strv_init(&t->unlink_after);
}

/* gc on a full disk, where RocksDB cannot write: the least recently used
 * entries' files, then the blobs no remaining entry uses (reference counts are
 * tracked in one batch that is never written), then stale tmp/ files are
 * removed. The index still names what was removed until the next writable gc
 * or scan drops it (a hit on such an entry finds no file: a miss). 0 / -1. */
int
ix_gc_nospace(struct index *ix, uint64_t max_size, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg)
{
	rocksdb_iterator_t *it;
	struct ix_txn t;
	uint64_t n, size;
	char *tmp;
	int rc;

	if (ix_store_totals(ix, &n, &r->size_before) < 0)
		return -1;
	size = r->size_before;
	ix_txn_begin(&t, ix);
	it = ix_iter_prefix(ix, 'l');
	for (; size > max_size && ix_iter_valid(it, 'l'); rocksdb_iter_next(it)) {
		size_t kn;
		const char *k = rocksdb_iter_key(it, &kn);
		uint64_t before = t.bytes_freed;
		struct ix_entry e;

		if (kn != 1 + 8 + HASH_LEN ||
		    ix_entry_get(ix, NULL, (const unsigned char *)k + 9, &e) != 1)
			continue;
		if (store_entry_remove(ix->store, e.info.key) == 0 || errno == ENOENT) {
			ix_entry_drop(&t, &e);
			unlink_now(&t);
			r->entries_removed++;
			r->bytes_freed += t.bytes_freed - before + e.file_size;
			size -= t.bytes_freed - before + e.file_size < size ?
			    t.bytes_freed - before + e.file_size : size;
			if (e.has_inv)
				r->manifests_removed += (uint64_t)manifest_prune(ix, e.inv);
			if (fn)
				fn(&e.info, arg);
		}
		ix_entry_clear(&e);
	}
	rc = ix_iter_error(it);
	rocksdb_iter_destroy(it);
	r->blobs_removed = t.blobs_freed;
	ix_txn_abort(&t);
	tmp = xasprintf("%s/tmp", ix->dir);
	r->tmp_removed = ix_remove_stale(tmp, ix->stale_ms);
	free(tmp);
	r->size_after = size;
	return rc;
}

/* On a full disk: frees space without RocksDB first, then, when that made
 * room, reopens the index read-write and runs the normal gc, which drops what
 * was removed from the index. */
int
index_gc(struct index *ix, uint64_t max_size, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg)
{
	struct index_gc_result r2;

	if (!ix->read_only && !ix->nospace && gc_normal(ix, max_size, r, fn, arg) == 0)
		return 0;
	if (!ix->read_only && !ix->nospace)
		return -1;
	memset(r, 0, sizeof *r);
	if (ix_gc_nospace(ix, max_size, r, fn, arg) < 0)
		return -1;
	if (index_reopen(ix) != 0)
		return r->bytes_freed > 0 || r->tmp_removed > 0 ? 0 : -1;
	if (gc_normal(ix, max_size, &r2, fn, arg) < 0)
		return -1;
	r->entries_removed += r2.entries_removed;
	r->blobs_removed += r2.blobs_removed;
	r->bytes_freed += r2.bytes_freed;
	r->manifests_removed += r2.manifests_removed;
	r->tmp_removed += r2.tmp_removed;
	r->orphans_removed += r2.orphans_removed;
	r->size_after = r2.size_after;
	return 0;
}

struct verify_ctx {
	struct index_verify_result *r;
	void (*report)(const char *, const char *, void *);
	void *arg;
};

/* Re-hashes one blob; one whose content does not match its name is removed. */
static int
verify_blob_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	struct verify_ctx *c = arg;
	unsigned char h[HASH_LEN];
	char got[HASH_HEX_LEN + 1];
	uint64_t size;

	c->r->blobs_checked++;
	if (hash_file(path, h, &size) < 0) {
		log_warn("index: verify: read %s", path);
		return 0;
	}
	c->r->bytes_checked += size;
	hash_to_hex(h, got);
	if (strcmp(got, hex) == 0)
		return 0;
	c->r->blobs_corrupt++;
	if (c->report)
		c->report("corrupt blob (removed)", hex, c->arg);
	if (unlink(path) < 0)
		log_warn("index: verify: unlink %s", path);
	(void)st;
	return 0;
}

/* Removes every indexed entry that references a blob no longer on disk. */
static int
verify_entries(struct index *ix, struct index_verify_result *r,
    void (*report)(const char *, const char *, void *), void *arg)
{
	rocksdb_iterator_t *it = ix_iter_prefix(ix, 'e');
	struct index_gc_result gr;
	char hex[HASH_HEX_LEN + 1];
	int rc = 0;

	memset(&gr, 0, sizeof gr);
	for (; rc == 0 && ix_iter_valid(it, 'e'); rocksdb_iter_next(it)) {
		size_t kn, vn;
		const char *k = rocksdb_iter_key(it, &kn);
		const char *v = rocksdb_iter_value(it, &vn);
		struct ix_entry e;
		size_t i;

		if (kn != 1 + HASH_LEN ||
		    ix_entry_decode((const unsigned char *)k + 1, v, vn, &e) < 0)
			continue;
		for (i = 0; i < e.n_blobs; i++) {
			struct stat st;
			char *p;

			hash_to_hex(e.blobs[i], hex);
			p = store_path(ix->store, "blobs", hex);
			if (stat(p, &st) < 0 && errno == ENOENT) {
				free(p);
				break;
			}
			free(p);
		}
		if (i < e.n_blobs) {
			hash_to_hex(e.info.key, hex);
			if (report)
				report("entry with a missing blob (removed)", hex, arg);
			rc = evict(ix, &e, &gr);
			r->entries_removed++;
		}
		ix_entry_clear(&e);
	}
	if (ix_iter_error(it) < 0)
		rc = -1;
	rocksdb_iter_destroy(it);
	return rc;
}

long
index_verify(struct index *ix, struct index_verify_result *r,
    void (*report)(const char *what, const char *hex, void *arg), void *arg)
{
	struct verify_ctx c = { r, report, arg };
	struct index_scan_result sr;

	memset(r, 0, sizeof *r);
	if (index_ingest(ix) < 0 || index_scan(ix, &sr) < 0)
		return -1;
	r->entries_corrupt = sr.corrupt;
	if (ix_walk(ix, "blobs", verify_blob_cb, &c) < 0 ||
	    verify_entries(ix, r, report, arg) < 0)
		return -1;
	return (long)(r->blobs_corrupt + r->entries_corrupt + r->entries_removed);
}

static int
count_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	(void)hex;
	(void)path;
	(void)st;
	(*(uint64_t *)arg)++;
	return 0;
}

int
index_purge(struct index *ix, struct index_purge_result *r)
{
	int rc = 0;

	memset(r, 0, sizeof *r);
	ix_walk(ix, "entries", count_cb, &r->entries);
	ix_walk(ix, "blobs", count_cb, &r->blobs);
	ix_db_close(ix);
	ix->read_only = ix->nospace = 0; /* what follows frees the space */
	for (size_t i = 0; i < sizeof purge_dirs / sizeof purge_dirs[0]; i++) {
		char *p = xasprintf("%s/%s", ix->dir, purge_dirs[i]);

		r->bytes_freed += fs_tree_size(p);
		/* Blobs are read-only files in writable directories: unlink works. */
		if (fs_remove_tree(p) < 0) {
			log_warn("index: purge %s", p);
			rc = -1;
		}
		if (strncmp(purge_dirs[i], "index", 5) != 0 && mkdir(p, 0755) < 0 && errno != EEXIST)
			rc = -1;
		free(p);
	}
	switch (ix_db_open(ix)) {
	case 0:
		ix_set_created(ix);
		return rc;
	case -3: /* still full: the space is freed, the next open creates the index */
		log_warnx("index: the disk is still full; the index is created on next use");
		return rc;
	default:
		return -1;
	}
}
