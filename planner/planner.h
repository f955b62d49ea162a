/* The planner service (docs/planner.md): runners post what a build session
 * used (POST /v1/manifests); a new runner posts its build intent and gets a
 * ranked prefetch plan (POST /v1/prefetch-plan). State: the manifests, held
 * in an embedded RocksDB (one key a fingerprint) and in memory, where an
 * inverted index from crate@version to the sessions that used it answers a
 * plan without a scan.
 *
 * Threads: libmicrohttpd's pool calls planner_state_plan and
 * planner_state_put concurrently; the state takes a read-write lock. */
#ifndef KACHE_PLANNER_PLANNER_H
#define KACHE_PLANNER_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/util.h"

#define PLANNER_NAME_MAX 64
#define PLANNER_MAX_KEYS 65536
#define PLANNER_MAX_FEATURES 256
/* Sessions a similar-session plan draws keys from, best first. */
#define PLANNER_PLAN_SESSIONS 4
/* Posting entries (a session's use of a crate@version) one plan reads at
 * most: its work is bounded whatever the intent names. */
#define PLANNER_PLAN_BUDGET (1u << 21)

/* One result key a session used. version "" when unknown (a manifest read
 * from the remote's sessions/ carries none); compile_ms 0 when unknown; part
 * the id of the bundle part (docs/remote-layout.md) that holds its pack, as
 * the session manifest names it, "" when none or unknown. */
struct planner_key {
	char res[HASH_HEX_LEN + 1];
	char crate[PLANNER_NAME_MAX + 1];
	char version[PLANNER_NAME_MAX + 1];
	uint64_t compile_ms;
	uint64_t bytes;
	uint32_t order;
	char part[HASH_HEX_LEN + 1]; /* the bundle part holding its pack; "": none */
	uint32_t part_n; /* the keys of its session in that part (the state counts them) */
};

/* What one session used: the body of POST /v1/manifests. */
struct planner_manifest {
	char fp[HASH_HEX_LEN + 1];
	char toolchain[PLANNER_NAME_MAX + 1];
	char target[PLANNER_NAME_MAX + 1];
	char profile[PLANNER_NAME_MAX + 1];
	int64_t created_ms;
	struct strv features;
	struct planner_key *k;
	size_t n;
};

struct planner_crate {
	char name[PLANNER_NAME_MAX + 1];
	char version[PLANNER_NAME_MAX + 1];
};

/* A build intent: the body of POST /v1/prefetch-plan. toolchain "" matches
 * any; max_bytes 0: the server's cap. */
struct planner_intent {
	char fp[HASH_HEX_LEN + 1];
	char toolchain[PLANNER_NAME_MAX + 1];
	char target[PLANNER_NAME_MAX + 1];
	char profile[PLANNER_NAME_MAX + 1];
	struct planner_crate *c;
	size_t n;
	int has_max;
	uint64_t max_bytes;
};

enum planner_disposition { PLANNER_EXECUTE = 0, PLANNER_USE_FALLBACK, PLANNER_DO_NOTHING };
#define PLANNER_DISPOSITIONS 3

struct planner_plan {
	enum planner_disposition d;
	const char *source; /* "exact", "similar" or "none" */
	char sessions[PLANNER_PLAN_SESSIONS][HASH_HEX_LEN + 1];
	size_t nsessions;
	struct planner_key *k; /* candidates, in the order the build needs them */
	size_t n;
	uint64_t bytes;
};

/* planner_json.c: the request decoders check every field's presence, type,
 * and syntax before anything is kept. 0, or -1 with one sentence in why.
 * A name is [A-Za-z0-9_.+-]{1,64}; crate names have '-' folded to '_'
 * (Cargo.lock says serde-json, rustc says serde_json). */
int planner_decode_manifest(const char *d, size_t n, struct planner_manifest *m, char *why,
    size_t whylen);
int planner_decode_intent(const char *d, size_t n, struct planner_intent *in, char *why,
    size_t whylen);
void planner_manifest_free(struct planner_manifest *m);
void planner_intent_free(struct planner_intent *in);
/* The manifest as JSON, the form planner_decode_manifest reads (a new string). */
char *planner_encode_manifest(const struct planner_manifest *m);
char *planner_encode_plan(const struct planner_plan *p);
const char *planner_disposition_name(enum planner_disposition d);
void planner_plan_free(struct planner_plan *p);

struct planner_state;

/* Opens (creating) the RocksDB at dir and loads every manifest into memory.
 * NULL, logged, when the database cannot be opened. */
struct planner_state *planner_state_open(const char *dir);
/* Takes ownership; NULLs *sp. */
void planner_state_free(struct planner_state **sp);
/* Stores m (replacing a manifest of the same fingerprint) durably, then in
 * memory. With if_newer, a held manifest created at or after m is kept (a
 * remote reload never replaces what a runner posted since). Returns 1 when
 * stored, 0 when kept, -1 (logged) when the write failed. m is copied. */
int planner_state_put(struct planner_state *st, const struct planner_manifest *m, int if_newer);
/* The number of sessions held. */
size_t planner_state_count(struct planner_state *st);
/* Bounds on what is held (docs/planner.md, "Bounded state"), 0 for none:
 * at most max_sessions (the oldest by created_ms go first), none created
 * more than max_age_ms ago. Applied at each put and planner_state_expire. */
void planner_state_set_bounds(struct planner_state *st, size_t max_sessions, int64_t max_age_ms);
/* Removes, from memory and the database, what the bounds no longer allow
 * at now_ms (wall clock). Returns the number removed. */
int planner_state_expire(struct planner_state *st, int64_t now_ms);
/* The plan for in, at most cap bytes. */
void planner_state_plan(struct planner_state *st, const struct planner_intent *in, uint64_t cap,
    struct planner_plan *out);

/* planner_remote.c: stores every valid sessions/ object of the remote the
 * config names into st (if newer). Returns the number read, -1 when the
 * remote could not be listed (logged). tmp: a scratch directory. */
struct config;
int planner_remote_load(const struct config *cfg, struct planner_state *st, const char *tmp);

#endif
