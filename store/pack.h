/* Packs: one result as a single zstd-compressed msgpack document, the unit a
 * remote stores and serves. See docs/remote-layout.md.
 *
 *   { v: 1, inv: bin32, res: bin32, crate: str,
 *     candidate: bin (a one-candidate manifest, store_manifest_encode),
 *     entry: bin (store_entry_encode),
 *     sum: bin32, BLAKE2b of len+"kache-pack-v1", len+candidate, len+entry
 *          (each len 8 bytes little-endian; docs/remote-layout.md),
 *     blobs: [ [hash bin32, bytes bin], ... ] }
 * compressed as one zstd frame with its content checksum.
 *
 * Built by the uploader, imported by the fetcher. Not linked by the wrapper. */
#ifndef KACHE_STORE_PACK_H
#define KACHE_STORE_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/util.h"
#include "store/store.h"

#define PACK_FORMAT 1
/* Largest pack we will decompress. */
#define PACK_MAX_BYTES (1ULL << 30)
/* A pack's document up to this size is inflated in memory, past it into an
 * unnamed file (so an import holds at most this much memory). */
#define PACK_MEM_MAX (32u << 20)

enum pack_result { PACK_OK = 0, PACK_ABSENT, PACK_CORRUPT, PACK_IOERR };

/* Writes the pack of result res (stored under invocation key inv) to fd,
 * streamed: blobs go from their files through zstd to fd, never whole in
 * memory. The crate name is returned in crate (caller frees). PACK_ABSENT
 * when the entry, a blob or the manifest candidate is gone. */
enum pack_result pack_write(struct store *s, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], int fd, char **crate);
/* pack_read's flags. PACK_BLOBS_VOUCHED: the pack's bytes were checked
 * against the signature of a trusted key (remote/sign_transport.c), which
 * vouches for every blob as it does for the rest: its bytes are not hashed
 * again (the frame checksums and the sum over entry and candidate still are). */
#define PACK_BLOBS_VOUCHED 1u

/* Reads a pack from fd, from its offset: decompressed (checksum checked) in
 * one call into memory kept from pack to pack, or past PACK_MEM_MAX streamed into an
 * unnamed file in the store's tmp/ that is mapped, then verified and imported
 * as pack_import says.
 * inv NULL (a prefetch, which knows a pack by its crate and result only): the
 * manifest candidate goes under the invocation key the pack names, so a
 * wrapper asking with that key finds it; nothing else is checked less. */
enum pack_result pack_read(struct store *s, int fd, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], unsigned flags);
/* A buffer of PACK_MEM_MAX bytes to read a pack's compressed bytes into (a
 * download written straight into memory, then pack_import), kept from pack
 * to pack with its pages; NULL when none can be had (read through a file
 * then). One per thread that downloads, given back after the import. */
char *pack_buffer_take(void);
void pack_buffer_give(char *p);
/* Gives back the memory pack_read and pack_import keep between packs (per
 * CPU, up to 2 x PACK_MEM_MAX of touched pages, and the buffers not in use;
 * the next import maps anew): a long-lived process calls it when it goes
 * idle. */
void pack_memory_release(void);
/* The regions and buffers mapped now, in use or kept (regions: at most one
 * per CPU the process may run on). */
int pack_memory_regions(void);
/* The same two through memory (pack_import: a download read into a buffer).
 * Builds the pack of result res (stored under invocation key inv) from the
 * local store into out. The crate name is returned in crate (caller frees).
 * PACK_ABSENT when the entry, a blob or the manifest candidate is gone. */
enum pack_result pack_build(struct store *s, const unsigned char inv[HASH_LEN],
    const unsigned char res[HASH_LEN], struct buf *out, char **crate);
/* Verifies a pack whole and imports it (inflated into a kept region as
 * pack_read, past PACK_MEM_MAX streamed): every blob's hash checked before it
 * enters the store (unless flags say PACK_BLOBS_VOUCHED), the entry decoded,
 * every output present, the keys the ones expected (inv NULL: any invocation
 * key, as for pack_read). Only then the entry and the manifest candidate are
 * written. PACK_CORRUPT when any check fails (nothing but verified blobs
 * written). */
enum pack_result pack_import(struct store *s, const char *data, size_t n,
    const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN], unsigned flags);
const char *pack_result_name(enum pack_result r);

/* The documents of many packs, one after the other, compressed as one zstd
 * frame: a bundle part of format 2 (remote/bundle.h). One frame over a few
 * dozen packs matches what they share (the standard library in every build
 * script and proc macro, the same crate's rlib and rmeta): 30-40 % fewer
 * bytes than the packs' own frames, and inflated faster. At most
 * PACK_DOCS_MAX bytes of documents: what a kept region holds. */
#define PACK_DOCS_MAX (2 * (size_t)PACK_MEM_MAX)
/* Appends to out the document of the pack p[0..n) (every frame whole, its
 * checksum right), out growing to at most cap bytes. 0, or -1 (out left as
 * it was) when it is not a valid compressed pack or its document would pass
 * cap. Verifies nothing else: the pack's own checks run when its document is
 * imported. */
