/* The event journal: wrappers append one small msgpack record per compile to
 * $KACHE_DIR/journal/events; the index owner (one process) ingests them, since
 * RocksDB takes one writer and the wrapper must not link it.
 *
 * Framing: a 4-byte big-endian length, then a msgpack map:
 *   v: 1, t: type, ts: wall ms, crate, reason, inv (bin 32), res (bin 32),
 *   ms: compile ms (miss) or ms saved (hit), bytes, us: time spent in kache,
 *   and, when the wrapper saw the workspace's Cargo.lock, ws: the workspace id
 *   (16 hex: the first 8 bytes of BLAKE2b of the Cargo.lock path, the name of
 *   its session marker under JOURNAL_SESSIONS_DIR), by which the index gathers
 *   the result keys one build session used (its session manifest); when
 *   cargo set CARGO_PKG_VERSION, ver: the package's version, which the
 *   session manifest carries per result key (the planner ranks by it);
 *   and, for a C, C++ or assembly compile (wrapper/cc.c), lang: "c",
 *   "c++" or "asm" (absent: rustc's).
 * Wrappers write hits, misses, passes, errors and corrupt finds; a worker that
 * imports a pack (store/pack.c) writes `import`, before the entry can be
 * found, so that the index owner knows where an entry came from before any
 * hit on it. A single write(2) with O_APPEND per record keeps records whole. */
#ifndef KACHE_STORE_JOURNAL_H
#define KACHE_STORE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

#define JOURNAL_FORMAT 1
#define JOURNAL_MAX_RECORD 4096
/* Under the store: <ws> (the session marker, wrapper/session.c) and
 * <ws>.used ("crate result-hex" lines the index appends as it ingests). */
#define JOURNAL_SESSIONS_DIR "run/sessions"
#define JOURNAL_WS_LEN 16
/* A package version as recorded: [A-Za-z0-9_.+-]{1,64} (semver's alphabet). */
#define JOURNAL_VERSION_MAX 64

enum journal_type {
	JOURNAL_HIT = 1,    /* restored from the local store */
	JOURNAL_MISS,       /* compiled; res set when the result was stored */
	JOURNAL_PASS,       /* passed through uncached; reason says why */
	JOURNAL_ERROR,      /* kache failed and fell back to rustc; reason says how */
	JOURNAL_CORRUPT,    /* a damaged entry or blob was found and removed */
	JOURNAL_REMOTE_HIT, /* fetched from the remote, then restored */
	JOURNAL_REJECTED,   /* a remote object refused by its signature; reason says
	                     * why (remote/sign.h: unsigned, unknown_key, ...) */
	JOURNAL_IMPORT,     /* a pack imported; reason "prefetch" or "fetch", bytes its outputs */
};

/* The reasons of JOURNAL_IMPORT: "prefetch", or "prefetch/<source>" with
 * the plan's source, one of JOURNAL_IMPORT_SOURCES; "fetch". */
#define JOURNAL_IMPORT_PREFETCH "prefetch"
#define JOURNAL_IMPORT_FETCH "fetch"
#define JOURNAL_IMPORT_SOURCES                                                                     \
	{                                                                                          \
		"planner", "exact", "closest", "packs"                                             \
	}
#define JOURNAL_IMPORT_NSOURCES 4

struct journal_event {
	enum journal_type type;
	int64_t ts_ms;
	char crate[128];
	char reason[64];
	int has_inv, has_res;
	unsigned char inv[HASH_LEN];
	unsigned char res[HASH_LEN];
	uint64_t ms;
	uint64_t bytes;
	uint64_t us;
	char ws[JOURNAL_WS_LEN + 1];           /* "" when unknown */
	char version[JOURNAL_VERSION_MAX + 1]; /* "" when unknown or not valid */
	char lang[4];                          /* "c", "c++", "asm"; "" for rustc */
	int local_only; /* a result that stays on this machine: its compile read a
	                 * secret-looking variable (config_is_secret_env), never uploaded */
};

/* The compiler language of an event: its lang, or "rust". */
const char *journal_lang(const struct journal_event *ev);

const char *journal_type_name(enum journal_type t);
/* Appends ev to <store_dir>/journal/events. Best effort: 0 / -1. */
int journal_append(const char *store_dir, const struct journal_event *ev);
/* Decodes the records in data[0..n). Calls fn for each whole, valid record;
 * returns the number of bytes consumed (a torn tail is left for later). */
/* 1 when s is a workspace id: JOURNAL_WS_LEN lowercase hex digits. */
int journal_ws_valid(const char *s);
/* 1 when an import record's reason is a prefetch's ("prefetch" or
 * "prefetch/<source>"). */
int journal_import_is_prefetch(const char *reason);
/* 1 when s is a version as recorded (JOURNAL_VERSION_MAX). */
int journal_version_valid(const char *s);
size_t journal_parse(const char *data, size_t n,
    void (*fn)(const struct journal_event *ev, void *arg), void *arg);

#endif
