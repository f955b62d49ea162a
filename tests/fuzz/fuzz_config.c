/* libFuzzer target: the config file (common/config.c) and the AWS shared
 * credentials file (s3/s3_config.c), both INI text a user or a tool wrote.
 * The input is written to one scratch file that both are pointed at. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

static char path[4096];

static void use_config(struct config *cfg);

/* Every typed read of the settings a run uses, and the dump with secrets masked. */
static void
use_config(struct config *cfg)
{
	static const char *const keys[] = { "cache.max_size", "cache.dir", "cache.restore",
		"cache.disabled", "remote.type", "remote.path", "wrapper.deadline_ms",
		"workers.uploaders", "s3.bucket", "s3.endpoint", "s3.multipart_threshold" };
	FILE *devnull = fopen("/dev/null", "w");

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		(void)config_get(cfg, keys[i]);
		(void)config_get_int(cfg, keys[i]);
		(void)config_get_bool(cfg, keys[i]);
		(void)config_get_size(cfg, keys[i]);
	}
	if (devnull != NULL) {
		config_dump(cfg, devnull);
		fclose(devnull);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct buf warnings, err;
	struct config *cfg;
	struct s3_settings s3;
	FILE *f;

	if (path[0] == '\0') {
		const char *t = getenv("TMPDIR");

		snprintf(path, sizeof path, "%s/kache-fuzz-config.%d", t && *t ? t : "/tmp",
		    (int)getpid());
		setenv("KACHE_CONFIG", path, 1);
		setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
		unsetenv("AWS_PROFILE");
		/* hermetic: no role service asked, and never a credential_process
		 * (a mutated config file would run what the fuzzer wrote) */
		setenv("AWS_CONFIG_FILE", "/nonexistent/kache-fuzz-aws-config", 1);
		setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
		unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
		unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
		unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	}
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fwrite(data, 1, n, f);
	fclose(f);
	buf_init(&warnings);
	buf_init(&err);
	cfg = config_load(&warnings);
	use_config(cfg);
	s3_settings_defaults(&s3);
	(void)s3_config_from(cfg, &s3, &err);
	s3_settings_clear(&s3);
	config_free(&cfg);
	buf_free(&warnings);
	buf_free(&err);
	return 0;
}
