#include "cli/why_explain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

struct crate_recs {
	char crate[128];
	struct why_rec *v;
	size_t n;
};

struct whyx {
	char *dir;
	struct crate_recs *c;
	size_t n;
};

static struct crate_recs *recs_of(struct whyx *x, const char *crate);
static const struct why_part *find_part(const struct why_rec *r, const struct why_part *p);
static size_t distance(const struct why_rec *a, const struct why_rec *b);
static const struct why_rec *closest(struct crate_recs *cr, const struct why_rec *miss);
static char *shown(const char *name);
static void add(struct why_list *l, const char *crate, int depth, const struct why_part *p,
    const char *change, char *message);
static char *describe(const struct why_part *now, const struct why_part *was, const char *change);
static void explain_at(struct whyx *x, const struct why_rec *miss, int depth, struct why_list *out);

struct whyx *
whyx_new(const char *dir)
{
	struct whyx *x = xcalloc(1, sizeof *x);

	x->dir = xstrdup(dir);
	return x;
}

void
whyx_free(struct whyx **xp)
{
	struct whyx *x = *xp;

	if (x == NULL)
		return;
	for (size_t i = 0; i < x->n; i++) {
		for (size_t j = 0; j < x->c[i].n; j++)
			why_rec_clear(&x->c[i].v[j]);
		free(x->c[i].v);
	}
	free(x->c);
	free(x->dir);
	free(x);
	*xp = NULL;
}

/* crate's records, loaded on first use (none when the file is unreadable). */
static struct crate_recs *
recs_of(struct whyx *x, const char *crate)
{
	struct crate_recs *cr;

	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->c[i].crate, crate) == 0)
			return &x->c[i];
	x->c = xrealloc(x->c, (x->n + 1) * sizeof *x->c);
	cr = &x->c[x->n++];
	memset(cr, 0, sizeof *cr);
	snprintf(cr->crate, sizeof cr->crate, "%s", crate);
	if (why_crate_valid(crate))
		why_load(x->dir, crate, &cr->v, &cr->n);
	return cr;
}

const struct why_rec *
whyx_find(struct whyx *x, const char *crate, const unsigned char *inv, int64_t before_ms)
{
	struct crate_recs *cr = recs_of(x, crate);

	for (size_t i = cr->n; i-- > 0;) {
		if (inv != NULL && memcmp(cr->v[i].inv, inv, HASH_LEN) != 0)
			continue;
		if (before_ms > 0 && cr->v[i].ts_ms > before_ms)
			continue;
		return &cr->v[i];
	}
	return NULL;
}

static const struct why_part *
find_part(const struct why_rec *r, const struct why_part *p)
{
	for (size_t i = 0; i < r->n; i++)
		if (why_part_same(&r->parts[i], p))
			return &r->parts[i];
	return NULL;
}

/* How many parts differ between a and b (changed, or in one only). */
static size_t
distance(const struct why_rec *a, const struct why_rec *b)
{
	size_t d = 0;

	for (size_t i = 0; i < a->n; i++) {
		const struct why_part *q = find_part(b, &a->parts[i]);

		d += q == NULL || memcmp(q->digest, a->parts[i].digest, HASH_LEN) != 0;
	}
	for (size_t i = 0; i < b->n; i++)
		d += find_part(a, &b->parts[i]) == NULL;
	return d;
}

/* The earlier record of the crate nearest to miss (the later one of a tie). */
static const struct why_rec *
closest(struct crate_recs *cr, const struct why_rec *miss)
{
	const struct why_rec *best = NULL;
	size_t bestd = 0;

	for (size_t i = 0; i < cr->n && &cr->v[i] != miss; i++) {
		size_t d = distance(miss, &cr->v[i]);

		if (best == NULL || d <= bestd) {
			best = &cr->v[i];
			bestd = d;
		}
	}
	return best;
}

/* A folded name as a person reads it: the workspace's paths relative to it. */
static char *
shown(const char *name)
{
	static const char *const from[] = { "@@KACHE_W@@/", "@@KACHE_T@@", "@@KACHE_H@@" };
	static const char *const to[] = { "", "<target>", "$CARGO_HOME" };
	struct buf b;
	const char *p = name;

	buf_init(&b);
	while (*p) {
		int k;

		for (k = 0; k < 3 && !str_starts_with(p, from[k]); k++)
			;
		if (k < 3) {
			buf_addstr(&b, to[k]);
			p += strlen(from[k]);
		} else {
			buf_addch(&b, *p++);
		}
	}
	buf_addstr(&b, "");
	return buf_detach(&b, NULL);
}

static void
add(struct why_list *l, const char *crate, int depth, const struct why_part *p, const char *change,
    char *message)
{
	struct why_cause *c;

	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	c = &l->v[l->n++];
	snprintf(c->crate, sizeof c->crate, "%s", crate);
	c->depth = depth;
	c->part = p ? why_kind_name(p->kind) : change[0] == 'f' ? "history" : "none";
	c->change = change;
	c->name = shown(p ? p->name : "");
	c->message = message;
}

