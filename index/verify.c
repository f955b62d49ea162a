/* kache verify: every record and blob of the store checked, the bad ones removed.
 *
 * Entries and manifests must pass their checksum and decode (store/record.c);
 * an entry must name only blobs that exist with the size it records; a blob's
 * content must hash to its name. Whatever fails is removed (and dropped from the
 * index), so that the next build compiles it again, and reported by name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "index/internal.h"

struct verify_ctx {
	struct index *ix;
	struct index_verify_result *r;
	void (*report)(const char *, const char *, void *);
	void *arg;
	uint64_t total; /* of the files of the walk under way, for progress */
};

static void say(struct verify_ctx *c, const char *what, const char *hex);
static int drop_entry(struct verify_ctx *c, const unsigned char key[HASH_LEN], const char *path);
static const char *entry_blobs_bad(struct store *s, const struct store_entry *e);
static int verify_entry_cb(const char *hex, const char *path, const struct stat *st, void *arg);
static int verify_manifest_cb(const char *hex, const char *path, const struct stat *st, void *arg);
static int verify_blob_cb(const char *hex, const char *path, const struct stat *st, void *arg);
static int verify_indexed(struct verify_ctx *c);
static int verify_walk(struct verify_ctx *c, const char *kind,
    int (*fn)(const char *, const char *, const struct stat *, void *));

static void
say(struct verify_ctx *c, const char *what, const char *hex)
{
	if (c->report)
		c->report(what, hex, c->arg);
}

/* Removes the entry key: through the index when it knows it (its blobs are
 * released), else its file alone. */
static int
drop_entry(struct verify_ctx *c, const unsigned char key[HASH_LEN], const char *path)
{
	struct index_gc_result gr;
	struct ix_entry e;
	int r = ix_entry_get(c->ix, NULL, key, &e);

	memset(&gr, 0, sizeof gr);
	if (r < 0)
		return -1;
	if (r == 1) {
		r = ix_evict(c->ix, &e, &gr);
		ix_entry_clear(&e);
		return r;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		log_warn("index: verify: unlink %s", path);
		return -1;
	}
	return 0;
}

/* NULL when every output of e names a blob present with the size e records,
 * else what is wrong, for the report. */
static const char *
entry_blobs_bad(struct store *s, const struct store_entry *e)
{
	char hex[HASH_HEX_LEN + 1];
	const char *bad = NULL;
	struct stat st;

	for (size_t i = 0; i < e->n_outputs && bad == NULL; i++) {
		char *p;

		hash_to_hex(e->outputs[i].hash, hex);
		p = store_path(s, "blobs", hex);
		if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
			bad = "entry with a missing blob (removed)";
		else if ((uint64_t)st.st_size != e->outputs[i].size)
			bad = "entry naming a blob of another size (removed)";
		free(p);
	}
	return bad;
}

/* One entry file: checksum, decode, then the blobs it names. */
static int
verify_entry_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	struct verify_ctx *c = arg;
	unsigned char key[HASH_LEN];
	struct store_entry e;
	enum store_get g;
	const char *why = NULL;

	(void)st;
	if (hash_from_hex(hex, key) < 0)
		return 0;
	c->r->entries_checked++;
	ix_progress(c->ix, "entries", c->r->entries_checked, c->total);
	g = store_entry_read(c->ix->store, key, &e);
	if (g == STORE_CORRUPT) {
		c->r->entries_corrupt++;
		why = "corrupt entry (removed)";
	} else if (g == STORE_FOUND && (why = entry_blobs_bad(c->ix->store, &e)) != NULL) {
		c->r->entries_removed++;
	} else if (g == STORE_IOERR) {
		log_warn("index: verify: read %s", path);
	}
	store_entry_clear(&e);
	if (why == NULL)
		return 0;
	say(c, why, hex);
	return drop_entry(c, key, path);
}

