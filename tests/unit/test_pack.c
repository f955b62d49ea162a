/* Unit tests for packs and the remote layout: round trip between two stores,
 * every kind of damage rejected before anything but verified blobs lands, the
 * layout over the directory transport, and the settings check. */
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/fs.h"
#include "remote/bundle.h"
#include "remote/layout.h"
#include "remote/remote.h"
#include "store/pack.h"
#include "store/store.h"
#include "pages.h"

/* open(2) for this test binary (linked with --wrap=open): EINVAL for
 * O_DIRECT while refuse_direct is set, as a filesystem without direct I/O
 * answers; else the real one. */
static int refuse_direct;
/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): ld --wrap's name */
int __real_open(const char *path, int flags, ...);
/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): ld --wrap's name */
int __wrap_open(const char *path, int flags, ...);

int
/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): ld --wrap's name */
__wrap_open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (refuse_direct && (flags & O_DIRECT)) {
		errno = EINVAL;
		return -1;
	}
	return __real_open(path, flags, mode);
}

struct fx {
	char *dir_a, *dir_b;
	struct store *a, *b;
	unsigned char inv[HASH_LEN], res[HASH_LEN];
};

static char *
tmpdir(void)
{
	char t[] = "/tmp/kache-pack-XXXXXX";

	assert_non_null(mkdtemp(t));
	return xstrdup(t);
}

/* The mode of setup_with's first output (setup_mid_exec: an executable). */
static mode_t first_mode = 0644;

/* Store a holds one result: two outputs (one executable, the other
 * rlib_size bytes, or a short text), a manifest candidate. */
static int
setup_with(void **state, size_t rlib_size, int random_bytes)
{
	struct fx *f = xcalloc(1, sizeof *f);
	struct store_output o[2] = { { .name = "libx.rlib", .mode = first_mode },
		{ .name = "app", .mode = 0755 } };
	struct store_input in = { .path = "@@KACHE_W@@/src/lib.rs" };
	struct store_candidate c = { .inputs = &in, .n_inputs = 1 };
	struct store_entry e;
	char *src;

	f->dir_a = tmpdir();
	f->dir_b = tmpdir();
	f->a = store_open(f->dir_a);
	f->b = store_open(f->dir_b);
	src = xasprintf("%s/src", f->dir_a);
	if (rlib_size > 0) {
		char *big = xmalloc(rlib_size);

		for (size_t i = 0; i < rlib_size; i++)
			big[i] = (char)(i * 2654435761u >> 13);
		for (size_t i = 0; random_bytes && i < rlib_size;) {
			ssize_t n = getrandom(big + i, rlib_size - i, 0);

			assert_true(n > 0);
			i += (size_t)n;
		}
		assert_int_equal(fs_write_atomic(src, big, rlib_size, 0644), 0);
		free(big);
	} else {
		assert_int_equal(fs_write_atomic(src, "rlib-bytes", 10, 0644), 0);
	}
	assert_int_equal(store_blob_put(f->a, src, (first_mode & 0111) != 0, 0, o[0].hash,
	                     &o[0].size),
	    0);
	assert_int_equal(fs_write_atomic(src,
	                     "\x7f"
	                     "ELF-binary",
	                     11, 0755),
	    0);
	assert_int_equal(store_blob_put(f->a, src, 1, 0, o[1].hash, &o[1].size), 0);
	free(src);
	store_entry_init(&e);
	e.crate = "x";
	e.outputs = o;
	e.n_outputs = 2;
	e.depinfo_name = "x.d";
	buf_addstr(&e.depinfo, "@@KACHE_T@@/x.d: src/lib.rs\n");
	hash_buffer("inv", 3, f->inv);
	hash_buffer("res", 3, f->res);
	memcpy(c.result, f->res, HASH_LEN);
	assert_int_equal(store_entry_write(f->a, f->res, &e), 0);
	assert_int_equal(store_manifest_add(f->a, f->inv, &c), 0);
	buf_free(&e.depinfo);
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_with(state, 0, 0);
}

/* A document past PACK_MEM_MAX: inflated into a file, not memory. */
static int
setup_large(void **state)
{
	return setup_with(state, PACK_MEM_MAX + (8u << 20), 0);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_free(&f->a);
	store_free(&f->b);
	fs_remove_tree(f->dir_a);
	fs_remove_tree(f->dir_b);
	free(f->dir_a);
	free(f->dir_b);
	free(f);
	return 0;
}

static void
build(struct fx *f, struct buf *b)
{
	char *crate = NULL;

	buf_init(b);
	assert_int_equal(pack_build(f->a, f->inv, f->res, b, &crate), PACK_OK);
	assert_string_equal(crate, "x");
	free(crate);
}

static void
test_round_trip(void **state)
{
	struct fx *f = *state;
	struct store_entry e;
	struct store_manifest m;
	struct buf b;
	char hex[HASH_HEX_LEN + 1], *blob;

	build(f, &b);
	assert_int_equal(pack_import(f->b, b.p, b.len, f->inv, f->res, 0), PACK_OK);
	assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_FOUND);
	assert_int_equal(e.n_outputs, 2);
	hash_to_hex(e.outputs[1].hash, hex);
	blob = store_path(f->b, "blobs", hex);
	assert_int_equal(access(blob, X_OK), 0); /* the executable stays one */
	free(blob);
	store_entry_clear(&e);
	assert_int_equal(store_manifest_read(f->b, f->inv, &m), STORE_FOUND);
	assert_int_equal(m.n, 1);
	assert_memory_equal(m.c[0].result, f->res, HASH_LEN);
	store_manifest_clear(&m);
	buf_free(&b);
}

/* A pack larger than PACK_MEM_MAX imports the same (through a file). */
static void
test_round_trip_large(void **state)
{
	struct fx *f = *state;
	struct store_entry e;
	unsigned char h[HASH_LEN];
	uint64_t size;
	struct buf b;
	char hex[HASH_HEX_LEN + 1], *blob;

	build(f, &b);
	assert_int_equal(pack_import(f->b, b.p, b.len, f->inv, f->res, 0), PACK_OK);
	assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_FOUND);
	hash_to_hex(e.outputs[0].hash, hex);
	blob = store_path(f->b, "blobs", hex);
	assert_int_equal(hash_file(blob, h, &size), 0);
	assert_int_equal(size, PACK_MEM_MAX + (8u << 20));
	assert_memory_equal(h, e.outputs[0].hash, HASH_LEN);
	free(blob);
	store_entry_clear(&e);
	buf_free(&b);
}

/* A document past PACK_MEM_MAX that does not compress: the pack itself is
 * larger than PACK_MEM_MAX. */
static int
setup_large_random(void **state)
{
	return setup_with(state, PACK_MEM_MAX + (1u << 20), 1);
}

/* A blob of 3 MiB and 5 bytes: more than PACK_WRITES_MIN, not whole blocks. */
static int
setup_mid(void **state)
{
	return setup_with(state, (3u << 20) + 5, 0);
}

