/* libFuzzer target: a bundle part (remote/bundle.c), written by any machine
 * sharing the remote. What parses must name safe crates and keys, and packs
 * that lie one after the other: version 1, within the object, ending exactly
 * at its end; version 2, within the documents (at most PACK_DOCS_MAX), with
 * a frame after the lines. A version 2 part is then inflated as the reader
 * does: its documents handed over must lie within what was inflated. */
#include <stdint.h>
#include <stdlib.h>

#include "remote/bundle.h"
#include "store/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

/* What pack_docs_inflate handed over: never less than before, never more
 * than the documents' size. */
struct seen {
	size_t avail, want;
};

static void
saw(void *arg, const char *docs, size_t avail)
{
	struct seen *s = arg;

	if (docs == NULL || avail > s->want || avail < s->avail)
		abort();
	s->avail = avail;
}

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
	if (ix.n == 0 || ix.n > BUNDLE_PACKS_MAX || (ix.version != 1 && ix.version != 2) ||
	    ix.body_off >= n + (ix.version == 1))
		abort();
	at = ix.version == 1 ? ix.body_off : 0;
	for (size_t i = 0; i < ix.n; i++) {
		if (!pack_crate_name_ok(ix.p[i].crate) || !hash_hex_valid(ix.p[i].res) ||
		    ix.p[i].len == 0 || ix.p[i].off != at ||
		    ix.p[i].len > (ix.version == 1 ? n : PACK_DOCS_MAX) - at)
			abort();
		at += ix.p[i].len;
	}
	if (ix.version == 1 && at != n)
		abort();
	if (ix.version == 2) {
		struct seen seen = { 0, ix.docs_len };

		if (at != ix.docs_len || at > PACK_DOCS_MAX)
			abort();
		(void)pack_docs_inflate((const char *)data + ix.body_off, n - ix.body_off,
		    ix.docs_len, saw, &seen);
	}
	bundle_index_free(&ix);
	return 0;
}
