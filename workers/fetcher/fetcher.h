/* The fetcher worker: imports remote results for an invocation key into the
 * local store on a wrapper's behalf. */
#ifndef KACHE_FETCHER_H
#define KACHE_FETCHER_H

/* Runs after `kached __worker fetcher <index>`; returns the exit status. */
int fetcher_main(const char *kache_dir, unsigned index);

#endif
