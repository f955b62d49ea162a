/* Unit tests for store/: records round-trip, hostile msgpack, blobs, memo, journal. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"
#include "store/codec.h"
#include "store/journal.h"
#include "store/pending.h"
#include "store/store.h"

static char *
tmpdir(void)
{
	char t[] = "/tmp/kache-store-XXXXXX";

	assert_non_null(mkdtemp(t));
	return xstrdup(t);
}

static void
test_entry_roundtrip(void **state)
{
	char *dir = tmpdir(), *src = xasprintf("%s/out.rlib", dir);
	struct store *s = store_open(dir);
	struct store_entry e, back;
	struct store_output o = { .name = "libx.rlib", .mode = 0644 };
	unsigned char key[HASH_LEN] = { 1, 2, 3 };

	(void)state;
	assert_int_equal(fs_write_atomic(src, "rlib bytes", 10, 0644), 0);
	assert_int_equal(store_blob_put(s, src, 0, 0, o.hash, &o.size), 0);
	assert_int_equal(o.size, 10);
	store_entry_init(&e);
	e.crate = "x";
	e.outputs = &o;
	e.n_outputs = 1;
	e.depinfo_name = "x.d";
	buf_addstr(&e.depinfo, "@@KACHE_T@@/x.d: src/lib.rs\n");
	buf_addstr(&e.err, "warning: unused\n");
	e.compile_ms = 1234;
	assert_int_equal(store_entry_write(s, key, &e), 0);
	assert_int_equal(store_entry_read(s, key, &back), STORE_FOUND);
	assert_string_equal(back.crate, "x");
	assert_int_equal(back.n_outputs, 1);
	assert_string_equal(back.outputs[0].name, "libx.rlib");
	assert_memory_equal(back.outputs[0].hash, o.hash, HASH_LEN);
	assert_int_equal(back.compile_ms, 1234);
	assert_string_equal(back.err.p, "warning: unused\n");
	store_entry_clear(&back);
	buf_free(&e.depinfo);
	buf_free(&e.err);
	key[0] = 9;
	assert_int_equal(store_entry_read(s, key, &back), STORE_ABSENT);
	store_free(&s);
	fs_remove_tree(dir);
	free(src);
	free(dir);
}

/* A build script probe's failure: an entry of its own format (2) with its
 * exit status and no outputs, which readers of format 1 refuse as damaged;
 * a failure with outputs is not an entry; a success stays format 1. */
static void
test_entry_of_a_failed_probe(void **state)
{
	struct store_entry e, back;
	struct store_output o = { .name = "libx.rmeta", .mode = 0644 };
	struct buf b;
	msgpack_zone zone;
	msgpack_object root;
	uint64_t v = 0;

	(void)state;
	store_entry_init(&e);
	buf_init(&b);
	e.crate = "probe";
	e.status = 1;
	buf_addstr(&e.err, "error[E0554]: #![feature] may not be used on the stable channel\n");
	assert_int_equal(store_entry_encode(&e, &b), 0);
	msgpack_zone_init(&zone, 1024);
	assert_int_equal(codec_unpack(b.p, b.len, &zone, &root), 0);
	assert_int_equal(codec_get_u64(&root, "v", &v), 0);
	assert_int_equal(v, STORE_ENTRY_FAILED_FORMAT);
	msgpack_zone_destroy(&zone);
	assert_int_equal(store_entry_decode(b.p, b.len, &back), 0);
	assert_int_equal(back.status, 1);
	assert_int_equal(back.n_outputs, 0);
	assert_null(back.depinfo_name);
	assert_string_equal(back.err.p, e.err.p);
	store_entry_clear(&back);
	/* a failure with an output is refused */
	buf_reset(&b);
	e.outputs = &o;
	e.n_outputs = 1;
	assert_int_equal(store_entry_encode(&e, &b), 0);
	assert_int_equal(store_entry_decode(b.p, b.len, &back), -1);
	/* a success: format 1, status 0 */
	buf_reset(&b);
	e.status = 0;
	assert_int_equal(store_entry_encode(&e, &b), 0);
	msgpack_zone_init(&zone, 1024);
	assert_int_equal(codec_unpack(b.p, b.len, &zone, &root), 0);
	assert_int_equal(codec_get_u64(&root, "v", &v), 0);
	assert_int_equal(v, STORE_FORMAT);
	assert_null(codec_map_get(&root, "status"));
	msgpack_zone_destroy(&zone);
	assert_int_equal(store_entry_decode(b.p, b.len, &back), 0);
	assert_int_equal(back.status, 0);
	store_entry_clear(&back);
	buf_free(&e.err);
	buf_free(&b);
}

