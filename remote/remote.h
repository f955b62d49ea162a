/* The remote cache as the uploader and fetcher see it: `[remote] type` is
 * "none" (no remote: the supervisor queues no uploads and answers fetches with
 * a miss), "dir" (a directory: a shared disk, NFS) or "s3" (an S3 bucket),
 * and in test builds "testsink" (a directory of marker files that records
 * what was uploaded; it moves no store content). The dir and S3 remotes hold
 * the objects of docs/remote-layout.md, written and read by remote/layout.c
 * over each one's transport (remote/transport.h). config_has_remote() says
 * whether one is configured at all. */
#ifndef KACHE_REMOTE_REMOTE_H
#define KACHE_REMOTE_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "remote/sign.h"

/* REMOTE_OFF: refused for good in this process (403: credentials or clock
 * skew; no bucket; another format): a retry cannot succeed until the
 * configuration changes. */
enum remote_result { REMOTE_OK = 0, REMOTE_MISS, REMOTE_FAILED, REMOTE_OFF };

struct remote;

/* The settings check: 0 when the configured remote (or none) can be opened
 * as far as the settings tell, else -1 with one sentence of advice in err.
 * Makes no client, creates nothing, touches no network: the supervisor
 * checks a reloaded configuration with it. */
int remote_check(const struct config *cfg, char *err, size_t errlen);
/* The remote the config names (config_has_remote must hold). NULL with a
 * sentence in err on a configuration error. */
struct remote *remote_open(const struct config *cfg, char *err, size_t errlen);
/* For a worker: the remote cfg names in *r (NULL when none is configured).
 * -1, logged, when the configuration names a remote that cannot be opened: a
 * configuration error. */
int remote_open_for_worker(const struct config *cfg, struct remote **r);
/* 1 when uploads are skipped (s3.read_only): nothing is written. */
int remote_read_only(const struct remote *r);
/* prefetch.bundles: session saves write bundle parts and prefetches read them. */
int remote_bundles(const struct remote *r);
/* Seconds the remote's clock is ahead of ours (negative: behind), as its last
 * answer told (S3: the Date header); -1 when the remote cannot tell (a
 * directory) or has not answered yet. */
int remote_clock_skew(struct remote *r, long *seconds);
/* on: for a process that someone waits on (the fetchers: a wrapper waits on
 * each fetch), or a first question (the prefetch's plan): a remote that
 * cannot be reached at all (S3: connection refused, the name not resolved, no
 * connection within s3.fetch_connect_timeout_ms, 1 s by default) fails at
 * once instead of after retries with back-off. A directory remote fails at
 * once anyway. off: retried again. */
void remote_fail_fast(struct remote *r, int on);
/* 1 when the remote's last request failed for want of a connection (S3:
 * refused, the name not resolved, nothing answered within the connect
 * timeout); 0 otherwise, and always for a directory. */
int remote_unreachable(const struct remote *r);
/* The planner client (planner.endpoint), or NULL. */
struct planner_client *remote_planner(const struct remote *r);
/* Takes ownership; NULLs *r. */
void remote_free(struct remote **r);
/* Makes the result res_hex (and what it references) present in the remote;
 * its upload intent in kache_dir names the invocation key. */
enum remote_result remote_put(struct remote *r, const char *kache_dir, const char *res_hex);
/* One listed object: its name relative to the remote's root (as in
 * docs/remote-layout.md), size, and when it was last written, in ms since
 * the epoch (dir: the file's mtime; S3: LastModified; 0 when the remote did
 * not say). Non-zero stops the listing. */
typedef int (*remote_list_fn)(const char *name, uint64_t size, int64_t mtime_ms, void *arg);
/* Lists the objects whose names start with prefix ("packs/", "manifests/",
 * "packs/serde/"). REMOTE_FAILED (logged) when the remote could not be read
 * whole; what was listed by then was passed to fn. */
enum remote_result remote_list(struct remote *r, const char *prefix, remote_list_fn fn, void *arg);
/* Imports the remote result(s) of the invocation key inv_hex into the store
 * at kache_dir. A result another process is importing at the same time (a
 * prefetch, another fetcher) is not downloaded again: the fetch waits for
 * that import until deadline_ms (clock_ms; 0: LAYOUT_LOCK_WAIT_MS from now)
 * and finds it present; a result present already costs no transfer. */
enum remote_result remote_fetch(struct remote *r, const char *kache_dir, const char *inv_hex,
    int64_t deadline_ms);
/* Gives back the memory kept between imports (the inflated document and
 * compressed bytes of the largest packs so far; pack_memory_release): a
 * long-lived process calls it when it goes idle. */
void remote_memory_release(void);
/* Imports the pack packs/<crate>/<res_hex>.pack into the store at kache_dir,
 * verified whole as a fetch does, its manifest candidate under the invocation
 * key the pack names (a prefetch knows packs by listing only). REMOTE_MISS
 * when it is absent or was rejected (said in the log), REMOTE_FAILED when the
 * remote failed. Joins an import of the same result in flight, as a fetch
 * does, for at most LAYOUT_LOCK_WAIT_MS. */
/* The source the next remote_import_pack calls record their imports under
 * (store_set_import_source): the prefetch plan's. */
void remote_set_import_source(struct remote *r, const char *src);
enum remote_result remote_import_pack(struct remote *r, const char *kache_dir, const char *crate,
    const char *res_hex);
/* The remotes of one configuration in one process (the prefetch's, one per
 * import thread): r[0] reads the format marker, and what it found holds for
 * all n, so that a session reads it once, not once per remote. */
void remote_format_share(struct remote **r, int n, const char *kache_dir);

/* kache verify --remote: the signature of one object (read whole, imported
 * nowhere). v is SIGN_OK when a trusted key's signature verifies;
 * SIGN_UNKNOWN_KEY, with id, for a signature by a key not trusted here. */
struct remote_sig {
	enum sign_verdict v;
	char id[SIGN_ID_HEX_LEN + 1]; /* "" when unsigned */
};
enum remote_result remote_signature(struct remote *r, const char *name, const char *tmpdir,
    struct remote_sig *out);
/* How many keys this remote's reads trust (0: the bucket is trusted). */
size_t remote_trusted_keys(const struct remote *r);

#endif