/* One manifest file: checksum and decode. */
static int
verify_manifest_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	struct verify_ctx *c = arg;
	unsigned char key[HASH_LEN];
	struct store_manifest m;
	enum store_get g;

	(void)st;
	if (hash_from_hex(hex, key) < 0)
		return 0;
	c->r->manifests_checked++;
	ix_progress(c->ix, "manifests", c->r->manifests_checked, c->total);
	g = store_manifest_read(c->ix->store, key, &m);
	store_manifest_clear(&m);
	if (g == STORE_IOERR)
		log_warn("index: verify: read %s", path);
	if (g != STORE_CORRUPT)
		return 0;
	c->r->manifests_corrupt++;
	say(c, "corrupt manifest (removed)", hex);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("index: verify: unlink %s", path);
	return 0;
}

/* Re-hashes one blob; one whose content does not match its name is removed. */
static int
verify_blob_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	struct verify_ctx *c = arg;
	unsigned char h[HASH_LEN];
	char got[HASH_HEX_LEN + 1];
	uint64_t size;

	(void)st;
	c->r->blobs_checked++;
	ix_progress(c->ix, "blobs", c->r->blobs_checked, c->total);
	if (hash_file(path, h, &size) < 0) {
		log_warn("index: verify: read %s", path);
		return 0;
	}
	c->r->bytes_checked += size;
	hash_to_hex(h, got);
	if (strcmp(got, hex) == 0)
		return 0;
	c->r->blobs_corrupt++;
	say(c, "corrupt blob (removed)", hex);
	if (unlink(path) < 0)
		log_warn("index: verify: unlink %s", path);
	return 0;
}

/* Removes every indexed entry that references a blob no longer on disk (after
 * the blob walk removed the damaged ones). */
static int
verify_indexed(struct verify_ctx *c)
{
	rocksdb_iterator_t *it = ix_iter_prefix(c->ix, 'e');
	char hex[HASH_HEX_LEN + 1];
	int rc = 0;

	for (; rc == 0 && ix_iter_valid(it, 'e'); rocksdb_iter_next(it)) {
		size_t kn, vn, i;
		const char *k = rocksdb_iter_key(it, &kn);
		const char *v = rocksdb_iter_value(it, &vn);
		struct index_gc_result gr;
		struct ix_entry e;

		if (kn != 1 + HASH_LEN ||
		    ix_entry_decode((const unsigned char *)k + 1, v, vn, &e) < 0)
			continue;
		for (i = 0; i < e.n_blobs; i++) {
			struct stat st;
			char *p;

			hash_to_hex(e.blobs[i], hex);
			p = store_path(c->ix->store, "blobs", hex);
			if (stat(p, &st) < 0 && errno == ENOENT)
				i = e.n_blobs + 1;
			free(p);
		}
		if (i > e.n_blobs) {
			hash_to_hex(e.info.key, hex);
			say(c, "entry with a missing blob (removed)", hex);
			memset(&gr, 0, sizeof gr);
			rc = ix_evict(c->ix, &e, &gr);
			c->r->entries_removed++;
		}
		ix_entry_clear(&e);
	}
	if (ix_iter_error(it) < 0)
		rc = -1;
	rocksdb_iter_destroy(it);
	return rc;
}

/* One walk over kind, its files counted first for the progress. */
static int
verify_walk(struct verify_ctx *c, const char *kind,
    int (*fn)(const char *, const char *, const struct stat *, void *))
{
	c->total = ix_count(c->ix, kind);
	return ix_walk(c->ix, kind, fn, c);
}

long
index_verify(struct index *ix, struct index_verify_result *r,
    void (*report)(const char *what, const char *hex, void *arg), void *arg,
    const struct index_progress *pg)
{
	struct verify_ctx c = { ix, r, report, arg, 0 };
	struct index_scan_result sr;
	long rc = -1;

	memset(r, 0, sizeof *r);
	ix->progress = pg;
	if (index_ingest(ix) < 0 || verify_walk(&c, "entries", verify_entry_cb) < 0 ||
	    verify_walk(&c, "manifests", verify_manifest_cb) < 0 || index_scan(ix, &sr) < 0)
		goto out;
	r->entries_corrupt += sr.corrupt;
	if (verify_walk(&c, "blobs", verify_blob_cb) < 0 || verify_indexed(&c) < 0)
		goto out;
	rc = (long)(r->blobs_corrupt + r->entries_corrupt + r->entries_removed +
	    r->manifests_corrupt);
out:
	ix->progress = NULL;
	return rc;
}