/* The same, the 3 MiB output an executable (a build script, a test). */
static int
setup_mid_exec(void **state)
{
	int rc;

	first_mode = 0755;
	rc = setup_mid(state);
	first_mode = 0644;
	return rc;
}

/* Imports f's pack into store b, the writes' counters taken before and
 * after into w0 and w1, the imported entry read into e. */
static void
import_counted(struct fx *f, struct pack_writes_state *w0, struct pack_writes_state *w1,
    struct store_entry *e)
{
	struct buf b;

	pack_writes_state(w0);
	build(f, &b);
	assert_int_equal(pack_import(f->b, b.p, b.len, f->inv, f->res, 0), PACK_OK);
	pack_writes_state(w1);
	assert_int_equal(store_entry_read(f->b, f->res, e), STORE_FOUND);
	buf_free(&b);
}

/* Every output of e has its blob in store b, of its size and hash. */
static void
assert_blobs_whole(struct fx *f, const struct store_entry *e)
{
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1], *blob;
	uint64_t size;

	for (size_t i = 0; i < e->n_outputs; i++) {
		hash_to_hex(e->outputs[i].hash, hex);
		blob = store_path(f->b, "blobs", hex);
		assert_int_equal(hash_file(blob, h, &size), 0);
		assert_int_equal(size, e->outputs[i].size);
		assert_memory_equal(h, e->outputs[i].hash, HASH_LEN);
		free(blob);
	}
}

/* cache.import_writes = direct: the pack's blobs (3 MiB + 5 bytes, and 11)
 * are written with O_DIRECT, counted so, and hold their bytes. */
static void
test_import_writes_direct(void **state)
{
	struct fx *f = *state;
	struct pack_writes_state w0, w1;
	struct store_entry e;

	pack_writes_set(PACK_WRITES_DIRECT);
	import_counted(f, &w0, &w1, &e);
	if (!w1.direct_refused) /* a filesystem that refuses O_DIRECT gets buffered */
		assert_int_equal(w1.bytes[STORE_PUT_DIRECT] - w0.bytes[STORE_PUT_DIRECT],
		    e.outputs[0].size + e.outputs[1].size);
	assert_blobs_whole(f, &e);
	assert_int_equal(e.outputs[0].size, (3u << 20) + 5);
	store_entry_clear(&e);
	pack_writes_set(PACK_WRITES_AUTO);
}

/* Pages of the blob of output i of e (store b) in the page cache. */
static long
blob_pages(struct fx *f, const struct store_entry *e, size_t i)
{
	char hex[HASH_HEX_LEN + 1], *blob;
	long n;

	hash_to_hex(e->outputs[i].hash, hex);
	blob = store_path(f->b, "blobs", hex);
	n = resident_pages(blob, e->outputs[i].size);
	free(blob);
	return n;
}

/* An executable written with O_DIRECT is read back into the page cache by
 * the kernel, ahead of the build that runs it (a build script run from a
 * disk, fault by fault, cost a CI job's build a median 40-60 ms of 0.5 s); a blob that is
 * no program is not (at most its last page, written through the cache). The
 * read-ahead is asynchronous: polled for up to 10 s. */
static void
test_import_direct_reads_executables_back(void **state)
{
	struct fx *f = *state;
	struct pack_writes_state w0, w1;
	struct store_entry e;
	long want, have = 0;
	int64_t end;

	pack_writes_set(PACK_WRITES_DIRECT);
	import_counted(f, &w0, &w1, &e);
	pack_writes_set(PACK_WRITES_AUTO);
	if (w1.direct_refused) { /* buffered: all of it cached anyway */
		store_entry_clear(&e);
		return;
	}
	want = (long)((e.outputs[0].size + 4095) / 4096);
	for (end = clock_ms() + 10000; clock_ms() < end; usleep(10000))
		if ((have = blob_pages(f, &e, 0)) == want)
			break;
	if (e.outputs[0].mode & 0111)
		assert_int_equal(have, want);
	else
		assert_in_range(have, 0, 1);
	store_entry_clear(&e);
}

/* A filesystem that refuses O_DIRECT: the import writes buffered, says so
 * once and from then on, and the blobs hold their bytes. Runs last: the
 * refusal holds for the process. */
static void
test_import_writes_refused_falls_back_to_buffered(void **state)
{
	struct fx *f = *state;
	struct pack_writes_state w0, w1;
	struct store_entry e;

	refuse_direct = 1;
	pack_writes_set(PACK_WRITES_DIRECT);
	import_counted(f, &w0, &w1, &e);
	assert_true(w1.direct_refused);
	assert_int_equal(w1.bytes[STORE_PUT_DIRECT], w0.bytes[STORE_PUT_DIRECT]);
	assert_int_equal(pack_writes_pick(64u << 20), STORE_PUT_BUFFERED);
	assert_int_equal(w1.bytes[STORE_PUT_BUFFERED] - w0.bytes[STORE_PUT_BUFFERED],
	    e.outputs[0].size + e.outputs[1].size);
	assert_blobs_whole(f, &e);
	store_entry_clear(&e);
	refuse_direct = 0;
}

/* auto: a small blob is buffered; a large one goes direct first, then
 * direct while its writes take at most PACK_WRITES_DIRECT_SLACK times a
 * buffered one's per byte; the other way gets a blob (its first measure too)
 * when the blob is at most 1/PACK_WRITES_EXPLORE_SHARE of what went the
 * believed way since, so a small blob is tried before a large one; a disk
 * that turns slow gets buffered writes; a new probe forgets the averages;
 * buffered and direct are what they say whatever the size. */
