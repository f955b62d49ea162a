/* The local content-addressed store: plain files under $KACHE_DIR.
 *
 *   blobs/ab/<hash>       output bytes, read-only, named by BLAKE2b-256 of content
 *   entries/ab/<key>      one compile result (msgpack): outputs, dep-info, replayed
 *                         stdout/stderr, compile time; named by result key
 *   manifests/ab/<key>    candidates under one invocation key (msgpack): for each,
 *                         the inputs and env-deps that must match, and its result key
 *   memo/ab/<stat-hash>   file-hash memo, named by (dev, inode, size, mtime), holding
 *                         the hash and the ctime it was taken at (store/store.c)
 *   memo/ab/<crate-key>   memo record: path, stat and hash of every file one crate's
 *                         compiles looked at (framed "kcmemor2", store/memo.c)
 *   journal/events        msgpack event records appended by wrappers (see journal)
 *   intents/<key>         results waiting for upload to a remote (store/intent.c)
 *   tmp/                  scratch on the same filesystem
 *
 * Every write is temp + rename: readers see whole files or none. Many wrappers and
 * builds may share one store; two identical misses at once are harmless.
 *
 * Entries and manifests on disk are framed and checksummed (record format 3, see
 * store/record.c): a damaged, truncated, renamed or pre-checksum record reads as
 * STORE_CORRUPT, never as a record with other content. */
#ifndef KACHE_STORE_H
#define KACHE_STORE_H

#include <stdint.h>
#include <sys/stat.h>

#include "common/hash.h"
#include "common/util.h"

#define STORE_FORMAT 1
#define STORE_ENTRY_FAILED_FORMAT 2
/* The upload intents' directory under $KACHE_DIR. */
#define STORE_INTENTS "intents"

struct store;

struct store_output {
	char *name; /* relative to the out-dir, safe (no "..", not absolute) */
	unsigned char hash[HASH_LEN];
	uint64_t size;
	uint32_t mode; /* 0644 or 0755 */
};

struct store_entry {
	char *crate;
	struct store_output *outputs;
	size_t n_outputs;
	char *depinfo_name; /* NULL when no dep-info was emitted */
	struct buf depinfo; /* normalized .d text (root tokens) */
	struct buf out;     /* rustc stdout, normalized */
	struct buf err;     /* rustc stderr without artifact notices, normalized */
	uint64_t compile_ms;
	int64_t created_ms;
	/* the compile's exit status: 0, or a build script probe's failure (1,
	 * no outputs), stored as an entry of STORE_ENTRY_FAILED_FORMAT, which
	 * readers before it refuse as damaged */
	int status;
};

struct store_input {
	char *path; /* normalized: "@W/...", "@T/...", "@H/..." or absolute */
	unsigned char hash[HASH_LEN];
};

struct store_envdep {
	char *name;
	char *value; /* normalized; NULL when the variable was unset */
};

struct store_candidate {
	unsigned char result[HASH_LEN];
	struct store_input *inputs;
	size_t n_inputs;
	struct store_envdep *envs;
	size_t n_envs;
};

struct store_manifest {
	struct store_candidate *c;
	size_t n;
};

/* Most candidates one manifest keeps (newest first). */
#define STORE_MAX_CANDIDATES 16

/* Opens (creating when missing) the store at dir. NULL with errno on failure.
 * A new store's directory is made 0700 (private), or 0755 when shared (config
 * cache.shared). Every directory and record kache creates inside grants group
 * and others at most what the top directory grants them (a blob: the mode of
 * an output, store_blob_mode): chmod it to share an existing store. */
struct store *store_open(const char *dir);
struct store *store_open_shared(const char *dir, int shared);
/* mode less the group/other bits the store's top directory withholds. */
mode_t store_mode(const struct store *s, mode_t mode);
/* A blob's mode, the mode rustc gives an output: 0644, or 0755 for an
 * executable, less the umask (store.c says why). */
mode_t store_blob_mode(int exec);
void store_free(struct store **s);
const char *store_dir(const struct store *s);
/* Where the packs a prefetch imports through s came from (one of
 * JOURNAL_IMPORT_SOURCES, "" unknown): their journal records say
 * "prefetch/<src>", by which `kache stats` splits them. */
