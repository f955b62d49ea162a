/* cargo's config.toml, scanned for what kache reads of it: see cargo_cfg.h. */
#include "common/cargo_cfg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/path.h"
#include "common/util.h"

/* An alias asked for (cargo_cfg_alias) and what was found of it. */
struct alias_req {
	const char *name;
	char *out; /* its words, each ended by a NUL */
	size_t cap, len;
	int found; /* 1: defined; -1: defined but not read (too long, not words) */
};

/* What the scanner carries from one line to the next. */
struct scan_state {
	char table[128];       /* the current [table] ("" at the top) */
	int depth;             /* open [ of a multi-line array */
	const char *mlq;       /* the closing quote of a multi-line string, or NULL */
	const char *text_end;  /* the end of the whole text (a value may go on past its line) */
	struct alias_req *req; /* an alias looked for, or NULL */
};

static void scan(const char *text, size_t len, struct cargo_cfg_scan *r, struct alias_req *req);
static void scan_alias(const char *full, const char *v, const char *end, struct scan_state *s);
static void alias_words(const char *v, const char *end, struct alias_req *q);
static void alias_split(const char *w, struct alias_req *q);
static void alias_add(struct alias_req *q, const char *w, size_t n);
static const char *string_at(const char *p, const char *end, char *out, size_t n);

static void scan_line(const char *p, const char *end, size_t start, size_t next,
    struct scan_state *s, struct cargo_cfg_scan *r);
static void scan_header(struct scan_state *s, size_t start, size_t next, struct cargo_cfg_scan *r);
static int scan_key(const char *full, const char *v, const char *end, struct cargo_cfg_scan *r);
static void inline_value(const char *v, const char *end, const char *key, char *out, size_t n);
static void parse_header(const char *p, const char *end, char *out, size_t n);
static const char *parse_key(const char *p, const char *end, char *out, size_t n);
static void parse_string(const char *p, const char *end, char *out, size_t n);
static void track_value(const char *p, const char *end, struct scan_state *s);

void
cargo_cfg_scan(const char *text, size_t len, struct cargo_cfg_scan *r)
{
	scan(text, len, r, NULL);
}

int
cargo_cfg_alias(const char *text, size_t len, const char *name, char *out, size_t cap, size_t *n)
{
	struct alias_req q = { name, out, cap, 0, 0 };
	struct cargo_cfg_scan *r = xmalloc(sizeof *r);

	scan(text, len, r, &q);
	free(r);
	*n = q.found == 1 ? q.len : 0;
	return q.found;
}

static void
scan(const char *text, size_t len, struct cargo_cfg_scan *r, struct alias_req *req)
{
	struct scan_state s = { "", 0, NULL, text + len, req };
	const char *p = text, *end = text + len, *nl;

	memset(r, 0, sizeof *r);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		scan_line(p, nl, (size_t)(p - text), (size_t)(nl - text) + (nl < end), &s, r);
		p = nl + 1;
	}
}

/* One line [p, end) at offset start; next is the offset of the line after it. */
static void
scan_line(const char *p, const char *end, size_t start, size_t next, struct scan_state *s,
    struct cargo_cfg_scan *r)
{
	char key[128], full[300];
	struct cargo_cfg_table *t = strcmp(s->table, "build") == 0 ? &r->build :
	    strcmp(s->table, "env") == 0                           ? &r->env :
	                                                             NULL;
	const char *v, *q;

	if (s->mlq != NULL) { /* inside a multi-line string: look for its end */
		for (q = p; q + 3 <= end; q++)
			if (memcmp(q, s->mlq, 3) == 0) {
				s->mlq = NULL;
				track_value(q + 3, end, s);
				break;
			}
		return;
	}
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end)
		return;
	if (*p == '#' || s->depth > 0 || *p != '[') {
		if (t != NULL)
			t->other_lines++; /* taken back below for a kache line */
	}
	if (*p == '#')
		return;
	if (s->depth > 0) {
		track_value(p, end, s);
		return;
	}
	if (*p == '[') {
		parse_header(p, end, s->table, sizeof s->table);
		scan_header(s, start, next, r);
		return;
	}
	if ((v = parse_key(p, end, key, sizeof key)) == NULL)
		return;
	snprintf(full, sizeof full, "%s%s%s", s->table, s->table[0] ? "." : "", key);
	if (s->req != NULL && s->req->found == 0)
		scan_alias(full, v, end, s);
	if (scan_key(full, v, end, r) && t != NULL && r->n_kache_lines < CARGO_CFG_MAX_LINES) {
		t->other_lines--;
		r->kache_line[r->n_kache_lines][0] = start;
		r->kache_line[r->n_kache_lines++][1] = next;
	}
	track_value(v, end, s);
}