/* One line for one changed part; now or was is NULL when added or removed. */
static char *
describe(const struct why_part *now, const struct why_part *was, const char *change)
{
	const struct why_part *p = now ? now : was;
	char *n, *o, *m;

	if (p == NULL)
		return xstrdup("");
	n = shown(p->name);
	o = shown(was ? was->name : "-");

	switch (p->kind) {
	case WHY_COMPILER: m = xasprintf("compiler changed: %s -> %s", o, n); break;
	case WHY_ARG: m = xasprintf("argument %s: %s", now ? "added" : "removed", n); break;
	case WHY_ENV:
		m = xasprintf("environment variable %s %s (it reaches rustc)", n,
		    now && was ? "changed" :
		        now    ? "set" :
		                 "unset");
		break;
	case WHY_EXTERN: m = xasprintf("dependency %s %s (--extern %s)", n, change, n); break;
	case WHY_NATIVE:
		/* what the key reads by content that no dep-info names (key.c) */
		m = xasprintf("native library, linker input, PGO profile or target spec %s %s", n,
		    change);
		break;
	case WHY_HOST_CPU:
		m = was && now && strcmp(was->name, now->name) == 0 ?
		    xasprintf("host CPU changed (-C target-cpu=native): %s, other features", n) :
		    xasprintf("host CPU changed (-C target-cpu=native): %s -> %s", o, n);
		break;
	case WHY_SOURCE:
		m = xasprintf("source file %s: %s",
		    now && was ? "changed" :
		        now    ? "added" :
		                 "no longer read",
		    n);
		break;
	case WHY_ENVDEP:
		m = xasprintf("environment variable %s (read by env! or a proc macro) %s", n,
		    change);
		break;
	default:
		m = xasprintf("%s changed: %s -> %s",
		    p->kind == WHY_ROOT_WS         ? "workspace directory" :
		        p->kind == WHY_ROOT_TARGET ? "target directory" :
		                                     "CARGO_HOME",
		    o, n);
		break;
	}
	free(n);
	free(o);
	return m;
}

/* The differences of miss against its closest earlier record; a changed
 * --extern is followed to that crate's record of the time (depth bounded). */
static void
explain_at(struct whyx *x, const struct why_rec *miss, int depth, struct why_list *out)
{
	const struct why_rec *was = closest(recs_of(x, miss->crate), miss);
	size_t before = out->n;

	if (was == NULL) {
		add(out, miss->crate, depth, NULL, "first",
		    xasprintf("no earlier compile of %s is recorded: its first build here",
		        miss->crate));
		return;
	}
	for (size_t i = 0; i < miss->n; i++) {
		const struct why_part *p = &miss->parts[i], *q = find_part(was, p);

		if (q != NULL && memcmp(q->digest, p->digest, HASH_LEN) == 0)
			continue;
		add(out, miss->crate, depth, p, q ? "changed" : "added",
		    describe(p, q, q ? "changed" : "added"));
		if (q != NULL && p->kind == WHY_EXTERN && depth < WHYX_MAX_DEPTH) {
			const struct why_rec *up = whyx_find(x, p->name, NULL, miss->ts_ms);

			if (up != NULL && up != miss)
				explain_at(x, up, depth + 1, out);
		}
	}
	for (size_t i = 0; i < was->n; i++)
		if (find_part(miss, &was->parts[i]) == NULL)
			add(out, miss->crate, depth, &was->parts[i], "removed",
			    describe(NULL, &was->parts[i], "removed"));
	if (out->n == before) {
		time_t t = (time_t)(was->ts_ms / 1000);
		struct tm tm;
		char when[32] = "-";

		if (localtime_r(&t, &tm) != NULL)
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
		add(out, miss->crate, depth, NULL, "same",
		    xasprintf("nothing in the key of %s changed since its compile of %s: that "
		              "result "
		              "is no longer in the store (evicted by gc or removed)",
		        miss->crate, when));
	}
}

void
whyx_explain(struct whyx *x, const struct why_rec *miss, struct why_list *out)
{
	explain_at(x, miss, 0, out);
}

const char *
whyx_cause(const struct why_list *l)
{
	static const struct {
		enum why_kind k;
		const char *word;
	} order[] = { { WHY_COMPILER, "compiler" }, { WHY_ROOT_WS, "roots" },
		{ WHY_ROOT_TARGET, "roots" }, { WHY_ROOT_HOME, "roots" }, { WHY_ARG, "arguments" },
		{ WHY_ENV, "environment" }, { WHY_SOURCE, "source" }, { WHY_ENVDEP, "env-dep" },
		{ WHY_NATIVE, "native-library" }, { WHY_HOST_CPU, "host-cpu" },
		{ WHY_EXTERN, "dependency" } };

	for (size_t o = 0; o < sizeof order / sizeof order[0]; o++)
		for (size_t i = 0; i < l->n; i++)
			if (l->v[i].depth == 0 &&
			    strcmp(l->v[i].part, why_kind_name(order[o].k)) == 0)
				return order[o].word;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].depth == 0)
			return strcmp(l->v[i].change, "first") == 0 ? "new" : "evicted";
	return "unknown";
}

void
whyx_list_clear(struct why_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].message);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
