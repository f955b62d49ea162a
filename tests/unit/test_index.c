/* Unit tests for index/: journal ingest, LRU gc with shared blobs, verify, rebuild
 * of a lost or damaged index, torn journal tails, rotation, the lock, purge, the
 * one-time upgrade of older read-only blobs. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "index/index.h"
#include "store/journal.h"
#include "store/store.h"

struct fx {
	char dir[64];
	struct store *s;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof *f);

	snprintf(f->dir, sizeof f->dir, "/tmp/kache-ix-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->s = store_open(f->dir);
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_free(&f->s);
	fs_remove_tree(f->dir);
	free(f);
	return 0;
}

/* Puts a blob of n bytes of c into the store. */
static void
put_blob(struct fx *f, char c, size_t n, unsigned char h[HASH_LEN], uint64_t *size)
{
	char *src = xasprintf("%s/tmp/src", f->dir), *d = xmalloc(n);

	memset(d, c, n);
	assert_int_equal(fs_write_atomic(src, d, n, 0644), 0);
	assert_int_equal(store_blob_put(f->s, src, 0, 0, h, size), 0);
	unlink(src);
	free(src);
	free(d);
}

/* Writes an entry whose outputs are blobs of the given fill bytes (1000 bytes
 * each), and journals its miss at ts. */
/* Writes an entry file (a result nobody journalled yet). */
static void
write_entry(struct fx *f, const char *crate, const char *fills, int64_t ts,
    unsigned char key[HASH_LEN])
{
	size_t n = strlen(fills);
	struct store_output *o = xcalloc(n, sizeof *o);
	struct store_entry e;

	for (size_t i = 0; i < n; i++) {
		put_blob(f, fills[i], 1000, o[i].hash, &o[i].size);
		o[i].name = xasprintf("out%zu", i);
		o[i].mode = 0644;
	}
	hash_buffer(crate, strlen(crate), key);
	key[1] = (unsigned char)ts;
	key[2] = (unsigned char)(ts >> 8);
	store_entry_init(&e);
	e.crate = xstrdup(crate);
	e.outputs = o;
	e.n_outputs = n;
	e.created_ms = ts;
	assert_int_equal(store_entry_write(f->s, key, &e), 0);
	store_entry_clear(&e);
}

/* An entry a compile stored, with its miss in the journal. */
static void
add_entry(struct fx *f, const char *crate, const char *fills, int64_t ts,
    unsigned char key[HASH_LEN])
{
	struct journal_event ev;

	write_entry(f, crate, fills, ts, key);
	memset(&ev, 0, sizeof ev);
	ev.type = JOURNAL_MISS;
	ev.ts_ms = ts;
	snprintf(ev.crate, sizeof ev.crate, "%s", crate);
	ev.has_res = 1;
	memcpy(ev.res, key, HASH_LEN);
	ev.ms = 700;
	ev.us = 50;
	assert_int_equal(journal_append(f->dir, &ev), 0);
}

static void
journal(struct fx *f, enum journal_type t, const char *reason, const unsigned char *res, int64_t ts,
    uint64_t ms, uint64_t bytes)
{
	struct journal_event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = t;
	ev.ts_ms = ts;
	snprintf(ev.reason, sizeof ev.reason, "%s", reason);
	if (res) {
		ev.has_res = 1;
		memcpy(ev.res, res, HASH_LEN);
	}
	ev.ms = ms;
	ev.bytes = bytes;
	ev.us = 10;
	assert_int_equal(journal_append(f->dir, &ev), 0);
}

struct prefetch_seen {
	int prefetched, records;
};

static void
record_cb(int type, const unsigned char *res, int prefetched, void *arg)
{
	struct prefetch_seen *ps = arg;

	(void)type;
	(void)res;
	ps->records++;
	ps->prefetched += prefetched;
}

/* Another store's RocksDB info log in /dev/shm/kache-<euid> not written for
 * two weeks (a removed store's) is removed at an open; a fresh one is kept,
 * and so is what is not a RocksDB log. */
