/* Signed remote objects (docs/remote-layout.md, "Signatures").
 *
 * Every object a writer with `remote.signing_key` uploads carries a trailer:
 *
 *   body (the object as it would be unsigned)
 *   head  28 bytes: "KACHESIG", version 1, alg 1, 2 zero bytes,
 *                   key id (8 bytes), body length (u64 little-endian)
 *   sig   64 bytes: Ed25519 over D = BLAKE2b-512(head || u64le(len name) ||
 *                   name || body), name the object's name in the remote
 *
 * so that a signature is bound to the bytes, to the name they were uploaded
 * under and to the key that made it. A reader with `remote.trusted_keys`
 * imports an object only when its trailer verifies under one of them. The key
 * id is the first 8 bytes of BLAKE2b-256(public key), shown as 16 hex digits.
 *
 * Key text: a public key is "<id hex>:<base64 of the 32 bytes>"; a secret key
 * file holds one line "kache-secret-key-1:<id hex>:<base64 of the 64 bytes>"
 * (libsodium's seed || public key) and is refused unless only its owner can
 * read it. A secret key lives in sodium_malloc'd memory (locked, kept out of
 * core dumps, wiped when freed) and its holder makes itself non-dumpable. */
#ifndef KACHE_REMOTE_SIGN_H
#define KACHE_REMOTE_SIGN_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define SIGN_MAGIC "KACHESIG"
#define SIGN_MAGIC_LEN 8
#define SIGN_VERSION 1
#define SIGN_ALG_ED25519_BLAKE2B 1
#define SIGN_ID_LEN 8
#define SIGN_ID_HEX_LEN (SIGN_ID_LEN * 2)
#define SIGN_HEAD_LEN (SIGN_MAGIC_LEN + 4 + SIGN_ID_LEN + 8)
#define SIGN_TRAILER_LEN (SIGN_HEAD_LEN + crypto_sign_BYTES)
#define SIGN_PK_LEN crypto_sign_PUBLICKEYBYTES
#define SIGN_DIGEST_LEN 64
/* "<16 hex>:<44 base64>" and a NUL, with room. */
#define SIGN_PUBKEY_TEXT_MAX 80
#define SIGN_MAX_TRUSTED 16

/* Why an object was (or was not) admitted. The names are the `kache stats`
 * reasons. */
enum sign_verdict {
	SIGN_OK = 0,
	SIGN_UNSIGNED,      /* no trailer */
	SIGN_UNKNOWN_KEY,   /* a trailer naming a key not trusted here */
	SIGN_BAD_SIGNATURE, /* a trusted key, but the bytes or the name differ */
	SIGN_MALFORMED,     /* a trailer magic, but a bad version, alg or length */
	SIGN_NVERDICTS
};

struct sign_trailer {
	unsigned char head[SIGN_HEAD_LEN];
	unsigned char id[SIGN_ID_LEN];
	unsigned char sig[crypto_sign_BYTES];
	uint64_t body_len;
};

struct sign_hash {
	crypto_generichash_state st;
};

struct sign_keyset;
struct sign_secret;

const char *sign_verdict_name(enum sign_verdict v);

/* The id of a public key, and the same as hex. */
void sign_key_id(const unsigned char pk[SIGN_PK_LEN], unsigned char id[SIGN_ID_LEN]);
void sign_id_hex(const unsigned char id[SIGN_ID_LEN], char hex[SIGN_ID_HEX_LEN + 1]);
/* "<id hex>:<base64>" into out (at least SIGN_PUBKEY_TEXT_MAX bytes). */
void sign_pubkey_format(const unsigned char pk[SIGN_PK_LEN], char *out, size_t outlen);
/* Parses one public key of n bytes of text; the id must be the key's. 0, or
 * -1 with a sentence in err. */
int sign_pubkey_parse(const char *s, size_t n, unsigned char pk[SIGN_PK_LEN], char *err,
    size_t errlen);

/* Trusted public keys. */
struct sign_keyset *sign_keyset_new(void);
void sign_keyset_free(struct sign_keyset **ks);
/* Adds every key of a list: a TOML array ["id:b64", ...], or keys separated by
 * commas or blanks (KACHE_TRUSTED_KEYS). 0, or -1 with a sentence in err. */
int sign_keyset_parse(struct sign_keyset *ks, const char *list, char *err, size_t errlen);
/* Adds one key (a duplicate is ignored). -1 when the set is full. */
int sign_keyset_add(struct sign_keyset *ks, const unsigned char pk[SIGN_PK_LEN]);
size_t sign_keyset_count(const struct sign_keyset *ks);
/* The trusted key with that id, or NULL. */
const unsigned char *sign_keyset_find(const struct sign_keyset *ks,
    const unsigned char id[SIGN_ID_LEN]);

/* Parses the last SIGN_TRAILER_LEN bytes p of an object of total bytes.
 * 1: a trailer, every field checked, in *t; 0: none (no magic there, or the
 * object is too short); -1: the magic but a field is wrong (malformed). */
int sign_trailer_parse(const unsigned char *p, uint64_t total, struct sign_trailer *t);

/* The digest D of the header comment, fed in pieces. */
void sign_hash_begin(struct sign_hash *h, const unsigned char head[SIGN_HEAD_LEN],
    const char *name);
void sign_hash_update(struct sign_hash *h, const void *p, size_t n);
void sign_hash_end(struct sign_hash *h, unsigned char digest[SIGN_DIGEST_LEN]);
/* The verdict on a parsed trailer whose digest was computed over the body. */
enum sign_verdict sign_check(const struct sign_keyset *ks, const struct sign_trailer *t,
    const unsigned char digest[SIGN_DIGEST_LEN]);
/* The whole check of an object held in memory: data[0..n) as read from the
 * remote under name. SIGN_OK with the body's length in *body_len. */
enum sign_verdict sign_verify_mem(const struct sign_keyset *ks, const char *name, const void *data,
    size_t n, size_t *body_len);

/* A new key pair. NULL when libsodium cannot be initialised. */
struct sign_secret *sign_secret_generate(void);
/* Checks (stat only, nothing read) that path is a regular file only its
 * owner can read or write. 0, or -1 with a sentence saying what to do. */
int sign_secret_check_file(const char *path, char *err, size_t errlen);
/* Reads the secret key file at path (checked as above) into locked memory and
 * makes this process non-dumpable. NULL with a sentence in err. */
struct sign_secret *sign_secret_load(const char *path, char *err, size_t errlen);
/* Writes the secret key file: mode 0600, never over an existing file. */
int sign_secret_write(const struct sign_secret *s, const char *path, char *err, size_t errlen);
void sign_secret_pk(const struct sign_secret *s, unsigned char pk[SIGN_PK_LEN]);
/* Wipes and frees; NULLs *s. */
void sign_secret_free(struct sign_secret **s);
/* The trailer for a body of body_len bytes whose digest h has been fed
 * (sign_hash_begin with sign_head, then the body). */
void sign_head(const struct sign_secret *s, uint64_t body_len, unsigned char head[SIGN_HEAD_LEN]);
void sign_finish(const struct sign_secret *s, const unsigned char head[SIGN_HEAD_LEN],
    struct sign_hash *h, unsigned char trailer[SIGN_TRAILER_LEN]);
/* The trailer of a body held in memory. */
void sign_mem(const struct sign_secret *s, const char *name, const void *body, size_t n,
    unsigned char trailer[SIGN_TRAILER_LEN]);

#endif
