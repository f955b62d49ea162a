/* The signing layer: a transport (remote/transport.h) wrapped around the
 * backend's, installed by remote_open. Every object remote/ moves goes through
 * r->t, so every object type, present and future (packs, manifests, session
 * manifests), is signed on the way up and verified on the way down without its
 * code knowing. The format marker alone is left as it is (docs/remote-layout.md).
 *
 * Down: the object's trailer is parsed and, with trusted keys, the signature
 * checked over the bytes kache will read. An object read into memory (read:
 * a pack, downloaded straight into the fetch's buffer) is checked there. One
 * opened instead: a file another process can write (a directory remote's
 * object) is first copied into an unnamed file while it is hashed, so that the
 * bytes checked are the bytes imported; a download is already such a file and
 * is only truncated. The caller gets the body alone.
 * A refused object is a miss: logged once per kind, counted in the journal
 * (`kache stats`: rejected, by reason), and the crate is compiled.
 *
 * Up: the secret key is read from its file by the uploading process itself on
 * its first upload (the key never crosses a process boundary) and the trailer
 * is appended: to the staged file for a pack (no copy), to the bytes for a
 * small object. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "remote/layout.h"
#include "remote/sign.h"
#include "remote/transport.h"
#include "store/journal.h"
#include "store/pack.h"

struct sign_state {
	const struct remote_transport *inner;
	struct sign_keyset *trusted; /* remote.trusted_keys (+ our own key once loaded) */
	char *key_path;              /* remote.signing_key; "" for none */
	struct sign_secret *secret;  /* loaded by the first upload */
	int key_failed;
	char *journal_dir; /* the store whose journal counts rejections */
	unsigned logged;   /* bit per verdict already logged */
};

static enum remote_result s_open(struct remote *r, const char *name, const char *tmpdir, int *fd,
    int *vouched);
static enum remote_result s_read(struct remote *r, const char *name, char *buf, size_t cap,
    size_t *len, int *vouched);
static enum remote_result s_put(struct remote *r, const char *name, const void *data, size_t n);
static enum remote_result s_put_file(struct remote *r, const char *path, const char *name,
    int replace);
static enum remote_result s_list(struct remote *r, const char *prefix, remote_list_fn fn,
    void *arg);
static void s_close(struct remote *r);
static int exempt(const char *name);
static int hash_range(int fd, uint64_t len, int out, struct sign_hash *h);
static int body_only(int *fd, uint64_t len, const char *tmpdir, struct sign_hash *h);
static int read_tail(int fd, uint64_t *size, struct sign_trailer *t);
static int admit(struct sign_state *st, const char *name, const char *tmpdir, int *fd,
    enum sign_verdict *v);
static void reject(struct sign_state *st, const char *name, enum sign_verdict v);
static int load_secret(struct remote *r);

static const struct remote_transport sign_transport = { "signed", s_open, s_read, s_put, s_put_file,
	s_list, s_close };

static int
exempt(const char *name)
{
	return strcmp(name, LAYOUT_FORMAT_NAME) == 0;
}

int
sign_config_check(const struct config *cfg, char *err, size_t errlen)
{
	struct sign_keyset *ks = sign_keyset_new();
	const char *key = config_get(cfg, "remote.signing_key");
	int rc = sign_keyset_parse(ks, config_get(cfg, "remote.trusted_keys"), err, errlen);

	sign_keyset_free(&ks);
	if (rc == 0 && key[0] != '\0')
		rc = sign_secret_check_file(key, err, errlen);
	return rc;
}

int
sign_wrap(struct remote *r, const struct config *cfg, char *err, size_t errlen)
{
	struct sign_state *st;

	if (r->t == NULL) /* the test sink moves no objects */
		return 0;
	st = xcalloc(1, sizeof *st);
	st->trusted = sign_keyset_new();
	if (sign_keyset_parse(st->trusted, config_get(cfg, "remote.trusted_keys"), err, errlen) <
	    0) {
		sign_keyset_free(&st->trusted);
		free(st);
		return -1;
	}
	st->inner = r->t;
	st->key_path = xstrdup(config_get(cfg, "remote.signing_key"));
	st->journal_dir = xstrdup(config_get(cfg, "cache.dir"));
	r->sign = st;
	r->t = &sign_transport;
	return 0;
}

