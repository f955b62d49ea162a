/* Shared between the indexer's own files; nobody else includes this. */
#ifndef KACHE_INDEXER_INTERNAL_H
#define KACHE_INDEXER_INTERNAL_H

#include <stdint.h>

#include "proto/msg.h"

struct config;
struct index;

struct indexer {
	const struct config *cfg;
	const char *kache_dir;
	struct index *ix;
	int64_t next_open;
	int64_t next_gc;
	int busy_logged;
	int nospace_logged;
};

/* indexer.c: opens the index without waiting (at most once a second unless
 * now is 0). 0 when open. */
int indexer_open(struct indexer *x, int64_t now);
/* The gc cap: cache.max_size (its default when the value is not a size). */
int64_t indexer_max_size(const struct indexer *x);

/* indexer.c: the index_progress callback of every long operation: sends the
 * progress up (proto_worker_progress), which also beats. */
void indexer_progress(const char *phase, uint64_t done, uint64_t total, void *arg);

/* indexer_requests.c: answers a request routed from a client (the
 * proto_worker_ops request callback). */
void indexer_request(void *arg, const struct msg *req, struct msg *rep);

#endif