static void
test_manifest_keeps_newest(void **state)
{
	char *dir = tmpdir();
	struct store *s = store_open(dir);
	struct store_input in = { .path = "@@KACHE_W@@/src/lib.rs" };
	struct store_envdep env = { .name = "OUT_DIR", .value = NULL };
	struct store_candidate c = { .inputs = &in, .n_inputs = 1, .envs = &env, .n_envs = 1 };
	struct store_manifest m;
	unsigned char key[HASH_LEN] = { 7 };

	(void)state;
	for (int i = 0; i < STORE_MAX_CANDIDATES + 4; i++) {
		c.result[0] = (unsigned char)i;
		assert_int_equal(store_manifest_add(s, key, &c), 0);
	}
	c.result[0] = 3; /* re-adding moves it to the front, no duplicate */
	assert_int_equal(store_manifest_add(s, key, &c), 0);
	assert_int_equal(store_manifest_read(s, key, &m), STORE_FOUND);
	assert_int_equal(m.n, STORE_MAX_CANDIDATES);
	assert_int_equal(m.c[0].result[0], 3);
	assert_int_equal(m.c[1].result[0], STORE_MAX_CANDIDATES + 3);
	assert_string_equal(m.c[0].inputs[0].path, "@@KACHE_W@@/src/lib.rs");
	assert_null(m.c[0].envs[0].value);
	store_manifest_clear(&m);
	store_free(&s);
	fs_remove_tree(dir);
	free(dir);
}

static void
test_hostile_msgpack(void **state)
{
	/* array32 declaring 2^32-1 elements with nothing behind it */
	const char huge[] = { (char)0xdd, (char)0xff, (char)0xff, (char)0xff, (char)0xff, 0x01 };
	/* map16 declaring 1000 pairs */
	const char map[] = { (char)0xde, 0x03, (char)0xe8, (char)0xa1, 'a', 0x01 };
	/* str32 longer than the data */
	const char str[] = { (char)0xdb, 0x00, 0x10, 0x00, 0x00, 'x' };
	const char ok[] = { (char)0x82, (char)0xa1, 'v', 0x01, (char)0xa1, 'x', (char)0x90 };
	char deep[64];
	struct store_entry e;
	struct store_manifest m;

	(void)state;
	assert_int_equal(codec_check(huge, sizeof huge), -1);
	assert_int_equal(codec_check(map, sizeof map), -1);
	assert_int_equal(codec_check(str, sizeof str), -1);
	assert_int_equal(codec_check(ok, sizeof ok), 0);
	assert_int_equal(codec_check(ok, sizeof ok - 1), -1);
	memset(deep, (char)0x91, sizeof deep); /* 64 nested one-element arrays */
	assert_int_equal(codec_check(deep, sizeof deep), -1);
	assert_int_equal(store_entry_decode(huge, sizeof huge, &e), -1);
	assert_int_equal(store_manifest_decode(ok, sizeof ok, &m), -1);
	assert_int_equal(store_entry_decode("garbage", 7, &e), -1);
}

/* Flips every byte of the file at path, one at a time, and checks read(): it
 * must say STORE_CORRUPT each time, never serve the damaged record. */
