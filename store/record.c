/* Entries and manifests: msgpack maps with a format version, decoded defensively
 * (they may come from a remote or a damaged disk).
 *
 * On disk each record is framed and checksummed (record format 3):
 *   tag (8 bytes: "kcentry3", "kcmanif3"; "kcmemor2" for memo records, whose
 *   payload is store/memo.c's) | sum (16) | payload (the msgpack map)
 * with sum = checksum (XXH3-128) of tag | key | payload, key being the 32-byte
 * name of the file. A flipped or missing byte, a record of the other kind, or a
 * whole record moved under another name is STORE_CORRUPT, never decoded. Format
 * 2 ("kcentry2", "kcmanif2", "kcmemor1": a BLAKE2b-256 sum of 32 bytes, four
 * times slower to check on every hit) is still read, so a store kept across an
 * upgrade keeps its hits; it is rewritten in format 3 when next written. A file
 * without a frame (written by a kache before the checksum) is STORE_CORRUPT
 * too: it cannot be trusted, so it is removed and compiled again, once. Packs
 * carry the payload alone, under their own sum. */
#include <errno.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "store/codec.h"
#include "store/store.h"

#define RECORD_MAX (256u << 20)
#define RECORD_TAG_LEN 8
#define RECORD_HEAD_LEN (RECORD_TAG_LEN + CHECKSUM_LEN)
#define RECORD2_HEAD_LEN (RECORD_TAG_LEN + HASH_LEN)

/* One kind's tags: format 3 (written) and format 2 (still read). */
struct record_kind {
	const char *tag;
	const char *tag2;
};

static const struct record_kind entry_kind = { "kcentry3", "kcentry2" };
static const struct record_kind manifest_kind = { "kcmanif3", "kcmanif2" };
static const struct record_kind memo_kind = { "kcmemor2", "kcmemor1" };

static void pack_output(msgpack_packer *pk, const struct store_output *o);
static int unpack_output(const msgpack_object *o, struct store_output *out);
static void pack_candidate(msgpack_packer *pk, const struct store_candidate *c);
static int unpack_candidate(const msgpack_object *o, struct store_candidate *c);
static int sbuf_write(void *data, const char *p, size_t n);
static void record_sum(const char *tag, const unsigned char key[HASH_LEN], const char *p, size_t n,
    unsigned char out[CHECKSUM_LEN]);
static int record2_valid(const char *tag, const unsigned char key[HASH_LEN], const char *data,
    size_t n);
static enum store_get read_record(struct store *s, const char *kind,
    const unsigned char key[HASH_LEN], int (*decode)(const char *, size_t, void *), void *out);
static int decode_entry(const char *d, size_t n, void *out);
static int decode_manifest(const char *d, size_t n, void *out);
static int decode_memo(const char *d, size_t n, void *out);
static int write_record(struct store *s, const char *kind, const unsigned char key[HASH_LEN],
    const struct buf *payload);
static const struct record_kind *kind_of(const char *kind);
static int remove_record(struct store *s, const char *kind, const unsigned char key[HASH_LEN]);

static int
sbuf_write(void *data, const char *p, size_t n)
{
	buf_add(data, p, n);
	return 0;
}

void
store_entry_init(struct store_entry *e)
{
	memset(e, 0, sizeof *e);
}

void
store_entry_clear(struct store_entry *e)
{
	for (size_t i = 0; i < e->n_outputs; i++)
		free(e->outputs[i].name);
	free(e->outputs);
	free(e->crate);
	free(e->depinfo_name);
	buf_free(&e->depinfo);
	buf_free(&e->out);
	buf_free(&e->err);
	store_entry_init(e);
}

static void
pack_output(msgpack_packer *pk, const struct store_output *o)
{
	msgpack_pack_map(pk, 4);
	codec_pack_kv_str(pk, "name", o->name);
	codec_pack_kv_bin(pk, "hash", o->hash, HASH_LEN);
	codec_pack_kv_u64(pk, "size", o->size);
	codec_pack_kv_u64(pk, "mode", o->mode);
}

