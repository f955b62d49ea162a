/* The writer's half of a frame of pack documents (store/pack.h): a pack
 * inflated back to its document, documents deflated as one frame. The
 * reader's half, pack_docs_inflate, is in pack.c with the memory it uses. */
#include <zstd.h>

#include "common/log.h"
#include "store/pack.h"

/* zstd's level for a part: the packs' own (the uploader's, pack.c): levels 1
 * to 9 inflate alike here (docs/bench.md), and a higher one costs the runner
 * that writes the part, at its `kache supervisor stop`, more than the bytes
 * it saves its readers on a loopback or a LAN. */
#define DOCS_LEVEL 3

int
pack_doc_of(const char *p, size_t n, struct buf *out, size_t cap)
{
	ZSTD_DCtx *z = ZSTD_createDCtx();
	ZSTD_inBuffer in = { p, n, 0 };
	size_t left = 1, was = out->len;
	int rc = -1;

	if (z == NULL)
		return -1;
	for (;;) {
		ZSTD_outBuffer o;
		size_t was_in = in.pos;

		if (in.pos == in.size && left == 0) {
			rc = 0; /* every frame whole, its checksum checked */
			break;
		}
		buf_grow(out, cap - out->len < (1u << 20) ? cap - out->len : (1u << 20));
		o = (ZSTD_outBuffer){ out->p + out->len, out->cap - out->len - 1, 0 };
		if (o.size > cap - out->len)
			o.size = cap - out->len;
		left = ZSTD_decompressStream(z, &o, &in);
		if (ZSTD_isError(left) || (in.pos == was_in && o.pos == 0))
			break; /* bad bytes, the input ended inside a frame, or cap */
		out->len += o.pos;
	}
	if (rc < 0)
		out->len = was; /* out as it was: nothing of a pack that failed */
	if (out->p != NULL)
		out->p[out->len] = '\0';
	ZSTD_freeDCtx(z);
	return rc;
}

int
pack_docs_deflate(const char *docs, size_t n, struct buf *out)
{
	ZSTD_CCtx *z = ZSTD_createCCtx();
	size_t bound = ZSTD_compressBound(n), got;
	int wlog = 10;

	if (z == NULL || n == 0 || n > PACK_DOCS_MAX) {
		ZSTD_freeCCtx(z);
		log_warnx("bundle: %zu bytes of documents cannot be one part", n);
		return -1;
	}
	while (wlog < 30 && ((size_t)1 << wlog) < n)
		wlog++;
	buf_grow(out, bound);
	if (ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, DOCS_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, wlog)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_enableLongDistanceMatching, 1)))
		got = (size_t)-1;
	else
		got = ZSTD_compress2(z, out->p + out->len, bound, docs, n);
	ZSTD_freeCCtx(z);
	if (ZSTD_isError(got)) {
		log_warnx("bundle: zstd refused to compress a part: %s", ZSTD_getErrorName(got));
		return -1;
	}
	out->len += got;
	out->p[out->len] = '\0';
	return 0;
}
