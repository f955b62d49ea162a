/* AWS Signature Version 4: canonical requests and the Authorization header.
 * Region and service are always given by the caller, never guessed. */
#ifndef KACHE_S3_SIGN_H
#define KACHE_S3_SIGN_H

#include <stddef.h>

#include "s3/s3.h"

#define S3_SHA256_HEX_LEN 64
/* SHA-256 of the empty string, the payload hash of body-less requests. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_kv {
	const char *name;
	const char *value;
};

struct s3_sign_req {
	const char *method;
	const char *path;          /* raw (not encoded), starting with '/' */
	const struct s3_kv *query; /* raw names and values */
	size_t nquery;
	const struct s3_kv *headers; /* every header to sign, host included */
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256 of the body */
	const char *amz_date;     /* YYYYMMDDTHHMMSSZ */
	const char *region;
	const char *service;
};

/* RFC 3986 encoding of bytes: unreserved characters kept, '/' kept when
 * keep_slash, everything else %XX (uppercase). */
char *s3_uri_encode(const char *s, int keep_slash);
/* Query string with encoded names and values, sorted by name then value. */
char *s3_canonical_query(const struct s3_kv *q, size_t n);
/* The canonical request; *signed_headers receives "a;b;c" when not NULL. */
char *s3_canonical_request(const struct s3_sign_req *r, char **signed_headers);
/* The value of the Authorization header. */
char *s3_authorization(const struct s3_sign_req *r, const struct s3_creds *cr);
void s3_sha256_hex(const void *data, size_t n, char out[S3_SHA256_HEX_LEN + 1]);
/* Hashes len bytes of fd from off (pread, so the offset is untouched). */
int s3_sha256_fd_range(int fd, uint64_t off, uint64_t len, char out[S3_SHA256_HEX_LEN + 1]);

#endif