/* Notes where the [build] and [env] headers are (the first of each). */
static void
scan_header(struct scan_state *s, size_t start, size_t next, struct cargo_cfg_scan *r)
{
	struct cargo_cfg_table *t = strcmp(s->table, "build") == 0 ? &r->build :
	    strcmp(s->table, "env") == 0                           ? &r->env :
	                                                             NULL;

	if (t == NULL || t->has)
		return;
	t->has = 1;
	t->start = start;
	t->end = next;
	if (t == &r->build) {
		r->has_build = 1;
		r->build_end = next;
	}
}

/* Records a key kache cares about (full: its dotted name, v: its value). 1
 * when the line is one `kache init` writes, a plain string naming kache. */
static int
scan_key(const char *full, const char *v, const char *end, struct cargo_cfg_scan *r)
{
	const char *q;

	if (strcmp(full, "build.rustc-wrapper") == 0) {
		r->found = 1;
		parse_string(v, end, r->value, sizeof r->value);
		return cargo_cfg_is_kache(r->value);
	}
	if (strcmp(full, "build") == 0 &&
	    (q = memmem(v, (size_t)(end - v), "rustc-wrapper", 13)) != NULL &&
	    (q = memchr(q, '=', (size_t)(end - q))) != NULL) {
		r->found = 1; /* build = { rustc-wrapper = "..." } */
		parse_string(q + 1, end, r->value, sizeof r->value);
	} else if (strcmp(full, "env.CC") == 0 || strcmp(full, "env.CXX") == 0) {
		int cxx = full[5] == 'X';
		char *out = cxx ? r->cxx : r->cc;

		*(cxx ? &r->found_cxx : &r->found_cc) = 1;
		parse_string(v, end, out, CARGO_CFG_VALUE_MAX);
		if (out[0] == '\0')
			inline_value(v, end, "value", out, CARGO_CFG_VALUE_MAX);
		return cargo_cfg_cc_is_kache(out) && memchr(v, '{', (size_t)(end - v)) == NULL;
	} else if (strcmp(full, "env") == 0) {
		inline_value(v, end, "CC", r->cc, sizeof r->cc);
		inline_value(v, end, "CXX", r->cxx, sizeof r->cxx);
		r->found_cc = r->cc[0] != '\0';
		r->found_cxx = r->cxx[0] != '\0';
	}
	return 0;
}

/* The alias asked for, at its key: alias.NAME = "words" or [ "words", ... ]
 * (an array may go on over the lines after its key), or alias = { NAME =
 * "words" }. The first definition is the one: TOML allows no other. */
static void
scan_alias(const char *full, const char *v, const char *end, struct scan_state *s)
{
	struct alias_req *q = s->req;
	char one[CARGO_CFG_VALUE_MAX];

	if (strncmp(full, "alias.", 6) == 0 && strcmp(full + 6, q->name) == 0) {
		alias_words(v, s->text_end, q);
	} else if (strcmp(full, "alias") == 0) {
		inline_value(v, end, q->name, one, sizeof one);
		if (one[0] != '\0') {
			q->found = 1;
			alias_split(one, q);
		}
	}
}

/* An alias's value at v: a string, split at white space as cargo splits it,
 * or an array of strings, each one word. Anything else (a number, a string
 * too long for the buffer) is found but not read: found -1. */
