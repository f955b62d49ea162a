/* The command table of kached, the full-featured half of the kache binary pair.
 * `kache` (wrapper/) is the lean RUSTC_WRAPPER; any command it does not serve
 * itself it hands to `kached` by exec, so the wrapper never links RocksDB, curl
 * or OpenSSL. Each part implements its commands and adds a row in commands.c. */
#ifndef KACHE_CLI_COMMANDS_H
#define KACHE_CLI_COMMANDS_H

struct command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;               /* one line for `kache --help` */
	const char *usage;                 /* full text for `kache help <command>` */
	int hidden;                        /* internal roles, not listed */
};

const struct command *command_find(const char *name);
const struct command *command_table(int *n);

/* Exit codes shared by all commands. */
#define EXIT_USAGE 2
/* The configuration-error status is KACHE_EXIT_CONFIG in common/exit.h. */

#endif
