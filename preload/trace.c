/* kache-trace.so: preloaded into rustc for a compile that may load proc macros
 * (see trace.h). It writes down what a proc macro reads behind rustc's back,
 * so that the wrapper keys it: a file's content, a directory's names, a file's
 * absence, a variable's value; and what a key cannot hold (a write, a program
 * run, a connection), so that such a result is not stored.
 *
 * Every call is passed on unchanged, errno kept; the library links libc only
 * and takes no lock of its own (the cache of which objects are proc macros is
 * per thread). It is inert in any process that does not hold the wrapper's
 * trace file under the number it was given. */
#undef _FORTIFY_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload/trace.h"

#define MAX_DIRS 64
#define CACHED 8

struct dir {
	dev_t dev;
	ino_t ino;
};

struct seen {
	const char *start, *end; /* an object's mapping */
	int traced;
};

static int active; /* this is the process to trace */
static int trace_fd = -1;
static struct dir dirs[MAX_DIRS];
static int n_dirs;
static char *(*real_getenv)(const char *);

static __thread struct seen seen[CACHED];
static __thread unsigned seen_next;

__attribute__((constructor)) static void trace_init(void);
static int parse_fd(const char *v, unsigned long long *dev, unsigned long long *ino);
static int in_crate_dir(const char *path);
static int from_proc_macro(const void *ra);
static void emit(int kind, const char *dir, const char *path);
static void emit_open(const void *ra, int dirfd, const char *path, int flags, int ok, int err);
static int opened(const void *ra, int dirfd, const char *path, int flags, int fd);
static int fopen_flags(const char *mode);

/* Active when the descriptor named is the wrapper's file (device and inode);
 * the crate directories by device and inode (the path rustc loads a proc
 * macro by may be another spelling of the one the wrapper saw). */
static void
trace_init(void)
{
	const char *fd, *list;
	char path[PATH_MAX];
	unsigned long long dev, ino;
	struct stat st;

	real_getenv = (char *(*)(const char *))dlsym(RTLD_NEXT, "getenv");
	if (real_getenv == NULL)
		return;
	fd = real_getenv(TRACE_ENV_FD);
	list = real_getenv(TRACE_ENV_DIRS);
	if (fd == NULL || list == NULL || parse_fd(fd, &dev, &ino) < 0 ||
	    fstat(trace_fd, &st) < 0 || (unsigned long long)st.st_dev != dev ||
	    (unsigned long long)st.st_ino != ino)
		return;
	while (*list != '\0' && n_dirs < MAX_DIRS) {
		const char *end = strchr(list, '\n');
		size_t n = end != NULL ? (size_t)(end - list) : strlen(list);

		if (n < sizeof path) {
			memcpy(path, list, n);
			path[n] = '\0';
			if (stat(path, &st) == 0)
				dirs[n_dirs++] = (struct dir){ st.st_dev, st.st_ino };
		}
		list += n + (end != NULL);
	}
	active = 1;
	emit(TRACE_LOADED, NULL, "");
}

/* TRACE_ENV_FD's "FD:DEV:INO": the number into trace_fd. 0, or -1 when the
 * value is not of that form. */
static int
parse_fd(const char *v, unsigned long long *dev, unsigned long long *ino)
{
	char *end;
	long fd = strtol(v, &end, 10);

	if (end == v || *end != ':' || fd < 0 || fd > 1 << 20)
		return -1;
	*dev = strtoull(end + 1, &end, 10);
	if (*end != ':')
		return -1;
	*ino = strtoull(end + 1, &end, 10);
	if (*end != '\0')
		return -1;
	trace_fd = (int)fd;
	return 0;
}

/* 1 when the object at path lies in one of the crate directories. */
static int
in_crate_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (slash == NULL || (size_t)(slash - path) >= sizeof dir)
		return 0;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (stat(slash == path ? "/" : dir, &st) < 0)
		return 0;
	for (int i = 0; i < n_dirs; i++)
		if (dirs[i].dev == st.st_dev && dirs[i].ino == st.st_ino)
			return 1;
	return 0;
}

