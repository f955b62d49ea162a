/* libFuzzer target: cargo's config.toml as common/cargo_cfg.c scans it (a
 * user's file: `kache init` and `kache doctor` read it for rustc-wrapper and
 * CC, the wrapper for the alias of a cargo command). Every alias read must
 * be words, each ended by a NUL, within the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cargo_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static const char *const names[] = { "ck", "b", "x", "a-b" };
	struct cargo_cfg_scan *r = malloc(sizeof *r);
	char out[256];
	size_t len;

	if (r == NULL)
		abort();
	cargo_cfg_scan((const char *)data, n, r);
	if (strnlen(r->value, sizeof r->value) == sizeof r->value ||
	    strnlen(r->cc, sizeof r->cc) == sizeof r->cc)
		abort();
	free(r);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		int rc = cargo_cfg_alias((const char *)data, n, names[i], out, sizeof out, &len);

		if (rc < -1 || rc > 1 || len > sizeof out || (rc != 1 && len != 0) ||
		    (len > 0 && out[len - 1] != '\0'))
			abort();
	}
	return 0;
}
