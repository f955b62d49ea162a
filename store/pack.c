#include "store/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
/* ZSTD_d_stableOutBuffer (pack_docs_inflate): stable in libzstd since 1.4.4,
 * still declared among the experimental parameters */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

#include "common/fs.h"
#include "common/log.h"
#include "store/codec.h"
#include "store/journal.h"

/* Fuzzing builds skip the pack's sum, which no mutated input could match, so
 * that the fuzzer reaches the decoders behind it. Never set in a real build. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define PACK_CHECK_SUM 0
#else
#define PACK_CHECK_SUM 1
#endif

struct zout;

static void pack_sum(const struct buf *cand, const struct buf *ent, unsigned char out[HASH_LEN]);
static int zout_push(struct zout *o, const char *p, size_t n, ZSTD_EndDirective how);
static int zout_write(void *data, const char *p, size_t n);
/* A pack's document being inflated: in memory up to PACK_MEM_MAX (most
 * crates: one copy of the bytes fewer than a file, and no file system work),
 * past it in an unnamed file in the store's tmp/. */
struct doc {
	char *mem;
	size_t len, cap;
	int fd; /* -1 while in memory */
	const char *tmpdir;
};

static enum pack_result inflate_to(int fd, struct doc *d);
static int doc_add(struct doc *d, const char *p, size_t n);
struct region;
static void regions_limit_init(void);
static char *map_kept(size_t n);
static int region_take(struct region *rg);
static void region_give(const struct region *rg);
static enum pack_result inflate_mem(struct region *rg, const char *in, size_t n, size_t *len);
static enum pack_result inflate_whole(int fd, struct region *rg, size_t *len);
static enum pack_result inflate_streamed(struct store *s, int fd, off_t start,
    const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN], unsigned flags);
static enum pack_result doc_import(struct store *s, const char *p, size_t n,
    const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN], unsigned flags);
static enum pack_result inflate_docs(ZSTD_DCtx *z, const char *in, size_t n, char *out, size_t want,
    pack_docs_fn ready, void *arg);
static int find_candidate(struct store *s, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], struct buf *out);
static int add_blob(struct store *s, msgpack_packer *pk, const unsigned char h[HASH_LEN]);
static int import_blob(struct store *s, const msgpack_object *pair, const struct store_entry *e,
    unsigned flags);
static int entry_blobs_present(struct store *s, const struct store_entry *e);
static enum pack_result import_doc(struct store *s, const msgpack_object *root,
    const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN], unsigned flags);
static void note_import(struct store *s, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], const struct store_entry *e, int prefetch);

const char *
pack_result_name(enum pack_result r)
{
	static const char *const names[] = { "ok", "absent", "corrupt", "i/o error" };

	return (unsigned)r < 4 ? names[r] : "?";
}

int
pack_crate_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		        (name[i] >= '0' && name[i] <= '9') || name[i] == '_' || name[i] == '-'))
			return 0;
	return 1;
}

/* The local manifest candidate of inv that leads to res, as a one-candidate
 * manifest document. */
static int
find_candidate(struct store *s, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], struct buf *out)
{
	struct store_manifest m, one;
	int rc = -1;

	if (store_manifest_read(s, inv, &m) != STORE_FOUND)
		return -1;
	for (size_t i = 0; i < m.n; i++)
		if (memcmp(m.c[i].result, res, HASH_LEN) == 0) {
			one.c = &m.c[i];
			one.n = 1;
			rc = store_manifest_encode(&one, out);
			break;
		}
	store_manifest_clear(&m);
	return rc;
}

/* Streams one blob file into the pack as [hash, bytes], checking on the way
 * that it still has the content its name promises. */
static int
add_blob(struct store *s, msgpack_packer *pk, const unsigned char h[HASH_LEN])
{
	char hex[HASH_HEX_LEN + 1], chunk[65536];
	unsigned char check[HASH_LEN];
	struct hash_ctx c;
	struct stat st;
	uint64_t left;
	char *p;
	int fd, rc = -1;

	hash_to_hex(h, hex);
	p = store_path(s, "blobs", hex);
	fd = fs_open_regular(p, O_RDONLY, 0);
	free(p);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	msgpack_pack_array(pk, 2);
	codec_pack_bin(pk, h, HASH_LEN);
	msgpack_pack_bin(pk, (size_t)st.st_size);
	hash_begin(&c);
	for (left = (uint64_t)st.st_size; left > 0;) {
		ssize_t n = read(fd, chunk, left < sizeof chunk ? (size_t)left : sizeof chunk);

		if (n <= 0)
			break;
		hash_update(&c, chunk, (size_t)n);
		msgpack_pack_bin_body(pk, chunk, (size_t)n);
		left -= (uint64_t)n;
	}
	hash_end(&c, check);
	if (left == 0 && memcmp(check, h, HASH_LEN) == 0)
		rc = 0;
	else
		log_warnx("pack: local blob %s is damaged; not uploaded", hex);
	close(fd);
	return rc;
}

