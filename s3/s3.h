/* The S3 client: SigV4 over libcurl, results a caller can act on.
 *
 * One client owns one CURL handle, so connections are reused between the
 * requests of one worker. A client is not thread-safe: use one per thread.
 * Keys given to the client are relative to the configured prefix
 * ("<prefix>/<key>" in the bucket); listed keys come back the same way. */
#ifndef KACHE_S3_H
#define KACHE_S3_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/util.h"

struct config;
struct s3_client;

/* What went wrong, in the terms a caller acts on. */
enum s3_result {
	S3_OK = 0,
	S3_NOT_FOUND,   /* 404: a cache miss */
	S3_AUTH,        /* 403: credentials, permissions or clock skew */
	S3_BAD_REQUEST, /* any other 4xx, or a refused operation: never retried */
	S3_TRANSIENT,   /* 5xx, SlowDown, timeouts, resets, truncated bodies: retried */
	S3_NO_BUCKET,   /* NoSuchBucket */
	S3_LOCAL,       /* a local file could not be read or written */
};

struct s3_creds {
	char *access_key_id;
	char *secret_access_key;
	char *session_token; /* NULL when none */
	/* 0: they do not expire; else when they do (wall clock, ms): a role's,
	 * which the client renews before from the same source (s3_role.c) */
	int64_t expires_ms;
	int role; /* enum s3_role: where a role's keys came from; 0 for others */
	/* S3_ROLE_PROCESS: the credential_process command and its profile, run
	 * again to renew; S3_ROLE_ASSUMED: the role_arn profile in
	 * process_profile, assumed again to renew; NULL otherwise */
	char *process;
	char *process_profile;
};

/* Where a role's keys come from (s3_role.c). */
enum s3_role {
	S3_ROLE_NONE = 0,
	S3_ROLE_CONTAINER,    /* ECS, CodeBuild: AWS_CONTAINER_CREDENTIALS_*_URI */
	S3_ROLE_INSTANCE,     /* the EC2 instance's (IMDSv2) */
	S3_ROLE_WEB_IDENTITY, /* AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, through STS */
	S3_ROLE_PROCESS,      /* a profile's credential_process (s3_process.c) */
	S3_ROLE_ANY,          /* the container's when named, else the instance's */
	S3_ROLE_ASSUMED,      /* a role_arn profile of ~/.aws/config, through STS */
};

struct s3_settings {
	char *bucket;
	char *prefix;   /* "" for none; no leading or trailing '/' */
	char *endpoint; /* "" means https://s3.<region>.amazonaws.com */
	char *region;
	int virtual_hosted; /* bucket.host/key instead of host/bucket/key */
	char *ca_file;      /* PEM CA certificates for https; NULL: the system's */
	int read_only;
	struct s3_creds creds;
	long connect_timeout_ms;
	long fail_fast_connect_ms; /* a fail-fast client's connection, at most */
	long low_speed_limit;      /* bytes per second ... */
	long low_speed_time_s;     /* ... sustained this long, else the attempt fails */
	long total_timeout_ms;     /* per attempt; 0: none */
	int max_attempts;
	long backoff_base_ms;
	long backoff_cap_ms;
	uint64_t multipart_threshold;
	uint64_t part_size;     /* at least 5 MiB */
	int upload_concurrency; /* for callers that run several clients */
};

const char *s3_result_name(enum s3_result r);

/* Fills s with defaults (no strings set). */
void s3_settings_defaults(struct s3_settings *s);
/* Builds settings from the s3.* keys of cfg and resolves credentials (see
 * s3_creds_resolve). On failure returns -1 with one line of advice in err. */
int s3_config_from(const struct config *cfg, struct s3_settings *s, struct buf *err);
/* The settings check: s3_config_from and what a client would refuse (a bad
 * endpoint), without making a client or touching the network: of the
 * credentials it reads what is local (the keys given, the credentials file,
 * the config file's syntax) and asks no one (no STS, no credential_process,
 * no role's service: the workers do, when they open the remote). 0, or -1
 * with one line of advice in err. */
int s3_config_check(const struct config *cfg, struct buf *err);
/* Frees the strings of s and wipes the secrets. */
void s3_settings_clear(struct s3_settings *s);

