/* The index handle: opening (with lock retry and rebuild of a damaged database),
 * batches, counters and stats. */
#include "index/index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "index/internal.h"

static int open_or_rebuild(struct index *ix, int64_t wait_ms);
static struct index *ix_open_wait(const char *store_dir, int64_t wait_ms,
    const struct index_progress *pg);
static void set_log_dir(struct index *ix);
static void prune_logs(const char *dir);

/* another store's info log not written for this long is removed (prune_logs) */
#define LOG_STALE_S (14 * 24 * 3600)
static int is_nospace(const char *err);
static int open_nospace(struct index *ix);
static int take_lock(struct index *ix, int64_t deadline);
static int fill_new(struct index *ix);
static int move_aside(struct index *ix);
static int reasons_collect(struct index *ix, const char *prefix, struct index_reason **out,
    size_t *n);

void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* "No space left on device" in a RocksDB status: the disk is full, which is
 * not damage (the index must not be moved aside for it). */
static int
is_nospace(const char *err)
{
	return err != NULL &&
	    (strstr(err, strerror(ENOSPC)) || strstr(err, "NoSpace") || strstr(err, "No space"));
}

int
ix_db_open(struct index *ix)
{
	char *err = NULL;

	if (ix->read_only)
		ix->db = rocksdb_open_for_read_only(ix->opt, ix->db_path, 0, &err);
	else
		ix->db = rocksdb_open(ix->opt, ix->db_path, &err);
	if (ix->db != NULL)
		return 0;
	if (err && (strstr(err, "LOCK") || strstr(err, "lock"))) {
		log_debug("index: %s", err);
		free(err);
		return -2;
	}
	if (is_nospace(err)) {
		log_debug("index: %s", err);
		free(err);
		return -3;
	}
	log_warnx("index: cannot open %s: %s", ix->db_path, err ? err : "?");
	free(err);
	return -1;
}

void
ix_db_close(struct index *ix)
{
	if (ix->db)
		rocksdb_close(ix->db);
	ix->db = NULL;
	for (size_t i = 0; i < ix->n_c; i++)
		free(ix->c[i].name);
	ix->n_c = 0;
}

void
ix_set_created(struct index *ix)
{
	struct ix_txn t;
	unsigned char v[8];

	put_be64(v, (uint64_t)clock_wall_ms());
	ix_txn_begin(&t, ix);
	ix_put(&t, "mcreated", 8, v, 8);
	ix_txn_commit(&t);
}

/* Takes <store>/index.lock before RocksDB is touched: RocksDB rotates its info
 * log before it takes its own LOCK, so two openers at once can fail in ways that
 * look like damage, and only the lock holder may decide the index is damaged.
 * 0, -1, or -2 when another process held it until deadline. */
static int
take_lock(struct index *ix, int64_t deadline)
{
	char *p = xasprintf("%s.lock", ix->db_path);
	int rc;

	ix->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (ix->lock_fd < 0) {
		log_warn("index: %s", p);
		free(p);
		return -1;
	}
	free(p);
	if ((rc = fs_flock_wait(ix->lock_fd, deadline, 50)) == -1)
		log_warn("index: flock");
	return rc;
}

/* Info logs not written for LOG_STALE_S: another store's that is gone (a CI
 * job's temporary store, a test's) or not used for weeks. RocksDB keeps its
 * own store's to keep_log_file_num but never looks at another's, and lists
 * the whole directory at each open: on a machine that ran the test suite
 * often, 16 521 files (322 MB of memory) and a tenth of a supervisor start's
 * CPU. Only files whose names RocksDB gives them ("..._LOG", "..._LOG.old.N"). */
static void
prune_logs(const char *dir)
{
	time_t stale = time(NULL) - LOG_STALE_S;
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, "_LOG") != NULL &&
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_mtime < stale)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

/* RocksDB's info LOG goes to /dev/shm/kache-<euid>/, off the store's disk:
 * with the disk full, the logger of the RocksDB Debian ships appends again to
 * a file whose last write failed and aborts on an assertion, and neither a log
 * level nor a missing log directory turns it off. Kept in the index directory
 * (as before) when /dev/shm/kache-<euid> is not a directory of ours. Stale
 * logs there are removed first (prune_logs). */