int
store_entry_encode(const struct store_entry *e, struct buf *out)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, sbuf_write);
	msgpack_pack_map(&pk, e->status != 0 ? 10 : 9);
	codec_pack_kv_u64(&pk, "v", e->status != 0 ? STORE_ENTRY_FAILED_FORMAT : STORE_FORMAT);
	if (e->status != 0)
		codec_pack_kv_u64(&pk, "status", (uint64_t)e->status);
	codec_pack_kv_str(&pk, "crate", e->crate ? e->crate : "");
	codec_pack_str(&pk, "outputs");
	msgpack_pack_array(&pk, e->n_outputs);
	for (size_t i = 0; i < e->n_outputs; i++)
		pack_output(&pk, &e->outputs[i]);
	codec_pack_kv_str(&pk, "depinfo_name", e->depinfo_name);
	codec_pack_kv_bin(&pk, "depinfo", e->depinfo.p, e->depinfo.len);
	codec_pack_kv_bin(&pk, "stdout", e->out.p, e->out.len);
	codec_pack_kv_bin(&pk, "stderr", e->err.p, e->err.len);
	codec_pack_kv_u64(&pk, "compile_ms", e->compile_ms);
	codec_pack_kv_u64(&pk, "created_ms", (uint64_t)e->created_ms);
	return 0;
}

static int
unpack_output(const msgpack_object *o, struct store_output *out)
{
	uint64_t mode;

	if (codec_get_str(o, "name", &out->name) < 0)
		return -1;
	if (!path_is_safe_relative(out->name) ||
	    codec_get_fixed(o, "hash", out->hash, HASH_LEN) < 0 ||
	    codec_get_u64(o, "size", &out->size) < 0 || codec_get_u64(o, "mode", &mode) < 0 ||
	    (mode != 0644 && mode != 0755))
		return -1;
	out->mode = (uint32_t)mode;
	return 0;
}

int
store_entry_decode(const char *data, size_t n, struct store_entry *e)
{
	msgpack_zone zone;
	msgpack_object root;
	const msgpack_object *outs, *dn;
	uint64_t v, created, status = 0;
	int rc = -1;

	store_entry_init(e);
	msgpack_zone_init(&zone, 4096);
	if (codec_unpack(data, n, &zone, &root) < 0)
		goto out;
	if (codec_get_u64(&root, "v", &v) < 0 ||
	    (v != STORE_FORMAT && v != STORE_ENTRY_FAILED_FORMAT))
		goto out;
	/* a failed compile's entry: its status 1..255, and no outputs */
	if (v == STORE_ENTRY_FAILED_FORMAT &&
	    (codec_get_u64(&root, "status", &status) < 0 || status == 0 || status > 255))
		goto out;
	e->status = (int)status;
	outs = codec_map_get(&root, "outputs");
	if (codec_get_str(&root, "crate", &e->crate) < 0 || outs == NULL ||
	    outs->type != MSGPACK_OBJECT_ARRAY)
		goto out;
	if (e->status != 0 && outs->via.array.size != 0)
		goto out;
	e->outputs = xcalloc(outs->via.array.size, sizeof *e->outputs);
	for (uint32_t i = 0; i < outs->via.array.size; i++, e->n_outputs++)
		if (unpack_output(&outs->via.array.ptr[i], &e->outputs[i]) < 0) {
			e->n_outputs++;
			goto out;
		}
	dn = codec_map_get(&root, "depinfo_name");
	if (dn != NULL && dn->type != MSGPACK_OBJECT_NIL) {
		e->depinfo_name = codec_obj_str(dn);
		if (e->depinfo_name == NULL || !path_is_safe_relative(e->depinfo_name))
			goto out;
	}
	if (codec_get_bin(&root, "depinfo", &e->depinfo) < 0 ||
	    codec_get_bin(&root, "stdout", &e->out) < 0 ||
	    codec_get_bin(&root, "stderr", &e->err) < 0 ||
	    codec_get_u64(&root, "compile_ms", &e->compile_ms) < 0 ||
	    codec_get_u64(&root, "created_ms", &created) < 0)
		goto out;
	e->created_ms = (int64_t)created;
	rc = 0;
out:
	msgpack_zone_destroy(&zone);
	if (rc < 0)
		store_entry_clear(e);
	return rc;
}