/* Credentials in this order: s3.access_key_id / s3.secret_access_key /
 * s3.session_token (KACHE_S3_* variables or the config file), then
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then a web
 * identity's (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN: STS's keys for
 * that role; its failure is the error, no fall-through), then the shared
 * credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials),
 * profile AWS_PROFILE, else s3.profile, else "default" (without keys
 * there: that profile's credential_process in AWS_CONFIG_FILE or
 * ~/.aws/config), then a role's
 * keys: the container's (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 * _FULL_URI), else the EC2 instance's (IMDSv2 at
 * AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254; not when
 * AWS_EC2_METADATA_DISABLED=true), a second at most per request. cfg may be
 * NULL.
 * -1 with advice in err (never a secret) when none are found. */
int s3_creds_resolve(const struct config *cfg, struct s3_creds *out, struct buf *err);
void s3_creds_clear(struct s3_creds *c);

/* Copies s. NULL with a message in err when the endpoint is invalid. */
struct s3_client *s3_client_new(const struct s3_settings *s, struct buf *err);
/* Takes ownership: frees the client and NULLs *c. */
void s3_client_free(struct s3_client **c);
/* Seconds the server's clock (the Date header of its last answer) is ahead of
 * ours (negative: behind), in *seconds; -1 when no answer carried a Date
 * that parses. */
int s3_client_clock_skew(const struct s3_client *c, long *seconds);
/* on: a request whose endpoint could not be reached (connection refused, the
 * name not resolved, no connection within the connect timeout, which is then
 * at most s3.fetch_connect_timeout_ms, 1 s by default) fails at once instead
 * of being retried with back-off, for callers that someone waits on (a
 * wrapper's fetch). A connection that was made and then timed out, and
 * answers (5xx, SlowDown), are retried as before. Off by default. */
void s3_client_fail_fast(struct s3_client *c, int on);
/* 1 when the last request failed for want of a connection (refused, the name
 * not resolved, nothing answered within the connect timeout), after its
 * retries if any. */
int s3_client_unreachable(const struct s3_client *c);
/* A human explanation of the last failure, with advice; "" after success. */
const char *s3_client_last_error(const struct s3_client *c);

/* Existence and size of key. */
enum s3_result s3_head(struct s3_client *c, const char *key, uint64_t *size);
/* Streams key into path through a temporary beside it and rename(2): on any
 * failure nothing is left under path or the temporary. */
enum s3_result s3_get_to_path(struct s3_client *c, const char *key, const char *path);
/* Streams key into fd from its current offset; on failure fd is truncated
 * back to that offset. */
enum s3_result s3_get_to_fd(struct s3_client *c, const char *key, int fd, uint64_t *size);
/* Reads key whole into buf, at most cap bytes: *len its size. S3_LOCAL with
 * *too_big set (logged at debug level only) when it is larger than cap:
 * stopped as soon as the answer's length says so. */
enum s3_result s3_get_to_mem(struct s3_client *c, const char *key, void *buf, size_t cap,
    size_t *len, int *too_big);
/* Uploads a file, streamed, signed with its SHA-256; multipart above the
 * threshold (parts streamed from file ranges, aborted on any failure). */
enum s3_result s3_put_file(struct s3_client *c, const char *key, const char *path);
enum s3_result s3_put_mem(struct s3_client *c, const char *key, const void *data, size_t n);
enum s3_result s3_delete(struct s3_client *c, const char *key);

struct s3_object {
	char *key; /* relative to the prefix */
	uint64_t size;
	int64_t mtime_ms; /* LastModified, ms since the epoch; 0 when absent */
};

struct s3_list_page {
	struct s3_object *obj;
	size_t n;
	int truncated;
	char *next_token; /* NULL when none */
};

/* One page of ListObjectsV2 under prefix (relative), continuing from token
 * (NULL for the first page). page is filled; free it with s3_list_page_clear. */
enum s3_result s3_list(struct s3_client *c, const char *prefix, const char *token,
    struct s3_list_page *page);
void s3_list_page_clear(struct s3_list_page *page);

/* 0 when the file at path hashes (BLAKE2b-256, common/hash.h) to want; -1 when
 * it does not or cannot be read. Callers check before importing. */
int s3_verify_file_hash(const char *path, const unsigned char want[HASH_LEN]);
int s3_verify_file_hex(const char *path, const char *want_hex);

#endif