static void
test_import_writes_auto_follows_the_times(void **state)
{
	const size_t big = 2u << 20, small = PACK_WRITES_MIN;
	const int share = PACK_WRITES_EXPLORE_SHARE;
	enum pack_writes w = PACK_WRITES_AUTO;
	int direct = 0;

	(void)state;
	assert_int_equal(pack_writes_parse("direct", &w), 0);
	assert_int_equal(w, PACK_WRITES_DIRECT);
	assert_int_equal(pack_writes_parse("buffered", &w), 0);
	assert_int_equal(w, PACK_WRITES_BUFFERED);
	assert_int_equal(pack_writes_parse("auto", &w), 0);
	assert_int_equal(w, PACK_WRITES_AUTO);
	assert_int_equal(pack_writes_parse("Direct", &w), -1);
	assert_int_equal(pack_writes_parse(NULL, &w), -1);
	assert_string_equal(pack_writes_name(PACK_WRITES_DIRECT), "direct");
	pack_writes_set(PACK_WRITES_AUTO);
	assert_int_equal(pack_writes_pick(PACK_WRITES_MIN - 1), STORE_PUT_BUFFERED);
	assert_int_equal(pack_writes_pick(big), STORE_PUT_DIRECT); /* not measured: tried first */
	pack_writes_note(STORE_PUT_DIRECT, big, 3000);             /* 0.7 GB/s to the disk */
	/* buffered not measured yet: not on a large blob (2 big written: 4 MiB,
	 * under share x 2 MiB), on the first small one that fits (share x 256 KiB) */
	assert_int_equal(pack_writes_pick(big), STORE_PUT_DIRECT);
	assert_int_equal(pack_writes_pick(small), STORE_PUT_BUFFERED);
	pack_writes_note(STORE_PUT_BUFFERED, small, 125); /* 2 GB/s: direct is within the slack */
	for (int i = 0; i < share; i++)
		assert_int_equal(pack_writes_pick(big), STORE_PUT_DIRECT);
	assert_int_equal(pack_writes_pick(big), STORE_PUT_BUFFERED); /* its share reached */
	assert_int_equal(pack_writes_pick(PACK_WRITES_MIN - 1), STORE_PUT_BUFFERED);
	for (int i = 0; i < 8; i++) /* the disk turns slow: 0.1 GB/s */
		pack_writes_note(STORE_PUT_DIRECT, big, 20000);
	for (int i = 0; i < 2 * (share + 1); i++)
		direct += pack_writes_pick(big) == STORE_PUT_DIRECT;
	assert_int_equal(direct, 2);
	pack_writes_reprobe();
	assert_int_equal(pack_writes_pick(big), STORE_PUT_DIRECT);
	/* direct not measured again yet */
	assert_int_equal(pack_writes_pick(big), STORE_PUT_DIRECT);
	pack_writes_set(PACK_WRITES_BUFFERED);
	pack_writes_note(STORE_PUT_BUFFERED, big, 1u << 30); /* not measured: as asked */
	assert_int_equal(pack_writes_pick(64u << 20), STORE_PUT_BUFFERED);
	pack_writes_set(PACK_WRITES_DIRECT);
	assert_int_equal(pack_writes_pick(1), STORE_PUT_DIRECT);
	pack_writes_set(PACK_WRITES_AUTO);
}

/* Decompresses a streamed frame (no content size in its header). */
static void
unzstd(const struct buf *in, struct buf *out)
{
	ZSTD_DCtx *z = ZSTD_createDCtx();
	ZSTD_inBuffer src = { in->p, in->len, 0 };
	size_t left = 1;

	buf_init(out);
	while (src.pos < src.size && left != 0) {
		ZSTD_outBuffer dst;

		buf_grow(out, 1 << 16);
		dst = (ZSTD_outBuffer){ out->p + out->len, out->cap - out->len - 1, 0 };
		left = ZSTD_decompressStream(z, &dst, &src);
		assert_false(ZSTD_isError(left));
		out->len += dst.pos;
	}
	ZSTD_freeDCtx(z);
}

/* Decompresses, flips one byte at the last occurrence of needle, and
 * recompresses without the frame checksum, so that kache's own checks (blob
 * hashes, the sum) are what must catch it. */
static void
flip(struct buf *b, const char *needle)
{
	struct buf doc;
	char *hit = NULL;
	size_t nl = strlen(needle);

	unzstd(b, &doc);
	for (size_t i = 0; i + nl <= doc.len; i++)
		if (memcmp(doc.p + i, needle, nl) == 0)
			hit = doc.p + i;
	assert_non_null(hit);
	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): the assert above ends the test */
	hit[0] ^= 0x20;
	buf_reset(b);
	buf_grow(b, ZSTD_compressBound(doc.len));
	b->len = ZSTD_compress(b->p, b->cap, doc.p, doc.len, 1);
	buf_free(&doc);
}

static void
assert_nothing_imported(struct fx *f)
{
	struct store_entry e;
	struct store_manifest m;

	assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_ABSENT);
	assert_int_equal(store_manifest_read(f->b, f->inv, &m), STORE_ABSENT);
}

static void
test_flipped_blob_rejected(void **state)
{
	struct fx *f = *state;
	struct buf b;

	build(f, &b);
	flip(&b, "rlib-bytes");
	assert_int_equal(pack_import(f->b, b.p, b.len, f->inv, f->res, 0), PACK_CORRUPT);
	assert_nothing_imported(f);
	buf_free(&b);
}

/* A pack whose signature a trusted key vouched for (PACK_BLOBS_VOUCHED):
 * its blobs are not hashed again, so a blob that differs from its name goes
 * in as the signer sent it; the entry and candidate are still checked. */
static void
test_vouched_pack_skips_blob_hashes_only(void **state)
{
	struct fx *f = *state;
	struct buf b, e;

	build(f, &b);
	buf_init(&e);
	buf_add(&e, b.p, b.len);
	flip(&b, "rlib-bytes");
	flip(&e, "@@KACHE_T@@");
	assert_int_equal(pack_import(f->b, e.p, e.len, f->inv, f->res, PACK_BLOBS_VOUCHED),
	    PACK_CORRUPT);
	assert_nothing_imported(f);
	assert_int_equal(pack_import(f->b, b.p, b.len, f->inv, f->res, PACK_BLOBS_VOUCHED),
	    PACK_OK);
	buf_free(&b);
	buf_free(&e);
}

/* A descriptor that cannot seek (a pipe) is streamed, as before the
 * one-call inflate. */
static void
test_pack_read_from_a_pipe(void **state)
{
	struct fx *f = *state;
	struct store_entry e;
	struct buf b;
	int p[2];

	build(f, &b);
	assert_true(b.len < 65536); /* fits the pipe's buffer: no writer thread needed */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], b.p, b.len), (ssize_t)b.len);
	close(p[1]);
	assert_int_equal(pack_read(f->b, p[0], f->inv, f->res, 0), PACK_OK);
	close(p[0]);
	assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_FOUND);
	store_entry_clear(&e);
	buf_free(&b);
}

/* fd holding prefix (its offset after it) then the first n bytes of b. */
static int
pack_fd(int fd, const char *prefix, const struct buf *b, size_t n)
{
	size_t k = strlen(prefix);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, prefix, k), (ssize_t)k);
	assert_int_equal(write(fd, b->p, n), (ssize_t)n);
	assert_int_equal(lseek(fd, (off_t)k, SEEK_SET), (off_t)k);
	return fd;
}

/* Store b, emptied: a new store in a new directory. */
static void
renew_b(struct fx *f)
{
	store_free(&f->b);
	fs_remove_tree(f->dir_b);
	free(f->dir_b);
	f->dir_b = tmpdir();
	f->b = store_open(f->dir_b);
}

/* pack_read takes a pack from an unnamed file of its own (an O_TMPFILE, as
 * an S3 download), from a named one (a directory remote's object, which
 * others may change) or from an offset: the same import each way; a pack
 * cut short is corrupt and imports nothing. */