static void
set_log_dir(struct index *ix)
{
	char dir[64];
	struct stat st;

	snprintf(dir, sizeof dir, "/dev/shm/kache-%ld", (long)geteuid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022))
		return;
	prune_logs(dir);
	rocksdb_options_set_db_log_dir(ix->opt, dir);
}

/* Fills a database that has no "created" mark: new, or emptied. The entries on
 * disk are a first run's, or a lost index's; either way the journal still on disk
 * is counted again by the next ingest. */
static int
fill_new(struct index *ix)
{
	struct index_scan_result sr;
	int rc;

	ix_set_created(ix);
	rc = index_scan(ix, &sr);
	if (rc == 0 && sr.added)
		log_info("index: indexed %llu entries found in the store",
		    (unsigned long long)sr.added);
	return rc;
}

/* Moves a damaged database to index.broken (one kept) and starts a new one. */
static int
move_aside(struct index *ix)
{
	char *aside = xasprintf("%s.broken", ix->db_path);

	log_warnx("index: %s is damaged; moving it to %s and rebuilding from the store",
	    ix->db_path, aside);
	fs_remove_tree(aside);
	if (rename(ix->db_path, aside) < 0 && errno != ENOENT)
		fs_remove_tree(ix->db_path);
	free(aside);
	if (ix_db_open(ix) < 0)
		return -1;
	ix->rebuilt = 1;
	return fill_new(ix);
}

/* The disk is full: the database is opened read-only (no write at all; reads
 * and a no-space gc still work). 0, or -3 when even that fails. */
static int
open_nospace(struct index *ix)
{
	ix->read_only = 1;
	ix->nospace = 1;
	if (ix_db_open(ix) < 0 || ix_counters_load(ix) < 0) {
		ix_db_close(ix);
		return -3;
	}
	return 0;
}

/* Opens the database under the lock; fills a new one from the store, and moves a
 * damaged one (fails to open, or to read back) aside and rebuilds it. Retries
 * while the lock is held. 0, -1, -2 (lock held), or -3 (disk full, no index). */
static int
open_or_rebuild(struct index *ix, int64_t wait_ms)
{
	int64_t deadline = clock_ms() + wait_ms;
	struct buf v;
	int rc;

	if ((rc = take_lock(ix, deadline)) < 0)
		return rc;
	while ((rc = ix_db_open(ix)) == -2 && clock_left_ms(deadline) > 0)
		usleep(50 * 1000);
	if (rc == -2)
		return -2;
	if (rc == -3)
		return open_nospace(ix);
	if (rc < 0)
		return move_aside(ix);
	buf_init(&v);
	rc = ix_get(ix, NULL, "mcreated", 8, &v);
	buf_free(&v);
	if (rc >= 0 && ix_counters_load(ix) == 0)
		return rc == 1 ? 0 : fill_new(ix);
	ix_db_close(ix);
	return move_aside(ix);
}

int
index_reopen(struct index *ix)
{
	int rc;

	if (ix->reader)
		return -1;
	ix_db_close(ix);
	ix->read_only = ix->nospace = 0;
	if ((rc = ix_db_open(ix)) == 0 && ix_counters_load(ix) == 0)
		return 0;
	ix_db_close(ix);
	if (rc == -3 && open_nospace(ix) == 0)
		return 1;
	return -1;
}

void
index_set_space_retry(struct index *ix, int64_t min_ms, int64_t max_ms)
{
	ix->retry_min_ms = ix->retry_ms = min_ms;
	ix->retry_max_ms = max_ms;
	ix->next_retry = 0;
}

/* For index_ingest on a no-space index: reopens it read-write when the back-off
 * allows and the disk has room again. 0 when writable. */
