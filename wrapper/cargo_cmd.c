/* What a cargo command line says of its build session (session_guess_cargo):
 * the subcommand, and so the mode (a check or a build), the profile and the
 * target, with cargo's aliases expanded as cargo expands them ([alias] in its
 * config files, CARGO_ALIAS_<NAME>, --config, and the built-in b, c, d, t, r):
 * `cargo ck` with `ck = "check"` is a check. Runs once per cargo command (its
 * first compile makes the command's cargo link, proto/hint.h); a subcommand of
 * cargo's own reads no file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cargo_cfg.h"
#include "common/fs.h"
#include "common/path.h"
#include "common/util.h"
#include "proto/hint.h"
#include "wrapper/wrapper.h"

/* cargo gives up on an alias that expands to itself; this gives up sooner. */
#define ALIAS_DEPTH_MAX 8
#define ALIAS_WORDS_MAX 4096
#define CONFIG_FILE_MAX (1 << 20)

static int guess(const char *cmdline, size_t n, const char *cwd, struct proto_hint *h,
    char *manifest, size_t cap, int depth);
static int cargo_builtin(const char *sub);
static int expand(const char *cmdline, size_t n, const char *sub, const char *cwd,
    struct proto_hint *h, char *manifest, size_t cap, int depth);
static int alias_of(const char *cmdline, const char *sub, const char *cwd, char *out, size_t cap,
    size_t *len);
static int alias_in_file(const char *path, const char *name, char *out, size_t cap, size_t *len);
static int alias_in_env(const char *name, char *out, size_t cap, size_t *len);
static int alias_in_options(const char *cmdline, const char *sub, const char *cwd, const char *name,
    char *out, size_t cap, size_t *len);
static int alias_in_dirs(const char *cwd, const char *name, char *out, size_t cap, size_t *len);
static int alias_found(const char *path, void *arg);

int
session_guess_cargo(const char *cmdline, size_t n, const char *cwd, struct proto_hint *h,
    char *manifest, size_t cap)
{
	return guess(cmdline, n, cwd, h, manifest, cap, 0);
}

/* session_guess_cargo of a line whose aliases were expanded depth times. */
static int
guess(const char *cmdline, size_t n, const char *cwd, struct proto_hint *h, char *manifest,
    size_t cap, int depth)
{
	const char *end = cmdline + n, *a, *v, *sub = NULL, *profile = NULL, *target = NULL;
	int release = 0, targets = 0;

	memset(h, 0, sizeof *h);
	manifest[0] = '\0';
	if (n == 0 || cmdline[n - 1] != '\0' || !str_starts_with(path_basename(cmdline), "cargo"))
		return -1;
	for (a = cmdline + strlen(cmdline) + 1; a < end; a += strlen(a) + 1) {
		const char *eq = strchr(a, '=');
		size_t k = eq ? (size_t)(eq - a) : strlen(a);

		if (strcmp(a, "--") == 0)
			break; /* the rest is the program's (cargo run -- --release) */
		if (sub == NULL && str_starts_with(a, "-C"))
			return -1; /* another directory: not one seen from here */
		if (strcmp(a, "--release") == 0 || strcmp(a, "-r") == 0) {
			release = 1;
			continue;
		}
		if (a[0] != '-' && a[0] != '+') {
			if (sub == NULL)
				sub = a;
			continue;
		}
		/* cargo's own options that take a value as the next argument */
		if (eq == NULL && sub == NULL &&
		    (strcmp(a, "--config") == 0 || strcmp(a, "-Z") == 0 ||
		        strcmp(a, "--color") == 0)) {
			a += strlen(a) + 1;
			if (a >= end)
				break;
			continue;
		}
		if (!(k == 9 && memcmp(a, "--profile", 9) == 0) &&
		    !(k == 8 && memcmp(a, "--target", 8) == 0) &&
		    !(k == 15 && memcmp(a, "--manifest-path", 15) == 0))
			continue; /* another flag */
		if (eq != NULL) {
			v = eq + 1;
		} else { /* the value is the next argument */
			v = a + strlen(a) + 1;
			if (v >= end)
				return -1;
		}
		if (k == 9)
			profile = v;
		else if (k == 8)
			target = v, targets++;
		else
			snprintf(manifest, cap, "%s", v);
		if (eq == NULL)
			a = v;
	}
	if (sub != NULL && depth < ALIAS_DEPTH_MAX && !cargo_builtin(sub))
		return expand(cmdline, n, sub, cwd, h, manifest, cap, depth);
	if (sub == NULL || strcmp(sub, "install") == 0 || targets > 1)
		return -1;
	if (target == NULL)
		target = getenv("CARGO_BUILD_TARGET");
	if (profile == NULL)
		profile = release || strcmp(sub, "bench") == 0 ? "release" : "dev";
	snprintf(h->target, sizeof h->target, "%s", target ? target : "");
	snprintf(h->profile, sizeof h->profile, "%s", proto_hint_profile_dir(profile));
	if (proto_hint_check_like(sub))
		proto_hint_mark_check(h);
	return strlen(target ? target : "") <= PROTO_HINT_NAME_MAX &&
	        strlen(profile) <= PROTO_HINT_NAME_MAX ?
	    0 :
	    -1;
}

/* cargo's own commands: an alias of one of these names is ignored (cargo
 * warns that the command shadows it). The built-in aliases (b, c, d, t, r,
 * rm) are not among them: a user's alias of those names is taken first. */