static void
s_close(struct remote *r)
{
	struct sign_state *st = r->sign;

	if (st->inner->close != NULL)
		st->inner->close(r);
	sign_keyset_free(&st->trusted);
	sign_secret_free(&st->secret);
	free(st->key_path);
	free(st->journal_dir);
	free(st);
	r->sign = NULL;
}

static enum remote_result
s_list(struct remote *r, const char *prefix, remote_list_fn fn, void *arg)
{
	return r->sign->inner->list(r, prefix, fn, arg);
}

/* Reads fd's first len bytes from offset 0 into h (when not NULL) and out
 * (when >= 0). 0, or -1 when they are not all there or cannot be written. */
static int
hash_range(int fd, uint64_t len, int out, struct sign_hash *h)
{
	char *chunk = xmalloc(1 << 16);
	uint64_t off = 0;
	int rc = 0;

	while (rc == 0 && off < len) {
		size_t want = len - off < (1 << 16) ? (size_t)(len - off) : (1 << 16);
		ssize_t n = pread(fd, chunk, want, (off_t)off);

		if (n <= 0 || (out >= 0 && fs_write_all(out, chunk, (size_t)n) < 0)) {
			rc = -1;
			break;
		}
		if (h != NULL)
			sign_hash_update(h, chunk, (size_t)n);
		off += (uint64_t)n;
	}
	free(chunk);
	return rc;
}

/* Leaves in *fd, at offset 0, an unnamed file holding only the first len
 * bytes, hashed into h on the way. A file with a name (a directory remote's
 * object, writable by others) is copied first: into memory (memfd) up to
 * PACK_MEM_MAX, past it into tmpdir (so a prefetch session does not make and
 * free one file system inode per pack); our own unnamed download is
 * truncated in place. 0 / -1 (logged). */
static int
body_only(int *fd, uint64_t len, const char *tmpdir, struct sign_hash *h)
{
	struct stat sb;
	int out;

	if (fstat(*fd, &sb) < 0) {
		log_warn("remote: fstat");
		return -1;
	}
	if (sb.st_nlink == 0) {
		if (hash_range(*fd, len, -1, h) < 0 || ftruncate(*fd, (off_t)len) < 0 ||
		    lseek(*fd, 0, SEEK_SET) != 0) {
			log_warn("remote: reading a download");
			return -1;
		}
		return 0;
	}
	out = len <= PACK_MEM_MAX ? memfd_create("kache-object", MFD_CLOEXEC) : -1;
	if (out < 0)
		out = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (out < 0 || hash_range(*fd, len, out, h) < 0 || lseek(out, 0, SEEK_SET) != 0) {
		log_warn("remote: copying an object into %s", tmpdir);
		if (out >= 0)
			close(out);
		return -1;
	}
	close(*fd);
	*fd = out;
	return 0;
}

/* The object's size and its trailer: as sign_trailer_parse. */
static int
read_tail(int fd, uint64_t *size, struct sign_trailer *t)
{
	unsigned char tail[SIGN_TRAILER_LEN];
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return 0;
	*size = (uint64_t)sb.st_size;
	if (*size < SIGN_TRAILER_LEN ||
	    pread(fd, tail, sizeof tail, (off_t)(*size - SIGN_TRAILER_LEN)) != (ssize_t)sizeof tail)
		return 0;
	return sign_trailer_parse(tail, *size, t);
}

/* The verdict on the object open on *fd, which becomes the body alone when
 * admitted. Without trusted keys every object is admitted (a signed one
 * stripped of its trailer). -1 on a local failure. */
static int
admit(struct sign_state *st, const char *name, const char *tmpdir, int *fd, enum sign_verdict *v)
{
	unsigned char digest[SIGN_DIGEST_LEN];
	struct sign_trailer t;
	struct sign_hash h;
	uint64_t size = 0;
	int has = read_tail(*fd, &size, &t);

	*v = SIGN_OK;
	if (sign_keyset_count(st->trusted) == 0)
		return has == 1 ? body_only(fd, t.body_len, tmpdir, NULL) : 0;
	if (has <= 0 || t.body_len > PACK_MAX_BYTES) { /* no copy of a giant */
		*v = has == 0 ? SIGN_UNSIGNED : SIGN_MALFORMED;
		return 0;
	}
	if (sign_keyset_find(st->trusted, t.id) == NULL) {
		*v = SIGN_UNKNOWN_KEY;
		return 0;
	}
	sign_hash_begin(&h, t.head, name);
	if (body_only(fd, t.body_len, tmpdir, &h) < 0)
		return -1;
	sign_hash_end(&h, digest);
	*v = sign_check(st->trusted, &t, digest);
	return 0;
}