static void
test_stale_info_logs_pruned(void **state)
{
	struct fx *f = *state;
	char dir[64], old[128], fresh[128], other[128];
	struct timespec t[2] = { { time(NULL) - 15 * 24 * 3600, 0 },
		{ time(NULL) - 15 * 24 * 3600, 0 } };
	struct index *ix;

	snprintf(dir, sizeof dir, "/dev/shm/kache-%ld", (long)geteuid());
	snprintf(old, sizeof old, "%s/tmp_gone_%ld_store_index_LOG.old.1", dir, (long)getpid());
	snprintf(fresh, sizeof fresh, "%s/tmp_here_%ld_store_index_LOG", dir, (long)getpid());
	snprintf(other, sizeof other, "%s/kept-%ld", dir, (long)getpid());
	ix = index_open(f->dir); /* makes the directory */
	assert_non_null(ix);
	index_free(&ix);
	if (access(dir, W_OK) != 0)
		skip(); /* the logs stay in the index directory then */
	for (int i = 0; i < 3; i++) {
		const char *p = i == 0 ? old : i == 1 ? fresh : other;

		assert_int_equal(fs_write_atomic(p, "x", 1, 0644), 0);
		if (i != 1)
			assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
	}
	ix = index_open(f->dir);
	assert_non_null(ix);
	index_free(&ix);
	assert_int_equal(access(old, F_OK), -1);
	assert_int_equal(access(fresh, F_OK), 0);
	assert_int_equal(access(other, F_OK), 0);
	unlink(fresh);
	unlink(other);
}

/* Where hits come from: the first hit on an entry prefetch imported is
 * prefetched, later ones local, and so are all when a fetch on a miss or a
 * compile that stored it came first, or when it was used before the import.
 * The index is made first (as the indexer does at its start), so that the
 * entries are not found by its first scan. */
static void
test_prefetched_hits(void **state)
{
	struct fx *f = *state;
	unsigned char p1[HASH_LEN], p2[HASH_LEN], p3[HASH_LEN], p4[HASH_LEN], f1[HASH_LEN];
	struct prefetch_seen ps = { 0, 0 };
	struct index_stats st;
	struct index *ix;

	ix = index_open(f->dir);
	assert_non_null(ix);
	index_free(&ix);
	write_entry(f, "serde", "a", 1000, p1);
	write_entry(f, "libc", "b", 1001, p2);
	write_entry(f, "log", "c", 1002, p3);
	add_entry(f, "memchr", "d", 1003, p4); /* compiled here first, and used */
	journal(f, JOURNAL_HIT, "", p4, 1500, 100, 1000);
	write_entry(f, "regex", "e", 1004, f1);
	journal(f, JOURNAL_IMPORT, JOURNAL_IMPORT_PREFETCH, p1, 2000, 0, 1000);
	journal(f, JOURNAL_IMPORT, "prefetch/planner", p2, 2000, 0, 1000);
	journal(f, JOURNAL_IMPORT, "prefetch/closest", p3, 2000, 0, 1000);
	journal(f, JOURNAL_IMPORT, "prefetch/bogus", p4, 2000, 0, 1000); /* counted, no source */
	journal(f, JOURNAL_IMPORT, JOURNAL_IMPORT_FETCH, f1, 2000, 0, 1000);
	journal(f, JOURNAL_HIT, "", p1, 3000, 100, 1000);        /* prefetched */
	journal(f, JOURNAL_HIT, "", p1, 3001, 100, 1000);        /* local: used before */
	journal(f, JOURNAL_REMOTE_HIT, "", p2, 3002, 100, 1000); /* the fetch won */
	journal(f, JOURNAL_HIT, "", p2, 3003, 100, 1000);        /* local */
	journal(f, JOURNAL_MISS, "", p3, 3004, 100, 1000);       /* stored by a compile too */
	journal(f, JOURNAL_HIT, "", p3, 3005, 100, 1000);        /* local */
	journal(f, JOURNAL_HIT, "", p4, 3006, 100, 1000);        /* local: used before */
	journal(f, JOURNAL_HIT, "", f1, 3007, 100, 1000);        /* local */

	ix = index_open(f->dir);
	assert_non_null(ix);
	index_set_record_hook(ix, record_cb, &ps);
	assert_int_equal(index_ingest(ix), 15);
	assert_int_equal(ps.records, 15);
	assert_int_equal(ps.prefetched, 1);
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.hits, 7);
	assert_int_equal(st.prefetched_hits, 1);
	assert_int_equal(st.remote_hits, 1);
	assert_int_equal(st.prefetch_imported, 4);
	assert_int_equal(st.prefetch_imported_from[0], 1); /* planner */
	assert_int_equal(st.prefetch_imported_from[1], 0); /* exact */
	assert_int_equal(st.prefetch_imported_from[2], 1); /* closest */
	assert_int_equal(st.prefetch_imported_from[3], 0); /* packs */
	assert_int_equal(st.fetch_imported, 1);
	assert_int_equal(st.entries, 5);
	index_stats_clear(&st);
	index_free(&ix);
}

