/* libFuzzer target: a memoized answer to one of cargo's questions to rustc
 * (wrapper/query.c), as read from memo/ and checked before it is printed to
 * cargo. What decodes must lie inside the input and re-encode to the very
 * same bytes (the encoding is canonical: no second spelling of a count). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wrapper/wrapper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	const char *p = (const char *)data;
	size_t body, nout, nerr;
	struct buf b;

	if (query_memo_decode(p, n, &body, &nout, &nerr) < 0)
		return 0;
	if (body > n || nout + nerr != n - body)
		abort();
	buf_init(&b);
	query_memo_encode(p + body, nout, p + body + nout, nerr, &b);
	if (b.len != n || memcmp(b.p, data, n) != 0)
		abort();
	buf_free(&b);
	return 0;
}
