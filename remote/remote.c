/* Opening the configured remote, and the two operations the workers call.
 * Each kind of remote is one row of the table below. */
#include "remote/remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/path.h"
#include "remote/layout.h"
#include "remote/planner_client.h"
#include "remote/transport.h"
#include "store/pack.h"

struct backend {
	const char *type;
	int (*check)(const struct config *cfg, char *err, size_t errlen);
	struct remote *(*open)(const struct config *cfg, char *err, size_t errlen);
};

static void import_writes(const struct config *cfg);
static const struct backend *backend_find(const struct config *cfg, char *err, size_t errlen);
#ifdef KACHE_FAULT_INJECTION
static int sink_check(const struct config *cfg, char *err, size_t errlen);
static struct remote *sink_open(const struct config *cfg, char *err, size_t errlen);
static enum remote_result sink_put(struct remote *r, const char *key);
static enum remote_result sink_fetch(struct remote *r, const char *key);
#endif

static const struct backend backends[] = {
	{ "dir", remote_dir_check, remote_dir_open },
	{ "s3", remote_s3_check, remote_s3_open },
#ifdef KACHE_FAULT_INJECTION
	{ "testsink", sink_check, sink_open },
#endif
};

#ifdef KACHE_FAULT_INJECTION
static int
sink_check(const struct config *cfg, char *err, size_t errlen)
{
	if (config_get(cfg, "remote.path")[0] != '\0')
		return 0;
	snprintf(err, errlen, "remote.type = testsink needs remote.path");
	return -1;
}

static struct remote *
sink_open(const struct config *cfg, char *err, size_t errlen)
{
	struct remote *r = xcalloc(1, sizeof *r);

	(void)err;
	(void)errlen;
	r->path = xstrdup(config_get(cfg, "remote.path"));
	r->testsink = 1;
	return r;
}

/* Test builds only: records a marker file per uploaded key. Not a cache. */
static enum remote_result
sink_put(struct remote *r, const char *key)
{
	char *p;
	int rc;

	if (!hash_hex_valid(key))
		return REMOTE_FAILED;
	p = xasprintf("%s/%s", r->path, key);
	rc = fs_write_atomic(p, "", 0, 0644);
	free(p);
	return rc == 0 ? REMOTE_OK : REMOTE_FAILED;
}

/* Answers whether a marker exists; imports nothing. */
static enum remote_result
sink_fetch(struct remote *r, const char *key)
{
	char *p;
	int found;

	if (!hash_hex_valid(key))
		return REMOTE_FAILED;
	if (getenv("KACHE_TEST_SINK_DELAY_MS") != NULL)
		/* NOLINTNEXTLINE(cert-err34-c): a fault-injection knob set by the tests */
		usleep((useconds_t)atoi(getenv("KACHE_TEST_SINK_DELAY_MS")) * 1000);
	p = xasprintf("%s/%s", r->path, key);
	found = access(p, F_OK) == 0;
	free(p);
	return found ? REMOTE_OK : REMOTE_MISS;
}
#endif

/* The row for remote.type; NULL with err set when there is none. */
static const struct backend *
backend_find(const struct config *cfg, char *err, size_t errlen)
{
	const char *type = config_get(cfg, "remote.type");

	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (strcmp(backends[i].type, type) == 0)
			return &backends[i];
	snprintf(err, errlen, "remote.type = %s is not one of none, dir, s3", type);
	return NULL;
}

int
remote_check(const struct config *cfg, char *err, size_t errlen)
{
	const struct backend *b;

	if (!config_has_remote(cfg))
		return 0;
	if ((b = backend_find(cfg, err, errlen)) == NULL || b->check(cfg, err, errlen) < 0)
		return -1;
	return sign_config_check(cfg, err, errlen);
}

