/* The indexer worker: the one process that owns the store's RocksDB index. It
 * folds the wrappers' journal in every second, runs a size-capped gc every
 * supervisor.gc_interval seconds, answers the index requests (stats, list, gc,
 * verify, purge) the supervisor routes to it from the CLI, and sends ingested
 * hits and misses up as events for the supervisor to publish. */
#ifndef KACHE_INDEXER_H
#define KACHE_INDEXER_H

struct config;

/* Runs after `kached __worker indexer 0`; cfg is the configuration the worker
 * entry point loaded. Returns the exit status. */
int indexer_main(const struct config *cfg, unsigned index);

#endif