static int
exists(struct fx *f, const char *kind, const unsigned char h[HASH_LEN])
{
	char hex[HASH_HEX_LEN + 1], *p;
	struct stat st;
	int r;

	hash_to_hex(h, hex);
	p = store_path(f->s, kind, hex);
	r = stat(p, &st) == 0;
	free(p);
	return r;
}

/* chmod of blob h to mode; its mode before. */
static mode_t
blob_chmod(struct fx *f, const unsigned char h[HASH_LEN], mode_t mode)
{
	char hex[HASH_HEX_LEN + 1], *p;
	struct stat st;

	hash_to_hex(h, hex);
	p = store_path(f->s, "blobs", hex);
	assert_int_equal(stat(p, &st), 0);
	if (mode != 0)
		assert_int_equal(chmod(p, mode), 0);
	free(p);
	return st.st_mode & 07777;
}

/* A store an older kache left (read-only blobs) gets its blobs' owner write bit
 * back once, when its index is opened: the walk is marked done in the index,
 * and a blob made read-only after it (by hand) is not walked for again, not
 * even after a reopen; a new index (removed, or rebuilt) walks again. */
static void
test_upgrade_blob_modes(void **state)
{
	struct fx *f = *state;
	unsigned char x[HASH_LEN], y[HASH_LEN], z[HASH_LEN];
	struct index *ix;
	uint64_t sz;
	char *idx;

	put_blob(f, 'x', 1000, x, &sz);
	put_blob(f, 'y', 1000, y, &sz);
	put_blob(f, 'z', 1000, z, &sz);
	assert_int_equal(blob_chmod(f, z, 0), 0644 & ~fs_umask()); /* a blob made now */
	blob_chmod(f, x, 0400);
	blob_chmod(f, y, 0555);
	ix = index_open(f->dir); /* walks once */
	assert_non_null(ix);
	assert_int_equal(blob_chmod(f, x, 0), 0600);
	assert_int_equal(blob_chmod(f, y, 0), 0755);
	assert_int_equal(blob_chmod(f, z, 0400), 0644 & ~fs_umask()); /* as it was */
	assert_int_equal(index_upgrade_blob_modes(ix), 0);
	index_free(&ix);
	ix = index_open(f->dir);
	assert_non_null(ix);
	assert_int_equal(index_upgrade_blob_modes(ix), 0);
	assert_int_equal(blob_chmod(f, z, 0), 0400);
	index_free(&ix);
	idx = xasprintf("%s/index", f->dir);
	fs_remove_tree(idx);
	free(idx);
	ix = index_open(f->dir);
	assert_non_null(ix);
	assert_int_equal(blob_chmod(f, z, 0), 0600);
	index_free(&ix);
}

struct seen {
	int n;
	unsigned char keys[16][HASH_LEN];
	uint64_t hits[16];
};

static int
seen_cb(const struct index_entry_info *e, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16) {
		memcpy(s->keys[s->n], e->key, HASH_LEN);
		s->hits[s->n] = e->hits;
	}
	s->n++;
	return 0;
}

static void
test_ingest_counters(void **state)
{
	struct fx *f = *state;
	unsigned char a[HASH_LEN], b[HASH_LEN];
	struct index_stats st;
	struct index *ix;
	struct seen sn = { 0 };

	add_entry(f, "serde", "a", 1000, a);
	add_entry(f, "libc", "b", 2000, b);
	journal(f, JOURNAL_HIT, "", a, 3000, 400, 1000);
	journal(f, JOURNAL_HIT, "", a, 4000, 400, 1000);
	journal(f, JOURNAL_REMOTE_HIT, "", b, 5000, 300, 1000);
	journal(f, JOURNAL_PASS, "proc-macro", NULL, 5000, 0, 0);
	journal(f, JOURNAL_PASS, "proc-macro", NULL, 5000, 0, 0);
	journal(f, JOURNAL_PASS, "incremental", NULL, 5000, 0, 0);
	journal(f, JOURNAL_ERROR, "io", NULL, 5000, 0, 0);
	journal(f, JOURNAL_CORRUPT, "blob", NULL, 5000, 0, 0);

	ix = index_open(f->dir);
	assert_non_null(ix);
	assert_int_equal(index_ingest(ix), 10);
	assert_int_equal(index_ingest(ix), 0);
	index_free(&ix);
	assert_null(ix);
	ix = index_open(f->dir); /* counters persist */
	assert_int_equal(index_ingest(ix), 0);
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.remote_hits, 1);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.passes, 3);
	assert_int_equal(st.n_pass_reasons, 2);
	assert_string_equal(st.pass_reasons[0].reason, "incremental");
	assert_int_equal(st.pass_reasons[1].count, 2);
	assert_int_equal(st.errors, 1);
	assert_string_equal(st.error_reasons[0].reason, "io");
	assert_int_equal(st.corrupt, 1);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.bytes_restored, 3000);
	assert_int_equal(st.ms_saved, 1100);
	assert_int_equal(st.compile_ms, 1400);
	assert_int_equal(st.kache_us, 2 * 50 + 8 * 10);
	assert_true(st.store_bytes >= 2000);
	index_stats_clear(&st);
	/* Most recently used first: b (5000), then a (4000, two hits). */
	assert_int_equal(index_list(ix, NULL, seen_cb, &sn), 0);
	assert_int_equal(sn.n, 2);
	assert_memory_equal(sn.keys[0], b, HASH_LEN);
	assert_int_equal(sn.hits[1], 2);
	sn.n = 0;
	assert_int_equal(index_list(ix, "serde", seen_cb, &sn), 0);
	assert_int_equal(sn.n, 1);
	index_free(&ix);
}

