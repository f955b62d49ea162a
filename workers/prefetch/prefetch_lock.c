/* Reading Cargo.lock: just enough TOML to take each [[package]]'s name. Any
 * line that is not a comment, a section header, `key = value`, or part of a
 * multi-line array refuses the whole file: a garbage file is said once, not
 * half used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "store/pack.h"
#include "workers/prefetch/prefetch_internal.h"

static int line_kind(const char *line, size_t n);
static int take_name(const char *line, size_t n, struct strv *crates);

enum { L_SKIP, L_PACKAGE, L_SECTION, L_NAME, L_BAD };

/* What one line is (without its newline). */
static int
line_kind(const char *line, size_t n)
{
	size_t k;

	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r'))
		n--;
	if (n == 0 || line[0] == '#' || line[0] == ' ' || line[0] == '\t' || line[0] == ']')
		return L_SKIP; /* blank, comment, a multi-line array's items and end */
	if (n == 11 && memcmp(line, "[[package]]", 11) == 0)
		return L_PACKAGE;
	if (line[0] == '[')
		return line[n - 1] == ']' ? L_SECTION : L_BAD;
	if (n > 7 && memcmp(line, "name = ", 7) == 0)
		return L_NAME;
	if (line[0] == '"') /* a quoted key: the old [metadata] "checksum ..." lines */
		return memmem(line, n, "\" = ", 4) != NULL ? L_SKIP : L_BAD;
	k = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
	return k > 0 && k + 3 <= n && memcmp(line + k, " = ", 3) == 0 ? L_SKIP : L_BAD;
}

/* `name = "serde-json"` into crates as serde_json. -1 when not a crate name. */
static int
take_name(const char *line, size_t n, struct strv *crates)
{
	char name[65];
	size_t len;

	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r'))
		n--;
	if (n < 9 || line[7] != '"' || line[n - 1] != '"' || (len = n - 9) > 64)
		return -1;
	memcpy(name, line + 8, len);
	name[len] = '\0';
	if (!pack_crate_name_ok(name))
		return -1;
	for (char *p = name; *p; p++)
		if (*p == '-')
			*p = '_';
	strv_push(crates, name);
	return 0;
}

int
prefetch_lock_parse(const char *text, size_t n, struct strv *crates, char *why, size_t whylen)
{
	const char *p = text, *end = text + n, *nl;
	int in_package = 0, kind;
	long lineno = 0, packages = 0;

	if (memchr(text, '\0', n) != NULL) {
		snprintf(why, whylen, "it holds binary data");
		return -1;
	}
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl ? nl : end;
		lineno++;
		kind = line_kind(p, (size_t)(nl - p));
		if (kind == L_BAD ||
		    (kind == L_NAME && in_package && take_name(p, (size_t)(nl - p), crates) < 0)) {
			snprintf(why, whylen, "line %ld is not Cargo.lock syntax", lineno);
			return -1;
		}
		if (kind == L_PACKAGE && ++packages > PREFETCH_PACKAGES_MAX) {
			snprintf(why, whylen, "more than %d packages", PREFETCH_PACKAGES_MAX);
			return -1;
		}
		in_package = kind == L_PACKAGE ? 1 : kind == L_SECTION ? 0 : in_package;
	}
	if (crates->n == 0) {
		snprintf(why, whylen, "it names no package");
		return -1;
	}
	strv_sort_unique(crates);
	return 0;
}

int
prefetch_lock_read(const char *path, struct strv *crates, char *why, size_t whylen)
{
	int fd = fs_open_input(path), rc = -1;
	struct buf b;

	buf_init(&b);
	if (fd < 0 || fs_read_fd(fd, &b, PREFETCH_LOCK_MAX) < 0) {
		if (errno == EFBIG)
			snprintf(why, whylen, "it is larger than %d MiB", PREFETCH_LOCK_MAX >> 20);
		else
			snprintf(why, whylen, "it cannot be read: %s", strerror(errno));
	} else {
		rc = prefetch_lock_parse(b.p ? b.p : "", b.len, crates, why, whylen);
	}
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	return rc;
}