static void
test_pack_read_unnamed_named_or_offset(void **state)
{
	struct fx *f = *state;
	struct store_entry e;
	struct buf b;
	char *named = xasprintf("%s/obj.pack", f->dir_a);
	int fds[3];

	build(f, &b);
	fds[0] = pack_fd(open(f->dir_a, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), "", &b, b.len);
	fds[1] = pack_fd(open(named, O_CREAT | O_RDWR | O_CLOEXEC, 0600), "", &b, b.len);
	fds[2] =
	    pack_fd(open(f->dir_a, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), "header\n", &b, b.len);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pack_read(f->b, fds[i], f->inv, f->res, 0), PACK_OK);
		close(fds[i]);
		assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_FOUND);
		assert_blobs_whole(f, &e);
		store_entry_clear(&e);
		renew_b(f);
	}
	fds[0] = pack_fd(open(f->dir_a, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), "", &b, b.len / 2);
	assert_int_equal(pack_read(f->b, fds[0], f->inv, f->res, 0), PACK_CORRUPT);
	close(fds[0]);
	assert_nothing_imported(f);
	free(named);
	buf_free(&b);
}

/* A pack whose compressed bytes are past PACK_MEM_MAX, read from a named
 * file (a directory remote's object): too large for the memory kept for
 * packs, so streamed through a file, and imported the same. */
static void
test_pack_read_larger_than_memory(void **state)
{
	struct fx *f = *state;
	struct store_entry e;
	struct buf b;
	char *named = xasprintf("%s/obj.pack", f->dir_a);
	int fd;

	build(f, &b);
	assert_true(b.len > PACK_MEM_MAX);
	fd = pack_fd(open(named, O_CREAT | O_RDWR | O_CLOEXEC, 0600), "", &b, b.len);
	assert_int_equal(pack_read(f->b, fd, f->inv, f->res, 0), PACK_OK);
	close(fd);
	assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_FOUND);
	assert_blobs_whole(f, &e);
	store_entry_clear(&e);
	free(named);
	buf_free(&b);
}

struct reader {
	const char *named;
	const unsigned char *inv, *res;
	pthread_barrier_t *start;
	char *dir;
	enum pack_result r;
};

/* One thread's import of the pack in r->named into a store of its own. */
static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct store *s = store_open(r->dir);
	int fd = open(r->named, O_RDONLY | O_CLOEXEC);

	pthread_barrier_wait(r->start);
	r->r = fd < 0 || s == NULL ? PACK_IOERR : pack_read(s, fd, r->inv, r->res, 0);
	if (fd >= 0)
		close(fd);
	store_free(&s);
	return NULL;
}

/* pack_read keeps its memory from pack to pack (one region for packs read
 * one after the other), maps at most one region per CPU however many
 * threads read at once (each import still whole), and gives it all back on
 * pack_memory_release, after which it maps anew; the buffers downloads are
 * read into are kept and given back the same way. */
static void
test_pack_memory_kept_and_bounded(void **state)
{
	enum { THREADS = 6 };
	struct fx *f = *state;
	struct reader rd[THREADS];
	pthread_t t[THREADS];
	pthread_barrier_t start;
	struct store_entry e;
	struct buf b;
	cpu_set_t set;
	char *named = xasprintf("%s/obj.pack", f->dir_a), *bufs[2];
	int fd, cpus;

	assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
	cpus = CPU_COUNT(&set);
	build(f, &b);
	close(pack_fd(open(named, O_CREAT | O_RDWR | O_CLOEXEC, 0600), "", &b, b.len));
	pack_memory_release();
	assert_int_equal(pack_memory_regions(), 0);
	for (int i = 0; i < 3; i++) {
		fd = open(named, O_RDONLY | O_CLOEXEC);
		assert_int_equal(pack_read(f->b, fd, f->inv, f->res, 0), PACK_OK);
		close(fd);
		assert_int_equal(pack_memory_regions(), 1);
	}
	assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
	for (int i = 0; i < THREADS; i++) {
		rd[i] = (struct reader){ .named = named,
			.inv = f->inv,
			.res = f->res,
			.start = &start,
			.dir = tmpdir(),
			.r = PACK_ABSENT };
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &rd[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		struct store *s;

		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(rd[i].r, PACK_OK);
		s = store_open(rd[i].dir);
		assert_int_equal(store_entry_read(s, f->res, &e), STORE_FOUND);
		store_entry_clear(&e);
		store_free(&s);
		fs_remove_tree(rd[i].dir);
		free(rd[i].dir);
	}
	pthread_barrier_destroy(&start);
	assert_in_range(pack_memory_regions(), 1, cpus < THREADS ? cpus : THREADS);
	pack_memory_release();
	assert_int_equal(pack_memory_regions(), 0);
	fd = open(named, O_RDONLY | O_CLOEXEC);
	renew_b(f);
	assert_int_equal(pack_read(f->b, fd, f->inv, f->res, 0), PACK_OK);
	close(fd);
	assert_int_equal(pack_memory_regions(), 1);
	assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_FOUND);
	assert_blobs_whole(f, &e);
	store_entry_clear(&e);
	/* buffers for downloads: one per taker, kept when given back, the pack
	 * imported from one through the kept region */
	bufs[0] = pack_buffer_take();
	bufs[1] = pack_buffer_take();
	assert_non_null(bufs[0]);
	assert_non_null(bufs[1]);
	assert_ptr_not_equal(bufs[0], bufs[1]);
	assert_int_equal(pack_memory_regions(), 3);
	memcpy(bufs[1], b.p, b.len);
	renew_b(f);
	assert_int_equal(pack_import(f->b, bufs[1], b.len, f->inv, f->res, 0), PACK_OK);
	assert_int_equal(pack_memory_regions(), 3);
	pack_buffer_give(bufs[0]);
	pack_buffer_give(bufs[1]);
	assert_ptr_equal(pack_buffer_take(), bufs[1]); /* the last given, pages kept */
	pack_buffer_give(bufs[1]);
	assert_int_equal(pack_memory_regions(), 3);
	pack_memory_release();
	assert_int_equal(pack_memory_regions(), 0);
	assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_FOUND);
	assert_blobs_whole(f, &e);
	store_entry_clear(&e);
	free(named);
	buf_free(&b);
}

static void
test_flipped_entry_rejected(void **state)
{
	struct fx *f = *state;
	struct buf b;

	build(f, &b);
	flip(&b, "@@KACHE_T@@"); /* inside the entry's dep-info, not a blob */
	assert_int_equal(pack_import(f->b, b.p, b.len, f->inv, f->res, 0), PACK_CORRUPT);
	assert_nothing_imported(f);
	buf_free(&b);
}

static void
test_truncated_and_garbage_rejected(void **state)
{
	struct fx *f = *state;
	struct buf b;

	build(f, &b);
	assert_int_equal(pack_import(f->b, b.p, b.len / 2, f->inv, f->res, 0), PACK_CORRUPT);
	assert_int_equal(pack_import(f->b, "not a pack", 10, f->inv, f->res, 0), PACK_CORRUPT);
	assert_nothing_imported(f);
	buf_free(&b);
}

static void
test_wrong_keys_rejected(void **state)
{
	struct fx *f = *state;
	unsigned char other[HASH_LEN];
	struct buf b;

	build(f, &b);
	hash_buffer("other", 5, other);
	assert_int_equal(pack_import(f->b, b.p, b.len, f->inv, other, 0), PACK_CORRUPT);
	assert_int_equal(pack_import(f->b, b.p, b.len, other, f->res, 0), PACK_CORRUPT);
	assert_nothing_imported(f);
	buf_free(&b);
}

