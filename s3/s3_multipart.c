/* Multipart upload: create, parts streamed from file ranges, complete;
 * abort on any failure so no orphaned parts are billed. */
#include "s3/s3_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define MAX_PARTS 10000

struct mpu {
	const char *full;
	char *upload_id;
	char **etags;
	size_t nparts;
	uint64_t part_size;
};

static enum s3_result mpu_create(struct s3_client *c, struct mpu *m);
static enum s3_result mpu_part(struct s3_client *c, struct mpu *m, size_t i, int fd, uint64_t size);
static enum s3_result mpu_complete(struct s3_client *c, struct mpu *m);
static void mpu_abort(struct s3_client *c, struct mpu *m);

static enum s3_result
mpu_create(struct s3_client *c, struct mpu *m)
{
	struct s3_body b = { "", -1, 0, 0, S3_EMPTY_SHA256 };
	struct s3_req r;
	enum s3_result res;

	s3_req_init(&r, "POST", m->full);
	r.query[r.nquery++] = (struct s3_kv){ "uploads", "" };
	r.body = &b;
	res = s3_request(c, &r);
	if (res == S3_OK &&
	    (m->upload_id = s3_xml_text(r.resp.p ? r.resp.p : "", r.resp.len, "UploadId")) ==
	        NULL) {
		res = s3_fail(c, S3_TRANSIENT, "S3 CreateMultipartUpload for %s gave no UploadId",
		    m->full);
		log_info("s3: %s", s3_client_last_error(c));
	}
	s3_req_clear(&r);
	return res;
}

/* Part i covers [i * part_size, min(size, (i + 1) * part_size)). */
static enum s3_result
mpu_part(struct s3_client *c, struct mpu *m, size_t i, int fd, uint64_t size)
{
	uint64_t off = (uint64_t)i * m->part_size;
	uint64_t len = size - off < m->part_size ? size - off : m->part_size;
	struct s3_body b = { NULL, fd, off, len, "" };
	char num[24];
	struct s3_req r;
	enum s3_result res;

	if (s3_sha256_fd_range(fd, off, len, b.sha256) < 0) {
		res =
		    s3_fail(c, S3_LOCAL, "cannot read part %zu of the file for %s", i + 1, m->full);
		log_info("s3: %s", s3_client_last_error(c));
		return res;
	}
	snprintf(num, sizeof num, "%zu", i + 1);
	s3_req_init(&r, "PUT", m->full);
	r.query[r.nquery++] = (struct s3_kv){ "partNumber", num };
	r.query[r.nquery++] = (struct s3_kv){ "uploadId", m->upload_id };
	r.body = &b;
	res = s3_request(c, &r);
	if (res == S3_OK && r.etag == NULL) {
		res =
		    s3_fail(c, S3_TRANSIENT, "S3 gave no ETag for part %zu of %s", i + 1, m->full);
		log_info("s3: %s", s3_client_last_error(c));
	}
	if (res == S3_OK)
		m->etags[i] = xstrdup(r.etag);
	s3_req_clear(&r);
	return res;
}

/* S3 may answer 200 and still put an <Error> in the body of a complete. */
static enum s3_result
mpu_complete(struct s3_client *c, struct mpu *m)
{
	struct s3_body b = { NULL, -1, 0, 0, "" };
	struct s3_req r;
	struct buf x;
	enum s3_result res;

	buf_init(&x);
	buf_addstr(&x, "<CompleteMultipartUpload>");
	for (size_t i = 0; i < m->nparts; i++) {
		char *e = s3_xml_escape(m->etags[i]);

		buf_addf(&x, "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1, e);
		free(e);
	}
	buf_addstr(&x, "</CompleteMultipartUpload>");
	b.mem = x.p;
	b.len = x.len;
	s3_sha256_hex(x.p, x.len, b.sha256);
	s3_req_init(&r, "POST", m->full);
	r.query[r.nquery++] = (struct s3_kv){ "uploadId", m->upload_id };
	r.body = &b;
	res = s3_request(c, &r);
	if (res == S3_OK && r.resp.p && memmem(r.resp.p, r.resp.len, "<Error>", 7) != NULL) {
		res = s3_fail(c, S3_TRANSIENT, "S3 failed to complete the upload of %s", m->full);
		log_info("s3: %s", s3_client_last_error(c));
	}
	s3_req_clear(&r);
	buf_free(&x);
	return res;
}

static void
mpu_abort(struct s3_client *c, struct mpu *m)
{
	char saved[1024];
	struct s3_req r;

	snprintf(saved, sizeof saved, "%s", s3_client_last_error(c));
	s3_req_init(&r, "DELETE", m->full);
	r.query[r.nquery++] = (struct s3_kv){ "uploadId", m->upload_id };
	if (s3_request(c, &r) != S3_OK)
		log_warnx("s3: could not abort the multipart upload of %s", m->full);
	s3_req_clear(&r);
	s3_fail(c, S3_OK, "%s", saved); /* the caller wants the first failure */
}

enum s3_result
s3_multipart_put(struct s3_client *c, const char *key, int fd, uint64_t size)
{
	struct mpu m = { 0 };
	enum s3_result res;
	char *full = s3_full_key(c, key);

	m.full = full;
	m.part_size = s3_client_settings(c)->part_size;
	while ((size + m.part_size - 1) / m.part_size > MAX_PARTS)
		m.part_size *= 2;
	m.nparts = (size_t)((size + m.part_size - 1) / m.part_size);
	m.etags = xcalloc(m.nparts, sizeof *m.etags);
	res = mpu_create(c, &m);
	for (size_t i = 0; res == S3_OK && i < m.nparts; i++)
		res = mpu_part(c, &m, i, fd, size);
	if (res == S3_OK)
		res = mpu_complete(c, &m);
	if (res != S3_OK && m.upload_id != NULL)
		mpu_abort(c, &m);
	for (size_t i = 0; i < m.nparts; i++)
		free(m.etags[i]);
	free(m.etags);
	free(m.upload_id);
	free(full);
	return res;
}
