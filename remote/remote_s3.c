/* The S3 transport: the layout of remote/layout.h in an S3 bucket (AWS,
 * MinIO, Ceph, R2, ...), under s3.prefix, through s3/. Objects are downloaded
 * into unnamed files in the store's tmp/ and uploaded from files there.
 *
 * Failures: 404 is a miss. 403 (credentials, clock skew) and a missing bucket
 * switch the remote off for this process with one clear log line: nothing more
 * is sent, fetches miss, uploads fail and their intents stay for a later run.
 * Transient errors are retried inside s3/ and then reported as failures; each
 * kind of failure is logged once per process, not once per crate. */
#include "remote/transport.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "s3/s3.h"

struct s3_remote {
	struct s3_client *c;
	unsigned logged; /* bit per enum s3_result already logged */
};

static enum remote_result failed(struct remote *r, enum s3_result rc, const char *method,
    const char *name);
static enum remote_result s3r_open(struct remote *r, const char *name, const char *tmpdir, int *fd,
    int *vouched);
static enum remote_result s3r_read(struct remote *r, const char *name, char *buf, size_t cap,
    size_t *len, int *vouched);
static enum remote_result s3r_put(struct remote *r, const char *name, const void *data, size_t n);
static enum remote_result s3r_put_file(struct remote *r, const char *path, const char *name,
    int replace);
static enum remote_result s3r_list(struct remote *r, const char *prefix, remote_list_fn fn,
    void *arg);
static void s3r_close(struct remote *r);
static int s3r_clock_skew(struct remote *r, long *seconds);
static void s3r_fail_fast(struct remote *r, int on);
static int s3r_unreachable(const struct remote *r);

static const struct remote_transport s3_transport = { "s3", s3r_open, s3r_read, s3r_put,
	s3r_put_file, s3r_list, s3r_close };

int
remote_s3_check(const struct config *cfg, char *err, size_t errlen)
{
	struct buf e;
	int rc = 0;

	if (config_get(cfg, "s3.bucket")[0] == '\0') {
		snprintf(err, errlen, "remote.type = s3 needs s3.bucket (KACHE_S3_BUCKET)");
		return -1;
	}
	buf_init(&e);
	if (s3_config_check(cfg, &e) < 0) {
		snprintf(err, errlen, "s3: %s", e.p ? e.p : "bad settings");
		rc = -1;
	}
	buf_free(&e);
	return rc;
}

/* Called after remote_s3_check: what fails here is the client itself. */
struct remote *
remote_s3_open(const struct config *cfg, char *err, size_t errlen)
{
	struct s3_settings st;
	struct s3_remote *x;
	struct remote *r;
	struct buf e;

	buf_init(&e);
	x = xcalloc(1, sizeof *x);
	if (s3_config_from(cfg, &st, &e) == 0) {
		x->c = s3_client_new(&st, &e);
		s3_settings_clear(&st);
	}
	if (x->c == NULL) {
		snprintf(err, errlen, "s3: %s", e.p ? e.p : "cannot create the client");
		buf_free(&e);
		free(x);
		return NULL;
	}
	buf_free(&e);
	r = xcalloc(1, sizeof *r);
	r->t = &s3_transport;
	r->priv = x;
	r->path = xstrdup(config_get(cfg, "s3.bucket"));
	r->read_only = config_get_bool(cfg, "s3.read_only");
	r->clock_skew = s3r_clock_skew;
	r->fail_fast = s3r_fail_fast;
	r->unreachable = s3r_unreachable;
	return r;
}

static void
s3r_fail_fast(struct remote *r, int on)
{
	struct s3_remote *x = r->priv;

	s3_client_fail_fast(x->c, on);
}

static int
s3r_unreachable(const struct remote *r)
{
	const struct s3_remote *x = r->priv;

	return s3_client_unreachable(x->c);
}

static int
s3r_clock_skew(struct remote *r, long *seconds)
{
	struct s3_remote *x = r->priv;

	return s3_client_clock_skew(x->c, seconds);
}

static void
s3r_close(struct remote *r)
{
	struct s3_remote *x = r->priv;

	s3_client_free(&x->c);
	free(x);
	r->priv = NULL;
}

