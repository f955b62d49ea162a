/* Run-time scale (`kache supervisor scale role=N`) that outlives the process:
 * run/scale holds one "role=N" line per role scaled away from its configured
 * count, so that a restart and a binary-update re-exec come back with the
 * same workers. Scaling a role back to its configured count removes its line.
 * The file is written by the supervisor only (it holds the store lock), temp
 * + rename; it is read like any outside byte: a file that is not exactly
 * such lines is ignored whole, with one log line. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "supervisor/sup_internal.h"

#define SCALE_FILE_MAX 1024

static char *scale_path(const struct supervisor *s);
static int parse_line(const char *line, size_t n, int out[ROLE_COUNT], const char **why);
static int parse(const char *text, size_t n, int out[ROLE_COUNT], const char **why);

static char *
scale_path(const struct supervisor *s)
{
	return xasprintf("%s/scale", s->paths.rundir);
}

/* One "role=N" line (without its newline) into out; -1 with why. */
static int
parse_line(const char *line, size_t n, int out[ROLE_COUNT], const char **why)
{
	const char *eq = memchr(line, '=', n);
	char role[MSG_ROLE_MAX + 1];
	size_t rl, digits;
	int r, count = 0;

	rl = eq ? (size_t)(eq - line) : 0;
	digits = eq ? n - rl - 1 : 0;
	if (eq == NULL || rl == 0 || rl > MSG_ROLE_MAX || digits == 0 || digits > 2) {
		*why = "a line is not role=N";
		return -1;
	}
	for (size_t i = 0; i < digits; i++) {
		if (!isdigit((unsigned char)eq[1 + i])) {
			*why = "a count is not a number";
			return -1;
		}
		count = count * 10 + (eq[1 + i] - '0');
	}
	memcpy(role, line, rl);
	role[rl] = '\0';
	if ((r = role_from_name(role)) < 0 || role_fixed_count((enum role)r) >= 0 ||
	    count > SUP_MAX_WORKERS / 2 || out[r] >= 0) {
		*why = "a role is unknown, fixed, repeated, or its count over 32";
		return -1;
	}
	out[r] = count;
	return 0;
}

/* The whole file: lines of role=N, each ended by '\n'. */
static int
parse(const char *text, size_t n, int out[ROLE_COUNT], const char **why)
{
	size_t at = 0;

	for (int r = 0; r < ROLE_COUNT; r++)
		out[r] = -1;
	while (at < n) {
		const char *nl = memchr(text + at, '\n', n - at);

		if (nl == NULL) {
			*why = "the last line is not ended";
			return -1;
		}
		if (parse_line(text + at, (size_t)(nl - text - at), out, why) < 0)
			return -1;
		at = (size_t)(nl - text) + 1;
	}
	return 0;
}

void
scale_load(struct supervisor *s)
{
	char *path = scale_path(s);
	const char *why = NULL;
	struct buf b;

	buf_init(&b);
	for (int r = 0; r < ROLE_COUNT; r++)
		s->scaled[r] = -1;
	if (fs_read_file(path, &b, SCALE_FILE_MAX) < 0) {
		if (errno != ENOENT)
			log_warn("%s: not read; the configured worker counts apply", path);
	} else if (parse(b.p ? b.p : "", b.len, s->scaled, &why) < 0) {
		log_warnx("%s is damaged (%s); ignoring it: the configured worker counts "
		          "apply (`kache supervisor scale` writes it again)",
		    path, why);
		for (int r = 0; r < ROLE_COUNT; r++)
			s->scaled[r] = -1;
	}
	buf_free(&b);
	free(path);
}

int
scale_save(struct supervisor *s, enum role r, int n)
{
	char *path = scale_path(s);
	struct buf b;
	int rc = 0;

	s->scaled[r] = n == s->configured[r] ? -1 : n;
	buf_init(&b);
	for (int i = 0; i < ROLE_COUNT; i++)
		if (s->scaled[i] >= 0)
			buf_addf(&b, "%s=%d\n", role_name((enum role)i), s->scaled[i]);
	if (b.len == 0 && unlink(path) < 0 && errno != ENOENT)
		rc = -1;
	else if (b.len > 0 && fs_write_atomic(path, b.p, b.len, 0600) < 0)
		rc = -1;
	if (rc < 0)
		log_warn("%s: the scale holds until the supervisor stops, not after", path);
	buf_free(&b);
	free(path);
	return rc;
}

int
scale_wanted(const struct supervisor *s, enum role r)
{
	if (r == ROLE_PREFETCH && s->remote_none)
		return 0; /* nothing to prefetch from, whatever was scaled */
	return s->scaled[r] >= 0 ? s->scaled[r] : s->configured[r];
}