int pack_doc_of(const char *p, size_t n, struct buf *out, size_t cap);
/* Appends docs[0..n) (1..PACK_DOCS_MAX bytes) to out as one zstd frame, with
 * its content size and checksum, a window covering all of it and long
 * distance matching. 0, or -1 (logged). */
int pack_docs_deflate(const char *docs, size_t n, struct buf *out);
/* Called while a frame of documents is inflated, each time more of it is
 * there: docs[0..avail) is inflated and stays put until the frame is done. */
typedef void (*pack_docs_fn)(void *arg, const char *docs, size_t avail);
/* Inflates the one zstd frame in[0..n), whose content is exactly want bytes
 * (at most PACK_DOCS_MAX), into memory kept from part to part, calling ready
 * as it goes: a caller imports each document as soon as it is whole, the
 * first crates of a part while the rest is still being inflated. PACK_OK
 * when the frame was whole, of want bytes, its checksum right; PACK_CORRUPT
 * otherwise (ready may have seen a part of it: what it imported, it verified
 * document by document). */
enum pack_result pack_docs_inflate(const char *in, size_t n, size_t want, pack_docs_fn ready,
    void *arg);
/* pack_import of a document already inflated (a pack's msgpack map, as
 * pack_docs_inflate hands it over): verified and imported the same way. */
enum pack_result pack_import_doc(struct store *s, const char *doc, size_t n,
    const unsigned char inv[HASH_LEN], const unsigned char res[HASH_LEN], unsigned flags);

/* How the blobs an import writes reach the disk (cache.import_writes), for
 * the whole process (pack_writes.c). A fresh store's blobs are hundreds of
 * megabytes that nothing reads during a warm build; written through the page
 * cache each byte is copied into memory the kernel must first find and
 * clear (in a virtual machine, often memory the host has to hand back first:
 * 0.3-0.5 GB/s of a core here), then written back by the kernel's flusher
 * threads, all of it CPU that a build racing the prefetch for two cores
 * pays for. O_DIRECT sends the bytes to the disk from a small buffer.
 * AUTO: blobs of PACK_WRITES_MIN bytes or more go direct unless direct writes
 * take more than PACK_WRITES_DIRECT_SLACK times as long per byte as buffered
 * ones (a running average per way, open to close, less the time the thread
 * waited for a core): a buffered write's own time leaves out its writeback
 * and the memory it takes, which the slack stands for (here direct writes
 * timed 1.5-3x a buffered one's and took a racing build from 0.88 to 0.70 s),
 * while a disk far slower than memory (a network volume, 10-40x) keeps the
 * page cache. Direct is tried first; the other way gets a blob (the first
 * measure of it too) when the blob is at most 1/PACK_WRITES_EXPLORE_SHARE of
 * the bytes written the believed way since the other way last had one: both
 * averages stay fresh for a few percent of the bytes, mostly small blobs
 * (every 8th blob, as first built, sent 36 of ws-small's 229 MB the slow
 * way). A filesystem that refuses O_DIRECT gets buffered writes from then
 * on. Smaller blobs are buffered. BUFFERED and DIRECT: every blob that way,
 * whatever its size. */
enum pack_writes { PACK_WRITES_AUTO = 0, PACK_WRITES_BUFFERED, PACK_WRITES_DIRECT };
#define PACK_WRITES_MIN (1u << 18)
#define PACK_WRITES_EXPLORE_SHARE 16
#define PACK_WRITES_DIRECT_SLACK 8

/* "auto", "buffered", "direct"; -1 for anything else. */
int pack_writes_parse(const char *s, enum pack_writes *out);
const char *pack_writes_name(enum pack_writes w);
/* Sets how this process writes from now on; what was measured is forgotten
 * (pack_writes_reprobe alone: a prefetch session starts with it, the
 * machine may have changed). */
void pack_writes_set(enum pack_writes how);
void pack_writes_reprobe(void);
struct pack_writes_state {
	enum pack_writes how;   /* as set */
	int direct_refused;     /* the filesystem refused O_DIRECT */
	uint64_t bytes[2];      /* blob bytes written, by enum store_put_how */
	uint64_t us_per_mib[2]; /* the running averages (0: not measured yet) */
};
void pack_writes_state(struct pack_writes_state *out);
/* The way to write a blob of n bytes now. */
enum store_put_how pack_writes_pick(size_t n);
/* Counts a write of n bytes the way how that took us microseconds (0: not
 * timed); auto takes the time of one of PACK_WRITES_MIN bytes or more into
 * that way's average. */
void pack_writes_note(enum store_put_how how, uint64_t n, uint64_t us);
/* store_blob_put_bytes the way pack_writes_pick says, timed for the probe;
 * buffered where direct I/O is refused. */
int pack_writes_put(struct store *s, const void *data, size_t n, int exec,
    const unsigned char h[HASH_LEN]);
/* 1 when name is safe as a crate directory on a remote: [A-Za-z0-9_-]{1,64}. */
int pack_crate_name_ok(const char *name);

#endif