static void
alias_words(const char *v, const char *end, struct alias_req *q)
{
	char w[CARGO_CFG_VALUE_MAX];
	const char *p = v;

	q->found = 1;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && (*p == '"' || *p == '\'')) {
		if (string_at(p, end, w, sizeof w) == NULL)
			q->found = -1;
		else
			alias_split(w, q);
		return;
	}
	if (p == end || *p != '[') {
		q->found = -1;
		return;
	}
	for (p++; q->found == 1;) {
		while (p < end && (isspace((unsigned char)*p) || *p == ','))
			p++;
		if (p < end && *p == '#') { /* a comment to the end of its line */
			while (p < end && *p != '\n')
				p++;
			continue;
		}
		if (p < end && *p == ']')
			return;
		if (p == end || (*p != '"' && *p != '\'') ||
		    (p = string_at(p, end, w, sizeof w)) == NULL) {
			q->found = -1;
			return;
		}
		alias_add(q, w, strlen(w));
	}
}

/* The words of a string, split at white space as cargo splits it. */
static void
alias_split(const char *w, struct alias_req *q)
{
	const char *e;

	for (; q->found == 1 && *w != '\0'; w = e) {
		while (isspace((unsigned char)*w))
			w++;
		for (e = w; *e != '\0' && !isspace((unsigned char)*e); e++)
			;
		if (e > w)
			alias_add(q, w, (size_t)(e - w));
	}
}

int
cargo_cfg_words(const char *s, char *out, size_t cap, size_t *n)
{
	struct alias_req q = { NULL, out, cap, 0, 1 };

	alias_split(s, &q);
	*n = q.found == 1 ? q.len : 0;
	return q.found == 1 ? 0 : -1;
}

/* One word more, ended by a NUL; found -1 when the words do not fit. */
static void
alias_add(struct alias_req *q, const char *w, size_t n)
{
	if (q->len + n + 1 > q->cap) {
		q->found = -1;
		return;
	}
	memcpy(q->out + q->len, w, n);
	q->out[q->len + n] = '\0';
	q->len += n + 1;
}

/* The string after `key =` inside an inline table at v ("" when none):
 * CC = { value = "...", force = true }, env = { CC = "..." }. */
static void
inline_value(const char *v, const char *end, const char *key, char *out, size_t n)
{
	size_t k = strlen(key);

	out[0] = '\0';
	for (const char *q = v; q + k < end; q++) {
		const char *e = q + k;

		if (memcmp(q, key, k) != 0 ||
		    (q > v && (isalnum((unsigned char)q[-1]) || q[-1] == '_')))
			continue;
		while (e < end && isspace((unsigned char)*e))
			e++;
		if (e < end && *e == '=') {
			parse_string(e + 1, end, out, n);
			return;
		}
	}
}

/* "[ build ]" or "[[bin]]" or "[\"build\"]": the table name, quotes dropped. */
static void
parse_header(const char *p, const char *end, char *out, size_t n)
{
	size_t k = 0;

	while (p < end && (*p == '[' || isspace((unsigned char)*p)))
		p++;
	for (; p < end && *p != ']' && *p != '#'; p++)
		if (*p != '"' && *p != '\'' && !isspace((unsigned char)*p) && k + 1 < n)
			out[k++] = *p;
	out[k] = '\0';
}

/* The key before '=' (quotes and spaces dropped, dots kept) into out; returns
 * where the value starts, or NULL when the line holds no key. */
static const char *
parse_key(const char *p, const char *end, char *out, size_t n)
{
	size_t k = 0;
	int quote = 0;

	for (; p < end && (quote || *p != '='); p++) {
		if (*p == '"' || *p == '\'')
			quote = !quote;
		else if (!isspace((unsigned char)*p) && k + 1 < n)
			out[k++] = *p;
	}
	out[k] = '\0';
	return p < end ? p + 1 : NULL;
}

/* The string value at p (after '='): "..." (with \" and \\ escapes) or '...'. */
static void
parse_string(const char *p, const char *end, char *out, size_t n)
{
	out[0] = '\0';
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p < end && (*p == '"' || *p == '\''))
		string_at(p, end, out, n);
}

