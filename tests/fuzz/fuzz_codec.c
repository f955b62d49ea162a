/* libFuzzer target: the msgpack walker every store record, journal record and
 * pack goes through before msgpack-c allocates (store/codec.c), and the typed
 * getters over what it accepts. */
#include <stdint.h>
#include <stdlib.h>

#include "store/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

static void probe(const msgpack_object *root);

/* Every getter on every key a record uses: none may read out of bounds. */
static void
probe(const msgpack_object *root)
{
	static const char *const keys[] = { "v", "crate", "outputs", "name", "hash", "size", "mode",
		"depinfo", "out", "err", "ms", "t", "inv", "res", "sum", "blobs" };
	unsigned char fixed[32];
	struct buf b;
	uint64_t u;
	char *s;

	buf_init(&b);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const msgpack_object *o = codec_map_get(root, keys[i]);

		if (codec_get_str(root, keys[i], &s) == 0)
			free(s);
		(void)codec_get_u64(root, keys[i], &u);
		(void)codec_get_bin(root, keys[i], &b);
		(void)codec_get_fixed(root, keys[i], fixed, sizeof fixed);
		if (o != NULL) {
			free(codec_obj_str(o));
			(void)codec_obj_fixed(o, fixed, sizeof fixed);
		}
	}
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	msgpack_zone zone;
	msgpack_object root;

	msgpack_zone_init(&zone, 1024);
	if (codec_unpack((const char *)data, n, &zone, &root) == 0)
		probe(&root);
	msgpack_zone_destroy(&zone);
	return 0;
}
