/* libFuzzer target: a bundle part (remote/bundle.c), written by any machine
 * sharing the remote. What parses must name safe crates and keys, and packs
 * that lie one after the other within the object, ending exactly at its end. */
#include <stdint.h>
#include <stdlib.h>

#include "remote/bundle.h"
#include "store/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct bundle_index ix;
	char why[160];
	size_t at;

	why[0] = '\0';
	if (bundle_parse((const char *)data, n, &ix, why, sizeof why) < 0) {
		if (why[0] == '\0' || ix.p != NULL || ix.n != 0)
			abort();
		return 0;
	}
	if (ix.n == 0 || ix.n > BUNDLE_PACKS_MAX)
		abort();
	at = ix.p[0].off;
	for (size_t i = 0; i < ix.n; i++) {
		if (!pack_crate_name_ok(ix.p[i].crate) || !hash_hex_valid(ix.p[i].res) ||
		    ix.p[i].len == 0 || ix.p[i].off != at || ix.p[i].len > n - at)
			abort();
		at += ix.p[i].len;
	}
	if (at != n)
		abort();
	bundle_index_free(&ix);
	return 0;
}