void store_set_import_source(struct store *s, const char *src);
const char *store_import_source(const struct store *s);

/* Path helpers (new strings). kind is "blobs", "entries", "manifests". */
char *store_path(const struct store *s, const char *kind, const char *hex);
/* 1 when the store holds the entry of result res_hex (an import of it would
 * make nothing new), else 0. */
int store_has_entry(const struct store *s, const char *res_hex);

/* Hash of an input's content (symlinks followed; a regular file only, opened
 * without blocking), memoized by its stat tuple. st (may be NULL) receives the
 * stat the hash belongs to. -1 also when the file changed while it was hashed. */
int store_hash_file(struct store *s, const char *path, unsigned char out[HASH_LEN],
    struct stat *st);
/* The same, telling whether the hash came from the memo or was stable enough
 * to be memoized (see store_hash_fresh). */
int store_hash_file_stable(struct store *s, const char *path, unsigned char out[HASH_LEN],
    struct stat *st, int *stable);
/* The same for a file kache keeps (a blob): a symlink or any other non-regular
 * file is -1 with errno ELOOP or EINVAL. Its memo leaves the ctime out: every
 * hardlink of a restored output that cargo clean removes moves the blob's
 * ctime, and rehashing megabytes of blobs on every hit after a clean would
 * cost more than the hit. A write through such a hardlink moves the mtime
 * (and the blob's owner-read-only mode refuses it to all but root). */
int store_hash_kept(struct store *s, const char *path, unsigned char out[HASH_LEN],
    struct stat *st);
/* Hashes the input at path (as store_hash_file opens it) without any memo. st
 * receives the stat taken after hashing; *stable is 1 when that hash may be
 * memoized: the stat held while it was hashed and its ctime is older than
 * STORE_MEMO_MIN_AGE_NS. -1 also when the size or mtime moved while hashing. */
int store_hash_fresh(const char *path, unsigned char out[HASH_LEN], struct stat *st, int *stable);
/* A file changed within this many ns of being hashed may change again within
 * the same timestamp tick: such hashes are never memoized. */
#define STORE_MEMO_MIN_AGE_NS 50000000LL
/* Records that the file behind st has hash h (after we wrote or verified it):
 * store_hash_file trusts it while the whole stat holds (ctime too),
 * store_hash_kept while all but the ctime do. */
void store_memo_put(struct store *s, const struct stat *st, const unsigned char h[HASH_LEN]);
/* Memo for small derived values (e.g. rustc -vV), keyed by any string. */
int store_memo_get_text(struct store *s, const char *key, struct buf *out);
void store_memo_put_text(struct store *s, const char *key, const char *text, size_t n);

/* A memo record (store/memo.c): what one crate's compiles learnt about files. */
struct store_memo_file {
	char *path; /* as the wrapper stats it */
	uint64_t dev, ino, size;
	int64_t mtime_s, ctime_s;
	uint32_t mtime_ns, ctime_ns;
	unsigned char hash[HASH_LEN];
};

struct store_memo_rec {
	struct store_memo_file *f; /* sorted by path, unique, once decoded */
	size_t n;
};

#define STORE_MEMO_MAX_FILES 65536
#define STORE_MEMO_PATH_MAX 4095

int store_memo_rec_encode(const struct store_memo_rec *r, struct buf *out);
/* Refuses (-1) anything but a canonical payload: counts checked against the
 * bytes present, paths sorted and unique, nanoseconds below 1e9. */
int store_memo_rec_decode(const char *data, size_t n, struct store_memo_rec *r);
void store_memo_rec_clear(struct store_memo_rec *r);
/* The entry for path in a decoded record, or NULL. */
const struct store_memo_file *store_memo_rec_find(const struct store_memo_rec *r, const char *path);
/* 1 when st is a regular file with the entry's device, inode, size, mtime and
 * ctime: then its content still has the entry's hash. */
int store_memo_file_matches(const struct store_memo_file *f, const struct stat *st);
void store_memo_file_set(struct store_memo_file *f, const char *path, const struct stat *st,
    const unsigned char h[HASH_LEN]);
/* memo/<key>, framed and checksummed like entries: STORE_CORRUPT when damaged
 * (never decoded then), STORE_ABSENT when missing. Written temp + rename. */
