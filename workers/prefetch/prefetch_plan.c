/* Choosing what a session imports, most exact first: the session manifest of
 * this workspace's fingerprint, else the closest of the newest recorded
 * sessions, else the packs of the workspace's crates, newest first
 * (prefetch_internal.h). A planner slots in here as one more source. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/worker.h"
#include "remote/bundle.h"
#include "remote/session.h"
#include "store/store.h"
#include "workers/prefetch/prefetch_internal.h"

struct listing {
	struct prefetch_plan *plan;
	struct store *store;
	uint64_t max_bytes, bytes;
	const char *first_bad; /* the first session manifest not valid, for the log */
	char why[160];
};

/* One listed object with its time: a pack of a crate, or a session manifest. */
struct found {
	char name[HASH_HEX_LEN + 1]; /* the result key, or the session's fingerprint */
	uint64_t size;
	int64_t mtime_ms;
};

struct found_list {
	struct found *f;
	size_t n, cap;
	size_t prefix_len; /* of the listed prefix, for the callback */
};

/* The packs listing of a session: one found_list per crate, filled by the
 * pool's threads (each its own crate), failures counted under its mutex. */
struct packs_listing {
	const struct strv *crates;
	struct found_list *per;
	long failed;
};

static int on_object(const char *name, uint64_t size, int64_t mtime_ms, void *arg);
static int on_session(const char *name, uint64_t size, int64_t mtime_ms, void *arg);
static void found_add(struct found_list *fl, const char *name, uint64_t size, int64_t mtime_ms);
static int cmp_newest(const void *a, const void *b);
static enum remote_result list_crate(void *ctx, struct remote *r, size_t i);
static void list_count(void *ctx, size_t i, enum remote_result rr);
static void plan_add(struct prefetch_plan *plan, const char *crate, const char *res, uint64_t size);
static void consider(struct listing *l, const char *crate, const char *res, uint64_t size);
static void consider_key(struct listing *l, const struct remote_session *s, size_t i);
static void from_packs(const struct prefetch_input *in, const struct strv *crates,
    struct listing *l);
static enum remote_result exact_get(const struct prefetch_input *in, struct listing *l,
    const char *fp, struct remote_session *s, int *bad);
static int from_exact(const struct prefetch_input *in, struct listing *l);
static void pack_sizes(const struct prefetch_input *in, struct remote_session *s,
    struct listing *l);
static uint64_t listed_size(const struct found_list *fl, const char *res, uint64_t dflt);
static int from_closest(const struct prefetch_input *in, const char **sorted, size_t n,
    struct listing *l);
static void newest_sessions(struct remote *r, struct strv *names);
static void choose(const struct prefetch_input *in, const struct strv *crates, int closest,
    struct listing *l);
static long shared(const struct remote_session *s, const char **sorted, size_t n);
static int has(const char **sorted, size_t n, const char *crate);
static int cmp_str(const void *a, const void *b);
static void bad_session(struct listing *l, const char *name, const char *why);
static int from_planner(const struct prefetch_input *in, const struct strv *crates,
    struct listing *l);
static void plan_fail_fast(const struct prefetch_input *in, int on);

static const char *const source_names[] = { "none", "exact session manifest", "closest session",
	"packs", "planner" };

const char *
prefetch_source_name(enum prefetch_source s)
{
	return (size_t)s < sizeof source_names / sizeof source_names[0] ? source_names[s] : "?";
}

static void
plan_add(struct prefetch_plan *plan, const char *crate, const char *res, uint64_t size)
{
	struct prefetch_pack *x;

	if (plan->n == plan->cap) {
		plan->cap = plan->cap ? plan->cap * 2 : 64;
		plan->p = xrealloc(plan->p, plan->cap * sizeof *plan->p);
	}
	x = &plan->p[plan->n++];
	snprintf(x->crate, sizeof x->crate, "%s", crate);
	snprintf(x->res, sizeof x->res, "%s", res);
	x->size = size;
	x->part[0] = '\0';
}

