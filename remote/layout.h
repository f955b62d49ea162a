/* The object layout every remote shares (docs/remote-layout.md):
 *
 *   <root>/kache-remote-format        "kache-remote 1\n"
 *   <root>/packs/<crate>/<result>.pack  one result (store/pack.h)
 *   <root>/manifests/<invocation>       msgpack { v: 1, results: [[crate, result hex], ...] }
 *                                       newest first, at most LAYOUT_MAX_RESULTS
 *
 * Concurrent writers of one manifest may lose an update to each other: that
 * costs a later miss, never a wrong hit (every pack is verified on import). */
#ifndef KACHE_REMOTE_LAYOUT_H
#define KACHE_REMOTE_LAYOUT_H

#include <stddef.h>

#include "common/hash.h"
#include "common/util.h"

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
/* The manifest to publish: the current one (old, n bytes; NULL when there is
 * none) with (crate, res) put first, encoded into b (replacing its content).
 * A damaged current manifest is replaced, and said so. */
void layout_manifest_update(const char *old, size_t n, const char *inv, const char *crate,
    const char *res, struct buf *b);
/* Reads the invocation key (hex) an upload intent names. 0 / -1. */
int layout_intent_inv(const char *kache_dir, const char *res_hex, char inv_hex[HASH_HEX_LEN + 1]);

#endif
