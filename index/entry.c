/* Entry records in the index, blob reference counts, the walk over the store's
 * fan-out directories, the scan that reconciles the index with entries/, and list. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "index/internal.h"

#define ENTRY_REC_VERSION 1

static void lru_key(unsigned char k[1 + 8 + HASH_LEN], int64_t t, const unsigned char *key);
static void blob_ref(struct ix_txn *t, const unsigned char h[HASH_LEN], uint64_t size, int delta);
static void entry_from_store(struct ix_entry *e, const struct store_entry *se);
static int walk_fanout(const char *dir,
    int (*fn)(const char *, const char *, const struct stat *, void *), void *arg);
static int count_cb(const char *hex, const char *path, const struct stat *st, void *arg);
static int scan_disk_cb(const char *hex, const char *path, const struct stat *st, void *arg);
static int scan_dropped(struct index *ix, struct index_scan_result *r);

void
ix_entry_clear(struct ix_entry *e)
{
	free(e->blobs);
	free(e->blob_sizes);
	memset(e, 0, sizeof *e);
}

void
ix_entry_encode(const struct ix_entry *e, struct buf *out)
{
	unsigned char v[8];
	size_t cl = strnlen(e->info.crate, sizeof e->info.crate - 1);
	const uint64_t nums[5] = { (uint64_t)e->info.created_ms, (uint64_t)e->info.last_use_ms,
		e->info.hits, e->info.size, e->file_size };

	buf_reset(out);
	buf_addch(out, ENTRY_REC_VERSION);
	for (int i = 0; i < 5; i++) {
		put_be64(v, nums[i]);
		buf_add(out, v, 8);
	}
	buf_addch(out, (char)(e->has_inv ? 1 : 0));
	if (e->has_inv)
		buf_add(out, e->inv, HASH_LEN);
	buf_addch(out, (char)cl);
	buf_add(out, e->info.crate, cl);
	put_be64(v, e->n_blobs);
	buf_add(out, v, 8);
	for (size_t i = 0; i < e->n_blobs; i++) {
		buf_add(out, e->blobs[i], HASH_LEN);
		put_be64(v, e->blob_sizes[i]);
		buf_add(out, v, 8);
	}
}

/* Decodes a record, checking every length against the bytes present. 0 / -1. */
int
ix_entry_decode(const unsigned char key[HASH_LEN], const char *d, size_t n, struct ix_entry *e)
{
	const unsigned char *p = (const unsigned char *)d, *end = p + n;
	uint64_t nums[5], nb;
	size_t cl;

	memset(e, 0, sizeof *e);
	memcpy(e->info.key, key, HASH_LEN);
	if (n < 1 + 40 + 1 || p[0] != ENTRY_REC_VERSION)
		return -1;
	p++;
	for (int i = 0; i < 5; i++, p += 8)
		nums[i] = get_be64(p);
	e->info.created_ms = (int64_t)nums[0];
	e->info.last_use_ms = (int64_t)nums[1];
	e->info.hits = nums[2];
	e->info.size = nums[3];
	e->file_size = nums[4];
	e->has_inv = *p++;
	if (e->has_inv) {
		if (end - p < HASH_LEN)
			return -1;
		memcpy(e->inv, p, HASH_LEN);
		p += HASH_LEN;
	}
	if (end - p < 1 || (size_t)(end - p - 1) < (cl = *p) || cl >= sizeof e->info.crate)
		return -1;
	memcpy(e->info.crate, p + 1, cl);
	p += 1 + cl;
	if (end - p < 8)
		return -1;
	nb = get_be64(p);
	p += 8;
	if ((uint64_t)(end - p) != nb * (HASH_LEN + 8))
		return -1;
	e->n_blobs = (size_t)nb;
	e->blobs = xcalloc(nb ? nb : 1, HASH_LEN);
	e->blob_sizes = xcalloc(nb ? nb : 1, sizeof *e->blob_sizes);
	for (size_t i = 0; i < e->n_blobs; i++, p += HASH_LEN + 8) {
		memcpy(e->blobs[i], p, HASH_LEN);
		e->blob_sizes[i] = get_be64(p + HASH_LEN);
	}
	return 0;
}

