/* Inside remote/: a transport moves named objects ("manifests/<inv>",
 * "packs/<crate>/<res>.pack", ...) to and from one kind of remote. It knows
 * nothing of packs or manifests: remote/layout.c owns those, once for every
 * transport. A transport logs its own failures (the S3 one once per kind)
 * and may switch the remote off for the rest of the process. */
#ifndef KACHE_REMOTE_TRANSPORT_H
#define KACHE_REMOTE_TRANSPORT_H

#include <stddef.h>

#include "common/config.h"
#include "remote/remote.h"

struct remote;
struct sign_state;

struct remote_transport {
	const char *name;
	/* Object name opened for reading at offset 0 in *fd; REMOTE_MISS when it
	 * does not exist. A transport that must download first does so into an
	 * unnamed file in tmpdir (on the local disk; gone when closed).
	 * vouched (may be NULL) is set to 1 when the bytes were checked against
	 * the signature of a trusted key (only the signing layer does), else 0. */
	enum remote_result (
	    *open)(struct remote *r, const char *name, const char *tmpdir, int *fd, int *vouched);
	/* Object name read whole into buf (cap bytes): REMOTE_OK with *len its
	 * size, or with *len > cap when it is larger (buf then holds nothing to
	 * use: the caller opens it instead); REMOTE_MISS when it does not exist.
	 * vouched as for open. A download goes straight into buf: no file. NULL:
	 * the transport only opens. */
	enum remote_result (*read)(struct remote *r, const char *name, char *buf, size_t cap,
	    size_t *len, int *vouched);
	/* Writes a small object whole, replacing it; readers never see half. */
	enum remote_result (*put)(struct remote *r, const char *name, const void *data, size_t n);
	/* Makes the complete file at path the object name, unless name exists
	 * already (a pack is named by its result: the same inputs made it) or
	 * replace is set (a result compiled again under cache.recache: its pack
	 * goes over the one there, whole or not at all). The caller removes path. */
	enum remote_result (
	    *put_file)(struct remote *r, const char *path, const char *name, int replace);
	/* Calls fn for every object whose name starts with prefix, in no set
	 * order, until fn returns non-zero; REMOTE_OK when the listing was whole
	 * or stopped by fn. */
	enum remote_result (
	    *list)(struct remote *r, const char *prefix, remote_list_fn fn, void *arg);
	/* Frees priv; NULL when there is nothing to free. */
	void (*close)(struct remote *r);
};

struct remote {
	const struct remote_transport *t;
	char *path;           /* the directory or the bucket, for log lines */
	const char *stagedir; /* where a pack is built before put_file: beside the
	                       * objects (dir), so that the put is a rename; NULL:
	                       * the store's tmp/ */
	void *priv;           /* the transport's own state */
	int read_only;        /* uploads are skipped, and said so */
	int off;              /* refused for good (credentials, a missing bucket,
	                       * another format): fetches miss and uploads fail
	                       * until the process restarts */
	int format_seen;      /* the format marker was found or written */
	int bundles;          /* prefetch.bundles: session saves write bundle parts */
	int testsink;         /* test builds: marker files, not the layout */
	/* the remote's clock against ours (remote_clock_skew); NULL: unknown */
	int (*clock_skew)(struct remote *r, long *seconds);
	/* remote_fail_fast; NULL: nothing to change (a directory) */
	void (*fail_fast)(struct remote *r, int on);
	/* remote_unreachable; NULL: never (a directory) */
	int (*unreachable)(const struct remote *r);
	/* planner.endpoint set: session manifests are posted there too, prefetch
	 * asks it (remote/planner_client.h); NULL: no planner */
	struct planner_client *planner;
	struct sign_state *sign; /* the signing layer (remote/sign_transport.c):
	                          * t is its transport, which wraps the backend's */
	char import_source[16];  /* remote_set_import_source */
};

/* `[remote] type = "dir"`: check (no side effect) and open. */
int remote_dir_check(const struct config *cfg, char *err, size_t errlen);
struct remote *remote_dir_open(const struct config *cfg, char *err, size_t errlen);
/* `[remote] type = "s3"`: check (no client, no network) and open. */
int remote_s3_check(const struct config *cfg, char *err, size_t errlen);
struct remote *remote_s3_open(const struct config *cfg, char *err, size_t errlen);

/* The signing layer over every transport (remote/sign_transport.c): wraps
 * r->t so that whatever object any code puts through r->t is signed (with
 * remote.signing_key) and whatever it opens is verified (with
 * remote.trusted_keys) before the caller sees a byte. Called by remote_open;
 * -1 with a sentence in err on a configuration error. */
int sign_wrap(struct remote *r, const struct config *cfg, char *err, size_t errlen);
/* For a writer about to put again bytes it read (bundle parts, which gather
 * packs read back): 1 when what it puts is signed, the secret key loaded and
 * so its own key trusted (a pack it read is vouched for when a trusted key,
 * its own or remote.trusted_keys', signed it), 0 when it puts unsigned
 * objects, -1 when its key cannot be used (said; the remote is off). */
int sign_writer_ready(struct remote *r);
/* The signing settings check: no side effect, the key file is only stat'ed. */
int sign_config_check(const struct config *cfg, char *err, size_t errlen);

#endif