static void
flip_each_byte(const char *path, int (*read)(void *arg), void *arg)
{
	struct buf b;

	buf_init(&b);
	assert_int_equal(fs_read_file(path, &b, 1 << 20), 0);
	assert_true(b.len > 0);
	for (size_t i = 0; i < b.len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			b.p[i] ^= (char)(1 << bit);
			assert_int_equal(fs_write_atomic(path, b.p, b.len, 0644), 0);
			if (read(arg) != STORE_CORRUPT)
				fail_msg("byte %zu bit %d flipped: not seen as corrupt", i, bit);
			b.p[i] ^= (char)(1 << bit);
		}
	}
	/* truncated at every length */
	for (size_t n = 0; n < b.len; n++) {
		assert_int_equal(fs_write_atomic(path, b.p, n, 0644), 0);
		if (read(arg) != STORE_CORRUPT)
			fail_msg("truncated to %zu bytes: not seen as corrupt", n);
	}
	assert_int_equal(fs_write_atomic(path, b.p, b.len, 0644), 0);
	assert_int_equal(read(arg), STORE_FOUND);
	buf_free(&b);
}

struct flip_ctx {
	struct store *s;
	unsigned char key[HASH_LEN];
};

static int
read_entry(void *arg)
{
	struct flip_ctx *c = arg;
	struct store_entry e;
	enum store_get g = store_entry_read(c->s, c->key, &e);

	store_entry_clear(&e);
	return (int)g;
}

static int
read_manifest(void *arg)
{
	struct flip_ctx *c = arg;
	struct store_manifest m;
	enum store_get g = store_manifest_read(c->s, c->key, &m);

	store_manifest_clear(&m);
	return (int)g;
}

static void
test_flipped_records_are_corrupt(void **state)
{
	char *dir = tmpdir(), *p;
	struct flip_ctx c = { .key = { 5, 6 } };
	struct store_output o = { .name = "libx.rlib", .mode = 0644, .size = 3 };
	struct store_input in = { .path = "@@KACHE_W@@/src/lib.rs" };
	struct store_envdep env = { .name = "V", .value = "1" };
	struct store_candidate cand = { .inputs = &in, .n_inputs = 1, .envs = &env, .n_envs = 1 };
	struct store_entry e;
	char hex[HASH_HEX_LEN + 1];

	(void)state;
	c.s = store_open(dir);
	store_entry_init(&e);
	e.crate = "x";
	e.outputs = &o;
	e.n_outputs = 1;
	e.depinfo_name = "x.d";
	buf_addstr(&e.depinfo, "@@KACHE_T@@/x.d: src/lib.rs\n");
	assert_int_equal(store_entry_write(c.s, c.key, &e), 0);
	hash_to_hex(c.key, hex);
	p = store_path(c.s, "entries", hex);
	flip_each_byte(p, read_entry, &c);
	free(p);
	buf_free(&e.depinfo);
	assert_int_equal(store_manifest_add(c.s, c.key, &cand), 0);
	p = store_path(c.s, "manifests", hex);
	flip_each_byte(p, read_manifest, &c);
	free(p);
	store_free(&c.s);
	fs_remove_tree(dir);
	free(dir);
}

/* A whole record moved under another key, or an entry put where a manifest
 * belongs, is not served either: the checksum covers the kind and the key. */
static void
test_record_under_wrong_name_is_corrupt(void **state)
{
	char *dir = tmpdir(), *a, *b;
	struct flip_ctx c = { .key = { 1 } };
	unsigned char other[HASH_LEN] = { 2 };
	struct store_entry e;
	char hex[HASH_HEX_LEN + 1];

	(void)state;
	c.s = store_open(dir);
	store_entry_init(&e);
	e.crate = "x";
	assert_int_equal(store_entry_write(c.s, other, &e), 0);
	hash_to_hex(other, hex);
	a = store_path(c.s, "entries", hex);
	hash_to_hex(c.key, hex);
	b = store_path(c.s, "entries", hex);
	assert_int_equal(fs_mkdir_p(b, 0755), 0);
	assert_int_equal(rmdir(b), 0); /* leaves the fan-out directory */
	assert_int_equal(fs_copy_atomic(a, b, 0644), 0);
	assert_int_equal(read_entry(&c), STORE_CORRUPT);
	free(b);
	b = store_path(c.s, "manifests", hex);
	assert_int_equal(fs_mkdir_p(b, 0755), 0);
	assert_int_equal(rmdir(b), 0);
	assert_int_equal(fs_copy_atomic(a, b, 0644), 0);
	assert_int_equal(read_manifest(&c), STORE_CORRUPT);
	free(a);
	free(b);
	store_free(&c.s);
	fs_remove_tree(dir);
	free(dir);
}

