/* Choosing what a session imports, most exact first: the session manifest of
 * this workspace's fingerprint, else the closest recorded session, else the
 * packs of the Cargo.lock's crates (prefetch_internal.h). A planner slots in
 * here as one more source. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "proto/worker.h"
#include "remote/session.h"
#include "store/store.h"
#include "workers/prefetch/prefetch_internal.h"

struct listing {
	struct prefetch_plan *plan;
	struct store *store;
	const char *crate;
	size_t prefix_len;
	uint64_t max_bytes, bytes;
	const char *first_bad; /* the first session manifest not valid, for the log */
	char why[160];
};

/* The names listed under sessions/, at most PREFETCH_CLOSEST_MAX. */
struct names {
	struct strv v;
};

static int on_object(const char *name, uint64_t size, void *arg);
static int on_session(const char *name, uint64_t size, void *arg);
static void plan_add(struct prefetch_plan *plan, const char *crate, const char *res, uint64_t size);
static void consider(struct listing *l, const char *crate, const char *res, uint64_t size);
static void from_packs(struct remote *r, const struct strv *crates, struct listing *l);
static int from_exact(struct remote *r, const char *kache_dir, const struct proto_hint *h,
    struct listing *l);
static int from_closest(struct remote *r, const char *kache_dir, const char **sorted, size_t n,
    struct listing *l);
static long shared(const struct remote_session *s, const char **sorted, size_t n);
static int has(const char **sorted, size_t n, const char *crate);
static int cmp_str(const void *a, const void *b);
static void bad_session(struct listing *l, const char *name, const char *why);

static const char *const source_names[] = { "none", "exact session manifest", "closest session",
	"packs" };

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
}

/* A candidate: counted as present when the store has its result, left out
 * past the byte cap, else planned. */
static void
consider(struct listing *l, const char *crate, const char *res, uint64_t size)
{
	char *entry = store_path(l->store, "entries", res);
	int present = access(entry, F_OK) == 0;

	free(entry);
	if (present) {
		l->plan->present++;
	} else if (l->bytes + size > l->max_bytes) {
		l->plan->over_cap++;
		l->plan->over_cap_bytes += size;
	} else {
		l->bytes += size;
		plan_add(l->plan, crate, res, size);
	}
}

/* One listed object under packs/<crate>/: "<64 hex>.pack" is a candidate;
 * anything else (a temporary, a stranger's file) is passed over. */
static int
on_object(const char *name, uint64_t size, void *arg)
{
	struct listing *l = arg;
	const char *base = name + l->prefix_len;
	char res[HASH_HEX_LEN + 1];

	proto_worker_beat();
	if (strlen(base) != HASH_HEX_LEN + 5 || strcmp(base + HASH_HEX_LEN, ".pack") != 0)
		return 0;
	memcpy(res, base, HASH_HEX_LEN);
	res[HASH_HEX_LEN] = '\0';
	if (hash_hex_valid(res))
		consider(l, l->crate, res, size);
	return 0;
}

