/* The build session: a wrapper that sees a workspace's session start (its
 * marker under the store is older than prefetch.cooldown, or Cargo.lock
 * changed since) tells the supervisor with a prefetch hint, so that the
 * prefetch worker warms the store while cargo works. On most calls this costs
 * two stats (Cargo.lock and the marker); it never waits for the supervisor
 * nor the prefetch and never starts a process but the supervisor (as a fetch
 * would). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "proto/hint.h"
#include "proto/paths.h"
#include "wrapper/wrapper.h"

/* Cargo.lock is hashed into the hint only up to this size; the worker refuses
 * larger ones anyway. */
#define SESSION_LOCK_HASH_MAX (8 << 20)

static int find_lock(const struct wrapper *w, char *lock, size_t cap, struct stat *st);
static int64_t cooldown_ms(const struct config *cfg);
static int fresh(const struct stat *marker, const struct stat *lock, int64_t cooldown);
static void fill_hint(const struct wrapper *w, const char *lock, struct proto_hint *h);
static void lock_hash(const char *lock, char hex[HASH_HEX_LEN + 1]);
static void ws_id(const char *lock, char ws[17]);
static int session_start(struct wrapper *w, const char *lock, const char *marker,
    const struct stat *ls);
static void features_of(const struct rustc_args *a, struct buf *line);

/* The workspace's Cargo.lock: beside the target dir (cargo's default), else
 * in the working directory unless that is a registry crate's (under
 * CARGO_HOME). 0 with its stat, -1 when none is seen. */
static int
find_lock(const struct wrapper *w, char *lock, size_t cap, struct stat *st)
{
	char *dir;

	if (w->roots.target != NULL) {
		dir = path_dirname(w->roots.target);
		snprintf(lock, cap, "%s/Cargo.lock", dir);
		free(dir);
		if (stat(lock, st) == 0 && S_ISREG(st->st_mode))
			return 0;
	}
	if (w->roots.home != NULL && path_under(w->roots.cwd, w->roots.home) != NULL)
		return -1;
	snprintf(lock, cap, "%s/Cargo.lock", w->roots.cwd);
	return stat(lock, st) == 0 && S_ISREG(st->st_mode) ? 0 : -1;
}

/* The workspace id of a Cargo.lock path: the first 16 hex of its BLAKE2b. */
static void
ws_id(const char *lock, char ws[17])
{
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	hash_buffer(lock, strlen(lock), h);
	hash_to_hex(h, hex);
	snprintf(ws, 17, "%.16s", hex);
}

void
session_ws_of_target(const struct roots *r, char ws[17])
{
	struct stat st;
	char *dir, *lock;

	ws[0] = '\0';
	if (r->target == NULL)
		return;
	dir = path_dirname(r->target);
	lock = xasprintf("%s/Cargo.lock", dir);
	if (stat(lock, &st) == 0 && S_ISREG(st.st_mode))
		ws_id(lock, ws);
	free(lock);
	free(dir);
}

/* prefetch.cooldown (a duration: parse_duration); 5 min when malformed. */
static int64_t
cooldown_ms(const struct config *cfg)
{
	int64_t ms;

	return parse_duration(config_get(cfg, "prefetch.cooldown"), &ms) == 0 ? ms : 300000;
}

/* The marker's mtime is the last hint: fresh while within the cooldown and
 * Cargo.lock was not written, replaced or touched since (its ctime moves on
 * each of these). */
static int
fresh(const struct stat *marker, const struct stat *lock, int64_t cooldown)
{
	int64_t m = clock_ts_ms(&marker->st_mtim);

	return clock_wall_ms() - m < cooldown && clock_ts_ms(&lock->st_ctim) <= m;
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
	if (fstat(fd, &st) == 0 && st.st_size <= SESSION_LOCK_HASH_MAX &&
	    hash_fd(fd, h, &size) == 0)
		hash_to_hex(h, hex);
	close(fd);
}

/* Root, Cargo.lock, and what the command line shows of target and profile
 * (the out-dir under the target dir: [<triple>/]<profile>/...). */
static void
fill_hint(const struct wrapper *w, const char *lock, struct proto_hint *h)
{
	const char *rel, *triple = "";
	char *root = path_dirname(lock);
	size_t n;

	memset(h, 0, sizeof *h);
	snprintf(h->root, sizeof h->root, "%s", root);
	snprintf(h->lock, sizeof h->lock, "%s", lock);
	free(root);
	for (size_t i = 0; i < w->args.opt_names.n; i++)
		if (strcmp(w->args.opt_names.v[i], "--target") == 0 && w->args.opt_values.v[i])
			triple = w->args.opt_values.v[i];
	if (strlen(triple) <= PROTO_HINT_NAME_MAX && !strchr(triple, '/'))
		snprintf(h->target, sizeof h->target, "%s", triple);
	if (w->roots.target && w->args.out_dir) {
		char *abs = path_absolute(w->args.out_dir, w->roots.cwd);

		if ((rel = path_under(abs, w->roots.target)) != NULL) {
			rel += *rel == '/';
			if (h->target[0] && str_starts_with(rel, h->target) &&
			    rel[strlen(h->target)] == '/')
				rel += strlen(h->target) + 1;
			n = strcspn(rel, "/");
			if (n <= PROTO_HINT_NAME_MAX)
				snprintf(h->profile, sizeof h->profile, "%.*s", (int)n, rel);
		}
		free(abs);
	}
	lock_hash(lock, h->lock_hash);
	snprintf(h->toolchain, sizeof h->toolchain, "%s", w->toolchain);
}

