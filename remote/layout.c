#include "remote/layout.h"

#include <fcntl.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "remote/session.h"
#include "remote/transport.h"
#include "store/codec.h"
#include "store/pack.h"

static int sbuf_write(void *data, const char *p, size_t n);
static void manifest_update(const char *old, size_t n, const char *inv, const char *crate,
    const char *res, struct buf *b);
static enum remote_result get_small(struct remote *r, const char *name, const char *tmpdir,
    struct buf *b);
static int format_ok(struct remote *r, const char *tmpdir, int create);
static int publish(struct remote *r, const char *tmpdir, const char *inv, const char *crate,
    const char *res);
static enum remote_result put_pack(struct remote *r, struct store *s, const char *tmpdir,
    int replace, const unsigned char inv[HASH_LEN], const char *res_hex, char **crate);
static enum remote_result read_manifest(struct remote *r, const char *tmpdir, const char *inv,
    struct layout_manifest *m);
static int present(struct store *s, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], const char *res_hex);
static int transfer(struct remote *r, struct store *s, const char *tmpdir,
    const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN], const char *name);
static int import_one(struct remote *r, struct store *s, const char *tmpdir,
    const unsigned char inv[HASH_LEN], const struct layout_result *lr, int64_t deadline_ms);

static int
sbuf_write(void *data, const char *p, size_t n)
{
	buf_add(data, p, n);
	return 0;
}

char *
layout_pack_name(const char *crate, const char *res_hex)
{
	return xasprintf("packs/%s/%s.pack", crate, res_hex);
}

char *
layout_manifest_name(const char *inv_hex)
{
	return xasprintf("manifests/%s", inv_hex);
}

int
layout_manifest_decode(const char *data, size_t n, struct layout_manifest *m)
{
	msgpack_zone zone;
	msgpack_object root;
	const msgpack_object *rs;
	uint64_t v;
	int rc = -1;

	m->n = 0;
	msgpack_zone_init(&zone, 1024);
	if (codec_unpack(data, n, &zone, &root) < 0 || codec_get_u64(&root, "v", &v) < 0 ||
	    v != 1 || (rs = codec_map_get(&root, "results")) == NULL ||
	    rs->type != MSGPACK_OBJECT_ARRAY)
		goto out;
	for (uint32_t i = 0; i < rs->via.array.size && m->n < LAYOUT_MAX_RESULTS; i++) {
		const msgpack_object *pair = &rs->via.array.ptr[i];
		char *crate, *res;
		int ok;

		if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2)
			goto out;
		crate = codec_obj_str(&pair->via.array.ptr[0]);
		res = codec_obj_str(&pair->via.array.ptr[1]);
		ok = crate && res && pack_crate_name_ok(crate) && hash_hex_valid(res);
		if (ok) {
			snprintf(m->r[m->n].crate, sizeof m->r[m->n].crate, "%s", crate);
			snprintf(m->r[m->n].res, sizeof m->r[m->n].res, "%s", res);
			m->n++;
		}
		free(crate);
		free(res);
		if (!ok)
			goto out;
	}
	rc = 0;
out:
	msgpack_zone_destroy(&zone);
	return rc;
}

void
layout_manifest_encode(const struct layout_manifest *m, struct buf *out)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, sbuf_write);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_u64(&pk, "v", 1);
	codec_pack_str(&pk, "results");
	msgpack_pack_array(&pk, m->n);
	for (size_t i = 0; i < m->n; i++) {
		msgpack_pack_array(&pk, 2);
		codec_pack_str(&pk, m->r[i].crate);
		codec_pack_str(&pk, m->r[i].res);
	}
}

void
layout_manifest_add(struct layout_manifest *m, const char *crate, const char *res_hex)
{
	struct layout_manifest old = *m;

	m->n = 0;
	snprintf(m->r[0].crate, sizeof m->r[0].crate, "%s", crate);
	snprintf(m->r[0].res, sizeof m->r[0].res, "%s", res_hex);
	m->n = 1;
	for (size_t i = 0; i < old.n && m->n < LAYOUT_MAX_RESULTS; i++)
		if (strcmp(old.r[i].res, res_hex) != 0)
			m->r[m->n++] = old.r[i];
}

/* The manifest to publish: the current one (old, n bytes; NULL when there is
 * none) with (crate, res) put first, encoded into b (replacing its content).
 * A damaged current manifest is replaced, and said so. */
