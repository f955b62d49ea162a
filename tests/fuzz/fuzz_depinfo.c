/* libFuzzer target: a dep-info file rustc wrote, or one restored from a
 * store entry (wrapper/depinfo.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wrapper/wrapper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct depinfo d;

	memset(&d, 0, sizeof d);
	if (depinfo_parse((const char *)data, n, &d) == 0) {
		if (d.env_names.n != d.env_values.n)
			abort();
		for (size_t i = 0; i < d.files.n; i++)
			if (d.files.v[i] == NULL)
				abort();
	}
	depinfo_free(&d);
	return 0;
}