/* BLAKE2b over the candidate and entry bytes: the blobs carry their own
 * hashes, this covers the rest, so no damaged byte of a pack is imported. */
static void
pack_sum(const struct buf *cand, const struct buf *ent, unsigned char out[HASH_LEN])
{
	struct hash_ctx c;

	hash_begin(&c);
	hash_str(&c, "kache-pack-v1");
	hash_u64(&c, cand->len);
	hash_update(&c, cand->p ? cand->p : "", cand->len);
	hash_u64(&c, ent->len);
	hash_update(&c, ent->p ? ent->p : "", ent->len);
	hash_end(&c, out);
}

/* The msgpack packer writes into a zstd stream (level 3, frame checksum on, so
 * decompression itself notices most damage) that goes to a file. */
struct zout {
	ZSTD_CCtx *z;
	int fd;
	int failed;
	char buf[1 << 16];
};

static int
zout_push(struct zout *o, const char *p, size_t n, ZSTD_EndDirective how)
{
	ZSTD_inBuffer in = { p, n, 0 };
	size_t left;

	do {
		ZSTD_outBuffer out = { o->buf, sizeof o->buf, 0 };

		left = ZSTD_compressStream2(o->z, &out, &in, how);
		if (ZSTD_isError(left) || fs_write_all(o->fd, o->buf, out.pos) < 0) {
			o->failed = 1;
			return -1;
		}
	} while (how == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

static int
zout_write(void *data, const char *p, size_t n)
{
	struct zout *o = data;

	return o->failed ? -1 : zout_push(o, p, n, ZSTD_e_continue);
}

enum pack_result
pack_write(struct store *s, const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN],
    int fd, char **crate)
{
	struct store_entry e;
	struct buf cand, ent;
	struct zout *o = xcalloc(1, sizeof *o);
	msgpack_packer pk;
	enum pack_result r = PACK_ABSENT;
	unsigned char sum[HASH_LEN];

	*crate = NULL;
	buf_init(&cand);
	buf_init(&ent);
	o->fd = fd;
	if (store_entry_read(s, res, &e) != STORE_FOUND)
		goto out;
	if (find_candidate(s, inv, res, &cand) < 0 || store_entry_encode(&e, &ent) < 0)
		goto out;
	o->z = ZSTD_createCCtx();
	if (o->z == NULL)
		goto out;
	ZSTD_CCtx_setParameter(o->z, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(o->z, ZSTD_c_checksumFlag, 1);
	msgpack_packer_init(&pk, o, zout_write);
	msgpack_pack_map(&pk, 8);
	codec_pack_kv_u64(&pk, "v", PACK_FORMAT);
	codec_pack_kv_bin(&pk, "inv", inv, HASH_LEN);
	codec_pack_kv_bin(&pk, "res", res, HASH_LEN);
	codec_pack_kv_str(&pk, "crate", e.crate);
	codec_pack_kv_bin(&pk, "candidate", cand.p, cand.len);
	codec_pack_kv_bin(&pk, "entry", ent.p, ent.len);
	pack_sum(&cand, &ent, sum);
	codec_pack_kv_bin(&pk, "sum", sum, HASH_LEN);
	codec_pack_str(&pk, "blobs");
	msgpack_pack_array(&pk, e.n_outputs);
	for (size_t i = 0; i < e.n_outputs; i++)
		if (add_blob(s, &pk, e.outputs[i].hash) < 0)
			goto out;
	r = PACK_IOERR;
	if (o->failed || zout_push(o, NULL, 0, ZSTD_e_end) < 0)
		goto out;
	*crate = xstrdup(e.crate);
	r = PACK_OK;
out:
	ZSTD_freeCCtx(o->z);
	free(o);
	store_entry_clear(&e);
	buf_free(&cand);
	buf_free(&ent);
	return r;
}

enum pack_result
pack_build(struct store *s, const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN],
    struct buf *out, char **crate)
{
	int fd = memfd_create("kache-pack", MFD_CLOEXEC);
	enum pack_result r;
	off_t n;

	*crate = NULL;
	if (fd < 0)
		return PACK_IOERR;
	r = pack_write(s, inv, res, fd, crate);
	n = lseek(fd, 0, SEEK_CUR);
	if (r == PACK_OK) {
		buf_grow(out, (size_t)n);
		if (n < 0 || pread(fd, out->p + out->len, (size_t)n, 0) != n)
			r = PACK_IOERR;
		else
			out->len += (size_t)n, out->p[out->len] = '\0';
	}
	close(fd);
	return r;
}

/* Verifies one [hash, bytes] pair and writes the blob (mode from the entry).
 * PACK_BLOBS_VOUCHED: the pack's signature, checked against a trusted key,
 * already vouches for every byte, so the bytes are not hashed again. */
static int
import_blob(struct store *s, const msgpack_object *pair, const struct store_entry *e,
    unsigned flags)
{
	unsigned char h[HASH_LEN], check[HASH_LEN];
	const msgpack_object *bytes;
	int exec = 0;

	if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2 ||
	    codec_obj_fixed(&pair->via.array.ptr[0], h, HASH_LEN) < 0)
		return -1;
	bytes = &pair->via.array.ptr[1];
	if (bytes->type != MSGPACK_OBJECT_BIN)
		return -1;
	if (!(flags & PACK_BLOBS_VOUCHED)) {
		hash_buffer(bytes->via.bin.ptr, bytes->via.bin.size, check);
		if (memcmp(check, h, HASH_LEN) != 0)
			return -1;
	}
	for (size_t i = 0; i < e->n_outputs; i++)
		if (memcmp(e->outputs[i].hash, h, HASH_LEN) == 0 && (e->outputs[i].mode & 0111))
			exec = 1;
	return pack_writes_put(s, bytes->via.bin.ptr, bytes->via.bin.size, exec, h);
}

