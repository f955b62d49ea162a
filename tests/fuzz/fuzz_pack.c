/* libFuzzer target: a pack as fetched from a remote (store/pack.c), imported
 * into a scratch store. The first byte picks the form:
 *   even: the rest is the decompressed document; the target compresses it and
 *         passes the inv/res it names, so the checks past the zstd frame and
 *         the key match are reached (the sum check is off in fuzzing builds);
 *   odd:  the rest is the raw bytes from the remote, keys all zero.
 * Whatever imports must leave an entry whose every blob is in the store. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "common/hash.h"
#include "store/codec.h"
#include "store/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

static struct store *scratch;

static void keys_of(const char *doc, size_t n, unsigned char inv[HASH_LEN],
    unsigned char res[HASH_LEN]);
static void check_imported(const unsigned char res[HASH_LEN]);
static void compress(const char *doc, size_t n, struct buf *out);

/* The keys the document names, zero where it names none. */
static void
keys_of(const char *doc, size_t n, unsigned char inv[HASH_LEN], unsigned char res[HASH_LEN])
{
	msgpack_zone zone;
	msgpack_object root;

	memset(inv, 0, HASH_LEN);
	memset(res, 0, HASH_LEN);
	msgpack_zone_init(&zone, 1024);
	if (codec_unpack(doc, n, &zone, &root) == 0) {
		(void)codec_get_fixed(&root, "inv", inv, HASH_LEN);
		(void)codec_get_fixed(&root, "res", res, HASH_LEN);
	}
	msgpack_zone_destroy(&zone);
}

static void
compress(const char *doc, size_t n, struct buf *out)
{
	ZSTD_CCtx *z = ZSTD_createCCtx();
	size_t bound = ZSTD_compressBound(n), got;

	buf_grow(out, bound);
	ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1);
	got = ZSTD_compress2(z, out->p, bound, doc, n);
	if (ZSTD_isError(got))
		abort();
	out->len = got;
	ZSTD_freeCCtx(z);
}

/* An imported result reads back whole, and every output blob is present. */
static void
check_imported(const unsigned char res[HASH_LEN])
{
	struct store_entry e;

	if (store_entry_read(scratch, res, &e) != STORE_FOUND)
		abort();
	for (size_t i = 0; i < e.n_outputs; i++) {
		char hex[HASH_HEX_LEN + 1], *p;

		hash_to_hex(e.outputs[i].hash, hex);
		p = store_path(scratch, "blobs", hex);
		if (access(p, R_OK) != 0)
			abort();
		free(p);
	}
	store_entry_clear(&e);
	(void)store_entry_remove(scratch, res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	unsigned char inv[HASH_LEN], res[HASH_LEN];
	struct buf z;

	if (scratch == NULL) {
		const char *t = getenv("TMPDIR");
		char *dir = xasprintf("%s/kache-fuzz-pack.XXXXXX", t && *t ? t : "/tmp");

		if (mkdtemp(dir) == NULL || (scratch = store_open(dir)) == NULL)
			abort();
		free(dir);
	}
	if (n == 0)
		return 0;
	buf_init(&z);
	if (data[0] & 1) {
		memset(inv, 0, HASH_LEN);
		memset(res, 0, HASH_LEN);
		buf_add(&z, data + 1, n - 1);
	} else {
		keys_of((const char *)data + 1, n - 1, inv, res);
		compress((const char *)data + 1, n - 1, &z);
	}
	if (pack_import(scratch, z.p ? z.p : "", z.len, inv, res, 0) == PACK_OK)
		check_imported(res);
	buf_free(&z);
	return 0;
}
