/* Explaining a miss: its why record (store/why.h) against the closest earlier
 * record of the same crate, part by part, following a changed --extern up to
 * the upstream crate's own miss. Shared by `kache why-miss` and `kache report`
 * (misses by cause). */
#ifndef KACHE_CLI_WHY_EXPLAIN_H
#define KACHE_CLI_WHY_EXPLAIN_H

#include <stdint.h>

#include "store/why.h"

/* Upstream crates followed at most, so that a cycle of names ends. */
#define WHYX_MAX_DEPTH 6

struct why_cause {
	char crate[128];    /* whose key: the miss's, or an upstream crate's */
	int depth;          /* 0: the crate asked about; 1: its dependency ... */
	const char *part;   /* why_kind_name, or "none" / "history" */
	const char *change; /* "changed", "added", "removed", "same", "first" */
	char *name;         /* the part's name as shown (roots unfolded), or "" */
	char *message;      /* one line in plain words */
};

struct why_list {
	struct why_cause *v;
	size_t n;
};

struct whyx;

/* The why files of store dir, read on demand, each crate's once. */
struct whyx *whyx_new(const char *dir);
void whyx_free(struct whyx **x);
/* The latest record of crate: with inv when inv is not NULL, and no later than
 * before_ms when before_ms > 0. NULL when none. */
const struct why_rec *whyx_find(struct whyx *x, const char *crate, const unsigned char *inv,
    int64_t before_ms);
/* Appends to out why miss (a record whyx_find returned) missed. */
void whyx_explain(struct whyx *x, const struct why_rec *miss, struct why_list *out);
/* The main cause of a list, one word: compiler, roots, arguments, environment,
 * dependency, native-library, host-cpu, env-dep, source, evicted, new. */
const char *whyx_cause(const struct why_list *l);
void whyx_list_clear(struct why_list *l);

#endif
