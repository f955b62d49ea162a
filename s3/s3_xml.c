/* A small, bounds-checked scanner for the few S3 XML answers we read.
 * S3 escapes '<' in text, so a literal "<Key>" only ever opens an element. */
#include "s3/s3_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define XML_MAX_OBJECTS 100000

static int find_elem(const char *p, const char *end, const char *name, const char **text,
    size_t *tlen, const char **after);
static int decode_entity(const char *p, const char *end, struct buf *out, size_t *used);
static char *decode_text(const char *p, size_t n);
static int parse_u64(const char *p, size_t n, uint64_t *v);
static int parse_contents(const char *p, size_t n, struct s3_object *o);
static int digits(const char *p, size_t n, int *v);
static int64_t days_from_civil(int y, int m, int d);

/* Finds <name>text</name> in [p, end). 1 found, 0 absent, -1 opened but not closed. */
static int
find_elem(const char *p, const char *end, const char *name, const char **text, size_t *tlen,
    const char **after)
{
	char open[64], close[64];
	const char *s, *e;
	int ol = snprintf(open, sizeof open, "<%s>", name);
	int cl = snprintf(close, sizeof close, "</%s>", name);

	if (p >= end)
		return 0;
	s = memmem(p, (size_t)(end - p), open, (size_t)ol);
	if (s == NULL)
		return 0;
	s += ol;
	e = memmem(s, (size_t)(end - s), close, (size_t)cl);
	if (e == NULL)
		return -1;
	*text = s;
	*tlen = (size_t)(e - s);
	if (after)
		*after = e + cl;
	return 1;
}