static void
count_event(const struct journal_event *ev, void *arg)
{
	int *n = arg;

	if (ev->type == JOURNAL_HIT && strcmp(ev->crate, "serde") == 0 && ev->ms == 42)
		(*n)++;
}

static void
test_journal_roundtrip_and_torn_tail(void **state)
{
	char *dir = tmpdir(), *path;
	struct store *s = store_open(dir);
	struct journal_event ev = { .type = JOURNAL_HIT, .ms = 42 };
	struct buf b;
	size_t used;
	int n = 0;

	(void)state;
	strcpy(ev.crate, "serde");
	assert_int_equal(journal_append(dir, &ev), 0);
	assert_int_equal(journal_append(dir, &ev), 0);
	path = xasprintf("%s/journal/events", dir);
	buf_init(&b);
	assert_int_equal(fs_read_file(path, &b, 1 << 20), 0);
	used = journal_parse(b.p, b.len - 3, count_event, &n);
	assert_int_equal(n, 1); /* the torn second record waits */
	used += journal_parse(b.p + used, b.len - used, count_event, &n);
	assert_int_equal(n, 2);
	assert_int_equal(used, b.len);
	buf_free(&b);
	free(path);
	store_free(&s);
	fs_remove_tree(dir);
	free(dir);
}

static void
take_local(const struct journal_event *ev, void *arg)
{
	int *v = arg;

	v[v[0] + 1] = ev->local_only;
	v[0]++;
}

/* A result kept on this machine carries the flag through the journal; a
 * record without it (every record before it) reads as not kept. */
static void
test_journal_local_only(void **state)
{
	char *dir = tmpdir(), *path;
	struct store *s = store_open(dir);
	struct journal_event ev = { .type = JOURNAL_MISS, .has_res = 1, .local_only = 1 };
	struct buf b;
	int got[4] = { 0 };

	(void)state;
	strcpy(ev.crate, "app");
	assert_int_equal(journal_append(dir, &ev), 0);
	ev.local_only = 0;
	assert_int_equal(journal_append(dir, &ev), 0);
	path = xasprintf("%s/journal/events", dir);
	buf_init(&b);
	assert_int_equal(fs_read_file(path, &b, 1 << 20), 0);
	assert_int_equal(journal_parse(b.p, b.len, take_local, got), b.len);
	assert_int_equal(got[0], 2);
	assert_int_equal(got[1], 1);
	assert_int_equal(got[2], 0);
	buf_free(&b);
	free(path);
	store_free(&s);
	fs_remove_tree(dir);
	free(dir);
}

static void
take_ws(const struct journal_event *ev, void *arg)
{
	struct strv *v = arg;

	strv_push(v, ev->ws);
}

/* The workspace id a record carries: kept when it is 16 lowercase hex digits,
 * dropped (as unknown) otherwise; a record without one still parses. */
static void
test_journal_workspace_id(void **state)
{
	static const char *const ids[] = { "0123456789abcdef", "0123456789ABCDEF",
		"../../etc/passwd", "" };
	static const char *const want[] = { "0123456789abcdef", "", "", "" };
	char *dir = tmpdir(), *path;
	struct store *s = store_open(dir);
	struct journal_event ev = { .type = JOURNAL_MISS };
	struct strv got;
	struct buf b;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		snprintf(ev.ws, sizeof ev.ws, "%s", ids[i]);
		assert_int_equal(journal_append(dir, &ev), 0);
	}
	path = xasprintf("%s/journal/events", dir);
	buf_init(&b);
	strv_init(&got);
	assert_int_equal(fs_read_file(path, &b, 1 << 20), 0);
	assert_int_equal(journal_parse(b.p, b.len, take_ws, &got), b.len);
	assert_int_equal(got.n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(got.v[i], want[i]);
	assert_true(journal_ws_valid("0123456789abcdef"));
	assert_false(journal_ws_valid("0123456789abcdeF"));
	assert_false(journal_ws_valid("0123456789abcde"));
	strv_free(&got);
	buf_free(&b);
	free(path);
	store_free(&s);
	fs_remove_tree(dir);
	free(dir);
}

