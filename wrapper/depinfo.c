/* rustc's Makefile-style dep-info: the files a compile read and the env-deps. */
#include <stdlib.h>
#include <string.h>

#include "wrapper/wrapper.h"

static char *unescape_path(const char *s, size_t n);
static char *unescape_env(const char *s, size_t n);
static void parse_rule(struct depinfo *d, const char *line, size_t n);
static void parse_env(struct depinfo *d, const char *line, size_t n);
static void sort_env(struct depinfo *d);
static void escape_env(struct buf *out, const char *v);
static void secret_line(struct buf *out, const char *line, size_t len, int restore);
static char *hashed_form(const char *v, size_t n);

#define SECRET_MARK "<kache: secret not stored>"

/* Paths are space-separated; a space inside one is written "\ ". */
static char *
unescape_path(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && (s[i + 1] == ' ' || s[i + 1] == '\\'))
			i++;
		*o++ = s[i];
	}
	*o = '\0';
	return out;
}

/* rustc escapes '\\', '\n' and '\r' in env-dep values. */
static char *
unescape_env(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			char c = s[++i];

			*o++ = c == 'n' ? '\n' : c == 'r' ? '\r' : c;
			continue;
		}
		*o++ = s[i];
	}
	*o = '\0';
	return out;
}

/* "target: prereq prereq". The first rule lists every input; later rules repeat it. */
static void
parse_rule(struct depinfo *d, const char *line, size_t n)
{
	size_t i = 0;

	/* the target ends at the first unescaped ": " or ':' at end of line */
	while (i < n &&
	    !(line[i] == ':' && (i + 1 == n || line[i + 1] == ' ') &&
	        (i == 0 || line[i - 1] != '\\')))
		i++;
	if (i >= n || d->files.n > 0)
		return;
	i++;
	while (i < n) {
		size_t start;

		while (i < n && line[i] == ' ')
			i++;
		start = i;
		while (i < n && !(line[i] == ' ' && line[i - 1] != '\\'))
			i++;
		if (i > start)
			strv_push_owned(&d->files, unescape_path(line + start, i - start));
	}
}

static void
parse_env(struct depinfo *d, const char *line, size_t n)
{
	const char *eq = memchr(line, '=', n);

	if (eq == NULL) {
		strv_push_owned(&d->env_names, xstrndup(line, n));
		strv_push_owned(&d->env_values, NULL);
		d->env_values.v[d->env_values.n - 1] = NULL;
	} else {
		strv_push_owned(&d->env_names, xstrndup(line, (size_t)(eq - line)));
		strv_push_owned(&d->env_values, unescape_env(eq + 1, n - (size_t)(eq - line) - 1));
	}
}

/* Sorted by name (insertion sort: there are few), keeping values aligned. */
static void
sort_env(struct depinfo *d)
{
	for (size_t i = 1; i < d->env_names.n; i++)
		for (size_t j = i; j > 0 && strcmp(d->env_names.v[j], d->env_names.v[j - 1]) < 0;
		     j--) {
			char *t = d->env_names.v[j];

			d->env_names.v[j] = d->env_names.v[j - 1];
			d->env_names.v[j - 1] = t;
			t = d->env_values.v[j];
			d->env_values.v[j] = d->env_values.v[j - 1];
			d->env_values.v[j - 1] = t;
		}
}

int
depinfo_parse(const char *text, size_t n, struct depinfo *d)
{
	static const char env_tag[] = "# env-dep:";
	size_t i = 0;

	memset(d, 0, sizeof *d);
	while (i < n) {
		const char *line = text + i;
		const char *nl = memchr(line, '\n', n - i);
		size_t len = nl ? (size_t)(nl - line) : n - i;

		i += len + (nl ? 1 : 0);
		if (len >= sizeof env_tag - 1 && memcmp(line, env_tag, sizeof env_tag - 1) == 0)
			parse_env(d, line + sizeof env_tag - 1, len - (sizeof env_tag - 1));
		else if (len > 0 && line[0] != '#')
			parse_rule(d, line, len);
	}
	sort_env(d);
	return 0;
}

