/* The prefetch hint: what a wrapper tells the supervisor when a build session
 * starts (MSG_PREFETCH_HINT), and what the supervisor hands the prefetch
 * worker (MSG_JOB_PREFETCH). The message's key is the BLAKE2b of Cargo.lock's
 * content (hex; "" when it could not be read); its text is lines of
 * name=value:
 *
 *   root=<workspace root, absolute>
 *   lock=<Cargo.lock, absolute>
 *   target=<target triple, or empty for the host>
 *   profile=<cargo profile directory, e.g. debug, release; empty if unseen>
 *   toolchain=<16 hex: BLAKE2b of `rustc -vV`, or empty> (optional line)
 *   guess=1      (optional line) an early hint: target and profile are what
 *                cargo's command line suggests, sent at cargo's first
 *                question to rustc, before any compile shows them; served
 *                by the exact session manifest of that fingerprint only
 *
 * Decoding checks every name, length and character before anything is used. */
#ifndef KACHE_PROTO_HINT_H
#define KACHE_PROTO_HINT_H

#include <stddef.h>
#include <sys/stat.h>

#include "proto/msg.h"

struct config;

#define PROTO_HINT_PATH_MAX 1024
#define PROTO_HINT_NAME_MAX 64

struct proto_hint {
	char root[PROTO_HINT_PATH_MAX];
	char lock[PROTO_HINT_PATH_MAX];
	char target[PROTO_HINT_NAME_MAX + 1];
	char profile[PROTO_HINT_NAME_MAX + 1];
	char toolchain[PROTO_HINT_NAME_MAX + 1];
	char lock_hash[MSG_KEY_MAX + 1]; /* hex, or "" */
	int guess;                       /* an early hint (above) */
};

/* Fills m (already msg_init'ed with its type) from h. -1 when a field does not
 * fit the rules above (nothing to send). */
int proto_hint_to_msg(const struct proto_hint *h, struct msg *m);
/* Reads a hint from m's key and text. -1 when anything is missing, unknown,
 * too long or not of the allowed characters. */
int proto_hint_from_msg(const struct msg *m, struct proto_hint *h);

/* The hint a wrapper leaves for the supervisor: <store>/run/hints/<name>
 * (name: 16 hex digits, one per workspace, so a newer hint replaces one not
 * yet taken), holding the encoded MSG_PREFETCH_HINT. Written temp + rename,
 * without waiting for anyone: a supervisor takes it at once (it watches the
 * directory), or when it starts, or when it is no longer stopped or busy. */
#define PROTO_HINT_DIR "run/hints"
/* At most this many bytes are read from a hint file. */
#define PROTO_HINT_FILE_MAX 8192
/* 0 when written; -1 (logged) when h breaks the rules or the file cannot be. */
int proto_hint_file_write(const char *kache_dir, const char *name, const struct proto_hint *h);
/* 1 when name is a hint file's name (16 lowercase hex digits). */
int proto_hint_file_name_ok(const char *name);
/* Reads the hint file at path into m (decoded, a MSG_PREFETCH_HINT; the
 * caller checks its hint with proto_hint_from_msg and msg_clear's m). -1 when
 * it is not a regular file, too large or not such a message. */
int proto_hint_file_read(const char *path, struct msg *m);

/* ---- hint_session.c: the build session ----
 * A workspace's session of one mode (a build, or a check: below) is marked by
 * run/sessions/<ws> under the store (ws: proto_hint_ws_id of its Cargo.lock
 * path and mode; an early hint's marker is <ws>.early), whose mtime is the
 * last hint. The wrapper leaves a hint when the marker of its cargo command's
 * workspace and mode is stale; `kache prefetch` leaves an early one on a
 * user's word. */

/* The session id of a Cargo.lock path and mode (check: a check session's):
 * the first 16 hex of the BLAKE2b of the path (a build's) or of the path, a
 * newline and PROTO_HINT_CHECK_SUFFIX (a check's). */
void proto_hint_ws_id(const char *lock, int check, char ws[17]);
/* run/sessions/<ws> under kache_dir (new string). */
char *proto_hint_marker(const char *kache_dir, const char ws[17]);
/* 1 while the marker at path exists, is within prefetch.cooldown, and
 * Cargo.lock (of stat lock) was not written, replaced or touched since. */
