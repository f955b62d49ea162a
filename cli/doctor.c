/* `kache doctor [--json]`: every check a new user's setup can fail, each with
 * its fix. A check says ok, warn (worth knowing, nothing broken) or fail
 * (kache will not work as set up); the exit status is 1 while any check
 * fails. Every wait is bounded: child processes (the version of kached) get
 * DOCTOR_CHILD_MS, the supervisor DOCTOR_SUP_MS, the remote its own deadlines
 * (remote/ and s3/ time out on their own). */
#include "cli/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cargo_cfg.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/fs.h"
#include "common/path.h"
#include "common/run.h"
#include "common/util.h"
#include "index/index.h"
#include "proto/client.h"
#include "proto/paths.h"
#include "remote/remote.h"
#include "store/pack.h"

#define DOCTOR_CHILD_MS 3000
#define DOCTOR_SUP_MS 2000
/* S3 refuses requests signed 15 minutes off; past a minute is worth a word */
#define DOCTOR_SKEW_FAIL_S (15 * 60)
#define DOCTOR_SKEW_WARN_S 60
#define FREE_FAIL_BYTES (256ULL << 20)
#define FREE_WARN_BYTES (1ULL << 30)

enum level { LV_OK, LV_WARN, LV_FAIL };

struct doctor {
	struct config *cfg;
	const char *dir; /* the store */
	json_t *checks;
	int failed;
};

static void say(struct doctor *d, const char *name, enum level lv, const char *fix, const char *fmt,
    ...) __attribute__((format(printf, 5, 6)));
static void chk_binaries(struct doctor *d);
static char *trace_library(const char *kache);
static void chk_wrapper(struct doctor *d);
static int wrapper_in_file(const char *path, char *val, size_t n);
static int wrapper_found(const char *path, void *arg);
static void chk_sccache(struct doctor *d);
static void chk_store(struct doctor *d);
static void chk_filesystem(struct doctor *d);
static const char *network_fs(long type);
static int reflink_works(const char *dir);
static void chk_imports(struct doctor *d);
static int direct_works(const char *dir);
static void chk_index(struct doctor *d);
static void chk_cap(struct doctor *d, uint64_t store_bytes);
static void chk_supervisor(struct doctor *d);
static void chk_remote(struct doctor *d);
static void chk_clock(struct doctor *d, long skew);
static int count_marker(const char *name, uint64_t size, int64_t mtime_ms, void *arg);
static void chk_locks(struct doctor *d);
static void print_text(const struct doctor *d);

/* Records one finding (fix NULL when there is nothing to do). */
static void
say(struct doctor *d, const char *name, enum level lv, const char *fix, const char *fmt, ...)
{
	static const char *names[] = { "ok", "warn", "fail" };
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	json_array_append_new(d->checks,
	    json_pack("{s:s, s:s, s:s, s:s?}", "name", name, "status", names[lv], "detail", detail,
	        "fix", fix));
	if (lv == LV_FAIL)
		d->failed = 1;
}

/* Where the wrapper at kache looks for kache-trace.so: lib/kache/ beside the
 * bin/ of the file it runs from (a symlink followed, as /proc/self/exe is). */
static char *
trace_library(const char *kache)
{
	char *real = realpath(kache, NULL), *dir, *lib;

	dir = path_dirname(real != NULL ? real : kache);
	lib = xasprintf("%s/../lib/kache/kache-trace.so", dir);
	free(dir);
	free(real);
	return lib;
}

/* kache on PATH, kached beside it (the wrapper execs that one), both of this
 * version, and lib/kache/kache-trace.so (wrapper/trace.c) where the wrapper
 * looks for it. */
