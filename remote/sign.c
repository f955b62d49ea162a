/* Keys, trailers and the signature check of remote/sign.h. No I/O on remote
 * objects here: remote/sign_transport.c applies this to every object. */
#include "remote/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"

#define SECRET_PREFIX "kache-secret-key-1:"
#define SECRET_TEXT_MAX 256
#define PK_B64_LEN 44

struct sign_keyset {
	unsigned char pk[SIGN_MAX_TRUSTED][SIGN_PK_LEN];
	unsigned char id[SIGN_MAX_TRUSTED][SIGN_ID_LEN];
	size_t n;
};

struct sign_secret {
	unsigned char *sk; /* sodium_malloc'd: seed || public key */
	unsigned char pk[SIGN_PK_LEN];
	unsigned char id[SIGN_ID_LEN];
};

static int sodium_ready(void);
static int token_end(char c);
static struct sign_secret *secret_alloc(void);
static int secret_decode(struct sign_secret *s, const char *text, size_t n, char *err,
    size_t errlen);
static int secret_read(int fd, const char *path, struct sign_secret *s, char *err, size_t errlen);

static const char *const verdict_names[] = { "ok", "unsigned", "unknown_key", "bad_signature",
	"malformed" };

/* libsodium must be initialised before its allocator and its randomness. */
static int
sodium_ready(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

const char *
sign_verdict_name(enum sign_verdict v)
{
	return (unsigned)v < SIGN_NVERDICTS ? verdict_names[v] : "?";
}

void
sign_key_id(const unsigned char pk[SIGN_PK_LEN], unsigned char id[SIGN_ID_LEN])
{
	unsigned char h[32];

	crypto_generichash(h, sizeof h, pk, SIGN_PK_LEN, NULL, 0);
	memcpy(id, h, SIGN_ID_LEN);
}

void
sign_id_hex(const unsigned char id[SIGN_ID_LEN], char hex[SIGN_ID_HEX_LEN + 1])
{
	sodium_bin2hex(hex, SIGN_ID_HEX_LEN + 1, id, SIGN_ID_LEN);
}

void
sign_pubkey_format(const unsigned char pk[SIGN_PK_LEN], char *out, size_t outlen)
{
	unsigned char id[SIGN_ID_LEN];
	char hex[SIGN_ID_HEX_LEN + 1], b64[PK_B64_LEN + 1];

	sign_key_id(pk, id);
	sign_id_hex(id, hex);
	sodium_bin2base64(b64, sizeof b64, pk, SIGN_PK_LEN, sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, outlen, "%s:%s", hex, b64);
}

/* Exactly "<16 lowercase hex>:<44 base64>", the id being the key's own. */
int
sign_pubkey_parse(const char *s, size_t n, unsigned char pk[SIGN_PK_LEN], char *err, size_t errlen)
{
	unsigned char id[SIGN_ID_LEN], want[SIGN_ID_LEN];
	size_t got = 0;
	const char *end;

	if (n >= strlen(SECRET_PREFIX) && memcmp(s, SECRET_PREFIX, strlen(SECRET_PREFIX)) == 0) {
		snprintf(err, errlen,
		    "a secret key was given where a public key belongs: use the line "
		    "`kache keygen` printed (the .pub file), never the secret key");
		return -1;
	}
	if (n != SIGN_ID_HEX_LEN + 1 + PK_B64_LEN || s[SIGN_ID_HEX_LEN] != ':' ||
	    sodium_hex2bin(id, sizeof id, s, SIGN_ID_HEX_LEN, NULL, &got, &end) != 0 ||
	    got != SIGN_ID_LEN || end != s + SIGN_ID_HEX_LEN ||
	    sodium_base642bin(pk, SIGN_PK_LEN, s + SIGN_ID_HEX_LEN + 1, PK_B64_LEN, NULL, &got,
	        &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    got != SIGN_PK_LEN || end != s + n) {
		snprintf(err, errlen,
		    "trusted key '%.*s' is not 'id:base64' as `kache keygen` prints it",
		    (int)(n > 70 ? 70 : n), s);
		return -1;
	}
	sign_key_id(pk, want);
	if (memcmp(id, want, SIGN_ID_LEN) != 0) {
		snprintf(err, errlen,
		    "trusted key '%.*s': its id does not match the key (copied wrong?)", (int)n, s);
		return -1;
	}
	return 0;
}

struct sign_keyset *
sign_keyset_new(void)
{
	return xcalloc(1, sizeof(struct sign_keyset));
}

void
sign_keyset_free(struct sign_keyset **ks)
{
	free(*ks);
	*ks = NULL;
}

int
sign_keyset_add(struct sign_keyset *ks, const unsigned char pk[SIGN_PK_LEN])
{
	for (size_t i = 0; i < ks->n; i++)
		if (memcmp(ks->pk[i], pk, SIGN_PK_LEN) == 0)
			return 0;
	if (ks->n == SIGN_MAX_TRUSTED)
		return -1;
	memcpy(ks->pk[ks->n], pk, SIGN_PK_LEN);
	sign_key_id(pk, ks->id[ks->n]);
	ks->n++;
	return 0;
}

static int
token_end(char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == ',' || c == '[' || c == ']' || c == '"' ||
	    c == '\'' || c == '\n' || c == '\r';
}

int
sign_keyset_parse(struct sign_keyset *ks, const char *list, char *err, size_t errlen)
{
	unsigned char pk[SIGN_PK_LEN];
	const char *p = list;

	while (*p != '\0') {
		size_t n = 0;

		if (token_end(*p)) {
			p++;
			continue;
		}
		while (!token_end(p[n]))
			n++;
		if (sign_pubkey_parse(p, n, pk, err, errlen) < 0)
			return -1;
		if (sign_keyset_add(ks, pk) < 0) {
			snprintf(err, errlen, "remote.trusted_keys: more than %d keys",
			    SIGN_MAX_TRUSTED);
			return -1;
		}
		p += n;
	}
	return 0;
}

size_t
sign_keyset_count(const struct sign_keyset *ks)
{
	return ks ? ks->n : 0;
}

const unsigned char *
sign_keyset_find(const struct sign_keyset *ks, const unsigned char id[SIGN_ID_LEN])
{
	for (size_t i = 0; ks && i < ks->n; i++)
		if (memcmp(ks->id[i], id, SIGN_ID_LEN) == 0)
			return ks->pk[i];
	return NULL;
}

int
sign_trailer_parse(const unsigned char *p, uint64_t total, struct sign_trailer *t)
{
	const unsigned char *h = p;

	if (total < SIGN_TRAILER_LEN || memcmp(h, SIGN_MAGIC, SIGN_MAGIC_LEN) != 0)
		return 0;
	if (h[8] != SIGN_VERSION || h[9] != SIGN_ALG_ED25519_BLAKE2B || h[10] != 0 || h[11] != 0 ||
	    le_get(h + 20, 8) != total - SIGN_TRAILER_LEN)
		return -1;
	memcpy(t->head, h, SIGN_HEAD_LEN);
	memcpy(t->id, h + 12, SIGN_ID_LEN);
	memcpy(t->sig, h + SIGN_HEAD_LEN, crypto_sign_BYTES);
	t->body_len = total - SIGN_TRAILER_LEN;
	return 1;
}

void
sign_hash_begin(struct sign_hash *h, const unsigned char head[SIGN_HEAD_LEN], const char *name)
{
	unsigned char len[8];

	crypto_generichash_init(&h->st, NULL, 0, SIGN_DIGEST_LEN);
	crypto_generichash_update(&h->st, head, SIGN_HEAD_LEN);
	le_put(len, strlen(name), 8);
	crypto_generichash_update(&h->st, len, sizeof len);
	crypto_generichash_update(&h->st, (const unsigned char *)name, strlen(name));
}

void
sign_hash_update(struct sign_hash *h, const void *p, size_t n)
{
	crypto_generichash_update(&h->st, p, n);
}

void
sign_hash_end(struct sign_hash *h, unsigned char digest[SIGN_DIGEST_LEN])
{
	crypto_generichash_final(&h->st, digest, SIGN_DIGEST_LEN);
}

enum sign_verdict
sign_check(const struct sign_keyset *ks, const struct sign_trailer *t,
    const unsigned char digest[SIGN_DIGEST_LEN])
{
	const unsigned char *pk = sign_keyset_find(ks, t->id);

	if (pk == NULL)
		return SIGN_UNKNOWN_KEY;
	if (crypto_sign_verify_detached(t->sig, digest, SIGN_DIGEST_LEN, pk) != 0)
		return SIGN_BAD_SIGNATURE;
	return SIGN_OK;
}

enum sign_verdict
sign_verify_mem(const struct sign_keyset *ks, const char *name, const void *data, size_t n,
    size_t *body_len)
{
	unsigned char digest[SIGN_DIGEST_LEN];
	struct sign_trailer t;
	struct sign_hash h;
	int rc;

	*body_len = n;
	rc = n < SIGN_TRAILER_LEN ?
	    0 :
	    sign_trailer_parse((const unsigned char *)data + n - SIGN_TRAILER_LEN, n, &t);
	if (rc <= 0)
		return rc == 0 ? SIGN_UNSIGNED : SIGN_MALFORMED;
	*body_len = (size_t)t.body_len;
	if (sign_keyset_find(ks, t.id) == NULL)
		return SIGN_UNKNOWN_KEY;
	sign_hash_begin(&h, t.head, name);
	sign_hash_update(&h, data, (size_t)t.body_len);
	sign_hash_end(&h, digest);
	return sign_check(ks, &t, digest);
}

static struct sign_secret *
secret_alloc(void)
{
	struct sign_secret *s;

	if (sodium_ready() < 0)
		return NULL;
	s = xcalloc(1, sizeof *s);
	if ((s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

struct sign_secret *
sign_secret_generate(void)
{
	struct sign_secret *s = secret_alloc();

	if (s == NULL)
		return NULL;
	(void)prctl(PR_SET_DUMPABLE, 0);
	crypto_sign_keypair(s->pk, s->sk);
	sign_key_id(s->pk, s->id);
	return s;
}

void
sign_secret_pk(const struct sign_secret *s, unsigned char pk[SIGN_PK_LEN])
{
	memcpy(pk, s->pk, SIGN_PK_LEN);
}

void
sign_secret_free(struct sign_secret **sp)
{
	struct sign_secret *s = *sp;

	if (s == NULL)
		return;
	sodium_free(s->sk); /* wipes it */
	sodium_memzero(s, sizeof *s);
	free(s);
	*sp = NULL;
}

int
sign_secret_check_file(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "remote.signing_key %s: %s (make one with `kache keygen`)",
		    path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "remote.signing_key %s is not a regular file", path);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		    "remote.signing_key %s is readable or writable by others (mode %04o); "
		    "run `chmod 600 %s` (and replace the key if others may have read it)",
		    path, (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

/* "kache-secret-key-1:<id hex>:<base64 of 64 bytes>" into s; the key must
 * be whole: its public half derived again from its seed, its id matching. */
static int
secret_decode(struct sign_secret *s, const char *text, size_t n, char *err, size_t errlen)
{
	size_t pre = strlen(SECRET_PREFIX), got = 0;
	unsigned char id[SIGN_ID_LEN], pk[SIGN_PK_LEN], *again;
	const char *end;
	int ok;

	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		n--;
	ok = n > pre + SIGN_ID_HEX_LEN + 1 && memcmp(text, SECRET_PREFIX, pre) == 0 &&
	    text[pre + SIGN_ID_HEX_LEN] == ':' &&
	    sodium_hex2bin(id, sizeof id, text + pre, SIGN_ID_HEX_LEN, NULL, &got, NULL) == 0 &&
	    got == SIGN_ID_LEN &&
	    sodium_base642bin(s->sk, crypto_sign_SECRETKEYBYTES, text + pre + SIGN_ID_HEX_LEN + 1,
	        n - pre - SIGN_ID_HEX_LEN - 1, NULL, &got, &end,
	        sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    got == crypto_sign_SECRETKEYBYTES && end == text + n;
	if (ok && (again = sodium_malloc(crypto_sign_SECRETKEYBYTES)) != NULL) {
		crypto_sign_seed_keypair(pk, again, s->sk);
		ok = sodium_memcmp(again, s->sk, crypto_sign_SECRETKEYBYTES) == 0;
		sodium_free(again);
		memcpy(s->pk, pk, SIGN_PK_LEN);
		sign_key_id(s->pk, s->id);
		ok = ok && memcmp(id, s->id, SIGN_ID_LEN) == 0;
	} else {
		ok = 0;
	}
	if (!ok)
		snprintf(err, errlen, "is not a kache secret key (`kache keygen` makes one)");
	return ok ? 0 : -1;
}

/* Reads the open key file into locked memory and decodes it. */
static int
secret_read(int fd, const char *path, struct sign_secret *s, char *err, size_t errlen)
{
	char *text = sodium_malloc(SECRET_TEXT_MAX), e[160];
	size_t n = 0;
	int got, rc = -1;

	if (text == NULL) {
		snprintf(err, errlen, "cannot lock memory for the signing key");
		return -1;
	}
	if ((got = fs_read_into(fd, text, SECRET_TEXT_MAX - 1, &n)) < 0 && errno != EFBIG)
		snprintf(err, errlen, "cannot read remote.signing_key %s: %s", path,
		    strerror(errno));
	else if (got < 0 || n == 0)
		snprintf(err, errlen, "remote.signing_key %s is empty or too long", path);
	else if (secret_decode(s, text, n, e, sizeof e) < 0)
		snprintf(err, errlen, "remote.signing_key %s %s", path, e);
	else
		rc = 0;
	sodium_free(text);
	return rc;
}

struct sign_secret *
sign_secret_load(const char *path, char *err, size_t errlen)
{
	struct sign_secret *s;
	struct stat st;
	int fd;

	if (sign_secret_check_file(path, err, errlen) < 0)
		return NULL;
	if ((s = secret_alloc()) == NULL) {
		snprintf(err, errlen, "cannot initialise libsodium for the signing key");
		return NULL;
	}
	(void)prctl(PR_SET_DUMPABLE, 0); /* no core dump, no ptrace of this process */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		snprintf(err, errlen, "remote.signing_key %s: %s", path,
		    fd < 0 ? strerror(errno) : "changed while it was opened; check it");
		if (fd >= 0)
			close(fd);
		sign_secret_free(&s);
		return NULL;
	}
	if (secret_read(fd, path, s, err, errlen) < 0)
		sign_secret_free(&s);
	close(fd);
	return s;
}

/* Written to a private temporary, then linked to path: never half a key, and
 * never over an existing key (link fails when path exists). */
int
sign_secret_write(const struct sign_secret *s, const char *path, char *err, size_t errlen)
{
	size_t pre = strlen(SECRET_PREFIX),
	       b64 = sodium_base64_ENCODED_LEN(crypto_sign_SECRETKEYBYTES,
	           sodium_base64_VARIANT_ORIGINAL);
	char *text = sodium_malloc(SECRET_TEXT_MAX), *tmp = fs_tmp_beside(path),
	     hex[SIGN_ID_HEX_LEN + 1];
	int fd = -1, rc = -1;
	size_t n;

	if (text == NULL)
		goto out;
	sign_id_hex(s->id, hex);
	snprintf(text, SECRET_TEXT_MAX, "%s%s:", SECRET_PREFIX, hex);
	sodium_bin2base64(text + pre + SIGN_ID_HEX_LEN + 1, b64, s->sk, crypto_sign_SECRETKEYBYTES,
	    sodium_base64_VARIANT_ORIGINAL);
	n = strlen(text);
	text[n++] = '\n';
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 || fs_write_all(fd, text, n) < 0 || fsync(fd) < 0 ||
	    close(fd) < 0 || (fd = -1, link(tmp, path) < 0))
		snprintf(err, errlen, "%s: %s", path,
		    errno == EEXIST ? "exists already; not replaced (choose another --out)" :
		                      strerror(errno));
	else
		rc = 0;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out:
	if (text == NULL)
		snprintf(err, errlen, "cannot lock memory for the key");
	sodium_free(text);
	free(tmp);
	return rc;
}

void
sign_head(const struct sign_secret *s, uint64_t body_len, unsigned char head[SIGN_HEAD_LEN])
{
	memcpy(head, SIGN_MAGIC, SIGN_MAGIC_LEN);
	head[8] = SIGN_VERSION;
	head[9] = SIGN_ALG_ED25519_BLAKE2B;
	head[10] = 0;
	head[11] = 0;
	memcpy(head + 12, s->id, SIGN_ID_LEN);
	le_put(head + 20, body_len, 8);
}

void
sign_finish(const struct sign_secret *s, const unsigned char head[SIGN_HEAD_LEN],
    struct sign_hash *h, unsigned char trailer[SIGN_TRAILER_LEN])
{
	unsigned char digest[SIGN_DIGEST_LEN];

	sign_hash_end(h, digest);
	memcpy(trailer, head, SIGN_HEAD_LEN);
	crypto_sign_detached(trailer + SIGN_HEAD_LEN, NULL, digest, sizeof digest, s->sk);
}

void
sign_mem(const struct sign_secret *s, const char *name, const void *body, size_t n,
    unsigned char trailer[SIGN_TRAILER_LEN])
{
	unsigned char head[SIGN_HEAD_LEN];
	struct sign_hash h;

	sign_head(s, n, head);
	sign_hash_begin(&h, head, name);
	sign_hash_update(&h, body, n);
	sign_finish(s, head, &h, trailer);
}