int
ix_space_retry(struct index *ix)
{
	int64_t now = clock_ms();

	if (ix->retry_min_ms <= 0 || now < ix->next_retry)
		return -1;
	if (index_reopen(ix) == 0) {
		ix->retry_ms = ix->retry_min_ms;
		ix->next_retry = 0;
		return 0;
	}
	ix->next_retry = now + ix->retry_ms;
	ix->retry_ms = ix->retry_ms * 2 > ix->retry_max_ms ? ix->retry_max_ms : ix->retry_ms * 2;
	return -1;
}

int
index_no_space(const struct index *ix)
{
	return ix->nospace;
}

/* What both openers share: the paths, the store, RocksDB's options. NULL
 * (logged) when the store cannot be opened. */
static struct index *
ix_new(const char *store_dir)
{
	struct index *ix = xcalloc(1, sizeof *ix);

	ix->dir = xstrdup(store_dir);
	ix->db_path = path_join(store_dir, "index");
	ix->rotate_size = INDEX_ROTATE_SIZE;
	ix->grace_ms = INDEX_ROTATE_GRACE_MS;
	ix->stale_ms = INDEX_STALE_MS;
	ix->lock_fd = -1;
	ix->store = store_open(store_dir);
	if (ix->store == NULL) {
		log_warn("index: store %s", store_dir);
		index_free(&ix);
		return NULL;
	}
	ix->opt = rocksdb_options_create();
	rocksdb_options_set_max_open_files(ix->opt, 64);
	rocksdb_options_set_keep_log_file_num(ix->opt, 2);
	rocksdb_options_set_max_log_file_size(ix->opt, 1 << 20);
	ix->ro = rocksdb_readoptions_create();
	ix->wo = rocksdb_writeoptions_create();
	return ix;
}

struct index *
index_open_readonly(const char *store_dir)
{
	struct index *ix = ix_new(store_dir);

	if (ix == NULL) {
		errno = EIO;
		return NULL;
	}
	ix->reader = ix->read_only = 1;
	rocksdb_options_set_info_log_level(ix->opt, 4); /* fatal only: nothing to write */
	if (ix_db_open(ix) < 0 || ix_counters_load(ix) < 0) {
		log_warnx("index: cannot read %s", ix->db_path);
		index_free(&ix);
		errno = EIO;
		return NULL;
	}
	return ix;
}

struct index *
index_open(const char *store_dir)
{
	return index_open_wait(store_dir, INDEX_LOCK_WAIT_MS);
}

struct index *
index_open_progress(const char *store_dir, const struct index_progress *pg)
{
	return ix_open_wait(store_dir, INDEX_LOCK_WAIT_MS, pg);
}

struct index *
index_open_wait(const char *store_dir, int64_t wait_ms)
{
	return ix_open_wait(store_dir, wait_ms, NULL);
}

/* index_open_wait with pg told of a first build's scan. */
static struct index *
ix_open_wait(const char *store_dir, int64_t wait_ms, const struct index_progress *pg)
{
	struct index *ix = ix_new(store_dir);
	int rc;

	if (ix == NULL) {
		errno = EIO;
		return NULL;
	}
	rocksdb_options_set_create_if_missing(ix->opt, 1);
	rocksdb_options_set_info_log_level(ix->opt, 3); /* errors only */
	set_log_dir(ix);
	ix->open_progress = pg;
	rc = open_or_rebuild(ix, wait_ms);
	ix->open_progress = NULL;
	if (rc < 0) {
		if (rc == -2 && wait_ms > 0)
			log_warnx("index: %s is locked by another process", ix->db_path);
		index_free(&ix);
		errno = rc == -2 ? EBUSY : rc == -3 ? ENOSPC : EIO;
		return NULL;
	}
	if (index_upgrade_blob_modes(ix) < 0)
		log_warnx("index: could not give the older read-only blobs of %s their write bit",
		    store_dir);
	return ix;
}

void
index_set_record_hook(struct index *ix, index_record_fn fn, void *arg)
{
	ix->on_record = fn;
	ix->on_record_arg = arg;
}

