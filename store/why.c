#include "store/why.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"
#include "store/codec.h"

static const char *const kind_names[] = { "?", "compiler", "arg", "env", "extern", "native",
	"source", "envdep", "workspace", "target", "cargo_home", "host_cpu" };

static int sbuf_write(void *data, const char *p, size_t n);
static void encode(const struct why_rec *r, struct buf *b);
static int decode_part(const msgpack_object *o, struct why_rec *r);
static size_t frame_walk(const char *d, size_t n, struct why_rec **out, size_t *cnt);
static int trim_file(const char *path);

const char *
why_kind_name(enum why_kind k)
{
	if ((int)k < 1 || k >= WHY_KIND_MAX)
		return "?";
	return kind_names[k];
}

int
why_crate_valid(const char *crate)
{
	size_t n = strlen(crate);

	return n >= 1 && n <= 64 &&
	    strspn(crate, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

void
why_rec_init(struct why_rec *r)
{
	memset(r, 0, sizeof *r);
}

void
why_rec_clear(struct why_rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->parts[i].name);
	free(r->parts);
	why_rec_init(r);
}

void
why_rec_add(struct why_rec *r, enum why_kind k, const char *name,
    const unsigned char digest[HASH_LEN])
{
	struct why_part *p;

	if (r->n >= WHY_MAX_PARTS)
		return;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 32;
		r->parts = xrealloc(r->parts, r->cap * sizeof *r->parts);
	}
	p = &r->parts[r->n++];
	p->kind = k;
	p->name = xstrndup(name ? name : "", WHY_MAX_NAME);
	memcpy(p->digest, digest, HASH_LEN);
}

int
why_part_same(const struct why_part *a, const struct why_part *b)
{
	if (a->kind != b->kind)
		return 0;
	if (a->kind == WHY_COMPILER || a->kind >= WHY_ROOT_WS)
		return 1;
	return strcmp(a->name, b->name) == 0;
}

static int
sbuf_write(void *data, const char *p, size_t n)
{
	buf_add(data, p, n);
	return 0;
}

/* The framed record: length, then the map. */
static void
encode(const struct why_rec *r, struct buf *b)
{
	msgpack_packer pk;
	uint32_t len;

	buf_add(b, "\0\0\0\0", 4);
	msgpack_packer_init(&pk, b, sbuf_write);
	msgpack_pack_map(&pk, 5);
	codec_pack_kv_u64(&pk, "v", WHY_FORMAT);
	codec_pack_kv_u64(&pk, "ts", (uint64_t)(r->ts_ms ? r->ts_ms : clock_wall_ms()));
	codec_pack_kv_str(&pk, "crate", r->crate);
	codec_pack_kv_bin(&pk, "inv", r->inv, HASH_LEN);
	codec_pack_str(&pk, "parts");
	msgpack_pack_array(&pk, r->n);
	for (size_t i = 0; i < r->n; i++) {
		msgpack_pack_array(&pk, 3);
		codec_pack_str(&pk, why_kind_name(r->parts[i].kind));
		codec_pack_str(&pk, r->parts[i].name);
		codec_pack_bin(&pk, r->parts[i].digest, HASH_LEN);
	}
	len = (uint32_t)(b->len - 4);
	b->p[0] = (char)(len >> 24);
	b->p[1] = (char)(len >> 16);
	b->p[2] = (char)(len >> 8);
	b->p[3] = (char)len;
}

/* Keeps the newest records that fit in half of WHY_FILE_MAX (temp + rename). A
 * record appended by another miss meanwhile may be lost: these are hints. */
static int
trim_file(const char *path)
{
	struct buf b;
	size_t pos = 0, keep;
	int rc = -1;

	buf_init(&b);
	if (fs_read_file(path, &b, 4 * (size_t)WHY_FILE_MAX) == 0) {
		while (b.len - pos >= 4) {
			const unsigned char *p = (const unsigned char *)b.p + pos;
			size_t len =
			    (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];

			if (len > WHY_MAX_RECORD || b.len - pos - 4 < len)
				break;
			if (b.len - pos <= WHY_FILE_MAX / 2)
				break;
			pos += 4 + len;
		}
		keep = pos <= b.len ? b.len - pos : 0;
		rc = fs_write_atomic(path, b.p + pos, keep, 0600);
	}
	buf_free(&b);
	return rc;
}