static void
test_missing_blob_is_absent(void **state)
{
	struct fx *f = *state;
	struct store_entry e;
	char hex[HASH_HEX_LEN + 1], *blob, *crate = NULL;
	struct buf b;

	assert_int_equal(store_entry_read(f->a, f->res, &e), STORE_FOUND);
	hash_to_hex(e.outputs[0].hash, hex);
	store_entry_clear(&e);
	blob = store_path(f->a, "blobs", hex);
	assert_int_equal(unlink(blob), 0);
	free(blob);
	buf_init(&b);
	assert_int_not_equal(pack_build(f->a, f->inv, f->res, &b, &crate), PACK_OK);
	buf_free(&b);
	free(crate);
}

static void
test_layout_manifest(void **state)
{
	struct layout_manifest m = { .n = 0 }, back;
	char res[HASH_HEX_LEN + 1];
	struct buf b;

	(void)state;
	for (int i = 0; i < LAYOUT_MAX_RESULTS + 3; i++) {
		snprintf(res, sizeof res, "%064x", i);
		layout_manifest_add(&m, "serde_json", res);
	}
	assert_int_equal(m.n, LAYOUT_MAX_RESULTS);
	buf_init(&b);
	layout_manifest_encode(&m, &b);
	assert_int_equal(layout_manifest_decode(b.p, b.len, &back), 0);
	assert_int_equal(back.n, LAYOUT_MAX_RESULTS);
	snprintf(res, sizeof res, "%064x", LAYOUT_MAX_RESULTS + 2);
	assert_string_equal(back.r[0].res, res);
	assert_int_equal(layout_manifest_decode(b.p, b.len - 1, &back), -1);
	buf_free(&b);
	assert_true(pack_crate_name_ok("serde_json"));
	assert_false(pack_crate_name_ok("../etc"));
	assert_false(pack_crate_name_ok("a/b"));
	assert_false(pack_crate_name_ok(""));
}

/* The effective settings with remote.type and remote.path overridden. */
static struct config *
remote_config(const char *type, const char *path)
{
	struct config *cfg;
	struct buf w;

	buf_init(&w);
	cfg = config_load(&w);
	buf_free(&w);
	config_set(cfg, "remote.type", type);
	config_set(cfg, "remote.path", path);
	return cfg;
}

/* A directory remote at <store a>/remote, its root in *root. */
static struct remote *
open_dir_remote(struct fx *f, char **root)
{
	struct config *cfg;
	struct remote *r;
	char err[256];

	*root = xasprintf("%s/remote", f->dir_a);
	cfg = remote_config("dir", *root);
	assert_true(config_has_remote(cfg));
	r = remote_open(cfg, err, sizeof err);
	assert_non_null(r);
	config_free(&cfg);
	return r;
}

static char *
read_text(const char *root, const char *name)
{
	char *p = xasprintf("%s/%s", root, name);
	struct buf b;

	buf_init(&b);
	assert_int_equal(fs_read_file(p, &b, 1 << 20), 0);
	free(p);
	return b.p;
}

static void
test_dir_remote_round_trip(void **state)
{
	struct fx *f = *state;
	char inv[HASH_HEX_LEN + 1], res[HASH_HEX_LEN + 1], *root, *text, *name;
	struct layout_manifest m;
	struct store_entry e;
	struct remote *r;
	struct buf b;

	hash_to_hex(f->inv, inv);
	hash_to_hex(f->res, res);
	assert_int_equal(store_intent_add(f->a, f->res, f->inv, 0), 0);
	r = open_dir_remote(f, &root);
	assert_int_equal(remote_fetch(r, f->dir_b, inv, 0), REMOTE_MISS); /* an empty remote */
	assert_int_equal(remote_put(r, f->dir_a, res), REMOTE_OK);
	assert_int_equal(remote_put(r, f->dir_a, res), REMOTE_OK); /* again: nothing new */
	text = read_text(root, LAYOUT_FORMAT_NAME);
	assert_string_equal(text, LAYOUT_FORMAT_TEXT);
	free(text);
	name = layout_manifest_name(inv);
	buf_init(&b);
	text = xasprintf("%s/%s", root, name);
	assert_int_equal(fs_read_file(text, &b, 1 << 20), 0);
	assert_int_equal(layout_manifest_decode(b.p, b.len, &m), 0);
	assert_int_equal(m.n, 1);
	assert_string_equal(m.r[0].crate, "x");
	assert_string_equal(m.r[0].res, res);
	buf_free(&b);
	free(text);
	free(name);
	assert_int_equal(remote_fetch(r, f->dir_b, inv, 0), REMOTE_OK);
	assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_FOUND);
	store_entry_clear(&e);
	assert_int_equal(remote_fetch(r, f->dir_b, res, 0), REMOTE_MISS); /* no such manifest */
	remote_free(&r);
	assert_null(r);
	free(root);
}

/* A pack is put once; an intent written under cache.recache puts it over the
 * one there (another runner's), and marks it replaced for the session saves. */
static void
test_dir_remote_recache_replaces_the_pack(void **state)
{
	struct fx *f = *state;
	char inv[HASH_HEX_LEN + 1], res[HASH_HEX_LEN + 1], got[HASH_HEX_LEN + 1], *root, *pack,
	    *text, *mark;
	struct remote *r;
	int replace = -1;

	hash_to_hex(f->inv, inv);
	hash_to_hex(f->res, res);
	r = open_dir_remote(f, &root);
	pack = xasprintf("packs/x/%s.pack", res);
	mark = xasprintf("%s/run/sessions/%s.replaced", f->dir_a, res);
	assert_int_equal(store_intent_add(f->a, f->res, f->inv, 0), 0);
	assert_int_equal(store_intent_read(f->dir_a, res, got, &replace), 0);
	assert_string_equal(got, inv);
	assert_int_equal(replace, 0);
	assert_int_equal(remote_put(r, f->dir_a, res), REMOTE_OK);
	text = xasprintf("%s/%s", root, pack);
	assert_int_equal(fs_write_atomic(text, "another runner's", 16, 0644), 0);
	free(text);
	assert_int_equal(store_intent_add(f->a, f->res, f->inv, 0), 0);
	assert_int_equal(remote_put(r, f->dir_a, res), REMOTE_OK); /* there: left */
	text = read_text(root, pack);
	assert_string_equal(text, "another runner's");
	free(text);
	assert_int_equal(access(mark, F_OK), -1);
	assert_int_equal(store_intent_add(f->a, f->res, f->inv, 1), 0);
	assert_int_equal(store_intent_read(f->dir_a, res, got, &replace), 0);
	assert_string_equal(got, inv);
	assert_int_equal(replace, 1);
	assert_int_equal(remote_put(r, f->dir_a, res), REMOTE_OK);
	text = read_text(root, pack);
	assert_string_not_equal(text, "another runner's");
	free(text);
	assert_int_equal(access(mark, F_OK), 0);
	assert_int_equal(remote_fetch(r, f->dir_b, inv, 0), REMOTE_OK); /* a pack, whole */
	remote_free(&r);
	free(mark);
	free(pack);
	free(root);
}

