/* The S3 remote. Packs are built to and downloaded into files in the store's
 * tmp/, and streamed between those files and the bucket.
 *
 * Failures: 404 is a miss. 403 (credentials, clock skew) and a missing bucket
 * disable the remote for this process with one clear log line: nothing more
 * is sent, fetches miss, uploads fail and their intents stay for a later run.
 * Transient errors are retried inside s3/ and then reported as failures; each
 * kind of failure is logged once per process, not once per crate. */
#include "remote/remote_s3.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "remote/layout.h"
#include "s3/s3.h"
#include "store/pack.h"

struct s3_remote {
	struct s3_client *c;
	int read_only;
	int disabled;
	unsigned logged; /* bit per enum s3_result already logged */
	char *tmpdir;
};

static enum remote_result s3r_put(struct remote *r, const char *kache_dir, const char *res);
static enum remote_result s3r_fetch(struct remote *r, const char *kache_dir, const char *inv);
static void s3r_close(struct remote *r);
static int failed(struct s3_remote *x, enum s3_result rc, const char *what);
static enum s3_result get_small(struct s3_remote *x, const char *key, const char *tmpdir,
    struct buf *out);
static int ensure_format(struct s3_remote *x, const char *tmpdir, int create);
static int publish(struct s3_remote *x, const char *tmpdir, const char *inv, const char *crate,
    const char *res);
static enum remote_result upload_pack(struct s3_remote *x, struct store *s, const char *inv,
    const char *res);
static int fetch_one(struct s3_remote *x, struct store *s, const char *tmpdir,
    const unsigned char inv[HASH_LEN], const struct layout_result *lr);

static const struct remote_ops s3_ops = { "s3", s3r_put, s3r_fetch, s3r_close };

struct remote *
remote_s3_open(const struct config *cfg, char *err, size_t errlen)
{
	struct s3_settings st;
	struct buf e;
	struct s3_remote *x;
	struct remote *r;

	buf_init(&e);
	s3_settings_defaults(&st);
	if (config_get(cfg, "s3.bucket")[0] == '\0') {
		snprintf(err, errlen, "remote.type = s3 needs s3.bucket (KACHE_S3_BUCKET)");
		return NULL;
	}
	if (s3_config_from(cfg, &st, &e) < 0) {
		snprintf(err, errlen, "s3: %s", e.p ? e.p : "bad settings");
		buf_free(&e);
		return NULL;
	}
	x = xcalloc(1, sizeof *x);
	x->read_only = st.read_only;
	x->c = s3_client_new(&st, &e);
	s3_settings_clear(&st);
	if (x->c == NULL) {
		snprintf(err, errlen, "s3: %s", e.p ? e.p : "cannot create the client");
		buf_free(&e);
		free(x);
		return NULL;
	}
	buf_free(&e);
	r = xcalloc(1, sizeof *r);
	r->ops = &s3_ops;
	r->priv = x;
	r->path = xstrdup(config_get(cfg, "s3.bucket"));
	return r;
}

static void
s3r_close(struct remote *r)
{
	struct s3_remote *x = r->priv;

	s3_client_free(&x->c);
	free(x);
	r->priv = NULL;
}

/* Logs a failure once per kind; disables the remote on 403 and a missing
 * bucket. Returns -1 for the caller to pass on. */
static int
failed(struct s3_remote *x, enum s3_result rc, const char *what)
{
	if (!(x->logged & (1u << rc))) {
		x->logged |= 1u << rc;
		log_warnx("s3: %s: %s: %s%s", what, s3_result_name(rc), s3_client_last_error(x->c),
		    rc == S3_AUTH || rc == S3_NO_BUCKET ? " (the S3 remote is off until kache "
		    "restarts; builds go on with the local cache)" : "");
	}
	if (rc == S3_AUTH || rc == S3_NO_BUCKET)
		x->disabled = 1;
	return -1;
}

/* An object into memory, streamed through an unnamed temporary file in the
 * store's tmp/ (verified on import, so no fsync). */