/* A candidate: counted as present when the store has its result, left out
 * past the byte cap, else planned. */
static void
consider(struct listing *l, const char *crate, const char *res, uint64_t size)
{
	if (store_has_entry(l->store, res)) {
		l->plan->present++;
	} else if (l->bytes + size > l->max_bytes) {
		l->plan->over_cap++;
		l->plan->over_cap_bytes += size;
	} else {
		l->bytes += size;
		plan_add(l->plan, crate, res, size);
	}
}

/* Key i of a session manifest, considered; planned with the bundle part
 * that holds its pack, when one does. */
static void
consider_key(struct listing *l, const struct remote_session *s, size_t i)
{
	size_t n = l->plan->n;
	const char *part = remote_session_key_part(s, i);

	consider(l, s->k[i].crate, s->k[i].res, s->k[i].bytes);
	if (l->plan->n > n && part != NULL)
		snprintf(l->plan->p[n].part, sizeof l->plan->p[n].part, "%s", part);
}

void
prefetch_plan_thin_parts(struct prefetch_plan *plan, size_t from, const struct remote_session *s)
{
	size_t *held, *planned;

	if (s->nparts == 0)
		return;
	held = xcalloc(s->nparts, sizeof *held);
	planned = xcalloc(s->nparts, sizeof *planned);
	for (size_t i = 0; i < s->n; i++)
		if (remote_session_key_part(s, i) != NULL)
			held[s->k[i].part]++;
	for (size_t j = 0; j < s->nparts; j++)
		for (size_t i = from; i < plan->n; i++)
			planned[j] += strcmp(plan->p[i].part, s->parts[j]) == 0;
	for (size_t j = 0; j < s->nparts; j++)
		for (size_t i = from; !bundle_part_worth(planned[j], held[j]) && i < plan->n; i++)
			if (strcmp(plan->p[i].part, s->parts[j]) == 0)
				plan->p[i].part[0] = '\0';
	free(held);
	free(planned);
}

static void
found_add(struct found_list *fl, const char *name, uint64_t size, int64_t mtime_ms)
{
	if (fl->n == fl->cap) {
		fl->cap = fl->cap ? fl->cap * 2 : 16;
		fl->f = xrealloc(fl->f, fl->cap * sizeof *fl->f);
	}
	snprintf(fl->f[fl->n].name, sizeof fl->f[0].name, "%s", name);
	fl->f[fl->n].size = size;
	fl->f[fl->n++].mtime_ms = mtime_ms;
}

