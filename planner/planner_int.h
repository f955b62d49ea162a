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

struct sess {
	struct planner_manifest m;
	uint32_t gen;
};

/* The sessions (index, generation) that used one crate@version. */
struct plist {
	uint32_t *s, *gen;
	size_t n, cap;
};

struct planner_state {
	pthread_rwlock_t lock;
	rocksdb_t *db;
	rocksdb_options_t *opt;
	rocksdb_readoptions_t *ro;
	rocksdb_writeoptions_t *wo;
	struct sess *s;
	size_t n, cap;
	struct smap fps;   /* fingerprint -> index in s */
	struct smap posts; /* crate@version -> index in pl */
	struct plist *pl;
	size_t npl, capl;
};

#endif