static void
manifest_update(const char *old, size_t n, const char *inv, const char *crate, const char *res,
    struct buf *b)
{
	struct layout_manifest m = { .n = 0 };

	if (old != NULL && layout_manifest_decode(old, n, &m) < 0) {
		log_warnx("remote: manifest %s is damaged; replacing it", inv);
		m.n = 0;
	}
	layout_manifest_add(&m, crate, res);
	buf_reset(b);
	layout_manifest_encode(&m, b);
}

/* A small object (at most PACK_MAX_BYTES) whole into b. */
static enum remote_result
get_small(struct remote *r, const char *name, const char *tmpdir, struct buf *b)
{
	enum remote_result rr;
	int fd;

	if ((rr = r->t->open(r, name, tmpdir, &fd, NULL)) != REMOTE_OK)
		return rr;
	if (fs_read_fd(fd, b, PACK_MAX_BYTES) < 0) {
		log_warn("remote: read %s", name);
		rr = REMOTE_FAILED;
	}
	close(fd);
	return rr;
}

/* The format marker: written by the first upload, checked by every upload and
 * by fetches until it has been seen. 0 when it is ours, or absent while
 * fetching (nothing uploaded yet: fetches miss). -1 when it cannot be read or
 * written, or names another format: then the remote is off, said once. */
static int
format_ok(struct remote *r, const char *tmpdir, int create)
{
	size_t n = strlen(LAYOUT_FORMAT_TEXT);
	enum remote_result rr;
	struct buf b;

	if (r->format_seen && !create)
		return 0;
	buf_init(&b);
	rr = get_small(r, LAYOUT_FORMAT_NAME, tmpdir, &b);
	if (rr == REMOTE_MISS && create)
		rr = r->t->put(r, LAYOUT_FORMAT_NAME, LAYOUT_FORMAT_TEXT, n);
	else if (rr == REMOTE_MISS) {
		buf_free(&b);
		return 0;
	} else if (rr == REMOTE_OK && (b.len != n || memcmp(b.p, LAYOUT_FORMAT_TEXT, n) != 0)) {
		log_warnx("remote %s holds another format (%.*s); not using it", r->path,
		    (int)strcspn(b.p ? b.p : "", "\n"), b.p ? b.p : "");
		r->off = 1;
		rr = REMOTE_FAILED;
	}
	buf_free(&b);
	r->format_seen = rr == REMOTE_OK;
	return rr == REMOTE_OK ? 0 : -1;
}

int
layout_format_check(struct remote *r, const char *tmpdir, int create)
{
	return format_ok(r, tmpdir, create);
}

/* Read-modify-write of the manifest of inv with (crate, res) first. */
static int
publish(struct remote *r, const char *tmpdir, const char *inv, const char *crate, const char *res)
{
	char *name = layout_manifest_name(inv);
	enum remote_result rr;
	struct buf b;

	buf_init(&b);
	rr = get_small(r, name, tmpdir, &b);
	if (rr != REMOTE_FAILED) {
		manifest_update(rr == REMOTE_OK ? (b.p ? b.p : "") : NULL, b.len, inv, crate, res,
		    &b);
		rr = r->t->put(r, name, b.p, b.len);
	}
	buf_free(&b);
	free(name);
	return rr == REMOTE_OK ? 0 : -1;
}

/* Builds the pack of res_hex in a temporary (streamed: blobs -> zstd -> file)
 * and puts it unless the remote has it (or over it: replace). REMOTE_MISS
 * when the local store no longer holds the result. The crate name comes back
 * in *crate. */
static enum remote_result
put_pack(struct remote *r, struct store *s, const char *tmpdir, int replace,
    const unsigned char inv[HASH_LEN], const char *res_hex, char **crate)
{
	char *tmp = xasprintf("%s/.pack.%ld.%lx", r->stagedir ? r->stagedir : tmpdir,
	         (long)getpid(), (unsigned long)random()),
	     *name;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	enum remote_result rr = REMOTE_FAILED;
	unsigned char res[HASH_LEN];
	enum pack_result pr;

	if (fd < 0) {
		log_warn("remote: create %s", tmp);
		free(tmp);
		return REMOTE_FAILED;
	}
	hash_from_hex(res_hex, res);
	pr = pack_write(s, inv, res, fd, crate);
	if (close(fd) < 0 && pr == PACK_OK)
		pr = PACK_IOERR;
	if (pr == PACK_ABSENT) {
		rr = REMOTE_MISS;
	} else if (pr == PACK_OK && pack_crate_name_ok(*crate)) {
		name = layout_pack_name(*crate, res_hex);
		rr = r->t->put_file(r, tmp, name, replace);
		free(name);
	}
	unlink(tmp);
	free(tmp);
	return rr;
}

