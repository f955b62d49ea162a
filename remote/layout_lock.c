/* The import lock of one result: one byte of <store>/tmp/import.locks, the
 * byte at the offset the result's first six key bytes name, locked with an
 * exclusive open-file-description lock (F_OFD_SETLK) while one importer (a
 * fetcher, a prefetch thread) downloads and imports that result. Another
 * importer of the same result waits for it (bounded) and then finds the
 * result present: one transfer, not two. The kernel drops the lock when its
 * holder closes the file or dies, so a killed importer's lock is free at
 * once. One file for every result, made once and never removed: a prefetch
 * session makes and frees no file system inode per pack (on ext4 after many
 * deletions, each new inode was a scan). Two results whose six bytes agree
 * (one pair in 2^48) only wait for each other. OFD locks, not flock or
 * classic POSIX locks: they are per open, so two threads of one process
 * exclude each other too. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "remote/layout.h"

#define LOCK_POLL_US 5000
#define LOCK_KEY_BYTES 6

static int take_once(int fd, off_t at);
static off_t lock_offset(const char *res_hex);

/* The byte of the lock file that stands for res_hex; -1 when it is not a key. */
static off_t
lock_offset(const char *res_hex)
{
	unsigned char h[HASH_LEN];
	off_t at = 0;

	if (hash_from_hex(res_hex, h) < 0)
		return -1;
	for (int i = 0; i < LOCK_KEY_BYTES; i++)
		at = at << 8 | h[i];
	return at;
}

/* One try: 1 held, 0 busy, -1 cannot lock at all. */
static int
take_once(int fd, off_t at)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = at;
	fl.l_len = 1;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 1;
	return errno == EAGAIN || errno == EACCES ? 0 : -1;
}

int
layout_lock_take(const char *kache_dir, const char *res_hex, int64_t deadline_ms, int *fd)
{
	char *path = xasprintf("%s/tmp/import.locks", kache_dir);
	off_t at = lock_offset(res_hex);
	int rc = -1, waited = 0;

	*fd = at < 0 ? -1 : open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd >= 0) {
		while ((rc = take_once(*fd, at)) == 0 && clock_ms() < deadline_ms) {
			waited = 1;
			usleep(LOCK_POLL_US);
		}
	}
	if (rc < 0)
		log_warn("remote: import lock %s (%s)", path, res_hex);
	else if (rc == 0)
		log_info("remote: %s is still being imported by another process; not waiting "
		         "longer",
		    res_hex);
	else if (waited)
		log_debug("remote: joined the import of %s", res_hex);
	if (rc != 1 && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	free(path);
	return rc == 1 ? 0 : rc == 0 ? 1 : -1;
}

void
layout_lock_release(int fd)
{
	if (fd >= 0)
		close(fd); /* the lock goes with the open file description */
}