/* The inverse of unescape_env. */
static void
escape_env(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			buf_addstr(out, "\\\\");
		else if (*v == '\n')
			buf_addstr(out, "\\n");
		else if (*v == '\r')
			buf_addstr(out, "\\r");
		else
			buf_addch(out, *v);
	}
}

/* One "# env-dep:" line (without its newline): a secret-looking variable's value
 * replaced by SECRET_MARK, or (restore) by this process's own value. */
static void
secret_line(struct buf *out, const char *line, size_t len, int restore)
{
	static const char env_tag[] = "# env-dep:";
	const char *name = line + sizeof env_tag - 1;
	const char *eq = memchr(name, '=', len - (sizeof env_tag - 1));
	char *n;
	const char *now;

	if (eq == NULL) {
		buf_add(out, line, len);
		return;
	}
	n = xstrndup(name, (size_t)(eq - name));
	now = restore ? getenv(n) : NULL;
	if (!config_is_secret_env(n) ||
	    (restore &&
	        (now == NULL || (size_t)(line + len - eq - 1) != strlen(SECRET_MARK) ||
	            memcmp(eq + 1, SECRET_MARK, strlen(SECRET_MARK)) != 0))) {
		buf_add(out, line, len);
	} else {
		buf_add(out, line, (size_t)(eq - line) + 1);
		if (restore)
			escape_env(out, now);
		else
			buf_addstr(out, SECRET_MARK);
	}
	free(n);
}

void
depinfo_secrets(const char *text, size_t n, int restore, struct buf *out)
{
	static const char env_tag[] = "# env-dep:";
	size_t i = 0;

	while (i < n) {
		const char *line = text + i;
		const char *nl = memchr(line, '\n', n - i);
		size_t len = nl ? (size_t)(nl - line) : n - i;

		if (len >= sizeof env_tag - 1 && memcmp(line, env_tag, sizeof env_tag - 1) == 0)
			secret_line(out, line, len, restore);
		else
			buf_add(out, line, len);
		if (nl)
			buf_addch(out, '\n');
		i += len + (nl ? 1 : 0);
	}
}

void
depinfo_free(struct depinfo *d)
{
	strv_free(&d->files);
	/* env_values may hold NULLs in the middle: free by count. */
	for (size_t i = 0; i < d->env_values.n; i++)
		free(d->env_values.v[i]);
	free(d->env_values.v);
	strv_free(&d->env_names);
	memset(d, 0, sizeof *d);
}

/* "blake2b:" and the hash of the n bytes at v (new string): a value a
 * candidate keeps without the value ever reaching the store. */
static char *
hashed_form(const char *v, size_t n)
{
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	hash_buffer(v, n, h);
	hash_to_hex(h, hex);
	return xasprintf("blake2b:%s", hex);
}

/* Secrets are kept only as a hash: a candidate can be matched against this
 * process's value without the value ever reaching the store. */
char *
depinfo_env_form(const struct roots *r, const char *name, const char *value)
{
	struct buf b;

	if (config_is_secret_env(name))
		return hashed_form(value, strlen(value));
	buf_init(&b);
	roots_fold(r, value, strlen(value), &b);
	return buf_detach(&b, NULL);
}

/* A variable a proc macro read (trace.c), as a candidate keeps it: a secret
 * as depinfo_env_form keeps it, any other only as the hash of its value with
 * the roots folded ("blake2b:" before it, where a secret's is of the value as
 * it is): a macro may read a URL with a password under any name, and the
 * value would be in a manifest every runner reads. */
char *
depinfo_env_form_traced(const struct roots *r, const char *name, const char *value)
{
	struct buf b;
	char *form;

	if (config_is_secret_env(name))
		return depinfo_env_form(r, name, value);
	buf_init(&b);
	roots_fold(r, value, strlen(value), &b);
	form = hashed_form(b.p ? b.p : "", b.len);
	buf_free(&b);
	return form;
}
