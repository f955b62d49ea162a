/* The RUSTC_WRAPPER hot path: parse, key, restore a hit or compile and store.
 * Links common, proto and store only, and runs no background thread. One
 * section per file; what is not declared here is static to its file. */
#ifndef KACHE_WRAPPER_H
#define KACHE_WRAPPER_H

#include <stdint.h>
#include <sys/stat.h>

#include "common/config.h"
#include "common/hash.h"
#include "common/util.h"
#include "store/journal.h"
#include "proto/hint.h"
#include "store/store.h"

/* ---- args.c: what a rustc command line means for caching ---- */

enum emit_kind {
	EMIT_LINK = 1 << 0,
	EMIT_METADATA = 1 << 1,
	EMIT_DEPINFO = 1 << 2,
	EMIT_OBJ = 1 << 3,
	EMIT_ASM = 1 << 4,
	EMIT_LLVM_IR = 1 << 5,
	EMIT_LLVM_BC = 1 << 6,
	EMIT_MIR = 1 << 7,
};

struct rustc_args {
	int argc;
	char **argv; /* the arguments after the rustc path, as given */
	const char *crate_name;
	const char *src; /* the one source file, as given */
	const char *out_dir;
	const char *extra_filename;
	struct strv crate_types; /* lib, rlib, bin, proc-macro, test, ... */
	unsigned emit;           /* enum emit_kind bits */
	struct strv externs;     /* "name=path" or "name" as given */
	struct strv lib_dirs;    /* -L values as given */
	struct strv opt_names;   /* every option in order, e.g. "-C", "--cfg", "--test" */
	struct strv opt_values;  /* its value, or NULL for a flag */
	int incremental;
	int native_cpu; /* -C target-cpu=native or -Z tune-cpu=native: the key takes the CPU */
	/* -C split-debuginfo=unpacked (a .dwo per codegen unit beside the
	 * outputs) or packed (a .dwp beside a binary or shared library): files
	 * rustc does not announce, outputs all the same */
	const char *split_debuginfo;
	int json_artifacts; /* --json includes "artifacts" */
	int stdin_sources;  /* how many `-` (source read from stdin) */
	int unmodelled;     /* arguments neither an option, a source nor `-` */
	/* a build script's probe (its --out-dir inside $OUT_DIR, as anyhow's and
	 * thiserror's feature checks): a failure (exit 1) is cached too; one that
	 * asks no dep-info gets kache's own, written outside the out-dir */
	int probe;
	int private_depinfo;
	const char *pass_reason; /* non-NULL: do not cache, and why */
};

/* Parses argv (after the rustc path). Never fails: an invocation it cannot model
 * safely gets a pass_reason. */
void args_parse(struct rustc_args *a, int argc, char **argv);
void args_free(struct rustc_args *a);
/* The file names (relative to out_dir) rustc will write, for unlinking before a
 * compile: a store blob hardlinked there must never be written through. */
void args_expected_outputs(const struct rustc_args *a, struct strv *out);
/* The outputs' stem: crate name and -C extra-filename ("core-1a2b"). */
char *args_stem(const struct rustc_args *a);

/* ---- hostcpu.c: the CPU that "native" code is for ---- */

/* Appends to id the lines of /proc/cpuinfo's first processor that tell what
 * code it runs (x86: vendor, family, model, flags; arm: implementer,
 * architecture, variant, part, features; riscv, powerpc likewise), and puts
 * the values that name it in label ("AuthenticAMD 25 17"). 0, or -1 when
 * there is none to be read (the compile is then not cached). */
int hostcpu_id(struct buf *id, char *label, size_t label_n);
/* A compile of code for the host CPU (what: the crate or source, flag: the
 * option that asked for it, for the one log line of a failure): "host-cpu"
 * and hostcpu_id's lines into c; with label, the label into it and BLAKE2b
 * of the lines into digest. 0, or -1 when there are none to be read. */
int hostcpu_hash(struct hash_ctx *c, const char *what, const char *flag, char *label,
    size_t label_n, unsigned char digest[HASH_LEN]);

/* ---- driver.c: cargo's workspace wrapper (clippy-driver) in front of rustc ---- */

enum driver_kind { DRIVER_NONE, DRIVER_CLIPPY, DRIVER_OTHER };

