#include "cli/commands.h"

#include <string.h>

#include "cli/cli.h"
#include "supervisor/supervisor.h"

static const struct command commands[] = {
	{ "__worker", supervisor_worker_cmd, "internal: a supervisor worker",
	    "usage: kached __worker <role> <index> (started by the supervisor)\n", 1 },
	{ "config", cmd_config, "print the effective settings and where each came from",
	    "usage: kache config\n"
	    "Prints every setting, its value, and its source: default, the config file\n"
	    "(~/.config/kache/config.toml, or $KACHE_CONFIG) or a KACHE_* variable.\n"
	    "Unknown keys in the file are named in a warning on stderr.\n", 0 },
	{ "daemon", supervisor_cmd, "alias of supervisor", "usage: kache daemon ... (see `kache help supervisor`)\n", 1 },
	{ "help", cmd_help, "show help for a command", "usage: kache help [COMMAND]\n", 0 },
	{ "supervisor", supervisor_cmd, "run and manage the background supervisor and its workers",
	    "usage: kache supervisor start|stop|restart|run|status [--json]\n"
	    "       kache supervisor log [WORKER] [-f] [-n N]\n"
	    "       kache supervisor install|uninstall|scale uploader=N\n"
	    "start runs it in the background (the wrapper also starts it on demand); run keeps\n"
	    "it in the foreground with logs on stderr; status lists the workers; log shows the\n"
	    "supervisor's or a worker's log (uploader.0, fetcher.0); install adds a systemd\n"
	    "user unit. `kache daemon` is an alias. See docs/supervisor.md.\n", 0 },
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