/* 1 when the code at ra (a caller's return address) belongs to a proc macro:
 * an object loaded from a crate directory. The object comes from
 * _dl_find_object, not dladdr, which also looks for the nearest symbol: a scan
 * of librustc_driver's symbol table on every call rustc made (a second of CPU
 * over a cold build of ws-small); each thread keeps its last verdicts by
 * address range, so most calls cost a few comparisons. */
static int
from_proc_macro(const void *ra)
{
	struct dl_find_object fo;
	const char *pc = ra;
	int traced;

	if (!active)
		return 0;
	for (unsigned i = 0; i < CACHED; i++)
		if (pc >= seen[i].start && pc < seen[i].end)
			return seen[i].traced;
	if (_dl_find_object((void *)ra, &fo) != 0 || fo.dlfo_link_map == NULL)
		return 0;
	traced = fo.dlfo_link_map->l_name != NULL && in_crate_dir(fo.dlfo_link_map->l_name);
	seen[seen_next++ % CACHED] =
	    (struct seen){ (const char *)fo.dlfo_map_start, (const char *)fo.dlfo_map_end, traced };
	return traced;
}

/* One record: kind, the path (after dir and a slash when dir is given), NUL.
 * One write(2) to a descriptor opened for appending: records of threads do
 * not interleave. */
static void
emit(int kind, const char *dir, const char *path)
{
	char rec[2 * PATH_MAX + 4];
	size_t n = 0, d = dir != NULL ? strlen(dir) : 0, p = strlen(path);
	int saved = errno;

	if (d + p + 3 > sizeof rec) { /* unknown to the wrapper: nothing stored */
		kind = TRACE_UNREADABLE;
		d = p = 0;
	}
	rec[n++] = (char)kind;
	if (d > 0) {
		memcpy(rec + n, dir, d);
		n += d;
		rec[n++] = '/';
	}
	memcpy(rec + n, path, p);
	n += p;
	rec[n++] = '\0';
	while (write(trace_fd, rec, n) < 0 && errno == EINTR)
		;
	errno = saved;
}

/* An open a proc macro made: what it asked for, and what came of it. A path
 * relative to a directory descriptor is written under that directory. */
static void
emit_open(const void *ra, int dirfd, const char *path, int flags, int ok, int err)
{
	char dir[PATH_MAX], link[64];
	const char *under = NULL;
	int kind;

	if (path == NULL || !from_proc_macro(ra))
		return;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) != 0) {
		if (!ok)
			return; /* nothing written */
		kind = TRACE_WRITE;
	} else if (ok)
		kind = (flags & O_DIRECTORY) ? TRACE_DIR : TRACE_READ; /* read_dir by openat */
	else if (err == ENOENT || err == ENOTDIR)
		kind = TRACE_ABSENT;
	else
		return;
	if (path[0] != '/' && dirfd != AT_FDCWD) {
		ssize_t n;

		snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
		if ((n = readlink(link, dir, sizeof dir - 1)) <= 0) {
			emit(TRACE_UNREADABLE, NULL, "");
			return;
		}
		dir[n] = '\0';
		under = dir;
	}
	emit(kind, under, path);
}

/* fd, after writing down the open that returned it (errno kept). */
static int
opened(const void *ra, int dirfd, const char *path, int flags, int fd)
{
	int err = errno;

	emit_open(ra, dirfd, path, flags, fd >= 0, err);
	errno = err;
	return fd;
}

static int
fopen_flags(const char *mode)
{
	return strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+') ? O_WRONLY : O_RDONLY;
}