static int
cargo_builtin(const char *sub)
{
	static const char *const own[] = { "add", "bench", "build", "check", "clean", "config",
		"doc", "fetch", "fix", "generate-lockfile", "git-checkout", "help", "info", "init",
		"install", "locate-project", "login", "logout", "metadata", "new", "owner",
		"package", "pkgid", "publish", "read-manifest", "remove", "report", "run", "rustc",
		"rustdoc", "search", "test", "tree", "uninstall", "update", "vendor",
		"verify-project", "version", "yank", NULL };

	for (int i = 0; own[i] != NULL; i++)
		if (strcmp(sub, own[i]) == 0)
			return 1;
	return 0;
}

/* The line again with sub replaced by its alias's words, guessed again; as
 * it was when sub is no alias (an external command: cargo-foo). */
static int
expand(const char *cmdline, size_t n, const char *sub, const char *cwd, struct proto_hint *h,
    char *manifest, size_t cap, int depth)
{
	char *words = xmalloc(ALIAS_WORDS_MAX);
	const char *rest = sub + strlen(sub) + 1;
	size_t len = 0;
	struct buf line;
	int rc;

	if (alias_of(cmdline, sub, cwd, words, ALIAS_WORDS_MAX, &len) != 1 || len == 0) {
		free(words);
		return guess(cmdline, n, cwd, h, manifest, cap, ALIAS_DEPTH_MAX);
	}
	buf_init(&line);
	buf_add(&line, cmdline, (size_t)(sub - cmdline));
	buf_add(&line, words, len);
	buf_add(&line, rest, (size_t)(cmdline + n - rest));
	rc = guess(line.p, line.len, cwd, h, manifest, cap, depth + 1);
	buf_free(&line);
	free(words);
	return rc;
}

/* The words of alias sub, where cargo looks, first found first: --config on
 * the command line, the environment, the config files from cargo's directory
 * up and then CARGO_HOME's, and cargo's built-in aliases. 1 when found. */
static int
alias_of(const char *cmdline, const char *sub, const char *cwd, char *out, size_t cap, size_t *len)
{
	static const char *const builtin[][2] = { { "b", "build" }, { "c", "check" },
		{ "d", "doc" }, { "t", "test" }, { "r", "run" }, { "rm", "remove" } };
	int rc = alias_in_options(cmdline, sub, cwd, sub, out, cap, len);

	if (rc == 0)
		rc = alias_in_env(sub, out, cap, len);
	if (rc == 0 && cwd != NULL)
		rc = alias_in_dirs(cwd, sub, out, cap, len);
	for (size_t i = 0; rc == 0 && i < sizeof builtin / sizeof builtin[0]; i++)
		if (strcmp(sub, builtin[i][0]) == 0 && strlen(builtin[i][1]) < cap) {
			*len = strlen(builtin[i][1]) + 1;
			memcpy(out, builtin[i][1], *len);
			rc = 1;
		}
	return rc;
}

/* cargo's --config options before the subcommand: KEY=VALUE (TOML: the
 * same scanner reads `alias.ck = "check"`) or a config file's path (from
 * cargo's directory). */
static int
alias_in_options(const char *cmdline, const char *sub, const char *cwd, const char *name, char *out,
    size_t cap, size_t *len)
{
	const char *a = cmdline + strlen(cmdline) + 1, *v;
	int rc = 0;

	for (; rc == 0 && a < sub; a += strlen(a) + 1) {
		if (strcmp(a, "--config") == 0)
			v = a + strlen(a) + 1;
		else if (str_starts_with(a, "--config="))
			v = a + strlen("--config=");
		else
			continue;
		if (v >= sub)
			break;
		if (strchr(v, '=') != NULL) {
			rc = cargo_cfg_alias(v, strlen(v), name, out, cap, len);
		} else if (v[0] == '/' || cwd == NULL) {
			rc = alias_in_file(v, name, out, cap, len);
		} else { /* a path from cargo's directory */
			char *f = path_join(cwd, v);

			rc = alias_in_file(f, name, out, cap, len);
			free(f);
		}
	}
	return rc;
}

/* CARGO_ALIAS_<NAME> (upper case, '-' as '_'): words split at white space. */
static int
alias_in_env(const char *name, char *out, size_t cap, size_t *len)
{
	char var[128];
	const char *v;
	size_t k = strlen("CARGO_ALIAS_");

	if (k + strlen(name) >= sizeof var)
		return 0;
	memcpy(var, "CARGO_ALIAS_", k);
	for (const char *p = name; *p != '\0'; p++)
		var[k++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
	var[k] = '\0';
	if ((v = getenv(var)) == NULL)
		return 0;
	return cargo_cfg_words(v, out, cap, len) == 0 ? 1 : -1;
}

/* What a walk of cargo's config files looks for (cargo_cfg_walk). */
struct alias_ask {
	const char *name;
	char *out;
	size_t cap, *len;
};

static int
alias_found(const char *path, void *arg)
{
	struct alias_ask *q = arg;

	return alias_in_file(path, q->name, q->out, q->cap, q->len);
}

/* The config files from cargo's directory up, then CARGO_HOME's. */
static int
alias_in_dirs(const char *cwd, const char *name, char *out, size_t cap, size_t *len)
{
	struct alias_ask q = { name, out, cap, len };

	return cargo_cfg_walk(cwd, alias_found, &q, NULL);
}

static int
alias_in_file(const char *path, const char *name, char *out, size_t cap, size_t *len)
{
	struct buf b;
	int rc = 0;

	buf_init(&b);
	if (fs_read_file(path, &b, CONFIG_FILE_MAX) == 0 && b.len > 0)
		rc = cargo_cfg_alias(b.p, b.len, name, out, cap, len);
	buf_free(&b);
	return rc;
}