/* Decodes one "&...;" at p. -1 for anything unknown, NUL or out of range. */
static int
decode_entity(const char *p, const char *end, struct buf *out, size_t *used)
{
	static const struct {
		const char *name;
		char c;
	} named[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' },
		{ "&apos;", '\'' } };
	const char *semi = memchr(p, ';', (size_t)(end - p) < 12 ? (size_t)(end - p) : 12);
	unsigned long cp;
	char *stop;

	if (semi == NULL)
		return -1;
	*used = (size_t)(semi - p) + 1;
	for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
		if (strlen(named[i].name) == *used && memcmp(p, named[i].name, *used) == 0) {
			buf_addch(out, named[i].c);
			return 0;
		}
	if (*used < 4 || p[1] != '#')
		return -1;
	if (!isxdigit((unsigned char)(p[2] == 'x' ? p[3] : p[2])))
		return -1;
	cp = p[2] == 'x' ? strtoul(p + 3, &stop, 16) : strtoul(p + 2, &stop, 10);
	if (stop != semi || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -1;
	if (cp < 0x80) {
		buf_addch(out, (char)cp);
	} else if (cp < 0x800) {
		buf_addch(out, (char)(0xC0 | (cp >> 6)));
		buf_addch(out, (char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		buf_addch(out, (char)(0xE0 | (cp >> 12)));
		buf_addch(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
		buf_addch(out, (char)(0x80 | (cp & 0x3F)));
	} else {
		buf_addch(out, (char)(0xF0 | (cp >> 18)));
		buf_addch(out, (char)(0x80 | ((cp >> 12) & 0x3F)));
		buf_addch(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
		buf_addch(out, (char)(0x80 | (cp & 0x3F)));
	}
	return 0;
}

/* Text with entities decoded; NULL on a bad entity, a NUL or a stray '<'. */
static char *
decode_text(const char *p, size_t n)
{
	const char *end = p + n;
	struct buf b;
	size_t used;

	buf_init(&b);
	buf_addstr(&b, "");
	while (p < end) {
		if (*p == '\0' || *p == '<') {
			buf_free(&b);
			return NULL;
		}
		if (*p != '&') {
			buf_addch(&b, *p++);
			continue;
		}
		if (decode_entity(p, end, &b, &used) < 0) {
			buf_free(&b);
			return NULL;
		}
		p += used;
	}
	return buf_detach(&b, NULL);
}

static int
parse_u64(const char *p, size_t n, uint64_t *v)
{
	*v = 0;
	if (n == 0 || n > 19)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (uint64_t)(p[i] - '0');
	}
	return 0;
}

/* n decimal digits at p into *v; -1 when one is not a digit. */
static int
digits(const char *p, size_t n, int *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (the
 * civil-from-days inverse; no time zone, no libc state). */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
s3_xml_parse_time(const char *p, size_t n, int64_t *ms)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, s, frac = 0, leap;
	size_t k = 19;

	*ms = 0;
	if (n < 20 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' ||
	    p[n - 1] != 'Z')
		return -1;
	if (digits(p, 4, &y) < 0 || digits(p + 5, 2, &mo) < 0 || digits(p + 8, 2, &d) < 0 ||
	    digits(p + 11, 2, &h) < 0 || digits(p + 14, 2, &mi) < 0 || digits(p + 17, 2, &s) < 0)
		return -1;
	if (n > 20) { /* ".d" to ".ddddddddd": milliseconds kept */
		if (p[k] != '.' || n - 21 < 1 || n - 21 > 9 || digits(p + 20, n - 21, &frac) < 0)
			return -1;
		for (size_t i = n - 21; i < 3; i++)
			frac *= 10;
		for (size_t i = n - 21; i > 3; i--)
			frac /= 10;
	}
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) ||
	    h > 23 || mi > 59 || s > 59)
		return -1;
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + s;
	*ms = *ms * 1000 + frac;
	return 0;
}

char *
s3_xml_text(const char *xml, size_t len, const char *name)
{
	const char *t;
	size_t tl;

	if (find_elem(xml, xml + len, name, &t, &tl, NULL) != 1)
		return NULL;
	return decode_text(t, tl);
}

static int
parse_contents(const char *p, size_t n, struct s3_object *o)
{
	const char *t;
	size_t tl;

	if (find_elem(p, p + n, "Key", &t, &tl, NULL) != 1 || (o->key = decode_text(t, tl)) == NULL)
		return -1;
	if (find_elem(p, p + n, "Size", &t, &tl, NULL) != 1 || parse_u64(t, tl, &o->size) < 0)
		return -1;
	/* absent: 0 (oldest); present, it must be a time */
	switch (find_elem(p, p + n, "LastModified", &t, &tl, NULL)) {
	case 0: return 0;
	case 1: return s3_xml_parse_time(t, tl, &o->mtime_ms);
	default: return -1;
	}
}

int
s3_xml_parse_list(const char *xml, size_t len, struct s3_list_page *page)
{
	const char *p = xml, *end = xml + len, *t;
	size_t tl, cap = 0;
	int rc;

	memset(page, 0, sizeof *page);
	if (memmem(xml, len, "<ListBucketResult", 17) == NULL ||
	    memmem(xml, len, "</ListBucketResult>", 19) == NULL)
		return -1;
	while ((rc = find_elem(p, end, "Contents", &t, &tl, &p)) == 1) {
		if (page->n == XML_MAX_OBJECTS)
			goto bad;
		if (page->n == cap) {
			cap = cap ? cap * 2 : 16;
			page->obj = xrealloc(page->obj, cap * sizeof *page->obj);
		}
		memset(&page->obj[page->n], 0, sizeof page->obj[0]);
		page->n++;
		if (parse_contents(t, tl, &page->obj[page->n - 1]) < 0)
			goto bad;
	}
	if (rc < 0 || find_elem(xml, end, "IsTruncated", &t, &tl, NULL) != 1)
		goto bad;
	if (tl == 4 && memcmp(t, "true", 4) == 0)
		page->truncated = 1;
	else if (!(tl == 5 && memcmp(t, "false", 5) == 0))
		goto bad;
	page->next_token = s3_xml_text(xml, len, "NextContinuationToken");
	if (page->truncated && page->next_token == NULL)
		goto bad;
	return 0;
bad:
	s3_list_page_clear(page);
	return -1;
}

void
s3_list_page_clear(struct s3_list_page *page)
{
	for (size_t i = 0; i < page->n; i++)
		free(page->obj[i].key);
	free(page->obj);
	free(page->next_token);
	memset(page, 0, sizeof *page);
}

char *
s3_xml_escape(const char *s)
{
	struct buf b;

	buf_init(&b);
	buf_addstr(&b, "");
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': buf_addstr(&b, "&amp;"); break;
		case '<': buf_addstr(&b, "&lt;"); break;
		case '>': buf_addstr(&b, "&gt;"); break;
		case '"': buf_addstr(&b, "&quot;"); break;
		default: buf_addch(&b, *s);
		}
	}
	return buf_detach(&b, NULL);
}