static void
chk_binaries(struct doctor *d)
{
	char *kache = path_find_program("kache"), *kached, *dirname, *trace, want[64], got[256];
	char *argv[3] = { NULL, "version", NULL };

	if (kache == NULL) {
		say(d, "binaries", LV_FAIL,
		    "install kache (`cmake --install build`) or add its directory to PATH",
		    "kache is not on PATH");
		return;
	}
	dirname = xstrdup(kache);
	*strrchr(dirname, '/') = '\0';
	kached = xasprintf("%s/kached", dirname);
	trace = trace_library(kache);
	argv[0] = kached;
	snprintf(want, sizeof want, "kache %s\n", KACHE_VERSION);
	if (access(kached, X_OK) != 0)
		say(d, "binaries", LV_FAIL,
		    "install kached beside kache (both come from one build)",
		    "%s has no kached beside it", kache);
	else if (run_capture(argv, NULL, got, sizeof got, DOCTOR_CHILD_MS) != 0 ||
	    strcmp(got, want) != 0)
		say(d, "binaries", LV_FAIL, "install kache and kached from one build",
		    "%s says '%.*s', this kached is %s", kached, (int)strcspn(got, "\n"), got,
		    KACHE_VERSION);
	else if (config_get_bool(d->cfg, "cache.trace_proc_macros") && access(trace, R_OK) != 0)
		say(d, "binaries", LV_FAIL,
		    "install kache completely (`cmake --install build` puts lib/kache/ beside "
		    "bin/), or set cache.trace_proc_macros = false",
		    "%s is missing: crates with dependencies are compiled, never stored (what "
		    "a proc macro reads would be unknown)",
		    trace);
	else
		say(d, "binaries", LV_OK, NULL, "%s and kached beside it, version %s", kache,
		    KACHE_VERSION);
	free(trace);
	free(dirname);
	free(kached);
	free(kache);
}

/* build.rustc-wrapper in one config file into val: 1 set, 0 not. */
static int
wrapper_in_file(const char *path, char *val, size_t n)
{
	struct cargo_cfg_scan r;
	struct buf b;

	buf_init(&b);
	if (fs_read_file(path, &b, (size_t)16 << 20) < 0) {
		buf_free(&b);
		return 0;
	}
	cargo_cfg_scan(b.p, b.len, &r);
	buf_free(&b);
	snprintf(val, n, "%s", r.value);
	return r.found;
}

/* The value found by a walk of cargo's config files (cargo_cfg_walk). */
struct wrapper_ask {
	char *val;
	size_t n;
};

static int
wrapper_found(const char *path, void *arg)
{
	struct wrapper_ask *q = arg;

	return wrapper_in_file(path, q->val, q->n);
}

/* The wrapper cargo will use, in cargo's order: RUSTC_WRAPPER,
 * CARGO_BUILD_RUSTC_WRAPPER, .cargo/config.toml from cwd up, then
 * $CARGO_HOME/config.toml. It must be kache. */
static void
chk_wrapper(struct doctor *d)
{
	char cwd[PATH_MAX], val[CARGO_CFG_VALUE_MAX], *where = NULL;
	const char *envs[] = { "RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER" };
	struct wrapper_ask ask = { val, sizeof val };

	for (size_t i = 0; where == NULL && i < 2; i++)
		if (getenv(envs[i]) && getenv(envs[i])[0]) {
			snprintf(val, sizeof val, "%s", getenv(envs[i]));
			where = xasprintf("$%s", envs[i]);
		}
	if (where == NULL) /* (with no working directory, CARGO_HOME's still counts) */
		cargo_cfg_walk(getcwd(cwd, sizeof cwd) != NULL ? cwd : ".", wrapper_found, &ask,
		    &where);
	if (where == NULL)
		say(d, "wrapper", LV_FAIL, "run `kache init` (or export RUSTC_WRAPPER=kache)",
		    "cargo is not told to use kache: no RUSTC_WRAPPER, no build.rustc-wrapper");
	else if (!cargo_cfg_is_kache(val))
		say(d, "wrapper", LV_FAIL, "set it to kache (`kache init` explains what it found)",
		    "%s sets the rustc wrapper to '%s', not kache", where, val);
	else
		say(d, "wrapper", LV_OK, NULL, "%s: rustc wrapper = %s", where, val);
	free(where);
}

/* sccache as RUSTC_WORKSPACE_WRAPPER, or set up beside kache: both wrap rustc. */
static void
chk_sccache(struct doctor *d)
{
	const char *vars[] = { "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER",
		"CARGO_BUILD_RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER" };
	char val[CARGO_CFG_VALUE_MAX], *home, *f;

	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if (getenv(vars[i]) && strstr(getenv(vars[i]), "sccache")) {
			say(d, "sccache", LV_FAIL, "unset it: kache replaces sccache",
			    "$%s=%s: sccache is configured too", vars[i], getenv(vars[i]));
			return;
		}
	if ((home = cargo_cfg_home()) != NULL) {
		f = cargo_cfg_file(home);
		if (wrapper_in_file(f, val, sizeof val) && strstr(val, "sccache")) {
			say(d, "sccache", LV_FAIL, "run `kache init` after removing that line",
			    "%s sets build.rustc-wrapper = %s", f, val);
			free(f), free(home);
			return;
		}
		free(f), free(home);
	}
	say(d, "sccache", LV_OK, NULL, "sccache is not configured");
}