int proto_hint_fresh(const struct config *cfg, const char *marker, const struct stat *lock);
/* A cargo command's session: run/sessions/cargo.<pid> (pid: cargo's, or a
 * build script's it runs) is a symbolic link to the marker of the session
 * its compiles belong to (its 16-hex name), made by the command's first
 * compile (which read cargo's command line for the workspace and mode), so
 * that the others know theirs from a stat and a readlink. The link counts
 * while its marker is within prefetch.cooldown (a pid taken again later by
 * another command finds it stale); the supervisor removes those of processes
 * gone (proto_hint_sweep_links). */
#define PROTO_HINT_CARGO_LINK "cargo."
/* run/sessions/cargo.<pid> under kache_dir (new string). */
char *proto_hint_cargo_link(const char *kache_dir, long pid);
/* 0 with the session id the link at path names (ws), when its marker is
 * within prefetch.cooldown; -1 when there is no such link, it is stale or
 * dangling, or it names no session id. Two system calls. */
int proto_hint_cargo_session(const struct config *cfg, const char *link, char ws[17]);
/* Points the link at path to session ws (made aside, renamed over any old
 * one); a failure only logs (the next compile asks cargo's command line
 * again). */
void proto_hint_cargo_link_set(const char *link, const char ws[17]);
/* Removes the cargo links of kache_dir whose process is gone; how many. */
int proto_hint_sweep_links(const char *kache_dir);
/* The early hint's marker (<marker>.early, new string) for the Cargo.lock at
 * lock (of stat ls) and mode (check), when neither it nor the compile's marker is fresh (a
 * session under way); NULL otherwise. One early hint per session, for the
 * wrapper at cargo's first question and for `kache prefetch`. */
char *proto_hint_early_due(const char *kache_dir, const struct config *cfg, const char *lock,
    const struct stat *ls, int check);
/* h's root (Cargo.lock's directory), lock and the hash of its content (""
 * when unreadable or over 8 MiB). */
void proto_hint_workspace(struct proto_hint *h, const char *lock);
/* The toolchain's short id: the first 16 hex of BLAKE2b over `rustc -vV`'s
 * output (vv, n bytes). */
void proto_hint_toolchain_id(const char *vv, size_t n, char out[17]);
/* The directory cargo builds a profile into: dev and test debug, bench
 * release, any other its own name. */
const char *proto_hint_profile_dir(const char *profile);
/* A session of a cargo command that builds no code (check, clippy, doc, fix,
 * rustdoc: its compiles emit metadata only, of no use to a build) carries
 * this after its profile directory ("debug.check"), so that its session
 * manifest is one of its own (docs/remote-layout.md). */
#define PROTO_HINT_CHECK_SUFFIX ".check"
/* 1 when cargo's subcommand sub is one of those. */
int proto_hint_check_like(const char *sub);
/* Appends PROTO_HINT_CHECK_SUFFIX to h's profile (unless there already, or
 * too long to name a session: left as it is). */
void proto_hint_mark_check(struct proto_hint *h);
/* 1 when profile is a check session's (ends with PROTO_HINT_CHECK_SUFFIX). */
int proto_hint_is_check(const char *profile);
/* A check session's profile less the suffix (the build's of the same
 * directory) into out (cap bytes): 1; 0 when profile has no suffix. */
int proto_hint_build_profile(const char *profile, char *out, size_t cap);
/* The Cargo.lock at or above dir (at most 32 levels up), none under
 * CARGO_HOME (a registry crate's). 0 with its path and stat, or -1. */
int proto_hint_find_lock_up(const char *dir, char *lock, size_t cap, struct stat *st);

enum proto_hint_left {
	PROTO_HINT_LEFT,               /* the hint is there for the supervisor */
	PROTO_HINT_LEFT_NO_SUPERVISOR, /* ... and none runs to take it: start one */
	PROTO_HINT_MARKED,             /* prefetch off: the marker only (sessions are saved) */
	PROTO_HINT_UNDER_WAY,          /* the marker is fresh, or another writer holds it */
	PROTO_HINT_FAILED,             /* the hint could not be written (logged) */
};
/* Leaves hint h (whose lock is the workspace's Cargo.lock, of stat ls) for
 * the supervisor of kache_dir and renews marker, unless the marker is fresh
 * or another process is at it (then it waits for nobody). */
enum proto_hint_left proto_hint_leave(const char *kache_dir, const struct config *cfg,
    const char *marker, const struct stat *ls, const struct proto_hint *h);

#endif
