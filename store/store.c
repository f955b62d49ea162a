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
	mode_t mask;            /* permission bits kache never grants a record or a
	                         * directory: those the top dir lacks (store_blob_mode) */
};

/* A per-file memo record, little-endian: device, inode, size (u64 each),
 * mtime s (i64), ns (u32), ctime s (i64), ns (u32), the hash, then the first
 * MEMO_CHECK bytes of the BLAKE2b of all that (a torn or damaged record is
 * never trusted). */
#define MEMO_CHECK 8
#define MEMO_BODY (8 * 3 + 12 + 12 + HASH_LEN)
#define MEMO_LEN (MEMO_BODY + MEMO_CHECK)

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
static int write_in_place(const struct store *s, const char *path, const void *data, size_t n);
static void memo_encode(const struct stat *st, const unsigned char h[HASH_LEN],
    unsigned char m[MEMO_LEN]);
static int memo_decode(const unsigned char m[MEMO_LEN], const struct stat *st, int any_ctime,
    unsigned char out[HASH_LEN]);
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

/* A blob's mode: what rustc gives an output (0666 or 0777, less the
 * umask), but never writable by group or others. Restored and stored outputs
 * are hardlinks of blobs, so this is the mode of the target's files: masked
 * to a private store's 0700 (before 2026-12-04) a binary in target/ was
 * 0700, which no other user could run. Inside the store nobody else reaches
 * a blob whatever its mode: the top directory says who enters. Writable by
 * its owner: rustc refuses an output it cannot write ("output file ... is
 * not writeable"), and a build with the wrapper off over kache's target
 * failed on the first crate it recompiled. Nothing writes through one: kache
 * unlinks a miss's outputs before rustc runs, rustc and the linker replace
 * an output (rename, unlink), never write into it, and a blob written in
 * place anyway is caught by the memo's stat before any restore
 * (blob_put_link). */
