/* The planner's state: every manifest in a RocksDB ("m" + fingerprint ->
 * the manifest's JSON, as planner_encode_manifest writes it) and in memory,
 * with string maps: fingerprint -> session, crate@version -> the sessions
 * that used it (postings), and the ids a plan compares (planner_int.h). A
 * replaced or expired session leaves its postings at once. Bounds
 * (planner_state_set_bounds): a number of sessions and an age; the oldest
 * go first. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "planner/planner.h"
#include "planner/planner_int.h"

static void copy_manifest(struct planner_manifest *dst, const struct planner_manifest *src);
static uint32_t intern(struct smap *m, const char *key);
static void index_session(struct planner_state *st, uint32_t i);
static void count_parts(struct planner_manifest *m);
static uint32_t add_posting(struct planner_state *st, const char *ck, uint32_t i);
static void unindex_session(struct planner_state *st, uint32_t i);
static uint32_t new_slot(struct planner_state *st);
static void drop_slot(struct planner_state *st, uint32_t i);
static void mem_put(struct planner_state *st, const struct planner_manifest *m);
static int db_open(struct planner_state *st, const char *dir);
static int db_load(struct planner_state *st);
static void forget(struct planner_state *st, uint32_t i);
static void compact(struct planner_state *st);
static int expire_locked(struct planner_state *st, int64_t now);
static int older_than_all(const struct planner_state *st, const struct planner_manifest *m);

static void
copy_manifest(struct planner_manifest *dst, const struct planner_manifest *src)
{
	*dst = *src;
	strv_init(&dst->features);
	for (size_t i = 0; i < src->features.n; i++)
		strv_push(&dst->features, src->features.v[i]);
	dst->k = xcalloc(src->n + 1, sizeof *dst->k);
	if (src->n > 0) /* src->k may be NULL when empty */
		memcpy(dst->k, src->k, src->n * sizeof *dst->k);
}

/* The id of key in m, a new one (the count so far) when absent. */
static uint32_t
intern(struct smap *m, const char *key)
{
	const uint32_t *v = smap_get(m, key);

	return v != NULL ? *v : *smap_put(m, key, (uint32_t)m->n);
}

/* The posting list of ck (made when new) with session i appended; its id. */
static uint32_t
add_posting(struct planner_state *st, const char *ck, uint32_t i)
{
	uint32_t *v = smap_get(&st->posts, ck);
	struct plist *p;

	if (v == NULL) {
		if (st->npl == st->capl) {
			st->capl = st->capl ? st->capl * 2 : 1024;
			st->pl = xrealloc(st->pl, st->capl * sizeof *st->pl);
		}
		memset(&st->pl[st->npl], 0, sizeof st->pl[0]);
		v = smap_put(&st->posts, ck, (uint32_t)st->npl++);
	}
	p = &st->pl[*v];
	/* A session's postings are added together: a repeat is the last one. */
	if (p->n > 0 && p->e[p->n - 1].s == i)
		return *v;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4;
		p->e = xrealloc(p->e, p->cap * sizeof *p->e);
	}
	p->e[p->n++] = (struct pentry){ .s = i, .tp = st->tp[i], .tc = st->tc[i] };
	return *v;
}

/* Session i's postings, and the ids a plan works with (planner_int.h). */
static void
index_session(struct planner_state *st, uint32_t i)
{
	struct sess *x = &st->s[i];
	const struct planner_manifest *m = &x->m;
	char ck[2 * PLANNER_NAME_MAX + 2];

	planner_tp_key(m->target, m->profile, ck);
	st->tp[i] = intern(&st->tps, ck);
	st->tc[i] = intern(&st->tcs, m->toolchain);
	x->kpost = xcalloc(m->n + 1, sizeof *x->kpost);
	x->kcrate = xcalloc(m->n + 1, sizeof *x->kcrate);
	for (size_t j = 0; j < m->n; j++) {
		planner_crate_key(m->k[j].crate, m->k[j].version, ck);
		x->kpost[j] = add_posting(st, ck, i);
		x->kcrate[j] = intern(&st->crates, m->k[j].crate);
	}
	count_parts(&x->m);
}