/* index_zero: every counter back to zero, their start now, kept across an
 * open; entries and what was ingested kept (nothing counted twice); what
 * comes after counts from zero. */
static void
test_zero_counters(void **state)
{
	struct fx *f = *state;
	unsigned char a[HASH_LEN];
	struct index_stats st;
	struct index *ix;
	int64_t before;

	add_entry(f, "serde", "a", 1000, a);
	journal(f, JOURNAL_HIT, "", a, 3000, 400, 1000);
	journal(f, JOURNAL_PASS, "proc-macro", NULL, 5000, 0, 0);
	journal(f, JOURNAL_ERROR, "io", NULL, 5000, 0, 0);
	ix = index_open(f->dir);
	assert_non_null(ix);
	assert_int_equal(index_ingest(ix), 4);
	before = clock_wall_ms();
	assert_int_equal(index_zero(ix), 0);
	index_free(&ix);
	ix = index_open(f->dir);
	assert_int_equal(index_ingest(ix), 0); /* the journal's place kept */
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.hits + st.misses + st.passes + st.errors + st.bytes_restored, 0);
	assert_int_equal(st.n_pass_reasons + st.n_error_reasons, 0);
	assert_int_equal(st.kache_us + st.ms_saved + st.compile_ms, 0);
	assert_int_equal(st.entries, 1);
	assert_true(st.since_ms >= before && st.since_ms <= clock_wall_ms());
	index_stats_clear(&st);
	journal(f, JOURNAL_HIT, "", a, 6000, 400, 1000);
	assert_int_equal(index_ingest(ix), 1);
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.bytes_restored, 1000);
	assert_int_equal(st.misses, 0);
	index_stats_clear(&st);
	index_free(&ix);
}

static void
test_corrupt_record_forgets_entry(void **state)
{
	struct fx *f = *state;
	unsigned char a[HASH_LEN], b[HASH_LEN];
	struct index_stats st;
	struct index *ix;

	add_entry(f, "a", "a", 1000, a);
	add_entry(f, "b", "b", 2000, b);
	ix = index_open(f->dir);
	assert_int_equal(index_ingest(ix), 2);
	/* A wrapper found it damaged, removed it and said so. */
	assert_int_equal(store_entry_remove(f->s, a), 0);
	journal(f, JOURNAL_CORRUPT, "entry", a, 3000, 0, 0);
	assert_int_equal(index_ingest(ix), 1);
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.corrupt, 1);
	assert_int_equal(st.entries, 1);
	index_stats_clear(&st);
	index_free(&ix);
}