/* What argv (after kache's own name) is: `<tool> <rustc> <args>`, as cargo
 * runs a workspace member's compile under RUSTC_WORKSPACE_WRAPPER (the second
 * word's file stem "rustc", the first a path or a program on PATH), with
 * clippy-driver (DRIVER_CLIPPY: cached) or another tool (DRIVER_OTHER: run
 * untouched); else DRIVER_NONE. For a tool, path (unless NULL) receives its
 * path (new string), the one PATH finds for a name without a slash. */
enum driver_kind driver_kind(int argc, char **argv, char **path);

struct wrapper;
/* The configuration file clippy-driver will read, as it looks for one: in
 * CLIPPY_CONF_DIR, else CARGO_MANIFEST_DIR, else the working directory, then
 * each parent up to the root, .clippy.toml before clippy.toml. Appends its
 * path, folded (roots.c), or "none", to out: the key takes it, so that a
 * clippy.toml that appears or goes is a miss (clippy names the file it read
 * in its dep-info, which keys its content, but not the ones it did not
 * find). 0, or -1 when the search fails where clippy's own would. */
int driver_config(const struct wrapper *w, struct buf *out);

/* ---- roots.c: location independence ---- */

/* The roots of one invocation: workspace (cwd), target dir, CARGO_HOME. Paths
 * under them are folded to tokens in keys and stored text, and expanded back
 * with the consumer's own roots on restore. */
struct roots {
	char *cwd;
	char *target; /* NULL when not found */
	char *home;   /* NULL when unknown */
};

void roots_find(struct roots *r, const struct rustc_args *a);
void roots_free(struct roots *r);
/* Replaces every root prefix in text with its token (longest root first). */
void roots_fold(const struct roots *r, const char *text, size_t n, struct buf *out);
/* The inverse: tokens to this invocation's roots. */
void roots_expand(const struct roots *r, const char *text, size_t n, struct buf *out);
/* An absolute (or cwd-relative) path in folded form; new string. */
char *roots_fold_path(const struct roots *r, const char *path);
/* A compiler's input as a candidate records it: folded when it lies under a
 * root; a relative path outside every root stays relative as written (the
 * next invocation's compiler reads it beside its own cwd, not at this one's
 * place); an absolute one outside every root stays absolute. New string. */
char *roots_fold_input(const struct roots *r, const char *path);
/* Appends the --remap-path-prefix arguments that make artifacts location-free. */
void roots_remap_args(const struct roots *r, struct strv *out);

/* ---- depinfo.c ---- */

struct depinfo {
	struct strv files;      /* prerequisites, as written (relative to cwd or absolute) */
	struct strv env_names;  /* # env-dep: names, sorted */
	struct strv env_values; /* matching values; NULL entries mean "unset" */
};

/* Parses a Makefile-style .d as rustc writes it. 0 / -1. */
int depinfo_parse(const char *text, size_t n, struct depinfo *d);
void depinfo_free(struct depinfo *d);
/* Copies dep-info text to out with the value of every secret-looking env-dep
 * (config_is_secret_env) replaced by a mark, so that no secret is stored or
 * uploaded; with restore, puts this process's own value back in place of the
 * mark (a hit proved it has the value's hash), as cargo's freshness check
 * compares the value in the .d with its environment. */
void depinfo_secrets(const char *text, size_t n, int restore, struct buf *out);
/* An env-dep value as a candidate keeps it (new string): roots folded, and a
 * secret (config_is_secret_env) only as "blake2b:<hash>". */
char *depinfo_env_form(const struct roots *r, const char *name, const char *value);
/* A variable a proc macro read (trace.c) as a candidate keeps it (new string):
 * only ever a hash, "blake2b:<hash of the value, roots folded>" (a secret's
 * as depinfo_env_form). envs_match tells the forms apart by that prefix. */
char *depinfo_env_form_traced(const struct roots *r, const char *name, const char *value);

/* ---- exec.c ---- */

struct run_result {
	int status;          /* exit status as a shell would report it */
	struct buf out, err; /* what rustc printed (already forwarded) */
	uint64_t ms;
};

/* Runs rustc with argv (and env_add's NAME=value strings in its environment,
 * when not NULL), forwarding its stdout and stderr as they come and capturing
 * them. -1 when it could not be started. */
int run_rustc(const char *rustc, char *const argv[], char *const env_add[], struct run_result *r);
/* Replaces this process with rustc and the original arguments. */
void exec_rustc(const char *rustc, int argc, char **argv) __attribute__((noreturn));

/* ---- compile.c: the order (hit, pending store, remote, compile) and the supervisor ---- */

/* What a wrapper invocation knows; main.c fills cfg, store, rustc, args and
 * start_us, the rest is filled on the way. */
