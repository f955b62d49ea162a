/* Reading cargo's config.toml: `build.rustc-wrapper` and `env.CC`/`env.CXX`,
 * for `kache init` (which writes them) and `kache doctor` (which checks them),
 * and `alias.NAME`, for the wrapper's guess of a cargo command's mode (an
 * alias of check is a check). Not a TOML parser: a line scanner that knows
 * tables, dotted keys, inline tables, comments, and skips multi-line strings
 * and arrays, which is all these keys need. libc only: the wrapper links it. */
#ifndef KACHE_COMMON_CARGO_CFG_H
#define KACHE_COMMON_CARGO_CFG_H

#include <stddef.h>

#define CARGO_CFG_VALUE_MAX 1024

#define CARGO_CFG_MAX_LINES 8

/* A table kache writes into: [build] or [env]. */
struct cargo_cfg_table {
	int has;         /* its header exists */
	size_t start;    /* offset of the header line */
	size_t end;      /* offset just past the header line */
	int other_lines; /* lines in it (keys, comments) that are not kache's */
};

struct cargo_cfg_scan {
	int found;                       /* build.rustc-wrapper is set */
	char value[CARGO_CFG_VALUE_MAX]; /* its string value ("" when not a string) */
	int has_build;                   /* a [build] table header exists */
	size_t build_end;                /* offset just past the [build] header line */
	int found_cc, found_cxx;         /* env.CC, env.CXX are set */
	char cc[CARGO_CFG_VALUE_MAX];    /* their values (a string, or an inline table's value) */
	char cxx[CARGO_CFG_VALUE_MAX];
	struct cargo_cfg_table build, env;
	/* the lines as `kache init` writes them ([build] rustc-wrapper = "kache",
	 * [env] CC/CXX = "kache ..."), [start, end) with the newline */
	size_t kache_line[CARGO_CFG_MAX_LINES][2];
	size_t n_kache_lines;
};

/* Scans text[0..len) (a config.toml) into r. */
void cargo_cfg_scan(const char *text, size_t len, struct cargo_cfg_scan *r);
/* The alias name as text[0..len) defines it ([alias] NAME = "words" or
 * ["word", ...], alias.NAME = ..., alias = { NAME = "words" }): its words,
 * each ended by a NUL, into out[0..cap), their bytes into *n. Returns 1 when
 * defined, 0 when not, -1 when defined but not read (not a string or an array
 * of strings, or longer than cap: *n is 0). */
int cargo_cfg_alias(const char *text, size_t len, const char *name, char *out, size_t cap,
    size_t *n);
/* The words of s split at white space, as cargo splits an alias's string
 * (CARGO_ALIAS_<NAME>), into out and *n as cargo_cfg_alias gives them.
 * 0, or -1 when they do not fit cap. */
int cargo_cfg_words(const char *s, char *out, size_t cap, size_t *n);
/* 1 when a rustc-wrapper value names kache: "kache" or a path ending in /kache. */
int cargo_cfg_is_kache(const char *value);
/* 1 when a CC/CXX value runs its compiler through kache ("kache gcc",
 * "/usr/bin/kache cc"). */
int cargo_cfg_cc_is_kache(const char *value);
/* $CARGO_HOME, or $HOME/.cargo: a new string, NULL when neither is set. */
char *cargo_cfg_home(void);
/* The config file cargo reads in dir: dir/config.toml, or dir/config when
 * only that exists. A new string. */
char *cargo_cfg_file(const char *dir);
/* cargo's config files in cargo's order, the nearest first: .cargo/config.toml
 * (or .cargo/config) in dir (absolute) and each directory above it, then
 * CARGO_HOME's when not among them. Calls found(path, arg) for each until it
 * returns non-zero; returns that value and (with path not NULL) the file's
 * path, a new string; 0 when none did. */
int cargo_cfg_walk(const char *dir, int (*found)(const char *path, void *arg), void *arg,
    char **path);

#endif
