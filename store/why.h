/* Why-miss records: what a miss's key was made of, part by part, so that
 * `kache why-miss` can tell which part changed against an earlier compile of
 * the same crate. Written by a miss only (after rustc ran, off the hit path),
 * appended to <store>/run/why/<crate> (framed as the journal: a 4-byte
 * big-endian length, then a msgpack map), one file per crate, kept under
 * WHY_FILE_MAX by dropping its oldest records.
 *
 * A record: v: 1, ts: wall ms, crate, inv (bin 32), parts: an array of
 * [kind, name, digest (bin 32)]; kinds are enum why_kind's names. A part is
 * matched with its like by (kind, name), but the compiler and the roots by
 * kind alone (their name is only what to show: `rustc 1.80.0 (...)`, a path),
 * and so is the host CPU. */
#ifndef KACHE_STORE_WHY_H
#define KACHE_STORE_WHY_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

#define WHY_FORMAT 1
#define WHY_DIR "run/why"
#define WHY_MAX_RECORD (512u << 10)
#define WHY_MAX_PARTS 4096
#define WHY_MAX_NAME 512
#define WHY_FILE_MAX (2u << 20)

enum why_kind {
	WHY_COMPILER = 1, /* `rustc -vV`; name: its release line */
	WHY_ARG,          /* one option as folded into the key; name: its text */
	WHY_ENV,          /* a variable hashed into the key (RUSTFLAGS, CARGO_CFG_*) */
	WHY_EXTERN,       /* --extern NAME=file; digest: the file's */
	WHY_NATIVE,       /* a -l library; name: its path folded */
	WHY_SOURCE,       /* a dep-info input; name: its folded path */
	WHY_ENVDEP,       /* a dep-info env-dep (env!); digest: of its stored form */
	WHY_ROOT_WS,      /* the roots, in the key only without cache.remap */
	WHY_ROOT_TARGET,
	WHY_ROOT_HOME,
	WHY_HOST_CPU, /* the CPU of -C target-cpu=native; name: what names it */
	WHY_KIND_MAX
};

struct why_part {
	enum why_kind kind;
	char *name;
	unsigned char digest[HASH_LEN];
};

struct why_rec {
	int64_t ts_ms;
	char crate[128];
	unsigned char inv[HASH_LEN];
	struct why_part *parts;
	size_t n, cap;
};

const char *why_kind_name(enum why_kind k);
/* 1 when crate can name a file under WHY_DIR: [A-Za-z0-9_-], 1..64 bytes. */
int why_crate_valid(const char *crate);
void why_rec_init(struct why_rec *r);
void why_rec_clear(struct why_rec *r);
/* Adds a part (name copied, cut to WHY_MAX_NAME); beyond WHY_MAX_PARTS, ignored. */
void why_rec_add(struct why_rec *r, enum why_kind k, const char *name,
    const unsigned char digest[HASH_LEN]);
/* 1 when the two parts are the same part of the key (see above). */
int why_part_same(const struct why_part *a, const struct why_part *b);
/* Appends r to its crate's file, trimming the file first when it is over
 * WHY_FILE_MAX. Best effort: 0 / -1 (logged). */
int why_append(const char *store_dir, const struct why_rec *r);
/* Reads every valid record of crate's file, oldest first, into *out (an array
 * of *n records the caller clears and frees). A damaged record is skipped, a
 * damaged length ends the read. 0 (also when there is no file) / -1. */
int why_load(const char *store_dir, const char *crate, struct why_rec **out, size_t *n);
/* Decodes one record's msgpack bytes. 0 / -1. */
int why_decode(const char *d, size_t n, struct why_rec *r);

#endif