mode_t
store_blob_mode(int exec)
{
	return (exec ? 0755 : 0644) & ~fs_umask();
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

int
store_has_entry(const struct store *s, const char *res_hex)
{
	char *entry = store_path(s, "entries", res_hex);
	int found = access(entry, F_OK) == 0;

	free(entry);
	return found;
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

/* The memo file of the file behind st: named by its device and inode alone,
 * so that each file has one, overwritten in place when its stat moves (a
 * restore moves a blob's mtime and ctime on every hit; a name that held the
 * mtime left one more file behind per output per hit). It holds the stat
 * the hash belongs to (MEMO_LEN bytes). A caller hashing an input
 * (store_hash_file) trusts it only when size, mtime and ctime all match; one
 * checking a blob kache keeps (store_hash_kept) does not look at the ctime,
 * which cargo clean moves by unlinking the blob's hardlinks in the target
 * dir. One file serves both, so a restore writes one per output. */
static char *
memo_path(const struct store *s, const struct stat *st)
{
	struct hash_ctx c;
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	hash_begin(&c);
	hash_str(&c, "kache-stat-memo-v3");
	hash_u64(&c, (uint64_t)st->st_dev);
	hash_u64(&c, (uint64_t)st->st_ino);
	hash_end(&c, h);
	hash_to_hex(h, hex);
	return store_path(s, "memo", hex);
}

static void
memo_encode(const struct stat *st, const unsigned char h[HASH_LEN], unsigned char m[MEMO_LEN])
{
	unsigned char sum[HASH_LEN];

	le_put(m, (uint64_t)st->st_dev, 8);
	le_put(m + 8, (uint64_t)st->st_ino, 8);
	le_put(m + 16, (uint64_t)st->st_size, 8);
	le_put(m + 24, (uint64_t)st->st_mtim.tv_sec, 8);
	le_put(m + 32, (uint64_t)st->st_mtim.tv_nsec, 4);
	le_put(m + 36, (uint64_t)st->st_ctim.tv_sec, 8);
	le_put(m + 44, (uint64_t)st->st_ctim.tv_nsec, 4);
	memcpy(m + 48, h, HASH_LEN);
	hash_buffer(m, MEMO_BODY, sum);
	memcpy(m + MEMO_BODY, sum, MEMO_CHECK);
}

/* 1 with the hash in out when the record m is sound and describes st (its
 * ctime too unless any_ctime). */
static int
memo_decode(const unsigned char m[MEMO_LEN], const struct stat *st, int any_ctime,
    unsigned char out[HASH_LEN])
{
	unsigned char sum[HASH_LEN];

	hash_buffer(m, MEMO_BODY, sum);
	if (memcmp(sum, m + MEMO_BODY, MEMO_CHECK) != 0 || le_get(m, 8) != (uint64_t)st->st_dev ||
	    le_get(m + 8, 8) != (uint64_t)st->st_ino ||
	    le_get(m + 16, 8) != (uint64_t)st->st_size ||
	    le_get(m + 24, 8) != (uint64_t)st->st_mtim.tv_sec ||
	    le_get(m + 32, 4) != (uint64_t)st->st_mtim.tv_nsec)
		return 0;
	if (!any_ctime &&
	    (le_get(m + 36, 8) != (uint64_t)st->st_ctim.tv_sec ||
	        le_get(m + 44, 4) != (uint64_t)st->st_ctim.tv_nsec))
		return 0;
	memcpy(out, m + 48, HASH_LEN);
	return 1;
}

/* Overwrites path's bytes with data (n bytes, a memo record), creating it
 * and its fan-out directory on demand: no temporary, no new inode once the
 * file exists. A reader racing the write sees a torn record, which its
 * checksum refuses. Never follows a symlink nor opens anything but a
 * regular file. */
static int
write_in_place(const struct store *s, const char *path, const void *data, size_t n)
{
	int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	int fd = open(path, flags, store_mode(s, 0644)), rc = -1;
	struct stat st;

	if (fd < 0 && errno == ENOENT) {
		char *d = path_dirname(path);

		if (mkdir(d, store_mode(s, 0755)) == 0 || errno == EEXIST)
			fd = open(path, flags, store_mode(s, 0644));
		free(d);
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && pwrite(fd, data, n, 0) == (ssize_t)n &&
	    (st.st_size <= (off_t)n || ftruncate(fd, (off_t)n) == 0))
		rc = 0;
	close(fd);
	return rc;
}

void
store_memo_put(struct store *s, const struct stat *st, const unsigned char h[HASH_LEN])
{
	unsigned char m[MEMO_LEN];
	char *p = memo_path(s, st);

	memo_encode(st, h, m);
	write_in_place(s, p, m, sizeof m);
	free(p);
}

/* Reads the memo of st into out: 1 when there is a sound one for this stat
 * (any ctime for a blob). */
static int
memo_get(const struct store *s, const struct stat *st, int any_ctime, unsigned char out[HASH_LEN])
{
	unsigned char m[MEMO_LEN + 1];
	char *p = memo_path(s, st);
	int fd = fs_open_regular(p, O_RDONLY, 0);
	ssize_t n = fd < 0 ? -1 : read(fd, m, sizeof m);

	free(p);
	if (fd >= 0)
		close(fd);
	return n == MEMO_LEN && memo_decode(m, st, any_ctime, out);
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
	struct stat tmp;

	if (st == NULL)
		st = &tmp;
	/* the memo needs only the stat: the blob is opened only to be hashed */
	if (lstat(path, st) == 0 && S_ISREG(st->st_mode) && memo_get(s, st, 1, out))
		return 0;
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
	if (fd < 0 || hash_fd(fd, hash, size) < 0 || fchmod(fd, store_blob_mode(exec)) < 0) {
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
	    fchmod(out, store_blob_mode(exec)) == 0)
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
    const unsigned char h[HASH_LEN], enum store_put_how how)
{
	char *tmp =
	    xasprintf("%s/tmp/blob.%ld.%lx", s->dir, (long)getpid(), (unsigned long)random());
	mode_t mode = store_blob_mode(exec);
	/* tmp is this call's own name: made whole, then renamed by blob_commit */
	int rc = how == STORE_PUT_DIRECT ? fs_write_new_direct(tmp, data, n, mode) :
	                                   fs_write_new(tmp, data, n, mode);
	int saved = errno;

	/* An executable is about to be run: a build script by the build that
	 * imports it, a test by `cargo test`, a proc macro loaded by the next
	 * compile that misses. Written past the page cache, its pages would be
	 * read from the disk then, fault by fault, on that build's critical
	 * path (a CI job's build after `kache prefetch`: a median 40-60 ms of
	 * ws-small's 0.5 s, docs/bench.md); the kernel reads them back now. */
	if (rc == 0 && how == STORE_PUT_DIRECT && exec)
		fs_read_ahead(tmp);

	if (rc == 0 && blob_commit(s, tmp, h, n) < 0)
		rc = -1, saved = errno;
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	errno = saved;
	return rc;
}
