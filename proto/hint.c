/* The prefetch hint's text form (proto/hint.h). */
#include "proto/hint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"

static int name_ok(const char *s);
static int path_ok(const char *s);
static int hint_ok(const struct proto_hint *h);
static int take_line(struct proto_hint *h, const char *line, size_t n);

/* A triple or a profile: [A-Za-z0-9_.-]{0,64}. */
static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > PROTO_HINT_NAME_MAX)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Absolute, no newline (the text is line-based), shorter than the buffer. */
static int
path_ok(const char *s)
{
	return s[0] == '/' && strlen(s) < PROTO_HINT_PATH_MAX && strchr(s, '\n') == NULL;
}

static int
hint_ok(const struct proto_hint *h)
{
	return path_ok(h->root) && path_ok(h->lock) && name_ok(h->target) && name_ok(h->profile) &&
	    name_ok(h->toolchain) && (h->lock_hash[0] == '\0' || hash_hex_valid(h->lock_hash));
}

int
proto_hint_to_msg(const struct proto_hint *h, struct msg *m)
{
	struct buf b;

	if (!hint_ok(h))
		return -1;
	buf_init(&b);
	buf_addf(&b, "root=%s\nlock=%s\ntarget=%s\nprofile=%s\ntoolchain=%s\n%s", h->root, h->lock,
	    h->target, h->profile, h->toolchain, h->guess ? "guess=1\n" : "");
	snprintf(m->key, sizeof m->key, "%s", h->lock_hash);
	msg_set_text(m, b.p);
	buf_free(&b);
	return 0;
}

/* One "name=value" line (n bytes, no newline) into its field. */
static int
take_line(struct proto_hint *h, const char *line, size_t n)
{
	static const struct {
		const char *name;
		size_t off, cap;
	} fields[] = {
		{ "root=", offsetof(struct proto_hint, root), PROTO_HINT_PATH_MAX },
		{ "lock=", offsetof(struct proto_hint, lock), PROTO_HINT_PATH_MAX },
		{ "target=", offsetof(struct proto_hint, target), PROTO_HINT_NAME_MAX + 1 },
		{ "profile=", offsetof(struct proto_hint, profile), PROTO_HINT_NAME_MAX + 1 },
		{ "toolchain=", offsetof(struct proto_hint, toolchain), PROTO_HINT_NAME_MAX + 1 },
	};

	if (n == 7 && memcmp(line, "guess=1", 7) == 0) {
		h->guess = 1;
		return 0;
	}
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		size_t k = strlen(fields[i].name);

		if (n < k || memcmp(line, fields[i].name, k) != 0)
			continue;
		if (n - k >= fields[i].cap)
			return -1;
		memcpy((char *)h + fields[i].off, line + k, n - k);
		((char *)h + fields[i].off)[n - k] = '\0';
		return 0;
	}
	return -1;
}

int
proto_hint_from_msg(const struct msg *m, struct proto_hint *h)
{
	const char *p = m->text, *nl;

	memset(h, 0, sizeof *h);
	if (p == NULL || (m->key[0] != '\0' && !hash_hex_valid(m->key)))
		return -1;
	snprintf(h->lock_hash, sizeof h->lock_hash, "%s", m->key);
	for (; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL || take_line(h, p, (size_t)(nl - p)) < 0)
			return -1;
	}
	return hint_ok(h) ? 0 : -1;
}

int
proto_hint_file_name_ok(const char *name)
{
	return strlen(name) == 16 && strspn(name, "0123456789abcdef") == 16;
}

int
proto_hint_file_write(const char *kache_dir, const char *name, const struct proto_hint *h)
{
	char *dir = xasprintf("%s/" PROTO_HINT_DIR, kache_dir), *path = NULL;
	struct msg m;
	struct buf b;
	int rc = -1;

	buf_init(&b);
	msg_init(&m, MSG_PREFETCH_HINT, 0);
	if (!proto_hint_file_name_ok(name) || proto_hint_to_msg(h, &m) < 0 ||
	    msg_encode(&m, &b) < 0 || b.len > PROTO_HINT_FILE_MAX) {
		log_warnx("prefetch hint for %s not written: not a valid hint", h->lock);
	} else if (fs_mkdir_p(dir, 0700) < 0 && errno != EEXIST) {
		log_warn("mkdir %s", dir);
	} else {
		path = xasprintf("%s/%s", dir, name);
		if ((rc = fs_write_atomic(path, b.p, b.len, 0600)) < 0)
			log_warn("write %s", path);
	}
	msg_clear(&m);
	buf_free(&b);
	free(path);
	free(dir);
	return rc;
}

int
proto_hint_file_read(const char *path, struct msg *m)
{
	struct buf b;
	int rc = -1;

	buf_init(&b);
	memset(m, 0, sizeof *m);
	if (fs_read_file(path, &b, PROTO_HINT_FILE_MAX) == 0 &&
	    msg_decode(b.p ? b.p : "", b.len, m) == MSG_DECODE_OK) {
		if (m->type == MSG_PREFETCH_HINT)
			rc = 0;
		else
			msg_clear(m);
	}
	buf_free(&b);
	return rc;
}
