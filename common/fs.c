#include "common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/util.h"

static int copy_loop(int in, int out);
static int open_regular(const char *path, int flags, mode_t mode, struct stat *st);
static int read_rest(int fd, struct buf *b, size_t max, off_t size);

/* The one way kache opens a file it did not just create: O_NONBLOCK, so that
 * open(2) of a FIFO returns at once, then fstat, so that only a regular file is
 * ever read or written. O_NONBLOCK has no effect on regular files. */
static int
open_regular(const char *path, int flags, mode_t mode, struct stat *st)
{
	int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);

	if (fd < 0) {
		if (errno == ENXIO || errno == ENODEV)
			errno = EINVAL; /* a FIFO without a reader, a device */
		return -1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

const char *
fs_unreadable_why(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || access(path, R_OK) < 0)
		return strerror(errno);
	return S_ISREG(st.st_mode) ? NULL : "not a regular file";
}

int
fs_open_regular(const char *path, int flags, mode_t mode)
{
	struct stat st;

	return open_regular(path, flags | O_NOFOLLOW, mode, &st);
}

int
fs_open_input(const char *path)
{
	struct stat st;

	return open_regular(path, O_RDONLY, 0, &st);
}

int
fs_read_file(const char *path, struct buf *b, size_t max)
{
	struct stat st;
	int fd = open_regular(path, O_RDONLY | O_NOFOLLOW, 0, &st), rc, saved;

	if (fd < 0)
		return -1;
	rc = read_rest(fd, b, max, st.st_size); /* the open's fstat: no second one */
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
fs_read_fd(int fd, struct buf *b, size_t max)
{
	struct stat st;

	return read_rest(fd, b, max, fstat(fd, &st) == 0 ? st.st_size : 0);
}

/* Reads fd to its end into b; size: what fstat said (0: unknown). The buffer
 * is sized for the whole file and the read of 0 that ends it, so a store
 * record costs one allocation of its own size (not a 128 KiB mapping made
 * and unmapped) and two read(2)s. */
static int
read_rest(int fd, struct buf *b, size_t max, off_t size)
{
	ssize_t n;

	if (size > 0) {
		if ((uint64_t)size > max) {
			errno = EFBIG;
			return -1;
		}
		buf_grow(b, (size_t)size + 1);
	}
	for (;;) {
		if (b->len + 1 >= b->cap)
			buf_grow(b, 65536);
		n = read(fd, b->p + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			b->p[b->len] = '\0';
			return 0;
		}
		b->len += (size_t)n;
		b->p[b->len] = '\0';
		if (b->len > max) {
			errno = EFBIG;
			return -1;
		}
	}
}

int
fs_write_all(int fd, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
fs_read_into(int fd, void *buf, size_t cap, size_t *n)
{
	char *p = buf, extra;
	size_t got = 0;
	ssize_t r;

	for (;;) { /* once full, one byte more says whether that was the end */
		r = got < cap ? read(fd, p + got, cap - got) : read(fd, &extra, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (got == cap) {
			errno = EFBIG;
			return -1;
		}
		got += (size_t)r;
	}
	if (r < 0)
		return -1;
	*n = got;
	return 0;
}

char *
fs_tmp_beside(const char *path)
{
	static unsigned counter; /* atomic: threads of one process name temporaries too */
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dirlen = slash ? (int)(slash - path) : 1;
	const char *dir = slash ? path : ".";

	return xasprintf("%.*s/.%.40s.tmp.%ld.%u.%lx", dirlen, dir, base, (long)getpid(),
	    __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED), (unsigned long)random());
}

int
fs_write_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
	char *tmp = fs_tmp_beside(path);
	int rc = fs_write_new(tmp, data, n, mode), saved; /* removes tmp on failure */

	if (rc == 0 && (rc = rename(tmp, path)) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
	}
	free(tmp);
	return rc;
}

int
fs_write_new(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode), saved;

	if (fd < 0)
		return -1;
	if (fs_write_all(fd, data, n) < 0 || fchmod(fd, mode) < 0) {
		saved = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) { /* the descriptor is gone even then: no second close */
		saved = errno;
		goto fail;
	}
	return 0;
fail:
	unlink(path);
	errno = saved;
	return -1;
}

/* A direct write's buffer: FS_DIRECT_CHUNK bytes aligned to FS_DIRECT_ALIGN,
 * one per thread (the prefetch's pool writes from several), kept for the
 * thread's life: a new one per file would be fresh memory each time, the
 * cost direct writes are there to avoid. */
#define FS_DIRECT_ALIGN 4096
#define FS_DIRECT_CHUNK (1 << 20)
static pthread_key_t bounce_key;
static pthread_once_t bounce_once = PTHREAD_ONCE_INIT;
static int bounce_key_ok;

static void
bounce_key_make(void)
{
	bounce_key_ok = pthread_key_create(&bounce_key, free) == 0;
}

