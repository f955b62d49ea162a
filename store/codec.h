/* Small msgpack helpers for store records: maps keyed by short strings, decoded
 * with every type and size checked before use. */
#ifndef KACHE_STORE_CODEC_H
#define KACHE_STORE_CODEC_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

void codec_pack_str(msgpack_packer *pk, const char *s);
void codec_pack_bin(msgpack_packer *pk, const void *p, size_t n);
void codec_pack_kv_str(msgpack_packer *pk, const char *k, const char *v);
void codec_pack_kv_u64(msgpack_packer *pk, const char *k, uint64_t v);
void codec_pack_kv_bin(msgpack_packer *pk, const char *k, const void *p, size_t n);

/* Looks up key in a map object; NULL when absent or obj is not a map. */
const msgpack_object *codec_map_get(const msgpack_object *obj, const char *key);
/* Typed getters: 0 on success, -1 when absent or of the wrong type/size. */
int codec_get_str(const msgpack_object *map, const char *key, char **out);
int codec_get_u64(const msgpack_object *map, const char *key, uint64_t *out);
int codec_get_bin(const msgpack_object *map, const char *key, struct buf *out);
int codec_get_fixed(const msgpack_object *map, const char *key, void *out, size_t n);
char *codec_obj_str(const msgpack_object *o);
int codec_obj_fixed(const msgpack_object *o, void *out, size_t n);

/* Walks msgpack bytes without allocating and checks that every container's
 * declared element count fits in the bytes present and nesting stays shallow, so
 * a hostile "array of 2^32 elements" is refused before msgpack-c allocates.
 * 0 when data holds exactly one well-formed object. */
int codec_check(const char *data, size_t n);
/* codec_check, then unpack into zone-backed obj. 0 / -1. */
int codec_unpack(const char *data, size_t n, msgpack_zone *zone, msgpack_object *obj);
#endif