void
store_candidate_clear(struct store_candidate *c)
{
	for (size_t i = 0; i < c->n_inputs; i++)
		free(c->inputs[i].path);
	for (size_t i = 0; i < c->n_envs; i++) {
		free(c->envs[i].name);
		free(c->envs[i].value);
	}
	free(c->inputs);
	free(c->envs);
	memset(c, 0, sizeof *c);
}

void
store_manifest_clear(struct store_manifest *m)
{
	for (size_t i = 0; i < m->n; i++)
		store_candidate_clear(&m->c[i]);
	free(m->c);
	m->c = NULL;
	m->n = 0;
}

static void
pack_candidate(msgpack_packer *pk, const struct store_candidate *c)
{
	msgpack_pack_map(pk, 3);
	codec_pack_kv_bin(pk, "result", c->result, HASH_LEN);
	codec_pack_str(pk, "inputs");
	msgpack_pack_array(pk, c->n_inputs);
	for (size_t i = 0; i < c->n_inputs; i++) {
		msgpack_pack_array(pk, 2);
		codec_pack_str(pk, c->inputs[i].path);
		codec_pack_bin(pk, c->inputs[i].hash, HASH_LEN);
	}
	codec_pack_str(pk, "env");
	msgpack_pack_array(pk, c->n_envs);
	for (size_t i = 0; i < c->n_envs; i++) {
		msgpack_pack_array(pk, 2);
		codec_pack_str(pk, c->envs[i].name);
		if (c->envs[i].value)
			codec_pack_str(pk, c->envs[i].value);
		else
			msgpack_pack_nil(pk);
	}
}

static int
unpack_candidate(const msgpack_object *o, struct store_candidate *c)
{
	const msgpack_object *in = codec_map_get(o, "inputs");
	const msgpack_object *env = codec_map_get(o, "env");

	if (codec_get_fixed(o, "result", c->result, HASH_LEN) < 0 || in == NULL ||
	    in->type != MSGPACK_OBJECT_ARRAY || env == NULL || env->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	c->inputs = xcalloc(in->via.array.size, sizeof *c->inputs);
	for (uint32_t i = 0; i < in->via.array.size; i++) {
		const msgpack_object *pair = &in->via.array.ptr[i];

		if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2)
			return -1;
		c->inputs[i].path = codec_obj_str(&pair->via.array.ptr[0]);
		c->n_inputs++;
		if (c->inputs[i].path == NULL ||
		    codec_obj_fixed(&pair->via.array.ptr[1], c->inputs[i].hash, HASH_LEN) < 0)
			return -1;
	}
	c->envs = xcalloc(env->via.array.size, sizeof *c->envs);
	for (uint32_t i = 0; i < env->via.array.size; i++) {
		const msgpack_object *pair = &env->via.array.ptr[i];

		if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2)
			return -1;
		c->envs[i].name = codec_obj_str(&pair->via.array.ptr[0]);
		c->n_envs++;
		if (c->envs[i].name == NULL)
			return -1;
		if (pair->via.array.ptr[1].type != MSGPACK_OBJECT_NIL &&
		    (c->envs[i].value = codec_obj_str(&pair->via.array.ptr[1])) == NULL)
			return -1;
	}
	return 0;
}

int
store_manifest_encode(const struct store_manifest *m, struct buf *out)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, sbuf_write);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_u64(&pk, "v", STORE_FORMAT);
	codec_pack_str(&pk, "candidates");
	msgpack_pack_array(&pk, m->n);
	for (size_t i = 0; i < m->n; i++)
		pack_candidate(&pk, &m->c[i]);
	return 0;
}

int
store_manifest_decode(const char *data, size_t n, struct store_manifest *m)
{
	msgpack_zone zone;
	msgpack_object root;
	const msgpack_object *cs;
	uint64_t v;
	int rc = -1;

	m->c = NULL;
	m->n = 0;
	msgpack_zone_init(&zone, 4096);
	if (codec_unpack(data, n, &zone, &root) < 0)
		goto out;
	cs = codec_map_get(&root, "candidates");
	if (codec_get_u64(&root, "v", &v) < 0 || v != STORE_FORMAT || cs == NULL ||
	    cs->type != MSGPACK_OBJECT_ARRAY)
		goto out;
	m->c = xcalloc(cs->via.array.size, sizeof *m->c);
	for (uint32_t i = 0; i < cs->via.array.size; i++) {
		m->n++;
		if (unpack_candidate(&cs->via.array.ptr[i], &m->c[i]) < 0)
			goto out;
	}
	rc = 0;
out:
	msgpack_zone_destroy(&zone);
	if (rc < 0)
		store_manifest_clear(m);
	return rc;
}

