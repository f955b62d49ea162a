/* The directory transport (a shared disk, NFS): objects are files under the
 * root. Small objects are written to a temporary name in their directory and
 * renamed; packs are built beside the objects, so that their put is a rename. */
#include "remote/transport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"

static enum remote_result dir_open(struct remote *r, const char *name, const char *tmpdir, int *fd,
    int *vouched);
static enum remote_result dir_read(struct remote *r, const char *name, char *buf, size_t cap,
    size_t *len, int *vouched);
static enum remote_result dir_put(struct remote *r, const char *name, const void *data, size_t n);
static enum remote_result dir_put_file(struct remote *r, const char *path, const char *name,
    int replace);
static enum remote_result dir_list(struct remote *r, const char *prefix, remote_list_fn fn,
    void *arg);
static int walk(const char *root, const char *rel, const char *prefix, int depth, remote_list_fn fn,
    void *arg);

/* Deepest folder the layout has below the root (packs/<crate>/), with room. */
#define DIR_LIST_DEPTH 4

static const struct remote_transport dir_transport = { "dir", dir_open, dir_read, dir_put,
	dir_put_file, dir_list, NULL };

int
remote_dir_check(const struct config *cfg, char *err, size_t errlen)
{
	if (config_get(cfg, "remote.path")[0] == '/')
		return 0;
	snprintf(err, errlen,
	    "remote.type = dir needs remote.path, an absolute directory "
	    "(KACHE_REMOTE_PATH)");
	return -1;
}

struct remote *
remote_dir_open(const struct config *cfg, char *err, size_t errlen)
{
	const char *path = config_get(cfg, "remote.path");
	struct remote *r;

	if (fs_mkdir_p(path, 0755) < 0) {
		snprintf(err, errlen, "remote.path %s: %s", path, strerror(errno));
		return NULL;
	}
	r = xcalloc(1, sizeof *r);
	r->t = &dir_transport;
	r->path = xstrdup(path);
	r->stagedir = r->path;
	return r;
}

static enum remote_result
dir_open(struct remote *r, const char *name, const char *tmpdir, int *fd, int *vouched)
{
	char *p = path_join(r->path, name);
	enum remote_result rr = REMOTE_OK;

	(void)tmpdir;
	if (vouched != NULL)
		*vouched = 0; /* the signing layer, when any, vouches */
	if ((*fd = fs_open_regular(p, O_RDONLY, 0)) < 0) {
		rr = errno == ENOENT ? REMOTE_MISS : REMOTE_FAILED;
		if (rr == REMOTE_FAILED)
			log_warn("remote: open %s", p);
	}
	free(p);
	return rr;
}

/* Reads root/name whole into buf (larger than cap: *len = cap + 1). */
static enum remote_result
dir_read(struct remote *r, const char *name, char *buf, size_t cap, size_t *len, int *vouched)
{
	enum remote_result rr;
	int fd;

	if ((rr = dir_open(r, name, NULL, &fd, vouched)) != REMOTE_OK)
		return rr;
	*len = 0;
	if (fs_read_into(fd, buf, cap, len) < 0) {
		if (errno == EFBIG) {
			*len = cap + 1;
		} else {
			log_warn("remote: reading %s/%s", r->path, name);
			rr = REMOTE_FAILED;
		}
	}
	close(fd);
	return rr;
}

/* Writes root/name atomically, creating its directory. */
static enum remote_result
dir_put(struct remote *r, const char *name, const void *data, size_t n)
{
	char *p = path_join(r->path, name), *d = path_dirname(p);
	enum remote_result rr = REMOTE_OK;

	if (fs_mkdir_p(d, 0755) < 0 || fs_write_atomic(p, data, n, 0644) < 0) {
		log_warn("remote: write %s", p);
		rr = REMOTE_FAILED;
	}
	free(d);
	free(p);
	return rr;
}

/* Renames the pack built in the root into place, unless it is there and
 * not to be replaced (a rename over it: a reader has the old or the new). */
static enum remote_result
dir_put_file(struct remote *r, const char *path, const char *name, int replace)
{
	char *full = path_join(r->path, name), *dir = path_dirname(full);
	enum remote_result rr = REMOTE_OK;
	struct stat st;

	if ((replace || stat(full, &st) < 0) &&
	    (fs_mkdir_p(dir, 0755) < 0 || rename(path, full) < 0)) {
		log_warn("remote: write %s", full);
		rr = REMOTE_FAILED;
	}
	free(dir);
	free(full);
	return rr;
}

/* Lists root/rel (rel "" or ending in '/'), descending at most depth levels.
 * Temporaries (a name starting with '.') and anything not a regular file or
 * directory are skipped. 1 when fn stopped the walk, -1 on a read error, 0. */
static int
walk(const char *root, const char *rel, const char *prefix, int depth, remote_list_fn fn, void *arg)
{
	char *dir = xasprintf("%s/%s", root, rel);
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL) {
		rc = errno == ENOENT || errno == ENOTDIR ? 0 : -1;
		if (rc < 0)
			log_warn("remote: list %s", dir);
		free(dir);
		return rc;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char *name = xasprintf("%s%s", rel, de->d_name);
		size_t n = strlen(name);
		struct stat st;

		if (de->d_name[0] != '.' &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode) && depth > 0 &&
			    strncmp(name, prefix, n < strlen(prefix) ? n : strlen(prefix)) == 0) {
				char *sub = xasprintf("%s/", name);

				rc = walk(root, sub, prefix, depth - 1, fn, arg);
				free(sub);
			} else if (S_ISREG(st.st_mode) &&
			    strncmp(name, prefix, strlen(prefix)) == 0) {
				rc = fn(name, (uint64_t)st.st_size, clock_ts_ms(&st.st_mtim),
				         arg) != 0;
			}
		}
		free(name);
	}
	closedir(d);
	free(dir);
	return rc;
}

/* Walks from the deepest folder the prefix names whole. */
static enum remote_result
dir_list(struct remote *r, const char *prefix, remote_list_fn fn, void *arg)
{
	const char *slash = strrchr(prefix, '/');
	char *start = xstrndup(prefix, slash ? (size_t)(slash - prefix + 1) : 0);
	int rc;

	if (strstr(prefix, "..") != NULL) {
		free(start);
		return REMOTE_FAILED;
	}
	rc = walk(r->path, start, prefix, DIR_LIST_DEPTH, fn, arg);
	free(start);
	return rc < 0 ? REMOTE_FAILED : REMOTE_OK;
}
