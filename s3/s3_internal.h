/* Internals shared by the files of s3/: endpoints, XML scanning, requests. */
#ifndef KACHE_S3_INTERNAL_H
#define KACHE_S3_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "s3/s3.h"
#include "s3/s3_sign.h"

struct curl_slist;

struct s3_endpoint {
	int https;
	char *host; /* as written: name, a.b.c.d or [v6] */
	char *port; /* NULL for the scheme's default */
};

/* Parses "http(s)://host[:port][/]". Anything else (no scheme, a path, user
 * info, a query) is refused with a message in err. */
int s3_endpoint_parse(const char *url, struct s3_endpoint *ep, struct buf *err);
void s3_endpoint_clear(struct s3_endpoint *ep);
/* The endpoint URL of s: s3.endpoint, else AWS's for the region (a new string). */
char *s3_settings_url(const struct s3_settings *s);
/* What a client needs of s before it is made: a bucket and a valid endpoint.
 * 0, or -1 with advice in err. No network. */
int s3_settings_check(const struct s3_settings *s, struct buf *err);
/* The Host header value and the request path for bucket and raw key (key may
 * be NULL for bucket-level requests). Both new strings. */
void s3_endpoint_target(const struct s3_endpoint *ep, int virtual_hosted, const char *bucket,
    const char *key, char **host, char **path);

/* ListObjectsV2 result scanning: fills page with raw keys. -1 on anything
 * malformed or truncated. */
int s3_xml_parse_list(const char *xml, size_t len, struct s3_list_page *page);
/* An ISO 8601 UTC time as S3 writes LastModified ("2009-10-12T17:50:30.000Z":
 * date, 'T', time, optional 1-9 fraction digits, 'Z') into ms since the
 * epoch. -1 for anything else: another zone, a field out of range (Feb 30,
 * 24:00), a year before 1970 or after 9999, extra bytes. */
int s3_xml_parse_time(const char *p, size_t n, int64_t *ms);
/* The text of the first <name> element, entities decoded; NULL when absent
 * or malformed. */
char *s3_xml_text(const char *xml, size_t len, const char *name);
/* Escapes &, <, > and quotes for element text. */
char *s3_xml_escape(const char *s);

/* Where a request body comes from. */
struct s3_body {
	const void *mem; /* when not NULL, mem[0..len) */
	int fd;          /* else fd range [off, off+len), when fd >= 0 */
	uint64_t off;
	uint64_t len;
	char sha256[S3_SHA256_HEX_LEN + 1];
};

/* One S3 request, executed with retries by s3_request(). */
struct s3_req {
	const char *method;
	const char *key; /* full key in the bucket; NULL for the bucket */
	struct s3_kv query[4];
	size_t nquery;
	const struct s3_body *body; /* NULL: empty */
	int out_fd;                 /* GET: 2xx body goes here from its offset */
	char *out_mem;              /* or here, when not NULL: out_cap bytes at most */
	size_t out_cap;
	int out_too_big; /* the body was larger than out_cap */
	int head;
	/* results */
	long status;
	struct buf resp; /* non-streamed body (errors, XML), capped */
	char *etag;
	uint64_t content_length;
	uint64_t received;
};

/* Zeroes r and sets the method and full key (borrowed). */
void s3_req_init(struct s3_req *r, const char *method, const char *key);
enum s3_result s3_request(struct s3_client *c, struct s3_req *r);
void s3_req_clear(struct s3_req *r);
/* Sets the client's last error (printf-like). Returns r for chaining. */
enum s3_result s3_fail(struct s3_client *c, enum s3_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const struct s3_settings *s3_client_settings(const struct s3_client *c);
/* "<prefix>/<key>" or key. */
char *s3_full_key(const struct s3_client *c, const char *key);

/* The header lines curl sends for sr (every header it signs, the
 * Authorization made with cr's keys, no Expect: 100-continue). */
struct curl_slist *s3_signed_header_list(const struct s3_sign_req *sr, const struct s3_creds *cr);

/* A string that held a secret: zeroed, then freed (NULL: nothing). */
void s3_wipe_str(char *s);

/* s3_role.c: a role's keys from source (S3_ROLE_ANY: whichever applies), with
 * their expiration and source in out; region (s3.region) names a web
 * identity's STS endpoint. 0; -1 with why in err, or with err untouched when
 * no source applies. */
int s3_role_creds(int source, const char *region, struct s3_creds *out, struct buf *err);
/* AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are both set. */
int s3_role_web_identity_named(void);

/* A role_arn profile's request (~/.aws/config; s3_config.c reads it). */
struct s3_assume {
	const char *role_arn;
	const char *session_name;
	const char *external_id; /* NULL: none */
	int duration_s;          /* 900..43200 */
};
/* STS's AssumeRole for r, signed (SigV4, service sts) with src's keys, at the
 * STS endpoint of region as for a web identity; the role's keys into out
 * (their expiration set, role and profile left to the caller): 0, or -1 with
 * why in err. */
int s3_role_assume(const struct s3_assume *r, const char *region, const struct s3_creds *src,
    struct s3_creds *out, struct buf *err);
/* s3_config.c: the keys of role_arn profile (its source's, then STS's), as
 * s3_creds_resolve found them first: the client renews them with it. 0, or
 * -1 with why in err. */
int s3_profile_assume(const char *profile, const char *region, struct s3_creds *out,
    struct buf *err);

/* s3_process.c: runs command, a profile's credential_process (s3_config.c
 * reads it with the other AWS files), by /bin/sh -c, at most 30 s and 16 KiB
 * of output, and takes the keys of its JSON into out (role S3_ROLE_PROCESS,
 * the command kept to renew them): 0; -1 with why in err (the command and the
 * profile named, never what it printed). */
int s3_process_creds(const char *command, const char *profile, struct s3_creds *out,
    struct buf *err);

enum s3_result s3_multipart_put(struct s3_client *c, const char *key, int fd, uint64_t size);

#endif