static const struct record_kind *
kind_of(const char *kind)
{
	if (strcmp(kind, "memo") == 0)
		return &memo_kind;
	return strcmp(kind, "entries") == 0 ? &entry_kind : &manifest_kind;
}

/* The checksum of a record: its kind's tag, the key it is stored under, and its
 * payload, so that damage, a swap of kinds and a rename are all caught. */
static void
record_sum(const char *tag, const unsigned char key[HASH_LEN], const char *p, size_t n,
    unsigned char out[CHECKSUM_LEN])
{
	const struct checksum_part parts[] = { { tag, RECORD_TAG_LEN }, { key, HASH_LEN },
		{ p, n } };

	checksum(parts, sizeof parts / sizeof parts[0], out);
}

/* 1 when data/n is a format 2 record under tag and key: BLAKE2b-256 over the
 * same three parts. */
static int
record2_valid(const char *tag, const unsigned char key[HASH_LEN], const char *data, size_t n)
{
	struct hash_ctx c;
	unsigned char sum[HASH_LEN];

	if (n < RECORD2_HEAD_LEN || memcmp(data, tag, RECORD_TAG_LEN) != 0)
		return 0;
	hash_begin(&c);
	hash_update(&c, tag, RECORD_TAG_LEN);
	hash_update(&c, key, HASH_LEN);
	hash_update(&c, data + RECORD2_HEAD_LEN, n - RECORD2_HEAD_LEN);
	hash_end(&c, sum);
	return memcmp(sum, data + RECORD_TAG_LEN, HASH_LEN) == 0;
}

/* The payload's offset in data/n when it is a whole record of kind under key
 * (format 3, or 2), -1 when not. */
int
store_record_check(const char *kind, const unsigned char key[HASH_LEN], const char *data, size_t n)
{
	const struct record_kind *k = kind_of(kind);
	unsigned char sum[CHECKSUM_LEN];

	if (n >= RECORD_HEAD_LEN && memcmp(data, k->tag, RECORD_TAG_LEN) == 0) {
		record_sum(k->tag, key, data + RECORD_HEAD_LEN, n - RECORD_HEAD_LEN, sum);
		return memcmp(sum, data + RECORD_TAG_LEN, CHECKSUM_LEN) == 0 ? RECORD_HEAD_LEN : -1;
	}
	return record2_valid(k->tag2, key, data, n) ? RECORD2_HEAD_LEN : -1;
}

/* Reads the record file kind/hex, checks its frame and checksum, then decodes
 * the payload with decode(). */
static enum store_get
read_record(struct store *s, const char *kind, const unsigned char key[HASH_LEN],
    int (*decode)(const char *, size_t, void *), void *out)
{
	char hex[HASH_HEX_LEN + 1];
	struct buf b;
	char *p;
	int off;
	enum store_get r = STORE_FOUND;

	hash_to_hex(key, hex);
	p = store_path(s, kind, hex);
	buf_init(&b);
	if (fs_read_file(p, &b, RECORD_MAX) < 0)
		r = errno == ENOENT                   ? STORE_ABSENT :
		    errno == ELOOP || errno == EINVAL ? STORE_CORRUPT :
		                                        STORE_IOERR;
	else if ((off = store_record_check(kind, key, b.p ? b.p : "", b.len)) < 0 ||
	    decode(b.p + off, b.len - (size_t)off, out) < 0)
		r = STORE_CORRUPT;
	buf_free(&b);
	free(p);
	return r;
}

static int
decode_entry(const char *d, size_t n, void *out)
{
	return store_entry_decode(d, n, out);
}

static int
decode_manifest(const char *d, size_t n, void *out)
{
	return store_manifest_decode(d, n, out);
}