static char *
bounce_get(void)
{
	void *p;

	pthread_once(&bounce_once, bounce_key_make);
	if (!bounce_key_ok)
		return NULL;
	if ((p = pthread_getspecific(bounce_key)) != NULL)
		return p;
	if (posix_memalign(&p, FS_DIRECT_ALIGN, FS_DIRECT_CHUNK) != 0)
		return NULL;
	if (pthread_setspecific(bounce_key, p) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

/* Writes n bytes (whole FS_DIRECT_ALIGN blocks) from data to fd, opened
 * O_DIRECT, through the bounce buffer. */
static int
write_direct(int fd, char *bounce, const char *data, size_t n)
{
	while (n > 0) {
		size_t c = n < FS_DIRECT_CHUNK ? n : FS_DIRECT_CHUNK;

		memcpy(bounce, data, c);
		if (fs_write_all(fd, bounce, c) < 0)
			return -1;
		data += c;
		n -= c;
	}
	return 0;
}

/* The n (< FS_DIRECT_ALIGN) bytes past the last whole block, through the
 * page cache: a block past the end of the file needs no read, where cutting
 * a padded block to size would read it back from the disk first. */
static int
write_tail(int fd, const char *data, size_t n)
{
	int fl;

	if (n == 0)
		return 0;
	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return -1;
	return fs_write_all(fd, data, n);
}

int
fs_write_new_direct(const char *path, const void *data, size_t n, mode_t mode)
{
	char *bounce = bounce_get();
	size_t whole = n / FS_DIRECT_ALIGN * FS_DIRECT_ALIGN;
	int fd, saved;

	if (bounce == NULL) {
		errno = EINVAL;
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_DIRECT, mode);
	if (fd < 0)
		return -1;
	if (write_direct(fd, bounce, data, whole) < 0 ||
	    write_tail(fd, (const char *)data + whole, n - whole) < 0 || fchmod(fd, mode) < 0) {
		saved = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		saved = errno;
		goto fail;
	}
	return 0;
fail:
	unlink(path);
	errno = saved;
	return -1;
}

void
fs_read_ahead(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
	close(fd);
}

int
fs_mkdir_p(const char *dir, mode_t mode)
{
	char *p = xstrdup(dir);
	int rc;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		(void)mkdir(p, mode); /* a parent that cannot be made fails the last mkdir */
		*s = '/';
	}
	rc = mkdir(p, mode) < 0 && errno != EEXIST ? -1 : 0;
	free(p);
	return rc;
}

static int
copy_loop(int in, int out)
{
	char chunk[65536];
	ssize_t n;

	for (;;) {
		n = read(in, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (fs_write_all(out, chunk, (size_t)n) < 0)
			return -1;
	}
}

int
fs_clone_or_copy_fd(int in, int out, int *cloned)
{
	ssize_t n;

	if (cloned)
		*cloned = 0;
	if (ioctl(out, FICLONE, in) == 0) {
		if (cloned)
			*cloned = 1;
		return 0;
	}
	for (;;) {
		n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n < 0)
			break;
	}
	if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
		return -1;
	if (lseek(in, 0, SEEK_SET) < 0 || lseek(out, 0, SEEK_SET) < 0 || ftruncate(out, 0) < 0)
		return -1;
	return copy_loop(in, out);
}

int
fs_copy_atomic(const char *src, const char *dst, mode_t mode)
{
	char *tmp;
	int in, out, saved;

	in = fs_open_regular(src, O_RDONLY, 0);
	if (in < 0)
		return -1;
	tmp = fs_tmp_beside(dst);
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		saved = errno;
		close(in);
		free(tmp);
		errno = saved;
		return -1;
	}
	if (fs_clone_or_copy_fd(in, out, NULL) < 0 || fchmod(out, mode) < 0) {
		saved = errno;
		close(out);
		goto fail;
	}
	if (close(out) < 0) { /* the descriptor is gone even then: no second close */
		saved = errno;
		goto fail;
	}
	if (rename(tmp, dst) < 0) {
		saved = errno;
		goto fail;
	}
	close(in);
	free(tmp);
	return 0;
fail:
	close(in);
	unlink(tmp);
	free(tmp);
	errno = saved;
	return -1;
}

int
fs_remove_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char *child;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		child = xasprintf("%s/%s", path, de->d_name);
		if (fs_remove_tree(child) < 0)
			rc = -1;
		free(child);
	}
	closedir(d);
	if (rmdir(path) < 0)
		rc = -1;
	return rc;
}

uint64_t
fs_tree_size(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	uint64_t total = 0;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char *child;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		child = xasprintf("%s/%s", path, de->d_name);
		total += fs_tree_size(child);
		free(child);
	}
	closedir(d);
	return total;
}

int
fs_flock_wait(int fd, int64_t deadline, int poll_ms)
{
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (clock_left_ms(deadline) <= 0)
			return -2;
		usleep((useconds_t)poll_ms * 1000);
	}
	return 0;
}

mode_t
fs_umask(void)
{
	static int known = -1;
	int m = __atomic_load_n(&known, __ATOMIC_RELAXED);
	struct buf b;
	const char *at;
	char *end = NULL;
	unsigned long v = 01000;

	if (m >= 0)
		return (mode_t)m;
	buf_init(&b);
	if (fs_read_file("/proc/self/status", &b, 1 << 16) == 0 && b.p != NULL &&
	    (at = strstr(b.p, "\nUmask:\t")) != NULL)
		v = strtoul(at + 8, &end, 8);
	if (v <= 0777 && *end == '\n') {
		m = (int)v;
	} else {
		mode_t was = umask(077);

		umask(was);
		m = (int)(was & 0777);
	}
	buf_free(&b);
	__atomic_store_n(&known, m, __ATOMIC_RELAXED);
	return (mode_t)m;
}
