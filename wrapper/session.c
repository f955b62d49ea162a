/* The build session: a wrapper that sees a session start (the marker of its
 * cargo command's workspace and mode, a build's or a check's, is older than
 * prefetch.cooldown, or Cargo.lock changed since) tells the supervisor with a
 * prefetch hint, so that the prefetch worker warms the store while cargo
 * works. On most calls this costs a getppid, a stat and a readlink (the cargo
 * link its command's first compile made, proto/hint.h); it never waits for the
 * supervisor nor the prefetch and never starts a process but the supervisor
 * (as a fetch would). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "proto/hint.h"
#include "wrapper/wrapper.h"

static int find_lock(const struct wrapper *w, char *lock, size_t cap, struct stat *st);
static void fill_hint(const struct wrapper *w, const char *lock, const struct proto_hint *asked,
    int check, struct proto_hint *h);
static void set_ws(struct wrapper *w, const char ws[17]);
static int session_start(struct wrapper *w, const char *lock, const char *marker,
    const struct stat *ls, const struct proto_hint *early, const struct proto_hint *asked,
    int check);
static long parent_of(long pid);
static int ancestor_session(const struct config *cfg, const char *kdir, long pid, int levels,
    char ws[17]);
static int guess_from_parent(struct proto_hint *h, char *from, size_t cap);
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

void
session_ws_of_caller(const struct config *cfg, const char *kdir, const struct roots *r, char ws[17])
{
	struct stat st;
	char *dir, *lock;

	ws[0] = '\0';
	if (ancestor_session(cfg, kdir, (long)getpid(), 5, ws) == 0 || r->target == NULL)
		return;
	dir = path_dirname(r->target);
	lock = xasprintf("%s/Cargo.lock", dir);
	if (stat(lock, &st) == 0 && S_ISREG(st.st_mode))
		proto_hint_ws_id(lock, 0, ws);
	free(lock);
	free(dir);
}

/* Root, Cargo.lock, the target cargo was asked for (its command line or
 * CARGO_BUILD_TARGET, as the early hint sees it: the same for every compile
 * of the session, where a build script's or proc-macro's compile has no
 * --target in a cross build; else this compile's --target) and the profile
 * this compile shows (the out-dir under the target dir:
 * [<triple>/]<profile>/...), marked a check session's when cargo's command
 * builds no code (check). asked: what cargo's command line says, or NULL. */
static void
fill_hint(const struct wrapper *w, const char *lock, const struct proto_hint *asked, int check,
    struct proto_hint *h)
{
	const char *rel, *own = "", *triple;
	size_t n;

	memset(h, 0, sizeof *h);
	proto_hint_workspace(h, lock);
	for (size_t i = 0; i < w->args.opt_names.n; i++)
		if (strcmp(w->args.opt_names.v[i], "--target") == 0 && w->args.opt_values.v[i])
			own = w->args.opt_values.v[i];
	triple = asked != NULL ? asked->target : own;
	if (strlen(triple) <= PROTO_HINT_NAME_MAX && !strchr(triple, '/'))
		snprintf(h->target, sizeof h->target, "%s", triple);
	if (w->roots.target && w->args.out_dir) {
		char *abs = path_absolute(w->args.out_dir, w->roots.cwd);

		if ((rel = path_under(abs, w->roots.target)) != NULL) {
			rel += *rel == '/';
			if (own[0] && str_starts_with(rel, own) && rel[strlen(own)] == '/')
				rel += strlen(own) + 1;
			n = strcspn(rel, "/");
			if (n <= PROTO_HINT_NAME_MAX)
				snprintf(h->profile, sizeof h->profile, "%.*s", (int)n, rel);
		}
		free(abs);
	}
	/* the mode is cargo's command's: a check session's build scripts and
	 * proc-macros are built whole, as a build's */
	if (check)
		proto_hint_mark_check(h);
	snprintf(h->toolchain, sizeof h->toolchain, "%s", w->toolchain);
}

/* w's journal id of the session (run/sessions/<ws>.used), when a save would
 * take the lines. */
static void
set_ws(struct wrapper *w, const char ws[17])
{
	if (config_get_bool(w->cfg, "prefetch.save_manifest"))
		memcpy(w->ws, ws, 17);
}

int
session_hint(struct wrapper *w)
{
	char lock[PATH_MAX], from[PATH_MAX], ws[17], *marker, *link;
	struct proto_hint asked;
	struct stat ls;
	int start = 0, guessed, check;

	if (!config_has_remote(w->cfg) ||
	    (config_get_size(w->cfg, "prefetch.max_bytes") <= 0 &&
	        !config_get_bool(w->cfg, "prefetch.save_manifest")))
		return 0;
	/* most calls: the session the cargo command's first compile found */
	link = proto_hint_cargo_link(store_dir(w->store), (long)getppid());
	if (proto_hint_cargo_session(w->cfg, link, ws) == 0) {
		set_ws(w, ws);
		free(link);
		return 0;
	}
	/* once a command: its workspace and mode from cargo's command line; a
	 * build script's compile (a probe) is its cargo's */
	guessed = guess_from_parent(&asked, from, sizeof from) == 0;
	if (!guessed && ancestor_session(w->cfg, store_dir(w->store), getppid(), 3, ws) == 0) {
		proto_hint_cargo_link_set(link, ws);
		set_ws(w, ws);
		free(link);
		return 0;
	}
	if (find_lock(w, lock, sizeof lock, &ls) < 0 &&
	    (!guessed || proto_hint_find_lock_up(from, lock, sizeof lock, &ls) < 0)) {
		free(link);
		return 0;
	}
	check = guessed && proto_hint_is_check(asked.profile);
	proto_hint_ws_id(lock, check, ws);
	/* the journal's session id: which session a result was used by, for a
	 * session manifest */
	set_ws(w, ws);
	marker = proto_hint_marker(store_dir(w->store), ws);
	if (!proto_hint_fresh(w->cfg, marker, &ls))
		start = session_start(w, lock, marker, &ls, NULL, guessed ? &asked : NULL, check);
	proto_hint_cargo_link_set(link, ws);
	free(marker);
	free(link);
	return start;
}