/* What the proc macros of a miss read (trace.c, preload/trace.h). */
struct trace {
	int fd;              /* the trace file rustc appends to, or -1 */
	int wanted;          /* the compile may load a proc macro, cache.trace_proc_macros on */
	int loaded;          /* the library said it was active in rustc */
	struct strv env_add; /* LD_PRELOAD and KACHE_TRACE_* for rustc, NULL-terminated */
	struct strv inputs;  /* kind byte ('R', 'A', 'D') and path, sorted, unique */
	struct strv envs;    /* names of the variables read, sorted, unique */
	const char *refuse;  /* why the result must not be stored, or NULL */
};

struct wrapper {
	struct config *cfg;
	struct store *store;
	const char *rustc;
	const char *driver; /* clippy-driver in front of rustc (driver.c), or NULL */
	char *driver_conf;  /* its configuration file as the key took it (driver_config) */
	struct rustc_args args;
	struct roots roots;
	unsigned char inv[HASH_LEN];
	int64_t start_us;
	int from_remote;       /* the entry being served was just fetched */
	int local_only;        /* the result journalled stays here: its compile read a secret */
	int hit_status;        /* the exit status of the compile the hit replayed (a probe's 1) */
	int recache;           /* cache.recache: compile and store over, never serve */
	char *private_d;       /* a probe's dep-info that kache asked rustc for, or NULL */
	struct strv key_files; /* files hashed into the key (--extern, -l libraries) */
	struct buf key_hashes; /* their hashes, HASH_LEN bytes each, in that order */
	char toolchain[17];    /* first 16 hex of BLAKE2b of `rustc -vV` (key.c) */
	char ws[17];           /* the workspace id (session.c), "" when unknown */
	unsigned char memo_key[HASH_LEN]; /* memo.c: this crate's memo record */
	struct store_memo_rec memo_old;   /* as read (sorted) */
	struct store_memo_rec memo_new;   /* learnt by this run, in order */
	int memo_loaded, memo_dirty;
	/* memo.c's stats through the directory of the last input: its path and,
	 * from the second input in a row there, an O_PATH descriptor of it
	 * (stat_dir_open 1; -1 when it could not be opened) */
	char *stat_dir;
	size_t stat_dir_len;
	int stat_dirfd, stat_dir_open;
	char rustc_release[160];                 /* the first line of `rustc -vV` (key.c), and
	                                            the driver's version after it */
	unsigned char rustc_digest[HASH_LEN];    /* BLAKE2b of `rustc -vV` (and the driver's) */
	char host_cpu[128];                      /* with native_cpu: the CPU (hostcpu_id's label) */
	unsigned char host_cpu_digest[HASH_LEN]; /* and BLAKE2b of its identity */
	struct trace trace;                      /* a miss's proc macros' reads */
};

/* trace.c: 1 when the compile may load a proc macro (an --extern names a
 * file: a macro, or a crate that may re-export one; or a -L searched for
 * crates by name) and cache.trace_proc_macros is on; the key says so (key.c). */
int trace_wanted(const struct wrapper *w);
/* Before a miss's rustc: the trace file and w->trace.env_add, or the reason
 * nothing will be stored (w->trace.refuse). Nothing when not wanted. */
void trace_begin(struct wrapper *w);
/* After it: the records read into w->trace (inputs and envs sorted, unique;
 * refuse set for a write, a program run, a connection, or a library that did
 * not load), the file closed. */
void trace_collect(struct wrapper *w);
void trace_free(struct wrapper *w);
/* An input's hash as a candidate keeps it: a file's content (memo_hash_file),
 * else a directory's sorted names, else a tag for a path that does not exist;
 * kind (when not NULL) says which, as preload/trace.h's TRACE_READ, TRACE_DIR
 * or TRACE_ABSENT; st the stat (zeroed for an absent path). -1 when the path
 * can be none of them (unreadable). */
int trace_input_hash(struct wrapper *w, const char *path, unsigned char out[HASH_LEN],
    struct stat *st, int *kind);

/* The kached binary beside this one (new string), or NULL. */
char *wrapper_kached_path(void);
/* rel under the directory of the binary this process runs (new string), or
 * NULL. */
char *wrapper_beside(const char *rel);
/* Serves one rustc invocation. Returns the exit status to use, or -1 when kache
 * failed before rustc ran and the caller must run rustc untouched. */
int wrapper_compile(struct wrapper *w);
/* Appends an event about this invocation (inv, crate, kache's own time) to the
 * store's journal; res may be NULL. A failure is logged, never fatal. */