/* Each key's part_n: how many of m's keys its bundle part holds (a plan
 * names a part only where it would read most of it). */
static void
count_parts(struct planner_manifest *m)
{
	struct smap n = { 0 };
	uint32_t *c;

	for (size_t j = 0; j < m->n; j++) {
		if (m->k[j].part[0] == '\0')
			continue;
		if ((c = smap_get(&n, m->k[j].part)) != NULL)
			(*c)++;
		else
			smap_put(&n, m->k[j].part, 1);
	}
	for (size_t j = 0; j < m->n; j++)
		m->k[j].part_n = m->k[j].part[0] != '\0' ? *smap_get(&n, m->k[j].part) : 0;
	smap_free(&n);
}

/* A free slot, or a new one at the end. */
static uint32_t
new_slot(struct planner_state *st)
{
	uint32_t i;

	if (st->nfree > 0)
		return st->freel[--st->nfree];
	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 1024;
		st->s = xrealloc(st->s, st->cap * sizeof *st->s);
		st->tp = xrealloc(st->tp, st->cap * sizeof *st->tp);
		st->tc = xrealloc(st->tc, st->cap * sizeof *st->tc);
		st->created = xrealloc(st->created, st->cap * sizeof *st->created);
		st->freel = xrealloc(st->freel, st->cap * sizeof *st->freel);
	}
	i = (uint32_t)st->n++;
	memset(&st->s[i], 0, sizeof st->s[i]);
	return i;
}

/* Session i out of the posting lists it is in (a scan of each: a put or an
 * expiry pays, never a plan). */
static void
unindex_session(struct planner_state *st, uint32_t i)
{
	const struct sess *x = &st->s[i];

	if (x->kpost == NULL) /* never indexed */
		return;
	for (size_t j = 0; j < x->m.n; j++) {
		struct plist *p = &st->pl[x->kpost[j]];
		size_t out = 0;

		for (size_t k = 0; k < p->n; k++)
			if (p->e[k].s != i)
				p->e[out++] = p->e[k];
		p->n = out;
	}
}

/* Empties slot i, out of the postings; the caller removes its fingerprint
 * from fps when it is gone for good. */
static void
drop_slot(struct planner_state *st, uint32_t i)
{
	unindex_session(st, i);
	planner_manifest_free(&st->s[i].m);
	free(st->s[i].kpost);
	free(st->s[i].kcrate);
	st->s[i].kpost = st->s[i].kcrate = NULL;
	st->tp[i] = PLANNER_SLOT_FREE;
}

/* In memory only; the caller holds the write lock. */
static void
mem_put(struct planner_state *st, const struct planner_manifest *m)
{
	uint32_t *v = smap_get(&st->fps, m->fp), i;

	if (v != NULL && *v != PLANNER_SLOT_FREE) {
		i = *v;
		drop_slot(st, i);
	} else {
		i = new_slot(st);
		smap_put(&st->fps, m->fp, i);
		st->live++;
	}
	copy_manifest(&st->s[i].m, m);
	st->created[i] = m->created_ms;
	index_session(st, i);
}

/* Session i gone for good: from the database, memory and fps (its slot
 * free for the next); the write lock is held. A failed delete is logged:
 * the manifest comes back at the next start and expires again then. */
static void
forget(struct planner_state *st, uint32_t i)
{
	char key[HASH_HEX_LEN + 2], *err = NULL;

	key[0] = 'm';
	memcpy(key + 1, st->s[i].m.fp, HASH_HEX_LEN + 1);
	rocksdb_delete(st->db, st->wo, key, HASH_HEX_LEN + 1, &err);
	if (err != NULL) {
		log_warnx("planner: removing expired manifest %s: %s", key + 1, err);
		rocksdb_free(err);
	}
	*smap_get(&st->fps, st->s[i].m.fp) = PLANNER_SLOT_FREE;
	drop_slot(st, i);
	st->freel[st->nfree++] = i;
	st->live--;
	st->dropped++;
}

