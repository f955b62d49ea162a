/* One-time changes to a store an older kache left, each marked done in the
 * index ('m' keys) so that it runs once per store. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "index/internal.h"

#define BLOB_MODES_MARK "mblob-modes"

struct modes_walk {
	uid_t uid;
	long changed, failed;
};

static int
writable_cb(const char *hex, const char *path, const struct stat *st, void *arg)
{
	struct modes_walk *w = arg;

	(void)hex;
	if ((st->st_mode & S_IWUSR) != 0 || st->st_uid != w->uid)
		return 0;
	if (chmod(path, (st->st_mode & 07777) | S_IWUSR) == 0)
		w->changed++;
	else if (errno != ENOENT) /* evicted since the walk saw it */
		w->failed++;
	return 0;
}

long
index_upgrade_blob_modes(struct index *ix)
{
	struct modes_walk w = { .uid = geteuid() };
	struct buf v;
	unsigned char when[8];
	struct ix_txn t;
	int rc;

	if (ix->read_only)
		return 0;
	buf_init(&v);
	rc = ix_get(ix, NULL, BLOB_MODES_MARK, sizeof BLOB_MODES_MARK - 1, &v);
	buf_free(&v);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (ix_walk(ix, "blobs", writable_cb, &w) < 0)
		return -1;
	if (w.failed > 0) {
		log_warnx("index: %ld read-only blobs of %s kept their mode (chmod failed); "
		          "trying again at the next start",
		    w.failed, ix->dir);
		return w.changed;
	}
	put_be64(when, (uint64_t)clock_wall_ms());
	ix_txn_begin(&t, ix);
	ix_put(&t, BLOB_MODES_MARK, sizeof BLOB_MODES_MARK - 1, when, sizeof when);
	if (ix_txn_commit(&t) < 0)
		return -1;
	if (w.changed > 0)
		log_info("index: gave %ld read-only blobs of %s their owner's write bit (an older "
		         "kache made them so; rustc cannot replace an output linked to one)",
		    w.changed, ix->dir);
	return w.changed;
}