/* The quoted string at p into out (cut to n - 1 bytes); returns where it
 * ends (past its closing quote), or NULL when it is not closed before end or
 * did not fit. */
static const char *
string_at(const char *p, const char *end, char *out, size_t n)
{
	size_t k = 0;
	int cut = 0;
	char q = *p++;

	for (; p < end && *p != q && *p != '\n'; p++) {
		if (q == '"' && *p == '\\' && p + 1 < end)
			p++;
		if (k + 1 < n)
			out[k++] = *p;
		else
			cut = 1;
	}
	out[k] = '\0';
	return p < end && *p == q && !cut ? p + 1 : NULL;
}

/* Follows a value to the end of its line: brackets of arrays opened and
 * closed outside strings, and a multi-line string left open. */
static void
track_value(const char *p, const char *end, struct scan_state *s)
{
	char q = 0;

	for (; p < end; p++) {
		if (q == 0 && (*p == '"' || *p == '\'') && end - p >= 3 && p[1] == *p &&
		    p[2] == *p) {
			const char *close = *p == '"' ? "\"\"\"" : "'''";
			const char *e = p + 3;

			while (e + 3 <= end && memcmp(e, close, 3) != 0)
				e++;
			if (e + 3 > end) {
				s->mlq = close;
				return;
			}
			p = e + 2;
		} else if (q == 0 && (*p == '"' || *p == '\'')) {
			q = *p;
		} else if (q != 0 && *p == q) {
			q = 0;
		} else if (q == '"' && *p == '\\') {
			p++;
		} else if (q == 0 && *p == '#') {
			return;
		} else if (q == 0) {
			s->depth += *p == '[' ? 1 : *p == ']' ? -1 : 0;
		}
	}
	if (s->depth < 0)
		s->depth = 0;
}

int
cargo_cfg_is_kache(const char *value)
{
	const char *base = strrchr(value, '/');

	return strcmp(base ? base + 1 : value, "kache") == 0;
}

int
cargo_cfg_cc_is_kache(const char *value)
{
	const char *sp = strchr(value, ' ');
	char first[CARGO_CFG_VALUE_MAX];

	if (sp == NULL)
		return 0;
	snprintf(first, sizeof first, "%.*s", (int)(sp - value), value);
	return cargo_cfg_is_kache(first);
}

char *
cargo_cfg_home(void)
{
	const char *ch = getenv("CARGO_HOME"), *home = getenv("HOME");

	if (ch != NULL && ch[0] != '\0')
		return xstrdup(ch);
	if (home != NULL && home[0] != '\0')
		return xasprintf("%s/.cargo", home);
	return NULL;
}

char *
cargo_cfg_file(const char *dir)
{
	char *toml = xasprintf("%s/config.toml", dir), *plain = xasprintf("%s/config", dir);

	if (access(toml, F_OK) != 0 && access(plain, F_OK) == 0) {
		free(toml);
		return plain;
	}
	free(plain);
	return toml;
}

/* Asks found about one file; keeps its path in *path when it answers. */
static int
walk_one(char *file, int (*found)(const char *, void *), void *arg, char **path)
{
	int rc = found(file, arg);

	if (rc != 0 && path != NULL)
		*path = file;
	else
		free(file);
	return rc;
}

int
cargo_cfg_walk(const char *dir, int (*found)(const char *path, void *arg), void *arg, char **path)
{
	char *d = xstrdup(dir), *home = cargo_cfg_home(), *dot, *up;
	int rc = 0, seen_home = 0;

	if (path != NULL)
		*path = NULL;
	while (rc == 0) {
		dot = path_join(d, ".cargo");
		seen_home |= home != NULL && strcmp(dot, home) == 0;
		rc = walk_one(cargo_cfg_file(dot), found, arg, path);
		free(dot);
		up = path_dirname(d);
		if (strcmp(up, d) == 0) { /* the root (or "." for a relative dir) */
			free(up);
			break;
		}
		free(d);
		d = up;
	}
	if (rc == 0 && home != NULL && !seen_home)
		rc = walk_one(cargo_cfg_file(home), found, arg, path);
	free(home);
	free(d);
	return rc;
}