/* Rebuilds fps without the fingerprints of sessions gone (open addressing
 * keeps no tombstones), so that memory follows what is held. */
static void
compact(struct planner_state *st)
{
	struct smap fps = { 0 };

	for (size_t i = 0; i < st->n; i++)
		if (st->tp[i] != PLANNER_SLOT_FREE)
			smap_put(&fps, st->s[i].m.fp, (uint32_t)i);
	smap_free(&st->fps);
	st->fps = fps;
	st->dropped = 0;
}

/* 1 when max_sessions are held and m is older than every one of them. */
static int
older_than_all(const struct planner_state *st, const struct planner_manifest *m)
{
	if (st->max_sessions == 0 || st->live < st->max_sessions)
		return 0;
	for (size_t i = 0; i < st->n; i++)
		if (st->tp[i] != PLANNER_SLOT_FREE && st->created[i] <= m->created_ms)
			return 0;
	return 1;
}

/* Applies the bounds: sessions older than max_age_ms go, then the oldest
 * (ties: the largest fingerprint) until max_sessions are held. Returns the
 * number removed. The write lock is held. */
static int
expire_locked(struct planner_state *st, int64_t now)
{
	int removed = 0;

	for (size_t i = 0; st->max_age_ms > 0 && i < st->n; i++)
		if (st->tp[i] != PLANNER_SLOT_FREE && st->created[i] < now - st->max_age_ms) {
			forget(st, (uint32_t)i);
			removed++;
		}
	while (st->max_sessions > 0 && st->live > st->max_sessions) {
		size_t o = st->n;

		for (size_t i = 0; i < st->n; i++)
			if (st->tp[i] != PLANNER_SLOT_FREE &&
			    (o == st->n || st->created[i] < st->created[o] ||
			        (st->created[i] == st->created[o] &&
			            strcmp(st->s[i].m.fp, st->s[o].m.fp) > 0)))
				o = i;
		forget(st, (uint32_t)o);
		removed++;
	}
	if (st->dropped > st->live / 2 + 1024)
		compact(st);
	return removed;
}

static int
db_open(struct planner_state *st, const char *dir)
{
	char *err = NULL;

	if (fs_mkdir_p(dir, 0700) < 0) {
		log_warn("planner: cannot create %s", dir);
		return -1;
	}
	st->opt = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(st->opt, 1);
	rocksdb_options_set_max_open_files(st->opt, 64);
	rocksdb_options_set_keep_log_file_num(st->opt, 2);
	rocksdb_options_set_info_log_level(st->opt, 3); /* errors only */
	st->ro = rocksdb_readoptions_create();
	st->wo = rocksdb_writeoptions_create();
	st->db = rocksdb_open(st->opt, dir, &err);
	if (st->db == NULL) {
		log_warnx("planner: cannot open the database %s: %s", dir, err);
		rocksdb_free(err);
		return -1;
	}
	return 0;
}

/* Every stored manifest into memory; one that no longer decodes is skipped
 * with a log line (the rest still serve). */