void wrapper_journal(struct wrapper *w, enum journal_type t, const char *reason,
    const unsigned char *res, uint64_t ms, uint64_t bytes);
/* Completes ev as every wrapper record is (the package version cargo set,
 * kache's own time since start_us less a miss's compile time) and appends it
 * to s's journal; best effort. For any compile (C objects too). */
void wrapper_journal_append(struct store *s, struct journal_event *ev, int64_t start_us);
/* With a remote configured (and writable): a durable upload intent for result
 * res, then a notice to the supervisor that does not wait. Under
 * cache.recache the intent replaces the remote's pack of res. */
void wrapper_queue_upload(struct wrapper *w, const unsigned char res[HASH_LEN]);
/* The same for any compile (C objects too): intent for (res, inv), then the
 * notice; label names the compile in the one log line of a failure; replace:
 * compiled under cache.recache. */
void wrapper_upload(const struct config *cfg, struct store *s, const unsigned char res[HASH_LEN],
    const unsigned char inv[HASH_LEN], const char *label, int replace);
/* On a local miss with a remote: asks the supervisor's fetcher for inv within
 * the wrapper's deadline (starting a supervisor when none runs, and waiting
 * for its socket within the same deadline, so a fresh runner's first misses
 * are fetched too). 1 when the fetcher imported something: look again. */
int wrapper_fetch(const struct config *cfg, struct store *s, const unsigned char inv[HASH_LEN],
    const char *label);
/* After a result was stored in s, with no remote (no supervisor runs, so no
 * indexer applies cache.max_size): when supervisor.gc_interval has passed
 * since the last gc started, starts one in the background (`kached __gc`),
 * never waiting for it. One stat on most calls. */
void wrapper_gc_kick(const struct config *cfg, struct store *s);
/* Starts a supervisor for store s when none runs; never waits for it. */
void wrapper_ensure_supervisor(struct store *s);

/* The start of the JSON line rustc prints for each artifact (--json=artifacts). */
#define WRAPPER_ARTIFACT_PREFIX "{\"$message_type\":\"artifact\""

/* ---- memo.c: the crate's memo record (stat and hash of every file it read) ---- */

/* Reads this crate's memo record (one file); a damaged one is ignored and
 * rewritten by memo_save. Needs the roots. */
void memo_load(struct wrapper *w);
/* The content hash of path: the record's when a fresh stat(2) matches its
 * entry in device, inode, size, mtime and ctime; else hashed (file_memo:
 * through the per-file stat memo, for --extern and -l libraries, which the
 * hit that restored them memoized) and, when stable (unchanged while hashed,
 * ctime older than STORE_MEMO_MIN_AGE_NS), learnt for the record. st (may be
 * NULL) receives the stat the hash belongs to. -1 when it cannot be read. */
int memo_hash_file(struct wrapper *w, const char *path, unsigned char out[HASH_LEN],
    struct stat *st, int file_memo);
/* Writes the record back (temp + rename) when this run learnt something:
 * the new entries, then the old ones they do not replace. */
void memo_save(struct wrapper *w);
void memo_free(struct wrapper *w);

/* ---- session.c: the build session and the prefetch hint ---- */

/* With a remote: the session of this compile's cargo command, a build's or,
 * when cargo's command builds no code (check, clippy, doc...), a check's: on
 * most calls the cargo link its first compile made (proto/hint.h: a stat and
 * a readlink); else, once a command, from cargo's command line and the
 * workspace's Cargo.lock, and when that session's marker is older than
 * prefetch.cooldown or Cargo.lock changed since, leaves the supervisor a
 * prefetch hint (a file: waits for nobody) and renews the marker. A build
 * script's compile (a probe) takes its cargo's session. 1 when no supervisor
 * runs to take the hint (the caller starts one, which takes it). */
int session_hint(struct wrapper *w);
/* The same at cargo's first question, `rustc -vV` (its answer vv, n bytes, in
 * hand), before any compile shows the target dir, target or profile: the
 * workspace is the Cargo.lock at or above the working directory (or cargo's
 * --manifest-path), target and profile what the parent cargo's command line
 * says (a guess; no hint unless the parent is cargo). The hint says it is a
 * guess (served by its exact session manifest only) and its marker is
 * run/sessions/<name>.early, so the first compile's hint still goes, and
 * wins. Two or three stats when a session is under way. 1 when no
 * supervisor runs (the caller starts one). */