static int
entry_blobs_present(struct store *s, const struct store_entry *e)
{
	for (size_t i = 0; i < e->n_outputs; i++) {
		char hex[HASH_HEX_LEN + 1];
		char *p;
		struct stat st;
		int ok;

		hash_to_hex(e->outputs[i].hash, hex);
		p = store_path(s, "blobs", hex);
		ok = stat(p, &st) == 0 && (uint64_t)st.st_size == e->outputs[i].size;
		free(p);
		if (!ok)
			return 0;
	}
	return 1;
}

/* The journal's `import` record (store/journal.h): a prefetch when the
 * caller did not know the invocation key (pack_read's inv NULL), else a fetch.
 * Best effort: a lost record only leaves a hit counted as local. */
static void
note_import(struct store *s, const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN],
    const struct store_entry *e, int prefetch)
{
	struct journal_event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = JOURNAL_IMPORT;
	snprintf(ev.crate, sizeof ev.crate, "%s", e->crate ? e->crate : "");
	snprintf(ev.reason, sizeof ev.reason, "%s%s%s",
	    prefetch ? JOURNAL_IMPORT_PREFETCH : JOURNAL_IMPORT_FETCH,
	    prefetch && store_import_source(s)[0] ? "/" : "",
	    prefetch ? store_import_source(s) : "");
	ev.has_inv = ev.has_res = 1;
	memcpy(ev.inv, inv, HASH_LEN);
	memcpy(ev.res, res, HASH_LEN);
	for (size_t i = 0; i < e->n_outputs; i++)
		ev.bytes += e->outputs[i].size;
	if (journal_append(store_dir(s), &ev) < 0)
		log_warn("journal append (import)");
}

