#include "proto/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"

#define SUN_PATH_MAX 107 /* sizeof sun_path minus the NUL */

static int lock_held(const char *path);
static int fill(char *dst, const char *a, const char *b);
static int short_sockdir(struct proto_paths *p, const char *kache_dir);
static int check_dir(const char *dir, int create, char *err, size_t errlen);

static int
fill(char *dst, const char *a, const char *b)
{
	int n = snprintf(dst, PROTO_PATH_MAX, "%s%s", a, b);

	return n < 0 || n >= PROTO_PATH_MAX ? -1 : 0;
}

/* A short per-store directory for sockets, named by a hash of the store path. */
static int
short_sockdir(struct proto_paths *p, const char *kache_dir)
{
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	hash_buffer(kache_dir, strlen(kache_dir), h);
	hash_to_hex(h, hex);
	hex[16] = '\0';
	if (xdg != NULL && xdg[0] == '/' && strlen(xdg) + 40 < SUN_PATH_MAX)
		snprintf(p->sockdir, sizeof p->sockdir, "%s/kache/%s", xdg, hex);
	else
		snprintf(p->sockdir, sizeof p->sockdir, "/tmp/kache-%ld/%s", (long)getuid(), hex);
	return 0;
}

int
proto_paths_init(struct proto_paths *p, const char *kache_dir)
{
	memset(p, 0, sizeof *p);
	if (fill(p->rundir, kache_dir, "/run") || fill(p->lock, p->rundir, "/supervisor.lock") ||
	    fill(p->spawnlock, p->rundir, "/spawn.lock") ||
	    fill(p->backoff, p->rundir, "/spawn.backoff") ||
	    fill(p->pidfile, p->rundir, "/supervisor.pid") || fill(p->logdir, kache_dir, "/logs")) {
		log_warnx("store path too long: %s", kache_dir);
		return -1;
	}
	snprintf(p->sockdir, sizeof p->sockdir, "%s", p->rundir);
	if (strlen(p->sockdir) + sizeof "/workers" > SUN_PATH_MAX)
		short_sockdir(p, kache_dir);
	if (strlen(p->sockdir) + sizeof "/workers" > SUN_PATH_MAX) {
		log_warnx("no socket path short enough for %s", kache_dir);
		return -1;
	}
	snprintf(p->ctl, sizeof p->ctl, "ipc://%.200s/ctl", p->sockdir);
	snprintf(p->wrk, sizeof p->wrk, "ipc://%.200s/workers", p->sockdir);
	snprintf(p->pub, sizeof p->pub, "ipc://%.200s/events", p->sockdir);
	return 0;
}

const char *
proto_endpoint_file(const char *endpoint)
{
	return strncmp(endpoint, "ipc://", 6) == 0 ? endpoint + 6 : endpoint;
}

/* A directory we may put sockets in: ours, a directory (not a link), 0700-ish. */
static int
check_dir(const char *dir, int create, char *err, size_t errlen)
{
	struct stat st;

	if (create && fs_mkdir_p(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) == -1) {
		snprintf(err, errlen, "cannot use %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory; remove it", dir);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen,
		    "unsafe socket directory %s: owned by uid %ld, not by you (uid %ld)", dir,
		    (long)st.st_uid, (long)geteuid());
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		    "unsafe socket directory %s: mode %04o lets others in; run `chmod 700 %s`", dir,
		    (unsigned)(st.st_mode & 07777), dir);
		return -1;
	}
	return 0;
}

int
proto_paths_prepare(const struct proto_paths *p, int create, char *err, size_t errlen)
{
	char parent[PROTO_PATH_MAX];
	char *slash;

	if (check_dir(p->rundir, create, err, errlen) == -1)
		return -1;
	if (strcmp(p->sockdir, p->rundir) == 0)
		return 0;
	/* the short dir's parent (/tmp/kache-<uid>) is ours alone too */
	snprintf(parent, sizeof parent, "%s", p->sockdir);
	if ((slash = strrchr(parent, '/')) != NULL)
		*slash = '\0';
	if (check_dir(parent, create, err, errlen) == -1)
		return -1;
	return check_dir(p->sockdir, create, err, errlen);
}

int
proto_supervisor_running(const struct proto_paths *p)
{
	return lock_held(p->lock);
}

int
proto_supervisor_starting(const struct proto_paths *p)
{
	return lock_held(p->spawnlock);
}

/* 1 when another process holds an exclusive flock on path. */
static int
lock_held(const char *path)
{
	int fd, held = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == -1)
		held = errno == EWOULDBLOCK;
	close(fd);
	return held;
}
