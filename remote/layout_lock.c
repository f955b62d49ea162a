/* The import lock of one result: <store>/tmp/import-<result>.lock, an
 * exclusive flock held while one process (a fetcher, a prefetch thread)
 * downloads and imports that result. Another importer of the same result
 * waits for it (bounded) and then finds the result present: one transfer,
 * not two. The kernel drops a flock when its holder dies, so a killed
 * importer's lock is free at once; the holder unlinks the file before it
 * lets go, and a waiter that gets the lock of a file no longer under that
 * name takes the new one (the usual flock-and-unlink dance). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "remote/layout.h"

#define LOCK_POLL_US 5000

static int take_once(const char *path, int *fd);

/* One try: 1 held (in *fd), 0 busy, -1 cannot lock at all (logged). */
static int
take_once(const char *path, int *fd)
{
	struct stat a, b;

	*fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0) {
		log_warn("remote: import lock %s", path);
		return -1;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		close(*fd);
		*fd = -1;
		return errno == EWOULDBLOCK ? 0 : -1;
	}
	if (fstat(*fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	    a.st_dev == b.st_dev)
		return 1;
	close(*fd); /* its holder unlinked it as we took it: take the new one */
	*fd = -1;
	return 0;
}

int
layout_lock_take(const char *kache_dir, const char *res_hex, int64_t deadline_ms, int *fd)
{
	char *path = xasprintf("%s/tmp/import-%s.lock", kache_dir, res_hex);
	int rc, waited = 0;

	while ((rc = take_once(path, fd)) == 0 && clock_ms() < deadline_ms) {
		waited = 1;
		usleep(LOCK_POLL_US);
	}
	if (rc == 0)
		log_info("remote: %s is still being imported by another process; not waiting "
		         "longer",
		    res_hex);
	else if (rc == 1 && waited)
		log_debug("remote: joined the import of %s", res_hex);
	free(path);
	return rc == 1 ? 0 : rc == 0 ? 1 : -1;
}

void
layout_lock_release(const char *kache_dir, const char *res_hex, int fd)
{
	char *path;

	if (fd < 0)
		return;
	path = xasprintf("%s/tmp/import-%s.lock", kache_dir, res_hex);
	unlink(path); /* before the lock goes: a waiter then sees the name gone */
	free(path);
	close(fd);
}
