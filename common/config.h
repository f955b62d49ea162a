/* Settings: defaults, under ~/.config/kache/config.toml, under KACHE_* variables.
 * The file is a flat subset of TOML: [section] and key = value lines. */
#ifndef KACHE_CONFIG_H
#define KACHE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "common/util.h"

struct config;

enum config_source { CONFIG_DEFAULT = 0, CONFIG_FILE, CONFIG_ENV };

/* Loads the effective settings. Problems (unreadable file, unknown key, bad
 * value) are appended to warnings, one line each, and never fatal. */
struct config *config_load(struct buf *warnings);
/* Where config_load_warn says the warnings. */
enum config_warn {
	CONFIG_WARN_NONE = 0, /* dropped: a step of a command that said them already */
	CONFIG_WARN_STDERR,   /* on stderr after "kache: warning: " (a CLI command) */
	CONFIG_WARN_LOG,      /* log_warnx (the supervisor and its workers) */
};
/* config_load with its warnings said as how says, and also appended to keep
 * when keep is not NULL (kache doctor reports them as a check): the one way
 * every command and process loads its settings. */
struct config *config_load_warn(enum config_warn how, struct buf *keep);
void config_free(struct config **cfg);
/* The value of "section.key"; never NULL for a known key ("" when unset). */
const char *config_get(const struct config *cfg, const char *key);
int64_t config_get_int(const struct config *cfg, const char *key);
int config_get_bool(const struct config *cfg, const char *key);
/* Size values such as "10G"; -1 when malformed. */
int64_t config_get_size(const struct config *cfg, const char *key);
/* Durations such as "90s", "10m", "300" (seconds; parse_duration), in ms; a
 * malformed value reads as the key's default. */
int64_t config_get_duration(const struct config *cfg, const char *key);
/* 1 when remote.type asks for a remote at all (not "none", not empty): the one
 * test the wrapper, the supervisor and the workers share. */
int config_has_remote(const struct config *cfg);
/* Overrides a value (as if from the environment); for tests and CLI flags. */
void config_set(struct config *cfg, const char *key, const char *value);
/* Prints every setting with its value and where it came from. Secrets are masked. */
void config_dump(const struct config *cfg, FILE *out);
/* The path of the config file that was (or would be) read. */
const char *config_file_path(const struct config *cfg);
/* 1 for an environment variable name (or "NAME=value": the name alone is read)
 * whose value must never reach a key, a log or the remote: one of its words
 * (split at anything not a letter or digit, any case) is TOKEN, SECRET,
 * PASSWORD, PASSWD, PASS, PASSPHRASE, CREDENTIAL, AUTH, SESSION, PRIVATE or
 * APIKEY (TOKENS, SECRETS, PASSWORDS, CREDENTIALS too), or KEY right after
 * ACCESS, API, SIGNING, ENCRYPTION or MASTER. Whole words: CARGO_PKG_AUTHORS
 * is no secret. */
int config_is_secret_env(const char *name);

#endif
