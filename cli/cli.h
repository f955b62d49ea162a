/* Commands implemented in cli/ itself. */
#ifndef KACHE_CLI_CLI_H
#define KACHE_CLI_CLI_H

#include <stdio.h>

int cmd_config(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
/* Prints the overview of all commands. */
void cli_usage(FILE *out);

#endif