int
ix_entry_get(struct index *ix, struct ix_txn *t, const unsigned char key[HASH_LEN],
    struct ix_entry *e)
{
	unsigned char k[1 + HASH_LEN];
	struct buf v;
	int r;

	k[0] = 'e';
	memcpy(k + 1, key, HASH_LEN);
	buf_init(&v);
	r = ix_get(ix, t, k, sizeof k, &v);
	if (r == 1 && ix_entry_decode(key, v.p, v.len, e) < 0) {
		log_warnx("index: undecodable record for an entry; dropping it");
		ix_entry_clear(e);
		r = 0;
	}
	buf_free(&v);
	return r;
}

static void
lru_key(unsigned char k[1 + 8 + HASH_LEN], int64_t t, const unsigned char *key)
{
	k[0] = 'l';
	put_be64(k + 1, (uint64_t)(t < 0 ? 0 : t));
	memcpy(k + 9, key, HASH_LEN);
}

void
ix_entry_put(struct ix_txn *t, const struct ix_entry *e, int64_t old_last_use)
{
	unsigned char k[1 + HASH_LEN], lk[1 + 8 + HASH_LEN];
	struct buf v;

	if (old_last_use >= 0) {
		lru_key(lk, old_last_use, e->info.key);
		ix_del(t, lk, sizeof lk);
	}
	lru_key(lk, e->info.last_use_ms, e->info.key);
	ix_put(t, lk, sizeof lk, "", 0);
	k[0] = 'e';
	memcpy(k + 1, e->info.key, HASH_LEN);
	buf_init(&v);
	ix_entry_encode(e, &v);
	ix_put(t, k, sizeof k, v.p, v.len);
	buf_free(&v);
}

/* Adds delta (+1 or -1) to a blob's reference count. A blob that drops to zero
 * is forgotten and unlinked once the batch is committed. */
static void
blob_ref(struct ix_txn *t, const unsigned char h[HASH_LEN], uint64_t size, int delta)
{
	unsigned char k[1 + HASH_LEN], v[16];
	char hex[HASH_HEX_LEN + 1];
	struct buf old;
	uint64_t refs = 0;

	k[0] = 'b';
	memcpy(k + 1, h, HASH_LEN);
	buf_init(&old);
	if (ix_get(t->ix, t, k, sizeof k, &old) == 1 && old.len == 16) {
		refs = get_be64((const unsigned char *)old.p);
		size = get_be64((const unsigned char *)old.p + 8);
	}
	buf_free(&old);
	if (delta < 0 && refs <= 1) {
		ix_del(t, k, sizeof k);
		hash_to_hex(h, hex);
		strv_push_owned(&t->unlink_after, store_path(t->ix->store, "blobs", hex));
		t->blobs_freed++;
		t->bytes_freed += size;
		return;
	}
	put_be64(v, delta < 0 ? refs - 1 : refs + 1);
	put_be64(v + 8, size);
	ix_put(t, k, sizeof k, v, sizeof v);
}

/* Fills e's crate, size and distinct blobs from an entry file. */
static void
entry_from_store(struct ix_entry *e, const struct store_entry *se)
{
	snprintf(e->info.crate, sizeof e->info.crate, "%s", se->crate ? se->crate : "");
	e->blobs = xcalloc(se->n_outputs ? se->n_outputs : 1, HASH_LEN);
	e->blob_sizes = xcalloc(se->n_outputs ? se->n_outputs : 1, sizeof *e->blob_sizes);
	for (size_t i = 0; i < se->n_outputs; i++) {
		size_t j;

		for (j = 0; j < e->n_blobs; j++)
			if (memcmp(e->blobs[j], se->outputs[i].hash, HASH_LEN) == 0)
				break;
		if (j < e->n_blobs)
			continue;
		memcpy(e->blobs[e->n_blobs], se->outputs[i].hash, HASH_LEN);
		e->blob_sizes[e->n_blobs++] = se->outputs[i].size;
		e->info.size += se->outputs[i].size;
	}
}