static void
test_gc_lru_and_shared_blobs(void **state)
{
	struct fx *f = *state;
	unsigned char a[HASH_LEN], b[HASH_LEN], c[HASH_LEN], hx[HASH_LEN], hy[HASH_LEN];
	unsigned char hz[HASH_LEN];
	struct index_gc_result r;
	struct index_stats st;
	struct index *ix;
	uint64_t sz;

	add_entry(f, "a", "x", 1000, a);
	add_entry(f, "b", "xy", 2000, b); /* shares blob x with a */
	add_entry(f, "c", "z", 3000, c);
	journal(f, JOURNAL_HIT, "", a, 5000, 1, 1); /* a is now the newest */
	put_blob(f, 'x', 1000, hx, &sz);
	put_blob(f, 'y', 1000, hy, &sz);
	put_blob(f, 'z', 1000, hz, &sz);

	ix = index_open(f->dir);
	assert_non_null(ix);
	assert_int_equal(index_ingest(ix), 4);
	assert_int_equal(index_stats(ix, &st), 0);
	/* Three distinct blobs, shared x counted once. */
	assert_true(st.store_bytes >= 3000 && st.store_bytes < 4000);
	/* One byte under: evicts b only (least recently used); x stays for a. */
	assert_int_equal(index_gc(ix, st.store_bytes - 1, 0, &r, NULL, NULL, NULL), 0);
	index_stats_clear(&st);
	assert_int_equal(r.entries_removed, 1);
	assert_int_equal(r.blobs_removed, 1);
	assert_false(exists(f, "entries", b));
	assert_true(exists(f, "entries", a));
	assert_true(exists(f, "entries", c));
	assert_true(exists(f, "blobs", hx));
	assert_false(exists(f, "blobs", hy));
	assert_true(r.size_after < r.size_before);
	/* Cap 0: everything goes. */
	assert_int_equal(index_gc(ix, 0, 0, &r, NULL, NULL, NULL), 0);
	assert_int_equal(r.entries_removed, 2);
	assert_false(exists(f, "blobs", hx));
	assert_false(exists(f, "blobs", hz));
	assert_false(exists(f, "entries", a));
	assert_int_equal(r.size_after, 0);
	index_free(&ix);
}

/* Sets the mtime of key's entry file to ms. */
static void
age_entry(struct fx *f, const unsigned char key[HASH_LEN], int64_t ms)
{
	struct timespec t[2] = { { ms / 1000, 0 }, { ms / 1000, 0 } };
	char hex[HASH_HEX_LEN + 1], *p;

	hash_to_hex(key, hex);
	p = store_path(f->s, "entries", hex);
	assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
	free(p);
}

/* unused_ms: entries last used longer ago go even when the store is under
 * its cap; the rest stay (ccache's --evict-older-than). */
static void
test_gc_unused_for_long(void **state)
{
	struct fx *f = *state;
	unsigned char a[HASH_LEN], b[HASH_LEN], c[HASH_LEN], h[HASH_LEN];
	int64_t now = clock_wall_ms(), day = 86400000;
	struct index_gc_result r;
	struct index *ix;
	uint64_t sz;

	add_entry(f, "a", "x", now - 10 * day, a);
	add_entry(f, "b", "y", now - 3 * day, b);
	add_entry(f, "c", "z", now - 1000, c);
	age_entry(f, a, now - 10 * day); /* the first scan dates an entry by its file */
	age_entry(f, b, now - 3 * day);
	put_blob(f, 'x', 1000, h, &sz);
	put_blob(f, 'y', 1000, h, &sz);
	put_blob(f, 'z', 1000, h, &sz);
	ix = index_open(f->dir);
	assert_non_null(ix);
	assert_int_equal(index_ingest(ix), 3);
	assert_int_equal(index_gc(ix, 1 << 30, 7 * day, &r, NULL, NULL, NULL), 0);
	assert_int_equal(r.entries_removed, 1);
	assert_false(exists(f, "entries", a));
	assert_true(exists(f, "entries", b));
	assert_int_equal(index_gc(ix, 1 << 30, 0, &r, NULL, NULL, NULL), 0); /* no bound */
	assert_int_equal(r.entries_removed, 0);
	assert_int_equal(index_gc(ix, 1 << 30, 2 * day, &r, NULL, NULL, NULL), 0);
	assert_int_equal(r.entries_removed, 1);
	assert_false(exists(f, "entries", b));
	assert_true(exists(f, "entries", c));
	index_free(&ix);
}

/* Memo files not written for INDEX_MEMO_STALE_MS are removed, younger kept. */
static void
test_gc_old_memo_files(void **state)
{
	struct fx *f = *state;
	unsigned char old[HASH_LEN], young[HASH_LEN];
	struct timespec t[2] = { { 0, 0 }, { 0, 0 } };
	char hex[HASH_HEX_LEN + 1], *p;
	struct index_gc_result r;
	struct index *ix;

	store_memo_put_text(f->s, "old", "x", 1); /* named by the hash of the key */
	store_memo_put_text(f->s, "young", "y", 1);
	hash_buffer("old", 3, old);
	hash_buffer("young", 5, young);
	hash_to_hex(old, hex);
	p = store_path(f->s, "memo", hex);
	t[0].tv_sec = t[1].tv_sec = time(NULL) - INDEX_MEMO_STALE_MS / 1000 - 60;
	assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
	free(p);
	ix = index_open(f->dir);
	assert_int_equal(index_gc(ix, 1 << 30, 0, &r, NULL, NULL, NULL), 0);
	assert_int_equal(r.memo_removed, 1);
	assert_false(exists(f, "memo", old));
	assert_true(exists(f, "memo", young));
	index_free(&ix);
}

