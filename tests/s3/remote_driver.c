/* remote_driver: a configured remote (remote.type, from the KACHE_* settings)
 * on the command line, for the tests that check the dir and S3 transports
 * alike. `list PREFIX` prints "name size" lines; exit 0 when the listing was
 * whole, 1 when the remote failed, 2 on usage or configuration errors. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "remote/remote.h"

static int print_one(const char *name, uint64_t size, int64_t mtime_ms, void *arg);

static int
print_one(const char *name, uint64_t size, int64_t mtime_ms, void *arg)
{
	(void)arg;
	printf("%s %" PRIu64 " %" PRId64 "\n", name, size, mtime_ms);
	return 0;
}

int
main(int argc, char **argv)
{
	struct buf warnings;
	struct config *cfg;
	struct remote *r;
	char err[512];
	int rc;

	log_init("remote_driver", stderr, LOG_LEVEL_INFO);
	if (argc != 3 || strcmp(argv[1], "list") != 0) {
		fprintf(stderr, "usage: remote_driver list PREFIX\n");
		return 2;
	}
	buf_init(&warnings);
	cfg = config_load(&warnings);
	buf_free(&warnings);
	if (!config_has_remote(cfg) || (r = remote_open(cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "remote_driver: %s\n", config_has_remote(cfg) ? err : "no remote");
		config_free(&cfg);
		return 2;
	}
	rc = remote_list(r, argv[2], print_one, NULL) == REMOTE_OK ? 0 : 1;
	remote_free(&r);
	config_free(&cfg);
	return rc;
}
