/* Shared between the prefetch worker's files only. */
#ifndef KACHE_PREFETCH_INTERNAL_H
#define KACHE_PREFETCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/util.h"
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

/* What a session will import, and what it left out and why. */
struct prefetch_plan {
	struct prefetch_pack *p;
	size_t n, cap;
	long present;  /* the local store has the result already */
	long over_cap; /* left out: prefetch.max_bytes reached */
	uint64_t over_cap_bytes;
	long list_failed; /* crates whose listing failed */
};

/* prefetch_plan.c: the one place candidates are chosen (a planner or
 * session manifests slot in here): every pack the remote lists under
 * packs/<crate>/ for each crate, less those the store at kache_dir has, in
 * the remote's listing order, until max_bytes. */
void prefetch_plan_make(struct remote *r, const char *kache_dir, const struct strv *crates,
    uint64_t max_bytes, struct prefetch_plan *plan);
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
