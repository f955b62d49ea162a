/* The prefetch worker: at the start of a build session (a wrapper's hint,
 * routed by the supervisor as JOB_PREFETCH) it imports into the local store
 * the remote packs of the crates the workspace's Cargo.lock names, niced,
 * so that cargo's later lookups are local hits. */
#ifndef KACHE_PREFETCH_H
#define KACHE_PREFETCH_H

struct config;

/* Runs after `kached __worker prefetch <index>`; cfg is the configuration the
 * worker entry point loaded. Returns the exit status. */
int prefetch_main(const struct config *cfg, unsigned index);

#endif
