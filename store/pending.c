/* Pending-store markers (see pending.h). */
#include "store/pending.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"

#define PREFIX "pending-"
#define POLL_US 5000

enum probe { PENDING_NONE, PENDING_LIVE, PENDING_STALE };

static char *marker_path(const char *dir, const char *hex);
static enum probe probe(const char *path);

static char *
marker_path(const char *dir, const char *hex)
{
	return xasprintf("%s/tmp/" PREFIX "%s", dir, hex);
}

int
store_pending_begin(const char *dir, const unsigned char inv[HASH_LEN])
{
	char hex[HASH_HEX_LEN + 1], pid[32], *path, *tmp;
	int fd, n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());

	hash_to_hex(inv, hex);
	path = marker_path(dir, hex);
	tmp = xasprintf("%s/tmp/." PREFIX "%s.%ld", dir, hex, (long)getpid());
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 &&
	    (flock(fd, LOCK_EX | LOCK_NB) < 0 || fs_write_all(fd, pid, (size_t)n) < 0 ||
	        rename(tmp, path) < 0)) {
		unlink(tmp);
		close(fd);
		fd = -1;
	}
	free(tmp);
	free(path);
	return fd;
}

void
store_pending_end(const char *dir, const unsigned char inv[HASH_LEN], int fd)
{
	char hex[HASH_HEX_LEN + 1], *path;
	struct stat a, b;

	hash_to_hex(inv, hex);
	path = marker_path(dir, hex);
	if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	    a.st_dev == b.st_dev)
		unlink(path);
	close(fd);
	free(path);
}

/* Whether the marker at path names a live writer. A stale one is removed,
 * unless a new writer's marker has replaced it meanwhile. Opened without
 * following links or blocking; anything but a regular file is stale too. */
static enum probe
probe(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	enum probe r = PENDING_STALE;
	struct stat a, b;

	if (fd < 0)
		return errno == ENOENT ? PENDING_NONE : PENDING_STALE;
	if (fstat(fd, &a) == 0 && S_ISREG(a.st_mode) && flock(fd, LOCK_SH | LOCK_NB) < 0 &&
	    errno == EWOULDBLOCK)
		r = PENDING_LIVE;
	if (r == PENDING_STALE && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	    a.st_dev == b.st_dev && unlink(path) == 0)
		log_info("removed a stale pending-store marker %s (its writer is gone)", path);
	close(fd);
	return r;
}

int
store_pending_wait(const char *dir, const unsigned char inv[HASH_LEN], int64_t deadline_ms)
{
	char hex[HASH_HEX_LEN + 1], *path;
	int waited = 0;

	hash_to_hex(inv, hex);
	path = marker_path(dir, hex);
	while (probe(path) == PENDING_LIVE) {
		waited = 1;
		if (clock_ms() >= deadline_ms)
			break;
		usleep(POLL_US);
	}
	free(path);
	return waited;
}

int
store_pending_live(const char *dir)
{
	char *tdir = xasprintf("%s/tmp", dir), *path;
	struct dirent *de;
	DIR *d = opendir(tdir);
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, PREFIX, strlen(PREFIX)) != 0 ||
		    !hash_hex_valid(de->d_name + strlen(PREFIX)))
			continue;
		path = xasprintf("%s/%s", tdir, de->d_name);
		n += probe(path) == PENDING_LIVE;
		free(path);
	}
	if (d != NULL)
		closedir(d);
	free(tdir);
	return n;
}
