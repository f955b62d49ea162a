/* kache keygen and kache verify --remote: making a key pair, and reporting
 * the objects of a remote by the key that signed them (so that an operator
 * rotating keys sees when the old key's objects are gone). */
#include "cli/sign_cmds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/fs.h"
#include "common/path.h"
#include "remote/layout.h"
#include "remote/remote.h"
#include "remote/sign.h"

#define MAX_IDS 64
#define DEFAULT_MAX_OBJECTS 100000

struct tally {
	struct {
		char id[SIGN_ID_HEX_LEN + 1];
		int trusted;
		uint64_t n;
	} key[MAX_IDS];
	size_t n_keys;
	uint64_t by[SIGN_NVERDICTS];
	uint64_t failed, checked, other_keys;
};

struct listing {
	struct strv names;
	size_t max;
	int more;
};

static char *default_key_path(const struct config *cfg);
static int write_pub(const char *path, const char *line);
static int collect(const char *name, uint64_t size, void *arg);
static void count(struct tally *t, const struct remote_sig *s, enum remote_result rr);
static void print_tally(const struct tally *t, const char *where, size_t trusted, int more);
static int parse_verify_args(int argc, char **argv, size_t *max);
static void progress(size_t done, size_t total, int64_t *next);

static char *
default_key_path(const struct config *cfg)
{
	char *dir = path_dirname(config_file_path(cfg)), *p = path_join(dir, "signing.key");

	free(dir);
	return p;
}

static int
write_pub(const char *path, const char *line)
{
	char *text = xasprintf("%s\n", line);
	int rc = fs_write_atomic(path, text, strlen(text), 0644);

	if (rc < 0)
		fprintf(stderr, "kache: keygen: %s: %s\n", path, strerror(errno));
	free(text);
	return rc;
}

/* The secret key goes to a file only; the public one to FILE.pub and stdout. */
int
cmd_keygen(int argc, char **argv)
{
	struct config *cfg = config_load(NULL);
	char *out = NULL, *pub, *dir, err[512], line[SIGN_PUBKEY_TEXT_MAX];
	unsigned char pk[SIGN_PK_LEN];
	struct sign_secret *s;
	int rc = 1;

	if (argc == 3 && strcmp(argv[1], "--out") == 0 && argv[2][0] != '\0')
		out = xstrdup(argv[2]);
	else if (argc == 1)
		out = default_key_path(cfg);
	config_free(&cfg);
	if (out == NULL) {
		fprintf(stderr, "usage: kache keygen [--out FILE]\n");
		return EXIT_USAGE;
	}
	dir = path_dirname(out);
	pub = xasprintf("%s.pub", out);
	if (fs_mkdir_p(dir, 0700) < 0)
		fprintf(stderr, "kache: keygen: %s: %s\n", dir, strerror(errno));
	else if ((s = sign_secret_generate()) == NULL)
		fprintf(stderr, "kache: keygen: libsodium could not be initialised\n");
	else {
		if (sign_secret_write(s, out, err, sizeof err) < 0) {
			fprintf(stderr, "kache: keygen: %s\n", err);
		} else {
			sign_secret_pk(s, pk);
			sign_pubkey_format(pk, line, sizeof line);
			rc = write_pub(pub, line) < 0;
			printf("%s\n", line);
			fprintf(stderr,
			    "kache: secret key in %s (mode 0600: keep it secret; writers set "
			    "remote.signing_key to it)\nkache: public key in %s; readers list it "
			    "in "
			    "remote.trusted_keys\n",
			    out, pub);
		}
		sign_secret_free(&s);
	}
	free(dir);
	free(pub);
	free(out);
	return rc;
}

static int
collect(const char *name, uint64_t size, void *arg)
{
	struct listing *l = arg;

	(void)size;
	if (strcmp(name, LAYOUT_FORMAT_NAME) == 0)
		return 0;
	if (l->names.n >= l->max) {
		l->more = 1;
		return 1;
	}
	strv_push(&l->names, name);
	return 0;
}

static void
count(struct tally *t, const struct remote_sig *s, enum remote_result rr)
{
	size_t i;

	if (rr != REMOTE_OK) {
		t->failed += rr != REMOTE_MISS; /* gone since listed: not counted */
		return;
	}
	t->checked++;
	t->by[s->v]++;
	if (s->v != SIGN_OK && s->v != SIGN_UNKNOWN_KEY)
		return;
	for (i = 0; i < t->n_keys && strcmp(t->key[i].id, s->id) != 0; i++)
		;
	if (i == MAX_IDS) {
		t->other_keys++;
		return;
	}
	if (i == t->n_keys) {
		snprintf(t->key[i].id, sizeof t->key[i].id, "%s", s->id);
		t->key[i].trusted = s->v == SIGN_OK;
		t->n_keys++;
	}
	t->key[i].n++;
}

