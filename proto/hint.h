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

#include "proto/msg.h"

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

#endif
