#include "store/codec.h"

#include <string.h>

static uint64_t be(const unsigned char *p, int len);
static int check_obj(const unsigned char *d, size_t n, size_t *pos, int depth);

void
codec_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void
codec_pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, p, n);
}

void
codec_pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	codec_pack_str(pk, k);
	if (v == NULL)
		msgpack_pack_nil(pk);
	else
		codec_pack_str(pk, v);
}

void
codec_pack_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	codec_pack_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

void
codec_pack_kv_bin(msgpack_packer *pk, const char *k, const void *p, size_t n)
{
	codec_pack_str(pk, k);
	codec_pack_bin(pk, p, n);
}

const msgpack_object *
codec_map_get(const msgpack_object *obj, const char *key)
{
	size_t klen = strlen(key);

	if (obj == NULL || obj->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < obj->via.map.size; i++) {
		const msgpack_object_kv *kv = &obj->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == klen &&
		    memcmp(kv->key.via.str.ptr, key, klen) == 0)
			return &kv->val;
	}
	return NULL;
}

char *
codec_obj_str(const msgpack_object *o)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return NULL;
	return xstrndup(o->via.str.ptr, o->via.str.size);
}

int
codec_obj_fixed(const msgpack_object *o, void *out, size_t n)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n)
		return -1;
	memcpy(out, o->via.bin.ptr, n);
	return 0;
}

int
codec_get_str(const msgpack_object *map, const char *key, char **out)
{
	*out = codec_obj_str(codec_map_get(map, key));
	return *out ? 0 : -1;
}

int
codec_get_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
	const msgpack_object *o = codec_map_get(map, key);

	if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*out = o->via.u64;
	return 0;
}

int
codec_get_bin(const msgpack_object *map, const char *key, struct buf *out)
{
	const msgpack_object *o = codec_map_get(map, key);

	if (o == NULL || o->type != MSGPACK_OBJECT_BIN)
		return -1;
	buf_add(out, o->via.bin.ptr, o->via.bin.size);
	return 0;
}

int
codec_get_fixed(const msgpack_object *map, const char *key, void *out, size_t n)
{
	return codec_obj_fixed(codec_map_get(map, key), out, n);
}

/* Reads a big-endian unsigned of len bytes at p. */
static uint64_t
be(const unsigned char *p, int len)
{
	uint64_t v = 0;

	for (int i = 0; i < len; i++)
		v = v << 8 | p[i];
	return v;
}

/* Skips one object at *pos; containers are checked against bytes left. */
static int
check_obj(const unsigned char *d, size_t n, size_t *pos, int depth)
{
	unsigned char t;
	uint64_t count = 0, len = 0;
	int kids = 0; /* 1: array, 2: map */
	size_t p = *pos;

	if (depth > 32 || p >= n)
		return -1;
	t = d[p++];
	if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
		/* fixint, nil, bool */
	} else if (t >= 0x80 && t <= 0x8f) {
		count = t & 0x0f, kids = 2;
	} else if (t >= 0x90 && t <= 0x9f) {
		count = t & 0x0f, kids = 1;
	} else if (t >= 0xa0 && t <= 0xbf) {
		len = t & 0x1f;
	} else {
		static const struct {
			unsigned char t;
			int lenbytes;
			int fixed;
			int kind;
		} tab[] = {
			{ 0xc4, 1, 0, 0 }, { 0xc5, 2, 0, 0 }, { 0xc6, 4, 0, 0 }, /* bin */
			{ 0xc7, 1, 1, 0 }, { 0xc8, 2, 1, 0 }, { 0xc9, 4, 1, 0 }, /* ext */
			{ 0xca, 0, 4, 0 }, { 0xcb, 0, 8, 0 },                    /* float */
			{ 0xcc, 0, 1, 0 }, { 0xcd, 0, 2, 0 }, { 0xce, 0, 4, 0 }, { 0xcf, 0, 8, 0 },
			{ 0xd0, 0, 1, 0 }, { 0xd1, 0, 2, 0 }, { 0xd2, 0, 4, 0 }, { 0xd3, 0, 8, 0 },
			{ 0xd4, 0, 2, 0 }, { 0xd5, 0, 3, 0 }, { 0xd6, 0, 5, 0 }, { 0xd7, 0, 9, 0 },
			{ 0xd8, 0, 17, 0 },                                      /* fixext */
			{ 0xd9, 1, 0, 0 }, { 0xda, 2, 0, 0 }, { 0xdb, 4, 0, 0 }, /* str */
			{ 0xdc, 2, 0, 1 }, { 0xdd, 4, 0, 1 },                    /* array */
			{ 0xde, 2, 0, 2 }, { 0xdf, 4, 0, 2 },                    /* map */
		};
		size_t i;

		for (i = 0; i < sizeof tab / sizeof tab[0]; i++)
			if (tab[i].t == t)
				break;
		if (i == sizeof tab / sizeof tab[0])
			return -1;
		if (n - p < (size_t)tab[i].lenbytes)
			return -1;
		if (tab[i].kind) {
			count = be(d + p, tab[i].lenbytes);
			kids = tab[i].kind;
		} else {
			len = tab[i].lenbytes ? be(d + p, tab[i].lenbytes) : 0;
			len += (uint64_t)tab[i].fixed;
		}
		p += (size_t)tab[i].lenbytes;
	}
	if (len > n - p)
		return -1;
	p += len;
	if (kids == 2)
		count *= 2;
	if (count > n - p)
		return -1;
	for (uint64_t i = 0; i < count; i++)
		if (check_obj(d, n, &p, depth + 1) < 0)
			return -1;
	*pos = p;
	return 0;
}

int
codec_check(const char *data, size_t n)
{
	size_t pos = 0;

	if (check_obj((const unsigned char *)data, n, &pos, 0) < 0)
		return -1;
	return pos == n ? 0 : -1;
}

int
codec_unpack(const char *data, size_t n, msgpack_zone *zone, msgpack_object *obj)
{
	size_t off = 0;

	if (codec_check(data, n) < 0)
		return -1;
	if (msgpack_unpack(data, n, &off, zone, obj) != MSGPACK_UNPACK_SUCCESS)
		return -1;
	return 0;
}
