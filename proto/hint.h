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
};

/* Fills m (already msg_init'ed with its type) from h. -1 when a field does not
 * fit the rules above (nothing to send). */
int proto_hint_to_msg(const struct proto_hint *h, struct msg *m);
/* Reads a hint from m's key and text. -1 when anything is missing, unknown,
 * too long or not of the allowed characters. */
int proto_hint_from_msg(const struct msg *m, struct proto_hint *h);

#endif