static void
test_gc_stale_tmp_and_orphans(void **state)
{
	struct fx *f = *state;
	unsigned char h[HASH_LEN], a[HASH_LEN];
	struct index_gc_result r;
	struct index *ix;
	char *tmp = xasprintf("%s/tmp/leftover", f->dir);
	uint64_t sz;

	add_entry(f, "a", "a", 1000, a);
	put_blob(f, 'o', 10, h, &sz); /* referenced by no entry */
	assert_int_equal(fs_write_atomic(tmp, "x", 1, 0644), 0);
	ix = index_open(f->dir);
	assert_int_equal(index_gc(ix, 1 << 30, 0, &r, NULL, NULL, NULL), 0);
	assert_int_equal(r.tmp_removed, 0); /* young: left alone */
	assert_true(exists(f, "blobs", h));
	index_set_stale_age(ix, 0);
	assert_int_equal(index_gc(ix, 1 << 30, 0, &r, NULL, NULL, NULL), 0);
	assert_int_equal(r.entries_removed, 0);
	assert_int_equal(r.tmp_removed, 1);
	assert_int_equal(r.orphans_removed, 1);
	assert_false(exists(f, "blobs", h));
	assert_true(exists(f, "entries", a));
	index_free(&ix);
	free(tmp);
}

static void
test_verify_flipped_byte(void **state)
{
	struct fx *f = *state;
	unsigned char a[HASH_LEN], b[HASH_LEN], ha[HASH_LEN];
	struct index_verify_result r;
	struct index_stats st;
	struct index *ix;
	char hex[HASH_HEX_LEN + 1], *p;
	uint64_t sz;
	int fd;

	add_entry(f, "a", "a", 1000, a);
	add_entry(f, "b", "b", 2000, b);
	put_blob(f, 'a', 1000, ha, &sz);
	hash_to_hex(ha, hex);
	p = store_path(f->s, "blobs", hex);
	assert_int_equal(chmod(p, 0644), 0);
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "Z", 1, 10), 1);
	close(fd);
	ix = index_open(f->dir);
	assert_int_equal(index_verify(ix, &r, NULL, NULL, NULL), 2);
	assert_int_equal(r.blobs_checked, 2);
	assert_int_equal(r.blobs_corrupt, 1);
	assert_int_equal(r.entries_removed, 1);
	assert_false(exists(f, "blobs", ha));
	assert_false(exists(f, "entries", a));
	assert_true(exists(f, "entries", b));
	assert_int_equal(index_verify(ix, &r, NULL, NULL, NULL), 0);
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.entries, 1);
	index_stats_clear(&st);
	index_free(&ix);
	free(p);
}