static void
take_lang(const struct journal_event *ev, void *arg)
{
	strv_push(arg, journal_lang(ev));
}

/* A record's compiler language: c, c++ or asm kept; anything else (a longer
 * string, another word) and none read as rustc's. */
static void
test_journal_language(void **state)
{
	static const char *const langs[] = { "c", "c++", "asm", "", "cob" };
	static const char *const want[] = { "c", "c++", "asm", "rust", "rust" };
	char *dir = tmpdir(), *path = xasprintf("%s/journal/events", dir);
	struct store *s = store_open(dir);
	struct journal_event ev = { .type = JOURNAL_HIT };
	struct strv got;
	struct buf b;

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		snprintf(ev.lang, sizeof ev.lang, "%s", langs[i]);
		assert_int_equal(journal_append(dir, &ev), 0);
	}
	buf_init(&b);
	strv_init(&got);
	assert_int_equal(fs_read_file(path, &b, 1 << 20), 0);
	assert_int_equal(journal_parse(b.p, b.len, take_lang, &got), b.len);
	assert_int_equal(got.n, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(got.v[i], want[i]);
	strv_free(&got);
	buf_free(&b);
	free(path);
	store_free(&s);
	fs_remove_tree(dir);
	free(dir);
}

static void
test_hash_memo_sees_changes(void **state)
{
	char *dir = tmpdir(), *f = xasprintf("%s/f", dir);
	struct store *s = store_open(dir);
	unsigned char a[HASH_LEN], b[HASH_LEN], c[HASH_LEN];

	(void)state;
	assert_int_equal(fs_write_atomic(f, "one", 3, 0644), 0);
	assert_int_equal(store_hash_file(s, f, a, NULL), 0);
	assert_int_equal(store_hash_file(s, f, b, NULL), 0);
	assert_memory_equal(a, b, HASH_LEN);
	assert_int_equal(fs_write_atomic(f, "two", 3, 0644), 0);
	assert_int_equal(store_hash_file(s, f, c, NULL), 0);
	assert_memory_not_equal(a, c, HASH_LEN);
	store_free(&s);
	fs_remove_tree(dir);
	free(f);
	free(dir);
}