static void
from_packs(struct remote *r, const struct strv *crates, struct listing *l)
{
	char *prefix;

	l->plan->source = PREFETCH_FROM_PACKS;
	/* a remote failing three listings in a row is left for this session */
	for (size_t i = 0, failed = 0; i < crates->n && failed < 3; i++) {
		prefix = xasprintf("packs/%s/", crates->v[i]);
		l->crate = crates->v[i];
		l->prefix_len = strlen(prefix);
		if (remote_list(r, prefix, on_object, l) != REMOTE_OK)
			l->plan->list_failed++, failed++;
		else
			failed = 0;
		free(prefix);
	}
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

/* The session manifest of the hint's fingerprint: 1 when it was used, 0 when
 * there is none, -1 when it is not valid (then the packs are used). */
static int
from_exact(struct remote *r, const char *kache_dir, const struct proto_hint *h, struct listing *l)
{
	struct remote_session s;
	char why[160], *name;
	enum remote_result rr;

	if (h->lock_hash[0] == '\0')
		return 0;
	remote_session_fingerprint(h->lock_hash, h->toolchain, h->target, h->profile,
	    l->plan->session);
	name = remote_session_name(l->plan->session);
	rr = remote_session_get(r, kache_dir, name, &s, why, sizeof why);
	if (rr == REMOTE_MISS && why[0] != '\0')
		bad_session(l, name, why);
	free(name);
	if (rr != REMOTE_OK)
		return rr == REMOTE_MISS && why[0] != '\0' ? -1 : 0;
	l->plan->source = PREFETCH_FROM_EXACT;
	for (size_t i = 0; i < s.n; i++)
		consider(l, s.k[i].crate, s.k[i].res, s.k[i].bytes);
	remote_session_free(&s);
	return 1;
}

static int
on_session(const char *name, uint64_t size, void *arg)
{
	struct names *ns = arg;
	size_t k = strlen(REMOTE_SESSION_PREFIX);

	(void)size;
	if (strlen(name) == k + HASH_HEX_LEN && hash_hex_valid(name + k))
		strv_push(&ns->v, name);
	return ns->v.n >= PREFETCH_CLOSEST_MAX;
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

/* The listed session sharing the most crates with the Cargo.lock (the newer
 * on a tie): its keys of those crates. 1 when one shares any. */
static int
from_closest(struct remote *r, const char *kache_dir, const char **sorted, size_t n,
    struct listing *l)
{
	struct remote_session s, best = { 0 };
	struct names ns;
	char why[160];
	long score, top = 0;

	strv_init(&ns.v);
	remote_list(r, REMOTE_SESSION_PREFIX, on_session, &ns);
	for (size_t i = 0; i < ns.v.n; i++) {
		proto_worker_beat();
		if (strcmp(ns.v.v[i] + strlen(REMOTE_SESSION_PREFIX), l->plan->session) == 0)
			continue; /* the exact one: absent or not valid already */
		if (remote_session_get(r, kache_dir, ns.v.v[i], &s, why, sizeof why) != REMOTE_OK) {
			if (why[0] != '\0')
				bad_session(l, ns.v.v[i], why);
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
	strv_free(&ns.v);
	if (top == 0)
		return 0;
	l->plan->source = PREFETCH_FROM_CLOSEST;
	l->plan->shared = top;
	for (size_t i = 0; i < best.n; i++)
		if (has(sorted, n, best.k[i].crate))
			consider(l, best.k[i].crate, best.k[i].res, best.k[i].bytes);
	remote_session_free(&best);
	return 1;
}

void
prefetch_plan_make(struct remote *r, const char *kache_dir, const struct proto_hint *h,
    const struct strv *crates, uint64_t max_bytes, struct prefetch_plan *plan)
{
	struct listing l = { .plan = plan, .max_bytes = max_bytes };
	const char **sorted;
	int exact;

	memset(plan, 0, sizeof *plan);
	if ((l.store = store_open(kache_dir)) == NULL) {
		log_warn("prefetch: cannot open the store %s", kache_dir);
		return;
	}
	sorted = xmalloc((crates->n ? crates->n : 1) * sizeof *sorted);
	for (size_t i = 0; i < crates->n; i++)
		sorted[i] = crates->v[i];
	qsort(sorted, crates->n, sizeof *sorted, cmp_str);
	exact = from_exact(r, kache_dir, h, &l);
	if (exact == 0 && !from_closest(r, kache_dir, sorted, crates->n, &l))
		from_packs(r, crates, &l);
	else if (exact < 0)
		from_packs(r, crates, &l);
	if (plan->garbage > 0)
		log_warnx("prefetch: session manifest %s is not valid (%s)%s; ignored, "
		          "using %s",
		    l.first_bad, l.why, plan->garbage > 1 ? " with others" : "",
		    prefetch_source_name(plan->source));
	free((void *)l.first_bad);
	free(sorted);
	store_free(&l.store);
}

void
prefetch_plan_free(struct prefetch_plan *plan)
{
	free(plan->p);
	memset(plan, 0, sizeof *plan);
}
