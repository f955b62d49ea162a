/* enospc_shim.so: an LD_PRELOAD library (test builds only) that makes a disk
 * look full, so the full-disk tests run where no small filesystem can be
 * mounted.
 *
 *   KACHE_ENOSPC_DIR=/abs/dir    writes to files under this directory fail with
 *                                ENOSPC (write, pwrite, writev, pwritev,
 *                                fallocate, posix_fallocate, ftruncate growing
 *                                nothing is checked: they fail too)
 *   KACHE_ENOSPC_WHILE=/abs/file only while this file exists: removing it is
 *                                "space came back" (unset: always)
 *
 * A write of zero bytes passes. Nothing else is changed: reads, renames,
 * unlinks and directory operations behave as on a full disk (unlink frees). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static int full_fd(int fd);

/* 1 when writes to fd must fail: its path lies under KACHE_ENOSPC_DIR and the
 * KACHE_ENOSPC_WHILE file (if named) exists. */
static int
full_fd(int fd)
{
	const char *dir = getenv("KACHE_ENOSPC_DIR");
	const char *flag = getenv("KACHE_ENOSPC_WHILE");
	char link[64], path[4096];
	size_t dl;
	ssize_t n;
	struct stat st;
	int saved = errno;

	if (dir == NULL || dir[0] != '/' || fd < 0)
		return 0;
	if (flag != NULL && flag[0] != '\0' && stat(flag, &st) != 0) {
		errno = saved;
		return 0;
	}
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof path - 1);
	errno = saved;
	if (n <= 0)
		return 0;
	path[n] = '\0';
	dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	return strncmp(path, dir, dl) == 0 && (path[dl] == '/' || path[dl] == '\0');
}

#define REAL(name)                                                                                 \
	static __typeof__(&(name)) real_##name;                                                    \
	if (real_##name == NULL)                                                                   \
	real_##name = (__typeof__(&(name)))dlsym(RTLD_NEXT, #name)

ssize_t
write(int fd, const void *b, size_t n)
{
	REAL(write);
	if (n > 0 && full_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_write(fd, b, n);
}

ssize_t
pwrite(int fd, const void *b, size_t n, off_t off)
{
	REAL(pwrite);
	if (n > 0 && full_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_pwrite(fd, b, n, off);
}

ssize_t
pwrite64(int fd, const void *b, size_t n, off_t off)
{
	REAL(pwrite64);
	if (n > 0 && full_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_pwrite64(fd, b, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(writev);
	if (cnt > 0 && full_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_writev(fd, iov, cnt);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(pwritev);
	if (cnt > 0 && full_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_pwritev(fd, iov, cnt, off);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	REAL(fallocate);
	if (full_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_fallocate(fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off_t off, off_t len)
{
	REAL(fallocate64);
	if (full_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	return real_fallocate64(fd, mode, off, len);
}

int
posix_fallocate(int fd, off_t off, off_t len)
{
	REAL(posix_fallocate);
	if (full_fd(fd))
		return ENOSPC;
	return real_posix_fallocate(fd, off, len);
}

int
posix_fallocate64(int fd, off_t off, off_t len)
{
	REAL(posix_fallocate64);
	if (full_fd(fd))
		return ENOSPC;
	return real_posix_fallocate64(fd, off, len);
}

ssize_t
copy_file_range(int in, off_t *oin, int out, off_t *oout, size_t n, unsigned int fl)
{
	REAL(copy_file_range);
	if (n > 0 && full_fd(out)) {
		errno = ENOSPC;
		return -1;
	}
	return real_copy_file_range(in, oin, out, oout, n, fl);
}
