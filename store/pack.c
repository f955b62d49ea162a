#include "store/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/fs.h"
#include "common/log.h"
#include "store/codec.h"

static int sbuf_write(void *data, const char *p, size_t n);
static void pack_sum(const struct buf *cand, const struct buf *ent, unsigned char out[HASH_LEN]);
static size_t compress(char *dst, size_t cap, const struct buf *src);
static int find_candidate(struct store *s, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], struct buf *out);
static int add_blob(struct store *s, msgpack_packer *pk, const unsigned char h[HASH_LEN]);
static int import_blob(struct store *s, const msgpack_object *pair, const struct store_entry *e);
static int entry_blobs_present(struct store *s, const struct store_entry *e);
static enum pack_result import_doc(struct store *s, const msgpack_object *root,
    const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN]);

static int
sbuf_write(void *data, const char *p, size_t n)
{
	buf_add(data, p, n);
	return 0;
}

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

static int
add_blob(struct store *s, msgpack_packer *pk, const unsigned char h[HASH_LEN])
{
	char hex[HASH_HEX_LEN + 1];
	char *p;
	struct buf b;
	int rc;

	hash_to_hex(h, hex);
	p = store_path(s, "blobs", hex);
	buf_init(&b);
	rc = fs_read_file(p, &b, PACK_MAX_BYTES);
	if (rc == 0) {
		unsigned char check[HASH_LEN];

		hash_buffer(b.p, b.len, check);
		if (memcmp(check, h, HASH_LEN) != 0) {
			log_warnx("pack: local blob %s is damaged; not uploaded", hex);
			rc = -1;
		}
	}
	if (rc == 0) {
		msgpack_pack_array(pk, 2);
		codec_pack_bin(pk, h, HASH_LEN);
		codec_pack_bin(pk, b.p ? b.p : "", b.len);
	}
	buf_free(&b);
	free(p);
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

/* zstd level 3 with the frame checksum on, so decompression itself notices
 * most damage before we parse anything. */
static size_t
compress(char *dst, size_t cap, const struct buf *src)
{
	ZSTD_CCtx *z = ZSTD_createCCtx();
	size_t n;

	if (z == NULL)
		return (size_t)-1;
	ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1);
	n = ZSTD_compress2(z, dst, cap, src->p, src->len);
	ZSTD_freeCCtx(z);
	return n;
}

enum pack_result
pack_build(struct store *s, const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN],
    struct buf *out, char **crate)
{
	struct store_entry e;
	struct buf doc, cand, ent;
	msgpack_packer pk;
	enum pack_result r = PACK_ABSENT;
	unsigned char sum[HASH_LEN];
	size_t bound;

	*crate = NULL;
	buf_init(&doc);
	buf_init(&cand);
	buf_init(&ent);
	if (store_entry_read(s, res, &e) != STORE_FOUND)
		goto out;
	if (find_candidate(s, inv, res, &cand) < 0 || store_entry_encode(&e, &ent) < 0)
		goto out;
	msgpack_packer_init(&pk, &doc, sbuf_write);
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
	bound = ZSTD_compressBound(doc.len);
	buf_grow(out, bound);
	bound = compress(out->p + out->len, bound, &doc);
	if (ZSTD_isError(bound)) {
		r = PACK_IOERR;
		goto out;
	}
	out->len += bound;
	*crate = xstrdup(e.crate);
	r = PACK_OK;
out:
	store_entry_clear(&e);
	buf_free(&doc);
	buf_free(&cand);
	buf_free(&ent);
	return r;
}

/* Verifies one [hash, bytes] pair and writes the blob (mode from the entry). */
static int
import_blob(struct store *s, const msgpack_object *pair, const struct store_entry *e)
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
	hash_buffer(bytes->via.bin.ptr, bytes->via.bin.size, check);
	if (memcmp(check, h, HASH_LEN) != 0)
		return -1;
	for (size_t i = 0; i < e->n_outputs; i++)
		if (memcmp(e->outputs[i].hash, h, HASH_LEN) == 0 && (e->outputs[i].mode & 0111))
			exec = 1;
	return store_blob_put_bytes(s, bytes->via.bin.ptr, bytes->via.bin.size, exec, h);
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

static enum pack_result
import_doc(struct store *s, const msgpack_object *root, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN])
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
	    memcmp(got_inv, inv, HASH_LEN) != 0 || memcmp(got_res, res, HASH_LEN) != 0 ||
	    codec_get_bin(root, "candidate", &cand) < 0 || codec_get_bin(root, "entry", &ent) < 0 ||
	    blobs == NULL || blobs->type != MSGPACK_OBJECT_ARRAY)
		goto out;
	pack_sum(&cand, &ent, want);
	if (codec_get_fixed(root, "sum", sum, HASH_LEN) < 0 || memcmp(sum, want, HASH_LEN) != 0)
		goto out;
	if (store_entry_decode(ent.p ? ent.p : "", ent.len, &e) < 0 ||
	    store_manifest_decode(cand.p ? cand.p : "", cand.len, &m) < 0 || m.n != 1 ||
	    memcmp(m.c[0].result, res, HASH_LEN) != 0)
		goto out;
	for (uint32_t i = 0; i < blobs->via.array.size; i++)
		if (import_blob(s, &blobs->via.array.ptr[i], &e) < 0)
			goto out;
	if (!entry_blobs_present(s, &e))
		goto out;
	r = store_entry_write(s, res, &e) == 0 && store_manifest_add(s, inv, &m.c[0]) == 0 ?
	    PACK_OK : PACK_IOERR;
out:
	store_manifest_clear(&m);
	store_entry_clear(&e);
	buf_free(&cand);
	buf_free(&ent);
	return r;
}

enum pack_result
pack_import(struct store *s, const char *data, size_t n, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN])
{
	unsigned long long size = ZSTD_getFrameContentSize(data, n);
	msgpack_zone zone;
	msgpack_object root;
	enum pack_result r = PACK_CORRUPT;
	char *doc;
	size_t got;

	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
	    size > PACK_MAX_BYTES)
		return PACK_CORRUPT;
	doc = malloc(size ? size : 1);
	if (doc == NULL)
		return PACK_IOERR;
	got = ZSTD_decompress(doc, size, data, n);
	if (!ZSTD_isError(got) && got == size) {
		msgpack_zone_init(&zone, 4096);
		if (codec_unpack(doc, got, &zone, &root) == 0)
			r = import_doc(s, &root, inv, res);
		msgpack_zone_destroy(&zone);
	}
	free(doc);
	return r;
}
