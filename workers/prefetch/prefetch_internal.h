/* Shared between the prefetch worker's files only. */
#ifndef KACHE_PREFETCH_INTERNAL_H
#define KACHE_PREFETCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/util.h"
#include "proto/hint.h"
#include "remote/remote.h"

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

struct prefetch_pack {
	char crate[65];
	char res[HASH_HEX_LEN + 1];
	uint64_t size;
};

/* Where a plan's candidates came from, most exact first. */
enum prefetch_source {
	PREFETCH_FROM_NONE = 0, /* nothing chosen (refused, no remote) */
	PREFETCH_FROM_EXACT,    /* the session manifest of this fingerprint */
	PREFETCH_FROM_CLOSEST,  /* the session sharing the most crates */
	PREFETCH_FROM_PACKS,    /* the packs listed for each crate */
};

/* Session manifests read for the closest match at most (the listing's
 * first ones: it carries no times). */
#define PREFETCH_CLOSEST_MAX 32

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
};

/* prefetch_plan.c: the one place candidates are chosen (a planner slots in
 * here as one more source), most exact first: the remote's session manifest
 * of the hint's fingerprint (Cargo.lock content, toolchain, target, profile);
 * else the recorded session (of the first PREFETCH_CLOSEST_MAX listed) that
 * shares the most crates with crates, its keys of those crates; else every
 * pack the remote lists under packs/<crate>/ for each crate. Always less what
 * the store at kache_dir has, in order, until max_bytes. A session manifest
 * that is not valid is passed over with one log line. */
void prefetch_plan_make(struct remote *r, const char *kache_dir, const struct proto_hint *h,
    const struct strv *crates, uint64_t max_bytes, struct prefetch_plan *plan);
const char *prefetch_source_name(enum prefetch_source s);
void prefetch_plan_free(struct prefetch_plan *plan);

/* Import threads (and so remotes, each an S3 connection) a session uses at most. */
#define PREFETCH_CONCURRENCY_MAX 32

/* What the imports of a session did. */
struct prefetch_done {
	long packs, rejected, failed;
	uint64_t bytes;
};

/* prefetch_pool.c: imports the plan's packs with n threads, thread i over
 * remote[i] (n within 1..PREFETCH_CONCURRENCY_MAX; fewer when the plan is
 * shorter), so that at most n transfers are in flight; heartbeats go up from
 * the calling thread meanwhile. A remote failing three imports in a row
 * (counted over all threads) is left for the rest of the session. */
void prefetch_import(struct remote **remote, int n, const char *kache_dir,
    const struct prefetch_plan *plan, struct prefetch_done *d);

#endif
