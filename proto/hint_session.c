/* The build session's marker and the leaving of its hint (proto/hint.h,
 * "The build session"): what the wrapper does once a session, and what
 * `kache prefetch` does on a user's word. Files only: nothing here waits for a
 * supervisor. */
#include "proto/hint.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/path.h"
#include "common/util.h"
#include "proto/paths.h"

/* Cargo.lock is hashed into the hint only up to this size; the worker refuses
 * larger ones anyway. */
#define LOCK_HASH_MAX (8 << 20)

static void lock_hash(const char *lock, char hex[HASH_HEX_LEN + 1]);
static size_t check_base_len(const char *profile);

void
proto_hint_ws_id(const char *lock, int check, char ws[17])
{
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];
	char *s = xasprintf("%s%s", lock, check ? "\n" PROTO_HINT_CHECK_SUFFIX : "");

	hash_buffer(s, strlen(s), h);
	hash_to_hex(h, hex);
	snprintf(ws, 17, "%.16s", hex);
	free(s);
}

char *
proto_hint_marker(const char *kache_dir, const char ws[17])
{
	return xasprintf("%s/run/sessions/%s", kache_dir, ws);
}

/* The marker's mtime is the last hint: fresh while within the cooldown and
 * Cargo.lock was not written, replaced or touched since (its ctime moves on
 * each of these). */
int
proto_hint_fresh(const struct config *cfg, const char *marker, const struct stat *lock)
{
	struct stat ms;
	int64_t m;

	if (stat(marker, &ms) != 0)
		return 0;
	m = clock_ts_ms(&ms.st_mtim);
	return clock_age_ms(&ms.st_mtim) < config_get_duration(cfg, "prefetch.cooldown") &&
	    clock_ts_ms(&lock->st_ctim) <= m;
}

char *
proto_hint_cargo_link(const char *kache_dir, long pid)
{
	return xasprintf("%s/run/sessions/" PROTO_HINT_CARGO_LINK "%ld", kache_dir, pid);
}

/* The link's own stat follows it to the marker: its mtime is the session's
 * last hint. Then the name it holds, which must be a session id. */
int
proto_hint_cargo_session(const struct config *cfg, const char *link, char ws[17])
{
	struct stat ms;
	char to[18];
	ssize_t n;

	if (stat(link, &ms) != 0 || !S_ISREG(ms.st_mode) ||
	    clock_age_ms(&ms.st_mtim) >= config_get_duration(cfg, "prefetch.cooldown"))
		return -1;
	n = readlink(link, to, sizeof to);
	if (n != 16 || strspn(to, "0123456789abcdef") < 16)
		return -1;
	memcpy(ws, to, 16);
	ws[16] = '\0';
	return 0;
}

void
proto_hint_cargo_link_set(const char *link, const char ws[17])
{
	char *tmp = xasprintf("%s.%ld", link, (long)getpid());

	unlink(tmp);
	if (symlink(ws, tmp) < 0 || rename(tmp, link) < 0) {
		log_debug("cannot link %s to its session: %s", link, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
}

int
proto_hint_sweep_links(const char *kache_dir)
{
	char *dir = xasprintf("%s/run/sessions", kache_dir), *end;
	size_t k = strlen(PROTO_HINT_CARGO_LINK);
	struct dirent *de;
	int n = 0;
	long pid;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, PROTO_HINT_CARGO_LINK, k) != 0 ||
		    !isdigit((unsigned char)de->d_name[k]))
			continue;
		errno = 0;
		pid = strtol(de->d_name + k, &end, 10);
		if (errno != 0 || pid <= 0 || (*end != '\0' && *end != '.') ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* not a link's name, or its process is there */
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	free(dir);
	return n;
}

char *
proto_hint_early_due(const char *kache_dir, const struct config *cfg, const char *lock,
    const struct stat *ls, int check)
{
	char ws[17], *marker, *early = NULL;

	proto_hint_ws_id(lock, check, ws);
	marker = proto_hint_marker(kache_dir, ws);
	if (!proto_hint_fresh(cfg, marker, ls)) {
		early = xasprintf("%s.early", marker);
		if (proto_hint_fresh(cfg, early, ls)) {
			free(early);
			early = NULL;
		}
	}
	free(marker);
	return early;
}

static void
lock_hash(const char *lock, char hex[HASH_HEX_LEN + 1])
{
	unsigned char h[HASH_LEN];
	struct stat st;
	uint64_t size;
	int fd = fs_open_input(lock);

	hex[0] = '\0';
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size <= LOCK_HASH_MAX && hash_fd(fd, h, &size) == 0)
		hash_to_hex(h, hex);
	close(fd);
}

void
proto_hint_workspace(struct proto_hint *h, const char *lock)
{
	char *root = path_dirname(lock);

	snprintf(h->root, sizeof h->root, "%s", root);
	snprintf(h->lock, sizeof h->lock, "%s", lock);
	free(root);
	lock_hash(lock, h->lock_hash);
}

void
proto_hint_toolchain_id(const char *vv, size_t n, char out[17])
{
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	hash_buffer(vv, n, h);
	hash_to_hex(h, hex);
	snprintf(out, 17, "%.16s", hex);
}