static enum pack_result
import_doc(struct store *s, const msgpack_object *root, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], unsigned flags)
{
	unsigned char got_inv[HASH_LEN], got_res[HASH_LEN], sum[HASH_LEN], want[HASH_LEN];
	struct buf cand, ent;
	struct store_entry e;
	struct store_manifest m = { 0 };
	const msgpack_object *blobs = codec_map_get(root, "blobs");
	enum pack_result r = PACK_CORRUPT;
	uint64_t v;

	buf_init(&cand);
	buf_init(&ent);
	store_entry_init(&e);
	if (codec_get_u64(root, "v", &v) < 0 || v != PACK_FORMAT ||
	    codec_get_fixed(root, "inv", got_inv, HASH_LEN) < 0 ||
	    codec_get_fixed(root, "res", got_res, HASH_LEN) < 0 ||
	    (inv != NULL && memcmp(got_inv, inv, HASH_LEN) != 0) ||
	    memcmp(got_res, res, HASH_LEN) != 0 || codec_get_bin(root, "candidate", &cand) < 0 ||
	    codec_get_bin(root, "entry", &ent) < 0 || blobs == NULL ||
	    blobs->type != MSGPACK_OBJECT_ARRAY)
		goto out;
	pack_sum(&cand, &ent, want);
	if (codec_get_fixed(root, "sum", sum, HASH_LEN) < 0 ||
	    (PACK_CHECK_SUM && memcmp(sum, want, HASH_LEN) != 0))
		goto out;
	if (store_entry_decode(ent.p ? ent.p : "", ent.len, &e) < 0 ||
	    store_manifest_decode(cand.p ? cand.p : "", cand.len, &m) < 0 || m.n != 1 ||
	    memcmp(m.c[0].result, res, HASH_LEN) != 0)
		goto out;
	for (uint32_t i = 0; i < blobs->via.array.size; i++)
		if (import_blob(s, &blobs->via.array.ptr[i], &e, flags) < 0)
			goto out;
	if (!entry_blobs_present(s, &e))
		goto out;
	r = PACK_IOERR;
	if (store_entry_write(s, res, &e) < 0)
		goto out;
	/* before the candidate makes the entry findable: the index owner learns
	 * where it came from before any hit on it */
	note_import(s, got_inv, res, &e, inv == NULL);
	if (store_manifest_add(s, inv ? inv : got_inv, &m.c[0]) == 0)
		r = PACK_OK;
out:
	store_manifest_clear(&m);
	store_entry_clear(&e);
	buf_free(&cand);
	buf_free(&ent);
	return r;
}

/* Appends n bytes to the document: to memory while it stays within
 * PACK_MEM_MAX, else (moving what memory held) to an unnamed file. -1 when
 * the file cannot be made or written. */
