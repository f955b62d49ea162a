/* The plan (docs/planner.md): an exact fingerprint's session whole; else
 * the crates of the intent taken from the recorded sessions (same
 * toolchain when given, target, profile) that share the most
 * crates@versions with it, each crate from the best session that has it.
 * Under the byte cap, candidates are kept by compile time saved per byte,
 * then listed in the order the build first used them. Ties are broken by
 * creation time and fingerprint, so replicas holding the same manifests
 * give the same plan. */
#include <stdlib.h>
#include <string.h>

#include "planner/planner_int.h"

static int compatible(const struct planner_manifest *m, const struct planner_intent *in);
static int ranks_above(const struct planner_state *st, uint32_t a, uint32_t ca, uint32_t b,
    uint32_t cb);
static void count_shared(const struct planner_state *st, const struct planner_intent *in,
    uint32_t *counts);
static size_t pick_sessions(const struct planner_state *st, const struct planner_intent *in,
    uint32_t *top);
static void add_key(struct planner_plan *p, struct smap *res, const struct planner_key *k);
static void collect(const struct planner_state *st, const struct planner_intent *in,
    const uint32_t *top, size_t ntop, struct planner_plan *p);
static int by_density(const void *a, const void *b);
static int by_order(const void *a, const void *b);
static void apply_cap(struct planner_plan *p, uint64_t cap);

static int
compatible(const struct planner_manifest *m, const struct planner_intent *in)
{
	return strcmp(m->target, in->target) == 0 && strcmp(m->profile, in->profile) == 0 &&
	    (in->toolchain[0] == '\0' || strcmp(m->toolchain, in->toolchain) == 0);
}

/* 1 when session a, sharing ca crates, ranks above b sharing cb. */
static int
ranks_above(const struct planner_state *st, uint32_t a, uint32_t ca, uint32_t b, uint32_t cb)
{
	const struct planner_manifest *x = &st->s[a].m, *y = &st->s[b].m;

	if (ca != cb)
		return ca > cb;
	if (x->created_ms != y->created_ms)
		return x->created_ms > y->created_ms;
	return strcmp(x->fp, y->fp) < 0;
}

/* counts[s]: how many of the intent's crates session s used, at the same
 * version or (a session read from the remote knows none) by name. */
static void
count_shared(const struct planner_state *st, const struct planner_intent *in, uint32_t *counts)
{
	uint32_t *stamp = xcalloc(st->n + 1, sizeof *stamp);
	char ck[2 * PLANNER_NAME_MAX + 2];

	for (size_t j = 0; j < in->n; j++) {
		for (int pass = 0; pass < 2; pass++) {
			const uint32_t *v;
			const struct plist *pl;

			planner_crate_key(in->c[j].name, pass ? "" : in->c[j].version, ck);
			if ((pass && in->c[j].version[0] == '\0') ||
			    (v = smap_get(&st->posts, ck)) == NULL)
				continue;
			pl = &st->pl[*v];
			for (size_t i = 0; i < pl->n; i++) {
				uint32_t s = pl->s[i];

				if (pl->gen[i] != st->s[s].gen || stamp[s] == j + 1)
					continue;
				stamp[s] = (uint32_t)j + 1;
				counts[s]++;
			}
		}
	}
	free(stamp);
}

/* The best PLANNER_PLAN_SESSIONS compatible sessions sharing any crate. */
static size_t
pick_sessions(const struct planner_state *st, const struct planner_intent *in, uint32_t *top)
{
	uint32_t *counts = xcalloc(st->n + 1, sizeof *counts), tc[PLANNER_PLAN_SESSIONS];
	size_t ntop = 0;

	count_shared(st, in, counts);
	for (uint32_t s = 0; s < st->n; s++) {
		size_t at;

		if (counts[s] == 0 || !compatible(&st->s[s].m, in))
			continue;
		for (at = ntop; at > 0 && ranks_above(st, s, counts[s], top[at - 1], tc[at - 1]);
		     at--)
			;
		if (at >= PLANNER_PLAN_SESSIONS)
			continue;
		if (ntop < PLANNER_PLAN_SESSIONS)
			ntop++;
		memmove(&top[at + 1], &top[at], (ntop - 1 - at) * sizeof *top);
		memmove(&tc[at + 1], &tc[at], (ntop - 1 - at) * sizeof *tc);
		top[at] = s;
		tc[at] = counts[s];
	}
	free(counts);
	return ntop;
}

