#include "workers/uploader/uploader.h"

#include "common/config.h"
#include "common/exit.h"
#include "common/hash.h"
#include "common/log.h"
#include "proto/worker.h"
#include "remote/remote.h"
#include "store/store.h"

struct uploader {
	const char *kache_dir;
	struct remote *remote;
};

static void upload_job(void *arg, const struct msg *job, struct msg *done);

/* One upload: the remote must have the object before the intent goes, so a
 * crash in between only repeats the upload. */
static void
upload_job(void *arg, const struct msg *job, struct msg *done)
{
	struct uploader *u = arg;
	enum remote_result r;

	if (job->type != MSG_JOB_UPLOAD || !hash_hex_valid(job->key)) {
		msg_set_text(done, "not an upload job");
		return;
	}
	if (u->remote == NULL) {
		msg_set_text(done, "no remote configured");
		return;
	}
	r = remote_put(u->remote, u->kache_dir, job->key);
	if (r == REMOTE_OFF) {
		log_info("upload %s failed: the remote is switched off", job->key);
		msg_set_text(done,
		    "the remote refused access (credentials, clock skew or no "
		    "bucket; see the uploader's log)");
		done->status = JOB_REMOTE_OFF;
		return;
	}
	if (r != REMOTE_OK) {
		/* the remote said why, once per kind; not once per crate here */
		log_info("upload %s failed", job->key);
		msg_set_text(done, "remote put failed");
		return;
	}
	store_intent_remove(u->kache_dir, job->key);
	log_info("uploaded %s", job->key);
	done->status = JOB_OK;
}

int
uploader_main(const struct config *cfg, unsigned index)
{
	static const struct proto_worker_ops ops = { .job = upload_job };
	const char *kache_dir = config_get(cfg, "cache.dir");
	struct uploader u = { .kache_dir = kache_dir };
	int rc;

	if (remote_open_for_worker(cfg, &u.remote) < 0)
		return KACHE_EXIT_CONFIG;
	rc = proto_worker_run(kache_dir, "uploader", index, &ops, &u);
	remote_free(&u.remote);
	return rc;
}
