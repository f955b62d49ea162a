/* `kache init [--check | --undo]`: cargo's build.rustc-wrapper and [env] CC/CXX set to kache
 * (cli/init.c). */
#ifndef KACHE_CLI_INIT_H
#define KACHE_CLI_INIT_H

int cmd_init(int argc, char **argv);

#endif
