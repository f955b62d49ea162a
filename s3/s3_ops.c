/* Object operations over s3_request(). */
#include "s3/s3_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"

static enum s3_result refuse_read_only(struct s3_client *c, const char *key);
static enum s3_result put_range(struct s3_client *c, const char *key, int fd, uint64_t size);
static void strip_prefix(const struct s3_client *c, struct s3_list_page *page);

enum s3_result
s3_head(struct s3_client *c, const char *key, uint64_t *size)
{
	char *full = s3_full_key(c, key);
	struct s3_req r;
	enum s3_result res;

	s3_req_init(&r, "HEAD", full);
	res = s3_request(c, &r);
	if (res == S3_OK && size != NULL)
		*size = r.content_length;
	s3_req_clear(&r);
	free(full);
	return res;
}

enum s3_result
s3_get_to_fd(struct s3_client *c, const char *key, int fd, uint64_t *size)
{
	char *full = s3_full_key(c, key);
	struct s3_req r;
	enum s3_result res;

	s3_req_init(&r, "GET", full);
	r.out_fd = fd;
	res = s3_request(c, &r);
	if (res == S3_OK && size != NULL)
		*size = r.received;
	s3_req_clear(&r);
	free(full);
	return res;
}

enum s3_result
s3_get_to_mem(struct s3_client *c, const char *key, void *buf, size_t cap, size_t *len,
    int *too_big)
{
	char *full = s3_full_key(c, key);
	struct s3_req r;
	enum s3_result res;

	s3_req_init(&r, "GET", full);
	r.out_mem = buf;
	r.out_cap = cap;
	res = s3_request(c, &r);
	*len = res == S3_OK ? (size_t)r.received : 0;
	*too_big = r.out_too_big;
	s3_req_clear(&r);
	free(full);
	return res;
}

/* The temporary is removed on every failure, so a truncated or refused
 * download never leaves anything behind. */