struct remote *
remote_open(const struct config *cfg, char *err, size_t errlen)
{
	const struct backend *b = backend_find(cfg, err, errlen);
	struct remote *r;

	if (b == NULL || b->check(cfg, err, errlen) < 0 || sign_config_check(cfg, err, errlen) < 0)
		return NULL;
	if ((r = b->open(cfg, err, errlen)) != NULL && sign_wrap(r, cfg, err, errlen) < 0)
		remote_free(&r);
	if (r != NULL && config_get_bool(cfg, "remote.read_only"))
		r->read_only = 1; /* any remote; s3.read_only is the S3 one's own */
	if (r != NULL)
		r->bundles = config_get_bool(cfg, "prefetch.bundles");
	if (r != NULL)
		r->planner = planner_client_open(cfg);
	return r;
}

/* cache.import_writes for this worker's imports (store/pack.h). */
static void
import_writes(const struct config *cfg)
{
	const char *v = config_get(cfg, "cache.import_writes");
	enum pack_writes w = PACK_WRITES_AUTO;

	if (pack_writes_parse(v, &w) < 0)
		log_warnx("cache.import_writes = \"%s\" is none of auto, buffered, direct; using "
		          "auto",
		    v ? v : "");
	pack_writes_set(w);
}

int
remote_open_for_worker(const struct config *cfg, struct remote **r)
{
	char err[256];

	*r = NULL;
	import_writes(cfg);
	if (config_has_remote(cfg) && (*r = remote_open(cfg, err, sizeof err)) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

int
remote_clock_skew(struct remote *r, long *seconds)
{
	return r->clock_skew ? r->clock_skew(r, seconds) : -1;
}

void
remote_fail_fast(struct remote *r, int on)
{
	if (r->fail_fast)
		r->fail_fast(r, on);
}

int
remote_unreachable(const struct remote *r)
{
	return r->unreachable ? r->unreachable(r) : 0;
}

void
remote_free(struct remote **rp)
{
	struct remote *r = *rp;

	if (r == NULL)
		return;
	if (r->t != NULL && r->t->close != NULL)
		r->t->close(r);
	planner_client_free(&r->planner);
	free(r->path);
	free(r);
	*rp = NULL;
}

struct planner_client *
remote_planner(const struct remote *r)
{
	return r->planner;
}

int
remote_bundles(const struct remote *r)
{
	return r->bundles;
}

int
remote_read_only(const struct remote *r)
{
	return r->read_only;
}

enum remote_result
remote_put(struct remote *r, const char *kache_dir, const char *res_hex)
{
#ifdef KACHE_FAULT_INJECTION
	if (r->testsink)
		return sink_put(r, res_hex);
#endif
	return layout_put(r, kache_dir, res_hex);
}

enum remote_result
remote_list(struct remote *r, const char *prefix, remote_list_fn fn, void *arg)
{
	if (r->t == NULL || r->off) /* the test sink keeps no layout */
		return REMOTE_FAILED;
	return r->t->list(r, prefix, fn, arg);
}

void
remote_memory_release(void)
{
	pack_memory_release();
}

enum remote_result
remote_fetch(struct remote *r, const char *kache_dir, const char *inv_hex, int64_t deadline_ms)
{
#ifdef KACHE_FAULT_INJECTION
	if (r->testsink)
		return sink_fetch(r, inv_hex);
#endif
	return layout_fetch(r, kache_dir, inv_hex, deadline_ms);
}

void
remote_set_import_source(struct remote *r, const char *src)
{
	snprintf(r->import_source, sizeof r->import_source, "%s", src ? src : "");
}

enum remote_result
remote_import_pack(struct remote *r, const char *kache_dir, const char *crate, const char *res_hex)
{
	if (r->t == NULL) /* the test sink keeps no packs */
		return REMOTE_MISS;
	return layout_import_pack(r, kache_dir, crate, res_hex);
}

void
remote_format_share(struct remote **r, int n, const char *kache_dir)
{
	char *tmpdir;

	if (n < 1 || r[0]->t == NULL)
		return;
	if (!r[0]->off && !r[0]->format_seen) {
		tmpdir = path_join(kache_dir, "tmp");
		(void)layout_format_check(r[0], tmpdir, 0);
		free(tmpdir);
	}
	for (int i = 1; i < n; i++) {
		r[i]->format_seen |= r[0]->format_seen;
		r[i]->off |= r[0]->off;
	}
}
