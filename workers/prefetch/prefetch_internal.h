/* Shared between the prefetch worker's files only. */
#ifndef KACHE_PREFETCH_INTERNAL_H
#define KACHE_PREFETCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/util.h"
#include "proto/hint.h"
#include "remote/remote.h"
#include "remote/session.h"

/* Cargo.lock larger than this is refused (the largest real ones are a few MiB). */
#define PREFETCH_LOCK_MAX (16 << 20)
#define PREFETCH_PACKAGES_MAX 100000

/* prefetch_lock.c: the crate names (as rustc's --crate-name spells them:
 * '-' as '_') of every [[package]] of the Cargo.lock at path, sorted and
 * unique, into crates. -1 with a sentence in why when the file cannot be
 * read, is too large, or is not a Cargo.lock. */
int prefetch_lock_read(const char *path, struct strv *crates, char *why, size_t whylen);
/* The same over bytes (tests). */
int prefetch_lock_parse(const char *text, size_t n, struct strv *crates, char *why, size_t whylen);

/* cargo metadata's output larger than this is refused; it runs this long at most. */
#define PREFETCH_META_MAX (64 << 20)
#define PREFETCH_META_TIMEOUT_MS 10000

/* prefetch_meta.c: the crate names (rustc's --crate-name: each lib,
 * proc-macro, bin and build-script target's name, '-' as '_') of the
 * workspace at root and its dependencies, leaves first (the order cargo
 * compiles in), from `cargo metadata --format-version 1 --offline` run in
 * root, niced as the worker, at most PREFETCH_META_TIMEOUT_MS (killed past
 * it) and PREFETCH_META_MAX bytes of output. -1 with a sentence in why.
 * versioned (may be NULL): the same targets as "name version" (the
 * package's version), one per name@version, for the planner's intent. */
int prefetch_meta_read(const char *root, struct strv *crates, struct strv *versioned, char *why,
    size_t whylen);
/* The same over cargo metadata's JSON (tests, fuzzing). */
int prefetch_meta_parse(const char *text, size_t n, struct strv *crates, struct strv *versioned,
    char *why, size_t whylen);
/* Drops every later copy of a string, keeping the order of the first ones. */
void prefetch_unique_in_order(struct strv *v);

/* Where the crate names of a session came from. */
enum prefetch_crates_from {
	PREFETCH_CRATES_NONE = 0,
	PREFETCH_CRATES_METADATA,
	PREFETCH_CRATES_LOCK
};

struct prefetch_pack {
	char crate[65];
	char res[HASH_HEX_LEN + 1];
	uint64_t size;
	char part[HASH_HEX_LEN + 1]; /* the bundle part holding it (remote/bundle.h); "": none */
};

/* Where a plan's candidates came from, most exact first. */
enum prefetch_source {
	PREFETCH_FROM_NONE = 0, /* nothing chosen (refused, no remote) */
	PREFETCH_FROM_EXACT,    /* the session manifest of this fingerprint */
	PREFETCH_FROM_CLOSEST,  /* the session sharing the most crates */
	PREFETCH_FROM_PACKS,    /* the packs listed for each crate */
	PREFETCH_FROM_PLANNER,  /* kache-planner's plan (planner.endpoint) */
};

/* Session manifests read for the closest match at most: the newest listed. */
#define PREFETCH_CLOSEST_MAX 32
/* Session manifests a listing may name before the newest are chosen. */
#define PREFETCH_SESSIONS_LISTED_MAX 100000

/* What a session will import, and what it left out and why. */
struct prefetch_plan {
	enum prefetch_source source;
	long shared;                    /* FROM_CLOSEST: crates it shares with Cargo.lock */
	char session[HASH_HEX_LEN + 1]; /* the session manifest's fingerprint */
	long garbage;                   /* session manifests not valid (said once) */
	struct prefetch_pack *p;
	size_t n, cap;
	long present;  /* the local store has the result already */
	long over_cap; /* left out: prefetch.max_bytes reached */
	uint64_t over_cap_bytes;
	long list_failed; /* crates whose listing failed */
	int unreachable;  /* no connection to the remote at the plan's first question */
	long crates;      /* crate names known (0: the exact session needed none) */
	enum prefetch_crates_from crates_from;
	int64_t meta_ms; /* spent getting the crate names */
	int64_t list_ms; /* spent on the remote's listings and session manifests */
	char refused[PROTO_HINT_PATH_MAX + 400]; /* no crate names: why (logged) */
};

/* What a session's plan is made from. */
struct prefetch_input {
	const struct proto_hint *h;
	const char *kache_dir;
	struct remote **remote; /* one per thread: listings run nremote at a time */
	int nremote;
	uint64_t max_bytes;
};

/* prefetch_meta.c: the crate names of the hint's workspace into crates, in
 * the order cargo compiles them: cargo metadata's, else (said in one log
 * line) the Cargo.lock's package names sorted, and build_script_build. -1
 * with plan->refused set when neither can be had. versioned (may be NULL):
 * "name version" from cargo metadata (prefetch_meta_read); from Cargo.lock,
 * the names alone. */