int
ix_entry_add_from_store(struct ix_txn *t, const unsigned char key[HASH_LEN], int64_t last_use,
    const unsigned char *inv)
{
	struct store_entry se;
	struct ix_entry e;
	struct stat st;
	char hex[HASH_HEX_LEN + 1];
	char *p;
	enum store_get g;

	store_entry_init(&se);
	g = store_entry_read(t->ix->store, key, &se);
	if (g != STORE_FOUND) {
		store_entry_clear(&se);
		return g == STORE_ABSENT ? 0 : g == STORE_CORRUPT ? -2 : -1;
	}
	memset(&e, 0, sizeof e);
	memcpy(e.info.key, key, HASH_LEN);
	entry_from_store(&e, &se);
	hash_to_hex(key, hex);
	p = store_path(t->ix->store, "entries", hex);
	if (stat(p, &st) == 0)
		e.file_size = (uint64_t)st.st_size;
	free(p);
	e.info.created_ms = se.created_ms ? se.created_ms : clock_wall_ms();
	e.info.last_use_ms = last_use >= 0 ? last_use : e.info.created_ms;
	if (inv) {
		e.has_inv = 1;
		memcpy(e.inv, inv, HASH_LEN);
	}
	for (size_t i = 0; i < e.n_blobs; i++)
		blob_ref(t, e.blobs[i], e.blob_sizes[i], +1);
	ix_entry_put(t, &e, -1);
	ix_entry_clear(&e);
	store_entry_clear(&se);
	return 1;
}

void
ix_entry_drop(struct ix_txn *t, const struct ix_entry *e)
{
	unsigned char k[1 + HASH_LEN], lk[1 + 8 + HASH_LEN];

	for (size_t i = 0; i < e->n_blobs; i++)
		blob_ref(t, e->blobs[i], e->blob_sizes[i], -1);
	lru_key(lk, e->info.last_use_ms, e->info.key);
	ix_del(t, lk, sizeof lk);
	k[0] = 'e';
	memcpy(k + 1, e->info.key, HASH_LEN);
	ix_del(t, k, sizeof k);
	k[0] = 'p';
	ix_del(t, k, sizeof k);
}

/* Calls fn for each 64-hex-digit file in the xx/ subdirectories of dir. */
static int
walk_fanout(const char *dir, int (*fn)(const char *, const char *, const struct stat *, void *),
    void *arg)
{
	DIR *d, *sd;
	struct dirent *de, *se;
	int rc = 0;

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char *sub;

		if (strlen(de->d_name) != 2 || de->d_name[0] == '.')
			continue;
		sub = xasprintf("%s/%s", dir, de->d_name);
		if ((sd = opendir(sub)) != NULL) {
			while (rc == 0 && (se = readdir(sd)) != NULL) {
				char *p = xasprintf("%s/%s", sub, se->d_name);
				struct stat st;

				if (hash_hex_valid(se->d_name) && lstat(p, &st) == 0 &&
				    S_ISREG(st.st_mode))
					rc = fn(se->d_name, p, &st, arg);
				free(p);
			}
			closedir(sd);
		}
		free(sub);
	}
	closedir(d);
	return rc;
}

int
ix_walk(struct index *ix, const char *kind,
    int (*fn)(const char *hex, const char *path, const struct stat *st, void *arg), void *arg)
{
	char *dir = xasprintf("%s/%s", ix->dir, kind);
	int rc = walk_fanout(dir, fn, arg);

	if (rc < 0)
		log_warn("index: walk %s", dir);
	free(dir);
	return rc;
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

uint64_t
ix_count(struct index *ix, const char *kind)
{
	uint64_t n = 0;

	ix_walk(ix, kind, count_cb, &n);
	return n;
}

void
ix_progress(struct index *ix, const char *phase, uint64_t done, uint64_t total)
{
	/* a walk may meet files stored after its count: never done past total */
	if (ix->progress != NULL && ix->progress->fn != NULL)
		ix->progress->fn(phase, done, total > 0 && done > total ? done : total,
		    ix->progress->arg);
}

uint64_t
ix_remove_stale(const char *dir, int64_t age_ms)
{
	DIR *d;
	struct dirent *de;
	uint64_t n = 0;
	int64_t now = clock_wall_ms();

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char *p = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;

		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
		    now - (int64_t)st.st_mtime * 1000 >= age_ms && unlink(p) == 0)
			n++;
		free(p);
	}
	closedir(d);
	return n;
}

struct scan_ctx {
	struct index *ix;
	struct index_scan_result *r;
	uint64_t seen; /* entry files looked at, for progress */
};