enum s3_result
s3_get_to_path(struct s3_client *c, const char *key, const char *path)
{
	char *tmp = fs_tmp_beside(path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	enum s3_result res;
	int stored;

	if (fd < 0) {
		res = s3_fail(c, S3_LOCAL, "cannot create %s: %s", tmp, strerror(errno));
		log_info("s3: %s", s3_client_last_error(c));
		free(tmp);
		return res;
	}
	res = s3_get_to_fd(c, key, fd, NULL);
	stored = res == S3_OK && fsync(fd) == 0;
	stored = close(fd) == 0 && stored; /* closed once, whatever happened */
	if (res == S3_OK && (!stored || rename(tmp, path) < 0)) {
		res = s3_fail(c, S3_LOCAL, "cannot store %s: %s", path, strerror(errno));
		log_info("s3: %s", s3_client_last_error(c));
	}
	if (res != S3_OK)
		unlink(tmp);
	free(tmp);
	return res;
}

static enum s3_result
refuse_read_only(struct s3_client *c, const char *key)
{
	enum s3_result res = s3_fail(c, S3_BAD_REQUEST,
	    "S3 remote is read-only (s3.read_only); "
	    "not writing %s",
	    key);

	log_info("s3: %s", s3_client_last_error(c));
	return res;
}

enum s3_result
s3_put_mem(struct s3_client *c, const char *key, const void *data, size_t n)
{
	struct s3_body b = { data ? data : "", -1, 0, n, "" };
	char *full;
	struct s3_req r;
	enum s3_result res;

	if (s3_client_settings(c)->read_only)
		return refuse_read_only(c, key);
	full = s3_full_key(c, key);
	s3_sha256_hex(b.mem, n, b.sha256);
	s3_req_init(&r, "PUT", full);
	r.body = &b;
	res = s3_request(c, &r);
	s3_req_clear(&r);
	free(full);
	return res;
}

/* The body is hashed first (a signed payload even over plain http), then
 * streamed from the file. */
static enum s3_result
put_range(struct s3_client *c, const char *key, int fd, uint64_t size)
{
	struct s3_body b = { NULL, fd, 0, size, "" };
	char *full = s3_full_key(c, key);
	struct s3_req r;
	enum s3_result res;

	if (s3_sha256_fd_range(fd, 0, size, b.sha256) < 0) {
		free(full);
		res = s3_fail(c, S3_LOCAL, "cannot read the file for %s", key);
		log_info("s3: %s", s3_client_last_error(c));
		return res;
	}
	s3_req_init(&r, "PUT", full);
	r.body = &b;
	res = s3_request(c, &r);
	s3_req_clear(&r);
	free(full);
	return res;
}

enum s3_result
s3_put_file(struct s3_client *c, const char *key, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	enum s3_result res;

	if (s3_client_settings(c)->read_only)
		res = refuse_read_only(c, key);
	else if (fd < 0 || fstat(fd, &st) < 0) {
		res = s3_fail(c, S3_LOCAL, "cannot open %s: %s", path, strerror(errno));
		log_info("s3: %s", s3_client_last_error(c));
	} else if ((uint64_t)st.st_size > s3_client_settings(c)->multipart_threshold)
		res = s3_multipart_put(c, key, fd, (uint64_t)st.st_size);
	else
		res = put_range(c, key, fd, (uint64_t)st.st_size);
	if (fd >= 0)
		close(fd);
	return res;
}

enum s3_result
s3_delete(struct s3_client *c, const char *key)
{
	char *full;
	struct s3_req r;
	enum s3_result res;

	if (s3_client_settings(c)->read_only)
		return refuse_read_only(c, key);
	full = s3_full_key(c, key);
	s3_req_init(&r, "DELETE", full);
	res = s3_request(c, &r);
	s3_req_clear(&r);
	free(full);
	return res;
}

/* Listed keys lose the configured prefix; keys outside it are dropped. */
static void
strip_prefix(const struct s3_client *c, struct s3_list_page *page)
{
	char *pfx = s3_full_key(c, "");
	size_t n = strlen(pfx), kept = 0;

	for (size_t i = 0; i < page->n; i++) {
		char *k = page->obj[i].key;

		if (strncmp(k, pfx, n) != 0) {
			free(k);
			continue;
		}
		memmove(k, k + n, strlen(k + n) + 1);
		page->obj[kept++] = page->obj[i];
	}
	page->n = kept;
	free(pfx);
}

enum s3_result
s3_list(struct s3_client *c, const char *prefix, const char *token, struct s3_list_page *page)
{
	char *full = s3_full_key(c, prefix ? prefix : "");
	struct s3_req r;
	enum s3_result res;

	memset(page, 0, sizeof *page);
	s3_req_init(&r, "GET", NULL);
	r.query[r.nquery++] = (struct s3_kv){ "list-type", "2" };
	r.query[r.nquery++] = (struct s3_kv){ "prefix", full };
	if (token != NULL)
		r.query[r.nquery++] = (struct s3_kv){ "continuation-token", token };
	res = s3_request(c, &r);
	if (res == S3_OK && s3_xml_parse_list(r.resp.p ? r.resp.p : "", r.resp.len, page) < 0) {
		res = s3_fail(c, S3_TRANSIENT,
		    "S3 list answer for prefix '%s' is malformed or "
		    "truncated (%zu bytes)",
		    full, r.resp.len);
		log_info("s3: %s", s3_client_last_error(c));
	}
	if (res == S3_OK)
		strip_prefix(c, page);
	s3_req_clear(&r);
	free(full);
	return res;
}

int
s3_verify_file_hash(const char *path, const unsigned char want[HASH_LEN])
{
	unsigned char got[HASH_LEN];
	uint64_t size;

	if (hash_file(path, got, &size) < 0) {
		log_warn("s3: cannot hash %s", path);
		return -1;
	}
	if (memcmp(got, want, HASH_LEN) != 0) {
		log_warnx("s3: %s does not have the expected BLAKE2b hash; not importing it", path);
		return -1;
	}
	return 0;
}

int
s3_verify_file_hex(const char *path, const char *want_hex)
{
	unsigned char want[HASH_LEN];

	if (hash_from_hex(want_hex, want) < 0) {
		log_warnx("s3: '%s' is not a BLAKE2b-256 hex digest", want_hex);
		return -1;
	}
	return s3_verify_file_hash(path, want);
}
