/* kached: every kache command but the wrapper's hot path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/config.h"
#include "common/log.h"

void
cli_usage(FILE *out)
{
	int n;
	const struct command *t = command_table(&n);

	fprintf(out,
	    "kache %s: a compiler cache for Rust\n\n"
	    "usage: RUSTC_WRAPPER=kache cargo build     (cargo calls kache <rustc> <args>)\n"
	    "       kache rustc <args>                  (finds rustc on PATH)\n"
	    "       kache <command> [options]\n\ncommands:\n",
	    KACHE_VERSION);
	for (int i = 0; i < n; i++)
		if (!t[i].hidden)
			fprintf(out, "  %-12s %s\n", t[i].name, t[i].summary);
	fprintf(out, "\n`kache help <command>` tells more. Settings: `kache config`.\n");
}

int
cmd_help(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		cli_usage(stdout);
		return 0;
	}
	c = command_find(argv[1]);
	if (c == NULL) {
		fprintf(stderr, "kache: no command '%s'; `kache --help` lists them\n", argv[1]);
		return EXIT_USAGE;
	}
	fputs(c->usage, stdout);
	return 0;
}

int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("kache %s\n", KACHE_VERSION);
	return 0;
}

int
cmd_config(int argc, char **argv)
{
	struct config *cfg;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: kache config\n");
		return EXIT_USAGE;
	}
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	config_dump(cfg, stdout);
	config_free(&cfg);
	return 0;
}

/* What a user of sccache or ccache types, and kache's command for it. */
static const struct peer_option {
	const char *opt, *whose, *ours;
} peer_options[] = {
	{ "-s", "sccache's and ccache's", "`kache stats`" },
	{ "--show-stats", "sccache's and ccache's", "`kache stats`" },
	{ "--show-adv-stats", "sccache's", "`kache stats`" },
	{ "--print-stats", "ccache's", "`kache stats --json`" },
	{ "-z", "sccache's and ccache's", "`kache stats --zero`" },
	{ "--zero-stats", "sccache's and ccache's", "`kache stats --zero`" },
	{ "--start-server", "sccache's", "`kache supervisor start`" },
	{ "--stop-server", "sccache's", "`kache supervisor stop`" },
	{ "-C", "ccache's", "`kache purge`" },
	{ "--clear", "ccache's", "`kache purge`" },
	{ "-c", "ccache's", "`kache gc`" },
	{ "--cleanup", "ccache's", "`kache gc`" },
	{ "--evict-older-than", "ccache's", "`kache gc --older-than`" },
	{ "-M", "ccache's", "cache.max_size (KACHE_MAX_SIZE) or `kache gc --max-size`" },
	{ "--max-size", "ccache's", "cache.max_size (KACHE_MAX_SIZE) or `kache gc --max-size`" },
	{ "-p", "ccache's", "`kache config`" },
	{ "--show-config", "ccache's", "`kache config`" },
};

/* The unknown command name, with kache's own when it is a peer's option. */
static int
unknown(const char *name)
{
	for (size_t i = 0; i < sizeof peer_options / sizeof peer_options[0]; i++)
		if (strcmp(name, peer_options[i].opt) == 0) {
			fprintf(stderr, "kache: unknown command '%s': %s %s is %s here\n", name,
			    peer_options[i].whose, name, peer_options[i].ours);
			return EXIT_USAGE;
		}
	fprintf(stderr, "kache: unknown command '%s'; `kache --help` lists them\n", name);
	return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	const struct command *c;

	log_init("kache", stderr, log_level_from_string(getenv("KACHE_LOG")));
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cli_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return cmd_version(argc - 1, argv + 1);
	c = command_find(argv[1]);
	if (c == NULL)
		return unknown(argv[1]);
	if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
		fputs(c->usage, stdout);
		return 0;
	}
	return c->run(argc - 1, argv + 1);
}
