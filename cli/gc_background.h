/* The gc of a store no supervisor serves, run in the background by a wrapper
 * (docs/cli.md, "kache gc"). */
#ifndef KACHE_CLI_GC_BACKGROUND_H
#define KACHE_CLI_GC_BACKGROUND_H

#include <stdint.h>

/* kached __gc: the store's gc to cache.max_size, unless another runs, a
 * supervisor serves the store or the index is held; logs/gc.log says what it
 * did. Always 0 (2 on arguments): nobody waits for it. */
int cmd_gc_background(int argc, char **argv);
/* When the background gc of the store at dir runs, waits for its end (saying
 * so on stderr), at most wait_ms: 1 when it waited and the gc is over. */
int gc_background_wait(const char *dir, int64_t wait_ms);

#endif