/* An intent that is not 64 hex digits, alone or with " replace", is damaged. */
static void
test_intent_text_checked(void **state)
{
	struct fx *f = *state;
	char res[HASH_HEX_LEN + 1], got[HASH_HEX_LEN + 1], *path;
	const struct {
		int hex;
		const char *tail;
	} bad[] = { { 63, "" }, { 63, " replace" }, { 64, "x" }, { 64, " replaced" },
		{ 64, " replace\n" }, { 64, "\n" }, { 64, " REPLACE" }, { 65, "" } };
	int replace;

	hash_to_hex(f->res, res);
	assert_int_equal(store_intent_add(f->a, f->res, f->inv, 1), 0); /* makes intents/ */
	assert_int_equal(store_intent_read(f->dir_a, res, got, &replace), 0);
	assert_int_equal(replace, 1);
	path = store_intent_path(f->dir_a, res);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *text = xasprintf("%.*s%s%s", bad[i].hex > 64 ? 64 : bad[i].hex, res,
		    bad[i].hex > 64 ? "0" : "", bad[i].tail);

		assert_int_equal(fs_write_atomic(path, text, strlen(text), 0644), 0);
		assert_int_equal(store_intent_read(f->dir_a, res, got, &replace), -1);
		free(text);
	}
	free(path);
}

struct listed {
	char names[8][256];
	uint64_t sizes[8];
	int64_t mtimes[8];
	int n, stop_after;
};

static int
collect(const char *name, uint64_t size, int64_t mtime_ms, void *arg)
{
	struct listed *l = arg;

	if (l->n < 8) {
		snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
		l->sizes[l->n] = size;
		l->mtimes[l->n] = mtime_ms;
	}
	l->n++;
	return l->stop_after > 0 && l->n >= l->stop_after;
}

/* The directory transport lists what the layout wrote, by prefix, with sizes
 * and names relative to the root; temporaries are not listed; fn can stop it. */
/* A pack past PACK_MEM_MAX (it does not compress) does not fit the buffer a
 * fetch reads into: it is opened instead and streamed, imported whole. */
static void
test_dir_remote_round_trip_past_memory(void **state)
{
	struct fx *f = *state;
	struct store_entry e;

	test_dir_remote_round_trip(state);
	assert_int_equal(store_entry_read(f->b, f->res, &e), STORE_FOUND);
	assert_true(e.outputs[0].size > PACK_MEM_MAX);
	assert_blobs_whole(f, &e);
	store_entry_clear(&e);
}

