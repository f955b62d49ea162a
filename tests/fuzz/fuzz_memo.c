/* libFuzzer target: a memo record's payload (store/memo.c), as read from
 * memo/ after its checksum. What decodes must be sorted and unique, must
 * re-encode to the very same bytes (the encoding is canonical), and every
 * entry must be found by its path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct store_memo_rec r;
	struct buf b;

	if (store_memo_rec_decode((const char *)data, n, &r) < 0)
		return 0;
	for (size_t i = 0; i < r.n; i++) {
		if (r.f[i].path == NULL || r.f[i].path[0] == '\0' ||
		    strlen(r.f[i].path) > STORE_MEMO_PATH_MAX || r.f[i].mtime_ns >= 1000000000u ||
		    r.f[i].ctime_ns >= 1000000000u)
			abort();
		if (i > 0 && strcmp(r.f[i - 1].path, r.f[i].path) >= 0)
			abort(); /* not sorted, or a duplicate */
		if (store_memo_rec_find(&r, r.f[i].path) != &r.f[i])
			abort();
	}
	buf_init(&b);
	if (store_memo_rec_encode(&r, &b) < 0 || b.len != n || memcmp(b.p, data, n) != 0)
		abort();
	store_memo_rec_clear(&r);
	buf_free(&b);
	return 0;
}
