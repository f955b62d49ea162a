/* s3_driver: the S3 client on the command line, for the emulator tests.
 * Settings come from the KACHE_S3_* environment (common/config); options
 * tune timeouts and retries. Prints "result=NAME" and exits 0 on OK,
 * 10 + the result otherwise, 3 when a downloaded file fails its hash check,
 * 2 on usage or configuration errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"
#include "s3/s3.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: s3_driver [-f] [-a attempts] [-c connect_ms] [-t total_ms] "
	    "[-l low_speed_s] [-m multipart_threshold] [-p part_size] [-H blake2b_hex] "
	    "[-w then_wait_ms]\n"
	    "  put KEY FILE | putmem KEY TEXT | get KEY FILE | getmem KEY CAP FILE | head KEY |\n"
	    "  list PREFIX | delete KEY\n"
	    "  head KEY then <op>: a HEAD first, then op over the same client (its\n"
	    "  connection reused; -w: after waiting that long)\n");
	exit(2);
}

static enum s3_result
do_list(struct s3_client *c, const char *prefix)
{
	struct s3_list_page page;
	char *token = NULL;
	enum s3_result res;

	do {
		res = s3_list(c, prefix, token, &page);
		free(token);
		token = NULL;
		if (res != S3_OK)
			break;
		for (size_t i = 0; i < page.n; i++)
			printf("%s %llu\n", page.obj[i].key, (unsigned long long)page.obj[i].size);
		if (page.truncated)
			token = xstrdup(page.next_token);
		s3_list_page_clear(&page);
	} while (token != NULL);
	return res;
}

/* s3_get_to_mem into a buffer of cap bytes, written to path when whole. */
static enum s3_result
get_mem(struct s3_client *c, const char *key, size_t cap, const char *path)
{
	char *b = xmalloc(cap + 1);
	size_t len = 0;
	int too_big = 0;
	enum s3_result res = s3_get_to_mem(c, key, b, cap, &len, &too_big);

	printf("len=%zu too_big=%d\n", len, too_big);
	if (res == S3_OK && fs_write_atomic(path, b, len, 0644) < 0)
		res = S3_LOCAL;
	free(b);
	return res;
}

static enum s3_result
run(struct s3_client *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	uint64_t size = 0;
	enum s3_result res;

	if (strcmp(cmd, "put") == 0 && argc == 3)
		return s3_put_file(c, argv[1], argv[2]);
	if (strcmp(cmd, "putmem") == 0 && argc == 3)
		return s3_put_mem(c, argv[1], argv[2], strlen(argv[2]));
	if (strcmp(cmd, "get") == 0 && argc == 3)
		return s3_get_to_path(c, argv[1], argv[2]);
	if (strcmp(cmd, "getmem") == 0 && argc == 4)
		return get_mem(c, argv[1], strtoull(argv[2], NULL, 10), argv[3]);
	if (strcmp(cmd, "delete") == 0 && argc == 2)
		return s3_delete(c, argv[1]);
	if (strcmp(cmd, "list") == 0 && argc == 2)
		return do_list(c, argv[1]);
	if (strcmp(cmd, "head") == 0 && argc == 2) {
		res = s3_head(c, argv[1], &size);
		if (res == S3_OK)
			printf("size=%llu\n", (unsigned long long)size);
		return res;
	}
	usage();
	return S3_BAD_REQUEST;
}

static void
options(int argc, char **argv, struct s3_settings *s, const char **hash, int *fail_fast,
    long *wait_ms)
{
	int ch;

	while ((ch = getopt(argc, argv, "fa:c:t:l:m:p:H:w:")) != -1) {
		switch (ch) {
		case 'w': *wait_ms = atol(optarg); break;
		case 'f': *fail_fast = 1; break;
		case 'a': s->max_attempts = atoi(optarg); break;
		case 'c': s->connect_timeout_ms = atol(optarg); break;
		case 't': s->total_timeout_ms = atol(optarg); break;
		case 'l': s->low_speed_time_s = atol(optarg); break;
		case 'm': s->multipart_threshold = (uint64_t)parse_size(optarg); break;
		case 'p': s->part_size = (uint64_t)parse_size(optarg); break;
		case 'H': *hash = optarg; break;
		default: usage();
		}
	}
}

int
main(int argc, char **argv)
{
	struct buf err;
	struct config *cfg;
	struct s3_settings s;
	struct s3_client *c;
	const char *hash = NULL;
	enum s3_result res;
	int fail_fast = 0;
	long wait_ms = 0;

	log_init("s3_driver", stderr, LOG_LEVEL_INFO);
	buf_init(&err);
	cfg = config_load(NULL);
	if (s3_config_from(cfg, &s, &err) < 0) {
		fprintf(stderr, "config error: %s\n", err.p);
		config_free(&cfg);
		buf_free(&err);
		return 2;
	}
	config_free(&cfg);
	options(argc, argv, &s, &hash, &fail_fast, &wait_ms);
	if (optind >= argc)
		usage();
	c = s3_client_new(&s, &err);
	s3_settings_clear(&s);
	if (c == NULL) {
		fprintf(stderr, "config error: %s\n", err.p);
		buf_free(&err);
		return 2;
	}
	s3_client_fail_fast(c, fail_fast);
	if (argc - optind > 3 && strcmp(argv[optind + 2], "then") == 0) {
		res = run(c, 2, argv + optind);
		printf("first=%s\n", s3_result_name(res));
		optind += 3;
		if (wait_ms > 0)
			usleep((useconds_t)wait_ms * 1000);
	}
	res = run(c, argc - optind, argv + optind);
	printf("result=%s\nunreachable=%d\n", s3_result_name(res), s3_client_unreachable(c));
	if (res != S3_OK)
		fprintf(stderr, "error: %s\n", s3_client_last_error(c));
	s3_client_free(&c);
	buf_free(&err);
	if (res == S3_OK && hash != NULL && s3_verify_file_hex(argv[argc - 1], hash) < 0) {
		printf("hash=MISMATCH\n");
		return 3;
	}
	return res == S3_OK ? 0 : 10 + (int)res;
}