static int
doc_add(struct doc *d, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (d->fd < 0 && d->len + n <= PACK_MEM_MAX) {
		if (d->len + n > d->cap) {
			d->cap = d->cap ? d->cap * 2 : 1 << 20;
			while (d->cap < d->len + n)
				d->cap *= 2;
			d->mem = xrealloc(d->mem, d->cap);
		}
		memcpy(d->mem + d->len, p, n);
		d->len += n;
		return 0;
	}
	if (d->fd < 0) {
		if ((d->fd = open(d->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0 ||
		    fs_write_all(d->fd, d->mem ? d->mem : "", d->len) < 0)
			return -1;
		free(d->mem);
		d->mem = NULL;
	}
	if (fs_write_all(d->fd, p, n) < 0)
		return -1;
	d->len += n;
	return 0;
}

/* Decompresses the pack on fd into d, at most PACK_MAX_BYTES. The frame
 * must be whole, its checksum right. */
static enum pack_result
inflate_to(int fd, struct doc *d)
{
	ZSTD_DCtx *z = ZSTD_createDCtx();
	/* one per thread: a prefetch imports on several (workers/prefetch) */
	static _Thread_local char in_buf[1 << 16], out_buf[1 << 17];
	enum pack_result r = PACK_CORRUPT;
	size_t last = 1;
	ssize_t n;

	if (z == NULL)
		return PACK_IOERR;
	while ((n = read(fd, in_buf, sizeof in_buf)) > 0) {
		ZSTD_inBuffer in = { in_buf, (size_t)n, 0 };

		while (in.pos < in.size) {
			ZSTD_outBuffer o = { out_buf, sizeof out_buf, 0 };

			last = ZSTD_decompressStream(z, &o, &in);
			if (ZSTD_isError(last) || d->len + o.pos > PACK_MAX_BYTES)
				goto out;
			if (doc_add(d, out_buf, o.pos) < 0) {
				r = PACK_IOERR;
				goto out;
			}
		}
	}
	if (n == 0 && last == 0)
		r = PACK_OK; /* a whole frame, checksum verified by zstd */
out:
	ZSTD_freeDCtx(z);
	return r;
}

static enum pack_result
doc_import(struct store *s, const char *p, size_t n, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], unsigned flags)
{
	enum pack_result r = PACK_CORRUPT;
	msgpack_zone zone;
	msgpack_object root;

	msgpack_zone_init(&zone, 4096);
	if (codec_unpack(p, n, &zone, &root) == 0)
		r = import_doc(s, &root, inv, res, flags);
	msgpack_zone_destroy(&zone);
	return r;
}

/* A pack is read in a region of 2 x PACK_MEM_MAX bytes: the document, which
 * zstd inflates into directly (no copy out of zstd's window, no growing
 * buffer), then the compressed bytes it inflates from.
 * Regions are kept from pack to pack with their pages: a page the kernel
 * must find, clear and map, or one marked free (MADV_FREE) and written
 * again, costs about 6 us on a paravirtualised machine (a VM exit each;
 * ws-small's 238 MB of documents are 58,000 pages: with MADV_FREE after each
 * pack, zstd took 2.6x its time into pages kept). At most one region per CPU
 * this process may run on is in use (inflating is all CPU: more threads at
 * it would only touch more memory); a thread past that waits for one, at
 * most REGION_WAIT_MS, then streams its pack through fresh memory. Regions
 * are asked for as transparent huge pages (one fault per 2 MiB where the
 * kernel's transparent_hugepage is madvise or always: the prefetch worker's
 * CPU for ws-small went from 1.26 s to 1.05 s) and go back to the kernel
 * with pack_memory_release (a process gone idle). */
/* 2 x PACK_MEM_MAX: a pack's document and its compressed bytes, or the
 * documents of a bundle part (pack_docs_inflate) */
#define REGION_BYTES PACK_DOCS_MAX
#define REGIONS_MAX 64
#define REGION_WAIT_MS 30000

/* A region and the zstd context that inflates into it (made on first use,
 * kept with the region: no allocation per pack). */
struct region {
	char *p;
	ZSTD_DCtx *z;
};

/* Buffers a pack's compressed bytes are read into (pack_buffer_take), kept
 * the same way. Not bounded by the CPUs: a download waits on the network, and
 * each thread downloading holds one. */
#define BUFFERS_MAX 64

static pthread_mutex_t regions_mu = PTHREAD_MUTEX_INITIALIZER;
static char *buffers_free[BUFFERS_MAX];
static int buffers_nfree, buffers_made;
static pthread_cond_t regions_cv = PTHREAD_COND_INITIALIZER;
static struct region regions_free[REGIONS_MAX];
static int regions_nfree, regions_made;

static pthread_once_t regions_once = PTHREAD_ONCE_INIT;
static int regions_limit; /* one per CPU the process may run on */

static void
regions_limit_init(void)
{
	cpu_set_t set;
	int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;

	if (n <= 0)
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	regions_limit = n < 1 ? 1 : n > REGIONS_MAX ? REGIONS_MAX : n;
}

/* Memory to keep from pack to pack: asked for as transparent huge pages.
 * NULL when it cannot be mapped. */
static char *
map_kept(size_t n)
{
	char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	    -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, n, MADV_HUGEPAGE);
	return p;
}

/* A region to read one pack in: 0, or -1 when none can be had. */
static int
region_take(struct region *rg)
{
	struct timespec until;
	int limit, rc = 0, out = -1;

	pthread_once(&regions_once, regions_limit_init);
	limit = regions_limit;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += REGION_WAIT_MS / 1000;
	pthread_mutex_lock(&regions_mu);
	while (regions_nfree == 0 && regions_made >= limit && rc == 0)
		rc = pthread_cond_timedwait(&regions_cv, &regions_mu, &until);
	if (regions_nfree > 0) {
		*rg = regions_free[--regions_nfree];
		out = 0;
	} else if (regions_made < limit) {
		rg->z = NULL;
		if ((rg->p = map_kept(REGION_BYTES)) != NULL) {
			regions_made++;
			out = 0;
		}
	}
	pthread_mutex_unlock(&regions_mu);
	return out;
}

static void
region_give(const struct region *rg)
{
	pthread_mutex_lock(&regions_mu);
	regions_free[regions_nfree++] = *rg;
	pthread_cond_signal(&regions_cv);
	pthread_mutex_unlock(&regions_mu);
}

int
pack_memory_regions(void)
{
	int n;

	pthread_mutex_lock(&regions_mu);
	n = regions_made + buffers_made;
	pthread_mutex_unlock(&regions_mu);
	return n;
}

