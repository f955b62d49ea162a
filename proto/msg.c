/* Encoding and decoding of the catalogue in msg.h with msgpack-c. */
#include "proto/msg.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

enum field {
	F_END = 0,
	F_ROLE,
	F_INDEX,
	F_PID,
	F_KEY,
	F_EPOCH,
	F_DEADLINE,
	F_STATUS,
	F_COUNT,
	F_TEXT,
	F_TOTAL,
	F_PHASE
};

#define MAX_FIELDS 4
#define HEADER_FIELDS 3 /* version, type, id */

struct msg_def {
	const char *name;
	enum field fields[MAX_FIELDS + 1];
	/* Optional: what the fields must satisfy beyond their types; 0 when they do. */
	int (*check)(const struct msg *m);
};

static int check_progress(const struct msg *m);

static const struct msg_def defs[MSG_TYPE_MAX] = {
	[MSG_READY] = { "READY", { F_ROLE, F_INDEX, F_PID }, NULL },
	[MSG_HEARTBEAT] = { "HEARTBEAT", { F_END }, NULL },
	[MSG_SHUTDOWN] = { "SHUTDOWN", { F_END }, NULL },
	[MSG_JOB_UPLOAD] = { "JOB_UPLOAD", { F_KEY }, NULL },
	[MSG_JOB_FETCH] = { "JOB_FETCH", { F_KEY, F_DEADLINE }, NULL },
	[MSG_JOB_DONE] = { "JOB_DONE", { F_STATUS, F_TEXT }, NULL },
	[MSG_PING] = { "PING", { F_EPOCH }, NULL },
	[MSG_FETCH] = { "FETCH", { F_KEY, F_EPOCH, F_DEADLINE }, NULL },
	[MSG_NOTIFY_UPLOAD] = { "NOTIFY_UPLOAD", { F_KEY, F_EPOCH }, NULL },
	[MSG_STATUS] = { "STATUS", { F_END }, NULL },
	[MSG_STOP] = { "STOP", { F_END }, NULL },
	[MSG_SCALE] = { "SCALE", { F_ROLE, F_COUNT }, NULL },
	[MSG_INDEX_STATS] = { "INDEX_STATS", { F_END }, NULL },
	[MSG_INDEX_LIST] = { "INDEX_LIST", { F_TEXT, F_COUNT }, NULL },
	[MSG_INDEX_GC] = { "INDEX_GC", { F_COUNT, F_STATUS, F_TOTAL }, NULL },
	[MSG_INDEX_VERIFY] = { "INDEX_VERIFY", { F_END }, NULL },
	[MSG_INDEX_PURGE] = { "INDEX_PURGE", { F_END }, NULL },
	[MSG_INDEX_ZERO] = { "INDEX_ZERO", { F_END }, NULL },
	[MSG_OK] = { "OK", { F_TEXT }, NULL },
	[MSG_ERROR] = { "ERROR", { F_STATUS, F_TEXT }, NULL },
	[MSG_FETCH_REPLY] = { "FETCH_REPLY", { F_STATUS }, NULL },
	[MSG_STATUS_REPLY] = { "STATUS_REPLY", { F_TEXT }, NULL },
	[MSG_INDEX_REPLY] = { "INDEX_REPLY", { F_TEXT }, NULL },
	[MSG_INDEX_PROGRESS] = { "INDEX_PROGRESS", { F_COUNT, F_TOTAL, F_PHASE }, check_progress },
	[MSG_PREFETCH_HINT] = { "PREFETCH_HINT", { F_KEY, F_TEXT }, NULL },
	[MSG_JOB_PREFETCH] = { "JOB_PREFETCH", { F_KEY, F_TEXT }, NULL },
	[MSG_EVENT] = { "EVENT", { F_STATUS, F_KEY }, NULL },
	[MSG_FLUSH] = { "FLUSH", { F_COUNT }, NULL },
	[MSG_FLUSH_REPLY] = { "FLUSH_REPLY", { F_STATUS, F_COUNT, F_TEXT }, NULL },
};

static const struct msg_def *def_of(uint32_t type);
static int nfields(const struct msg_def *d);
static int pack_field(msgpack_packer *pk, const struct msg *m, enum field f);
static int precheck(const unsigned char *p, size_t n);
static int scalar_size(const unsigned char *p, size_t n, size_t *len);
static int get_uint(const msgpack_object *o, uint64_t max, uint64_t *v);
static int get_int(const msgpack_object *o, int64_t *v);
static int get_str(const msgpack_object *o, char *dst, size_t cap);
static int unpack_field(const msgpack_object *o, struct msg *m, enum field f);
static enum msg_decode_result decode_object(const msgpack_object *root, struct msg *m);

void
msg_init(struct msg *m, enum msg_type type, uint64_t id)
{
	memset(m, 0, sizeof *m);
	m->version = PROTO_VERSION;
	m->type = (uint32_t)type;
	m->id = id;
}