int prefetch_crates(const struct proto_hint *h, struct strv *crates, struct strv *versioned,
    struct prefetch_plan *plan);

/* prefetch_plan.c: the one place candidates are chosen (a planner slots in
 * here as one more source), most exact first: the remote's session manifest
 * of the hint's fingerprint (Cargo.lock content, toolchain, target, profile),
 * for which no crate names are needed; else, with the workspace's crate
 * names (prefetch_crates), the recorded session (of the newest
 * PREFETCH_CLOSEST_MAX listed) that shares the most crates with them, its
 * keys of those crates; else every pack the remote lists under
 * packs/<crate>/ (listed nremote at a time), each crate's newest first, the
 * newest of every crate before the second newest of any. Always less what
 * the store has, in order, until max_bytes of packs as listed (a session's
 * keys are listed only when their output bytes pass half of max_bytes). A
 * session manifest that is not valid is passed over with one log line. An
 * early hint (h->guess: target and profile guessed) takes the exact session
 * manifest only; else nothing (the first compile's hint follows). */
void prefetch_plan_make(const struct prefetch_input *in, struct prefetch_plan *plan);
const char *prefetch_source_name(enum prefetch_source s);
/* The plan's items from `from` on came from session manifest s: a bundle part
 * of which fewer than half the packs are planned (the rest present, over the
 * cap, or of crates the closest session does not share) is not read; its
 * planned packs are fetched alone (a part costs all its bytes). */
void prefetch_plan_thin_parts(struct prefetch_plan *plan, size_t from,
    const struct remote_session *s);
void prefetch_plan_free(struct prefetch_plan *plan);

/* What kache-planner answered. */
enum prefetch_planner_disposition {
	PREFETCH_PLANNER_OFF = 0,  /* no planner.endpoint */
	PREFETCH_PLANNER_EXECUTE,  /* its candidates, in p */
	PREFETCH_PLANNER_FALLBACK, /* use_fallback, or no fingerprint to ask with */
	PREFETCH_PLANNER_NOTHING,  /* do_nothing: no import at all */
	PREFETCH_PLANNER_FAILED,   /* no answer, an error, an answer not valid */
};
struct prefetch_planner_answer {
	enum prefetch_planner_disposition disposition;
	struct prefetch_pack *p;
	size_t n;
};

/* prefetch_planner.c: asks the planner of remote r (remote_planner), within
 * planner.timeout_ms, for the plan of the hint's build intent (its session
 * fingerprint, toolchain, target, profile; crates, "name version" or
 * "name" entries (prefetch_crates' versioned), may be NULL). A failure, or use_fallback, is said in
 * one log line per kind for the life of the process. */
void prefetch_planner_ask(struct remote *r, const struct proto_hint *h, const struct strv *crates,
    struct prefetch_planner_answer *a);
/* The answer's bytes checked (tests, fuzzing): 0, or -1 with why (a
 * candidate whose key is not 64 hex, whose crate is not a crate name...). */
int prefetch_planner_parse(const char *text, size_t n, struct prefetch_planner_answer *a, char *why,
    size_t whylen);
void prefetch_planner_free(struct prefetch_planner_answer *a);

/* Import threads (and so remotes, each an S3 connection) a session uses at most. */
#define PREFETCH_CONCURRENCY_MAX 32

/* What the imports of a session did. */
struct prefetch_done {
	long packs, rejected, failed;
	uint64_t bytes;
	long parts;      /* bundle parts read */
	long from_parts; /* of packs, those that came in a part */
};

/* prefetch_pool.c: items 0..items-1 worked on by at most n threads, thread
 * t over remote[t] (fewer threads when there are fewer items), run() outside
 * any lock, count() under the pool's one mutex; the calling thread beats
 * meanwhile. Three REMOTE_FAILED in a row (over all threads) leave the rest
 * undone. run() must not beat: only the calling thread owns the socket. */
struct prefetch_pool_ops {
	enum remote_result (*run)(void *ctx, struct remote *r, size_t i);
	void (*count)(void *ctx, size_t i, enum remote_result rr);
};
void prefetch_pool_run(struct remote **remote, int n, size_t items,
    const struct prefetch_pool_ops *ops, void *ctx);

/* prefetch_pool.c: imports the plan's packs with n threads, thread i over
 * remote[i] (n within 1..PREFETCH_CONCURRENCY_MAX; fewer when the plan is
 * shorter), so that at most n transfers are in flight; heartbeats go up from
 * the calling thread meanwhile. A remote failing three imports in a row
 * (counted over all threads) is left for the rest of the session. The
 * format marker is read once for all n (remote_format_share). */
void prefetch_import(struct remote **remote, int n, const char *kache_dir,
    const struct prefetch_plan *plan, struct prefetch_done *d);

#endif