/* The store: a directory this user can write (or one that can be made). */
static void
chk_store(struct doctor *d)
{
	struct stat st;

	if (stat(d->dir, &st) < 0 && errno == ENOENT)
		say(d, "store", LV_OK, NULL, "%s does not exist yet; the first build creates it",
		    d->dir);
	else if (!S_ISDIR(st.st_mode))
		say(d, "store", LV_FAIL, "point cache.dir (KACHE_DIR) at a directory",
		    "%s is not a directory", d->dir);
	else if (access(d->dir, R_OK | W_OK | X_OK) < 0)
		say(d, "store", LV_FAIL,
		    "give it to this user (chown -R), or use a store of your own (KACHE_DIR)",
		    "%s is not writable by uid %ld (owner uid %ld, mode %o)", d->dir,
		    (long)geteuid(), (long)st.st_uid, (unsigned)(st.st_mode & 07777));
	else
		say(d, "store", LV_OK, NULL, "%s, writable", d->dir);
}

/* The magic of a network filesystem (statfs f_type), or NULL. */
static const char *
network_fs(long type)
{
	switch ((unsigned long)type & 0xffffffffUL) {
	case 0x6969UL: return "NFS";
	case 0x517bUL: return "SMB";
	case 0xff534d42UL: return "CIFS";
	case 0xfe534d42UL: return "SMB2";
	case 0x01021997UL: return "9p";
	case 0x00c36400UL: return "Ceph";
	case 0x65735546UL: return "FUSE";
	case 0x5346414fUL: return "AFS";
	default: return NULL;
	}
}

/* 1 when a reflink (FICLONE) works in dir: tried on two small temp files. */
static int
reflink_works(const char *dir)
{
	char *a = xasprintf("%s/.doctor-reflink.%ld", dir, (long)getpid());
	char *b = xasprintf("%s.b", a);
	int in, out, cloned = 0;

	if (fs_write_atomic(a, "kache doctor\n", 13, 0600) == 0 &&
	    (in = open(a, O_RDONLY | O_CLOEXEC)) >= 0) {
		out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (out >= 0 && fs_clone_or_copy_fd(in, out, &cloned) < 0)
			cloned = 0;
		if (out >= 0)
			close(out);
		close(in);
	}
	unlink(a), unlink(b);
	free(a), free(b);
	return cloned;
}

/* The store's filesystem: local (flock and rename work as kache needs),
 * reflinks (restores cost no copy), free space. */
static void
chk_filesystem(struct doctor *d)
{
	struct statfs sf;
	struct statvfs sv;
	const char *net;
	uint64_t avail;
	char sz[32];

	if (statfs(d->dir, &sf) < 0 || statvfs(d->dir, &sv) < 0)
		return; /* no store yet: chk_store said so */
	if ((net = network_fs((long)sf.f_type)) != NULL)
		say(d, "filesystem", LV_WARN,
		    "put cache.dir on a local disk; share through a remote ([remote] type) instead",
		    "%s is on %s (a network filesystem): locks and renames may not hold", d->dir,
		    net);
	else if (access(d->dir, W_OK) == 0)
		say(d, "filesystem", LV_OK, NULL, "local filesystem, reflink %s",
		    reflink_works(d->dir) ? "works (restores share blocks)" :
		                            "not supported (restores copy)");
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	format_size(avail, sz, sizeof sz);
	if (avail < FREE_FAIL_BYTES)
		say(d, "free space", LV_FAIL,
		    "free space on that disk, or `kache gc --max-size SIZE` to shrink the store",
		    "only %s free under %s", sz, d->dir);
	else if (avail < FREE_WARN_BYTES)
		say(d, "free space", LV_WARN, "free space, or lower cache.max_size",
		    "%s free under %s", sz, d->dir);
	else
		say(d, "free space", LV_OK, NULL, "%s free", sz);
}

