/* The plan (docs/planner.md): an exact fingerprint's session whole; else
 * the crates of the intent taken from the recorded sessions (same
 * toolchain when given, target, profile) that share the most
 * crates@versions with it, each crate from the best session that has it.
 * Under the byte cap, candidates are kept by compile time saved per byte,
 * then listed in the order the build first used them. Ties are broken by
 * creation time and fingerprint, so replicas holding the same manifests
 * give the same plan.
 *
 * Cost: a plan walks the posting lists of the intent's crates@versions
 * (compact arrays, no string work per session) and the keys of at most
 * PLANNER_PLAN_SESSIONS sessions; the ids it compares were computed when
 * each session was stored, and its scratch arrays are kept per thread
 * (stamped with a per-plan epoch, so nothing is cleared or allocated per
 * plan once they have grown). */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "planner/planner_int.h"
#include "remote/bundle.h"

/* One thread's scratch: per session (count, the last intent crate counted,
 * the epoch they belong to), per crate@version posting (wanted in this
 * epoch), per crate name (taken in this epoch, from which session). */
struct sstate {
	uint32_t mark, cnt, last;
};

struct scratch {
	uint32_t epoch;
	struct sstate *ss;
	size_t scap;
	uint32_t *touched;
	size_t ntouched;
	uint32_t *pmark;
	size_t pcap;
	uint32_t *cmark, *ctaken;
	size_t ccap;
};

/* What one plan is working on. */
struct work {
	const struct planner_state *st;
	const struct planner_intent *in;
	struct scratch *sc;
	uint32_t tp, tc;  /* the intent's ids; tc UINT32_MAX: any toolchain */
	uint32_t *wanted; /* posting ids of the intent's crates (2 per crate) */
	size_t nwanted;
};

/* A candidate's part, and where the candidate is in the plan. */
struct part_ref {
	const char *part;
	size_t i;
};

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t scratch_key;

static void scratch_key_make(void);
static void scratch_free(void *p);
static void grow(uint32_t **a, size_t *cap, size_t need, int n_arrays, ...);
static struct scratch *scratch_get(const struct planner_state *st);
static int intent_ids(struct work *w);
static int ranks_above(const struct planner_state *st, uint32_t a, uint32_t ca, uint32_t b,
    uint32_t cb);
static void count_shared(struct work *w);
static size_t pick_sessions(struct work *w, uint32_t *top);
static void collect(struct work *w, const uint32_t *top, size_t ntop, struct planner_plan *p);
static void take_all(const struct planner_manifest *m, struct planner_plan *p);
static int by_res(const void *a, const void *b);
static void dedupe(struct planner_plan *p);
static int by_density(const void *a, const void *b);
static int by_order(const void *a, const void *b);
static void apply_cap(struct planner_plan *p, uint64_t cap);
static int by_part(const void *a, const void *b);
static void thin_parts(struct planner_plan *p);

static void
scratch_free(void *p)
{
	struct scratch *sc = p;

	free(sc->ss), free(sc->touched);
	free(sc->pmark), free(sc->cmark), free(sc->ctaken);
	free(sc);
}