/* A refused object: one log line per kind for the process, one journal
 * record each (the index counts rejected and rejected.<reason>). */
static void
reject(struct sign_state *st, const char *name, enum sign_verdict v)
{
	static const char moved[] = "its signature does not match its bytes or its name "
	                            "(changed, or moved from another name)";
	const char *why[] = { "", "it is not signed",
		"it is signed by a key not in remote.trusted_keys", moved,
		"its signature trailer is malformed" };
	struct journal_event ev;
	const char *slash;

	if (!(st->logged & (1u << v))) {
		st->logged |= 1u << v;
		log_warnx("remote: %s refused: %s; not imported, the crate is compiled here "
		          "(more of this kind are counted in `kache stats`, not logged)",
		    name, why[v]);
	}
	memset(&ev, 0, sizeof ev);
	ev.type = JOURNAL_REJECTED;
	snprintf(ev.reason, sizeof ev.reason, "%s", sign_verdict_name(v));
	if (strncmp(name, "packs/", 6) == 0 && (slash = strchr(name + 6, '/')) != NULL)
		snprintf(ev.crate, sizeof ev.crate, "%.*s", (int)(slash - name - 6), name + 6);
	if (journal_append(st->journal_dir, &ev) < 0)
		log_debug("remote: could not count the refusal of %s", name);
}

static enum remote_result
s_open(struct remote *r, const char *name, const char *tmpdir, int *fd, int *vouched)
{
	struct sign_state *st = r->sign;
	enum remote_result rr = st->inner->open(r, name, tmpdir, fd, NULL);
	enum sign_verdict v;

	if (vouched != NULL)
		*vouched = 0;
	if (rr != REMOTE_OK || exempt(name))
		return rr;
	if (admit(st, name, tmpdir, fd, &v) < 0) {
		close(*fd);
		*fd = -1;
		return REMOTE_FAILED;
	}
	if (v == SIGN_OK && lseek(*fd, 0, SEEK_SET) == 0) {
		/* checked against a trusted key, not merely admitted unsigned */
		if (vouched != NULL)
			*vouched = sign_keyset_count(st->trusted) > 0;
		return REMOTE_OK;
	}
	close(*fd);
	*fd = -1;
	if (v == SIGN_OK) /* the lseek failed */
		return REMOTE_FAILED;
	reject(st, name, v);
	return REMOTE_MISS;
}

static enum remote_result
s_read(struct remote *r, const char *name, char *buf, size_t cap, size_t *len, int *vouched)
{
	struct sign_state *st = r->sign;
	enum remote_result rr;
	enum sign_verdict v;
	size_t body = 0;

	if (vouched != NULL)
		*vouched = 0;
	if (st->inner->read == NULL) { /* the caller opens it */
		*len = cap + 1;
		return REMOTE_OK;
	}
	rr = st->inner->read(r, name, buf, cap, len, NULL);
	if (rr != REMOTE_OK || *len > cap || exempt(name))
		return rr;
	/* the bytes are ours already: checked where they lie, no copy. Without
	 * trusted keys every object is admitted, a signed one without its trailer */
	v = sign_verify_mem(st->trusted, name, buf, *len, &body);
	if (sign_keyset_count(st->trusted) == 0)
		v = SIGN_OK;
	if (v != SIGN_OK) {
		reject(st, name, v);
		return REMOTE_MISS;
	}
	*len = body;
	/* checked against a trusted key, not merely admitted unsigned */
	if (vouched != NULL)
		*vouched = sign_keyset_count(st->trusted) > 0;
	return REMOTE_OK;
}

/* Reads the signing key on the first upload. A key that cannot be used is a
 * configuration error: the remote is off for this process (intents stay),
 * said once. Our own key is trusted from then on, so that a manifest this
 * process re-signs after reading it was signed by a trusted key. */