/* real: the next definition of the function this one stands in for. */
#define REAL(name)                                                                                 \
	static __typeof__(&(name)) real;                                                           \
	if (real == NULL)                                                                          \
		real = (__typeof__(&(name)))dlsym(RTLD_NEXT, #name);

/* mode: the variadic argument of an open whose flags ask for one. */
#define TAKE_MODE(flags)                                                                           \
	mode_t mode = 0;                                                                           \
	if ((flags) & (O_CREAT | __O_TMPFILE)) {                                                   \
		va_list ap;                                                                        \
		va_start(ap, flags);                                                               \
		mode = (mode_t)va_arg(ap, int);                                                    \
		va_end(ap);                                                                        \
	}

#define OPEN_LIKE(name)                                                                            \
	int name(const char *path, int flags, ...)                                                 \
	{                                                                                          \
		REAL(name)                                                                         \
		TAKE_MODE(flags)                                                                   \
		if (real == NULL)                                                                  \
			return -1;                                                                 \
		return opened(__builtin_return_address(0), AT_FDCWD, path, flags,                  \
		    real(path, flags, mode));                                                      \
	}

#define OPENAT_LIKE(name)                                                                          \
	int name(int dirfd, const char *path, int flags, ...)                                      \
	{                                                                                          \
		REAL(name)                                                                         \
		TAKE_MODE(flags)                                                                   \
		if (real == NULL)                                                                  \
			return -1;                                                                 \
		return opened(__builtin_return_address(0), dirfd, path, flags,                     \
		    real(dirfd, path, flags, mode));                                               \
	}

#define FOPEN_LIKE(name)                                                                           \
	FILE *name(const char *path, const char *mode)                                             \
	{                                                                                          \
		REAL(name)                                                                         \
		FILE *f;                                                                           \
		if (real == NULL)                                                                  \
			return NULL;                                                               \
		f = real(path, mode);                                                              \
		opened(__builtin_return_address(0), AT_FDCWD, path,                                \
		    mode != NULL ? fopen_flags(mode) : O_RDONLY, f != NULL ? 0 : -1);              \
		return f;                                                                          \
	}

OPEN_LIKE(open)
OPEN_LIKE(open64)
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)
FOPEN_LIKE(fopen)
FOPEN_LIKE(fopen64)

DIR *
opendir(const char *path)
{
	REAL(opendir)
	DIR *d;
	int err;

	if (real == NULL)
		return NULL;
	d = real(path);
	err = errno;
	if (from_proc_macro(__builtin_return_address(0))) {
		if (d != NULL)
			emit(TRACE_DIR, NULL, path);
		else if (err == ENOENT || err == ENOTDIR)
			emit(TRACE_ABSENT, NULL, path);
	}
	errno = err;
	return d;
}

char *
getenv(const char *name)
{
	if (real_getenv == NULL)
		real_getenv = (char *(*)(const char *))dlsym(RTLD_NEXT, "getenv");
	if (from_proc_macro(__builtin_return_address(0)))
		emit(TRACE_ENV, NULL, name);
	return real_getenv != NULL ? real_getenv(name) : NULL;
}

char *
secure_getenv(const char *name)
{
	REAL(secure_getenv)
	if (from_proc_macro(__builtin_return_address(0)))
		emit(TRACE_ENV, NULL, name);
	return real != NULL ? real(name) : NULL;
}

/* A program run by a proc macro: written down before it runs. */
#define EXEC_LIKE(name)                                                                            \
	REAL(name)                                                                                 \
	if (from_proc_macro(__builtin_return_address(0)))                                          \
		emit(TRACE_EXEC, NULL, path);                                                      \
	if (real == NULL)                                                                          \
		return -1;

int
execve(const char *path, char *const argv[], char *const envp[])
{
	EXEC_LIKE(execve)
	return real(path, argv, envp);
}

int
execv(const char *path, char *const argv[])
{
	EXEC_LIKE(execv)
	return real(path, argv);
}

int
execvp(const char *path, char *const argv[])
{
	EXEC_LIKE(execvp)
	return real(path, argv);
}

int
execvpe(const char *path, char *const argv[], char *const envp[])
{
	EXEC_LIKE(execvpe)
	return real(path, argv, envp);
}

int
posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	EXEC_LIKE(posix_spawn)
	return real(pid, path, fa, attr, argv, envp);
}

int
posix_spawnp(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	EXEC_LIKE(posix_spawnp)
	return real(pid, path, fa, attr, argv, envp);
}

int
connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	REAL(connect)
	if (from_proc_macro(__builtin_return_address(0)))
		emit(TRACE_CONNECT, NULL, "");
	if (real == NULL)
		return -1;
	return real(fd, addr, len);
}