/* 1 when a file written with O_DIRECT in dir reads back right, 0 when the
 * filesystem refuses direct I/O, -1 when nothing could be tried. */
static int
direct_works(const char *dir)
{
	static const char probe[] = "kache doctor: a direct write\n";
	char *p = xasprintf("%s/.doctor-direct.%ld", dir, (long)getpid());
	struct buf b;
	int rc = -1;

	buf_init(&b);
	if (fs_write_new_direct(p, probe, sizeof probe - 1, 0600) == 0)
		rc = fs_read_file(p, &b, 4096) == 0 && b.len == sizeof probe - 1 &&
		    memcmp(b.p, probe, b.len) == 0;
	else if (errno == EINVAL)
		rc = 0;
	unlink(p);
	buf_free(&b);
	free(p);
	return rc;
}

/* Whether the store's filesystem takes O_DIRECT (else imports write through
 * the page cache). cache.import_writes is one of its values (a value that is
 * none was said as the settings loaded, and is auto). */
static void
chk_imports(struct doctor *d)
{
	enum pack_writes w = PACK_WRITES_AUTO;
	int direct;

	(void)pack_writes_parse(config_get(d->cfg, "cache.import_writes"), &w);
	if (access(d->dir, W_OK) < 0)
		return; /* chk_store said why */
	direct = direct_works(d->dir);
	if (direct < 0)
		say(d, "imports", LV_WARN, "check the store's free space and permissions",
		    "cache.import_writes = %s; a test file could not be written in %s: %s",
		    pack_writes_name(w), d->dir, strerror(errno));
	else
		say(d, "imports", LV_OK, NULL, "cache.import_writes = %s; O_DIRECT %s",
		    pack_writes_name(w),
		    direct ?
		        "works on the store's filesystem" :
		        "refused by the store's filesystem: imports write through the page cache");
}

/* cache.max_size against what the store's disk holds: the store and the
 * free space. A cap past them lets the store fill the disk (and the build's
 * next write fail) before any gc keeps it to its cap. store_bytes: the
 * index's, 0 when unknown. */
static void
chk_cap(struct doctor *d, uint64_t store_bytes)
{
	int64_t cap = config_get_size(d->cfg, "cache.max_size");
	struct statvfs sv;
	uint64_t avail, room;
	char c[32], st[32], fr[32], fit[32], fix[160];

	if (cap < 0 || statvfs(d->dir, &sv) < 0)
		return; /* a bad size is config's to say; no store: chk_store said so */
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	room = store_bytes + avail;
	format_size((uint64_t)cap, c, sizeof c);
	format_size(store_bytes, st, sizeof st);
	format_size(avail, fr, sizeof fr);
	if ((uint64_t)cap <= room) {
		say(d, "cap", LV_OK, NULL, "cache.max_size %s; the store %s, %s free", c, st, fr);
		return;
	}
	format_size(room - room / 4, fit, sizeof fit);
	snprintf(fix, sizeof fix,
	    "lower cache.max_size (KACHE_MAX_SIZE) to %s or less, or free space on that disk", fit);
	say(d, "cap", LV_WARN, fix,
	    "cache.max_size %s is more than the store (%s) and the free space of its disk (%s) "
	    "hold: the store can fill the disk before the gc keeps it to its cap",
	    c, st, fr);
}

/* The index opens (read-only: nothing written, no lock taken); the store's
 * size it knows goes to the cap's check. */
static void
chk_index(struct doctor *d)
{
	char *db = xasprintf("%s/index", d->dir);
	struct index_stats st;
	uint64_t bytes = 0;
	struct index *ix;

	memset(&st, 0, sizeof st);
	if (access(db, F_OK) != 0)
		say(d, "index", LV_OK, NULL, "no index yet; the first `kache stats` builds it");
	else if ((ix = index_open_readonly(d->dir)) == NULL)
		say(d, "index", LV_FAIL,
		    "run `kache stats` (it rebuilds a damaged index from the store)",
		    "%s cannot be opened", db);
	else {
		if (index_stats(ix, &st) == 0)
			bytes = st.store_bytes;
		index_stats_clear(&st);
		index_free(&ix);
		say(d, "index", LV_OK, NULL, "%s opens", db);
	}
	free(db);
	chk_cap(d, bytes);
}

/* Running, responsive, of this version; a stopped one is no fault (the wrapper
 * starts one on demand), a hung one is. */