enum remote_result
layout_put(struct remote *r, const char *kache_dir, const char *res_hex)
{
	char inv_hex[HASH_HEX_LEN + 1], *crate = NULL, *tmpdir;
	unsigned char inv[HASH_LEN];
	enum remote_result rr = REMOTE_FAILED;
	struct store *s;
	int replace = 0;

	if (r->read_only) {
		log_info("remote: read-only: %s not uploaded", res_hex);
		return REMOTE_OK; /* the intent has nothing to do on a read-only runner */
	}
	if (r->off)
		return REMOTE_OFF;
	if (store_intent_read(kache_dir, res_hex, inv_hex, &replace) < 0 ||
	    hash_from_hex(inv_hex, inv) < 0) {
		log_warnx("remote: upload intent %s is missing or damaged", res_hex);
		return REMOTE_FAILED;
	}
	if ((s = store_open(kache_dir)) == NULL)
		return REMOTE_FAILED;
	tmpdir = path_join(kache_dir, "tmp");
	if (format_ok(r, tmpdir, 1) == 0)
		rr = put_pack(r, s, tmpdir, replace, inv, res_hex, &crate);
	if (rr == REMOTE_MISS) {
		log_info("remote: %s is no longer in the local store; nothing to upload", res_hex);
		rr = REMOTE_OK; /* gc took it: the intent has nothing left to do */
	} else if (rr == REMOTE_OK && publish(r, tmpdir, inv_hex, crate, res_hex) < 0) {
		rr = REMOTE_FAILED;
	} else if (rr == REMOTE_OK && replace) {
		log_info("remote: the pack of %s %s replaced (recache)", crate, res_hex);
		if (r->bundles) /* a part of the old pack must not be kept for it */
			remote_session_replaced(kache_dir, res_hex);
	}
	free(crate);
	free(tmpdir);
	store_free(&s);
	return rr != REMOTE_OK && r->off ? REMOTE_OFF : rr;
}

/* The manifest of inv into m. REMOTE_MISS when there is none or it is damaged. */
static enum remote_result
read_manifest(struct remote *r, const char *tmpdir, const char *inv, struct layout_manifest *m)
{
	char *name = layout_manifest_name(inv);
	enum remote_result rr;
	struct buf b;

	buf_init(&b);
	rr = get_small(r, name, tmpdir, &b);
	if (rr == REMOTE_OK && layout_manifest_decode(b.p ? b.p : "", b.len, m) < 0) {
		log_warnx("remote: manifest %s is damaged", inv);
		rr = REMOTE_MISS;
	}
	buf_free(&b);
	free(name);
	return rr;
}

/* 1 when the store has the result res and, for a fetch (inv not NULL), its
 * candidate under inv: what an import would make, so nothing is to be done. */
static int
present(struct store *s, const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN],
    const char *res_hex)
{
	struct store_manifest m = { 0 };
	int found = store_has_entry(s, res_hex);

	if (!found || inv == NULL)
		return found;
	found = 0;
	if (store_manifest_read(s, inv, &m) == STORE_FOUND)
		for (size_t i = 0; i < m.n && !found; i++)
			found = memcmp(m.c[i].result, res, HASH_LEN) == 0;
	store_manifest_clear(&m);
	return found;
}

/* Downloads and imports the pack name: read into a kept buffer (no file),
 * opened instead when it is larger or no buffer can be had. 1 imported, 0
 * absent or rejected, -1 the remote failed. */
