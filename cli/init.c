/* `kache init [--check]`: makes cargo use kache, by writing
 * build.rustc-wrapper = "kache" into $CARGO_HOME/config.toml. The rest of the
 * file stays byte for byte: one line is inserted after an existing [build]
 * header, or a [build] table is appended. The old file is kept beside it
 * (config.toml.kache-backup) and both are written by temp+rename. A wrapper
 * set to something else is never overwritten: the user decides. */
#include "cli/init.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cargo_cfg.h"
#include "cli/commands.h"
#include "common/fs.h"
#include "common/util.h"

#define WRAPPER_LINE "rustc-wrapper = \"kache\"\n"

static int init_check(const char *path, const struct cargo_cfg_scan *r);
static int init_write(const char *path, const struct buf *old, const struct cargo_cfg_scan *r);
static void init_offer_unit(void);
static int env_wrapper_other(void);
static void init_follow_link(char **path);

/* A config.toml that is a symlink (a dotfiles repository) is read and written
 * where it points, so the link stays a link. */
static void
init_follow_link(char **path)
{
	struct stat st;
	char *real;

	if (lstat(*path, &st) == 0 && S_ISLNK(st.st_mode) && (real = realpath(*path, NULL))) {
		free(*path);
		*path = real;
	}
}

/* 1 (said on stderr) when RUSTC_WRAPPER is set to something other than kache:
 * it overrides the config file. */
static int
env_wrapper_other(void)
{
	const char *w = getenv("RUSTC_WRAPPER");

	if (w == NULL || w[0] == '\0' || cargo_cfg_is_kache(w))
		return 0;
	fprintf(stderr,
	    "kache init: warning: RUSTC_WRAPPER=%s is set in this environment and overrides "
	    "the config file; unset it (or set it to kache)\n",
	    w);
	return 1;
}

/* --check: 0 when cargo would use kache, 1 (said) when not. */
static int
init_check(const char *path, const struct cargo_cfg_scan *r)
{
	const char *w = getenv("RUSTC_WRAPPER");

	if (w != NULL && w[0] != '\0') {
		printf("RUSTC_WRAPPER=%s: %s\n", w,
		    cargo_cfg_is_kache(w) ? "kache is set up" : "not kache");
		return cargo_cfg_is_kache(w) ? 0 : 1;
	}
	if (r->found && cargo_cfg_is_kache(r->value)) {
		printf("%s: build.rustc-wrapper = \"%s\": kache is set up\n", path, r->value);
		return 0;
	}
	if (r->found)
		printf("%s: build.rustc-wrapper = \"%s\", not kache\n", path, r->value);
	else
		printf("%s: no build.rustc-wrapper; `kache init` sets it\n", path);
	return 1;
}

/* Writes old with the wrapper line added (after the [build] header, or in a new
 * [build] table at the end), keeping old as the backup first. 0 / 1. */
static int
init_write(const char *path, const struct buf *old, const struct cargo_cfg_scan *r)
{
	char *backup = xasprintf("%s.kache-backup", path);
	size_t at = r->has_build ? r->build_end : old->len;
	const char *op = old->len > 0 && old->p != NULL ? old->p : "";
	size_t olen = op[0] ? old->len : 0;
	struct buf out;
	int rc = 0;

	buf_init(&out);
	buf_add(&out, op, at);
	if (r->has_build && (at == 0 || op[at - 1] != '\n'))
		buf_addch(&out, '\n'); /* a [build] header on the file's last line */
	if (!r->has_build && olen > 0 && op[olen - 1] != '\n')
		buf_addch(&out, '\n');
	if (!r->has_build)
		buf_addstr(&out, olen > 0 ? "\n[build]\n" : "[build]\n");
	buf_addstr(&out, WRAPPER_LINE);
	buf_add(&out, op + at, olen - at);
	if (old->len > 0 && fs_write_atomic(backup, old->p, old->len, 0644) < 0) {
		fprintf(stderr, "kache init: cannot write the backup %s: %s\n", backup,
		    strerror(errno));
		rc = 1;
	} else if (fs_write_atomic(path, out.p, out.len, 0644) < 0) {
		fprintf(stderr, "kache init: cannot write %s: %s\n", path, strerror(errno));
		rc = 1;
	} else {
		printf("kache init: wrote build.rustc-wrapper = \"kache\" into %s%s%s%s\n", path,
		    old->len > 0 ? " (the old file: " : "", old->len > 0 ? backup : "",
		    old->len > 0 ? ")" : "");
	}
	buf_free(&out);
	free(backup);
	return rc;
}

static void
init_offer_unit(void)
{
	printf("To keep the supervisor running across logins as a systemd user service:\n"
	       "    kache supervisor install\n"
	       "(otherwise the wrapper starts one when a remote is configured.)\n");
}

int
cmd_init(int argc, char **argv)
{
	struct cargo_cfg_scan r;
	struct buf old;
	char *home, *path;
	int check = argc == 2 && strcmp(argv[1], "--check") == 0, rc;

	if (argc > 2 || (argc == 2 && !check)) {
		fprintf(stderr, "usage: kache init [--check]\n");
		return EXIT_USAGE;
	}
	if ((home = cargo_cfg_home()) == NULL) {
		fprintf(stderr, "kache init: neither CARGO_HOME nor HOME is set\n");
		return 1;
	}
	path = cargo_cfg_file(home);
	init_follow_link(&path);
	buf_init(&old);
	if (fs_read_file(path, &old, (size_t)16 << 20) < 0 && errno != ENOENT) {
		fprintf(stderr, "kache init: cannot read %s: %s\n", path, strerror(errno));
		rc = 1;
		goto out;
	}
	cargo_cfg_scan(old.p ? old.p : "", old.len, &r);
	if (check) {
		rc = init_check(path, &r);
		goto out;
	}
	env_wrapper_other();
	if (r.found && !cargo_cfg_is_kache(r.value)) {
		fprintf(stderr,
		    "kache init: %s already sets build.rustc-wrapper = \"%s\"; not changing it. "
		    "Remove that line (or set it to \"kache\") and run `kache init` again\n",
		    path, r.value);
		rc = 1;
	} else if (r.found) {
		printf("kache init: %s already sets build.rustc-wrapper = \"%s\"; nothing to do\n",
		    path, r.value);
		rc = 0;
	} else {
		rc = fs_mkdir_p(home, 0755) < 0 ? 1 : init_write(path, &old, &r);
	}
	if (rc == 0)
		init_offer_unit();
out:
	buf_free(&old);
	free(path);
	free(home);
	return rc;
}