/* Overwrites every file in dir with junk. */
static void
garble(const char *dir)
{
	char *cmd = xasprintf("for f in %s/*; do head -c 300 /dev/urandom > \"$f\"; done", dir);

	/* NOLINTNEXTLINE(cert-env33-c): the test garbles files with the shell on purpose */
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void
test_rebuild(void **state)
{
	struct fx *f = *state;
	unsigned char a[HASH_LEN], b[HASH_LEN];
	struct index_stats st;
	struct index *ix;
	struct seen sn = { 0 };
	char *idx = xasprintf("%s/index", f->dir);

	add_entry(f, "a", "a", 1000, a);
	add_entry(f, "b", "ab", 2000, b);
	ix = index_open(f->dir);
	assert_int_equal(index_ingest(ix), 2);
	index_free(&ix);
	/* Lost. */
	assert_int_equal(fs_remove_tree(idx), 0);
	ix = index_open(f->dir);
	assert_non_null(ix);
	assert_false(index_was_rebuilt(ix)); /* missing: just created and filled */
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.misses, 0); /* counters restart */
	assert_true(st.store_bytes >= 2000 && st.store_bytes < 3000);
	index_stats_clear(&st);
	index_free(&ix);
	/* Damaged. */
	garble(idx);
	ix = index_open(f->dir);
	assert_non_null(ix);
	assert_true(index_was_rebuilt(ix));
	assert_int_equal(index_list(ix, NULL, seen_cb, &sn), 0);
	assert_int_equal(sn.n, 2);
	/* Blob refs were rebuilt too: the shared blob counts once, and a gc that
	 * evicts one entry keeps the blob the other still uses. */
	assert_int_equal(index_stats(ix, &st), 0);
	assert_true(st.store_bytes >= 2000 && st.store_bytes < 3000);
	assert_int_equal(index_ingest(ix), 2); /* the journal is counted again */
	{
		struct index_gc_result r;
		unsigned char ha[HASH_LEN];
		uint64_t sz;

		put_blob(f, 'a', 1000, ha, &sz);
		journal(f, JOURNAL_HIT, "", a, 9000000000000LL, 1, 1); /* b is now LRU */
		assert_int_equal(index_gc(ix, st.store_bytes - 1, 0, &r, NULL, NULL, NULL), 0);
		assert_int_equal(r.entries_removed, 1);
		assert_int_equal(r.blobs_removed, 1);
		assert_false(exists(f, "entries", b));
		assert_true(exists(f, "blobs", ha));
	}
	index_stats_clear(&st);
	index_free(&ix);
	free(idx);
}

/* The bytes journal_append writes for one hit record. */
static void
record_bytes(struct buf *out)
{
	char dir[] = "/tmp/kache-ixr-XXXXXX";
	struct journal_event ev;
	char *p;

	assert_non_null(mkdtemp(dir));
	p = xasprintf("%s/journal", dir);
	assert_int_equal(fs_mkdir_p(p, 0755), 0);
	free(p);
	memset(&ev, 0, sizeof ev);
	ev.type = JOURNAL_HIT;
	ev.ts_ms = 42;
	ev.ms = 5;
	assert_int_equal(journal_append(dir, &ev), 0);
	p = xasprintf("%s/journal/events", dir);
	assert_int_equal(fs_read_file(p, out, 1 << 20), 0);
	free(p);
	fs_remove_tree(dir);
}

static void
append_raw(struct fx *f, const char *name, const void *d, size_t n)
{
	char *p = xasprintf("%s/journal/%s", f->dir, name);
	int fd = open(p, O_WRONLY | O_APPEND | O_CREAT, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, d, n), (ssize_t)n);
	close(fd);
	free(p);
}

static void
test_torn_tail(void **state)
{
	struct fx *f = *state;
	struct index_stats st;
	struct index *ix;
	struct buf rec;

	buf_init(&rec);
	record_bytes(&rec);
	append_raw(f, "events", rec.p, rec.len);
	append_raw(f, "events", rec.p, 7); /* a writer mid-record */
	ix = index_open(f->dir);
	assert_int_equal(index_ingest(ix), 1);
	assert_int_equal(index_ingest(ix), 0);
	append_raw(f, "events", rec.p + 7, rec.len - 7);
	assert_int_equal(index_ingest(ix), 1);
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.ms_saved, 10);
	index_stats_clear(&st);
	index_free(&ix);
	buf_free(&rec);
}

static void
test_rotation(void **state)
{
	struct fx *f = *state;
	struct index_stats st;
	struct index *ix;
	struct buf rec;
	struct stat sb;
	char *ev1 = xasprintf("%s/journal/events.1", f->dir);
	char *ev2 = xasprintf("%s/journal/events.2", f->dir);

	buf_init(&rec);
	record_bytes(&rec);
	append_raw(f, "events", rec.p, rec.len);
	append_raw(f, "events", rec.p, rec.len);
	ix = index_open(f->dir);
	index_set_rotation(ix, 1, 60000);
	assert_int_equal(index_ingest(ix), 2);
	assert_int_equal(stat(ev1, &sb), 0); /* rotated */
	/* A wrapper that opened events before the rename, and a new one. */
	append_raw(f, "events.1", rec.p, rec.len);
	append_raw(f, "events", rec.p, rec.len);
	assert_int_equal(index_ingest(ix), 2);
	assert_int_equal(stat(ev1, &sb), 0); /* within its grace: kept */
	assert_int_equal(stat(ev2, &sb), 0);
	index_set_rotation(ix, 1, 0);
	append_raw(f, "events.1", rec.p, rec.len);
	assert_int_equal(index_ingest(ix), 1);
	assert_int_equal(stat(ev1, &sb), -1); /* finished and gone */
	assert_int_equal(stat(ev2, &sb), -1);
	index_free(&ix);
	/* Reopened: nothing is applied twice. */
	ix = index_open(f->dir);
	assert_int_equal(index_ingest(ix), 0);
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.hits, 5);
	index_stats_clear(&st);
	index_free(&ix);
	buf_free(&rec);
	free(ev1);
	free(ev2);
}