/* One entry file on disk: index it when the index does not know it. */
static int
scan_disk_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	struct scan_ctx *c = arg;
	unsigned char key[HASH_LEN];
	struct ix_entry e;

	++c->seen; /* told only while index_open builds the index (not gc's scan) */
	if (c->ix->open_progress != NULL && c->ix->open_progress->fn != NULL)
		c->ix->open_progress->fn("entries scanned", c->seen, 0, c->ix->open_progress->arg);
	struct ix_txn t;
	int r;

	if (hash_from_hex(hex, key) < 0)
		return 0;
	r = ix_entry_get(c->ix, NULL, key, &e);
	if (r != 0) {
		if (r == 1)
			ix_entry_clear(&e);
		return r < 0 ? -1 : 0;
	}
	ix_txn_begin(&t, c->ix);
	r = ix_entry_add_from_store(&t, key, (int64_t)st->st_mtime * 1000, NULL);
	if (r == -2) {
		log_warnx("index: entry %s does not decode; removing it", hex);
		unlink(path);
		c->r->corrupt++;
	} else if (r == 1) {
		c->r->added++;
	}
	return ix_txn_commit(&t);
}

/* Drops index entries whose file is gone. */
static int
scan_dropped(struct index *ix, struct index_scan_result *r)
{
	rocksdb_iterator_t *it = ix_iter_prefix(ix, 'e');
	struct ix_txn t;
	int rc;

	ix_txn_begin(&t, ix);
	for (; ix_iter_valid(it, 'e'); rocksdb_iter_next(it)) {
		size_t kn, vn;
		const char *k = rocksdb_iter_key(it, &kn);
		const char *v = rocksdb_iter_value(it, &vn);
		char hex[HASH_HEX_LEN + 1];
		struct ix_entry e;
		struct stat st;
		char *p;

		if (kn != 1 + HASH_LEN)
			continue;
		hash_to_hex((const unsigned char *)k + 1, hex);
		p = store_path(ix->store, "entries", hex);
		if (stat(p, &st) < 0 && errno == ENOENT &&
		    ix_entry_decode((const unsigned char *)k + 1, v, vn, &e) == 0) {
			ix_entry_drop(&t, &e);
			ix_entry_clear(&e);
			r->dropped++;
		}
		free(p);
	}
	rc = ix_iter_error(it);
	rocksdb_iter_destroy(it);
	if (rc < 0) {
		ix_txn_abort(&t);
		return -1;
	}
	return ix_txn_commit(&t);
}

int
index_scan(struct index *ix, struct index_scan_result *r)
{
	struct index_scan_result dummy;
	struct scan_ctx c = { ix, r ? r : &dummy, 0 };

	memset(c.r, 0, sizeof *c.r);
	if (ix->read_only) {
		errno = ENOSPC;
		return -1;
	}
	if (ix_walk(ix, "entries", scan_disk_cb, &c) < 0)
		return -1;
	if (scan_dropped(ix, c.r) < 0)
		return -1;
	if (c.r->added || c.r->dropped || c.r->corrupt)
		log_info("index: scan added %llu, dropped %llu, removed %llu corrupt entries",
		    (unsigned long long)c.r->added, (unsigned long long)c.r->dropped,
		    (unsigned long long)c.r->corrupt);
	return 0;
}

int
index_list(struct index *ix, const char *crate,
    int (*fn)(const struct index_entry_info *e, void *arg), void *arg)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator(ix->db, ix->ro);
	int rc = 0;

	rocksdb_iter_seek_for_prev(it, "l\xff", 2);
	for (; rc == 0 && ix_iter_valid(it, 'l'); rocksdb_iter_prev(it)) {
		size_t kn;
		const char *k = rocksdb_iter_key(it, &kn);
		struct ix_entry e;

		if (kn != 1 + 8 + HASH_LEN ||
		    ix_entry_get(ix, NULL, (const unsigned char *)k + 9, &e) != 1)
			continue;
		if (crate == NULL || strcmp(crate, e.info.crate) == 0)
			rc = fn(&e.info, arg) ? 1 : 0;
		ix_entry_clear(&e);
	}
	if (ix_iter_error(it) < 0)
		rc = -1;
	rocksdb_iter_destroy(it);
	return rc < 0 ? -1 : 0;
}
