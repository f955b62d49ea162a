/* The uploader worker: makes results whose intent files exist present in the
 * remote, then removes the intent. */
#ifndef KACHE_UPLOADER_H
#define KACHE_UPLOADER_H

/* Runs after `kached __worker uploader <index>`; returns the exit status
 * (78 on a configuration error, so it is not respawned). */
struct config;

/* cfg is the configuration the worker entry point loaded. */
int uploader_main(const struct config *cfg, unsigned index);

#endif