enum store_get store_memo_rec_read(struct store *s, const unsigned char key[HASH_LEN],
    struct store_memo_rec *r);
int store_memo_rec_write(struct store *s, const unsigned char key[HASH_LEN],
    const struct store_memo_rec *r);

/* Adds src to the blob store (if absent): by hardlink when may_link and the
 * filesystem allows (src then becomes read-only), else by copy. Fills hash and size. */
int store_blob_put(struct store *s, const char *src, int exec, int may_link,
    unsigned char hash[HASH_LEN], uint64_t *size);

/* How store_blob_put_bytes writes the bytes: through the page cache, or with
 * O_DIRECT straight to the device (pack_writes.c chooses). */
enum store_put_how { STORE_PUT_BUFFERED = 0, STORE_PUT_DIRECT = 1 };

/* Adds bytes already verified to hash h to the blob store (if absent). With
 * STORE_PUT_DIRECT where the filesystem refuses direct I/O: -1 with errno
 * EINVAL and nothing made (write them buffered then). */
int store_blob_put_bytes(struct store *s, const void *data, size_t n, int exec,
    const unsigned char h[HASH_LEN], enum store_put_how how);

enum store_get { STORE_FOUND = 0, STORE_ABSENT, STORE_CORRUPT, STORE_IOERR };

enum store_get store_entry_read(struct store *s, const unsigned char key[HASH_LEN],
    struct store_entry *e);
int store_entry_write(struct store *s, const unsigned char key[HASH_LEN],
    const struct store_entry *e);
void store_entry_init(struct store_entry *e);
void store_entry_clear(struct store_entry *e);
/* Removes a corrupt or collected entry. */
int store_entry_remove(struct store *s, const unsigned char key[HASH_LEN]);

enum store_get store_manifest_read(struct store *s, const unsigned char key[HASH_LEN],
    struct store_manifest *m);
/* Adds c as the newest candidate (replacing one with the same result), keeping at
 * most STORE_MAX_CANDIDATES. Read-modify-write: a concurrent add may be lost,
 * which costs a later miss, never a wrong hit. */
int store_manifest_add(struct store *s, const unsigned char key[HASH_LEN],
    const struct store_candidate *c);
void store_manifest_clear(struct store_manifest *m);
void store_candidate_clear(struct store_candidate *c);

/* Removes a corrupt manifest. */
int store_manifest_remove(struct store *s, const unsigned char key[HASH_LEN]);
/* When data/n is a whole framed record of kind ("entries", "manifests", "memo")
 * stored under key (tag and checksum match): the offset of its payload; else -1. */
int store_record_check(const char *kind, const unsigned char key[HASH_LEN], const char *data,
    size_t n);

/* Encoders/decoders of the msgpack payload (no frame), shared with remotes (packs carry the same
 * bytes). */
int store_entry_encode(const struct store_entry *e, struct buf *out);
int store_entry_decode(const char *data, size_t n, struct store_entry *e);
int store_manifest_encode(const struct store_manifest *m, struct buf *out);
int store_manifest_decode(const char *data, size_t n, struct store_manifest *m);

/* Upload intents (store/intent.c). The wrapper writes intents/<result hex>,
 * whose content is the invocation key in hex (the remote needs both to publish
 * the manifest), before it notifies the supervisor; the uploader removes it
 * once the remote has the result. replace: a result compiled again under
 * cache.recache, whose pack the remote is to take over its own. */
int store_intent_add(struct store *s, const unsigned char res[HASH_LEN],
    const unsigned char inv[HASH_LEN], int replace);
/* $KACHE_DIR/intents/<res_hex>, or the intents directory itself when res_hex
 * is NULL (a new string). */
char *store_intent_path(const char *kache_dir, const char *res_hex);
/* The invocation key (hex) the intent for res_hex names, and whether it
 * replaces the remote's pack. 0, or -1 when it is missing or damaged. */
int store_intent_read(const char *kache_dir, const char *res_hex, char inv_hex[HASH_HEX_LEN + 1],
    int *replace);
/* Removes the intent for res_hex (absent is fine). 0, or -1 logged. */
int store_intent_remove(const char *kache_dir, const char *res_hex);

#endif