void
index_free(struct index **ixp)
{
	struct index *ix = *ixp;

	if (ix == NULL)
		return;
	ix_db_close(ix);
	if (ix->lock_fd >= 0)
		close(ix->lock_fd);
	free(ix->c);
	if (ix->opt)
		rocksdb_options_destroy(ix->opt);
	if (ix->ro)
		rocksdb_readoptions_destroy(ix->ro);
	if (ix->wo)
		rocksdb_writeoptions_destroy(ix->wo);
	store_free(&ix->store);
	free(ix->db_path);
	free(ix->dir);
	free(ix);
	*ixp = NULL;
}

int
index_was_rebuilt(const struct index *ix)
{
	return ix->rebuilt;
}

void
index_set_rotation(struct index *ix, uint64_t size, int64_t grace_ms)
{
	ix->rotate_size = size;
	ix->grace_ms = grace_ms;
}

void
index_set_stale_age(struct index *ix, int64_t ms)
{
	ix->stale_ms = ms;
}

void
ix_txn_begin(struct ix_txn *t, struct index *ix)
{
	memset(t, 0, sizeof *t);
	t->ix = ix;
	t->wb = rocksdb_writebatch_wi_create(0, 1);
	strv_init(&t->unlink_after);
}

void
ix_txn_abort(struct ix_txn *t)
{
	rocksdb_writebatch_wi_destroy(t->wb);
	t->wb = NULL;
	strv_free(&t->unlink_after);
}

int
ix_txn_commit(struct ix_txn *t)
{
	struct index *ix = t->ix;
	char *err = NULL;
	unsigned char v[8];

	for (size_t i = 0; i < ix->n_c; i++) {
		char *k = xasprintf("c%s", ix->c[i].name);

		put_be64(v, ix->c[i].v);
		rocksdb_writebatch_wi_put(t->wb, k, strlen(k), (const char *)v, 8);
		free(k);
	}
	if (ix->read_only) {
		ix_txn_abort(t);
		ix_counters_load(ix);
		errno = ENOSPC;
		return -1;
	}
	rocksdb_write_writebatch_wi(ix->db, ix->wo, t->wb, &err);
	if (err) {
		if (is_nospace(err)) {
			log_debug("index: write: %s", err);
			ix->nospace = 1;
		} else {
			log_warnx("index: write: %s", err);
		}
		free(err);
		ix_txn_abort(t);
		ix_counters_load(ix);
		errno = ix->nospace ? ENOSPC : EIO;
		return -1;
	}
	for (size_t i = 0; i < t->unlink_after.n; i++)
		if (unlink(t->unlink_after.v[i]) < 0 && errno != ENOENT)
			log_warn("index: unlink %s", t->unlink_after.v[i]);
	ix_txn_abort(t);
	return 0;
}

int
ix_get(struct index *ix, struct ix_txn *t, const void *k, size_t kn, struct buf *v)
{
	char *err = NULL, *val;
	size_t vn = 0;

	if (t)
		val = rocksdb_writebatch_wi_get_from_batch_and_db(t->wb, ix->db, ix->ro, k, kn, &vn,
		    &err);
	else
		val = rocksdb_get(ix->db, ix->ro, k, kn, &vn, &err);
	if (err) {
		log_warnx("index: read: %s", err);
		free(err);
		return -1;
	}
	if (val == NULL)
		return 0;
	buf_reset(v);
	buf_add(v, val, vn);
	rocksdb_free(val);
	return 1;
}

void
ix_put(struct ix_txn *t, const void *k, size_t kn, const void *v, size_t vn)
{
	rocksdb_writebatch_wi_put(t->wb, k, kn, v, vn);
}

void
ix_del(struct ix_txn *t, const void *k, size_t kn)
{
	rocksdb_writebatch_wi_delete(t->wb, k, kn);
}

rocksdb_iterator_t *
ix_iter_prefix(struct index *ix, char p)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator(ix->db, ix->ro);

	rocksdb_iter_seek(it, &p, 1);
	return it;
}

int
ix_iter_valid(rocksdb_iterator_t *it, char p)
{
	size_t kn;
	const char *k;

	if (!rocksdb_iter_valid(it))
		return 0;
	k = rocksdb_iter_key(it, &kn);
	return kn > 0 && k[0] == p;
}

