/* Pending-store markers: tmp/pending-<invocation key hex>, one per background
 * store under way (the wrapper stores a miss in a child after rustc exits).
 *
 * The writer holds an exclusive flock on its marker while it stores. The
 * kernel drops the lock when the writer exits or is killed, so a marker whose
 * lock can be taken names a writer that is gone: it is stale, ignored and
 * removed. Unlike a pid, the lock cannot be fooled by pid reuse. The file
 * holds the writer's pid, for people reading the directory. */
#ifndef KACHE_STORE_PENDING_H
#define KACHE_STORE_PENDING_H

#include <stdint.h>

#include "common/hash.h"

/* Creates the marker of inv in <dir>/tmp, locked, through a temporary and a
 * rename, so that no reader ever sees it unlocked. Returns the descriptor that
 * holds the lock (close-on-exec; the lock follows it across fork: the writer
 * keeps it until store_pending_end, everyone else closes it), or -1. */
int store_pending_begin(const char *dir, const unsigned char inv[HASH_LEN]);
/* The writer is done: removes its marker (not one that replaced it) and
 * releases the lock by closing fd. */
void store_pending_end(const char *dir, const unsigned char inv[HASH_LEN], int fd);
/* Waits, until deadline_ms (a clock_ms() value), for a live store of inv to
 * finish. A stale marker is removed at once. 1 when a live store was seen
 * (finished or not by the deadline), 0 when there was none. */
int store_pending_wait(const char *dir, const unsigned char inv[HASH_LEN], int64_t deadline_ms);
/* The number of live stores under way in <dir>/tmp; removes stale markers. */
int store_pending_live(const char *dir);

#endif