static int
load_secret(struct remote *r)
{
	struct sign_state *st = r->sign;
	unsigned char pk[SIGN_PK_LEN], id[SIGN_ID_LEN];
	char err[512], hex[SIGN_ID_HEX_LEN + 1];

	if (st->secret != NULL)
		return 0;
	if (st->key_failed)
		return -1;
	if ((st->secret = sign_secret_load(st->key_path, err, sizeof err)) == NULL) {
		log_warnx("%s; uploads are off until it is fixed and kache restarts", err);
		st->key_failed = 1;
		r->off = 1;
		return -1;
	}
	sign_secret_pk(st->secret, pk);
	sign_key_id(pk, id);
	sign_id_hex(id, hex);
	(void)sign_keyset_add(st->trusted, pk);
	log_info("remote: signing uploads with key %s", hex);
	return 0;
}

int
sign_writer_ready(struct remote *r)
{
	struct sign_state *st = r->sign;

	if (st == NULL || st->key_path[0] == '\0')
		return 0;
	return load_secret(r) < 0 ? -1 : 1;
}

static enum remote_result
s_put(struct remote *r, const char *name, const void *data, size_t n)
{
	struct sign_state *st = r->sign;
	unsigned char trailer[SIGN_TRAILER_LEN];
	enum remote_result rr;
	struct buf b;

	if (exempt(name) || st->key_path[0] == '\0')
		return st->inner->put(r, name, data, n);
	if (load_secret(r) < 0)
		return REMOTE_FAILED;
	sign_mem(st->secret, name, data, n, trailer);
	buf_init(&b);
	buf_add(&b, data, n);
	buf_add(&b, trailer, sizeof trailer);
	rr = st->inner->put(r, name, b.p, b.len);
	buf_free(&b);
	return rr;
}

/* Appends the trailer to the staged file (the caller's, removed by it). */
static enum remote_result
s_put_file(struct remote *r, const char *path, const char *name, int replace)
{
	struct sign_state *st = r->sign;
	unsigned char head[SIGN_HEAD_LEN], trailer[SIGN_TRAILER_LEN];
	struct sign_hash h;
	struct stat sb;
	int fd, ok;

	if (exempt(name) || st->key_path[0] == '\0')
		return st->inner->put_file(r, path, name, replace);
	if (load_secret(r) < 0)
		return REMOTE_FAILED;
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		log_warn("remote: sign %s", path);
		if (fd >= 0)
			close(fd);
		return REMOTE_FAILED;
	}
	sign_head(st->secret, (uint64_t)sb.st_size, head);
	sign_hash_begin(&h, head, name);
	ok = hash_range(fd, (uint64_t)sb.st_size, -1, &h) == 0;
	sign_finish(st->secret, head, &h, trailer);
	ok = ok && pwrite(fd, trailer, sizeof trailer, sb.st_size) == (ssize_t)sizeof trailer;
	if (close(fd) < 0 || !ok) {
		log_warn("remote: sign %s", path);
		return REMOTE_FAILED;
	}
	return st->inner->put_file(r, path, name, replace);
}

enum remote_result
remote_signature(struct remote *r, const char *name, const char *tmpdir, struct remote_sig *out)
{
	struct sign_state *st = r->sign;
	unsigned char digest[SIGN_DIGEST_LEN];
	struct sign_trailer t;
	struct sign_hash h;
	enum remote_result rr;
	uint64_t size = 0;
	int fd, has;

	memset(out, 0, sizeof *out);
	if (st == NULL)
		return REMOTE_FAILED;
	if ((rr = st->inner->open(r, name, tmpdir, &fd, NULL)) != REMOTE_OK)
		return rr;
	has = read_tail(fd, &size, &t);
	out->v = has == 0 ? SIGN_UNSIGNED : has < 0 ? SIGN_MALFORMED : SIGN_UNKNOWN_KEY;
	if (has == 1)
		sign_id_hex(t.id, out->id);
	if (has == 1 && sign_keyset_find(st->trusted, t.id) != NULL) {
		sign_hash_begin(&h, t.head, name);
		if (hash_range(fd, t.body_len, -1, &h) < 0)
			rr = REMOTE_FAILED;
		sign_hash_end(&h, digest);
		out->v = sign_check(st->trusted, &t, digest);
	}
	close(fd);
	return rr;
}

size_t
remote_trusted_keys(const struct remote *r)
{
	return r->sign ? sign_keyset_count(r->sign->trusted) : 0;
}