void
pack_memory_release(void)
{
	pthread_mutex_lock(&regions_mu);
	while (regions_nfree > 0) {
		struct region *rg = &regions_free[--regions_nfree];

		munmap(rg->p, REGION_BYTES);
		ZSTD_freeDCtx(rg->z);
		regions_made--;
	}
	while (buffers_nfree > 0) {
		munmap(buffers_free[--buffers_nfree], PACK_MEM_MAX);
		buffers_made--;
	}
	pthread_mutex_unlock(&regions_mu);
}

/* Inflates the compressed pack in[0..n) in one call into the region's first
 * half: every frame whole, checksums right. PACK_ABSENT when the document
 * does not fit (the caller streams it to a file instead). */
static enum pack_result
inflate_mem(struct region *rg, const char *in, size_t n, size_t *len)
{
	size_t got;

	if (n == 0)
		return PACK_CORRUPT;
	if (rg->z == NULL && (rg->z = ZSTD_createDCtx()) == NULL)
		return PACK_IOERR;
	got = ZSTD_decompressDCtx(rg->z, rg->p, PACK_MEM_MAX, in, n);
	if (ZSTD_getErrorCode(got) == ZSTD_error_dstSize_tooSmall)
		return PACK_ABSENT;
	if (ZSTD_isError(got) || got == 0)
		return PACK_CORRUPT;
	*len = got;
	return PACK_OK;
}

/* As inflate_mem, the compressed pack on fd from its offset to its end, read
 * into the region's second half; PACK_ABSENT too when it does not fit there.
 * Read, not mapped, even from an unnamed file of our own: a copy out of the
 * page cache into pages kept is cheaper than mapping the file's pages and
 * unmapping them (a page table entry each, and a TLB shootdown of every CPU,
 * which a VM pays in exits). */
static enum pack_result
inflate_whole(int fd, struct region *rg, size_t *len)
{
	size_t n = 0;

	if (fs_read_into(fd, rg->p + PACK_MEM_MAX, PACK_MEM_MAX, &n) < 0)
		return errno == EFBIG ? PACK_ABSENT : PACK_IOERR;
	return inflate_mem(rg, rg->p + PACK_MEM_MAX, n, len);
}

/* The path of a document past PACK_MEM_MAX: inflated from start (-1: fd was
 * not read yet and cannot seek) into memory up to PACK_MEM_MAX, then into an
 * unnamed file in tmp/ that is mapped. */
static enum pack_result
inflate_streamed(struct store *s, int fd, off_t start, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], unsigned flags)
{
	char *tmpdir = xasprintf("%s/tmp", store_dir(s));
	struct doc d = { .fd = -1, .tmpdir = tmpdir };
	enum pack_result r =
	    start < 0 || lseek(fd, start, SEEK_SET) == start ? inflate_to(fd, &d) : PACK_IOERR;
	void *map = MAP_FAILED;

	if (r == PACK_OK && d.len == 0)
		r = PACK_CORRUPT;
	if (r == PACK_OK && d.fd < 0) {
		r = doc_import(s, d.mem, d.len, inv, res, flags);
	} else if (r == PACK_OK) {
		/* Mapped, not read: the document can be as large as the crate's outputs. */
		map = mmap(NULL, d.len, PROT_READ, MAP_PRIVATE, d.fd, 0);
		r = map == MAP_FAILED ? PACK_IOERR : doc_import(s, map, d.len, inv, res, flags);
	}
	if (map != MAP_FAILED)
		munmap(map, d.len);
	if (d.fd >= 0)
		close(d.fd);
	free(d.mem);
	free(tmpdir);
	return r;
}

enum pack_result
pack_read(struct store *s, int fd, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], unsigned flags)
{
	off_t start = lseek(fd, 0, SEEK_CUR);
	struct region rg;
	int have = start >= 0 && region_take(&rg) == 0;
	enum pack_result r = PACK_ABSENT;
	size_t len = 0;

	if (have)
		r = inflate_whole(fd, &rg, &len);
	if (r == PACK_OK)
		r = doc_import(s, rg.p, len, inv, res, flags);
	if (have)
		region_give(&rg);
	if (r == PACK_ABSENT)
		r = inflate_streamed(s, fd, start, inv, res, flags);
	return r;
}