int
ix_iter_error(rocksdb_iterator_t *it)
{
	char *err = NULL;

	rocksdb_iter_get_error(it, &err);
	if (err == NULL)
		return 0;
	log_warnx("index: iterate: %s", err);
	free(err);
	return -1;
}

void
ix_counter_add(struct index *ix, const char *name, uint64_t n)
{
	for (size_t i = 0; i < ix->n_c; i++)
		if (strcmp(ix->c[i].name, name) == 0) {
			ix->c[i].v += n;
			return;
		}
	if (ix->n_c == ix->cap_c) {
		ix->cap_c = ix->cap_c ? ix->cap_c * 2 : 16;
		ix->c = xrealloc(ix->c, ix->cap_c * sizeof *ix->c);
	}
	ix->c[ix->n_c].name = xstrdup(name);
	ix->c[ix->n_c++].v = n;
}

uint64_t
ix_counter_get(const struct index *ix, const char *name)
{
	for (size_t i = 0; i < ix->n_c; i++)
		if (strcmp(ix->c[i].name, name) == 0)
			return ix->c[i].v;
	return 0;
}

/* Reloads the in-memory counters from the database. 0 / -1. */
int
ix_counters_load(struct index *ix)
{
	rocksdb_iterator_t *it;
	int rc;

	for (size_t i = 0; i < ix->n_c; i++)
		free(ix->c[i].name);
	ix->n_c = 0;
	it = ix_iter_prefix(ix, 'c');
	for (; ix_iter_valid(it, 'c'); rocksdb_iter_next(it)) {
		size_t kn, vn;
		const char *k = rocksdb_iter_key(it, &kn);
		const char *v = rocksdb_iter_value(it, &vn);
		char *name = xstrndup(k + 1, kn - 1);

		if (vn == 8)
			ix_counter_add(ix, name, get_be64((const unsigned char *)v));
		free(name);
	}
	rc = ix_iter_error(it);
	rocksdb_iter_destroy(it);
	return rc;
}

static int
reason_cmp(const void *a, const void *b)
{
	return strcmp(((const struct index_reason *)a)->reason,
	    ((const struct index_reason *)b)->reason);
}

/* Collects the counters named <prefix><reason>, sorted by reason. */
static int
reasons_collect(struct index *ix, const char *prefix, struct index_reason **out, size_t *n)
{
	size_t pl = strlen(prefix);

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < ix->n_c; i++) {
		if (strncmp(ix->c[i].name, prefix, pl) != 0)
			continue;
		*out = xrealloc(*out, (*n + 1) * sizeof **out);
		(*out)[*n].reason = xstrdup(ix->c[i].name + pl);
		(*out)[(*n)++].count = ix->c[i].v;
	}
	if (*n)
		qsort(*out, *n, sizeof **out, reason_cmp);
	return 0;
}

/* Counts entries and adds up distinct blob sizes and entry file sizes. */
int
ix_store_totals(struct index *ix, uint64_t *entries, uint64_t *bytes)
{
	rocksdb_iterator_t *it;
	int rc;

	*entries = *bytes = 0;
	it = ix_iter_prefix(ix, 'b');
	for (; ix_iter_valid(it, 'b'); rocksdb_iter_next(it)) {
		size_t vn;
		const char *v = rocksdb_iter_value(it, &vn);

		if (vn == 16)
			*bytes += get_be64((const unsigned char *)v + 8);
	}
	rc = ix_iter_error(it);
	rocksdb_iter_destroy(it);
	it = ix_iter_prefix(ix, 'e');
	for (; rc == 0 && ix_iter_valid(it, 'e'); rocksdb_iter_next(it)) {
		size_t kn, vn;
		const char *k = rocksdb_iter_key(it, &kn);
		const char *v = rocksdb_iter_value(it, &vn);
		struct ix_entry e;

		if (kn != 1 + HASH_LEN ||
		    ix_entry_decode((const unsigned char *)k + 1, v, vn, &e) < 0)
			continue;
		(*entries)++;
		*bytes += e.file_size;
		ix_entry_clear(&e);
	}
	if (rc == 0)
		rc = ix_iter_error(it);
	rocksdb_iter_destroy(it);
	return rc;
}