static int
db_load(struct planner_state *st)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, st->ro);
	char why[256], *err = NULL;
	size_t kn, vn, bad = 0;

	for (rocksdb_iter_seek(it, "m", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		const char *k = rocksdb_iter_key(it, &kn), *v = rocksdb_iter_value(it, &vn);
		struct planner_manifest m;

		if (kn == 0 || k[0] != 'm')
			break;
		if (planner_decode_manifest(v, vn, &m, why, sizeof why) < 0) {
			bad++;
			continue;
		}
		mem_put(st, &m);
		planner_manifest_free(&m);
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (bad > 0)
		log_warnx("planner: %zu stored manifests do not decode; skipped", bad);
	if (err != NULL) {
		log_warnx("planner: reading the database: %s", err);
		rocksdb_free(err);
		return -1;
	}
	return 0;
}

struct planner_state *
planner_state_open(const char *dir)
{
	struct planner_state *st = xcalloc(1, sizeof *st);
	int64_t t0 = clock_ms();

	pthread_rwlock_init(&st->lock, NULL);
	if (db_open(st, dir) < 0 || db_load(st) < 0) {
		planner_state_free(&st);
		return NULL;
	}
	log_info("planner: %zu manifests loaded from %s in %lld ms", st->live, dir,
	    (long long)(clock_ms() - t0));
	return st;
}

void
planner_state_free(struct planner_state **sp)
{
	struct planner_state *st = *sp;

	if (st == NULL)
		return;
	if (st->db)
		rocksdb_close(st->db);
	if (st->opt)
		rocksdb_options_destroy(st->opt);
	if (st->ro)
		rocksdb_readoptions_destroy(st->ro);
	if (st->wo)
		rocksdb_writeoptions_destroy(st->wo);
	for (size_t i = 0; i < st->n; i++)
		if (st->tp[i] != PLANNER_SLOT_FREE)
			drop_slot(st, (uint32_t)i);
	for (size_t i = 0; i < st->npl; i++) {
		free(st->pl[i].e);
	}
	free(st->s), free(st->tp), free(st->tc), free(st->freel);
	free(st->created);
	free(st->pl);
	smap_free(&st->fps);
	smap_free(&st->posts);
	smap_free(&st->tps);
	smap_free(&st->tcs);
	smap_free(&st->crates);
	pthread_rwlock_destroy(&st->lock);
	free(st);
	*sp = NULL;
}

void
planner_state_set_bounds(struct planner_state *st, size_t max_sessions, int64_t max_age_ms)
{
	pthread_rwlock_wrlock(&st->lock);
	st->max_sessions = max_sessions;
	st->max_age_ms = max_age_ms;
	pthread_rwlock_unlock(&st->lock);
}

int
planner_state_put(struct planner_state *st, const struct planner_manifest *m, int if_newer)
{
	char key[HASH_HEX_LEN + 2], *val, *err = NULL;
	uint32_t *v;
	int rc = 1;

	key[0] = 'm';
	memcpy(key + 1, m->fp, HASH_HEX_LEN + 1);
	val = planner_encode_manifest(m);
	pthread_rwlock_wrlock(&st->lock);
	v = smap_get(&st->fps, m->fp);
	if (v != NULL && *v == PLANNER_SLOT_FREE)
		v = NULL;
	if (if_newer && v != NULL && st->s[*v].m.created_ms >= m->created_ms) {
		rc = 0;
	} else if ((st->max_age_ms > 0 && m->created_ms < clock_wall_ms() - st->max_age_ms) ||
	    (v == NULL && older_than_all(st, m))) {
		rc = 0; /* expired already, or would go first: not kept (a remote
		         * reload does not churn the database) */
	} else {
		rocksdb_put(st->db, st->wo, key, HASH_HEX_LEN + 1, val, strlen(val), &err);
		if (err != NULL) {
			log_warnx("planner: storing manifest %s: %s", m->fp, err);
			rocksdb_free(err);
			rc = -1;
		} else {
			mem_put(st, m);
			expire_locked(st, clock_wall_ms());
		}
	}
	pthread_rwlock_unlock(&st->lock);
	free(val);
	return rc;
}

int
planner_state_expire(struct planner_state *st, int64_t now_ms)
{
	int n;

	pthread_rwlock_wrlock(&st->lock);
	n = expire_locked(st, now_ms);
	pthread_rwlock_unlock(&st->lock);
	return n;
}

size_t
planner_state_count(struct planner_state *st)
{
	size_t n;

	pthread_rwlock_rdlock(&st->lock);
	n = st->live;
	pthread_rwlock_unlock(&st->lock);
	return n;
}
