/* The fetcher worker: imports remote results for an invocation key into the
 * local store on a wrapper's behalf. */
#ifndef KACHE_FETCHER_H
#define KACHE_FETCHER_H

/* Runs after `kached __worker fetcher <index>`; returns the exit status. */
struct config;

/* cfg is the configuration the worker entry point loaded. */
int fetcher_main(const struct config *cfg, unsigned index);

#endif
