/* The remote cache as the uploader and fetcher see it. Phase one has only
 * "none" (no remote: the supervisor queues no uploads and answers fetches
 * with a miss) and, in test builds, "testsink" (a directory of marker files
 * that records what was uploaded; it moves no store content). The directory
 * and S3 remotes plug in here as further rows of remote_open(). */
#ifndef KACHE_PROTO_REMOTE_H
#define KACHE_PROTO_REMOTE_H

#include "common/config.h"

/* REMOTE_OFF: refused for good in this process (403: credentials or clock
 * skew; no bucket): a retry cannot succeed until the configuration changes. */
enum remote_result { REMOTE_OK = 0, REMOTE_MISS, REMOTE_FAILED, REMOTE_OFF };

struct remote;

struct remote_ops {
	const char *name;
	/* Makes the result (and what it references) present in the remote. */
	enum remote_result (*put)(struct remote *r, const char *kache_dir, const char *result_key);
	/* Imports the remote result(s) of an invocation key into the local store. */
	enum remote_result (*fetch)(struct remote *r, const char *kache_dir, const char *inv_key);
	void (*close)(struct remote *r);
};

struct remote {
	const struct remote_ops *ops;
	char *path;  /* the directory, or the bucket (for messages) */
	void *priv;  /* the backend's own state */
};

/* The remote the config names. NULL with a sentence in err when it is unknown
 * or not available in this build: a configuration error. *none is set when
 * remote.type is "none" (then NULL is returned and that is no error). */
struct remote *remote_open(const struct config *cfg, int *none, char *err, size_t errlen);
/* For a worker: the remote cfg names in *r (NULL when none is configured).
 * -1, logged, when the configuration names a remote that cannot be opened: a
 * configuration error. */
int remote_open_for_worker(const struct config *cfg, struct remote **r);
/* Takes ownership; NULLs *r. */
void remote_free(struct remote **r);
/* 1 when remote.type asks for a remote at all. */
int remote_configured(const struct config *cfg);

#endif
