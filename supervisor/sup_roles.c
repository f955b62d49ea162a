/* The role table: what the supervisor can run, and the hidden command each
 * worker is exec'd as (`kached __worker <role> <index>`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "supervisor/sup_internal.h"
#include "workers/fetcher/fetcher.h"
#include "workers/indexer/indexer.h"
#include "workers/prefetch/prefetch.h"
#include "workers/uploader/uploader.h"

struct role_def {
	const char *name;
	int (*main)(const struct config *cfg, unsigned index);
	int fixed; /* the only count allowed, or -1: any (scale) */
};

static const struct role_def roles[ROLE_COUNT] = {
	[ROLE_UPLOADER] = { "uploader", uploader_main, -1 },
	[ROLE_FETCHER] = { "fetcher", fetcher_main, -1 },
	[ROLE_INDEXER] = { "indexer", indexer_main, 1 },
	[ROLE_PREFETCH] = { "prefetch", prefetch_main, -1 },
};

const char *
role_name(enum role r)
{
	return (unsigned)r < ROLE_COUNT ? roles[r].name : "?";
}

int
role_from_name(const char *name)
{
	for (int i = 0; i < ROLE_COUNT; i++)
		if (strcmp(roles[i].name, name) == 0)
			return i;
	return -1;
}

int
role_fixed_count(enum role r)
{
	return (unsigned)r < ROLE_COUNT ? roles[r].fixed : -1;
}

/* The configuration is loaded here once and handed to the role's main, which
 * does not read the file again. */
int
supervisor_worker_cmd(int argc, char **argv)
{
	static char who[64];
	struct config *cfg;
	char *end;
	long index;
	int r, rc;

	if (argc != 3 || (r = role_from_name(argv[1])) < 0) {
		fprintf(stderr,
		    "usage: kached __worker <uploader|fetcher|indexer|prefetch> <index>\n");
		return 2;
	}
	index = strtol(argv[2], &end, 10);
	if (*end != '\0' || index < 0 || index >= SUP_MAX_WORKERS) {
		fprintf(stderr, "kached __worker: bad index '%s'\n", argv[2]);
		return 2;
	}
	snprintf(who, sizeof who, "%s.%ld", roles[r].name, index);
	cfg = config_load_warn(CONFIG_WARN_NONE, NULL);
	log_init(who, stderr,
	    log_level_from_string(getenv("KACHE_SUPERVISOR_LOG")) < LOG_LEVEL_INFO ?
	        LOG_LEVEL_INFO :
	        log_level_from_string(getenv("KACHE_SUPERVISOR_LOG")));
	rc = roles[r].main(cfg, (unsigned)index);
	config_free(&cfg);
	return rc;
}