int
why_append(const char *store_dir, const struct why_rec *r)
{
	char *dir = xasprintf("%s/%s", store_dir, WHY_DIR), *path = NULL;
	struct stat st;
	struct buf b;
	int fd, rc = -1;

	buf_init(&b);
	if (!why_crate_valid(r->crate) || fs_mkdir_p(dir, 0700) < 0)
		goto out;
	path = xasprintf("%s/%s", dir, r->crate);
	if (stat(path, &st) == 0 && (uint64_t)st.st_size > WHY_FILE_MAX)
		trim_file(path);
	encode(r, &b);
	if (b.len - 4 > WHY_MAX_RECORD)
		goto out;
	fd = fs_open_regular(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd >= 0) {
		rc = write(fd, b.p, b.len) == (ssize_t)b.len ? 0 : -1;
		close(fd);
	}
out:
	if (rc < 0)
		log_warnx("cannot record why %s missed", r->crate);
	free(dir);
	free(path);
	buf_free(&b);
	return rc;
}

/* One [kind, name, digest] triple, checked. 0 / -1. */
static int
decode_part(const msgpack_object *o, struct why_rec *r)
{
	const msgpack_object *e;
	unsigned char d[HASH_LEN];
	char *kind, *name;
	int k;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3)
		return -1;
	e = o->via.array.ptr;
	if (e[0].type != MSGPACK_OBJECT_STR || e[1].type != MSGPACK_OBJECT_STR ||
	    e[1].via.str.size > WHY_MAX_NAME || codec_obj_fixed(&e[2], d, HASH_LEN) < 0)
		return -1;
	if ((kind = codec_obj_str(&e[0])) == NULL)
		return -1;
	for (k = 1; k < WHY_KIND_MAX && strcmp(kind, kind_names[k]) != 0; k++)
		;
	free(kind);
	if (k == WHY_KIND_MAX || (name = codec_obj_str(&e[1])) == NULL)
		return -1;
	why_rec_add(r, (enum why_kind)k, name, d);
	free(name);
	return 0;
}

int
why_decode(const char *d, size_t n, struct why_rec *r)
{
	msgpack_zone zone;
	msgpack_object root;
	const msgpack_object *parts;
	uint64_t v, ts;
	char *crate = NULL;
	int rc = -1;

	why_rec_init(r);
	msgpack_zone_init(&zone, 4096);
	if (codec_unpack(d, n, &zone, &root) < 0 || codec_get_u64(&root, "v", &v) < 0 ||
	    v != WHY_FORMAT || codec_get_u64(&root, "ts", &ts) < 0 ||
	    codec_get_str(&root, "crate", &crate) < 0 || !why_crate_valid(crate) ||
	    codec_get_fixed(&root, "inv", r->inv, HASH_LEN) < 0 ||
	    (parts = codec_map_get(&root, "parts")) == NULL ||
	    parts->type != MSGPACK_OBJECT_ARRAY || parts->via.array.size > WHY_MAX_PARTS)
		goto out;
	r->ts_ms = (int64_t)ts;
	snprintf(r->crate, sizeof r->crate, "%s", crate);
	rc = 0;
	for (uint32_t i = 0; i < parts->via.array.size && rc == 0; i++)
		rc = decode_part(&parts->via.array.ptr[i], r);
out:
	if (rc < 0)
		why_rec_clear(r);
	free(crate);
	msgpack_zone_destroy(&zone);
	return rc;
}

/* Decodes the framed records in d[0..n) onto *out. */
static size_t
frame_walk(const char *d, size_t n, struct why_rec **out, size_t *cnt)
{
	size_t pos = 0;

	while (n - pos >= 4) {
		const unsigned char *p = (const unsigned char *)d + pos;
		size_t len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
		struct why_rec r;

		if (len > WHY_MAX_RECORD || n - pos - 4 < len)
			break;
		if (why_decode(d + pos + 4, len, &r) == 0) {
			*out = xrealloc(*out, (*cnt + 1) * sizeof **out);
			(*out)[(*cnt)++] = r;
		}
		pos += 4 + len;
	}
	return pos;
}

int
why_load(const char *store_dir, const char *crate, struct why_rec **out, size_t *n)
{
	char *path;
	struct buf b;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!why_crate_valid(crate))
		return -1;
	path = xasprintf("%s/%s/%s", store_dir, WHY_DIR, crate);
	buf_init(&b);
	if (access(path, F_OK) == 0) {
		rc = fs_read_file(path, &b, 4 * (size_t)WHY_FILE_MAX);
		if (rc == 0)
			frame_walk(b.p ? b.p : "", b.len, out, n);
		else
			log_warnx("cannot read %s", path);
	}
	buf_free(&b);
	free(path);
	return rc;
}