enum pack_result
pack_import(struct store *s, const char *data, size_t n, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], unsigned flags)
{
	struct region rg;
	int have = region_take(&rg) == 0, fd;
	enum pack_result r = PACK_ABSENT;
	size_t len = 0;

	if (have)
		r = inflate_mem(&rg, data, n, &len);
	if (r == PACK_OK)
		r = doc_import(s, rg.p, len, inv, res, flags);
	if (have)
		region_give(&rg);
	if (r != PACK_ABSENT)
		return r;
	/* the document past PACK_MEM_MAX (or no region): streamed from a file */
	if ((fd = memfd_create("kache-pack", MFD_CLOEXEC)) < 0)
		return PACK_IOERR;
	r = fs_write_all(fd, data, n) == 0 && lseek(fd, 0, SEEK_SET) == 0 ?
	    inflate_streamed(s, fd, 0, inv, res, flags) :
	    PACK_IOERR;
	close(fd);
	return r;
}

enum pack_result
pack_import_doc(struct store *s, const char *doc, size_t n, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], unsigned flags)
{
	return doc_import(s, doc, n, inv, res, flags);
}

/* Compressed bytes handed to zstd per step of inflate_docs: about a MiB of
 * documents between two calls of ready. */
#define DOCS_STEP ((size_t)128 << 10)

/* Streams the frame in[0..n) into out[0..want), zstd matching against out
 * itself (a stable output buffer: no window of its own to allocate and
 * fault in, which for a frame of 64 MiB would cost more than inflating it),
 * calling ready after each step that made output. */
static enum pack_result
inflate_docs(ZSTD_DCtx *z, const char *in, size_t n, char *out, size_t want, pack_docs_fn ready,
    void *arg)
{
	ZSTD_outBuffer o = { out, want, 0 };
	ZSTD_inBuffer i = { in, 0, 0 };
	size_t left = 1, was_in, was_out;

	if (ZSTD_isError(ZSTD_DCtx_reset(z, ZSTD_reset_session_and_parameters)) ||
	    ZSTD_isError(ZSTD_DCtx_setParameter(z, ZSTD_d_stableOutBuffer, 1)))
		return PACK_IOERR;
	while (left != 0) {
		was_in = i.pos;
		was_out = o.pos;
		i.size = n - i.pos > DOCS_STEP ? i.pos + DOCS_STEP : n;
		left = ZSTD_decompressStream(z, &o, &i);
		if (ZSTD_isError(left) || (i.pos == was_in && o.pos == was_out))
			return PACK_CORRUPT; /* bad bytes, or the input ended first */
		if (o.pos > was_out)
			ready(arg, out, o.pos);
	}
	return i.pos == n && o.pos == want ? PACK_OK : PACK_CORRUPT;
}

enum pack_result
pack_docs_inflate(const char *in, size_t n, size_t want, pack_docs_fn ready, void *arg)
{
	struct region rg;
	int have;
	enum pack_result r;
	char *mem;
	ZSTD_DCtx *z;

	/* one frame exactly, saying its size: checked before any memory is used */
	if (want == 0 || want > PACK_DOCS_MAX || ZSTD_findFrameCompressedSize(in, n) != n ||
	    ZSTD_getFrameContentSize(in, n) != want)
		return PACK_CORRUPT;
	if ((have = region_take(&rg) == 0) &&
	    (rg.z != NULL || (rg.z = ZSTD_createDCtx()) != NULL)) {
		r = inflate_docs(rg.z, in, n, rg.p, want, ready, arg);
		/* back to what pack_import's one call expects */
		(void)ZSTD_DCtx_reset(rg.z, ZSTD_reset_session_and_parameters);
		region_give(&rg);
		return r;
	}
	if (have)
		region_give(&rg);
	if ((z = ZSTD_createDCtx()) == NULL)
		return PACK_IOERR;
	mem = xmalloc(want);
	r = inflate_docs(z, in, n, mem, want, ready, arg);
	ZSTD_freeDCtx(z);
	free(mem);
	return r;
}

char *
pack_buffer_take(void)
{
	char *p = NULL;

	pthread_mutex_lock(&regions_mu);
	if (buffers_nfree > 0) {
		p = buffers_free[--buffers_nfree];
	} else if (buffers_made < BUFFERS_MAX && (p = map_kept(PACK_MEM_MAX)) != NULL) {
		buffers_made++;
	}
	pthread_mutex_unlock(&regions_mu);
	return p;
}

void
pack_buffer_give(char *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&regions_mu);
	buffers_free[buffers_nfree++] = p;
	pthread_mutex_unlock(&regions_mu);
}