static void
scratch_key_make(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

/* Grows the n_arrays uint32 arrays (a, then the varargs) to hold need
 * entries, the new ones zero; *cap follows. */
static void
grow(uint32_t **a, size_t *cap, size_t need, int n_arrays, ...)
{
	size_t ncap = *cap ? *cap : 1024;
	va_list ap;

	if (need <= *cap)
		return;
	while (ncap < need)
		ncap *= 2;
	va_start(ap, n_arrays);
	for (int k = 0; k < n_arrays; k++) {
		if (k > 0)
			a = va_arg(ap, uint32_t **);
		*a = xrealloc(*a, ncap * sizeof **a);
		memset(*a + *cap, 0, (ncap - *cap) * sizeof **a);
	}
	va_end(ap);
	*cap = ncap;
}

/* This thread's scratch, sized for st, with a new epoch. */
static struct scratch *
scratch_get(const struct planner_state *st)
{
	struct scratch *sc;

	pthread_once(&key_once, scratch_key_make);
	if ((sc = pthread_getspecific(scratch_key)) == NULL) {
		sc = xcalloc(1, sizeof *sc);
		pthread_setspecific(scratch_key, sc);
	}
	if (st->n > sc->scap) {
		size_t ncap = sc->scap ? sc->scap : 1024;

		while (ncap < st->n)
			ncap *= 2;
		sc->ss = xrealloc(sc->ss, ncap * sizeof *sc->ss);
		memset(sc->ss + sc->scap, 0, (ncap - sc->scap) * sizeof *sc->ss);
		sc->touched = xrealloc(sc->touched, ncap * sizeof *sc->touched);
		sc->scap = ncap;
	}
	grow(&sc->pmark, &sc->pcap, st->npl, 1);
	grow(&sc->cmark, &sc->ccap, st->crates.n, 2, &sc->ctaken);
	if (++sc->epoch == 0) { /* wrapped: every mark is stale again */
		for (size_t i = 0; i < sc->scap; i++)
			sc->ss[i].mark = 0;
		memset(sc->pmark, 0, sc->pcap * sizeof *sc->pmark);
		memset(sc->cmark, 0, sc->ccap * sizeof *sc->cmark);
		sc->epoch = 1;
	}
	sc->ntouched = 0;
	return sc;
}

/* The intent's target/profile and toolchain ids, and the postings of its
 * crates (at the version, and by name for keys recorded without one). 0
 * when no session can be compatible. */
static int
intent_ids(struct work *w)
{
	const struct planner_intent *in = w->in;
	char ck[2 * PLANNER_NAME_MAX + 2];
	const uint32_t *v;

	planner_tp_key(in->target, in->profile, ck);
	if ((v = smap_get(&w->st->tps, ck)) == NULL)
		return 0;
	w->tp = *v;
	w->tc = UINT32_MAX;
	if (in->toolchain[0] != '\0') {
		if ((v = smap_get(&w->st->tcs, in->toolchain)) == NULL)
			return 0;
		w->tc = *v;
	}
	w->wanted = xcalloc(2 * in->n + 1, sizeof *w->wanted);
	for (size_t j = 0; j < in->n; j++) {
		for (int pass = 0; pass < 2; pass++) {
			planner_crate_key(in->c[j].name, pass ? "" : in->c[j].version, ck);
			if ((pass && in->c[j].version[0] == '\0') ||
			    (v = smap_get(&w->st->posts, ck)) == NULL) {
				w->wanted[2 * j + pass] = UINT32_MAX;
				continue;
			}
			/* a crate@version named twice is counted once */
			w->wanted[2 * j + pass] =
			    w->sc->pmark[*v] == w->sc->epoch ? UINT32_MAX : *v;
			w->sc->pmark[*v] = w->sc->epoch;
		}
	}
	w->nwanted = 2 * in->n;
	return 1;
}

/* 1 when session a, sharing ca crates, ranks above b sharing cb. */
static int
ranks_above(const struct planner_state *st, uint32_t a, uint32_t ca, uint32_t b, uint32_t cb)
{
	if (ca != cb)
		return ca > cb;
	if (st->created[a] != st->created[b])
		return st->created[a] > st->created[b];
	return strcmp(st->s[a].m.fp, st->s[b].m.fp) < 0;
}

/* cnt[s] for each compatible session s (listed in touched): how many of
 * the intent's crates it used, at the same version or (a key recorded
 * without one) by name. At most PLANNER_PLAN_BUDGET posting entries are
 * read, each list newest first: a plan's work is bounded whatever the
 * intent names. */
static void
count_shared(struct work *w)
{
	const struct planner_state *st = w->st;
	struct scratch *sc = w->sc;
	size_t budget = PLANNER_PLAN_BUDGET;

	for (size_t k = 0; k < w->nwanted && budget > 0; k++) {
		const struct plist *pl;
		uint32_t j1 = (uint32_t)(k / 2) + 1;

		if (w->wanted[k] == UINT32_MAX)
			continue;
		pl = &st->pl[w->wanted[k]];
		for (size_t i = pl->n; i-- > 0 && budget > 0; budget--) {
			const struct pentry *e = &pl->e[i];
			struct sstate *x;

			if (e->tp != w->tp || (w->tc != UINT32_MAX && e->tc != w->tc))
				continue;
			x = &sc->ss[e->s];
			if (x->mark != sc->epoch) {
				*x = (struct sstate){ .mark = sc->epoch, .cnt = 0, .last = 0 };
				sc->touched[sc->ntouched++] = e->s;
			}
			if (x->last == j1) /* by version and by name: once */
				continue;
			x->last = j1;
			x->cnt++;
		}
	}
}

/* The best PLANNER_PLAN_SESSIONS compatible sessions sharing any crate. */
static size_t
pick_sessions(struct work *w, uint32_t *top)
{
	const struct scratch *sc = w->sc;
	uint32_t tc[PLANNER_PLAN_SESSIONS];
	size_t ntop = 0;

	count_shared(w);
	for (size_t t = 0; t < sc->ntouched; t++) {
		uint32_t s = sc->touched[t];
		size_t at;

		for (at = ntop;
		     at > 0 && ranks_above(w->st, s, sc->ss[s].cnt, top[at - 1], tc[at - 1]); at--)
			;
		if (at >= PLANNER_PLAN_SESSIONS)
			continue;
		if (ntop < PLANNER_PLAN_SESSIONS)
			ntop++;
		memmove(&top[at + 1], &top[at], (ntop - 1 - at) * sizeof *top);
		memmove(&tc[at + 1], &tc[at], (ntop - 1 - at) * sizeof *tc);
		top[at] = s;
		tc[at] = sc->ss[s].cnt;
	}
	return ntop;
}

/* The keys of the intent's crates, each crate from the best session that
 * used it (a repeated result key is dropped by dedupe). */
static void
collect(struct work *w, const uint32_t *top, size_t ntop, struct planner_plan *p)
{
	struct scratch *sc = w->sc;
	size_t total = 0;

	for (size_t r = 0; r < ntop; r++)
		total += w->st->s[top[r]].m.n;
	p->k = xcalloc(total + 1, sizeof *p->k);
	for (size_t r = 0; r < ntop; r++) {
		const struct sess *x = &w->st->s[top[r]];

		for (size_t i = 0; i < x->m.n; i++) {
			uint32_t c = x->kcrate[i];

			if (sc->pmark[x->kpost[i]] != sc->epoch ||
			    (sc->cmark[c] == sc->epoch && sc->ctaken[c] != r))
				continue;
			sc->cmark[c] = sc->epoch;
			sc->ctaken[c] = (uint32_t)r;
			p->k[p->n++] = x->m.k[i];
		}
	}
}

static void
take_all(const struct planner_manifest *m, struct planner_plan *p)
{
	p->k = xcalloc(m->n + 1, sizeof *p->k);
	if (m->n > 0) /* m->k may be NULL when empty */
		memcpy(p->k, m->k, m->n * sizeof *p->k);
	p->n = m->n;
}

/* By result key, then by position (order holds the position here). */
static int
by_res(const void *a, const void *b)
{
	const struct planner_key *x = a, *y = b;
	int c = strcmp(x->res, y->res);

	return c != 0 ? c : (x->order > y->order) - (x->order < y->order);
}

/* Keeps the first of each result key (the best session's); the order of
 * what is kept does not matter (apply_cap sorts). */
static void
dedupe(struct planner_plan *p)
{
	struct planner_key *v, *kept;
	size_t out = 0;

	if (p->n < 2)
		return;
	v = xmalloc(p->n * sizeof *v);
	kept = xmalloc(p->n * sizeof *kept);
	for (size_t i = 0; i < p->n; i++) {
		v[i] = p->k[i];
		v[i].order = (uint32_t)i; /* the position, to keep the first */
	}
	qsort(v, p->n, sizeof *v, by_res);
	for (size_t i = 0; i < p->n; i++)
		if (i == 0 || strcmp(v[i].res, v[i - 1].res) != 0)
			kept[out++] = p->k[v[i].order];
	free(p->k);
	free(v);
	p->k = kept;
	p->n = out;
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

static int
by_part(const void *a, const void *b)
{
	const struct part_ref *x = a, *y = b;

	return strcmp(x->part, y->part);
}

/* A part is read whole for the packs planned from it: one not worth it
 * (bundle_part_worth, as the client's prefetch_plan_thin_parts judges a
 * session manifest's parts) or that fewer than BUNDLE_MIN_PACKS of its packs
 * are planned from is not named. */
static void
thin_parts(struct planner_plan *p)
{
	struct part_ref *v = xmalloc((p->n + 1) * sizeof *v);
	size_t n = 0, i, j;

	for (i = 0; i < p->n; i++)
		if (p->k[i].part[0] != '\0')
			v[n++] = (struct part_ref){ p->k[i].part, i };
	if (n > 1)
		qsort(v, n, sizeof *v, by_part);
	for (i = 0; i < n; i = j) {
		uint32_t held = 0;

		for (j = i; j < n && strcmp(v[j].part, v[i].part) == 0; j++)
			held = p->k[v[j].i].part_n > held ? p->k[v[j].i].part_n : held;
		if (!bundle_part_worth(j - i, held) || j - i < BUNDLE_MIN_PACKS)
			for (size_t k = i; k < j; k++)
				p->k[v[k].i].part[0] = '\0';
	}
	free(v);
}

void
planner_state_plan(struct planner_state *st, const struct planner_intent *in, uint64_t cap,
    struct planner_plan *p)
{
	uint32_t top[PLANNER_PLAN_SESSIONS];
	struct work w = { .st = st, .in = in };
	const uint32_t *exact;
	size_t ntop = 0;

	memset(p, 0, sizeof *p);
	pthread_rwlock_rdlock(&st->lock);
	if ((exact = smap_get(&st->fps, in->fp)) != NULL && *exact != PLANNER_SLOT_FREE) {
		p->source = "exact";
		top[0] = *exact;
		ntop = 1;
		take_all(&st->s[*exact].m, p);
	} else {
		w.sc = scratch_get(st);
		if (intent_ids(&w))
			ntop = pick_sessions(&w, top);
		p->source = ntop > 0 ? "similar" : "none";
		collect(&w, top, ntop, p);
	}
	for (size_t i = 0; i < ntop; i++)
		memcpy(p->sessions[i], st->s[top[i]].m.fp, HASH_HEX_LEN + 1);
	p->nsessions = ntop;
	pthread_rwlock_unlock(&st->lock);
	free(w.wanted);
	dedupe(p);
	apply_cap(p, cap);
	thin_parts(p);
	p->d = ntop == 0 ? PLANNER_USE_FALLBACK : p->n == 0 ? PLANNER_DO_NOTHING : PLANNER_EXECUTE;
}
