/* Location independence: the workspace (cwd), target dir and CARGO_HOME of one
 * invocation are folded to tokens in keys and stored text, and expanded back
 * with the consumer's roots on restore. */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/path.h"
#include "wrapper/wrapper.h"

#define TOKEN_W "@@KACHE_W@@"
#define TOKEN_T "@@KACHE_T@@"
#define TOKEN_H "@@KACHE_H@@"

/* How artifacts name each root: the workspace becomes ".", like cargo's trim-paths. */
#define REMAP_W "."
#define REMAP_T "/kache/target"
#define REMAP_H "/kache/cargo-home"

struct root_ref {
	const char *path;
	const char *token;
	const char *remap;
};

static char *find_target_dir(const char *out_dir, const char *cwd);
static size_t sorted_roots(const struct roots *r, struct root_ref out[3]);
static int is_boundary(char c);

/* cargo marks its target dir with CACHEDIR.TAG; walk up from the out-dir. */
static char *
find_target_dir(const char *out_dir, const char *cwd)
{
	char *dir = path_absolute(out_dir, cwd);

	for (int depth = 0; depth < 6 && strcmp(dir, "/") != 0; depth++) {
		char *tag = path_join(dir, "CACHEDIR.TAG");
		struct stat st;
		int found = stat(tag, &st) == 0;
		char *up;

		free(tag);
		if (found)
			return dir;
		up = path_dirname(dir);
		free(dir);
		dir = up;
	}
	free(dir);
	return NULL;
}

void
roots_find(struct roots *r, const struct rustc_args *a)
{
	char here[PATH_MAX];
	const char *home = getenv("CARGO_HOME");
	const char *user = getenv("HOME");

	memset(r, 0, sizeof *r);
	r->cwd = xstrdup(getcwd(here, sizeof here) ? here : "/");
	if (a->out_dir)
		r->target = find_target_dir(a->out_dir, r->cwd);
	if (home && home[0] == '/')
		r->home = path_absolute(home, NULL);
	else if (user && user[0] == '/')
		r->home = xasprintf("%s/.cargo", user);
	/* A root of "/" would fold everything: ignore it. */
	if (r->target && strcmp(r->target, "/") == 0) {
		free(r->target);
		r->target = NULL;
	}
	if (r->home && strcmp(r->home, "/") == 0) {
		free(r->home);
		r->home = NULL;
	}
}

void
roots_free(struct roots *r)
{
	free(r->cwd);
	free(r->target);
	free(r->home);
	memset(r, 0, sizeof *r);
}

/* The defined roots, longest path first, so nested roots fold to the inner one. */
static size_t
sorted_roots(const struct roots *r, struct root_ref out[3])
{
	size_t n = 0;

	if (r->target)
		out[n++] = (struct root_ref){ r->target, TOKEN_T, REMAP_T };
	if (r->home)
		out[n++] = (struct root_ref){ r->home, TOKEN_H, REMAP_H };
	if (r->cwd && strcmp(r->cwd, "/") != 0)
		out[n++] = (struct root_ref){ r->cwd, TOKEN_W, REMAP_W };
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strlen(out[j].path) > strlen(out[j - 1].path); j--) {
			struct root_ref t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

/* A root matches only as a whole path: "/ws" must not match in "/ws2". */
static int
is_boundary(char c)
{
	return !(isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '~');
}

void
roots_fold(const struct roots *r, const char *text, size_t n, struct buf *out)
{
	struct root_ref refs[3];
	size_t nr = sorted_roots(r, refs), i = 0;

	while (i < n) {
		size_t k, len = 0;

		for (k = 0; k < nr; k++) {
			len = strlen(refs[k].path);
			if (len <= n - i && memcmp(text + i, refs[k].path, len) == 0 &&
			    (i + len == n || is_boundary(text[i + len])))
				break;
		}
		if (k < nr) {
			buf_addstr(out, refs[k].token);
			i += len;
		} else {
			buf_addch(out, text[i++]);
		}
	}
}

void
roots_expand(const struct roots *r, const char *text, size_t n, struct buf *out)
{
	static const size_t toklen = sizeof(TOKEN_W) - 1;
	size_t i = 0;

	while (i < n) {
		const char *with = NULL;

		if (text[i] == '@' && n - i >= toklen) {
			if (memcmp(text + i, TOKEN_W, toklen) == 0)
				with = r->cwd;
			else if (memcmp(text + i, TOKEN_T, toklen) == 0)
				with = r->target;
			else if (memcmp(text + i, TOKEN_H, toklen) == 0)
				with = r->home;
		}
		if (with != NULL) {
			buf_addstr(out, with);
			i += toklen;
		} else {
			/* up to the next '@' at once: a hit expands every input path */
			const char *at = memchr(text + i + 1, '@', n - i - 1);
			size_t run = at ? (size_t)(at - (text + i)) : n - i;

			buf_add(out, text + i, run);
			i += run;
		}
	}
}

char *
roots_fold_path(const struct roots *r, const char *path)
{
	char *abs = path_absolute(path, r->cwd);
	struct buf b;

	buf_init(&b);
	roots_fold(r, abs, strlen(abs), &b);
	free(abs);
	return buf_detach(&b, NULL);
}

char *
roots_fold_input(const struct roots *r, const char *path)
{
	char *folded = roots_fold_path(r, path);

	if (path[0] != '/' && folded[0] == '/') {
		free(folded);
		return xstrdup(path);
	}
	return folded;
}

void
roots_remap_args(const struct roots *r, struct strv *out)
{
	struct root_ref refs[3];
	size_t n = sorted_roots(r, refs);

	/* rustc applies the last matching prefix: emit the longest (innermost) last. */
	for (size_t i = n; i > 0; i--)
		strv_push_owned(out,
		    xasprintf("--remap-path-prefix=%s=%s", refs[i - 1].path, refs[i - 1].remap));
}
