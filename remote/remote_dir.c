/* The directory remote: objects are files under the root, written to a
 * temporary name in the same directory and renamed. */
#include "remote/remote_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "remote/layout.h"
#include "store/pack.h"

static enum remote_result dir_put(struct remote *r, const char *kache_dir, const char *res);
static enum remote_result dir_fetch(struct remote *r, const char *kache_dir, const char *inv);
static int write_object(struct remote *r, const char *name, const void *data, size_t n);
static int read_object(struct remote *r, const char *name, struct buf *b);
static int format_ok(struct remote *r, int create);
static int publish_manifest(struct remote *r, const char *inv, const char *crate, const char *res);
static int write_pack(struct remote *r, struct store *s, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], const char *res_hex, char **crate);

static const struct remote_ops dir_ops = { "dir", dir_put, dir_fetch, NULL };

struct remote *
remote_dir_open(const struct config *cfg, char *err, size_t errlen)
{
	const char *path = config_get(cfg, "remote.path");
	struct remote *r;

	if (path[0] != '/') {
		snprintf(err, errlen, "remote.type = dir needs remote.path, an absolute directory "
		    "(KACHE_REMOTE_PATH)");
		return NULL;
	}
	if (fs_mkdir_p(path, 0755) < 0) {
		snprintf(err, errlen, "remote.path %s: %s", path, strerror(errno));
		return NULL;
	}
	r = xcalloc(1, sizeof *r);
	r->ops = &dir_ops;
	r->path = xstrdup(path);
	return r;
}

/* Writes root/name atomically, creating its directory. */
static int
write_object(struct remote *r, const char *name, const void *data, size_t n)
{
	char *p = path_join(r->path, name), *d = path_dirname(p);
	int rc = -1;

	if (fs_mkdir_p(d, 0755) == 0 && fs_write_atomic(p, data, n, 0644) == 0)
		rc = 0;
	else
		log_warn("remote: write %s", p);
	free(d);
	free(p);
	return rc;
}

/* 0; 1 when absent; -1 on error. */
static int
read_object(struct remote *r, const char *name, struct buf *b)
{
	char *p = path_join(r->path, name);
	int rc = 0;

	if (fs_read_file(p, b, PACK_MAX_BYTES) < 0) {
		rc = errno == ENOENT ? 1 : -1;
		if (rc < 0)
			log_warn("remote: read %s", p);
	}
	free(p);
	return rc;
}

/* The format marker: written by the first upload, checked by every fetch. */
static int
format_ok(struct remote *r, int create)
{
	struct buf b;
	int rc;

	buf_init(&b);
	rc = read_object(r, LAYOUT_FORMAT_NAME, &b);
	if (rc == 1 && create)
		rc = write_object(r, LAYOUT_FORMAT_NAME, LAYOUT_FORMAT_TEXT,
		    strlen(LAYOUT_FORMAT_TEXT));
	else if (rc == 1)
		rc = 0; /* an empty remote: every fetch is a miss */
	else if (rc == 0 && (b.len != strlen(LAYOUT_FORMAT_TEXT) ||
	    memcmp(b.p, LAYOUT_FORMAT_TEXT, b.len) != 0)) {
		log_warnx("remote %s holds another format (%.*s); not using it", r->path,
		    (int)strcspn(b.p ? b.p : "", "\n"), b.p ? b.p : "");
		rc = -1;
	}
	buf_free(&b);
	return rc;
}

static int
publish_manifest(struct remote *r, const char *inv, const char *crate, const char *res)
{
	char *name = layout_manifest_name(inv);
	struct buf b;
	int rc;

	buf_init(&b);
	rc = read_object(r, name, &b);
	if (rc >= 0) {
		layout_manifest_update(rc == 0 ? (b.p ? b.p : "") : NULL, b.len, inv, crate, res, &b);
		rc = write_object(r, name, b.p, b.len);
	}
	buf_free(&b);
	free(name);
	return rc;
}

/* Streams the pack of res into root/packs/<crate>/<res>.pack through a
 * temporary in the same directory. 0, or -1. */
