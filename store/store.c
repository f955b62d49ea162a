#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"

struct store {
	char *dir;
	char import_source[16]; /* store_set_import_source */
	mode_t mask;            /* permission bits kache never grants: those the top dir lacks */
};

/* A per-file memo: the hash, then the ctime (s, ns) it belongs to, little-endian. */
#define MEMO_LEN (HASH_LEN + 8 + 4)

static const char *const store_subdirs[] = { "blobs", "entries", "manifests", "memo", "journal",
	STORE_INTENTS, "tmp" };

static char *memo_path(const struct store *s, const struct stat *st);
static int memo_get(const struct store *s, const struct stat *st, int any_ctime,
    unsigned char out[HASH_LEN]);
static int same_stat(const struct stat *a, const struct stat *b);
static int hash_checked(int fd, struct stat *st, unsigned char out[HASH_LEN], int *stable);
static int hash_fd_memo(struct store *s, int fd, struct stat *st, unsigned char out[HASH_LEN],
    int kept, int *stable);
static int hash_open(struct store *s, int fd, unsigned char out[HASH_LEN], struct stat *st,
    int kept, int *stable);
static int write_fanout(const struct store *s, const char *path, const void *data, size_t n,
    mode_t mode);
static char *text_memo_path(const struct store *s, const char *key);
static int blob_put_link(struct store *s, const char *src, int exec, unsigned char hash[HASH_LEN],
    uint64_t *size, const char *tmp);
static int blob_put_copy(struct store *s, const char *src, int exec, unsigned char hash[HASH_LEN],
    uint64_t *size, const char *tmp);
static int blob_commit(struct store *s, const char *tmp, const unsigned char hash[HASH_LEN],
    uint64_t size);

struct store *
store_open(const char *dir)
{
	return store_open_shared(dir, 0);
}

struct store *
store_open_shared(const char *dir, int shared)
{
	struct store *s;
	struct stat st;

	if (stat(dir, &st) < 0) {
		if (errno != ENOENT || fs_mkdir_p(dir, shared ? 0755 : 0700) < 0 ||
		    stat(dir, &st) < 0)
			return NULL;
	} else if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return NULL;
	}
	s = xcalloc(1, sizeof *s);
	s->dir = xstrdup(dir);
	/* group and others get at most what the top directory gives them */
	s->mask = (mode_t)(~st.st_mode & 077);
	{
		/* The last directory made: when it is there, so is the rest. */
		char *last = path_join(dir, "tmp");
		int ready = stat(last, &st) == 0;

		free(last);
		if (ready)
			return s;
	}
	for (size_t i = 0; i < sizeof store_subdirs / sizeof store_subdirs[0]; i++) {
		char *p = path_join(dir, store_subdirs[i]);

		if (mkdir(p, store_mode(s, 0755)) < 0 && errno != EEXIST)
			log_warn("store: mkdir %s", p);
		free(p);
	}
	return s;
}

void
store_free(struct store **sp)
{
	if (*sp == NULL)
		return;
	free((*sp)->dir);
	free(*sp);
	*sp = NULL;
}

mode_t
store_mode(const struct store *s, mode_t mode)
{
	return mode & ~s->mask;
}

const char *
store_dir(const struct store *s)
{
	return s->dir;
}

void
store_set_import_source(struct store *s, const char *src)
{
	snprintf(s->import_source, sizeof s->import_source, "%s", src ? src : "");
}

const char *
store_import_source(const struct store *s)
{
	return s->import_source;
}

char *
store_path(const struct store *s, const char *kind, const char *hex)
{
	return xasprintf("%s/%s/%.2s/%s", s->dir, kind, hex, hex);
}

/* Writes data under path, creating the two-hex fan-out directory on demand
 * (one mkdir: the store's own directories exist). */
static int
write_fanout(const struct store *s, const char *path, const void *data, size_t n, mode_t mode)
{
	mode = store_mode(s, mode);
	if (fs_write_atomic(path, data, n, mode) == 0)
		return 0;
	if (errno == ENOENT) {
		char *d = path_dirname(path);
		int rc = mkdir(d, store_mode(s, 0755)) == 0 || errno == EEXIST ? 0 : -1;

		free(d);
		if (rc == 0 && fs_write_atomic(path, data, n, mode) == 0)
			return 0;
	}
	return -1;
}

/* The memo file of the file behind st: named by (device, inode, size, mtime),
 * holding the hash and the ctime it was taken at (MEMO_LEN bytes). A caller
 * hashing an input (store_hash_file) trusts it only when the ctime still
 * matches; one checking a blob kache keeps (store_hash_kept) does not look at
 * the ctime, which cargo clean moves by unlinking the blob's hardlinks in the
 * target dir. One file serves both, so a restore writes one per output. */
