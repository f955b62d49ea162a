/* Bundle parts (docs/remote-layout.md): the packs of a session manifest put
 * together, a few MiB to an object, so that a later runner reads a session in
 * a few requests instead of one per pack. Each request costs a round trip and
 * the server's work per request (a real S3's first byte: tens of ms; moto on
 * the runner's own cores: 4-9 ms of CPU); a part is signed, verified and read
 * whole like any other object, and its packs are imported one by one through
 * the same verified path a pack fetch takes.
 *
 * The object bundles/<id> (id: BLAKE2b-256 hex of its bytes):
 *
 *   kache-bundle 2
 *   packs <n>                    1..BUNDLE_PACKS_MAX
 *   <crate> <64 hex result key> <bytes>
 *                                n lines: the packs' documents (each pack's
 *                                zstd frame inflated), in the order they follow
 *   end
 *   <one zstd frame of the n documents, one after the other>
 *
 * One frame over the part's packs, not the packs' own frames: the packs of a
 * session share much (the standard library linked into every build script
 * and proc macro), which one frame with a window over the whole part matches
 * (store/pack.h, pack_docs_deflate): ws-small's parts are a third smaller and
 * inflate faster. Version 1 (still read) held the packs' compressed bytes
 * themselves: the same lines, each size a pack's, and the packs after "end".
 *
 * Every line is checked, the sizes summing to at most what a region holds
 * (version 1: to exactly what follows the header), before any pack is used;
 * version 2's frame must then hold exactly that many bytes, inflated step by
 * step: a pack whose document came whole is imported (verified alone, as a
 * fetched pack) before the frame's end is checked. A session manifest of
 * version 3 names the parts and, per key, the part that holds its pack
 * (remote/session.h); a key no part holds is fetched as its pack. Packs are
 * still uploaded one by one (a miss fetches one pack): a part is a second
 * copy, written by the session saver, read by the prefetch. */
#ifndef KACHE_REMOTE_BUNDLE_H
#define KACHE_REMOTE_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "remote/remote.h"
#include "remote/session.h"

#define BUNDLE_PREFIX "bundles/"
#define BUNDLE_MAGIC "kache-bundle 2\n"
#define BUNDLE_MAGIC_V1 "kache-bundle 1\n"
/* A part's bytes at most, header included; a pack larger than a part can
 * hold stays out of every part (it is one large request anyway). */
#define BUNDLE_PART_MAX (8u << 20)
#define BUNDLE_PACKS_MAX 4096
/* A session's keys no part holds are bundled only when at least this many
 * of them can be (one pack alone gains nothing). */
#define BUNDLE_MIN_PACKS 2
/* A save reads packs back for its parts this long at most (a slow remote
 * must not hold `kache supervisor stop`): past it, what is together is put
 * and the rest of the keys stay without a part, for a later save. */
#define BUNDLE_WRITE_MAX_MS 60000

struct bundle_pack {
	char crate[65];
	char res[HASH_HEX_LEN + 1];
	size_t off, len; /* version 2: within the documents; 1: within the object */
};

struct bundle_index {
	struct bundle_pack *p;
	size_t n;
	int version;     /* 1 or 2 */
	size_t body_off; /* where what follows "end" starts */
	size_t docs_len; /* version 2: the bytes the frame holds, the sizes' sum */
};

/* "bundles/<id>" (a new string). */
char *bundle_name(const char *id);
/* 1 when a part that holds `held` packs is worth reading whole for `planned`
 * of them: at least half (else those packs alone cost fewer bytes). The
 * prefetch's plan and the planner's both judge a part so. */
int bundle_part_worth(size_t planned, size_t held);
/* 0, or -1 with one sentence in why when the n bytes at d are not one whole,
 * valid part (index into ix, offsets as struct bundle_pack says). Version 2's
 * frame is checked when it is inflated (bundle_import). */
int bundle_parse(const char *d, size_t n, struct bundle_index *ix, char *why, size_t whylen);
void bundle_index_free(struct bundle_index *ix);

/* The writer (the session saver, after merging s): the packs of the keys of
 * s that no part holds yet are read back from the remote (as uploaded: a
 * signed remote verifies them), put together into parts of at most
 * BUNDLE_PART_MAX bytes, each part put, and recorded in s (its parts, each
 * key's part) for the manifest to name. A pack the remote does not have, or
 * too large, stays out. Returns the number of parts written; a failure is
 * logged and leaves its keys without a part. beat (may be NULL) is called
 * after each pack read (a worker's heartbeat). */
int bundle_write(struct remote *r, const char *kache_dir, struct remote_session *s,
    void (*beat)(void));

/* What the reader wants of a part: a result, and what became of it. */
struct bundle_want {
	const char *crate;
	const char *res;
	int done;     /* set to 1 when imported or present */
	int imported; /* set to 1 when this part brought it */
};

/* The reader (a prefetch thread): reads part id whole (verified when the
 * remote is signed) and imports each wanted pack it holds that the store has
 * not, under the result's import lock (taken without waiting: a pack another
 * importer has in flight is left to it, and not marked done). REMOTE_OK when
 * the part was read (w[].done: imported or present; w[].imported: this part
 * brought it), REMOTE_MISS when it is absent or not a valid part (said in one
 * log line), REMOTE_FAILED when the remote failed. A pack found present is
 * done whatever the part's fate. */
enum remote_result bundle_import(struct remote *r, const char *kache_dir, const char *id,
    struct bundle_want *w, size_t n);

#endif
