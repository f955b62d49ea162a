/* Reading cargo's config.toml for `build.rustc-wrapper`, for `kache init` (which
 * writes it) and `kache doctor` (which checks it). Not a TOML parser: a line
 * scanner that knows tables, dotted keys, inline tables, comments, and skips
 * multi-line strings and arrays, which is all a rustc-wrapper line needs. */
#ifndef KACHE_CLI_CARGO_CFG_H
#define KACHE_CLI_CARGO_CFG_H

#include <stddef.h>

#define CARGO_CFG_VALUE_MAX 1024

struct cargo_cfg_scan {
	int found;                       /* build.rustc-wrapper is set */
	char value[CARGO_CFG_VALUE_MAX]; /* its string value ("" when not a string) */
	int has_build;                   /* a [build] table header exists */
	size_t build_end;                /* offset just past the [build] header line */
};

/* Scans text[0..len) (a config.toml) into r. */
void cargo_cfg_scan(const char *text, size_t len, struct cargo_cfg_scan *r);
/* 1 when a rustc-wrapper value names kache: "kache" or a path ending in /kache. */
int cargo_cfg_is_kache(const char *value);
/* $CARGO_HOME, or $HOME/.cargo: a new string, NULL when neither is set. */
char *cargo_cfg_home(void);
/* The config file cargo reads in dir: dir/config.toml, or dir/config when
 * only that exists. A new string. */
char *cargo_cfg_file(const char *dir);

#endif