static char *
memo_path(const struct store *s, const struct stat *st)
{
	struct hash_ctx c;
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	hash_begin(&c);
	hash_str(&c, "kache-stat-memo-v2");
	hash_u64(&c, (uint64_t)st->st_dev);
	hash_u64(&c, (uint64_t)st->st_ino);
	hash_u64(&c, (uint64_t)st->st_size);
	hash_u64(&c, (uint64_t)st->st_mtim.tv_sec);
	hash_u64(&c, (uint64_t)st->st_mtim.tv_nsec);
	hash_end(&c, h);
	hash_to_hex(h, hex);
	return store_path(s, "memo", hex);
}

void
store_memo_put(struct store *s, const struct stat *st, const unsigned char h[HASH_LEN])
{
	unsigned char m[MEMO_LEN];
	char *p = memo_path(s, st);

	memcpy(m, h, HASH_LEN);
	for (int i = 0; i < 8; i++)
		m[HASH_LEN + i] = (unsigned char)((uint64_t)st->st_ctim.tv_sec >> (8 * i));
	for (int i = 0; i < 4; i++)
		m[HASH_LEN + 8 + i] = (unsigned char)((uint64_t)st->st_ctim.tv_nsec >> (8 * i));
	write_fanout(s, p, m, sizeof m, 0644);
	free(p);
}

/* Reads the memo of st into out: 1 when there is one, for the same ctime
 * unless any_ctime (a blob). */
static int
memo_get(const struct store *s, const struct stat *st, int any_ctime, unsigned char out[HASH_LEN])
{
	unsigned char m[MEMO_LEN];
	char *p = memo_path(s, st);
	int fd = fs_open_regular(p, O_RDONLY, 0);
	ssize_t n = fd < 0 ? -1 : read(fd, m, sizeof m);
	uint64_t sec = 0, nsec = 0;

	free(p);
	if (fd >= 0)
		close(fd);
	if (n != MEMO_LEN)
		return 0;
	for (int i = 7; i >= 0; i--)
		sec = sec << 8 | m[HASH_LEN + i];
	for (int i = 3; i >= 0; i--)
		nsec = nsec << 8 | m[HASH_LEN + 8 + i];
	if (!any_ctime &&
	    (sec != (uint64_t)st->st_ctim.tv_sec || nsec != (uint64_t)st->st_ctim.tv_nsec))
		return 0;
	memcpy(out, m, HASH_LEN);
	return 1;
}

/* 1 when a and b describe the same file with the same size and mtime; ctime
 * is compared apart (a link(2) or chmod(2) changes it, not the bytes). */
static int
same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Hashes the open file fd, whose fstat is st. A file whose size or mtime
 * changed while it was hashed gives -1 (its bytes were a mix of two states).
 * *stable says whether the hash may be memoized: the whole stat held (ctime
 * too) and the last change is older than STORE_MEMO_MIN_AGE_NS, so a memo
 * always names the content its stat describes. st is updated to the stat
 * after hashing: a caller that checks ctime sees any change made meanwhile. */
