#include "common/hash.h"
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Below this many bytes at once the portable BLAKE2b is as good as the
 * vector one: see hash_init_once. */
#define HASH_FAST_MIN (16u << 10)

static void hash_init_once(void);

/* libsodium picks its fastest BLAKE2b (AVX2 here) in sodium_init(), whose CPU
 * probing costs about 30 us (cpuid traps in a VM), while the portable code is
 * only ~1.3x slower (82 against 63 us on 64 KiB). So it is called before the
 * first large update only: a hit of a small crate or an answered query never
 * pays it; an import or a 300-file crate's record does, once. The state is
 * the same for both codes, so a hash may switch in its middle. */
static void
hash_init_once(void)
{
	static int ready;

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
}

void
hash_begin(struct hash_ctx *c)
{
	crypto_generichash_init(&c->st, NULL, 0, HASH_LEN);
}

void
hash_update(struct hash_ctx *c, const void *data, size_t n)
{
	if (n >= HASH_FAST_MIN)
		hash_init_once();
	crypto_generichash_update(&c->st, data, n);
}

void
hash_u64(struct hash_ctx *c, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	hash_update(c, b, sizeof b);
}

void
hash_str(struct hash_ctx *c, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	hash_u64(c, s ? n : UINT64_MAX);
	hash_update(c, s ? s : "", n);
}

void
hash_end(struct hash_ctx *c, unsigned char out[HASH_LEN])
{
	crypto_generichash_final(&c->st, out, HASH_LEN);
}

void
hash_buffer(const void *data, size_t n, unsigned char out[HASH_LEN])
{
	if (n >= HASH_FAST_MIN)
		hash_init_once();
	crypto_generichash(out, HASH_LEN, data, n, NULL, 0);
}

int
hash_fd(int fd, unsigned char out[HASH_LEN], uint64_t *size)
{
	/* one per thread: a prefetch imports on several (workers/prefetch) */
	static _Thread_local unsigned char chunk[1 << 16];
	struct hash_ctx c;
	uint64_t total = 0;
	ssize_t n;

	hash_begin(&c);
	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		hash_update(&c, chunk, (size_t)n);
		total += (uint64_t)n;
	}
	hash_end(&c, out);
	if (size)
		*size = total;
	return 0;
}

int
hash_file(const char *path, unsigned char out[HASH_LEN], uint64_t *size)
{
	int fd = fs_open_regular(path, O_RDONLY, 0);
	int rc;

	if (fd < 0)
		return -1;
	rc = hash_fd(fd, out, size);
	close(fd);
	return rc;
}

void
hash_to_hex(const unsigned char h[HASH_LEN], char hex[HASH_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < HASH_LEN; i++) {
		hex[2 * i] = digits[h[i] >> 4];
		hex[2 * i + 1] = digits[h[i] & 15];
	}
	hex[HASH_HEX_LEN] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
hash_from_hex(const char *hex, unsigned char h[HASH_LEN])
{
	if (!hash_hex_valid(hex))
		return -1;
	for (int i = 0; i < HASH_LEN; i++)
		h[i] = (unsigned char)((unsigned)hexval(hex[2 * i]) << 4 |
		    (unsigned)hexval(hex[2 * i + 1]));
	return 0;
}

int
hash_hex_valid(const char *hex)
{
	if (hex == NULL)
		return 0;
	for (int i = 0; i < HASH_HEX_LEN; i++)
		if (hexval(hex[i]) < 0)
			return 0;
	return hex[HASH_HEX_LEN] == '\0';
}

void
checksum(const struct checksum_part *parts, size_t k, unsigned char out[CHECKSUM_LEN])
{
	XXH3_state_t st;
	XXH128_canonical_t c;

	XXH3_INITSTATE(&st);
	XXH3_128bits_reset(&st);
	for (size_t i = 0; i < k; i++)
		XXH3_128bits_update(&st, parts[i].p, parts[i].n);
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
	memcpy(out, c.digest, CHECKSUM_LEN);
}
