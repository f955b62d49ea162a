/* Memo records: the stat and content hash of every file one crate's compile
 * looked at, so that a hit costs one read of this record and one stat per
 * file instead of an open, a hash or a memo file per file.
 *
 * Payload (inside the "kcmemor2" frame of store/record.c), little-endian:
 *   u32 count, then count times:
 *   u16 path length (1..STORE_MEMO_PATH_MAX), the path (no NUL),
 *   u64 dev, u64 inode, u64 size, i64 mtime s, u32 mtime ns, i64 ctime s,
 *   u32 ctime ns, 32-byte BLAKE2b of the content.
 * Paths are sorted (strcmp) and unique, so a lookup is a binary search and
 * an encoding is canonical; the decoder refuses anything else. */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define FIXED_LEN (2 + 8 * 3 + 8 + 4 + 8 + 4 + HASH_LEN)

static void put_le(struct buf *b, uint64_t v, int n);
static int cmp_path(const void *a, const void *b);
static void put_one(struct buf *out, const struct store_memo_file *f);
static int decode_one(const unsigned char *p, size_t left, struct store_memo_file *f, size_t *used);

static void
put_le(struct buf *b, uint64_t v, int n)
{
	unsigned char x[8];

	le_put(x, v, n);
	buf_add(b, x, (size_t)n);
}

static int
cmp_path(const void *a, const void *b)
{
	const struct store_memo_file *const *x = a, *const *y = b;

	return strcmp((*x)->path, (*y)->path);
}

/* Appends one entry in the payload's layout. */
static void
put_one(struct buf *out, const struct store_memo_file *f)
{
	size_t len = strlen(f->path);

	put_le(out, len, 2);
	buf_add(out, f->path, len);
	put_le(out, f->dev, 8);
	put_le(out, f->ino, 8);
	put_le(out, f->size, 8);
	put_le(out, (uint64_t)f->mtime_s, 8);
	put_le(out, f->mtime_ns, 4);
	put_le(out, (uint64_t)f->ctime_s, 8);
	put_le(out, f->ctime_ns, 4);
	buf_add(out, f->hash, HASH_LEN);
}

/* Encodes r canonically: sorted by path; of two entries with one path the
 * earlier in r wins (callers put what they learnt this run first); entries
 * beyond STORE_MEMO_MAX_FILES or with an unusable path are left out. */
int
store_memo_rec_encode(const struct store_memo_rec *r, struct buf *out)
{
	typedef const struct store_memo_file *entry_ptr;
	entry_ptr *v = xcalloc(r->n + 1, sizeof(entry_ptr));
	size_t n = 0, count_at = out->len, kept = 0;

	for (size_t i = 0; i < r->n; i++) {
		size_t len = r->f[i].path ? strlen(r->f[i].path) : 0;

		if (len > 0 && len <= STORE_MEMO_PATH_MAX)
			v[n++] = &r->f[i];
	}
	qsort(v, n, sizeof(entry_ptr), cmp_path);
	put_le(out, 0, 4);
	for (size_t i = 0; i < n && kept < STORE_MEMO_MAX_FILES; kept++) {
		const struct store_memo_file *f = v[i];
		size_t j;

		/* qsort is not stable: of equal paths take the lowest address */
		for (j = i + 1; j < n && strcmp(v[j]->path, f->path) == 0; j++)
			if (v[j] < f)
				f = v[j];
		i = j;
		put_one(out, f);
	}
	for (int i = 0; i < 4; i++)
		out->p[count_at + (size_t)i] = (char)(kept >> (8 * i));
	free(v);
	return 0;
}

/* One entry at p (left bytes remain): -1 when it does not fit or is invalid. */
static int
decode_one(const unsigned char *p, size_t left, struct store_memo_file *f, size_t *used)
{
	size_t len;
	const unsigned char *q;

	if (left < FIXED_LEN)
		return -1;
	len = (size_t)le_get(p, 2);
	if (len == 0 || len > STORE_MEMO_PATH_MAX || left < FIXED_LEN + len ||
	    memchr(p + 2, '\0', len) != NULL)
		return -1;
	q = p + 2 + len;
	f->dev = le_get(q, 8);
	f->ino = le_get(q + 8, 8);
	f->size = le_get(q + 16, 8);
	f->mtime_s = (int64_t)le_get(q + 24, 8);
	f->mtime_ns = (uint32_t)le_get(q + 32, 4);
	f->ctime_s = (int64_t)le_get(q + 36, 8);
	f->ctime_ns = (uint32_t)le_get(q + 44, 4);
	if (f->mtime_ns >= 1000000000u || f->ctime_ns >= 1000000000u)
		return -1;
	memcpy(f->hash, q + 48, HASH_LEN);
	f->path = xstrndup((const char *)p + 2, len);
	*used = FIXED_LEN + len;
	return 0;
}

int
store_memo_rec_decode(const char *data, size_t n, struct store_memo_rec *r)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t at = 4, count;

	memset(r, 0, sizeof *r);
	if (n < 4)
		return -1;
	count = (size_t)le_get(p, 4);
	/* checked against the bytes present before anything is allocated */
	if (count > STORE_MEMO_MAX_FILES || count > (n - 4) / (FIXED_LEN + 1))
		return -1;
	r->f = xcalloc(count + 1, sizeof *r->f);
	for (size_t i = 0; i < count; i++) {
		size_t used;

		if (decode_one(p + at, n - at, &r->f[i], &used) < 0 ||
		    (i > 0 && strcmp(r->f[i - 1].path, (r->f[i].path)) >= 0)) {
			r->n = i + 1;
			store_memo_rec_clear(r);
			return -1;
		}
		r->n = i + 1;
		at += used;
	}
	if (at != n) {
		store_memo_rec_clear(r);
		return -1;
	}
	return 0;
}

void
store_memo_rec_clear(struct store_memo_rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->f[i].path);
	free(r->f);
	memset(r, 0, sizeof *r);
}

const struct store_memo_file *
store_memo_rec_find(const struct store_memo_rec *r, const char *path)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->f[mid].path, path);

		if (c == 0)
			return &r->f[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int
store_memo_file_matches(const struct store_memo_file *f, const struct stat *st)
{
	return S_ISREG(st->st_mode) && f->dev == (uint64_t)st->st_dev &&
	    f->ino == (uint64_t)st->st_ino && f->size == (uint64_t)st->st_size &&
	    f->mtime_s == (int64_t)st->st_mtim.tv_sec &&
	    f->mtime_ns == (uint32_t)st->st_mtim.tv_nsec &&
	    f->ctime_s == (int64_t)st->st_ctim.tv_sec &&
	    f->ctime_ns == (uint32_t)st->st_ctim.tv_nsec;
}

void
store_memo_file_set(struct store_memo_file *f, const char *path, const struct stat *st,
    const unsigned char h[HASH_LEN])
{
	f->path = xstrdup(path);
	f->dev = (uint64_t)st->st_dev;
	f->ino = (uint64_t)st->st_ino;
	f->size = (uint64_t)st->st_size;
	f->mtime_s = (int64_t)st->st_mtim.tv_sec;
	f->mtime_ns = (uint32_t)st->st_mtim.tv_nsec;
	f->ctime_s = (int64_t)st->st_ctim.tv_sec;
	f->ctime_ns = (uint32_t)st->st_ctim.tv_nsec;
	memcpy(f->hash, h, HASH_LEN);
}