static int
write_pack(struct remote *r, struct store *s, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], const char *res_hex, char **crate)
{
	char *tmp = xasprintf("%s/.pack.%ld.%lx", r->path, (long)getpid(), (unsigned long)random());
	char *name = NULL, *full = NULL, *dir = NULL;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), rc = -1;
	enum pack_result pr;
	struct stat st;

	if (fd < 0) {
		log_warn("remote: create %s", tmp);
		free(tmp);
		return -1;
	}
	pr = pack_write(s, inv, res, fd, crate);
	if (close(fd) == 0 && pr == PACK_OK && pack_crate_name_ok(*crate)) {
		name = layout_pack_name(*crate, res_hex);
		full = path_join(r->path, name);
		dir = path_dirname(full);
		if (stat(full, &st) == 0 || (fs_mkdir_p(dir, 0755) == 0 && rename(tmp, full) == 0))
			rc = 0;
		else
			log_warn("remote: write %s", full);
	} else if (pr == PACK_ABSENT) {
		rc = 1;
	}
	unlink(tmp);
	free(tmp);
	free(name);
	free(full);
	free(dir);
	return rc;
}

static enum remote_result
dir_put(struct remote *r, const char *kache_dir, const char *res)
{
	unsigned char inv_bin[HASH_LEN], res_bin[HASH_LEN];
	char inv[HASH_HEX_LEN + 1], *crate = NULL;
	struct store *s;
	enum remote_result rr = REMOTE_FAILED;
	int rc;

	if (layout_intent_inv(kache_dir, res, inv) < 0 || hash_from_hex(res, res_bin) < 0 ||
	    hash_from_hex(inv, inv_bin) < 0) {
		log_warnx("remote: upload intent %s is missing or damaged", res);
		return REMOTE_FAILED;
	}
	if ((s = store_open(kache_dir)) == NULL || format_ok(r, 1) < 0) {
		store_free(&s);
		return REMOTE_FAILED;
	}
	rc = write_pack(r, s, inv_bin, res_bin, res, &crate);
	if (rc == 1) {
		log_info("remote: %s is no longer in the local store; nothing to upload", res);
		rr = REMOTE_OK; /* gc took it: the intent has nothing left to do */
	} else if (rc == 0 && publish_manifest(r, inv, crate, res) == 0) {
		rr = REMOTE_OK;
	}
	free(crate);
	store_free(&s);
	return rr;
}

static enum remote_result
dir_fetch(struct remote *r, const char *kache_dir, const char *inv)
{
	unsigned char inv_bin[HASH_LEN], res_bin[HASH_LEN];
	struct layout_manifest m;
	struct store *s;
	struct buf b;
	char *name;
	int rc, imported = 0, failed = 0;

	if (hash_from_hex(inv, inv_bin) < 0 || format_ok(r, 0) < 0)
		return REMOTE_FAILED;
	buf_init(&b);
	name = layout_manifest_name(inv);
	rc = read_object(r, name, &b);
	free(name);
	if (rc != 0 || layout_manifest_decode(b.p, b.len, &m) < 0) {
		if (rc == 0)
			log_warnx("remote: manifest %s is damaged", inv);
		buf_free(&b);
		return rc < 0 ? REMOTE_FAILED : REMOTE_MISS;
	}
	if ((s = store_open(kache_dir)) == NULL) {
		buf_free(&b);
		return REMOTE_FAILED;
	}
	for (size_t i = 0; i < m.n && i < LAYOUT_FETCH_RESULTS; i++) {
		enum pack_result pr;
		char *full;
		int fd;

		name = layout_pack_name(m.r[i].crate, m.r[i].res);
		full = path_join(r->path, name);
		free(name);
		fd = fs_open_regular(full, O_RDONLY, 0);
		free(full);
		if (fd < 0 || hash_from_hex(m.r[i].res, res_bin) < 0) {
			failed += fd < 0 && errno != ENOENT;
			if (fd >= 0)
				close(fd);
			continue;
		}
		pr = pack_read(s, fd, inv_bin, res_bin);
		close(fd);
		if (pr == PACK_OK)
			imported++;
		else
			log_warnx("remote: pack %s/%s rejected (%s)", m.r[i].crate, m.r[i].res,
			    pack_result_name(pr));
	}
	store_free(&s);
	buf_free(&b);
	if (imported > 0)
		return REMOTE_OK;
	return failed ? REMOTE_FAILED : REMOTE_MISS;
}