static void
chk_supervisor(struct doctor *d)
{
	struct proto_paths p;
	struct msg req, rep;
	enum proto_result r;
	json_error_t jerr;
	json_t *st;
	const char *v;

	if (proto_paths_init(&p, d->dir) < 0)
		return;
	if (!proto_supervisor_running(&p)) {
		say(d, "supervisor", LV_OK, NULL,
		    "not running (started on demand; `kache "
		    "supervisor start` starts one now)");
		return;
	}
	msg_init(&req, MSG_STATUS, 0);
	req.epoch = proto_client_epoch();
	r = proto_client_request(d->dir, &req, &rep, clock_ms() + DOCTOR_SUP_MS);
	msg_clear(&req);
	if (r != PROTO_OK || rep.type != MSG_STATUS_REPLY || rep.text == NULL ||
	    (st = json_loads(rep.text, 0, &jerr)) == NULL) {
		say(d, "supervisor", LV_FAIL,
		    "see `kache daemon log`; end it (kill the pid in run/supervisor.pid), then "
		    "`kache supervisor start`",
		    "hung: it holds the lock of %s but did not answer within %d s (%s)", d->dir,
		    DOCTOR_SUP_MS / 1000, proto_result_name(r));
		msg_clear(&rep);
		return;
	}
	v = json_string_value(json_object_get(st, "version"));
	if (v == NULL || strcmp(v, KACHE_VERSION) != 0)
		say(d, "supervisor", LV_FAIL, "`kache supervisor restart` runs this version",
		    "running version %s, this kache is %s", v ? v : "?", KACHE_VERSION);
	else
		say(d, "supervisor", LV_OK, NULL, "running, pid %lld, version %s",
		    (long long)json_integer_value(json_object_get(st, "pid")), v);
	json_decref(st);
	msg_clear(&rep);
}

static int
count_marker(const char *name, uint64_t size, int64_t mtime_ms, void *arg)
{
	(void)size;
	(void)mtime_ms;
	if (strcmp(name, "kache-remote-format") == 0)
		(*(int *)arg)++;
	return 0;
}

/* The remote, reached with these settings and credentials: a listing of the
 * format marker (one small request), then our clock against the remote's
 * (S3's Date header; the remote refuses requests 15 minutes off). */
static void
chk_remote(struct doctor *d)
{
	struct remote *r;
	enum remote_result rr;
	char err[512];
	int marker = 0, ro = config_get_bool(d->cfg, "s3.read_only");
	const char *type = config_get(d->cfg, "remote.type");
	long skew;

	if (!config_has_remote(d->cfg)) {
		say(d, "remote", LV_OK, NULL, "none configured (local cache only)");
		return;
	}
	if ((r = remote_open(d->cfg, err, sizeof err)) == NULL) {
		say(d, "remote", LV_FAIL, "fix the [remote] settings (`kache config` shows them)",
		    "%s remote cannot be opened: %s", type, err);
		return;
	}
	rr = remote_list(r, "kache-remote-format", count_marker, &marker);
	if (remote_clock_skew(r, &skew) < 0)
		skew = LONG_MIN;
	remote_free(&r);
	if (skew != LONG_MIN)
		chk_clock(d, skew);
	if (rr == REMOTE_OFF)
		say(d, "remote", LV_FAIL,
		    "check the credentials, the bucket, and the clock (a skewed clock is refused "
		    "too)",
		    "the %s remote refused these credentials or has another format", type);
	else if (rr != REMOTE_OK)
		say(d, "remote", LV_FAIL, "check the endpoint or path and the network",
		    "the %s remote could not be reached (see the log lines above)", type);
	else
		say(d, "remote", LV_OK, NULL, "%s remote reachable, %s, %s%s", type,
		    marker ? "format marker present" : "empty (the first upload writes the marker)",
		    ro ? "read-only" : "read-write", "");
}

/* Our clock against the remote's, skew seconds ahead of ours: S3 refuses a
 * request signed 15 minutes off; a minute is worth a warning. */