static void
print_tally(const struct tally *t, const char *where, size_t trusted, int more)
{
	printf("remote %s: %llu objects checked (%zu trusted keys%s)\n", where,
	    (unsigned long long)t->checked, trusted,
	    trusted ? "" : ": the bucket is trusted, signatures are not checked");
	for (size_t i = 0; i < t->n_keys; i++)
		printf("  signed by %s %-14s %llu\n", t->key[i].id,
		    t->key[i].trusted ? "(trusted)" :
		        trusted       ? "(not trusted)" :
		                        "(unchecked)",
		    (unsigned long long)t->key[i].n);
	if (t->other_keys)
		printf("  signed by other keys            %llu\n",
		    (unsigned long long)t->other_keys);
	if (t->by[SIGN_UNSIGNED])
		printf("  unsigned                        %llu\n",
		    (unsigned long long)t->by[SIGN_UNSIGNED]);
	if (t->by[SIGN_BAD_SIGNATURE])
		printf("  bad signature                   %llu\n",
		    (unsigned long long)t->by[SIGN_BAD_SIGNATURE]);
	if (t->by[SIGN_MALFORMED])
		printf("  malformed signature             %llu\n",
		    (unsigned long long)t->by[SIGN_MALFORMED]);
	if (t->failed)
		printf("  could not be read               %llu\n", (unsigned long long)t->failed);
	if (more)
		printf("  (stopped at --max; more objects were not checked)\n");
}

static int
parse_verify_args(int argc, char **argv, size_t *max)
{
	char *end;

	*max = DEFAULT_MAX_OBJECTS;
	if (argc == 2)
		return 0;
	if (argc == 4 && strcmp(argv[2], "--max") == 0) {
		unsigned long long v = strtoull(argv[3], &end, 10);

		if (*end == '\0' && v > 0 && argv[3][0] != '-') {
			*max = (size_t)v;
			return 0;
		}
	}
	fprintf(stderr, "usage: kache verify --remote [--max N]\n");
	return -1;
}

/* On stderr, at most once a second. */
static void
progress(size_t done, size_t total, int64_t *next)
{
	int64_t now = clock_ms();

	if (now < *next && done < total)
		return;
	*next = now + 1000;
	fprintf(stderr, "verify --remote: %zu/%zu objects\n", done, total);
}

int
cmd_verify_remote(int argc, char **argv)
{
	struct config *cfg;
	struct remote *r;
	struct listing l = { .max = 0, .more = 0 };
	struct tally *t;
	char err[512], *tmpdir;
	enum remote_result rr;
	int64_t next = 0;
	int rc;

	if (parse_verify_args(argc, argv, &l.max) < 0)
		return EXIT_USAGE;
	cfg = config_load(NULL);
	if (!config_has_remote(cfg) || (r = remote_open(cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "kache: verify --remote: %s\n",
		    config_has_remote(cfg) ? err : "no remote is configured (remote.type)");
		config_free(&cfg);
		return 1;
	}
	tmpdir = path_join(config_get(cfg, "cache.dir"), "tmp");
	(void)fs_mkdir_p(tmpdir, 0700);
	strv_init(&l.names);
	rr = remote_list(r, "", collect, &l);
	t = xcalloc(1, sizeof *t);
	for (size_t i = 0; i < l.names.n; i++) {
		struct remote_sig s;
		enum remote_result one = remote_signature(r, l.names.v[i], tmpdir, &s);

		count(t, &s, one);
		progress(i + 1, l.names.n, &next);
	}
	print_tally(t, config_get(cfg, "remote.type"), remote_trusted_keys(r), l.more);
	rc = rr != REMOTE_OK || t->failed ||
	    (remote_trusted_keys(r) > 0 && t->by[SIGN_OK] != t->checked);
	if (rr != REMOTE_OK)
		fprintf(stderr, "kache: verify --remote: the remote could not be listed whole\n");
	free(t);
	strv_free(&l.names);
	free(tmpdir);
	remote_free(&r);
	config_free(&cfg);
	return rc;
}
