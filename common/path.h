/* Lexical path handling: absolute paths, prefixes, safe names; and where
 * PATH finds a program. */
#ifndef KACHE_PATH_H
#define KACHE_PATH_H

/* Makes path absolute against cwd (getcwd() when NULL) and removes ".", ".." and
 * repeated slashes lexically. Returns a new string. */
char *path_absolute(const char *path, const char *cwd);
/* Removes ".", ".." and "//" lexically from an absolute or relative path, in place. */
void path_clean(char *path);
char *path_join(const char *a, const char *b);
/* When path equals root or lies under it (component-wise), returns the rest
 * ("" or "sub/dir"); else NULL. root must be clean and have no trailing slash. */
const char *path_under(const char *path, const char *root);
/* 1 when name is a relative path with no "..", no empty or "." component and no
 * control characters: safe to join under a directory we own. */
int path_is_safe_relative(const char *name);
/* The directory part (new string); "." when there is none. */
char *path_dirname(const char *path);
const char *path_basename(const char *path);
/* The file execvp would run for name (new string: absolute when name has a
 * '/', else PATH's directory joined, "/usr/bin:/bin" when PATH is unset, an
 * empty entry the working directory): a regular file this process may
 * execute; NULL when there is none. */
char *path_find_program(const char *name);

#endif
