/* The planner's state: every manifest in a RocksDB ("m" + fingerprint ->
 * the manifest's JSON, as planner_encode_manifest writes it) and in memory,
 * with two string maps: fingerprint -> session, and crate@version -> the
 * sessions that used it (postings). A replaced session gets a new
 * generation; postings of an older generation are skipped, not removed
 * (they go at the next start). */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "planner/planner.h"
#include "planner/planner_int.h"

static void copy_manifest(struct planner_manifest *dst, const struct planner_manifest *src);
static void index_session(struct planner_state *st, uint32_t i);
static void add_posting(struct planner_state *st, const char *ck, uint32_t i, uint32_t gen);
static void mem_put(struct planner_state *st, const struct planner_manifest *m);
static int db_open(struct planner_state *st, const char *dir);
static int db_load(struct planner_state *st);

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

static void
add_posting(struct planner_state *st, const char *ck, uint32_t i, uint32_t gen)
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
	if (p->n > 0 && p->s[p->n - 1] == i && p->gen[p->n - 1] == gen)
		return;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4;
		p->s = xrealloc(p->s, p->cap * sizeof *p->s);
		p->gen = xrealloc(p->gen, p->cap * sizeof *p->gen);
	}
	p->s[p->n] = i;
	p->gen[p->n++] = gen;
}

static void
index_session(struct planner_state *st, uint32_t i)
{
	const struct planner_manifest *m = &st->s[i].m;
	char ck[2 * PLANNER_NAME_MAX + 2];

	for (size_t j = 0; j < m->n; j++) {
		planner_crate_key(m->k[j].crate, m->k[j].version, ck);
		add_posting(st, ck, i, st->s[i].gen);
	}
}

/* In memory only; the caller holds the write lock. */
static void
mem_put(struct planner_state *st, const struct planner_manifest *m)
{
	uint32_t *v = smap_get(&st->fps, m->fp), i;

	if (v != NULL) {
		i = *v;
		planner_manifest_free(&st->s[i].m);
		st->s[i].gen++;
	} else {
		if (st->n == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 1024;
			st->s = xrealloc(st->s, st->cap * sizeof *st->s);
		}
		i = (uint32_t)st->n++;
		st->s[i].gen = 0;
		smap_put(&st->fps, m->fp, i);
	}
	copy_manifest(&st->s[i].m, m);
	index_session(st, i);
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
	log_info("planner: %zu manifests loaded from %s in %lld ms", st->n, dir,
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
		planner_manifest_free(&st->s[i].m);
	for (size_t i = 0; i < st->npl; i++) {
		free(st->pl[i].s);
		free(st->pl[i].gen);
	}
	free(st->s);
	free(st->pl);
	smap_free(&st->fps);
	smap_free(&st->posts);
	pthread_rwlock_destroy(&st->lock);
	free(st);
	*sp = NULL;
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
	if (if_newer && v != NULL && st->s[*v].m.created_ms >= m->created_ms) {
		rc = 0;
	} else {
		rocksdb_put(st->db, st->wo, key, HASH_HEX_LEN + 1, val, strlen(val), &err);
		if (err != NULL) {
			log_warnx("planner: storing manifest %s: %s", m->fp, err);
			rocksdb_free(err);
			rc = -1;
		} else {
			mem_put(st, m);
		}
	}
	pthread_rwlock_unlock(&st->lock);
	free(val);
	return rc;
}

size_t
planner_state_count(struct planner_state *st)
{
	size_t n;

	pthread_rwlock_rdlock(&st->lock);
	n = st->n;
	pthread_rwlock_unlock(&st->lock);
	return n;
}
