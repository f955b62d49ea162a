#include "remote/layout.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "common/fs.h"
#include "common/log.h"
#include "store/codec.h"
#include "store/pack.h"

static int sbuf_write(void *data, const char *p, size_t n);

static int
sbuf_write(void *data, const char *p, size_t n)
{
	buf_add(data, p, n);
	return 0;
}

char *
layout_pack_name(const char *crate, const char *res_hex)
{
	return xasprintf("packs/%s/%s.pack", crate, res_hex);
}

char *
layout_manifest_name(const char *inv_hex)
{
	return xasprintf("manifests/%s", inv_hex);
}

int
layout_manifest_decode(const char *data, size_t n, struct layout_manifest *m)
{
	msgpack_zone zone;
	msgpack_object root;
	const msgpack_object *rs;
	uint64_t v;
	int rc = -1;

	m->n = 0;
	msgpack_zone_init(&zone, 1024);
	if (codec_unpack(data, n, &zone, &root) < 0 || codec_get_u64(&root, "v", &v) < 0 ||
	    v != 1 || (rs = codec_map_get(&root, "results")) == NULL ||
	    rs->type != MSGPACK_OBJECT_ARRAY)
		goto out;
	for (uint32_t i = 0; i < rs->via.array.size && m->n < LAYOUT_MAX_RESULTS; i++) {
		const msgpack_object *pair = &rs->via.array.ptr[i];
		char *crate, *res;
		int ok;

		if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2)
			goto out;
		crate = codec_obj_str(&pair->via.array.ptr[0]);
		res = codec_obj_str(&pair->via.array.ptr[1]);
		ok = crate && res && pack_crate_name_ok(crate) && hash_hex_valid(res);
		if (ok) {
			snprintf(m->r[m->n].crate, sizeof m->r[m->n].crate, "%s", crate);
			snprintf(m->r[m->n].res, sizeof m->r[m->n].res, "%s", res);
			m->n++;
		}
		free(crate);
		free(res);
		if (!ok)
			goto out;
	}
	rc = 0;
out:
	msgpack_zone_destroy(&zone);
	return rc;
}

void
layout_manifest_encode(const struct layout_manifest *m, struct buf *out)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, sbuf_write);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_u64(&pk, "v", 1);
	codec_pack_str(&pk, "results");
	msgpack_pack_array(&pk, m->n);
	for (size_t i = 0; i < m->n; i++) {
		msgpack_pack_array(&pk, 2);
		codec_pack_str(&pk, m->r[i].crate);
		codec_pack_str(&pk, m->r[i].res);
	}
}

void
layout_manifest_add(struct layout_manifest *m, const char *crate, const char *res_hex)
{
	struct layout_manifest old = *m;

	m->n = 0;
	snprintf(m->r[0].crate, sizeof m->r[0].crate, "%s", crate);
	snprintf(m->r[0].res, sizeof m->r[0].res, "%s", res_hex);
	m->n = 1;
	for (size_t i = 0; i < old.n && m->n < LAYOUT_MAX_RESULTS; i++)
		if (strcmp(old.r[i].res, res_hex) != 0)
			m->r[m->n++] = old.r[i];
}

void
layout_manifest_update(const char *old, size_t n, const char *inv, const char *crate,
    const char *res, struct buf *b)
{
	struct layout_manifest m = { .n = 0 };

	if (old != NULL && layout_manifest_decode(old, n, &m) < 0) {
		log_warnx("remote: manifest %s is damaged; replacing it", inv);
		m.n = 0;
	}
	layout_manifest_add(&m, crate, res);
	buf_reset(b);
	layout_manifest_encode(&m, b);
}

int
layout_intent_inv(const char *kache_dir, const char *res_hex, char inv_hex[HASH_HEX_LEN + 1])
{
	char *p;
	struct buf b;
	int rc = -1;

	if (!hash_hex_valid(res_hex))
		return -1;
	p = xasprintf("%s/intents/%s", kache_dir, res_hex);
	buf_init(&b);
	if (fs_read_file(p, &b, 256) == 0 && b.len == HASH_HEX_LEN) {
		memcpy(inv_hex, b.p, HASH_HEX_LEN);
		inv_hex[HASH_HEX_LEN] = '\0';
		rc = hash_hex_valid(inv_hex) ? 0 : -1;
	}
	buf_free(&b);
	free(p);
	return rc;
}