static int
transfer(struct remote *r, struct store *s, const char *tmpdir, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], const char *name)
{
	char *buf = r->t->read != NULL ? pack_buffer_take() : NULL;
	enum remote_result rr = REMOTE_OK;
	enum pack_result pr = PACK_ABSENT;
	size_t n = PACK_MEM_MAX + 1;
	int fd, vouched = 0;

	if (buf != NULL) {
		rr = r->t->read(r, name, buf, PACK_MEM_MAX, &n, &vouched);
		if (rr == REMOTE_OK && n <= PACK_MEM_MAX)
			pr = pack_import(s, buf, n, inv, res, vouched ? PACK_BLOBS_VOUCHED : 0);
		pack_buffer_give(buf);
	}
	if (rr == REMOTE_OK && n > PACK_MEM_MAX) {
		rr = r->t->open(r, name, tmpdir, &fd, &vouched);
		if (rr == REMOTE_OK) {
			pr = pack_read(s, fd, inv, res, vouched ? PACK_BLOBS_VOUCHED : 0);
			close(fd);
		}
	}
	if (rr != REMOTE_OK)
		return rr == REMOTE_FAILED ? -1 : 0;
	if (pr == PACK_OK)
		return 1;
	log_warnx("remote: pack %s rejected (%s)", name, pack_result_name(pr));
	return 0;
}

/* Imports one pack the manifest names (inv NULL: a prefetch, the pack's own
 * invocation key), under the result's import lock: an import of it already
 * in flight elsewhere is waited for (until deadline_ms), not repeated, and a
 * result present costs no transfer. 1 imported or present, 0 not (absent,
 * rejected, or still being imported elsewhere at the deadline), -1 the
 * remote failed. */
static int
import_one(struct remote *r, struct store *s, const char *tmpdir, const unsigned char inv[HASH_LEN],
    const struct layout_result *lr, int64_t deadline_ms)
{
	char *name = layout_pack_name(lr->crate, lr->res);
	unsigned char res[HASH_LEN];
	int lock = -1, out;

	hash_from_hex(lr->res, res);
	if (layout_lock_take(store_dir(s), lr->res, deadline_ms, &lock) == 1)
		out = 0;
	else if (present(s, inv, res, lr->res))
		out = 1;
	else
		out = transfer(r, s, tmpdir, inv, res, name);
	layout_lock_release(lock);
	free(name);
	return out;
}

enum remote_result
layout_import_pack(struct remote *r, const char *kache_dir, const char *crate, const char *res_hex)
{
	struct layout_result lr;
	struct store *s;
	char *tmpdir;
	int one = -1;

	if (r->off || !pack_crate_name_ok(crate) || !hash_hex_valid(res_hex))
		return REMOTE_MISS;
	if ((s = store_open(kache_dir)) == NULL)
		return REMOTE_FAILED;
	store_set_import_source(s, r->import_source);
	snprintf(lr.crate, sizeof lr.crate, "%s", crate);
	snprintf(lr.res, sizeof lr.res, "%s", res_hex);
	tmpdir = path_join(kache_dir, "tmp");
	if (format_ok(r, tmpdir, 0) == 0)
		one = import_one(r, s, tmpdir, NULL, &lr, clock_ms() + LAYOUT_LOCK_WAIT_MS);
	free(tmpdir);
	store_free(&s);
	return one > 0 ? REMOTE_OK : one == 0 ? REMOTE_MISS : REMOTE_FAILED;
}

enum remote_result
layout_fetch(struct remote *r, const char *kache_dir, const char *inv_hex, int64_t deadline_ms)
{
	unsigned char inv[HASH_LEN];
	struct layout_manifest m;
	enum remote_result rr;
	int imported = 0, failed = 0;
	struct store *s;
	char *tmpdir;

	if (r->off || hash_from_hex(inv_hex, inv) < 0)
		return REMOTE_MISS;
	if (deadline_ms <= 0)
		deadline_ms = clock_ms() + LAYOUT_LOCK_WAIT_MS;
	if ((s = store_open(kache_dir)) == NULL)
		return REMOTE_FAILED;
	tmpdir = path_join(kache_dir, "tmp");
	rr = format_ok(r, tmpdir, 0) < 0 ? REMOTE_FAILED : read_manifest(r, tmpdir, inv_hex, &m);
	for (size_t i = 0; rr == REMOTE_OK && i < m.n && i < LAYOUT_FETCH_RESULTS; i++) {
		int one = import_one(r, s, tmpdir, inv, &m.r[i], deadline_ms);

		imported += one > 0;
		failed += one < 0;
	}
	free(tmpdir);
	store_free(&s);
	if (rr != REMOTE_OK)
		return rr;
	return imported > 0 ? REMOTE_OK : failed ? REMOTE_FAILED : REMOTE_MISS;
}
