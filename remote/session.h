/* Session manifests (docs/remote-layout.md): the result keys one build
 * session of a workspace used, recorded in the remote under
 * sessions/<fingerprint>, so that a later runner with the same workspace
 * fingerprint (Cargo.lock content, toolchain, target, profile) prefetches
 * exactly that list, or, with no exact match, the list of the recorded
 * session that shares the most crates with its Cargo.lock.
 *
 * The object is text, checked line by line before any of it is used:
 *
 *   kache-session 1               or 2, with the features line
 *   lock <64 hex: BLAKE2b-256 of Cargo.lock's bytes>
 *   toolchain <id or ->           16 hex of BLAKE2b of `rustc -vV`
 *   target <triple or ->          "-": the host
 *   profile <profile dir or ->
 *   features <16 hex|mixed|->     version 2 only: what the wrapper saw the
 *                                 workspace's path packages compiled with
 *   created <unix ms>
 *   keys <n>
 *   <crate> <64 hex result key> <bytes>[ <version>]
 *                                 n lines, in the order they were used;
 *                                 bytes: the result's output bytes;
 *                                 version: the package's (CARGO_PKG_VERSION),
 *                                 absent when unknown
 *   parts <m>                     version 3 only (bundle parts, remote/bundle.h):
 *   <64 hex part id>              m lines; the keys then have five fields,
 *                                 "<crate> <res> <bytes> <version|-> <part|->",
 *                                 part: the index of the line of the part
 *                                 that holds the key's pack
 *   end
 *
 * The local side: the wrapper's journal records carry the workspace id, the
 * index appends "crate result" lines to run/sessions/<ws>.used as it ingests
 * them, and remote_session_save turns each such file (with the session marker
 * beside it, which names Cargo.lock, target, profile and toolchain) into one
 * object. Within one job (until `kache supervisor stop`) a save of a
 * fingerprint this store saved before writes the union of both (its earlier
 * object is kept locally as run/sessions/<fp>.saved), so that an idle save
 * between `cargo build` and `cargo test` loses nothing. */
#ifndef KACHE_REMOTE_SESSION_H
#define KACHE_REMOTE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/util.h"
#include "remote/layout.h"
#include "remote/remote.h"
#include "store/journal.h"

#define REMOTE_SESSION_MAGIC "kache-session 1\n"
/* Version 2: version 1 with a features line after profile, written when the
 * session saw its workspace's features. */
#define REMOTE_SESSION_MAGIC2 "kache-session 2\n"
/* Version 3: version 2 (its features line always there, "-" when unknown)
 * with the bundle parts that hold the keys' packs. Written when a part holds
 * any. */
#define REMOTE_SESSION_MAGIC3 "kache-session 3\n"
#define REMOTE_SESSION_MAX_PARTS 4096
/* The features of sessions that saw different ones, merged into one object. */
#define REMOTE_SESSION_FEATURES_MIXED "mixed"
#define REMOTE_SESSION_PREFIX "sessions/"
#define REMOTE_SESSION_MAX_KEYS 65536
#define REMOTE_SESSION_MAX_BYTES (8 << 20)
/* run/sessions/<fp><this>: the object this store last saved as sessions/<fp>. */
#define REMOTE_SESSION_SAVED_SUFFIX ".saved"
/* run/sessions/<res><this>: the remote's pack of res was put over (a result
 * compiled again under cache.recache) in this job: a save of a session that
 * used res keeps no bundle part of the old pack for it. */
#define REMOTE_SESSION_REPLACED_SUFFIX ".replaced"
/* A save of everything waits this long for one under way (an idle save
 * writing bundle parts over a slow remote). */
#define REMOTE_SESSION_SAVE_WAIT_MS 120000
/* A field's value: [A-Za-z0-9_.-]{1,64}, or "-" for empty. */
#define REMOTE_SESSION_NAME_MAX 64

struct remote_session_key {
	char crate[65];
	char res[HASH_HEX_LEN + 1];
	uint64_t bytes;
	char version[JOURNAL_VERSION_MAX + 1]; /* "" when unknown */
	int part; /* the index in parts of the bundle part holding its pack; -1: none */
};