static void
chk_clock(struct doctor *d, long skew)
{
	long a = skew < 0 ? -skew : skew;

	if (a >= DOCTOR_SKEW_FAIL_S)
		say(d, "clock", LV_FAIL,
		    "fix this machine's clock (NTP: `timedatectl set-ntp true`)",
		    "this machine's clock is %ld minutes %s the remote's; requests are refused",
		    a / 60, skew > 0 ? "behind" : "ahead of");
	else if (a >= DOCTOR_SKEW_WARN_S)
		say(d, "clock", LV_WARN,
		    "fix this machine's clock (NTP: `timedatectl set-ntp true`)",
		    "this machine's clock is %ld s %s the remote's", a,
		    skew > 0 ? "behind" : "ahead of");
	else
		say(d, "clock", LV_OK, NULL, "within %ld s of the remote's", a);
}

/* Locks no process holds any more and files that claim one does: a pid file
 * naming a dead process while no supervisor holds the lock; the index lock
 * held while no supervisor runs (a kache command still working, or stuck). */
static void
chk_locks(struct doctor *d)
{
	struct proto_paths p;
	char *il = xasprintf("%s/index.lock", d->dir);
	long pid = 0;
	struct buf b;
	int fd, stale = 0;

	buf_init(&b);
	if (proto_paths_init(&p, d->dir) == 0 && !proto_supervisor_running(&p) &&
	    fs_read_file(p.pidfile, &b, 64) == 0 && b.len > 0) {
		pid = strtol(b.p, NULL, 10);
		stale = pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
	}
	buf_free(&b);
	if (stale)
		say(d, "locks", LV_FAIL,
		    "remove it (`rm` it): the supervisor died without cleaning up; `kache "
		    "supervisor start` writes a new one",
		    "stale pid file: %s names pid %ld, which is gone", p.pidfile, pid);
	if ((fd = open(il, O_RDONLY | O_CLOEXEC)) >= 0) {
		if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK &&
		    !proto_supervisor_running(&p)) {
			say(d, "locks", LV_WARN,
			    "wait for that command; if none runs, find it with `fuser %s`",
			    "a kache command holds the index (%s) with no supervisor running", il);
			stale = 1;
		}
		close(fd);
	}
	if (!stale)
		say(d, "locks", LV_OK, NULL, "no stale lock or pid file");
	free(il);
}

static void
print_text(const struct doctor *d)
{
	json_t *c;
	size_t i;

	json_array_foreach(d->checks, i, c) {
		const char *fix = json_string_value(json_object_get(c, "fix"));

		printf("%-5s %-11s %s\n", json_string_value(json_object_get(c, "status")),
		    json_string_value(json_object_get(c, "name")),
		    json_string_value(json_object_get(c, "detail")));
		if (fix)
			printf("      fix: %s\n", fix);
	}
	printf(d->failed ? "kache doctor: something is wrong (see fix: above)\n" :
	                   "kache doctor: all good\n");
}

int
cmd_doctor(int argc, char **argv)
{
	struct doctor d = { NULL, NULL, NULL, 0 };
	struct buf warnings;
	const char *p, *line;
	size_t n;
	json_t *doc;
	char *out;
	int json = argc == 2 && strcmp(argv[1], "--json") == 0;

	if (argc > 2 || (argc == 2 && !json)) {
		fprintf(stderr, "usage: kache doctor [--json]\n");
		return EXIT_USAGE;
	}
	buf_init(&warnings);
	d.cfg = config_load_warn(CONFIG_WARN_NONE, &warnings);
	d.checks = json_array();
	p = warnings.p;
	while (warnings.len && str_next_line(&p, warnings.p + warnings.len, &line, &n) == 0)
		say(&d, "config", LV_WARN,
		    "fix the value or remove it (`kache config` shows each setting and where it "
		    "came from)",
		    "%.*s", (int)n, line);
	buf_free(&warnings);
	d.dir = config_get(d.cfg, "cache.dir");
	chk_binaries(&d);
	chk_wrapper(&d);
	chk_sccache(&d);
	chk_store(&d);
	chk_filesystem(&d);
	chk_imports(&d);
	chk_index(&d);
	chk_supervisor(&d);
	chk_remote(&d);
	chk_locks(&d);
	if (json) {
		doc =
		    json_pack("{s:i, s:b, s:O}", "schema", 1, "ok", !d.failed, "checks", d.checks);
		out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", out);
		free(out);
		json_decref(doc);
	} else {
		print_text(&d);
	}
	json_decref(d.checks);
	config_free(&d.cfg);
	return d.failed ? 1 : 0;
}
