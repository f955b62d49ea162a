/* Exit statuses every kache process shares: the CLI's commands, the
 * supervisor and each worker role. */
#ifndef KACHE_COMMON_EXIT_H
#define KACHE_COMMON_EXIT_H

/* The configuration is wrong: a worker that exits with this is not respawned,
 * and the supervisor that cannot start for it says so with this status. */
#define KACHE_EXIT_CONFIG 78

#endif
