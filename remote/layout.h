/* The object layout every remote shares (docs/remote-layout.md), and the one
 * algorithm that uploads and fetches it over any transport (remote/transport.h):
 *
 *   <root>/kache-remote-format        "kache-remote 1\n"
 *   <root>/packs/<crate>/<result>.pack  one result (store/pack.h)
 *   <root>/manifests/<invocation>       msgpack { v: 1, results: [[crate, result hex], ...] }
 *                                       newest first, at most LAYOUT_MAX_RESULTS
 *
 * An upload writes the pack (skipped when the remote has it), then
 * read-modify-writes the manifest. Concurrent writers of one manifest may lose
 * an update to each other: that costs a later miss, never a wrong hit (every
 * pack is verified on import). */
#ifndef KACHE_REMOTE_LAYOUT_H
#define KACHE_REMOTE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/util.h"
#include "remote/remote.h"

#define LAYOUT_FORMAT_NAME "kache-remote-format"
#define LAYOUT_FORMAT_TEXT "kache-remote 1\n"
#define LAYOUT_MAX_RESULTS 16
/* Results a fetch imports at most, newest first. */
#define LAYOUT_FETCH_RESULTS 4

struct layout_result {
	char crate[65];
	char res[HASH_HEX_LEN + 1];
};

struct layout_manifest {
	struct layout_result r[LAYOUT_MAX_RESULTS];
	size_t n;
};

/* Object names relative to the root (new strings). */
char *layout_pack_name(const char *crate, const char *res_hex);
char *layout_manifest_name(const char *inv_hex);
/* 0, or -1 when the bytes are not a valid manifest (names are validated). */
int layout_manifest_decode(const char *data, size_t n, struct layout_manifest *m);
void layout_manifest_encode(const struct layout_manifest *m, struct buf *out);
/* Puts (crate, res) first, dropping an older copy and the oldest past the cap. */
void layout_manifest_add(struct layout_manifest *m, const char *crate, const char *res_hex);

/* How long an import waits for another importer of the same result when the
 * caller gives no deadline (a prefetch). */
#define LAYOUT_LOCK_WAIT_MS 30000

/* The format marker (kache-remote-format): 0 when it is ours, or absent and
 * not create; with create, a fresh remote gets it written. -1 (the remote is
 * then off, said once) when it names another format or cannot be read. */
int layout_format_check(struct remote *r, const char *tmpdir, int create);

/* remote_put and remote_fetch for the dir and S3 remotes (remote/remote.h). */
enum remote_result layout_put(struct remote *r, const char *kache_dir, const char *res_hex);
enum remote_result layout_fetch(struct remote *r, const char *kache_dir, const char *inv_hex,
    int64_t deadline_ms);
/* remote_import_pack: the one pack import layout_fetch does per result. */
enum remote_result layout_import_pack(struct remote *r, const char *kache_dir, const char *crate,
    const char *res_hex);

/* layout_lock.c: the import lock of result res_hex in the store at kache_dir
 * (a byte of tmp/import.locks, an OFD lock). 0 held (*fd to release), 1
 * another importer still held it at deadline_ms (clock_ms), -1 it cannot be
 * taken at all (logged: the import goes on unlocked). */
int layout_lock_take(const char *kache_dir, const char *res_hex, int64_t deadline_ms, int *fd);
/* Lets the lock go. fd < 0: nothing. */
void layout_lock_release(int fd);

#endif
