/* libFuzzer target: an entry record (store/record.c), as read from entries/
 * or from a pack. What decodes must re-encode and decode to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/path.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct store_entry e, again;
	struct buf b1, b2;

	store_entry_init(&e);
	if (store_entry_decode((const char *)data, n, &e) < 0) {
		store_entry_clear(&e);
		return 0;
	}
	for (size_t i = 0; i < e.n_outputs; i++)
		if (e.outputs[i].name == NULL || !path_is_safe_relative(e.outputs[i].name))
			abort(); /* an unsafe output name must never decode */
	buf_init(&b1);
	buf_init(&b2);
	store_entry_init(&again);
	if (store_entry_encode(&e, &b1) < 0 || store_entry_decode(b1.p, b1.len, &again) < 0 ||
	    store_entry_encode(&again, &b2) < 0 || b1.len != b2.len ||
	    memcmp(b1.p, b2.p, b1.len) != 0)
		abort();
	store_entry_clear(&again);
	store_entry_clear(&e);
	buf_free(&b1);
	buf_free(&b2);
	return 0;
}