int
index_stats(struct index *ix, struct index_stats *st)
{
	struct buf v;

	memset(st, 0, sizeof *st);
	st->hits = ix_counter_get(ix, "hits");
	st->misses = ix_counter_get(ix, "misses");
	st->remote_hits = ix_counter_get(ix, "remote_hits");
	st->prefetched_hits = ix_counter_get(ix, "prefetched_hits");
	st->prefetch_imported = ix_counter_get(ix, "prefetch_imported");
	st->prefetch_imported_from[0] = ix_counter_get(ix, "prefetch_imported/planner");
	st->prefetch_imported_from[1] = ix_counter_get(ix, "prefetch_imported/exact");
	st->prefetch_imported_from[2] = ix_counter_get(ix, "prefetch_imported/closest");
	st->prefetch_imported_from[3] = ix_counter_get(ix, "prefetch_imported/packs");
	st->fetch_imported = ix_counter_get(ix, "fetch_imported");
	st->passes = ix_counter_get(ix, "passes");
	st->errors = ix_counter_get(ix, "errors");
	st->corrupt = ix_counter_get(ix, "corrupt");
	st->rejected = ix_counter_get(ix, "rejected");
	st->kept_local = ix_counter_get(ix, "kept_local");
	st->bytes_restored = ix_counter_get(ix, "bytes_restored");
	st->ms_saved = ix_counter_get(ix, "ms_saved");
	st->compile_ms = ix_counter_get(ix, "compile_ms");
	st->kache_us = ix_counter_get(ix, "kache_us");
	buf_init(&v);
	if (ix_get(ix, NULL, "mzeroed", 7, &v) == 1 && v.len == 8)
		st->since_ms = (int64_t)get_be64((const unsigned char *)v.p);
	else if (ix_get(ix, NULL, "mcreated", 8, &v) == 1 && v.len == 8)
		st->since_ms = (int64_t)get_be64((const unsigned char *)v.p);
	buf_free(&v);
	reasons_collect(ix, "pass.", &st->pass_reasons, &st->n_pass_reasons);
	reasons_collect(ix, "error.", &st->error_reasons, &st->n_error_reasons);
	reasons_collect(ix, "rejected.", &st->rejected_reasons, &st->n_rejected_reasons);
	reasons_collect(ix, "lang.", &st->lang_counts, &st->n_lang_counts);
	return ix_store_totals(ix, &st->entries, &st->store_bytes);
}

int
index_zero(struct index *ix)
{
	struct ix_txn t;
	unsigned char v[8];

	ix_txn_begin(&t, ix);
	/* every counter is in memory (ix_counters_load): none is left to write */
	for (size_t i = 0; i < ix->n_c; i++) {
		char *k = xasprintf("c%s", ix->c[i].name);

		ix_del(&t, k, strlen(k));
		free(k);
		free(ix->c[i].name);
	}
	ix->n_c = 0;
	put_be64(v, (uint64_t)clock_wall_ms());
	ix_put(&t, "mzeroed", 7, v, 8);
	return ix_txn_commit(&t); /* (which loads the counters back on a failure) */
}

void
index_stats_clear(struct index_stats *st)
{
	for (size_t i = 0; i < st->n_pass_reasons; i++)
		free(st->pass_reasons[i].reason);
	for (size_t i = 0; i < st->n_error_reasons; i++)
		free(st->error_reasons[i].reason);
	for (size_t i = 0; i < st->n_rejected_reasons; i++)
		free(st->rejected_reasons[i].reason);
	free(st->pass_reasons);
	free(st->error_reasons);
	for (size_t i = 0; i < st->n_lang_counts; i++)
		free(st->lang_counts[i].reason);
	free(st->rejected_reasons);
	free(st->lang_counts);
	memset(st, 0, sizeof *st);
}
