/* SigV4 with OpenSSL: canonical request, string to sign, derived key. */
#include "s3/s3_sign.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct hdr {
	char *name;
	char *value;
};

static int kv_cmp(const void *a, const void *b);
static int hdr_cmp(const void *a, const void *b);
static char *trim_value(const char *v);
static void hex(const unsigned char *p, size_t n, char *out);
static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32]);

char *
s3_uri_encode(const char *s, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	struct buf b;

	buf_init(&b);
	buf_addstr(&b, "");
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
		    (keep_slash && *p == '/')) {
			buf_addch(&b, (char)*p);
		} else {
			buf_addch(&b, '%');
			buf_addch(&b, digits[*p >> 4]);
			buf_addch(&b, digits[*p & 15]);
		}
	}
	return buf_detach(&b, NULL);
}

static int
kv_cmp(const void *a, const void *b)
{
	const struct s3_kv *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* Encodes first and sorts after: the order is by the encoded bytes. */
char *
s3_canonical_query(const struct s3_kv *q, size_t n)
{
	struct s3_kv *e = xcalloc(n ? n : 1, sizeof *e);
	struct buf b;

	for (size_t i = 0; i < n; i++) {
		e[i].name = s3_uri_encode(q[i].name, 0);
		e[i].value = s3_uri_encode(q[i].value ? q[i].value : "", 0);
	}
	qsort(e, n, sizeof *e, kv_cmp);
	buf_init(&b);
	buf_addstr(&b, "");
	for (size_t i = 0; i < n; i++) {
		buf_addf(&b, "%s%s=%s", i ? "&" : "", e[i].name, e[i].value);
		free((char *)e[i].name);
		free((char *)e[i].value);
	}
	free(e);
	return buf_detach(&b, NULL);
}

static int
hdr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

/* Leading and trailing blanks dropped, inner runs of spaces squeezed to one. */
static char *
trim_value(const char *v)
{
	struct buf b;

	buf_init(&b);
	buf_addstr(&b, "");
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v != '\0'; v++) {
		if ((*v == ' ' || *v == '\t') && (v[1] == ' ' || v[1] == '\t' || v[1] == '\0'))
			continue;
		buf_addch(&b, *v == '\t' ? ' ' : *v);
	}
	return buf_detach(&b, NULL);
}

char *
s3_canonical_request(const struct s3_sign_req *r, char **signed_headers)
{
	struct hdr *h = xcalloc(r->nheaders ? r->nheaders : 1, sizeof *h);
	char *path = s3_uri_encode(r->path, 1);
	char *query = s3_canonical_query(r->query, r->nquery);
	struct buf b, sh;

	for (size_t i = 0; i < r->nheaders; i++) {
		h[i].name = xstrdup(r->headers[i].name);
		for (char *p = h[i].name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		h[i].value = trim_value(r->headers[i].value);
	}
	qsort(h, r->nheaders, sizeof *h, hdr_cmp);
	buf_init(&b);
	buf_init(&sh);
	buf_addstr(&sh, "");
	buf_addf(&b, "%s\n%s\n%s\n", r->method, path, query);
	for (size_t i = 0; i < r->nheaders; i++) {
		buf_addf(&b, "%s:%s\n", h[i].name, h[i].value);
		buf_addf(&sh, "%s%s", i ? ";" : "", h[i].name);
		free(h[i].name);
		free(h[i].value);
	}
	buf_addf(&b, "\n%s\n%s", sh.p, r->payload_hash);
	if (signed_headers != NULL)
		*signed_headers = buf_detach(&sh, NULL);
	buf_free(&sh);
	free(h);
	free(path);
	free(query);
	return buf_detach(&b, NULL);
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void
s3_sha256_hex(const void *data, size_t n, char out[S3_SHA256_HEX_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, n, md);
	hex(md, sizeof md, out);
}

int
s3_sha256_fd_range(int fd, uint64_t off, uint64_t len, char out[S3_SHA256_HEX_LEN + 1])
{
	unsigned char chunk[1 << 16], md[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = 0;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		fatalx("s3: cannot set up SHA-256");
	while (len > 0 && rc == 0) {
		size_t want = len < sizeof chunk ? (size_t)len : sizeof chunk;
		ssize_t got = pread(fd, chunk, want, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = -1;
			break;
		}
		EVP_DigestUpdate(ctx, chunk, (size_t)got);
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	hex(md, sizeof md, out);
	return rc;
}

static void
hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned char tmp[EVP_MAX_MD_SIZE];
	unsigned int olen = sizeof tmp;

	/* tmp, because callers chain with out == key */
	if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), tmp,
	        &olen) == NULL ||
	    olen != 32)
		fatalx("s3: HMAC-SHA256 failed");
	memcpy(out, tmp, 32);
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
 * "aws4_request"); the signature is HMAC(kSigning, string to sign). */
char *
s3_authorization(const struct s3_sign_req *r, const struct s3_creds *cr)
{
	char *signed_headers, *creq = s3_canonical_request(r, &signed_headers);
	char creq_hash[S3_SHA256_HEX_LEN + 1], sig[S3_SHA256_HEX_LEN + 1], date[9];
	char *ksecret = xasprintf("AWS4%s", cr->secret_access_key), *sts, *scope, *auth;
	unsigned char k[32];

	memcpy(date, r->amz_date, 8);
	date[8] = '\0';
	scope = xasprintf("%s/%s/%s/aws4_request", date, r->region, r->service);
	s3_sha256_hex(creq, strlen(creq), creq_hash);
	sts = xasprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", r->amz_date, scope, creq_hash);
	hmac(ksecret, strlen(ksecret), date, k);
	hmac(k, sizeof k, r->region, k);
	hmac(k, sizeof k, r->service, k);
	hmac(k, sizeof k, "aws4_request", k);
	hmac(k, sizeof k, sts, k);
	hex(k, sizeof k, sig);
	auth = xasprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
	    cr->access_key_id, scope, signed_headers, sig);
	explicit_bzero(ksecret, strlen(ksecret));
	explicit_bzero(k, sizeof k);
	free(ksecret);
	free(scope);
	free(sts);
	free(creq);
	free(signed_headers);
	return auth;
}
