/* libFuzzer target: a manifest record (store/record.c), as read from
 * manifests/ or from a pack's candidate. What decodes must round-trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct store_manifest m = { 0 }, again = { 0 };
	struct buf b1, b2;

	if (store_manifest_decode((const char *)data, n, &m) < 0) {
		store_manifest_clear(&m);
		return 0;
	}
	if (m.n > STORE_MAX_CANDIDATES)
		abort();
	buf_init(&b1);
	buf_init(&b2);
	if (store_manifest_encode(&m, &b1) < 0 || store_manifest_decode(b1.p, b1.len, &again) < 0 ||
	    store_manifest_encode(&again, &b2) < 0 || b1.len != b2.len ||
	    memcmp(b1.p, b2.p, b1.len) != 0)
		abort();
	store_manifest_clear(&again);
	store_manifest_clear(&m);
	buf_free(&b1);
	buf_free(&b2);
	return 0;
}