void
msg_clear(struct msg *m)
{
	free(m->text);
	memset(m, 0, sizeof *m);
}

void
msg_set_text(struct msg *m, const char *s)
{
	free(m->text);
	m->text = xstrdup(s ? s : "");
}

/* Progress counts are never negative, never past a known total, and the
 * phase is a short word the CLI prints as is: lower-case letters and spaces. */
static int
check_progress(const struct msg *m)
{
	if (m->count < 0 || m->total < 0 || (m->total > 0 && m->count > m->total) ||
	    m->phase[0] == '\0')
		return -1;
	for (const char *p = m->phase; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == ' '))
			return -1;
	return 0;
}

static const struct msg_def *
def_of(uint32_t type)
{
	if (type >= MSG_TYPE_MAX || defs[type].name == NULL)
		return NULL;
	return &defs[type];
}

static int
nfields(const struct msg_def *d)
{
	int n = 0;

	while (n < MAX_FIELDS && d->fields[n] != F_END)
		n++;
	return n;
}

const char *
msg_type_name(uint32_t type)
{
	const struct msg_def *d = def_of(type);

	return d ? d->name : "?";
}

const char *
msg_decode_strerror(enum msg_decode_result r)
{
	switch (r) {
	case MSG_DECODE_OK: return "ok";
	case MSG_DECODE_MALFORMED: return "malformed message";
	case MSG_DECODE_TOO_BIG: return "message too large";
	case MSG_DECODE_VERSION: return "unsupported protocol version";
	case MSG_DECODE_UNKNOWN: return "unknown message type";
	}
	return "?";
}

static int
pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int
pack_field(msgpack_packer *pk, const struct msg *m, enum field f)
{
	switch (f) {
	case F_ROLE: return pack_str(pk, m->role);
	case F_INDEX: return msgpack_pack_uint32(pk, m->index);
	case F_PID: return msgpack_pack_int64(pk, m->pid);
	case F_KEY: return pack_str(pk, m->key);
	case F_EPOCH: return msgpack_pack_int64(pk, m->epoch);
	case F_DEADLINE: return msgpack_pack_int64(pk, m->deadline);
	case F_STATUS: return msgpack_pack_int64(pk, m->status);
	case F_COUNT: return msgpack_pack_int64(pk, m->count);
	case F_TEXT: return pack_str(pk, m->text ? m->text : "");
	case F_TOTAL: return msgpack_pack_int64(pk, m->total);
	case F_PHASE: return pack_str(pk, m->phase);
	case F_END: break;
	}
	return -1;
}

int
msg_encode(const struct msg *m, struct buf *out)
{
	const struct msg_def *d = def_of(m->type);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int n, rc = 0;

	if (d == NULL || (d->check != NULL && d->check(m) == -1))
		return -1;
	n = nfields(d);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rc |= msgpack_pack_array(&pk, (size_t)(HEADER_FIELDS + n));
	rc |= msgpack_pack_uint32(&pk, m->version);
	rc |= msgpack_pack_uint32(&pk, m->type);
	rc |= msgpack_pack_uint64(&pk, m->id);
	for (int i = 0; i < n; i++)
		rc |= pack_field(&pk, m, d->fields[i]);
	if (rc == 0 && sb.size <= MSG_MAX_SIZE)
		buf_add(out, sb.data, sb.size);
	else
		rc = -1;
	msgpack_sbuffer_destroy(&sb);
	return rc ? -1 : 0;
}

/* The encoded size of the scalar (or str/bin) starting at p, checked against
 * the n bytes present. Containers and extension types are refused: messages
 * are one flat array, so nothing nested is ever legitimate. */
static int
scalar_size(const unsigned char *p, size_t n, size_t *len)
{
	unsigned char c = p[0];
	size_t hdr, body = 0;

	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		hdr = 1;
	else if ((c & 0xe0) == 0xa0)
		hdr = 1, body = c & 0x1f;
	else if (c == 0xcc || c == 0xd0)
		hdr = 2;
	else if (c == 0xcd || c == 0xd1)
		hdr = 3;
	else if (c == 0xce || c == 0xd2 || c == 0xca)
		hdr = 5;
	else if (c == 0xcf || c == 0xd3 || c == 0xcb)
		hdr = 9;
	else if (c == 0xd9 || c == 0xc4)
		hdr = 2;
	else if (c == 0xda || c == 0xc5)
		hdr = 3;
	else if (c == 0xdb || c == 0xc6)
		hdr = 5;
	else
		return -1;
	if (hdr > n)
		return -1;
	if (c == 0xd9 || c == 0xc4)
		body = p[1];
	else if (c == 0xda || c == 0xc5)
		body = (size_t)p[1] << 8 | p[2];
	else if (c == 0xdb || c == 0xc6)
		body = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
	if (body > n - hdr)
		return -1;
	*len = hdr + body;
	return 0;
}

/* Walks the bytes before msgpack-c sees them: one array header whose count
 * is small, then exactly that many scalars, each within the bytes present,
 * and nothing after. So a header declaring 2^32 elements, or a string longer
 * than the frame, is refused before anything is allocated. */
