#include "cli/commands.h"

#include <string.h>

#include "cli/cli.h"

static const struct command commands[] = {
	{ "config", cmd_config, "print the effective settings and where each came from",
	    "usage: kache config\n"
	    "Prints every setting, its value, and its source: default, the config file\n"
	    "(~/.config/kache/config.toml, or $KACHE_CONFIG) or a KACHE_* variable.\n"
	    "Unknown keys in the file are named in a warning on stderr.\n", 0 },
	{ "help", cmd_help, "show help for a command", "usage: kache help [COMMAND]\n", 0 },
	{ "version", cmd_version, "print the version", "usage: kache version\n", 0 },
};

const struct command *
command_find(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

const struct command *
command_table(int *n)
{
	*n = (int)(sizeof commands / sizeof commands[0]);
	return commands;
}