static void
test_blob_by_link_shares_inode(void **state)
{
	char *dir = tmpdir(), *src = xasprintf("%s/app", dir), *blob;
	char hex[HASH_HEX_LEN + 1];
	struct store *s = store_open(dir);
	unsigned char h[HASH_LEN];
	uint64_t size;
	struct stat a, b;

	(void)state;
	assert_int_equal(fs_write_atomic(src,
	                     "\x7f"
	                     "ELF",
	                     4, 0755),
	    0);
	assert_int_equal(store_blob_put(s, src, 1, 1, h, &size), 0);
	hash_to_hex(h, hex);
	blob = store_path(s, "blobs", hex);
	assert_int_equal(stat(src, &a), 0);
	assert_int_equal(stat(blob, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	/* an executable's mode as rustc gives it (0777 less the umask), whatever
	 * the store's (mkdtemp: 0700, which says who enters it): the target's
	 * file is this inode; its owner may write (rustc refuses an output it
	 * cannot: a build without kache) */
	assert_int_equal(b.st_mode & 0777, 0755 & ~fs_umask());
	assert_int_equal(fs_umask(), (mode_t)(umask(0) & 0777));
	umask(fs_umask());
	free(blob);
	store_free(&s);
	fs_remove_tree(dir);
	free(src);
	free(dir);
}

/* A marker is live while its writer holds the lock (here: this process, on
 * another open file description), stale and removed once the lock is gone. */
static void
test_pending_marker_lives_with_its_lock(void **state)
{
	char *dir = tmpdir(), *tmp = xasprintf("%s/tmp", dir);
	char *marker = xasprintf("%s/tmp/pending-%s", dir,
	    "0101010101010101010101010101010101010101010101010101010101010101");
	unsigned char inv[HASH_LEN];
	int fd;

	(void)state;
	memset(inv, 1, sizeof inv);
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_int_equal(store_pending_live(dir), 0);
	fd = store_pending_begin(dir, inv);
	assert_true(fd >= 0);
	assert_int_equal(access(marker, F_OK), 0);
	assert_int_equal(store_pending_live(dir), 1);
	assert_int_equal(store_pending_wait(dir, inv, 0), 1); /* live: seen, not waited past 0 */
	close(fd); /* the writer dies without cleaning up */
	assert_int_equal(access(marker, F_OK), 0);
	assert_int_equal(store_pending_wait(dir, inv, INT64_MAX), 0);
	assert_int_equal(access(marker, F_OK), -1);
	fd = store_pending_begin(dir, inv);
	assert_true(fd >= 0);
	store_pending_end(dir, inv, fd);
	assert_int_equal(access(marker, F_OK), -1);
	assert_int_equal(store_pending_live(dir), 0);
	rmdir(tmp);
	rmdir(dir);
	free(marker);
	free(tmp);
	free(dir);
}

/* A memo record with entries a (twice: the first wins), c, b. */
static void
memo_sample(struct store_memo_rec *r, struct stat *st)
{
	static const char *const paths[] = { "/w/a.rs", "/w/c.rs", "/w/b.rs", "/w/a.rs" };
	unsigned char h[HASH_LEN];

	memset(st, 0, sizeof *st);
	st->st_mode = S_IFREG | 0644;
	st->st_dev = 7;
	st->st_size = 1234;
	st->st_mtim.tv_sec = 1700000000;
	st->st_mtim.tv_nsec = 999999999;
	st->st_ctim.tv_sec = -5;
	st->st_ctim.tv_nsec = 1;
	r->n = 4;
	r->f = xcalloc(4, sizeof *r->f);
	for (size_t i = 0; i < 4; i++) {
		memset(h, (int)i + 1, sizeof h);
		st->st_ino = 100 + i;
		store_memo_file_set(&r->f[i], paths[i], st, h);
	}
}

static void
test_memo_record_roundtrip(void **state)
{
	struct store_memo_rec r, back;
	const struct store_memo_file *f;
	struct stat st;
	struct buf b, again;

	(void)state;
	memo_sample(&r, &st);
	buf_init(&b);
	buf_init(&again);
	assert_int_equal(store_memo_rec_encode(&r, &b), 0);
	assert_int_equal(store_memo_rec_decode(b.p, b.len, &back), 0);
	assert_int_equal(back.n, 3); /* sorted, one /w/a.rs */
	assert_string_equal(back.f[0].path, "/w/a.rs");
	assert_string_equal(back.f[1].path, "/w/b.rs");
	assert_string_equal(back.f[2].path, "/w/c.rs");
	assert_int_equal(back.f[0].hash[0], 1); /* the earlier of the two */
	assert_int_equal(back.f[0].ino, 100);
	assert_int_equal(back.f[0].ctime_s, -5);
	assert_int_equal(back.f[0].mtime_ns, 999999999);
	f = store_memo_rec_find(&back, "/w/c.rs");
	assert_non_null(f);
	assert_int_equal(f->hash[0], 2);
	assert_null(store_memo_rec_find(&back, "/w/d.rs"));
	/* canonical: the decoded record encodes to the same bytes */
	assert_int_equal(store_memo_rec_encode(&back, &again), 0);
	assert_int_equal(again.len, b.len);
	assert_memory_equal(again.p, b.p, b.len);
	store_memo_rec_clear(&r);
	store_memo_rec_clear(&back);
	buf_free(&b);
	buf_free(&again);
}

/* An entry holds only while device, inode, size, mtime and ctime all do. */
static void
test_memo_file_matches_every_field(void **state)
{
	struct store_memo_rec r;
	struct stat st, x;

	(void)state;
	memo_sample(&r, &st);
	st.st_ino = 100;
	assert_true(store_memo_file_matches(&r.f[0], &st));
	x = st, x.st_dev++;
	assert_false(store_memo_file_matches(&r.f[0], &x));
	x = st, x.st_ino++;
	assert_false(store_memo_file_matches(&r.f[0], &x));
	x = st, x.st_size++;
	assert_false(store_memo_file_matches(&r.f[0], &x));
	x = st, x.st_mtim.tv_nsec--;
	assert_false(store_memo_file_matches(&r.f[0], &x));
	x = st, x.st_ctim.tv_nsec++;
	assert_false(store_memo_file_matches(&r.f[0], &x));
	x = st, x.st_ctim.tv_sec++;
	assert_false(store_memo_file_matches(&r.f[0], &x));
	x = st, x.st_mode = S_IFIFO | 0644;
	assert_false(store_memo_file_matches(&r.f[0], &x));
	store_memo_rec_clear(&r);
}

/* Truncated, padded, unsorted, duplicated, lying about its count, a bad
 * nanosecond, a NUL in a path: each is refused, never half-decoded. */
static void
test_memo_record_hostile(void **state)
{
	struct store_memo_rec r, back;
	struct stat st;
	struct buf b;
	char *d;
	size_t first; /* bytes of the first entry */

	(void)state;
	memo_sample(&r, &st);
	buf_init(&b);
	store_memo_rec_encode(&r, &b);
	first = 2 + strlen("/w/a.rs") + 8 * 3 + 8 + 4 + 8 + 4 + HASH_LEN;
	d = xmalloc(b.len + 1);
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(store_memo_rec_decode(b.p, n, &back), -1);
	memcpy(d, b.p, b.len);
	d[b.len] = 0;
	assert_int_equal(store_memo_rec_decode(d, b.len + 1, &back), -1);
	memcpy(d, b.p, b.len);
	d[0] = (char)0xff; /* count 255 */
	assert_int_equal(store_memo_rec_decode(d, b.len, &back), -1);
	memcpy(d, b.p, b.len);
	d[4 + 2 + 3] = 'z'; /* "/w/z.rs" sorts after "/w/b.rs" */
	assert_int_equal(store_memo_rec_decode(d, b.len, &back), -1);
	memcpy(d, b.p, b.len);
	d[4 + first + 2 + 3] = 'a'; /* "/w/a.rs" twice */
	assert_int_equal(store_memo_rec_decode(d, b.len, &back), -1);
	memcpy(d, b.p, b.len);
	d[4 + 2 + 1] = '\0';
	assert_int_equal(store_memo_rec_decode(d, b.len, &back), -1);
	memcpy(d, b.p, b.len);
	memset(d + 4 + 2 + 7 + 32, 0xff, 4); /* mtime ns 2^32-1 */
	assert_int_equal(store_memo_rec_decode(d, b.len, &back), -1);
	assert_int_equal(store_memo_rec_decode(b.p, b.len, &back), 0);
	store_memo_rec_clear(&back);
	store_memo_rec_clear(&r);
	free(d);
	buf_free(&b);
}

/* On disk a record is framed: one flipped byte anywhere, or the record under
 * another name, reads as STORE_CORRUPT. */
static void
test_memo_record_on_disk(void **state)
{
	char *dir = tmpdir(), *path;
	char hex[HASH_HEX_LEN + 1];
	struct store *s = store_open(dir);
	unsigned char key[HASH_LEN] = { 9 }, other[HASH_LEN] = { 8 };
	struct store_memo_rec r, back;
	struct stat st;
	struct buf b;

	(void)state;
	memo_sample(&r, &st);
	assert_int_equal(store_memo_rec_read(s, key, &back), STORE_ABSENT);
	assert_int_equal(store_memo_rec_write(s, key, &r), 0);
	assert_int_equal(store_memo_rec_read(s, key, &back), STORE_FOUND);
	assert_int_equal(back.n, 3);
	store_memo_rec_clear(&back);
	hash_to_hex(key, hex);
	path = store_path(s, "memo", hex);
	buf_init(&b);
	assert_int_equal(fs_read_file(path, &b, 1 << 20), 0);
	assert_memory_equal(b.p, "kcmemor2", 8);
	for (size_t i = 0; i < b.len; i += 7) {
		b.p[i] ^= 0x10;
		assert_int_equal(fs_write_atomic(path, b.p, b.len, 0600), 0);
		assert_int_equal(store_memo_rec_read(s, key, &back), STORE_CORRUPT);
		assert_int_equal(back.n, 0);
		b.p[i] ^= 0x10;
	}
	assert_int_equal(fs_write_atomic(path, b.p, b.len, 0600), 0);
	free(path);
	hash_to_hex(other, hex);
	path = store_path(s, "memo", hex);
	assert_int_equal(store_memo_rec_write(s, other, &r), 0); /* makes the fan-out dir */
	assert_int_equal(fs_write_atomic(path, b.p, b.len, 0600), 0);
	assert_int_equal(store_memo_rec_read(s, other, &back), STORE_CORRUPT);
	store_memo_rec_clear(&r);
	buf_free(&b);
	free(path);
	store_free(&s);
	fs_remove_tree(dir);
	free(dir);
}

/* The per-file memo of an input holds only while its ctime does: bytes changed
 * in place with the size and mtime put back are hashed again. */
static void
test_hash_memo_input_checks_ctime(void **state)
{
	char *dir = tmpdir(), *f = xasprintf("%s/f", dir);
	struct store *s = store_open(dir);
	unsigned char a[HASH_LEN], b[HASH_LEN], again[HASH_LEN];
	struct stat st;
	struct timespec ts[2];
	int fd;

	(void)state;
	assert_int_equal(fs_write_atomic(f, "one", 3, 0644), 0);
	usleep(60 * 1000); /* past the 50 ms margin: memoized */
	assert_int_equal(store_hash_file(s, f, a, &st), 0);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	fd = open(f, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "two", 3), 3);
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
	assert_int_equal(store_hash_file(s, f, b, &st), 0);
	assert_memory_not_equal(a, b, HASH_LEN);
	hash_buffer("two", 3, again);
	assert_memory_equal(b, again, HASH_LEN);
	store_free(&s);
	fs_remove_tree(dir);
	free(f);
	free(dir);
}

/* A file younger than the 50 ms margin hashes, but not as stable: it must not
 * be memoized. An older one is. */
static void
test_hash_fresh_stability(void **state)
{
	char *dir = tmpdir(), *f = xasprintf("%s/f", dir);
	unsigned char h[HASH_LEN];
	struct stat st;
	int stable = 1;

	(void)state;
	assert_int_equal(fs_write_atomic(f, "one", 3, 0644), 0);
	assert_int_equal(store_hash_fresh(f, h, &st, &stable), 0);
	assert_int_equal(stable, 0);
	usleep(60 * 1000);
	assert_int_equal(store_hash_fresh(f, h, &st, &stable), 0);
	assert_int_equal(stable, 1);
	assert_int_equal(st.st_size, 3);
	fs_remove_tree(dir);
	free(f);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_roundtrip),
		cmocka_unit_test(test_entry_of_a_failed_probe),
		cmocka_unit_test(test_manifest_keeps_newest),
		cmocka_unit_test(test_hostile_msgpack),
		cmocka_unit_test(test_flipped_records_are_corrupt),
		cmocka_unit_test(test_record_under_wrong_name_is_corrupt),
		cmocka_unit_test(test_journal_roundtrip_and_torn_tail),
		cmocka_unit_test(test_journal_local_only),
		cmocka_unit_test(test_journal_workspace_id),
		cmocka_unit_test(test_journal_language),
		cmocka_unit_test(test_hash_memo_sees_changes),
		cmocka_unit_test(test_blob_by_link_shares_inode),
		cmocka_unit_test(test_pending_marker_lives_with_its_lock),
		cmocka_unit_test(test_memo_record_roundtrip),
		cmocka_unit_test(test_memo_file_matches_every_field),
		cmocka_unit_test(test_memo_record_hostile),
		cmocka_unit_test(test_memo_record_on_disk),
		cmocka_unit_test(test_hash_fresh_stability),
		cmocka_unit_test(test_hash_memo_input_checks_ctime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