/* The slow path, once a session: the hint left for the supervisor
 * (proto_hint_leave: a file, so nothing here waits for a supervisor, hung,
 * stopped or absent, and a hint is not lost when none runs yet). early: an
 * early hint's (its marker is <name>.early), or NULL for a compile's (filled
 * here from what cargo's command line says, asked, and its mode, check). 1
 * when no supervisor runs (the caller starts one, which takes the hint). */
static int
session_start(struct wrapper *w, const char *lock, const char *marker, const struct stat *ls,
    const struct proto_hint *early, const struct proto_hint *asked, int check)
{
	struct proto_hint h;

	if (early != NULL)
		h = *early;
	else
		fill_hint(w, lock, asked, check, &h);
	return proto_hint_leave(store_dir(w->store), w->cfg, marker, ls, &h) ==
	    PROTO_HINT_LEFT_NO_SUPERVISOR;
}

/* The pid of pid's parent (/proc/<pid>/stat: "<pid> (<command>) <state>
 * <ppid> ...", the command in parentheses that may hold anything), or -1. */
static long
parent_of(long pid)
{
	char path[64], *p, *end;
	struct buf b;
	long pp = -1;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	buf_init(&b);
	if (fs_read_file(path, &b, 4096) == 0 && b.len > 0) {
		buf_addstr(&b, "");
		p = strrchr(b.p, ')');
		if (p != NULL && p[1] == ' ' && p[2] != '\0' && p[3] == ' ') {
			errno = 0;
			pp = strtol(p + 4, &end, 10);
			if (errno != 0 || end == p + 4 || *end != ' ')
				pp = -1;
		}
	}
	buf_free(&b);
	return pp;
}

/* The session of the nearest of pid's ancestors (up to levels of them) that
 * has a cargo link within its cooldown: a build script's cargo, or a C
 * compiler's under a build script (under make, cmake...). 0 with its id. */
static int
ancestor_session(const struct config *cfg, const char *kdir, long pid, int levels, char ws[17])
{
	char *link;
	int rc = -1;

	for (int i = 0; i < levels && rc < 0 && (pid = parent_of(pid)) > 1; i++) {
		link = proto_hint_cargo_link(kdir, pid);
		rc = proto_hint_cargo_session(cfg, link, ws);
		free(link);
	}
	return rc;
}

/* What the parent process, if cargo, says of the session (session_guess_cargo,
 * its aliases read from its working directory), and (from not NULL) the
 * directory its workspace is looked for from: that of --manifest-path, else
 * cargo's own (a registry crate's compile runs elsewhere). -1: no guess. */
static int
guess_from_parent(struct proto_hint *h, char *from, size_t cap)
{
	char path[64], cwd[PATH_MAX], manifest[PATH_MAX];
	struct buf b;
	ssize_t k;
	int rc;

	snprintf(path, sizeof path, "/proc/%ld/cwd", (long)getppid());
	if ((k = readlink(path, cwd, sizeof cwd - 1)) > 0 && cwd[0] == '/')
		cwd[k] = '\0';
	else if (getcwd(cwd, sizeof cwd) == NULL)
		return -1;
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)getppid());
	buf_init(&b);
	rc = fs_read_file(path, &b, 65536) == 0 && b.len > 0 &&
	        session_guess_cargo(b.p, b.len, cwd, h, manifest, sizeof manifest) == 0 ?
	    0 :
	    -1;
	buf_free(&b);
	if (rc < 0 || from == NULL)
		return rc;
	if (manifest[0] != '\0') { /* the workspace of that Cargo.toml */
		char *abs = path_absolute(manifest, cwd), *dir = path_dirname(abs);

		snprintf(from, cap, "%s", dir);
		free(dir);
		free(abs);
	} else {
		snprintf(from, cap, "%s", cwd);
	}
	return 0;
}

int
session_hint_early(struct wrapper *w, const char *vv, size_t n)
{
	char lock[PATH_MAX], from[PATH_MAX], *early;
	struct stat ls;
	struct proto_hint h;
	int start = 0;

	if (!config_has_remote(w->cfg) || config_get_size(w->cfg, "prefetch.max_bytes") <= 0 ||
	    guess_from_parent(&h, from, sizeof from) < 0 ||
	    proto_hint_find_lock_up(from, lock, sizeof lock, &ls) < 0 ||
	    strlen(lock) >= sizeof h.lock)
		return 0; /* (a path too long for a hint: the compile's is refused alike) */
	/* none while a session of its mode is under way (hinted by a compile,
	 * or early already) */
	if ((early = proto_hint_early_due(store_dir(w->store), w->cfg, lock, &ls,
	         proto_hint_is_check(h.profile))) != NULL) {
		proto_hint_workspace(&h, lock);
		proto_hint_toolchain_id(vv, n, h.toolchain);
		h.guess = 1;
		start = session_start(w, lock, early, &ls, &h, NULL, 0);
		free(early);
	}
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
