#include "store/journal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/util.h"
#include "store/codec.h"

static const char *const type_names[] = { "?", "hit", "miss", "pass", "error", "corrupt",
	"remote_hit", "rejected", "import" };

static int sbuf_write(void *data, const char *p, size_t n);
static int decode_event(const char *d, size_t n, struct journal_event *ev);
static void get_fixed_str(const msgpack_object *m, const char *k, char *out, size_t outlen);

const char *
journal_type_name(enum journal_type t)
{
	if ((int)t < 1 || (size_t)t >= sizeof type_names / sizeof type_names[0])
		return "?";
	return type_names[t];
}

int
journal_ws_valid(const char *s)
{
	return strlen(s) == JOURNAL_WS_LEN && strspn(s, "0123456789abcdef") == JOURNAL_WS_LEN;
}

int
journal_import_is_prefetch(const char *reason)
{
	size_t pn = strlen(JOURNAL_IMPORT_PREFETCH);

	return strncmp(reason, JOURNAL_IMPORT_PREFETCH, pn) == 0 &&
	    (reason[pn] == '\0' || reason[pn] == '/');
}

int
journal_version_valid(const char *s)
{
	static const char ok[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-";
	size_t n = strlen(s);

	return n > 0 && n <= JOURNAL_VERSION_MAX && strspn(s, ok) == n;
}

static int
sbuf_write(void *data, const char *p, size_t n)
{
	buf_add(data, p, n);
	return 0;
}

const char *
journal_lang(const struct journal_event *ev)
{
	return ev->lang[0] ? ev->lang : "rust";
}

int
journal_append(const char *store_dir, const struct journal_event *ev)
{
	msgpack_packer pk;
	struct buf b;
	char *path;
	int fd, rc = -1;
	uint32_t len;

	buf_init(&b);
	buf_add(&b, "\0\0\0\0", 4);
	msgpack_packer_init(&pk, &b, sbuf_write);
	msgpack_pack_map(&pk,
	    8 + ev->has_inv + ev->has_res + (ev->ws[0] != '\0') + (ev->version[0] != '\0') +
	        (ev->lang[0] != '\0') + (ev->local_only != 0));
	codec_pack_kv_u64(&pk, "v", JOURNAL_FORMAT);
	codec_pack_kv_u64(&pk, "t", (uint64_t)ev->type);
	codec_pack_kv_u64(&pk, "ts", (uint64_t)(ev->ts_ms ? ev->ts_ms : clock_wall_ms()));
	codec_pack_kv_str(&pk, "crate", ev->crate);
	codec_pack_kv_str(&pk, "reason", ev->reason);
	if (ev->has_inv)
		codec_pack_kv_bin(&pk, "inv", ev->inv, HASH_LEN);
	if (ev->has_res)
		codec_pack_kv_bin(&pk, "res", ev->res, HASH_LEN);
	codec_pack_kv_u64(&pk, "ms", ev->ms);
	codec_pack_kv_u64(&pk, "bytes", ev->bytes);
	codec_pack_kv_u64(&pk, "us", ev->us);
	if (ev->ws[0] != '\0')
		codec_pack_kv_str(&pk, "ws", ev->ws);
	if (ev->version[0] != '\0')
		codec_pack_kv_str(&pk, "ver", ev->version);
	if (ev->lang[0] != '\0')
		codec_pack_kv_str(&pk, "lang", ev->lang);
	if (ev->local_only)
		codec_pack_kv_u64(&pk, "local", 1);
	len = (uint32_t)(b.len - 4);
	b.p[0] = (char)(len >> 24);
	b.p[1] = (char)(len >> 16);
	b.p[2] = (char)(len >> 8);
	b.p[3] = (char)len;
	path = xasprintf("%s/journal/events", store_dir);
	fd = fs_open_regular(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd >= 0) {
		rc = write(fd, b.p, b.len) == (ssize_t)b.len ? 0 : -1;
		close(fd);
	}
	free(path);
	buf_free(&b);
	return rc;
}

/* Copies a string field into a fixed array; absent is "". */
static void
get_fixed_str(const msgpack_object *m, const char *k, char *out, size_t outlen)
{
	const msgpack_object *o = codec_map_get(m, k);
	size_t n;

	out[0] = '\0';
	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		return;
	n = o->via.str.size < outlen - 1 ? o->via.str.size : outlen - 1;
	memcpy(out, o->via.str.ptr, n);
	out[n] = '\0';
}

static int
decode_event(const char *d, size_t n, struct journal_event *ev)
{
	msgpack_zone zone;
	msgpack_object root;
	uint64_t v, t, ts, local;
	char ws[JOURNAL_WS_LEN + 2], ver[JOURNAL_VERSION_MAX + 2], lang[sizeof ev->lang + 1];
	int rc = -1;

	memset(ev, 0, sizeof *ev);
	msgpack_zone_init(&zone, 1024);
	if (codec_unpack(d, n, &zone, &root) < 0 || codec_get_u64(&root, "v", &v) < 0 ||
	    v != JOURNAL_FORMAT || codec_get_u64(&root, "t", &t) < 0 || t < 1 ||
	    t > JOURNAL_IMPORT || codec_get_u64(&root, "ts", &ts) < 0)
		goto out;
	ev->type = (enum journal_type)t;
	ev->ts_ms = (int64_t)ts;
	get_fixed_str(&root, "crate", ev->crate, sizeof ev->crate);
	get_fixed_str(&root, "reason", ev->reason, sizeof ev->reason);
	ev->has_inv = codec_get_fixed(&root, "inv", ev->inv, HASH_LEN) == 0;
	ev->has_res = codec_get_fixed(&root, "res", ev->res, HASH_LEN) == 0;
	codec_get_u64(&root, "ms", &ev->ms);
	codec_get_u64(&root, "bytes", &ev->bytes);
	codec_get_u64(&root, "us", &ev->us);
	/* one byte more than an id holds, so that a longer string is refused */
	get_fixed_str(&root, "ws", ws, sizeof ws);
	if (journal_ws_valid(ws))
		memcpy(ev->ws, ws, sizeof ev->ws);
	get_fixed_str(&root, "ver", ver, sizeof ver);
	if (journal_version_valid(ver))
		memcpy(ev->version, ver, sizeof ev->version);
	get_fixed_str(&root, "lang", lang, sizeof lang); /* one of three, else rustc's */
	if (strcmp(lang, "c") == 0 || strcmp(lang, "c++") == 0 || strcmp(lang, "asm") == 0)
		memcpy(ev->lang, lang, sizeof ev->lang);
	ev->local_only = codec_get_u64(&root, "local", &local) == 0 && local == 1;
	rc = 0;
out:
	msgpack_zone_destroy(&zone);
	return rc;
}

size_t
journal_parse(const char *data, size_t n, void (*fn)(const struct journal_event *, void *),
    void *arg)
{
	size_t pos = 0;
	struct journal_event ev;

	while (n - pos >= 4) {
		const unsigned char *p = (const unsigned char *)data + pos;
		uint32_t len =
		    (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];

		if (len > JOURNAL_MAX_RECORD) {
			/* Not a record boundary: the file is damaged. Skip the rest. */
			return n;
		}
		if (n - pos - 4 < len)
			break;
		if (decode_event(data + pos + 4, len, &ev) == 0)
			fn(&ev, arg);
		pos += 4 + len;
	}
	return pos;
}
