/* The planner's state inside the planner library: planner_state.c keeps it,
 * planner_rank.c reads it under the read lock. */
#ifndef KACHE_PLANNER_PLANNER_INT_H
#define KACHE_PLANNER_PLANNER_INT_H

#include <pthread.h>
#include <rocksdb/c.h>

#include "planner/planner.h"

/* A string -> uint32 map, open addressing; keys are copied. */
struct smap {
	char **keys;
	uint32_t *vals;
	size_t n, cap;
};

/* NULL when absent. */
uint32_t *smap_get(const struct smap *m, const char *key);
/* Sets key to val; returns where the value is held. */
uint32_t *smap_put(struct smap *m, const char *key, uint32_t val);
void smap_free(struct smap *m);
/* "crate@version" into out (2 * PLANNER_NAME_MAX + 2 bytes). */
void planner_crate_key(const char *crate, const char *version, char *out);

/* A session held: its manifest, and per key the ids the plan works with
 * (computed once, when it is stored): the crate@version posting and the
 * crate name. */
struct sess {
	struct planner_manifest m;
	uint32_t *kpost;
	uint32_t *kcrate;
};

/* One session that used a crate@version: its slot, and its target/profile
 * and toolchain ids, copied here so that a plan reads one array in order,
 * not others at random. A session replaced or expired has its entries
 * removed at once: every entry is live. */
struct pentry {
	uint32_t s, tp, tc;
};

/* The sessions that used one crate@version. */
struct plist {
	struct pentry *e;
	size_t n, cap;
};

/* tp[] of a slot that holds no session (expired, never filled again yet). */
#define PLANNER_SLOT_FREE UINT32_MAX

struct planner_state {
	pthread_rwlock_t lock;
	rocksdb_t *db;
	rocksdb_options_t *opt;
	rocksdb_readoptions_t *ro;
	rocksdb_writeoptions_t *wo;
	struct sess *s;
	/* per slot, compact: target+profile id, toolchain id, created_ms */
	uint32_t *tp, *tc;
	int64_t *created;
	size_t n, cap, live;
	size_t dropped;  /* sessions expired since the indexes were compacted */
	uint32_t *freel; /* free slots */
	size_t nfree;
	struct smap fps;    /* fingerprint -> index in s */
	struct smap posts;  /* crate@version -> index in pl */
	struct smap tps;    /* "target/profile" -> id */
	struct smap tcs;    /* toolchain -> id */
	struct smap crates; /* crate name -> id */
	struct plist *pl;
	size_t npl, capl;
	/* bounds (planner_state_set_bounds): 0 is none */
	size_t max_sessions;
	int64_t max_age_ms;
};

/* "target/profile" into out (2 * PLANNER_NAME_MAX + 2 bytes). */
void planner_tp_key(const char *target, const char *profile, char *out);

#endif