const char *
proto_hint_profile_dir(const char *profile)
{
	if (strcmp(profile, "dev") == 0 || strcmp(profile, "test") == 0)
		return "debug";
	if (strcmp(profile, "bench") == 0)
		return "release";
	return profile;
}

int
proto_hint_check_like(const char *sub)
{
	static const char *const none_built[] = { "check", "c", "clippy", "doc", "d", "fix",
		"rustdoc", NULL };

	for (int i = 0; none_built[i] != NULL; i++)
		if (strcmp(sub, none_built[i]) == 0)
			return 1;
	return 0;
}

/* The length of profile less a trailing PROTO_HINT_CHECK_SUFFIX, or 0 when it
 * has none. */
static size_t
check_base_len(const char *profile)
{
	size_t n = strlen(profile), k = strlen(PROTO_HINT_CHECK_SUFFIX);

	return n > k && strcmp(profile + n - k, PROTO_HINT_CHECK_SUFFIX) == 0 ? n - k : 0;
}

void
proto_hint_mark_check(struct proto_hint *h)
{
	size_t n = strlen(h->profile);

	if (check_base_len(h->profile) == 0 && n > 0 &&
	    n + strlen(PROTO_HINT_CHECK_SUFFIX) <= PROTO_HINT_NAME_MAX)
		memcpy(h->profile + n, PROTO_HINT_CHECK_SUFFIX,
		    strlen(PROTO_HINT_CHECK_SUFFIX) + 1);
}

int
proto_hint_is_check(const char *profile)
{
	return check_base_len(profile) > 0;
}

int
proto_hint_build_profile(const char *profile, char *out, size_t cap)
{
	size_t n = check_base_len(profile);

	if (n == 0 || n >= cap)
		return 0;
	memcpy(out, profile, n);
	out[n] = '\0';
	return 1;
}

int
proto_hint_find_lock_up(const char *dir, char *lock, size_t cap, struct stat *st)
{
	char *home = getenv("CARGO_HOME") ? xstrdup(getenv("CARGO_HOME")) :
	    getenv("HOME")                ? path_join(getenv("HOME"), ".cargo") :
	                                    NULL;
	char *d = xstrdup(dir), *up;
	int rc = -1;

	if (home != NULL && path_under(d, home) != NULL) {
		free(home);
		free(d);
		return -1;
	}
	for (int i = 0; i < 32 && rc < 0; i++) {
		snprintf(lock, cap, "%s/Cargo.lock", strcmp(d, "/") == 0 ? "" : d);
		if (stat(lock, st) == 0 && S_ISREG(st->st_mode))
			rc = 0;
		else if (strcmp(d, "/") == 0)
			break;
		up = path_dirname(d);
		free(d);
		d = up;
	}
	free(d);
	free(home);
	return rc;
}

/* One writer at a time per workspace (a lock beside the marker; the others
 * go on without waiting), the marker looked at again under it, the hint
 * left in run/hints/<name>, then the marker rewritten with what a session
 * manifest's fingerprint is made of (remote/session.h). A hint that cannot
 * be written leaves the marker alone: a later compile tries again. */
enum proto_hint_left
proto_hint_leave(const char *kache_dir, const struct config *cfg, const char *marker,
    const struct stat *ls, const struct proto_hint *h)
{
	char *dir = path_dirname(marker), *lk = xasprintf("%s.lock", marker), *text;
	char name[17];
	struct proto_paths p;
	enum proto_hint_left r = PROTO_HINT_UNDER_WAY;
	int fd, pf;

	snprintf(name, sizeof name, "%.16s", strrchr(marker, '/') + 1);
	fs_mkdir_p(dir, 0700);
	fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && !proto_hint_fresh(cfg, marker, ls)) {
		/* prefetch off: no hint, the marker only names the session */
		pf = config_get_size(cfg, "prefetch.max_bytes") > 0;
		r = PROTO_HINT_FAILED;
		if (!pf || proto_hint_file_write(kache_dir, name, h) == 0) {
			text = xasprintf("lock=%s\nfingerprint=%lld:%llu:%lld\ntarget=%s\nprofile="
			                 "%s\ntoolchain=%s\n%s",
			    h->lock, (long long)ls->st_size, (unsigned long long)ls->st_ino,
			    (long long)clock_ts_ms(&ls->st_mtim), h->target, h->profile,
			    h->toolchain, h->guess ? "guess=1\n" : "");
			if (fs_write_atomic(marker, text, strlen(text), 0600) < 0)
				log_warn("write %s", marker);
			free(text);
			r = !pf ? PROTO_HINT_MARKED :
			    proto_paths_init(&p, kache_dir) == 0 && !proto_supervisor_running(&p) ?
			          PROTO_HINT_LEFT_NO_SUPERVISOR :
			          PROTO_HINT_LEFT;
		}
		log_debug("session of %s: %s%s%s", h->lock,
		    pf ? "prefetch hint left" : "no prefetch",
		    h->guess ? " (early: target and profile guessed)" : "",
		    r == PROTO_HINT_LEFT_NO_SUPERVISOR ? "; no supervisor runs" : "");
	}
	if (fd >= 0)
		close(fd);
	free(lk);
	free(dir);
	return r;
}