static enum s3_result
get_small(struct s3_remote *x, const char *key, const char *tmpdir, struct buf *out)
{
	int fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	enum s3_result rc;
	uint64_t size = 0;

	if (fd < 0)
		return S3_LOCAL;
	rc = s3_get_to_fd(x->c, key, fd, &size);
	if (rc == S3_OK && (size > PACK_MAX_BYTES || lseek(fd, 0, SEEK_SET) != 0))
		rc = S3_LOCAL;
	if (rc == S3_OK) {
		buf_grow(out, (size_t)size);
		if (pread(fd, out->p + out->len, (size_t)size, 0) != (ssize_t)size)
			rc = S3_LOCAL;
		else
			out->len += (size_t)size, out->p[out->len] = '\0';
	}
	close(fd);
	return rc;
}

/* The format marker: written by the first upload, checked before fetching. */
static int
ensure_format(struct s3_remote *x, const char *tmpdir, int create)
{
	struct buf b;
	enum s3_result rc;
	int ok = 0;

	buf_init(&b);
	rc = get_small(x, LAYOUT_FORMAT_NAME, tmpdir, &b);
	if (rc == S3_NOT_FOUND && create)
		rc = s3_put_mem(x->c, LAYOUT_FORMAT_NAME, LAYOUT_FORMAT_TEXT,
		    strlen(LAYOUT_FORMAT_TEXT));
	else if (rc == S3_NOT_FOUND)
		rc = S3_OK; /* nothing uploaded yet: fetches will miss */
	else if (rc == S3_OK && (b.len != strlen(LAYOUT_FORMAT_TEXT) ||
	    memcmp(b.p, LAYOUT_FORMAT_TEXT, b.len) != 0)) {
		log_warnx("s3: the bucket prefix holds another format; not using it");
		x->disabled = 1;
		ok = -1;
	}
	if (rc != S3_OK)
		ok = failed(x, rc, "format marker");
	buf_free(&b);
	return ok;
}

static int
publish(struct s3_remote *x, const char *tmpdir, const char *inv, const char *crate,
    const char *res)
{
	char *name = layout_manifest_name(inv);
	struct buf b;
	enum s3_result rc;

	buf_init(&b);
	rc = get_small(x, name, tmpdir, &b);
	if (rc == S3_OK || rc == S3_NOT_FOUND) {
		layout_manifest_update(rc == S3_OK ? (b.p ? b.p : "") : NULL, b.len, inv, crate, res,
		    &b);
		rc = s3_put_mem(x->c, name, b.p, b.len);
	}
	buf_free(&b);
	free(name);
	return rc == S3_OK ? 0 : failed(x, rc, "manifest");
}

static enum remote_result
upload_pack(struct s3_remote *x, struct store *s, const char *inv, const char *res)
{
	unsigned char inv_bin[HASH_LEN], res_bin[HASH_LEN];
	char *tmpdir = xasprintf("%s/tmp", store_dir(s)), *tmp = NULL, *name = NULL, *crate = NULL;
	enum remote_result rr = REMOTE_FAILED;
	enum pack_result pr;
	enum s3_result rc;
	int fd;

	hash_from_hex(inv, inv_bin);
	hash_from_hex(res, res_bin);
	if (ensure_format(x, tmpdir, 1) < 0)
		goto out;
	tmp = xasprintf("%s/s3put.%ld.%lx", tmpdir, (long)getpid(), (unsigned long)random());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	/* streamed: blobs -> zstd -> file -> S3 (multipart above the threshold) */
	pr = pack_write(s, inv_bin, res_bin, fd, &crate);
	if (close(fd) < 0 && pr == PACK_OK)
		pr = PACK_IOERR;
	if (pr == PACK_ABSENT) {
		log_info("s3: %s is no longer in the local store; nothing to upload", res);
		rr = REMOTE_OK;
		goto out;
	}
	if (pr != PACK_OK || !pack_crate_name_ok(crate))
		goto out;
	name = layout_pack_name(crate, res);
	rc = s3_head(x->c, name, NULL);
	if (rc == S3_NOT_FOUND)
		rc = s3_put_file(x->c, name, tmp);
	if (rc != S3_OK) {
		failed(x, rc, "upload");
		goto out;
	}
	if (publish(x, tmpdir, inv, crate, res) == 0)
		rr = REMOTE_OK;
out:
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(name);
	free(crate);
	free(tmpdir);
	return rr;
}

