/* Maintenance over the store: size-capped gc (LRU), purge. verify: verify.c. */
#include <dirent.h>
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

/* Store folders where writers leave "<dir>/.<name>.tmp.*" while writing
 * (fs_write_atomic), directly or one fan-out level down. tmp/ has its own rule. */
static const char *const temp_dirs[] = { "blobs", "entries", "manifests", "memo", "intents",
	"journal" };

static uint64_t remove_stale_temps_in(const char *dir, int64_t age_ms, int depth);
static uint64_t remove_stale_temps(struct index *ix);
static int manifest_prune(struct index *ix, const unsigned char inv[HASH_LEN]);
static int orphan_cb(const char *hex, const char *path, const struct stat *st, void *arg);
static int memo_cb(const char *hex, const char *path, const struct stat *st, void *arg);
static int lru_due(const char *k, size_t kn, uint64_t size, uint64_t max_size, int64_t cutoff);
static int gc_normal(struct index *ix, uint64_t max_size, int64_t cutoff, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg);
static void unlink_now(struct ix_txn *t);
static int gc_any(struct index *ix, uint64_t max_size, int64_t cutoff, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg);
static void purge_measure(struct index *ix, struct index_purge_result *r);
static int purge_files(struct index *ix, const char *kind, uint64_t total);
static int purge_file_cb(const char *hex, const char *path, const struct stat *st, void *arg);

/* Removes a manifest none of whose candidates has an entry left. 1 removed, 0 not. */
static int
manifest_prune(struct index *ix, const unsigned char inv[HASH_LEN])
{
	struct store_manifest m;
	char hex[HASH_HEX_LEN + 1];
	int live = 0;
	char *p;

	if (store_manifest_read(ix->store, inv, &m) != STORE_FOUND)
		return 0;
	for (size_t i = 0; i < m.n && !live; i++) {
		hash_to_hex(m.c[i].result, hex);
		live = store_has_entry(ix->store, hex);
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
 * record and the blobs nobody else uses; adds what it freed to r. 0 / -1. */
int
ix_evict(struct index *ix, const struct ix_entry *e, struct index_gc_result *r)
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
	uint64_t seen, total; /* blobs, for progress */
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

	ix_progress(c->ix, "blobs", ++c->seen, c->total);
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

/* A memo file not written for INDEX_MEMO_STALE_MS (see index.h). */
static int
memo_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	struct orphan_ctx *c = arg;

	(void)hex;
	if (clock_wall_ms() - (int64_t)st->st_mtime * 1000 >= INDEX_MEMO_STALE_MS &&
	    unlink(path) == 0)
		c->r->memo_removed++;
	return 0;
}

/* Removes, under dir and (depth 1) its subdirectories, the temporaries of
 * fs_write_atomic older than age_ms: a writer killed between create and rename
 * left them. A younger one may still be renamed by a live writer: kept. */
static uint64_t
remove_stale_temps_in(const char *dir, int64_t age_ms, int depth)
{
	int64_t now = clock_wall_ms();
	struct dirent *de;
	uint64_t n = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char *p;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(p, &st) < 0) {
			/* raced with a rename or another gc */
		} else if (S_ISDIR(st.st_mode) && depth > 0) {
			n += remove_stale_temps_in(p, age_ms, depth - 1);
		} else if (S_ISREG(st.st_mode) && de->d_name[0] == '.' &&
		    strstr(de->d_name, ".tmp.") != NULL &&
		    now - (int64_t)st.st_mtime * 1000 >= age_ms && unlink(p) == 0) {
			n++;
		}
		free(p);
	}
	closedir(d);
	return n;
}

/* Stale temporaries in every store folder but tmp/ (see temp_dirs). */
static uint64_t
remove_stale_temps(struct index *ix)
{
	uint64_t n = 0;

	for (size_t i = 0; i < sizeof temp_dirs / sizeof temp_dirs[0]; i++) {
		char *d = xasprintf("%s/%s", ix->dir, temp_dirs[i]);

		n += remove_stale_temps_in(d, ix->stale_ms, 1);
		free(d);
	}
	return n;
}