static int
hash_checked(int fd, struct stat *st, unsigned char out[HASH_LEN], int *stable)
{
	struct stat after;
	struct timespec now;
	long long age;

	*stable = 0;
	if (hash_fd(fd, out, NULL) < 0)
		return -1;
	if (fstat(fd, &after) < 0 || !same_stat(st, &after)) {
		log_info("a file changed while it was hashed (inode %llu)",
		    (unsigned long long)st->st_ino);
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	age = (long long)(now.tv_sec - st->st_ctim.tv_sec) * 1000000000LL +
	    (now.tv_nsec - st->st_ctim.tv_nsec);
	*stable = age > STORE_MEMO_MIN_AGE_NS && after.st_ctim.tv_sec == st->st_ctim.tv_sec &&
	    after.st_ctim.tv_nsec == st->st_ctim.tv_nsec;
	*st = after;
	return 0;
}

/* The hash of the open file fd, whose fstat is st, through the memo (kept:
 * a blob, its ctime not compared, see memo_path); hashed by hash_checked and
 * memoized when stable. *stable: a memoized hash, or one found stable. */
static int
hash_fd_memo(struct store *s, int fd, struct stat *st, unsigned char out[HASH_LEN], int kept,
    int *stable)
{
	int rc;

	if (memo_get(s, st, kept, out)) {
		*stable = 1;
		return 0;
	}
	rc = hash_checked(fd, st, out, stable);
	if (rc == 0 && *stable)
		store_memo_put(s, st, out); /* st is now the stat after hashing */
	return rc;
}

int
store_hash_fresh(const char *path, unsigned char out[HASH_LEN], struct stat *st, int *stable)
{
	int fd = fs_open_input(path), rc;

	*stable = 0;
	if (fd < 0)
		return -1;
	rc = fstat(fd, st) < 0 ? -1 : hash_checked(fd, st, out, stable);
	close(fd);
	return rc;
}

/* Hashes the file open as fd (closing it) and reports its stat. */
static int
hash_open(struct store *s, int fd, unsigned char out[HASH_LEN], struct stat *st, int kept,
    int *stable)
{
	struct stat tmp;
	int rc, ignored;

	if (st == NULL)
		st = &tmp;
	if (stable == NULL)
		stable = &ignored;
	*stable = 0;
	if (fd < 0)
		return -1;
	rc = fstat(fd, st) < 0 ? -1 : hash_fd_memo(s, fd, st, out, kept, stable);
	close(fd);
	return rc;
}

int
store_hash_file(struct store *s, const char *path, unsigned char out[HASH_LEN], struct stat *st)
{
	return hash_open(s, fs_open_input(path), out, st, 0, NULL);
}

int
store_hash_file_stable(struct store *s, const char *path, unsigned char out[HASH_LEN],
    struct stat *st, int *stable)
{
	return hash_open(s, fs_open_input(path), out, st, 0, stable);
}

int
store_hash_kept(struct store *s, const char *path, unsigned char out[HASH_LEN], struct stat *st)
{
	return hash_open(s, fs_open_regular(path, O_RDONLY, 0), out, st, 1, NULL);
}

static char *
text_memo_path(const struct store *s, const char *key)
{
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	hash_buffer(key, strlen(key), h);
	hash_to_hex(h, hex);
	return store_path(s, "memo", hex);
}

int
store_memo_get_text(struct store *s, const char *key, struct buf *out)
{
	char *p = text_memo_path(s, key);
	int rc = fs_read_file(p, out, 1 << 20);

	free(p);
	return rc;
}

void
store_memo_put_text(struct store *s, const char *key, const char *text, size_t n)
{
	char *p = text_memo_path(s, key);

	write_fanout(s, p, text, n, 0644);
	free(p);
}

/* Moves tmp to blobs/<hash>, or drops it when that blob is already there with
 * the right bytes (checked through the memo). */
static int
blob_commit(struct store *s, const char *tmp, const unsigned char hash[HASH_LEN], uint64_t size)
{
	unsigned char have[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];
	char *dst, *d;
	struct stat st;
	int rc = 0;

	hash_to_hex(hash, hex);
	dst = store_path(s, "blobs", hex);
	if (lstat(dst, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size &&
	    store_hash_kept(s, dst, have, NULL) == 0 && memcmp(have, hash, HASH_LEN) == 0) {
		/* already there, and sound: a damaged one is replaced below */
		unlink(tmp);
		free(dst);
		return 0;
	}
	if (rename(tmp, dst) < 0) {
		d = path_dirname(dst);
		if (errno != ENOENT || (mkdir(d, store_mode(s, 0755)) < 0 && errno != EEXIST) ||
		    rename(tmp, dst) < 0)
			rc = -1;
		free(d);
	}
	if (rc == 0 && lstat(dst, &st) == 0)
		store_memo_put(s, &st, hash);
	free(dst);
	return rc;
}

/* Adds src to the store by a hardlink: no copy. The blob then shares its inode
 * with src; a later in-place change to src changes the blob's ctime, which the
 * stat memo notices, so the damage is caught before any restore. */
static int
blob_put_link(struct store *s, const char *src, int exec, unsigned char hash[HASH_LEN],
    uint64_t *size, const char *tmp)
{
	int fd;

	if (link(src, tmp) < 0)
		return -1;
	fd = fs_open_regular(tmp, O_RDONLY, 0);
	if (fd < 0 || hash_fd(fd, hash, size) < 0 ||
	    fchmod(fd, store_mode(s, exec ? 0555 : 0444)) < 0) {
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (blob_commit(s, tmp, hash, *size) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Adds src to the store by copying it to a temporary and hashing the copy: the
 * source may change while we copy, the copy cannot. */
static int
blob_put_copy(struct store *s, const char *src, int exec, unsigned char hash[HASH_LEN],
    uint64_t *size, const char *tmp)
{
	int in, out, rc = -1;

	in = fs_open_regular(src, O_RDONLY, 0);
	out = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (in >= 0 && out >= 0 && fs_clone_or_copy_fd(in, out, NULL) == 0 &&
	    lseek(out, 0, SEEK_SET) == 0 && hash_fd(out, hash, size) == 0 &&
	    fchmod(out, store_mode(s, exec ? 0555 : 0444)) == 0)
		rc = 0;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0)
		rc = -1;
	if (rc == 0)
		rc = blob_commit(s, tmp, hash, *size);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

int
store_blob_put(struct store *s, const char *src, int exec, int may_link,
    unsigned char hash[HASH_LEN], uint64_t *size)
{
	char *tmp =
	    xasprintf("%s/tmp/blob.%ld.%lx", s->dir, (long)getpid(), (unsigned long)random());
	int rc = -1;

	if (may_link)
		rc = blob_put_link(s, src, exec, hash, size, tmp);
	if (rc < 0)
		rc = blob_put_copy(s, src, exec, hash, size, tmp);
	free(tmp);
	return rc;
}

int
store_blob_put_bytes(struct store *s, const void *data, size_t n, int exec,
    const unsigned char h[HASH_LEN])
{
	char *tmp =
	    xasprintf("%s/tmp/blob.%ld.%lx", s->dir, (long)getpid(), (unsigned long)random());
	int rc = fs_write_atomic(tmp, data, n, store_mode(s, exec ? 0555 : 0444));

	if (rc == 0 && blob_commit(s, tmp, h, n) < 0)
		rc = -1;
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}