/* Logs a failure once per kind; switches the remote off on 403 and a missing
 * bucket. */
static enum remote_result
failed(struct remote *r, enum s3_result rc, const char *method, const char *name)
{
	struct s3_remote *x = r->priv;
	int fatal = rc == S3_AUTH || rc == S3_NO_BUCKET;

	if (!(x->logged & (1u << rc))) {
		x->logged |= 1u << rc;
		log_warnx("s3: %s %s: %s: %s%s", method, name, s3_result_name(rc),
		    s3_client_last_error(x->c),
		    fatal ? " (the S3 remote is off until kache "
		            "restarts; builds go on with the local cache)" :
		            "");
	}
	if (fatal)
		r->off = 1;
	return REMOTE_FAILED;
}

/* Downloads into an unnamed file in tmpdir (verified on import, so no fsync). */
static enum remote_result
s3r_open(struct remote *r, const char *name, const char *tmpdir, int *fd, int *vouched)
{
	struct s3_remote *x = r->priv;
	enum s3_result rc = S3_LOCAL;

	if (vouched != NULL)
		*vouched = 0; /* the signing layer, when any, vouches */
	*fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd >= 0 && (rc = s3_get_to_fd(x->c, name, *fd, NULL)) == S3_OK &&
	    lseek(*fd, 0, SEEK_SET) == 0)
		return REMOTE_OK;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	if (rc == S3_NOT_FOUND)
		return REMOTE_MISS;
	return failed(r, rc == S3_OK ? S3_LOCAL : rc, "GET", name);
}

static enum remote_result
s3r_read(struct remote *r, const char *name, char *buf, size_t cap, size_t *len, int *vouched)
{
	struct s3_remote *x = r->priv;
	enum s3_result rc;
	int too_big = 0;

	if (vouched != NULL)
		*vouched = 0; /* the signing layer, when any, vouches */
	rc = s3_get_to_mem(x->c, name, buf, cap, len, &too_big);
	if (rc == S3_OK)
		return REMOTE_OK;
	if (too_big) {
		*len = cap + 1;
		return REMOTE_OK;
	}
	if (rc == S3_NOT_FOUND)
		return REMOTE_MISS;
	return failed(r, rc, "GET", name);
}

static enum remote_result
s3r_put(struct remote *r, const char *name, const void *data, size_t n)
{
	struct s3_remote *x = r->priv;
	enum s3_result rc = s3_put_mem(x->c, name, data, n);

	return rc == S3_OK ? REMOTE_OK : failed(r, rc, "PUT", name);
}

/* HEAD first: a pack is named by the inputs that made it, so one that
 * exists is done, unless it is to be replaced (a PUT over it). */
static enum remote_result
s3r_put_file(struct remote *r, const char *path, const char *name, int replace)
{
	struct s3_remote *x = r->priv;
	enum s3_result rc = replace ? S3_NOT_FOUND : s3_head(x->c, name, NULL);

	if (rc == S3_NOT_FOUND)
		rc = s3_put_file(x->c, name, path);
	return rc == S3_OK ? REMOTE_OK : failed(r, rc, "PUT", name);
}

/* ListObjectsV2 page by page (the client's own retries apply to each). */
static enum remote_result
s3r_list(struct remote *r, const char *prefix, remote_list_fn fn, void *arg)
{
	struct s3_remote *x = r->priv;
	struct s3_list_page page;
	enum s3_result rc;
	char *token = NULL;
	int stop = 0;

	do {
		memset(&page, 0, sizeof page);
		rc = s3_list(x->c, prefix, token, &page);
		free(token);
		token = NULL;
		for (size_t i = 0; rc == S3_OK && i < page.n && !stop; i++)
			stop =
			    fn(page.obj[i].key, page.obj[i].size, page.obj[i].mtime_ms, arg) != 0;
		if (rc == S3_OK && page.truncated && page.next_token != NULL && !stop)
			token = xstrdup(page.next_token);
		s3_list_page_clear(&page);
	} while (token != NULL);
	return rc == S3_OK ? REMOTE_OK : failed(r, rc, "LIST", prefix);
}
