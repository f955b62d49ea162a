/* Content hashes: BLAKE2b-256 (libsodium), shown as 64 hex digits. Damage
 * checks of kache's own files: XXH3-128 (xxhash, inlined), see checksum(). */
#ifndef KACHE_HASH_H
#define KACHE_HASH_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define HASH_LEN 32
#define HASH_HEX_LEN (HASH_LEN * 2)

struct hash_ctx {
	crypto_generichash_state st;
};

void hash_begin(struct hash_ctx *c);
void hash_update(struct hash_ctx *c, const void *data, size_t n);
/* Adds a length-prefixed string, so that ("ab","c") and ("a","bc") differ. */
void hash_str(struct hash_ctx *c, const char *s);
void hash_u64(struct hash_ctx *c, uint64_t v);
void hash_end(struct hash_ctx *c, unsigned char out[HASH_LEN]);
void hash_buffer(const void *data, size_t n, unsigned char out[HASH_LEN]);
/* Hashes a whole file by path; also returns its size. -1 on I/O error. */
int hash_file(const char *path, unsigned char out[HASH_LEN], uint64_t *size);
int hash_fd(int fd, unsigned char out[HASH_LEN], uint64_t *size);
void hash_to_hex(const unsigned char h[HASH_LEN], char hex[HASH_HEX_LEN + 1]);
/* 0 when hex is exactly 64 lowercase hex digits. */
int hash_from_hex(const char *hex, unsigned char h[HASH_LEN]);
int hash_hex_valid(const char *hex);

/* A checksum that catches damage (a flipped, lost or moved byte) in a file
 * kache wrote itself, at ~20x BLAKE2b's speed: XXH3-128 over the parts in
 * order, as 16 bytes. It names nothing and proves nothing against someone
 * who can write the file; content is named by hash_*. */
#define CHECKSUM_LEN 16
struct checksum_part {
	const void *p;
	size_t n;
};
void checksum(const struct checksum_part *parts, size_t k, unsigned char out[CHECKSUM_LEN]);

#endif