int session_hint_early(struct wrapper *w, const char *vv, size_t n);
/* What a cargo command line (NUL-separated, as /proc/<pid>/cmdline holds it)
 * says of the session (wrapper/cargo_cmd.c): h's target and profile
 * (directory: debug, release or the profile's name; a check's marked) and,
 * when given, --manifest-path into manifest ("" otherwise), with an alias
 * expanded as cargo would from cwd (its working directory; NULL: none of its
 * config files read). -1 when argv[0] is not cargo, or the line is not one a
 * guess can be made from (install, -C, two targets). */
int session_guess_cargo(const char *cmdline, size_t n, const char *cwd, struct proto_hint *h,
    char *manifest, size_t cap);
/* The journal's session id for a C compile (whose results then join the
 * session's manifest): the session of the nearest of its ancestors (a build
 * script, make...) with a cargo link, else the build session of the
 * Cargo.lock beside the target dir r found; "" when there is none. */
void session_ws_of_caller(const struct config *cfg, const char *kdir, const struct roots *r,
    char ws[17]);
/* For a compile of a path package of the workspace (its source given as a
 * relative path, as cargo gives a workspace's own), appends "<crate>
 * <features>" to run/sessions/<ws>.features: what the session manifest
 * records of the session's features (remote/session.h); nothing with
 * prefetch.save_manifest off. One append, no wait; a failure only logs. */
void session_features(struct wrapper *w);

/* ---- hit.c: match a candidate, restore its outputs, replay rustc's output ---- */

/* Serves w->inv from the store when a candidate matches. 1: served (outputs in
 * place, output replayed, journalled); 0: a miss. */
int hit_try(struct wrapper *w);
/* 1 when cache.restore lets a hit hardlink blobs (so a store keeps them
 * link-safe). */
int hit_may_hardlink(const struct wrapper *w);

/* ---- miss.c: run rustc, collect its outputs, store them ---- */

/* Runs rustc (with the remap arguments) after unlinking the outputs it will
 * write, then stores what it produced (in a child when cache.background_store).
 * Returns rustc's exit status, or -1 when rustc could not be started (the
 * caller then runs it untouched). */
int miss_compile(struct wrapper *w);

/* ---- query.c: what cargo asks rustc before compiling ---- */

/* Answers one of the questions cargo asks rustc before any compile (`rustc
 * -vV`; its target query `rustc - --crate-name ___ --print=...` with stdin
 * from /dev/null) from a memo named by the binary's identity, the arguments
 * and the variables rustc reads for them (through clippy-driver, w->driver:
 * the driver's identity too); otherwise runs rustc (or the driver), forwarding
 * its output, and memoizes a successful answer. The exit status, or -1 when the
 * invocation is not such a question (run rustc untouched). */
int query_answer(struct wrapper *w);
/* A memoized answer: "kache-query-1 <out bytes> <err bytes> <BLAKE2b hex of
 * both>\n", then stdout's bytes and stderr's. */
void query_memo_encode(const char *out, size_t nout, const char *err, size_t nerr, struct buf *b);
/* Checks one whole (counts in their one spelling, each at most 256 KiB, the
 * digest); 0 with the body's offset and the two lengths, -1 when it is not. */
int query_memo_decode(const char *p, size_t n, size_t *body, size_t *nout, size_t *nerr);

/* ---- key.c ---- */

/* The identity of the rustc binary `rustc` resolves to (its path, size,
 * mtime, inode; new string), for memos of what it answers; NULL for a rustup
 * proxy, which answers for whichever toolchain is selected. */
char *key_rustc_identity(const char *rustc);
/* An answer of `rustc -vV` just had from the rustc of identity id
 * (key_rustc_identity): memoized in s for the key, as if key_invocation had
 * asked (so the first compile does not ask again). */
void key_rustc_version_seen(struct store *s, const char *id, const char *vv, size_t n);

/* The invocation key (first level). 0 / -1. */
int key_invocation(struct wrapper *w, unsigned char out[HASH_LEN]);
/* 1 when every file key_invocation hashed still has the hash it had then. */
int key_files_unchanged(struct wrapper *w);
/* Appends to out the environment the key takes: "NAME=value", roots folded, sorted. */
void key_env_vars(struct wrapper *w, struct strv *out);

/* ---- keyparts.c: why a miss missed ---- */

/* After a stored miss: records its key part by part (store/why.h) with the
 * candidate c (sources, env-deps), so that `kache why-miss` can compare it
 * with earlier compiles of the crate. Miss path only; best effort. */
void keyparts_record(struct wrapper *w, const struct store_candidate *c);

#endif
