/* libFuzzer target: `cargo metadata`'s output as the prefetch worker reads it
 * (workers/prefetch/prefetch_meta.c): JSON from a cargo that a workspace's
 * files steer. What parses must name only crates kache would pack, once each. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/pack.h"
#include "workers/prefetch/prefetch_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct strv c;
	char why[200];

	strv_init(&c);
	why[0] = '\0';
	if (prefetch_meta_parse((const char *)data, n, &c, NULL, why, sizeof why) < 0) {
		if (why[0] == '\0' || c.n != 0)
			abort();
	} else {
		if (c.n == 0)
			abort();
		for (size_t i = 0; i < c.n; i++) {
			if (!pack_crate_name_ok(c.v[i]) || strchr(c.v[i], '-') != NULL)
				abort();
			for (size_t k = 0; k < i; k++)
				if (strcmp(c.v[i], c.v[k]) == 0)
					abort();
		}
	}
	strv_free(&c);
	return 0;
}