static int
decode_memo(const char *d, size_t n, void *out)
{
	return store_memo_rec_decode(d, n, out);
}

enum store_get
store_memo_rec_read(struct store *s, const unsigned char key[HASH_LEN], struct store_memo_rec *r)
{
	memset(r, 0, sizeof *r);
	return read_record(s, "memo", key, decode_memo, r);
}

int
store_memo_rec_write(struct store *s, const unsigned char key[HASH_LEN],
    const struct store_memo_rec *r)
{
	struct buf b;
	int rc;

	buf_init(&b);
	store_memo_rec_encode(r, &b);
	rc = write_record(s, "memo", key, &b);
	buf_free(&b);
	return rc;
}

enum store_get
store_entry_read(struct store *s, const unsigned char key[HASH_LEN], struct store_entry *e)
{
	store_entry_init(e);
	return read_record(s, "entries", key, decode_entry, e);
}

enum store_get
store_manifest_read(struct store *s, const unsigned char key[HASH_LEN], struct store_manifest *m)
{
	m->c = NULL;
	m->n = 0;
	return read_record(s, "manifests", key, decode_manifest, m);
}

/* Writes payload under kind/hex, framed with its tag and checksum (temp +
 * rename), creating the fan-out dir. */
static int
write_record(struct store *s, const char *kind, const unsigned char key[HASH_LEN],
    const struct buf *payload)
{
	char hex[HASH_HEX_LEN + 1];
	unsigned char sum[CHECKSUM_LEN];
	const char *tag = kind_of(kind)->tag;
	struct buf b;
	char *p, *d;
	int rc;

	buf_init(&b);
	record_sum(tag, key, payload->p ? payload->p : "", payload->len, sum);
	buf_add(&b, tag, RECORD_TAG_LEN);
	buf_add(&b, sum, CHECKSUM_LEN);
	buf_add(&b, payload->p ? payload->p : "", payload->len);
	hash_to_hex(key, hex);
	p = store_path(s, kind, hex);
	rc = fs_write_atomic(p, b.p, b.len, store_mode(s, 0644));
	if (rc < 0 && errno == ENOENT) {
		d = path_dirname(p);
		if (mkdir(d, store_mode(s, 0755)) == 0 || errno == EEXIST)
			rc = fs_write_atomic(p, b.p, b.len, store_mode(s, 0644));
		free(d);
	}
	free(p);
	buf_free(&b);
	return rc;
}

int
store_entry_write(struct store *s, const unsigned char key[HASH_LEN], const struct store_entry *e)
{
	struct buf b;
	int rc;

	buf_init(&b);
	store_entry_encode(e, &b);
	rc = write_record(s, "entries", key, &b);
	buf_free(&b);
	return rc;
}

/* Unlinks kind/hex. */
static int
remove_record(struct store *s, const char *kind, const unsigned char key[HASH_LEN])
{
	char hex[HASH_HEX_LEN + 1];
	char *p;
	int rc;

	hash_to_hex(key, hex);
	p = store_path(s, kind, hex);
	rc = unlink(p);
	free(p);
	return rc;
}

int
store_entry_remove(struct store *s, const unsigned char key[HASH_LEN])
{
	return remove_record(s, "entries", key);
}

int
store_manifest_remove(struct store *s, const unsigned char key[HASH_LEN])
{
	return remove_record(s, "manifests", key);
}

int
store_manifest_add(struct store *s, const unsigned char key[HASH_LEN],
    const struct store_candidate *c)
{
	struct store_manifest old, m;
	struct buf b;
	int rc;

	if (store_manifest_read(s, key, &old) != STORE_FOUND)
		old.n = 0;
	m.c = xcalloc(old.n + 1, sizeof *m.c);
	m.c[0] = *c;
	m.n = 1;
	for (size_t i = 0; i < old.n && m.n < STORE_MAX_CANDIDATES; i++)
		if (memcmp(old.c[i].result, c->result, HASH_LEN) != 0)
			m.c[m.n++] = old.c[i];
	buf_init(&b);
	store_manifest_encode(&m, &b);
	rc = write_record(s, "manifests", key, &b);
	buf_free(&b);
	free(m.c);
	store_manifest_clear(&old);
	return rc;
}
