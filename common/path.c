#include "common/path.h"

#include <limits.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

void
path_clean(char *path)
{
	int abs = path[0] == '/';
	char *out = path, *p = path;
	size_t depth = 0; /* components we may pop with ".." */

	if (abs) {
		out++;
		p++;
	}
	char *start = out;
	while (*p) {
		char *seg = p;
		size_t len;

		while (*p && *p != '/')
			p++;
		len = (size_t)(p - seg);
		while (*p == '/')
			p++;
		if (len == 0 || (len == 1 && seg[0] == '.'))
			continue;
		if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			if (depth > 0) {
				/* pop the last component and its separator */
				while (out > start && out[-1] != '/')
					out--;
				if (out > start)
					out--;
				depth--;
				continue;
			}
			if (abs)
				continue;
		} else {
			depth++;
		}
		/* the separator goes before the segment: writing after it could
		 * overwrite the terminator that p is about to read */
		if (out > start)
			*out++ = '/';
		memmove(out, seg, len);
		out += len;
	}
	*out = '\0';
	if (path[0] == '\0') {
		path[0] = '.';
		path[1] = '\0';
	}
}

char *
path_absolute(const char *path, const char *cwd)
{
	char here[PATH_MAX];
	char *r;

	if (path[0] == '/') {
		r = xstrdup(path);
	} else {
		if (cwd == NULL) {
			if (getcwd(here, sizeof here) == NULL)
				return xstrdup(path);
			cwd = here;
		}
		r = xasprintf("%s/%s", cwd, path);
	}
	path_clean(r);
	return r;
}

char *
path_join(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (b[0] == '/')
		return xstrdup(b);
	if (n > 0 && a[n - 1] == '/')
		return xasprintf("%s%s", a, b);
	return xasprintf("%s/%s", a, b);
}

const char *
path_under(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (n == 1 && root[0] == '/')
		return path[0] == '/' ? path + 1 : NULL;
	if (strncmp(path, root, n) != 0)
		return NULL;
	if (path[n] == '\0')
		return path + n;
	if (path[n] == '/')
		return path + n + 1;
	return NULL;
}

int
path_is_safe_relative(const char *name)
{
	const char *p = name;

	if (name == NULL || name[0] == '\0' || name[0] == '/')
		return 0;
	while (*p) {
		const char *seg = p;
		size_t len;

		while (*p && *p != '/') {
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return 0;
			p++;
		}
		len = (size_t)(p - seg);
		if (len == 0 || (len == 1 && seg[0] == '.') ||
		    (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		if (*p == '/')
			p++;
		else
			break;
		if (*p == '\0')
			return 0;
	}
	return 1;
}

char *
path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

const char *
path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

char *
path_find_program(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *found = NULL;
	struct stat st;

	if (strchr(name, '/') != NULL)
		return stat(name, &st) == 0 && S_ISREG(st.st_mode) && access(name, X_OK) == 0 ?
		    path_absolute(name, NULL) :
		    NULL;
	copy = xstrdup(path ? path : "/usr/bin:/bin");
	/* strtok_r would skip an empty entry, which execvp reads as "." */
	for (char *d = copy, *end; d != NULL && found == NULL; d = end ? end + 1 : NULL) {
		char *f;

		if ((end = strchr(d, ':')) != NULL)
			*end = '\0';
		f = path_join(d[0] ? d : ".", name);
		if (stat(f, &st) == 0 && S_ISREG(st.st_mode) && access(f, X_OK) == 0)
			found = f;
		else
			free(f);
	}
	free(copy);
	return found;
}