static void
test_dir_remote_list(void **state)
{
	struct fx *f = *state;
	char res[HASH_HEX_LEN + 1], inv[HASH_HEX_LEN + 1], *root, *pack, *p;
	struct listed l;
	struct remote *r;
	struct stat st;

	hash_to_hex(f->res, res);
	hash_to_hex(f->inv, inv);
	assert_int_equal(store_intent_add(f->a, f->res, f->inv, 0), 0);
	r = open_dir_remote(f, &root);
	assert_int_equal(remote_put(r, f->dir_a, res), REMOTE_OK);
	p = xasprintf("%s/packs/x/.%s.pack.tmp.1", root, res); /* a writer's temporary */
	assert_int_equal(fs_write_atomic(p, "t", 1, 0644), 0);
	free(p);
	memset(&l, 0, sizeof l);
	assert_int_equal(remote_list(r, "packs/", collect, &l), REMOTE_OK);
	assert_int_equal(l.n, 1);
	pack = xasprintf("packs/x/%s.pack", res);
	assert_string_equal(l.names[0], pack);
	p = xasprintf("%s/%s", root, pack);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(l.sizes[0], (uint64_t)st.st_size);
	assert_int_equal(l.mtimes[0],
	    (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
	assert_true(l.mtimes[0] > 0);
	free(p);
	memset(&l, 0, sizeof l);
	assert_int_equal(remote_list(r, "packs/x/", collect, &l), REMOTE_OK);
	assert_int_equal(l.n, 1);
	memset(&l, 0, sizeof l);
	assert_int_equal(remote_list(r, "packs/y", collect, &l), REMOTE_OK);
	assert_int_equal(l.n, 0);
	memset(&l, 0, sizeof l);
	assert_int_equal(remote_list(r, "manifests/", collect, &l), REMOTE_OK);
	assert_int_equal(l.n, 1);
	p = layout_manifest_name(inv);
	assert_string_equal(l.names[0], p);
	free(p);
	memset(&l, 0, sizeof l);
	assert_int_equal(remote_list(r, "", collect, &l), REMOTE_OK);
	assert_int_equal(l.n, 3); /* the format marker, the manifest, the pack */
	memset(&l, 0, sizeof l);
	l.stop_after = 1;
	assert_int_equal(remote_list(r, "", collect, &l), REMOTE_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(remote_list(r, "../", collect, &l), REMOTE_FAILED);
	free(pack);
	remote_free(&r);
	free(root);
}

/* A marker naming another format: the remote is left alone, said once. */
static void
test_dir_remote_of_another_format_is_off(void **state)
{
	struct fx *f = *state;
	char inv[HASH_HEX_LEN + 1], res[HASH_HEX_LEN + 1], *root, *p, *text;
	struct remote *r;

	hash_to_hex(f->inv, inv);
	hash_to_hex(f->res, res);
	assert_int_equal(store_intent_add(f->a, f->res, f->inv, 0), 0);
	r = open_dir_remote(f, &root);
	p = xasprintf("%s/" LAYOUT_FORMAT_NAME, root);
	assert_int_equal(fs_write_atomic(p, "kache-remote 9\n", 15, 0644), 0);
	assert_int_equal(remote_fetch(r, f->dir_b, inv, 0), REMOTE_FAILED);
	assert_int_equal(remote_fetch(r, f->dir_b, inv, 0), REMOTE_MISS); /* off from now on */
	assert_int_equal(remote_put(r, f->dir_a, res), REMOTE_OFF);
	text = read_text(root, LAYOUT_FORMAT_NAME);
	assert_string_equal(text, "kache-remote 9\n");
	free(text);
	free(p);
	p = xasprintf("%s/packs", root);
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	remote_free(&r);
	free(root);
}

/* remote_check(cfg) with remote.type and remote.path, and s3 keys k = v. */
static int
check(const char *type, const char *path, const char *const *kv, char *err, size_t errlen)
{
	struct config *cfg = remote_config(type, path);
	int rc;

	for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2)
		config_set(cfg, kv[i], kv[i + 1]);
	err[0] = '\0';
	rc = remote_check(cfg, err, errlen);
	config_free(&cfg);
	return rc;
}

/* The settings check refuses what the workers would, and creates nothing. */
static void
test_remote_settings_check(void **state)
{
	const char *const creds[] = { "s3.bucket", "b", "s3.access_key_id", "AK",
		"s3.secret_access_key", "SK", "s3.endpoint", "http://127.0.0.1:9", NULL };
	const char *const bad_ep[] = { "s3.bucket", "b", "s3.access_key_id", "AK",
		"s3.secret_access_key", "SK", "s3.endpoint", "ftp://127.0.0.1", NULL };
	char err[256], *dir = tmpdir(), *sub = xasprintf("%s/not/yet", dir);

	(void)state;
	assert_int_equal(check("none", "", NULL, err, sizeof err), 0);
	assert_int_equal(check("dir", sub, NULL, err, sizeof err), 0);
	assert_int_equal(access(sub, F_OK), -1);
	assert_int_equal(check("dir", "relative/x", NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "absolute"));
	assert_int_equal(check("s3", "", NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "s3.bucket"));
	assert_int_equal(check("s3", "", creds, err, sizeof err), 0);
	assert_int_equal(check("s3", "", bad_ep, err, sizeof err), -1);
	assert_non_null(strstr(err, "s3: "));
	assert_int_equal(check("bogus", "", NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "bogus"));
	fs_remove_tree(dir);
	free(sub);
	free(dir);
}

/* The settings check (the supervisor's, at each start and reload) reads what
 * is local, and asks no one for keys: no role service, no STS, no
 * credential_process run; the workers ask when they open the remote. */
static void
test_remote_settings_check_asks_no_one_for_keys(void **state)
{
	const char *const s3[] = { "s3.bucket", "b", "s3.endpoint", "http://127.0.0.1:9", NULL };
	static const char *const unset[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_EC2_METADATA_DISABLED", NULL };
	char err[512], *dir = tmpdir(), *cfgf = xasprintf("%s/aws-config", dir);
	char *ran = xasprintf("%s/ran", dir), *none = xasprintf("%s/no-credentials", dir);
	struct buf b;

	(void)state;
	for (size_t i = 0; unset[i] != NULL; i++)
		unsetenv(unset[i]);
	setenv("AWS_SHARED_CREDENTIALS_FILE", none, 1);
	setenv("AWS_CONFIG_FILE", cfgf, 1);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	buf_init(&b);
	buf_addf(&b, "[default]\ncredential_process = touch %s\n", ran);
	assert_int_equal(fs_write_atomic(cfgf, b.p, b.len, 0600), 0);
	/* a credential_process: not run */
	assert_int_equal(check("s3", "", s3, err, sizeof err), 0);
	assert_int_equal(access(ran, F_OK), -1);
	/* nothing but the instance: not asked (its endpoint refuses connections) */
	assert_int_equal(unlink(cfgf), 0);
	assert_int_equal(check("s3", "", s3, err, sizeof err), 0);
	/* a web identity: STS not asked */
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", none, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci", 1);
	assert_int_equal(check("s3", "", s3, err, sizeof err), 0);
	unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	unsetenv("AWS_ROLE_ARN");
	/* what is local is still checked: a config file that does not parse */
	assert_int_equal(fs_write_atomic(cfgf, "[default]\nbroken\n", 18, 0600), 0);
	assert_int_equal(check("s3", "", s3, err, sizeof err), -1);
	assert_non_null(strstr(err, "line 2 of"));
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	buf_free(&b);
	fs_remove_tree(dir);
	free(cfgf);
	free(ran);
	free(none);
	free(dir);
}

#define R_OTHER "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

/* Store a's result uploaded to a directory remote at *root (crate "x"), its
 * pack's bytes read back into pack. */
static struct remote *
uploaded_pack(struct fx *f, char **root, struct buf *pack)
{
	char res[HASH_HEX_LEN + 1], *name, *p;
	struct remote *r;

	hash_to_hex(f->res, res);
	assert_int_equal(store_intent_add(f->a, f->res, f->inv, 0), 0);
	r = open_dir_remote(f, root);
	assert_int_equal(remote_put(r, f->dir_a, res), REMOTE_OK);
	name = layout_pack_name("x", res);
	p = xasprintf("%s/%s", *root, name);
	buf_init(pack);
	assert_int_equal(fs_read_file(p, pack, 1 << 24), 0);
	free(p);
	free(name);
	return r;
}

/* Puts the part into the directory remote at root under its id. */
static void
put_part_file(const char *root, const struct buf *part, char id[HASH_HEX_LEN + 1])
{
	unsigned char h[HASH_LEN];
	char *p;

	hash_buffer(part->p, part->len, h);
	hash_to_hex(h, id);
	p = xasprintf("%s/bundles", root);
	assert_int_equal(fs_mkdir_p(p, 0755), 0);
	free(p);
	p = xasprintf("%s/bundles/%s", root, id);
	assert_int_equal(fs_write_atomic(p, part->p, part->len, 0644), 0);
	free(p);
}

struct joiner {
	const struct store *st;
	const char *dir, *res, *gate;
	int got;
};

/* A wrapper's fetch of a pack a bundle part is importing: waits for the
 * pack's entry, takes its import lock, then opens the gate. */
static void *
join_import(void *arg)
{
	struct joiner *j = arg;
	int fd = -1;

	for (int i = 0; i < 1500 && !store_has_entry(j->st, j->res); i++)
		usleep(10000);
	if (layout_lock_take(j->dir, j->res, clock_ms() + 15000, &fd) == 0) {
		j->got = 1;
		(void)fs_write_atomic(j->gate, "", 0, 0644);
		layout_lock_release(fd);
	}
	return NULL;
}

/* Each pack of a bundle part is let go as soon as its import is over: a
 * fetch that joined it (the compile cargo waits for) goes on while the rest
 * of the part is still being imported (KACHE_TEST_BUNDLE_GATE holds the
 * import after its first pack until the joiner, holding that pack's lock,
 * opens the gate). The part's second pack is garbage: refused, the first
 * stays imported. A part of version 1 (the packs' own bytes): still read. */
static void
test_bundle_import_lets_each_pack_go_when_it_is_in(void **state)
{
	struct fx *f = *state;
	char res[HASH_HEX_LEN + 1], id[HASH_HEX_LEN + 1], *root, *gate;
	static const char junk[] = "not a pack at all";
	struct bundle_want w[2] = { { "x", res, 0, 0 }, { "y", R_OTHER, 0, 0 } };
	struct joiner j = { 0 };
	struct store *b;
	struct buf pack, part;
	struct remote *r;
	pthread_t t;

	hash_to_hex(f->res, res);
	r = uploaded_pack(f, &root, &pack);
	buf_init(&part);
	buf_addf(&part, "%spacks 2\nx %s %zu\ny %s %zu\nend\n", BUNDLE_MAGIC_V1, res, pack.len,
	    R_OTHER, sizeof junk - 1);
	buf_add(&part, pack.p, pack.len);
	buf_add(&part, junk, sizeof junk - 1);
	put_part_file(root, &part, id);

	gate = xasprintf("%s/gate", f->dir_b);
	assert_non_null(b = store_open(f->dir_b));
	j.dir = f->dir_b;
	j.res = res;
	j.gate = gate;
	j.st = b;
	setenv("KACHE_TEST_BUNDLE_GATE", gate, 1);
	assert_int_equal(pthread_create(&t, NULL, join_import, &j), 0);
	assert_int_equal(bundle_import(r, f->dir_b, id, w, 2), REMOTE_OK);
	pthread_join(t, NULL);
	unsetenv("KACHE_TEST_BUNDLE_GATE");
	assert_int_equal(j.got, 1);
	/* the gate was taken by the import: opened while it was still going */
	assert_int_not_equal(access(gate, F_OK), 0);
	assert_int_equal(w[0].imported, 1);
	assert_int_equal(w[1].imported, 0);
	assert_true(store_has_entry(b, res));
	store_free(&b);
	free(gate);
	buf_free(&pack);
	buf_free(&part);
	remote_free(&r);
	free(root);
}

/* What an import wants: x's result res, and a result no pack is. */
static void
want_x_and_other(struct bundle_want w[2], const char *res)
{
	w[0] = (struct bundle_want){ "x", res, 0, 0 };
	w[1] = (struct bundle_want){ "y", R_OTHER, 0, 0 };
}

/* A part of version 2 as bundle_write makes it (the packs' documents in one
 * frame): its good pack imported, its garbage document refused alone. The
 * same part cut short, or with its checksum flipped, is not valid: the
 * import says REMOTE_MISS (its packs are fetched one by one), and a pack the
 * cut frame never gave whole is not imported. */
static void
test_bundle_part_2_imports_each_document(void **state)
{
	struct fx *f = *state;
	char res[HASH_HEX_LEN + 1], id[HASH_HEX_LEN + 1], *root;
	static const char junk[] = "\x81\xa1v\x01"; /* a msgpack map, not a pack */
	struct bundle_want w[2];
	struct buf pack, docs, part;
	size_t head, xlen;
	struct remote *r;
	struct store *b;

	hash_to_hex(f->res, res);
	r = uploaded_pack(f, &root, &pack);
	buf_init(&docs);
	assert_int_equal(pack_doc_of(pack.p, pack.len, &docs, PACK_DOCS_MAX), 0);
	xlen = docs.len;
	/* a cap the document does not fit in: refused, as a pack that is not one */
	buf_reset(&docs);
	assert_int_equal(pack_doc_of(pack.p, pack.len, &docs, xlen - 1), -1);
	assert_int_equal(docs.len, 0); /* nothing of it left behind */
	assert_int_equal(pack_doc_of("junk", 4, &docs, PACK_DOCS_MAX), -1);
	buf_reset(&docs);
	assert_int_equal(pack_doc_of(pack.p, pack.len, &docs, PACK_DOCS_MAX), 0);
	buf_add(&docs, junk, sizeof junk - 1);
	buf_init(&part);
	buf_addf(&part, "%spacks 2\nx %s %zu\ny %s %zu\nend\n", BUNDLE_MAGIC, res, xlen, R_OTHER,
	    sizeof junk - 1);
	head = part.len;
	assert_int_equal(pack_docs_deflate(docs.p, docs.len, &part), 0);
	put_part_file(root, &part, id);
	assert_non_null(b = store_open(f->dir_b));
	want_x_and_other(w, res);
	assert_int_equal(bundle_import(r, f->dir_b, id, w, 2), REMOTE_OK);
	assert_int_equal(w[0].imported, 1);
	assert_int_equal(w[1].imported, 0);
	assert_int_equal(w[1].done, 0);
	assert_true(store_has_entry(b, res));
	/* again: the pack is present (done, not imported); nothing left to read */
	want_x_and_other(w, res);
	assert_int_equal(bundle_import(r, f->dir_b, id, w, 2), REMOTE_OK);
	assert_int_equal(w[0].done, 1);
	assert_int_equal(w[0].imported, 0);
	store_free(&b);
	fs_remove_tree(f->dir_b);
	assert_int_equal(fs_mkdir_p(f->dir_b, 0755), 0);

	/* cut short: refused before anything is inflated */
	part.len = head + (part.len - head) / 2;
	put_part_file(root, &part, id);
	want_x_and_other(w, res);
	assert_int_equal(bundle_import(r, f->dir_b, id, w, 2), REMOTE_MISS);
	assert_int_equal(w[0].imported, 0);
	assert_non_null(b = store_open(f->dir_b));
	assert_false(store_has_entry(b, res));
	store_free(&b);

	/* the checksum flipped: not valid either */
	buf_reset(&part);
	buf_addf(&part, "%spacks 2\nx %s %zu\ny %s %zu\nend\n", BUNDLE_MAGIC, res, xlen, R_OTHER,
	    sizeof junk - 1);
	assert_int_equal(pack_docs_deflate(docs.p, docs.len, &part), 0);
	part.p[part.len - 1] ^= 0x5a;
	put_part_file(root, &part, id);
	want_x_and_other(w, res);
	assert_int_equal(bundle_import(r, f->dir_b, id, w, 2), REMOTE_MISS);
	buf_free(&pack);
	buf_free(&docs);
	buf_free(&part);
	remote_free(&r);
	free(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remote_settings_check_asks_no_one_for_keys),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_blob_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vouched_pack_skips_blob_hashes_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pack_read_from_a_pipe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack_read_unnamed_named_or_offset, setup_mid,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pack_read_larger_than_memory,
		    setup_large_random, teardown),
		cmocka_unit_test_setup_teardown(test_pack_memory_kept_and_bounded, setup_mid,
		    teardown),
		cmocka_unit_test_setup_teardown(test_flipped_entry_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_garbage_rejected, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wrong_keys_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_blob_is_absent, setup, teardown),
		cmocka_unit_test(test_layout_manifest),
		cmocka_unit_test_setup_teardown(test_dir_remote_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_remote_recache_replaces_the_pack, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_intent_text_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_remote_round_trip_past_memory,
		    setup_large_random, teardown),
		cmocka_unit_test_setup_teardown(test_dir_remote_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bundle_import_lets_each_pack_go_when_it_is_in,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bundle_part_2_imports_each_document, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_large, setup_large, teardown),
		cmocka_unit_test_setup_teardown(test_dir_remote_of_another_format_is_off, setup,
		    teardown),
		cmocka_unit_test(test_remote_settings_check),
		cmocka_unit_test_setup_teardown(test_import_writes_direct, setup_mid, teardown),
		cmocka_unit_test_setup_teardown(test_import_direct_reads_executables_back,
		    setup_mid_exec, teardown),
		cmocka_unit_test_setup_teardown(test_import_direct_reads_executables_back,
		    setup_mid, teardown),
		cmocka_unit_test(test_import_writes_auto_follows_the_times),
		cmocka_unit_test_setup_teardown(test_import_writes_refused_falls_back_to_buffered,
		    setup_mid, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
