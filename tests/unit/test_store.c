/* Unit tests for store/: records round-trip, hostile msgpack, blobs, memo, journal. */
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
	/* the store (mkdtemp: 0700) is private: no group/other bits */
	assert_int_equal(b.st_mode & 0777, 0500);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_roundtrip),
		cmocka_unit_test(test_manifest_keeps_newest),
		cmocka_unit_test(test_hostile_msgpack),
		cmocka_unit_test(test_flipped_records_are_corrupt),
		cmocka_unit_test(test_record_under_wrong_name_is_corrupt),
		cmocka_unit_test(test_journal_roundtrip_and_torn_tail),
		cmocka_unit_test(test_journal_workspace_id),
		cmocka_unit_test(test_hash_memo_sees_changes),
		cmocka_unit_test(test_blob_by_link_shares_inode),
		cmocka_unit_test(test_pending_marker_lives_with_its_lock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
