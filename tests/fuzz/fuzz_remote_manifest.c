/* libFuzzer target: a remote's manifest object (remote/layout.c), written by
 * any machine sharing the remote. Names that decode must be safe, and an
 * update over any bytes must produce a manifest that decodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remote/layout.h"
#include "store/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static const char res[] =
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	struct layout_manifest m;
	struct buf b;

	if (layout_manifest_decode((const char *)data, n, &m) == 0) {
		if (m.n > LAYOUT_MAX_RESULTS)
			abort();
		for (size_t i = 0; i < m.n; i++)
			if (!pack_crate_name_ok(m.r[i].crate) || !hash_hex_valid(m.r[i].res))
				abort();
	}
	/* the upload's read-modify-write: a damaged manifest is replaced */
	if (layout_manifest_decode((const char *)data, n, &m) < 0)
		m.n = 0;
	layout_manifest_add(&m, "fuzzed", res);
	buf_init(&b);
	layout_manifest_encode(&m, &b);
	if (layout_manifest_decode(b.p, b.len, &m) < 0 || m.n < 1 ||
	    strcmp(m.r[0].crate, "fuzzed") != 0)
		abort();
	buf_free(&b);
	return 0;
}