static void
add_key(struct planner_plan *p, struct smap *res, const struct planner_key *k)
{
	if (smap_get(res, k->res) != NULL)
		return;
	smap_put(res, k->res, 1);
	p->k = xrealloc(p->k, (p->n + 1) * sizeof *p->k);
	p->k[p->n++] = *k;
}

/* The keys of the intent's crates, each crate from the best session that
 * used it. */
static void
collect(const struct planner_state *st, const struct planner_intent *in, const uint32_t *top,
    size_t ntop, struct planner_plan *p)
{
	struct smap want = { 0 }, taken = { 0 }, res = { 0 };
	char ck[2 * PLANNER_NAME_MAX + 2];

	for (size_t j = 0; j < in->n; j++) {
		planner_crate_key(in->c[j].name, in->c[j].version, ck);
		smap_put(&want, ck, 1);
		planner_crate_key(in->c[j].name, "", ck);
		smap_put(&want, ck, 1);
	}
	for (size_t r = 0; r < ntop; r++) {
		const struct planner_manifest *m = &st->s[top[r]].m;

		for (size_t i = 0; i < m->n; i++) {
			const uint32_t *t = smap_get(&taken, m->k[i].crate);

			planner_crate_key(m->k[i].crate, m->k[i].version, ck);
			if (smap_get(&want, ck) == NULL || (t != NULL && *t != r))
				continue;
			smap_put(&taken, m->k[i].crate, (uint32_t)r);
			add_key(p, &res, &m->k[i]);
		}
	}
	smap_free(&want);
	smap_free(&taken);
	smap_free(&res);
}

/* Compile time saved per byte, highest first; then first used first. */
static int
by_density(const void *a, const void *b)
{
	const struct planner_key *x = a, *y = b;
	unsigned __int128 l = (unsigned __int128)x->compile_ms * (y->bytes ? y->bytes : 1);
	unsigned __int128 r = (unsigned __int128)y->compile_ms * (x->bytes ? x->bytes : 1);

	if (l != r)
		return l > r ? -1 : 1;
	return by_order(a, b);
}

static int
by_order(const void *a, const void *b)
{
	const struct planner_key *x = a, *y = b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return strcmp(x->res, y->res);
}

/* Keeps what saves most per byte within cap, listed as the build needs it. */
static void
apply_cap(struct planner_plan *p, uint64_t cap)
{
	size_t kept = 0;

	if (p->n > 1) /* an empty array may be NULL */
		qsort(p->k, p->n, sizeof *p->k, by_density);
	p->bytes = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (p->k[i].bytes > cap - p->bytes)
			continue;
		p->bytes += p->k[i].bytes;
		p->k[kept++] = p->k[i];
	}
	p->n = kept;
	if (p->n > 1) /* an empty array may be NULL */
		qsort(p->k, p->n, sizeof *p->k, by_order);
}

void
planner_state_plan(struct planner_state *st, const struct planner_intent *in, uint64_t cap,
    struct planner_plan *p)
{
	uint32_t top[PLANNER_PLAN_SESSIONS];
	const uint32_t *exact;
	struct smap res = { 0 };
	size_t ntop;

	memset(p, 0, sizeof *p);
	pthread_rwlock_rdlock(&st->lock);
	if ((exact = smap_get(&st->fps, in->fp)) != NULL) {
		const struct planner_manifest *m = &st->s[*exact].m;

		p->source = "exact";
		top[0] = *exact;
		ntop = 1;
		for (size_t i = 0; i < m->n; i++)
			add_key(p, &res, &m->k[i]);
		smap_free(&res);
	} else {
		p->source = (ntop = pick_sessions(st, in, top)) > 0 ? "similar" : "none";
		collect(st, in, top, ntop, p);
	}
	for (size_t i = 0; i < ntop; i++)
		memcpy(p->sessions[i], st->s[top[i]].m.fp, HASH_HEX_LEN + 1);
	p->nsessions = ntop;
	pthread_rwlock_unlock(&st->lock);
	apply_cap(p, cap);
	p->d = ntop == 0 ? PLANNER_USE_FALLBACK : p->n == 0 ? PLANNER_DO_NOTHING : PLANNER_EXECUTE;
}
