/* Allocation that never returns NULL, and a growable byte buffer. */
#ifndef KACHE_UTIL_H
#define KACHE_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A byte buffer, always NUL-terminated past len so it can be used as a string. */
struct buf {
	char *p;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_addstr(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller, NUL-terminated (an empty buffer gives ""); the
 * buffer is left empty. */
char *buf_detach(struct buf *b, size_t *len);

/* A growable array of owned strings. */
struct strv {
	char **v;
	size_t n;
	size_t cap;
};

void strv_init(struct strv *s);
void strv_free(struct strv *s);
void strv_push(struct strv *s, const char *str);
void strv_push_owned(struct strv *s, char *str);
void strv_sort(struct strv *s);
/* Sorts s and drops the repeats (freed), keeping it NULL-terminated. */
void strv_sort_unique(struct strv *s);

/* Parses sizes such as "10G", "512MiB", "1048576"; -1 when it is not one. */
int64_t parse_size(const char *s);
/* Parses durations such as "90", "90s", "1500ms", "10m", "1h", "7d" (decimals allowed)
 * into ms; 0, or -1 when it is not one. */
int parse_duration(const char *s, int64_t *ms);
/* Formats a byte count for people ("1.5 GiB") into out. */
void format_size(uint64_t n, char *out, size_t outlen);
/* The n (<= 8) low bytes of v at p, little-endian; and back. Inline: a memo
 * record of a 300-file crate decodes 2,400 of them on every hit, and with n
 * known the compiler makes each one load. */
static inline void
le_put(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t
le_get(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
int str_starts_with(const char *s, const char *prefix);
int str_ends_with(const char *s, const char *suffix);
/* The next line of [*p, end) without its newline, *p moved past it: 0, or -1
 * when none is left or the last one has no newline (a truncated object). */
int str_next_line(const char **p, const char *end, const char **line, size_t *n);

#endif
