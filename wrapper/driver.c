/* cargo's workspace wrapper in front of rustc: for the workspace's own members
 * cargo runs `kache <RUSTC_WORKSPACE_WRAPPER> <rustc> <args>`, which `cargo
 * clippy` sets to clippy-driver. clippy-driver is a rustc with lints: its
 * compiles are cached under a key of their own (its version, the clippy.toml
 * it will read, what it reads from the environment); any other workspace
 * wrapper is run untouched. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/path.h"
#include "wrapper/wrapper.h"

static int stem_is(const char *path, const char *stem);
static int config_in(const char *dir, char **found);

/* 1 when path's file name, less its last extension, is stem (as Rust's
 * Path::file_stem: clippy-driver tells its wrapper mode so). */
static int
stem_is(const char *path, const char *stem)
{
	const char *base = path_basename(path), *dot = strrchr(base, '.');
	size_t n = dot != NULL && dot != base ? (size_t)(dot - base) : strlen(base);

	return n == strlen(stem) && strncmp(base, stem, n) == 0;
}

enum driver_kind
driver_kind(int argc, char **argv, char **path)
{
	char *tool;

	if (argc < 3 || argv[0][0] == '-' || !stem_is(argv[1], "rustc"))
		return DRIVER_NONE;
	/* `kache why-miss rustc`: a command, not a tool on PATH */
	tool = strchr(argv[0], '/') != NULL ? xstrdup(argv[0]) : path_find_program(argv[0]);
	if (tool == NULL)
		return DRIVER_NONE;
	if (path != NULL)
		*path = tool;
	else
		free(tool);
	return strcmp(path_basename(argv[0]), "clippy-driver") == 0 ? DRIVER_CLIPPY : DRIVER_OTHER;
}

/* The first of .clippy.toml and clippy.toml in dir that is not a directory
 * (new string in *found): 1; 0 when neither is there; -1 when one cannot be
 * looked at (clippy-driver then fails itself). */
static int
config_in(const char *dir, char **found)
{
	static const char *const names[] = { ".clippy.toml", "clippy.toml" };
	struct stat st;

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *path = path_join(dir, names[i]);

		if (stat(path, &st) == 0) {
			if (!S_ISDIR(st.st_mode)) {
				*found = path;
				return 1;
			}
		} else if (errno != ENOENT && errno != ENOTDIR) {
			free(path);
			return -1;
		}
		free(path);
	}
	return 0;
}

int
driver_config(const struct wrapper *w, struct buf *out)
{
	const char *from = getenv("CLIPPY_CONF_DIR");
	char dir[PATH_MAX], *found = NULL, *folded, *slash;
	int r;

	if (from == NULL || from[0] == '\0')
		from = getenv("CARGO_MANIFEST_DIR");
	if (from == NULL || from[0] == '\0')
		from = ".";
	if (realpath(from, dir) == NULL)
		return -1;
	for (;;) {
		if ((r = config_in(dir, &found)) != 0)
			break;
		if (strcmp(dir, "/") == 0) {
			buf_addstr(out, "none");
			return 0;
		}
		slash = strrchr(dir, '/');
		slash[slash == dir ? 1 : 0] = '\0';
	}
	if (r < 0)
		return -1;
	folded = roots_fold_path(&w->roots, found);
	buf_addstr(out, folded);
	free(folded);
	free(found);
	return 0;
}