struct remote_session {
	char lock[HASH_HEX_LEN + 1];
	char toolchain[REMOTE_SESSION_NAME_MAX + 1];
	char target[REMOTE_SESSION_NAME_MAX + 1];
	char profile[REMOTE_SESSION_NAME_MAX + 1];
	/* 16 hex: the digest of the features the wrapper saw the workspace's
	 * path packages compiled with (remote_session_features_digest);
	 * REMOTE_SESSION_FEATURES_MIXED; "" when not known (version 1). */
	char features[REMOTE_SESSION_NAME_MAX + 1];
	int64_t created_ms;
	struct remote_session_key *k;
	size_t n, cap;
	char (*parts)[HASH_HEX_LEN + 1]; /* bundle part ids */
	size_t nparts;
};

/* The object's fingerprint: BLAKE2b-256 (hex) over "kache-session-v1", lock,
 * toolchain, target and profile (each length-prefixed, as hash_str does). */
void remote_session_fingerprint(const char *lock, const char *toolchain, const char *target,
    const char *profile, char fp[HASH_HEX_LEN + 1]);
/* The first 16 hex of BLAKE2b-256 over "kache-features-v1" and each of the
 * lines (sorted, each once; hash_str), "<crate> <feature>,..." or
 * "<crate> -", into out. */
void remote_session_features_digest(struct strv *lines, char out[17]);
/* "sessions/<fp>" (a new string). */
char *remote_session_name(const char *fp);
/* Appends (crate, res, bytes, version: "" or NULL when unknown). */
void remote_session_add(struct remote_session *s, const char *crate, const char *res,
    uint64_t bytes, const char *version);
void remote_session_free(struct remote_session *s);
/* The index of bundle part id in s->parts, added when new. */
int remote_session_part_add(struct remote_session *s, const char *id);
/* The id of the bundle part that holds key i's pack; NULL when none does (or
 * its index names no part). */
const char *remote_session_key_part(const struct remote_session *s, size_t i);
/* 0, or -1 with one sentence in why when the bytes are not a whole, valid
 * session manifest (every line, name, count and the end checked). */
int remote_session_parse(const char *d, size_t n, struct remote_session *s, char *why,
    size_t whylen);
void remote_session_encode(const struct remote_session *s, struct buf *out);
/* Reads the object name into s. REMOTE_OK; REMOTE_MISS when absent (why "")
 * or not a valid session manifest (why says what, nothing logged);
 * REMOTE_FAILED when the remote failed (logged by the transport). */
enum remote_result remote_session_get(struct remote *r, const char *kache_dir, const char *name,
    struct remote_session *s, char *why, size_t whylen);
/* Records that the remote's pack of res_hex was replaced (the marker above),
 * for the job's later session saves; a failure is said and left. */
void remote_session_replaced(const char *kache_dir, const char *res_hex);
/* Saves the session of every run/sessions/<ws>.used of the store at kache_dir
 * whose last line was appended at least idle_ms ago (0: all), then removes
 * the file; the remote must not be read-only. One save runs at a time per
 * store (run/session-save.lock): with idle_ms > 0 a save under way elsewhere
 * makes this one return 0 at once, with 0 it is waited for (at most
 * REMOTE_SESSION_SAVE_WAIT_MS, then -1: the keys are kept). Returns the number
 * of objects written, -1 when one could not be (logged; its lines are kept).
 * beat (may be NULL) is called between the reads of a long save (bundle
 * parts): a worker passes its heartbeat. */
int remote_session_save(struct remote *r, const char *kache_dir, int64_t idle_ms,
    void (*beat)(void));
/* The end of a job (`kache supervisor stop`): saves every session as above
 * and, when that went well, forgets the run/sessions/<fp>.saved records, so
 * that the next job's saves start their union afresh; both under the save
 * lock, after any idle save under way. As remote_session_save. */
int remote_session_save_job(struct remote *r, const char *kache_dir);
/* The end of a job that saves nothing (prefetch.save_manifest off): its
 * records and marks forgotten, as remote_session_save_job does after its
 * save (waiting for a save under way, as it does). */
void remote_session_end_job(const char *kache_dir);

#endif