/* Whether the LRU record k (of kn bytes) goes: while the store is over
 * max_size, or its entry was last used before cutoff (ms; 0: no bound). The
 * records come oldest first: the first that stays ends the eviction. */
static int
lru_due(const char *k, size_t kn, uint64_t size, uint64_t max_size, int64_t cutoff)
{
	return size > max_size ||
	    (kn == 1 + 8 + HASH_LEN && (int64_t)get_be64((const unsigned char *)k + 1) < cutoff);
}

/* The gc of a writable index: ingest, scan, evict to max_size and cutoff,
 * stale files. */
static int
gc_normal(struct index *ix, uint64_t max_size, int64_t cutoff, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg)
{
	struct orphan_ctx oc = { ix, r, 0, 0 };
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
	for (; rc == 0 && ix_iter_valid(it, 'l'); rocksdb_iter_next(it)) {
		size_t kn;
		const char *k = rocksdb_iter_key(it, &kn);
		uint64_t before = r->bytes_freed;
		struct ix_entry e;

		if (!lru_due(k, kn, size, max_size, cutoff))
			break;
		if (kn != 1 + 8 + HASH_LEN ||
		    ix_entry_get(ix, NULL, (const unsigned char *)k + 9, &e) != 1)
			continue;
		rc = ix_evict(ix, &e, r);
		if (rc == 0 && fn)
			fn(&e.info, arg);
		ix_progress(ix, "entries removed", r->entries_removed, 0);
		size -= r->bytes_freed - before < size ? r->bytes_freed - before : size;
		ix_entry_clear(&e);
	}
	if (ix_iter_error(it) < 0)
		rc = -1;
	rocksdb_iter_destroy(it);
	tmp = xasprintf("%s/tmp", ix->dir);
	r->tmp_removed = ix_remove_stale(tmp, ix->stale_ms) + remove_stale_temps(ix);
	free(tmp);
	oc.total = ix_count(ix, "blobs");
	if (rc == 0)
		rc = ix_walk(ix, "blobs", orphan_cb, &oc);
	if (rc == 0)
		rc = ix_walk(ix, "memo", memo_cb, &oc);
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
ix_gc_nospace(struct index *ix, uint64_t max_size, int64_t cutoff, struct index_gc_result *r,
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
	for (; ix_iter_valid(it, 'l'); rocksdb_iter_next(it)) {
		size_t kn;
		const char *k = rocksdb_iter_key(it, &kn);
		uint64_t before = t.bytes_freed;
		struct ix_entry e;

		if (!lru_due(k, kn, size, max_size, cutoff))
			break;
		if (kn != 1 + 8 + HASH_LEN ||
		    ix_entry_get(ix, NULL, (const unsigned char *)k + 9, &e) != 1)
			continue;
		if (store_entry_remove(ix->store, e.info.key) == 0 || errno == ENOENT) {
			ix_entry_drop(&t, &e);
			unlink_now(&t);
			r->entries_removed++;
			r->bytes_freed += t.bytes_freed - before + e.file_size;
			size -= t.bytes_freed - before + e.file_size < size ?
			    t.bytes_freed - before + e.file_size :
			    size;
			if (e.has_inv)
				r->manifests_removed += (uint64_t)manifest_prune(ix, e.inv);
			if (fn)
				fn(&e.info, arg);
			ix_progress(ix, "entries removed", r->entries_removed, 0);
		}
		ix_entry_clear(&e);
	}
	rc = ix_iter_error(it);
	rocksdb_iter_destroy(it);
	r->blobs_removed = t.blobs_freed;
	ix_txn_abort(&t);
	tmp = xasprintf("%s/tmp", ix->dir);
	r->tmp_removed = ix_remove_stale(tmp, ix->stale_ms) + remove_stale_temps(ix);
	free(tmp);
	r->size_after = size;
	return rc;
}

/* On a full disk: frees space without RocksDB first, then, when that made
 * room, reopens the index read-write and runs the normal gc, which drops what
 * was removed from the index. */
int
index_gc(struct index *ix, uint64_t max_size, int64_t unused_ms, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg,
    const struct index_progress *pg)
{
	int64_t cutoff = unused_ms > 0 ? clock_wall_ms() - unused_ms : 0;
	int rc;

	ix->progress = pg;
	rc = gc_any(ix, max_size, cutoff < 0 ? 0 : cutoff, r, fn, arg);
	ix->progress = NULL;
	return rc;
}

/* index_gc, its progress set. */
static int
gc_any(struct index *ix, uint64_t max_size, int64_t cutoff, struct index_gc_result *r,
    void (*fn)(const struct index_entry_info *e, void *arg), void *arg)
{
	struct index_gc_result r2;

	if (ix->reader) {
		log_warnx("index: gc on a read-only store: nothing may be removed here");
		return -1;
	}
	if (!ix->read_only && !ix->nospace && gc_normal(ix, max_size, cutoff, r, fn, arg) == 0)
		return 0;
	if (!ix->read_only && !ix->nospace)
		return -1;
	memset(r, 0, sizeof *r);
	if (ix_gc_nospace(ix, max_size, cutoff, r, fn, arg) < 0)
		return -1;
	if (index_reopen(ix) != 0)
		return r->bytes_freed > 0 || r->tmp_removed > 0 ? 0 : -1;
	if (gc_normal(ix, max_size, cutoff, &r2, fn, arg) < 0)
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

/* What a purge is about to remove: counted before anything goes. */
static void
purge_measure(struct index *ix, struct index_purge_result *r)
{
	memset(r, 0, sizeof *r);
	r->entries = ix_count(ix, "entries");
	r->blobs = ix_count(ix, "blobs");
	for (size_t i = 0; i < sizeof purge_dirs / sizeof purge_dirs[0]; i++) {
		char *p = xasprintf("%s/%s", ix->dir, purge_dirs[i]);

		r->bytes_freed += fs_tree_size(p);
		free(p);
	}
}

struct purge_ctx {
	struct index *ix;
	const char *kind;
	uint64_t done, total;
};

static int
purge_file_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	struct purge_ctx *c = arg;

	(void)hex;
	(void)st;
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("index: purge %s", path);
	ix_progress(c->ix, c->kind, ++c->done, c->total);
	return 0;
}

/* Unlinks the files of kind one by one (the rest of the tree goes after), so
 * that a purge of a large store can say how far it got. */
static int
purge_files(struct index *ix, const char *kind, uint64_t total)
{
	struct purge_ctx c = { ix, kind, 0, total };

	return ix_walk(ix, kind, purge_file_cb, &c);
}

int
index_purge(struct index *ix, struct index_purge_result *r, const struct index_progress *pg)
{
	int rc = 0;

	purge_measure(ix, r);
	ix_db_close(ix);
	ix->read_only = ix->nospace = 0; /* what follows frees the space */
	ix->progress = pg;
	purge_files(ix, "entries", r->entries);
	purge_files(ix, "blobs", r->blobs);
	ix->progress = NULL;
	for (size_t i = 0; i < sizeof purge_dirs / sizeof purge_dirs[0]; i++) {
		char *p = xasprintf("%s/%s", ix->dir, purge_dirs[i]);

		/* Blobs are read-only files in writable directories: unlink works. */
		if (fs_remove_tree(p) < 0) {
			log_warn("index: purge %s", p);
			rc = -1;
		}
		if (strncmp(purge_dirs[i], "index", 5) != 0 && mkdir(p, 0755) < 0 &&
		    errno != EEXIST)
			rc = -1;
		free(p);
	}
	switch (ix_db_open(ix)) {
	case 0: ix_set_created(ix); return rc;
	case -3: /* still full: the space is freed, the next open creates the index */
		log_warnx("index: the disk is still full; the index is created on next use");
		return rc;
	default: return -1;
	}
}