int
session_hint(struct wrapper *w)
{
	char lock[PATH_MAX], *marker;
	struct stat ls, ms;
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];
	int start = 0;

	if (!config_has_remote(w->cfg) ||
	    (config_get_size(w->cfg, "prefetch.max_bytes") <= 0 &&
	        !config_get_bool(w->cfg, "prefetch.save_manifest")))
		return 0;
	if (find_lock(w, lock, sizeof lock, &ls) < 0)
		return 0;
	hash_buffer(lock, strlen(lock), h);
	hash_to_hex(h, hex);
	/* the journal's workspace id: which session a result was used by, for
	 * a session manifest; none when no save would take the lines */
	if (config_get_bool(w->cfg, "prefetch.save_manifest"))
		ws_id(lock, w->ws);
	marker = xasprintf("%s/run/sessions/%.16s", store_dir(w->store), hex);
	if (stat(marker, &ms) != 0 || !fresh(&ms, &ls, cooldown_ms(w->cfg)))
		start = session_start(w, lock, marker, &ls);
	free(marker);
	return start;
}

/* The slow path, once a session: one wrapper at a time per workspace (a
 * lock beside the marker; the others go on without waiting), the marker
 * looked at again under it, the hint left in run/hints/<name> for the
 * supervisor (proto/hint.h: a file, so nothing here waits for a supervisor,
 * hung, stopped or absent, and a hint is not lost when none runs yet), then
 * the marker rewritten. A hint that cannot be written leaves the marker
 * alone: a later compile tries again. 1 when no supervisor runs (the caller
 * starts one, which takes the hint). */
static int
session_start(struct wrapper *w, const char *lock, const char *marker, const struct stat *ls)
{
	char *dir = path_dirname(marker), *lk = xasprintf("%s.lock", marker), *text;
	const char *name = strrchr(marker, '/') + 1;
	struct proto_paths p;
	struct proto_hint h;
	struct stat ms;
	int fd, pf, start = 0;

	fs_mkdir_p(dir, 0700);
	fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
	    (stat(marker, &ms) != 0 || !fresh(&ms, ls, cooldown_ms(w->cfg)))) {
		fill_hint(w, lock, &h);
		/* prefetch off: no hint, the marker only names the session */
		pf = config_get_size(w->cfg, "prefetch.max_bytes") > 0;
		if (!pf || proto_hint_file_write(store_dir(w->store), name, &h) == 0) {
			/* what a session manifest's fingerprint is made of (remote/session.h) */
			text = xasprintf("lock=%s\nfingerprint=%lld:%llu:%lld\ntarget=%s\nprofile="
			                 "%s\ntoolchain=%s\n",
			    lock, (long long)ls->st_size, (unsigned long long)ls->st_ino,
			    (long long)clock_ts_ms(&ls->st_mtim), h.target, h.profile, h.toolchain);
			if (fs_write_atomic(marker, text, strlen(text), 0600) < 0)
				log_warn("write %s", marker);
			free(text);
			start = pf && proto_paths_init(&p, store_dir(w->store)) == 0 &&
			    !proto_supervisor_running(&p);
		}
		log_debug("session of %s: %s%s", lock, pf ? "prefetch hint left" : "no prefetch",
		    start ? "; a supervisor is started" : "");
	}
	if (fd >= 0)
		close(fd);
	free(lk);
	free(dir);
	return start;
}

/* "<crate> <feature>,<feature>...\n" (sorted; "-" for none) of the compile's
 * --cfg feature="..." values; empty when a value is not a plain name. */
static void
features_of(const struct rustc_args *a, struct buf *line)
{
	static const char ok[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+.";
	struct strv f;
	const char *v;
	size_t n;

	strv_init(&f);
	for (size_t i = 0; i < a->opt_names.n; i++) {
		v = a->opt_values.v[i];
		if (strcmp(a->opt_names.v[i], "--cfg") != 0 || v == NULL ||
		    !str_starts_with(v, "feature=\""))
			continue;
		v += 9;
		n = strspn(v, ok);
		if (n == 0 || strcmp(v + n, "\"") != 0) {
			strv_free(&f);
			return;
		}
		strv_push_owned(&f, xstrndup(v, n));
	}
	strv_sort(&f);
	buf_addf(line, "%s ", a->crate_name);
	for (size_t i = 0; i < f.n; i++)
		buf_addf(line, "%s%s", i ? "," : "", f.v[i]);
	buf_addstr(line, f.n ? "\n" : "-\n");
	strv_free(&f);
}

void
session_features(struct wrapper *w)
{
	struct buf line;
	char *path;
	int fd;

	if (w->ws[0] == '\0' || w->args.src == NULL || w->args.src[0] == '/' ||
	    w->args.crate_name == NULL || strlen(w->args.crate_name) > 64 ||
	    !config_get_bool(w->cfg, "prefetch.save_manifest"))
		return; /* no save would ever take the lines */
	buf_init(&line);
	features_of(&w->args, &line);
	path = xasprintf("%s/run/sessions/%s.features", store_dir(w->store), w->ws);
	fd = line.len ? fs_open_regular(path, O_WRONLY | O_APPEND | O_CREAT, 0600) : -1;
	if (fd >= 0) {
		if (fs_write_all(fd, line.p, line.len) < 0)
			log_warn("append to %s", path);
		close(fd);
	}
	free(path);
	buf_free(&line);
}