static void
test_lock_held(void **state)
{
	struct fx *f = *state;
	struct index *ix = index_open(f->dir), *ix2;

	assert_non_null(ix);
	ix2 = index_open(f->dir);
	assert_null(ix2);
	assert_int_equal(errno, EBUSY);
	index_free(&ix);
	ix2 = index_open(f->dir);
	assert_non_null(ix2);
	index_free(&ix2);
}

static void
test_purge(void **state)
{
	struct fx *f = *state;
	unsigned char a[HASH_LEN];
	struct index_purge_result r;
	struct index_stats st;
	struct index *ix;

	add_entry(f, "a", "ab", 1000, a);
	ix = index_open(f->dir);
	assert_int_equal(index_ingest(ix), 1);
	assert_int_equal(index_purge(ix, &r, NULL), 0);
	assert_int_equal(r.entries, 1);
	assert_int_equal(r.blobs, 2);
	assert_true(r.bytes_freed >= 2000);
	assert_false(exists(f, "entries", a));
	assert_int_equal(index_ingest(ix), 0);
	assert_int_equal(index_stats(ix, &st), 0);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.misses, 0);
	index_stats_clear(&st);
	index_free(&ix);
}

/* The last progress report of each phase, in order of first appearance. */
struct seen_progress {
	char phase[8][24];
	uint64_t done[8], total[8];
	int n;
};

static void
progress_cb(const char *phase, uint64_t done, uint64_t total, void *arg)
{
	struct seen_progress *p = arg;

	if (p->n == 0 || strcmp(p->phase[p->n - 1], phase) != 0) {
		assert_true(p->n < 8);
		snprintf(p->phase[p->n++], sizeof p->phase[0], "%s", phase);
	}
	assert_true(total == 0 || done <= total);
	p->done[p->n - 1] = done;
	p->total[p->n - 1] = total;
}

/* verify, gc and purge tell their progress: each phase ends at its total,
 * which is what there was to count. */
static void
test_progress(void **state)
{
	struct fx *f = *state;
	struct seen_progress sp = { 0 };
	struct index_progress pg = { progress_cb, &sp };
	struct index_verify_result vr;
	struct index_purge_result pr;
	struct index_gc_result gr;
	unsigned char a[HASH_LEN], b[HASH_LEN];
	struct index *ix;

	add_entry(f, "a", "ab", 1000, a);
	add_entry(f, "b", "cde", 2000, b);
	ix = index_open(f->dir);
	assert_int_equal(index_verify(ix, &vr, NULL, NULL, &pg), 0);
	assert_int_equal(sp.n, 2); /* no manifests here */
	assert_string_equal(sp.phase[0], "entries");
	assert_true(sp.done[0] == 2 && sp.total[0] == 2);
	assert_string_equal(sp.phase[1], "blobs");
	assert_true(sp.done[1] == 5 && sp.total[1] == 5);
	memset(&sp, 0, sizeof sp);
	assert_int_equal(index_gc(ix, 4000, 0, &gr, NULL, NULL, &pg), 0);
	assert_string_equal(sp.phase[0], "entries removed");
	assert_true(sp.done[0] == 1 && sp.total[0] == 0 && gr.entries_removed == 1);
	assert_string_equal(sp.phase[sp.n - 1], "blobs");
	assert_true(sp.done[sp.n - 1] == 5 - gr.blobs_removed);
	assert_true(sp.total[sp.n - 1] == 5 - gr.blobs_removed);
	memset(&sp, 0, sizeof sp);
	assert_int_equal(index_purge(ix, &pr, &pg), 0);
	assert_int_equal(sp.n, 2);
	assert_true(sp.done[0] == 1 && sp.total[0] == 1);
	assert_true(sp.done[1] == 5 - gr.blobs_removed && sp.total[1] == sp.done[1]);
	index_free(&ix);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_zero_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetched_hits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_info_logs_pruned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record_forgets_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_lru_and_shared_blobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_stale_tmp_and_orphans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_unused_for_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_old_memo_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_blob_modes, setup, teardown),
	};

	log_init("test", stderr, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