static int
precheck(const unsigned char *p, size_t n)
{
	size_t count, off, len;

	if (n == 0)
		return -1;
	if ((p[0] & 0xf0) == 0x90) {
		count = p[0] & 0x0f;
		off = 1;
	} else if (p[0] == 0xdc && n >= 3) {
		count = (size_t)p[1] << 8 | p[2];
		off = 3;
	} else {
		return -1; /* array32, maps and anything else: not ours */
	}
	if (count < HEADER_FIELDS || count > HEADER_FIELDS + MAX_FIELDS)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (off >= n || scalar_size(p + off, n - off, &len) == -1)
			return -1;
		off += len;
	}
	return off == n ? 0 : -1;
}

static int
get_uint(const msgpack_object *o, uint64_t max, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return -1;
	*v = o->via.u64;
	return 0;
}

static int
get_int(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
		*v = (int64_t)o->via.u64;
	else
		return -1;
	return 0;
}

/* Copies a string of at most cap-1 bytes without NULs. */
static int
get_str(const msgpack_object *o, char *dst, size_t cap)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
		return -1;
	if (o->via.str.size == 0) { /* msgpack-c gives a NULL ptr here */
		dst[0] = '\0';
		return 0;
	}
	if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return -1;
	memcpy(dst, o->via.str.ptr, o->via.str.size);
	dst[o->via.str.size] = '\0';
	return 0;
}

static int
unpack_field(const msgpack_object *o, struct msg *m, enum field f)
{
	uint64_t u;

	switch (f) {
	case F_ROLE: return get_str(o, m->role, sizeof m->role);
	case F_INDEX:
		if (get_uint(o, UINT32_MAX, &u) == -1)
			return -1;
		m->index = (uint32_t)u;
		return 0;
	case F_PID: return get_int(o, &m->pid);
	case F_KEY: return get_str(o, m->key, sizeof m->key);
	case F_EPOCH: return get_int(o, &m->epoch);
	case F_DEADLINE: return get_int(o, &m->deadline);
	case F_STATUS: return get_int(o, &m->status);
	case F_COUNT: return get_int(o, &m->count);
	case F_TEXT:
		if (o->type != MSGPACK_OBJECT_STR)
			return -1;
		/* msgpack-c gives a NULL ptr for an empty string */
		m->text = o->via.str.size ? xstrndup(o->via.str.ptr, o->via.str.size) : xstrdup("");
		return 0;
	case F_TOTAL: return get_int(o, &m->total);
	case F_PHASE: return get_str(o, m->phase, sizeof m->phase);
	case F_END: break;
	}
	return -1;
}

static enum msg_decode_result
decode_object(const msgpack_object *root, struct msg *m)
{
	const msgpack_object *a = root->via.array.ptr;
	const struct msg_def *d;
	uint64_t v, t, id;
	int n;

	if (get_uint(&a[0], UINT32_MAX, &v) == -1 || get_uint(&a[1], UINT32_MAX, &t) == -1 ||
	    get_uint(&a[2], UINT64_MAX, &id) == -1)
		return MSG_DECODE_MALFORMED;
	m->version = (uint32_t)v;
	m->type = (uint32_t)t;
	m->id = id;
	if (v != PROTO_VERSION)
		return MSG_DECODE_VERSION;
	if ((d = def_of(m->type)) == NULL)
		return MSG_DECODE_UNKNOWN;
	n = nfields(d);
	if (root->via.array.size != (uint32_t)(HEADER_FIELDS + n))
		return MSG_DECODE_MALFORMED;
	for (int i = 0; i < n; i++)
		if (unpack_field(&a[HEADER_FIELDS + i], m, d->fields[i]) == -1)
			return MSG_DECODE_MALFORMED;
	if (d->check != NULL && d->check(m) == -1)
		return MSG_DECODE_MALFORMED;
	return MSG_DECODE_OK;
}

enum msg_decode_result
msg_decode(const void *data, size_t n, struct msg *m)
{
	msgpack_unpacked up;
	enum msg_decode_result r;
	size_t off = 0;
	uint32_t type;
	uint64_t id;

	memset(m, 0, sizeof *m);
	if (n > MSG_MAX_SIZE)
		return MSG_DECODE_TOO_BIG;
	if (precheck(data, n) == -1)
		return MSG_DECODE_MALFORMED;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, data, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n ||
	    up.data.type != MSGPACK_OBJECT_ARRAY) {
		msgpack_unpacked_destroy(&up);
		return MSG_DECODE_MALFORMED;
	}
	r = decode_object(&up.data, m);
	msgpack_unpacked_destroy(&up);
	if (r != MSG_DECODE_OK) {
		type = m->type;
		id = m->id;
		msg_clear(m);
		if (r == MSG_DECODE_VERSION || r == MSG_DECODE_UNKNOWN)
			m->type = type, m->id = id;
	}
	return r;
}