static enum remote_result
s3r_put(struct remote *r, const char *kache_dir, const char *res)
{
	struct s3_remote *x = r->priv;
	char inv[HASH_HEX_LEN + 1];
	struct store *s;
	enum remote_result rr;

	if (x->read_only) {
		log_info("s3: read-only: %s not uploaded", res);
		return REMOTE_OK; /* the intent has nothing to do on a read-only runner */
	}
	if (x->disabled)
		return REMOTE_OFF;
	if (layout_intent_inv(kache_dir, res, inv) < 0) {
		log_warnx("s3: upload intent %s is missing or damaged", res);
		return REMOTE_FAILED;
	}
	if ((s = store_open(kache_dir)) == NULL)
		return REMOTE_FAILED;
	rr = upload_pack(x, s, inv, res);
	store_free(&s);
	return rr != REMOTE_OK && x->disabled ? REMOTE_OFF : rr;
}

/* Downloads one pack into an unnamed file and imports it from there.
 * 1 imported, 0 not, -1 failed. */
static int
fetch_one(struct s3_remote *x, struct store *s, const char *tmpdir,
    const unsigned char inv[HASH_LEN], const struct layout_result *lr)
{
	unsigned char res[HASH_LEN];
	char *name = layout_pack_name(lr->crate, lr->res);
	int fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), out = 0;
	enum s3_result rc = S3_LOCAL;
	enum pack_result pr;

	hash_from_hex(lr->res, res);
	if (fd >= 0)
		rc = s3_get_to_fd(x->c, name, fd, NULL);
	if (rc == S3_OK && lseek(fd, 0, SEEK_SET) == 0) {
		pr = pack_read(s, fd, inv, res);
		if (pr == PACK_OK)
			out = 1;
		else
			log_warnx("s3: pack %s rejected (%s)", name, pack_result_name(pr));
	} else if (rc != S3_NOT_FOUND) {
		out = failed(x, rc, "fetch");
	}
	if (fd >= 0)
		close(fd);
	free(name);
	return out;
}

static enum remote_result
s3r_fetch(struct remote *r, const char *kache_dir, const char *inv)
{
	struct s3_remote *x = r->priv;
	unsigned char inv_bin[HASH_LEN];
	struct layout_manifest m;
	struct store *s;
	struct buf b;
	char *tmpdir, *name;
	enum s3_result rc;
	int imported = 0, errors = 0;

	if (x->disabled || hash_from_hex(inv, inv_bin) < 0)
		return REMOTE_MISS;
	if ((s = store_open(kache_dir)) == NULL)
		return REMOTE_FAILED;
	tmpdir = xasprintf("%s/tmp", kache_dir);
	buf_init(&b);
	name = layout_manifest_name(inv);
	rc = get_small(x, name, tmpdir, &b);
	free(name);
	if (rc == S3_OK && layout_manifest_decode(b.p, b.len, &m) == 0) {
		for (size_t i = 0; i < m.n && i < LAYOUT_FETCH_RESULTS; i++) {
			int one = fetch_one(x, s, tmpdir, inv_bin, &m.r[i]);

			imported += one > 0;
			errors += one < 0;
		}
	} else if (rc == S3_OK) {
		log_warnx("s3: manifest %s is damaged", inv);
	} else if (rc != S3_NOT_FOUND) {
		errors = -failed(x, rc, "fetch");
	}
	buf_free(&b);
	free(tmpdir);
	store_free(&s);
	if (imported > 0)
		return REMOTE_OK;
	return errors ? REMOTE_FAILED : REMOTE_MISS;
}