/* Newest first; the same time by name, so that a plan is reproducible. */
static int
cmp_newest(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	if (x->mtime_ms != y->mtime_ms)
		return x->mtime_ms < y->mtime_ms ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* One listed object under packs/<crate>/: "<64 hex>.pack" is a candidate;
 * anything else (a temporary, a stranger's file) is passed over. Runs on a
 * pool thread: no beat here. */
static int
on_object(const char *name, uint64_t size, int64_t mtime_ms, void *arg)
{
	struct found_list *fl = arg;
	const char *base = name + fl->prefix_len;
	char res[HASH_HEX_LEN + 1];

	if (strlen(base) != HASH_HEX_LEN + 5 || strcmp(base + HASH_HEX_LEN, ".pack") != 0)
		return 0;
	memcpy(res, base, HASH_HEX_LEN);
	res[HASH_HEX_LEN] = '\0';
	if (hash_hex_valid(res))
		found_add(fl, res, size, mtime_ms);
	return 0;
}

/* The pool's item i: the listing of packs/<crate i>/. */
static enum remote_result
list_crate(void *ctx, struct remote *r, size_t i)
{
	struct packs_listing *pl = ctx;
	char *prefix = xasprintf("packs/%s/", pl->crates->v[i]);
	enum remote_result rr;

	pl->per[i].prefix_len = strlen(prefix);
	rr = remote_list(r, prefix, on_object, &pl->per[i]);
	free(prefix);
	return rr == REMOTE_OK ? REMOTE_OK : REMOTE_FAILED;
}

/* Called with the pool's mutex held. */
static void
list_count(void *ctx, size_t i, enum remote_result rr)
{
	struct packs_listing *pl = ctx;

	(void)i;
	if (rr != REMOTE_OK)
		pl->failed++;
}

/* Lists every crate's packs, nremote at a time, then considers them rank by
 * rank: each crate's newest (in the crates' order), then each one's second
 * newest, ...: under the byte cap, every crate's latest build before an
 * older one of any. */
static void
from_packs(const struct prefetch_input *in, const struct strv *crates, struct listing *l)
{
	static const struct prefetch_pool_ops ops = { list_crate, list_count };
	struct packs_listing pl = { .crates = crates };
	size_t rank, i, more = 1;

	l->plan->source = PREFETCH_FROM_PACKS;
	pl.per = xcalloc(crates->n + 1, sizeof *pl.per);
	prefetch_pool_run(in->remote, in->nremote, crates->n, &ops, &pl);
	for (i = 0; i < crates->n; i++)
		if (pl.per[i].n > 1) /* an empty array may be NULL */
			qsort(pl.per[i].f, pl.per[i].n, sizeof *pl.per[i].f, cmp_newest);
	for (rank = 0; more; rank++)
		for (i = 0, more = 0; i < crates->n; i++)
			if (rank < pl.per[i].n) {
				more = 1;
				consider(l, crates->v[i], pl.per[i].f[rank].name,
				    pl.per[i].f[rank].size);
			}
	l->plan->list_failed = pl.failed;
	for (i = 0; i < crates->n; i++)
		free(pl.per[i].f);
	free(pl.per);
}

/* Remembers the first session manifest that is not valid; one log line
 * says it when the plan is made. */
static void
bad_session(struct listing *l, const char *name, const char *why)
{
	if (l->plan->garbage++ == 0) {
		l->first_bad = xstrdup(name);
		snprintf(l->why, sizeof l->why, "%s", why);
	}
}

/* The size listed for res in fl, else dflt. */
static uint64_t
listed_size(const struct found_list *fl, const char *res, uint64_t dflt)
{
	for (size_t i = 0; i < fl->n; i++)
		if (strcmp(fl->f[i].name, res) == 0)
			return fl->f[i].size;
	return dflt;
}

/* A session manifest's sizes are output bytes; the cap counts what is
 * downloaded. When the outputs come to more than half the cap (the cap may
 * bite: a pack is compressed, but a small one carries its frame), the
 * session's crates are listed (nremote at a time) and each key's listed pack
 * size replaces its output bytes; a key not listed keeps them. Below that
 * nothing is listed: the exact source stays one GET. */
static void
pack_sizes(const struct prefetch_input *in, struct remote_session *s, struct listing *l)
{
	static const struct prefetch_pool_ops ops = { list_crate, list_count };
	struct packs_listing pl = { 0 };
	struct strv crates;
	uint64_t sum = 0;
	size_t i, j;

	for (i = 0; i < s->n; i++)
		sum += s->k[i].bytes;
	if (sum <= l->max_bytes / 2)
		return;
	strv_init(&crates);
	for (i = 0; i < s->n; i++)
		strv_push(&crates, s->k[i].crate);
	prefetch_unique_in_order(&crates);
	pl.crates = &crates;
	pl.per = xcalloc(crates.n + 1, sizeof *pl.per);
	prefetch_pool_run(in->remote, in->nremote, crates.n, &ops, &pl);
	for (i = 0; i < s->n; i++) {
		for (j = 0; strcmp(crates.v[j], s->k[i].crate) != 0; j++)
			;
		s->k[i].bytes = listed_size(&pl.per[j], s->k[i].res, s->k[i].bytes);
	}
	l->plan->list_failed += pl.failed;
	for (i = 0; i < crates.n; i++)
		free(pl.per[i].f);
	free(pl.per);
	strv_free(&crates);
}

/* The session manifest of fingerprint fp into s: REMOTE_OK; REMOTE_MISS
 * when absent or not valid (*bad set, said); REMOTE_FAILED (counted in
 * list_failed). */
static enum remote_result
exact_get(const struct prefetch_input *in, struct listing *l, const char *fp,
    struct remote_session *s, int *bad)
{
	char why[160], *name = remote_session_name(fp);
	enum remote_result rr;

	rr = remote_session_get(in->remote[0], in->kache_dir, name, s, why, sizeof why);
	*bad = rr == REMOTE_MISS && why[0] != '\0';
	if (*bad)
		bad_session(l, name, why);
	if (rr == REMOTE_FAILED) { /* not "none": `kache prefetch` says the remote failed */
		log_warnx("prefetch: session manifest %s not read: the remote failed", name);
		if (remote_unreachable(in->remote[0]))
			l->plan->unreachable = 1;
		l->plan->list_failed++;
	}
	free(name);
	return rr;
}

/* The session manifest of the hint's fingerprint; for a check session with
 * none of its own yet, the build's of the same profile directory (its build
 * scripts, proc-macros and their dependencies are the check's too). 1 when
 * one was used, 0 when there is none or the remote failed, -1 when it is not
 * valid (then the packs are used). */
static int
from_exact(const struct prefetch_input *in, struct listing *l)
{
	const struct proto_hint *h = in->h;
	char build[PROTO_HINT_NAME_MAX + 1], fp[HASH_HEX_LEN + 1];
	struct remote_session s;
	enum remote_result rr;
	size_t n0;
	int bad;

	if (h->lock_hash[0] == '\0')
		return 0;
	remote_session_fingerprint(h->lock_hash, h->toolchain, h->target, h->profile,
	    l->plan->session);
	rr = exact_get(in, l, l->plan->session, &s, &bad);
	if (rr == REMOTE_MISS && !bad &&
	    proto_hint_build_profile(h->profile, build, sizeof build)) {
		remote_session_fingerprint(h->lock_hash, h->toolchain, h->target, build, fp);
		if ((rr = exact_get(in, l, fp, &s, &bad)) == REMOTE_OK)
			log_info("prefetch: no session manifest of check sessions (profile %s): "
			         "the build's of profile %s",
			    h->profile, build);
	}
	if (rr != REMOTE_OK)
		return bad ? -1 : 0;
	l->plan->source = PREFETCH_FROM_EXACT;
	pack_sizes(in, &s, l);
	n0 = l->plan->n;
	for (size_t i = 0; i < s.n; i++)
		consider_key(l, &s, i);
	prefetch_plan_thin_parts(l->plan, n0, &s);
	remote_session_free(&s);
	return 1;
}

/* A session manifest listed under sessions/, with its time. */
static int
on_session(const char *name, uint64_t size, int64_t mtime_ms, void *arg)
{
	struct found_list *fl = arg;
	size_t k = strlen(REMOTE_SESSION_PREFIX);

	if (strlen(name) == k + HASH_HEX_LEN && hash_hex_valid(name + k))
		found_add(fl, name + k, size, mtime_ms);
	return fl->n >= PREFETCH_SESSIONS_LISTED_MAX;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
has(const char **sorted, size_t n, const char *crate)
{
	return bsearch(&crate, sorted, n, sizeof *sorted, cmp_str) != NULL;
}

/* How many distinct crates of s are in sorted (the Cargo.lock's). */
static long
shared(const struct remote_session *s, const char **sorted, size_t n)
{
	struct strv seen;
	long count = 0;

	strv_init(&seen);
	for (size_t i = 0; i < s->n; i++)
		if (has(sorted, n, s->k[i].crate))
			strv_push(&seen, s->k[i].crate);
	strv_sort(&seen);
	for (size_t i = 0; i < seen.n; i++)
		count += i == 0 || strcmp(seen.v[i], seen.v[i - 1]) != 0;
	strv_free(&seen);
	return count;
}

/* The names of the newest PREFETCH_CLOSEST_MAX session manifests listed. */
static void
newest_sessions(struct remote *r, struct strv *names)
{
	struct found_list fl = { 0 };

	remote_list(r, REMOTE_SESSION_PREFIX, on_session, &fl);
	if (fl.n > 1) /* fl.f is NULL when none is listed */
		qsort(fl.f, fl.n, sizeof *fl.f, cmp_newest);
	for (size_t i = 0; i < fl.n && i < PREFETCH_CLOSEST_MAX; i++)
		strv_push_owned(names, xasprintf("%s%s", REMOTE_SESSION_PREFIX, fl.f[i].name));
	free(fl.f);
}

/* Of the newest listed sessions, the one sharing the most crates with the
 * Cargo.lock (the newer on a tie): its keys of those crates. 1 when one
 * shares any. */
static int
from_closest(const struct prefetch_input *in, const char **sorted, size_t n, struct listing *l)
{
	struct remote *r = in->remote[0];
	struct remote_session s, best = { 0 };
	struct strv ns;
	char why[160];
	long score, top = 0;
	size_t n0;

	strv_init(&ns);
	newest_sessions(r, &ns);
	for (size_t i = 0; i < ns.n; i++) {
		proto_worker_beat();
		if (strcmp(ns.v[i] + strlen(REMOTE_SESSION_PREFIX), l->plan->session) == 0)
			continue; /* the exact one: absent or not valid already */
		if (remote_session_get(r, in->kache_dir, ns.v[i], &s, why, sizeof why) !=
		    REMOTE_OK) {
			if (why[0] != '\0')
				bad_session(l, ns.v[i], why);
			continue;
		}
		score = shared(&s, sorted, n);
		if (score > top || (score == top && score > 0 && s.created_ms > best.created_ms)) {
			remote_session_free(&best);
			best = s;
			top = score;
		} else {
			remote_session_free(&s);
		}
	}
	strv_free(&ns);
	if (top == 0)
		return 0;
	l->plan->source = PREFETCH_FROM_CLOSEST;
	l->plan->shared = top;
	pack_sizes(in, &best, l);
	n0 = l->plan->n;
	for (size_t i = 0; i < best.n; i++)
		if (has(sorted, n, best.k[i].crate))
			consider_key(l, &best, i);
	prefetch_plan_thin_parts(l->plan, n0, &best);
	remote_session_free(&best);
	return 1;
}

/* The planner first, asked with the workspace's crates@versions when they
 * could be had (else NULL: it may still know the fingerprint): 1 when its plan is
 * used (execute: its candidates; do_nothing: none), 0 when the planner-less
 * path is to be taken (use_fallback, failed: said by prefetch_planner_ask). */
static int
from_planner(const struct prefetch_input *in, const struct strv *crates, struct listing *l)
{
	struct prefetch_planner_answer a;
	struct proto_hint build = *in->h;

	prefetch_planner_ask(in->remote[0], in->h, crates, &a);
	/* a check session of which it knows none: ask for the build's of the
	 * same profile directory, as from_exact reads it */
	if (a.disposition == PREFETCH_PLANNER_FALLBACK && in->h->lock_hash[0] != '\0' &&
	    proto_hint_build_profile(in->h->profile, build.profile, sizeof build.profile)) {
		prefetch_planner_free(&a);
		log_info("prefetch: the planner knows no check session (profile %s): asking for "
		         "the build's of profile %s",
		    in->h->profile, build.profile);
		prefetch_planner_ask(in->remote[0], &build, crates, &a);
	}
	if (a.disposition != PREFETCH_PLANNER_EXECUTE && a.disposition != PREFETCH_PLANNER_NOTHING)
		return 0;
	l->plan->source = PREFETCH_FROM_PLANNER;
	l->plan->refused[0] = '\0'; /* the plan needed no crate names */
	for (size_t i = 0; i < a.n; i++) {
		size_t n = l->plan->n;

		consider(l, a.p[i].crate, a.p[i].res, a.p[i].size);
		if (l->plan->n > n) /* planned: read in its part, where the plan names one */
			memcpy(l->plan->p[n].part, a.p[i].part, sizeof l->plan->p[n].part);
	}
	prefetch_planner_free(&a);
	return 1;
}

/* With the crate names: the closest session (when closest), else the packs. */
static void
choose(const struct prefetch_input *in, const struct strv *crates, int closest, struct listing *l)
{
	const char **sorted = xmalloc((crates->n ? crates->n : 1) * sizeof *sorted);

	for (size_t i = 0; i < crates->n; i++)
		sorted[i] = crates->v[i];
	if (crates->n > 1) /* an empty array may be NULL */
		qsort(sorted, crates->n, sizeof *sorted, cmp_str);
	if (!closest || !from_closest(in, sorted, crates->n, l))
		from_packs(in, crates, l);
	free(sorted);
}

/* While a plan is made its questions fail at once on a remote that cannot
 * be reached (remote_fail_fast): nothing is there to plan from, and a
 * session that retried each question with back-off against an endpoint that
 * drops packets would hold `kache prefetch --wait` for about 26 s (5 tries
 * of a 5 s connection, and back-off). The imports after it retry as before. */
static void
plan_fail_fast(const struct prefetch_input *in, int on)
{
	for (int i = 0; i < in->nremote; i++)
		if (in->remote[i] != NULL)
			remote_fail_fast(in->remote[i], on);
}

void
prefetch_plan_make(const struct prefetch_input *in, struct prefetch_plan *plan)
{
	struct listing l = { .plan = plan, .max_bytes = in->max_bytes };
	struct strv crates, versioned;
	int exact, named, planned;
	int64_t t0;

	memset(plan, 0, sizeof *plan);
	if ((l.store = store_open(in->kache_dir)) == NULL) {
		log_warn("prefetch: cannot open the store %s", in->kache_dir);
		return;
	}
	strv_init(&crates);
	strv_init(&versioned);
	plan_fail_fast(in, 1);
	named = -1;         /* not asked yet */
	if (in->h->guess) { /* an early hint: its exact session manifest, or nothing */
		t0 = clock_ms();
		from_exact(in, &l);
		plan->list_ms = clock_ms() - t0;
		goto out;
	}
	if (in->remote[0] != NULL && remote_planner(in->remote[0]) != NULL) {
		named = prefetch_crates(in->h, &crates, &versioned, plan);
		t0 = clock_ms();
		planned = from_planner(in, named == 0 ? &versioned : NULL, &l);
		plan->list_ms = clock_ms() - t0;
		if (planned)
			goto out;
	}
	t0 = clock_ms();
	exact = from_exact(in, &l);
	plan->list_ms += clock_ms() - t0;
	if (plan->unreachable)
		goto out; /* nothing more to ask it */
	if (exact == 1)
		plan->refused[0] = '\0'; /* the exact session needed no crate names */
	if (exact != 1 && named == -1)
		named = prefetch_crates(in->h, &crates, NULL, plan);
	if (exact != 1 && named == 0) {
		t0 = clock_ms();
		choose(in, &crates, exact == 0, &l); /* an exact one not valid: packs */
		plan->list_ms += clock_ms() - t0;
	}
out:
	/* every plan that counted one says it, an early hint's too */
	if (plan->garbage > 0)
		log_warnx("prefetch: session manifest %s is not valid (%s)%s; ignored, "
		          "%s%s",
		    l.first_bad, l.why, plan->garbage > 1 ? " with others" : "",
		    in->h->guess ? "early hint: the first compile's hint plans without it" :
		                   "using ",
		    in->h->guess ? "" : prefetch_source_name(plan->source));
	plan_fail_fast(in, 0);
	free((void *)l.first_bad);
	strv_free(&crates);
	strv_free(&versioned);
	store_free(&l.store);
}

void
prefetch_plan_free(struct prefetch_plan *plan)
{
	free(plan->p);
	memset(plan, 0, sizeof *plan);
}
