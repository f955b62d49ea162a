#include "proto/remote.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "remote/remote_dir.h"
#include "remote/remote_s3.h"

#ifdef KACHE_FAULT_INJECTION
static enum remote_result sink_put(struct remote *r, const char *kache_dir, const char *key);
static enum remote_result sink_fetch(struct remote *r, const char *kache_dir, const char *key);

static const struct remote_ops sink_ops = { "testsink", sink_put, sink_fetch, NULL };

/* Test builds only: records a marker file per uploaded key. Not a cache. */
static enum remote_result
sink_put(struct remote *r, const char *kache_dir, const char *key)
{
	char *p;
	int rc;

	(void)kache_dir;
	if (!hash_hex_valid(key))
		return REMOTE_FAILED;
	p = xasprintf("%s/%s", r->path, key);
	rc = fs_write_atomic(p, "", 0, 0644);
	free(p);
	return rc == 0 ? REMOTE_OK : REMOTE_FAILED;
}

/* Answers whether a marker exists; imports nothing (there is no store yet). */
static enum remote_result
sink_fetch(struct remote *r, const char *kache_dir, const char *key)
{
	char *p;
	int found;

	(void)kache_dir;
	if (!hash_hex_valid(key))
		return REMOTE_FAILED;
	if (getenv("KACHE_TEST_SINK_DELAY_MS") != NULL)
		usleep((useconds_t)atoi(getenv("KACHE_TEST_SINK_DELAY_MS")) * 1000);
	p = xasprintf("%s/%s", r->path, key);
	found = access(p, F_OK) == 0;
	free(p);
	return found ? REMOTE_OK : REMOTE_MISS;
}
#endif

int
remote_configured(const struct config *cfg)
{
	return strcmp(config_get(cfg, "remote.type"), "none") != 0 &&
	    config_get(cfg, "remote.type")[0] != '\0';
}

struct remote *
remote_open(const struct config *cfg, int *none, char *err, size_t errlen)
{
	const char *type = config_get(cfg, "remote.type");
	struct remote *r;

	*none = !remote_configured(cfg);
	if (*none)
		return NULL;
#ifdef KACHE_FAULT_INJECTION
	if (strcmp(type, "testsink") == 0) {
		if (config_get(cfg, "remote.path")[0] == '\0') {
			snprintf(err, errlen, "remote.type = testsink needs remote.path");
			return NULL;
		}
		r = xcalloc(1, sizeof *r);
		r->ops = &sink_ops;
		r->path = xstrdup(config_get(cfg, "remote.path"));
		return r;
	}
#else
	(void)r;
#endif
	if (strcmp(type, "dir") == 0)
		return remote_dir_open(cfg, err, errlen);
	if (strcmp(type, "s3") == 0)
		return remote_s3_open(cfg, err, errlen);
	snprintf(err, errlen, "remote.type = %s is not available in this build", type);
	return NULL;
}

int
remote_open_for_worker(const struct config *cfg, struct remote **r)
{
	char err[256];
	int none;

	*r = remote_open(cfg, &none, err, sizeof err);
	if (*r == NULL && !none) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

void
remote_free(struct remote **rp)
{
	struct remote *r = *rp;

	if (r == NULL)
		return;
	if (r->ops->close)
		r->ops->close(r);
	free(r->path);
	free(r);
	*rp = NULL;
}
