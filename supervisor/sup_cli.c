/* `kache supervisor ...` (alias `kache daemon ...`): the user's side. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/fs.h"
#include "common/log.h"
#include "proto/client.h"
#include "proto/paths.h"
#include "remote/remote.h"
#include "remote/session.h"
#include "store/pending.h"
#include "store/store.h"
#include "supervisor/sup_internal.h"

#define START_WAIT_MS 5000
#define STOP_WAIT_MS (SUP_DRAIN_MS + SUP_GRACE_MS + 5000)
#define CLI_DEADLINE_MS 2000
#define EXIT_NOT_RUNNING 3
#define EXIT_HUNG 4
/* How long `log` (following) waits for a log file that went away (rotated)
 * before it concludes the log is gone and exits. */
#define LOG_GONE_MS 3000

static char *configured_store_dir(void);
static int request(const char *dir, enum msg_type type, struct msg *rep, const char *role,
    int64_t count);
static int cmd_stop(const char *dir, int64_t flush_ms);
static void save_manifests(void);
static int wait_started(const struct proto_paths *p);
static int uploads_left(const char *dir);
static int other_owner(const struct proto_paths *p);
static int stop_flush_ms(int argc, char **argv, int64_t *ms);
static int cmd_status(const char *dir, int json);
static int cmd_scale(const char *dir, const char *arg);
static int cmd_log(const char *dir, int argc, char **argv);
static int cmd_install(const char *dir, int install);
static void print_status(const char *dir, json_t *root);
static void print_why_down(const char *dir, json_t *w);
static void print_prefetch(json_t *pf);
static void print_counts(const json_t *st);
static json_t *index_counts(const char *dir);
static int status_unanswered(const char *dir, int r, int json);
static int tail_file(const char *path, long n, int follow);
static int follow_file(const char *path, size_t off);

static char *
configured_store_dir(void)
{
	struct config *cfg;
	char *dir;

	cfg = config_load_warn(CONFIG_WARN_NONE, NULL);
	dir = xstrdup(config_get(cfg, "cache.dir"));
	config_free(&cfg);
	return dir;
}

/* One request with the CLI's (generous) deadline. 0 when rep holds a reply. */
static int
request(const char *dir, enum msg_type type, struct msg *rep, const char *role, int64_t count)
{
	struct msg req;
	enum proto_result r;

	msg_init(&req, type, 0);
	if (role)
		snprintf(req.role, sizeof req.role, "%s", role);
	req.count = count;
	req.epoch = proto_client_epoch();
	r = proto_client_request(dir, &req, rep, clock_ms() + CLI_DEADLINE_MS);
	msg_clear(&req);
	return r == PROTO_OK ? 0 : -(int)r - 1;
}

/* Starts a supervisor for dir unless one answers. quiet: say nothing when one
 * was running already. 0, or an exit status. */
int
sup_start(const char *dir, int quiet)
{
	struct proto_paths p;
	struct msg rep;
	char exe[PROTO_PATH_MAX], err[512];
	int64_t deadline = clock_ms() + START_WAIT_MS;
	ssize_t n;

	if (proto_paths_init(&p, dir) == -1)
		return 1;
	if (proto_paths_prepare(&p, 1, err, sizeof err) == -1) {
		fprintf(stderr, "kache supervisor: %s\n", err);
		return KACHE_EXIT_CONFIG;
	}
	if (request(dir, MSG_PING, &rep, NULL, 0) == 0) {
		msg_clear(&rep);
		if (!quiet)
			printf("kache supervisor: already running for %s\n", dir);
		return 0;
	}
	if ((n = readlink("/proc/self/exe", exe, sizeof exe - 1)) <= 0)
		return 1;
	exe[n] = '\0';
	if (proto_supervisor_start(dir, exe, 1) == -1)
		return 1;
	while (clock_ms() < deadline) {
		if (request(dir, MSG_PING, &rep, NULL, 0) == 0) {
			msg_clear(&rep);
			printf("kache supervisor: started for %s\n", dir);
			return 0;
		}
		usleep(20000);
	}
	fprintf(stderr, "kache supervisor: did not answer within %d s; see %s/supervisor.log\n",
	    START_WAIT_MS / 1000, p.logdir);
	return 1;
}

/* 1 (said on stderr) when the run directory belongs to another user, whose
 * supervisor we can neither see nor stop: it would look "not running". */
static int
other_owner(const struct proto_paths *p)
{
	struct passwd *pw;
	struct stat st;

	if (stat(p->rundir, &st) == -1 || st.st_uid == geteuid() || geteuid() == 0)
		return 0;
	/* cppcheck-suppress getpwuidCalled ; the CLI has one thread */
	pw = getpwuid(st.st_uid);
	fprintf(stderr,
	    "kache supervisor: %s belongs to another user (uid %ld%s%s); only that "
	    "user (or root) can see or stop its supervisor: run the command as that user, or "
	    "use a store of your own (KACHE_DIR)\n",
	    p->rundir, (long)st.st_uid, pw ? ", " : "", pw ? pw->pw_name : "");
	return 1;
}

/* Stops the supervisor of dir. With flush_ms > 0 every upload intent is
 * flushed to the remote first (sup_flush), for at most that long: the end of
 * a CI job. Exit status 1 when something was left (said by sup_flush). */
static int
cmd_stop(const char *dir, int64_t flush_ms)
{
	struct proto_paths p;
	struct msg rep;
	int64_t deadline;
	int rc = 0;

	if (proto_paths_init(&p, dir) == -1)
		return 1;
	if (other_owner(&p))
		return 1;
	if (!wait_started(&p) && (flush_ms <= 0 || !uploads_left(dir))) {
		printf("kache supervisor: not running\n");
		return 0;
	}
	/* one that answers: running, just started by a wrapper, or started here
	 * because uploads are left and nobody else would send them */
	if (sup_start(dir, 1) != 0)
		return 1;
	if (flush_ms > 0)
		rc = sup_flush(dir, flush_ms);
	save_manifests();
	if (!proto_supervisor_running(&p))
		return rc;
	if (request(dir, MSG_STOP, &rep, NULL, 0) != 0) {
		fprintf(stderr, "kache supervisor: no answer to stop\n");
		return 1;
	}
	msg_clear(&rep);
	deadline = clock_ms() + STOP_WAIT_MS;
	while (proto_supervisor_running(&p)) {
		if (clock_ms() > deadline) {
			fprintf(stderr, "kache supervisor: still running after %d s\n",
			    STOP_WAIT_MS / 1000);
			return 1;
		}
		usleep(20000);
	}
	printf("kache supervisor: stopped\n");
	return rc;
}

/* The end of the job: its build sessions become session manifests, unless
 * prefetch.save_manifest is off (a failure is said, and does not fail stop);
 * then the job ends all the same (a recache's replaced marks). */
static void
save_manifests(void)
{
	struct config *cfg;

	cfg = config_load_warn(CONFIG_WARN_NONE, NULL);
	if (config_has_remote(cfg) && config_get_bool(cfg, "prefetch.save_manifest"))
		sup_save_manifests(cfg, 1);
	else if (config_has_remote(cfg))
		remote_session_end_job(config_get(cfg, "cache.dir"));
	config_free(&cfg);
}

/* 1 when a supervisor runs, or came up within START_WAIT_MS while one was
 * being started (a wrapper's spawn an instant before `stop`). */
static int
wait_started(const struct proto_paths *p)
{
	int64_t deadline = clock_ms() + START_WAIT_MS;

	while (
	    !proto_supervisor_running(p) && proto_supervisor_starting(p) && clock_ms() < deadline)
		usleep(20000);
	return proto_supervisor_running(p);
}

/* 1 when intents wait for upload or background stores are still running. */
static int
uploads_left(const char *dir)
{
	char *path = store_intent_path(dir, NULL);
	struct dirent *de;
	DIR *d = opendir(path);
	int left = store_pending_live(dir) > 0;

	free(path);
	while (d != NULL && !left && (de = readdir(d)) != NULL)
		left = de->d_name[0] != '.';
	if (d != NULL)
		closedir(d);
	return left;
}

/* `stop [--timeout DURATION]`: how long to flush first; 0 with no remote.
 * -1 on a usage error (said). */
static int
stop_flush_ms(int argc, char **argv, int64_t *ms)
{
	struct config *cfg;
	const char *flag = argc == 4 && strcmp(argv[2], "--timeout") == 0 ? argv[3] : NULL;

	if (argc != 2 && flag == NULL) {
		fprintf(stderr, "usage: kache supervisor stop [--timeout DURATION]\n");
		return -1;
	}
	cfg = config_load_warn(CONFIG_WARN_NONE, NULL);
	*ms = sup_flush_timeout(cfg, flag);
	if (*ms >= 0 && !config_has_remote(cfg))
		*ms = 0;
	config_free(&cfg);
	return *ms < 0 ? -1 : 0;
}

static void
print_status(const char *dir, json_t *root)
{
	json_t *w, *q = json_object_get(root, "queue");
	size_t i;

	printf("supervisor: pid %lld, version %s, up %llds, %s, store %s, remote %s\n",
	    json_integer_value(json_object_get(root, "pid")),
	    json_string_value(json_object_get(root, "version")),
	    json_integer_value(json_object_get(root, "uptime_s")),
	    json_string_value(json_object_get(root, "state")),
	    json_string_value(json_object_get(root, "kache_dir")),
	    json_string_value(json_object_get(root, "remote")));
	printf("queue: %lld uploads queued, %lld uploading, %lld fetches\n",
	    json_integer_value(json_object_get(q, "uploads")),
	    json_integer_value(json_object_get(q, "uploading")),
	    json_integer_value(json_object_get(q, "fetches")));
	print_prefetch(json_object_get(root, "prefetch"));
	printf("%-10s %5s %8s %-12s %8s %8s %6s %5s  %s\n", "ROLE", "INDEX", "PID", "STATE",
	    "UPTIME", "RESTARTS", "JOBS", "QUEUE", "LAST EXIT");
	json_array_foreach(json_object_get(root, "workers"), i, w)
		printf("%-10s %5lld %8lld %-12s %7llds %8lld %6lld %5lld  %s\n",
		    json_string_value(json_object_get(w, "role")),
		    json_integer_value(json_object_get(w, "index")),
		    json_integer_value(json_object_get(w, "pid")),
		    json_string_value(json_object_get(w, "state")),
		    json_integer_value(json_object_get(w, "uptime_s")),
		    json_integer_value(json_object_get(w, "restarts")),
		    json_integer_value(json_object_get(w, "jobs_done")),
		    json_integer_value(json_object_get(w, "queue")),
		    json_string_value(json_object_get(w, "last_exit")));
	json_array_foreach(json_object_get(root, "workers"), i, w)
		print_why_down(dir, w);
}

void
sup_worker_warning(const char *dir, const char *role, long long index, char *out, size_t n)
{
	char *path = xasprintf("%s/logs/%s.%lld.log", dir, role, index);

	log_last_warning(path, out, n);
	free(path);
}

/* A worker that is not running (failed, or backing off after a death): why,
 * with its log's last warning, which usually names the cause (a worker's
 * exit alone says "configuration error", not which). */
static void
print_why_down(const char *dir, json_t *w)
{
	const char *role = json_string_value(json_object_get(w, "role")),
	           *state = json_string_value(json_object_get(w, "state")),
	           *last = json_string_value(json_object_get(w, "last_exit"));
	long long index = json_integer_value(json_object_get(w, "index"));
	char warning[512];

	if (role == NULL || state == NULL || last == NULL || strcmp(last, "-") == 0 ||
	    (strcmp(state, "failed") != 0 && strcmp(state, "backing off") != 0))
		return;
	sup_worker_warning(dir, role, index, warning, sizeof warning);
	printf("%s.%lld %s: %s; ", role, index,
	    strcmp(state, "failed") == 0 ? "does not run" : "restarting", last);
	if (warning[0])
		printf("its log's last warning: %s\n", warning);
	else
		printf("see `kache supervisor log %s.%lld`\n", role, index);
}

#define PF(o, name) ((long long)json_integer_value(json_object_get((o), (name))))

/* Three lines of the status document's "prefetch" (none from a supervisor
 * too old to have it). */
static void
print_prefetch(json_t *pf)
{
	json_t *why = json_object_get(pf, "hints_dropped_why"),
	       *sk = json_object_get(pf, "skipped"), *from = json_object_get(pf, "packs_from");

	if (pf == NULL)
		return;
	printf("prefetch: %lld hints (%lld early, %lld served by an early one; %lld dropped: "
	       "%lld session running, %lld no prefetch, %lld queue full, %lld stale, %lld "
	       "replaced; %lld malformed), %lld sessions (%lld done, %lld lost, %lld queued), "
	       "%lld packs (%lld bytes), %lld hits\n",
	    PF(pf, "hints"), PF(pf, "hints_early"), PF(pf, "hints_served_early"),
	    PF(pf, "hints_dropped"), PF(why, "session_running"), PF(why, "no_prefetch"),
	    PF(why, "queue_full"), PF(why, "stale"), PF(why, "replaced"), PF(pf, "hints_malformed"),
	    PF(pf, "sessions"), PF(pf, "sessions_done"), PF(pf, "sessions_lost"),
	    PF(pf, "sessions_queued"), PF(pf, "packs"), PF(pf, "bytes"), PF(pf, "hits"));
	printf("prefetch packs from: planner %lld, exact session %lld, closest session %lld, "
	       "packs %lld; %lld came in %lld bundle parts\n",
	    PF(from, "planner"), PF(from, "exact_session"), PF(from, "closest_session"),
	    PF(from, "packs"), PF(pf, "packs_from_bundle_parts"), PF(pf, "bundle_parts"));
	printf("prefetch skipped: %lld present, %lld over max_bytes, %lld rejected, %lld failed, "
	       "%lld listings failed, %lld Cargo.lock refused\n",
	    PF(sk, "present"), PF(sk, "over_max_bytes"), PF(sk, "rejected"), PF(sk, "failed"),
	    PF(sk, "listings_failed"), PF(sk, "lock_refused"));
}

/* The hits and misses beside the workers: the indexer's stats (the INDEX_STATS
 * request, as `kache stats` asks it), NULL when they do not come in time. */
static json_t *
index_counts(const char *dir)
{
	struct msg rep;
	json_error_t jerr;
	json_t *st = NULL;

	if (request(dir, MSG_INDEX_STATS, &rep, NULL, 0) == 0 && rep.type == MSG_INDEX_REPLY &&
	    rep.text != NULL)
		st = json_loads(rep.text, 0, &jerr);
	msg_clear(&rep);
	return st;
}

static void
print_counts(const json_t *st)
{
#define C(k) ((long long)json_integer_value(json_object_get(st, k)))
	printf("compiles: %lld hits (%lld prefetched, %lld remote), %lld misses, %lld "
	       "pass-throughs, %lld entries\n",
	    C("hits") + C("remote_hits"), C("prefetched_hits"), C("remote_hits"), C("misses"),
	    C("passes"), C("entries"));
#undef C
}

/* No status reply (r is request()'s result): a hung supervisor (it holds the
 * lock but did not answer within CLI_DEADLINE_MS) is told from a stopped one.
 * Returns EXIT_HUNG or EXIT_NOT_RUNNING. */
static int
status_unanswered(const char *dir, int r, int json)
{
	struct proto_paths p;
	long pid = 0;
	int hung = proto_paths_init(&p, dir) == 0 && proto_supervisor_running(&p);
	struct buf b;

	buf_init(&b);
	if (hung && fs_read_file(p.pidfile, &b, 64) == 0 && b.len > 0)
		pid = strtol(b.p, NULL, 10);
	buf_free(&b);
	if (json && hung)
		printf("{\"state\": \"hung\", \"pid\": %ld}\n", pid);
	else if (json)
		printf("{\"state\": \"not running\"}\n");
	else if (hung)
		printf("kache supervisor: hung for %s: pid %ld holds the lock but did not answer "
		       "within %d s (%s); see `kache daemon log`, then `kill %ld` and `kache "
		       "supervisor start`\n",
		    dir, pid, CLI_DEADLINE_MS / 1000,
		    r == -(int)PROTO_TIMEOUT - 1 ? "no reply" : "bad reply", pid);
	else
		printf("kache supervisor: not running for %s\n", dir);
	return hung ? EXIT_HUNG : EXIT_NOT_RUNNING;
}

/* The status: the supervisor's document, then the indexer's counters. Exit
 * 0 when it answered, EXIT_HUNG or EXIT_NOT_RUNNING otherwise. */
static int
cmd_status(const char *dir, int json)
{
	struct proto_paths p;
	struct msg rep;
	json_error_t jerr;
	json_t *root, *st;
	char *out;
	int r;

	if (!json && proto_paths_init(&p, dir) == 0 && other_owner(&p))
		return 1;
	if ((r = request(dir, MSG_STATUS, &rep, NULL, 0)) != 0 || rep.type != MSG_STATUS_REPLY ||
	    (root = json_loads(rep.text, 0, &jerr)) == NULL) {
		msg_clear(&rep);
		return status_unanswered(dir, r ? r : -(int)PROTO_ERROR - 1, json);
	}
	msg_clear(&rep);
	st = index_counts(dir);
	if (json) {
		if (st != NULL)
			json_object_set(root, "index", st);
		out = json_dumps(root, JSON_INDENT(2));
		printf("%s\n", out);
		free(out);
	} else {
		print_status(dir, root);
		if (st != NULL)
			print_counts(st);
	}
	json_decref(st);
	json_decref(root);
	return 0;
}

static int
cmd_scale(const char *dir, const char *arg)
{
	char role[MSG_ROLE_MAX + 1];
	const char *eq = strchr(arg, '=');
	char *end;
	long n;
	struct msg rep;
	int rc;

	if (eq == NULL || (size_t)(eq - arg) > MSG_ROLE_MAX) {
		fprintf(stderr, "usage: kache supervisor scale uploader=N\n");
		return 2;
	}
	snprintf(role, sizeof role, "%.*s", (int)(eq - arg), arg);
	n = strtol(eq + 1, &end, 10);
	if (*end != '\0' || end == eq + 1) {
		fprintf(stderr, "usage: kache supervisor scale uploader=N\n");
		return 2;
	}
	if (request(dir, MSG_SCALE, &rep, role, n) != 0) {
		fprintf(stderr, "kache supervisor: not running\n");
		return EXIT_NOT_RUNNING;
	}
	rc = rep.type == MSG_OK ? 0 : 1;
	if (rc)
		fprintf(stderr, "kache supervisor: %s\n", rep.text ? rep.text : "refused");
	else
		printf("kache supervisor: %s = %ld\n", role, n);
	msg_clear(&rep);
	return rc;
}

/* Prints the last n lines of path; then, when follow, follows it as tail -f
 * does (follow_file). */
static int
tail_file(const char *path, long n, int follow)
{
	struct buf b;
	size_t start, off;
	long lines = 0;

	buf_init(&b);
	if (fs_read_file(path, &b, (size_t)64 << 20) == -1) {
		fprintf(stderr, "kache supervisor: cannot read %s: %s\n", path, strerror(errno));
		buf_free(&b);
		return 1;
	}
	/* back from the end (its own newline aside) to just after the n-th newline */
	start = b.len > 0 && b.p[b.len - 1] == '\n' ? b.len - 1 : b.len;
	while (n > 0 && start > 0 && (b.p[start - 1] != '\n' || ++lines < n))
		start--;
	if (n == 0)
		start = b.len;
	fwrite(b.p + start, 1, b.len - start, stdout);
	fflush(stdout);
	off = b.len;
	buf_free(&b);
	return follow ? follow_file(path, off) : 0;
}

/* Prints what is appended to path past off, every 200 ms, from the start
 * again when the file shrank (rotated). Bounded: returns 0 once the file has
 * been gone for LOG_GONE_MS (the store was purged or removed), and SIGINT or
 * SIGTERM end the process as usual; 1 when stdout is closed. */
static int
follow_file(const char *path, size_t off)
{
	int64_t gone_since = 0;
	struct stat st;
	struct buf b;

	for (;;) {
		usleep(200000);
		if (stat(path, &st) == -1) {
			if (gone_since == 0)
				gone_since = clock_ms();
			if (clock_ms() - gone_since >= LOG_GONE_MS) {
				fprintf(stderr, "kache supervisor: %s is gone; stopped following\n",
				    path);
				return 0;
			}
			continue;
		}
		gone_since = 0;
		if ((size_t)st.st_size < off)
			off = 0; /* rotated */
		if ((size_t)st.st_size == off)
			continue;
		buf_init(&b);
		if (fs_read_file(path, &b, (size_t)64 << 20) == 0 && b.len > off) {
			fwrite(b.p + off, 1, b.len - off, stdout);
			off = b.len;
		}
		buf_free(&b);
		if (fflush(stdout) != 0 || ferror(stdout))
			return 1;
	}
}

/* `log [WORKER] [-f] [-n N]`: follows by default, as tail -f; -n N alone
 * prints the last N lines and exits. */
static int
cmd_log(const char *dir, int argc, char **argv)
{
	const char *who = "supervisor";
	long n = 50;
	int follow = -1, rc;
	char *path, name[64], *end;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0) {
			follow = 1;
		} else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			n = strtol(argv[++i], &end, 10);
			if (*end != '\0' || n < 0) {
				fprintf(stderr, "kache supervisor: -n wants a line count\n");
				return 2;
			}
			follow = follow == 1 ? 1 : 0;
		} else if (argv[i][0] != '-') {
			who = argv[i];
		} else {
			fprintf(stderr, "usage: kache supervisor log [WORKER] [-f] [-n N]\n");
			return 2;
		}
	}
	if (strchr(who, '/') != NULL || strlen(who) > 40) {
		fprintf(stderr, "kache supervisor: no such log '%s'\n", who);
		return 2;
	}
	if (strcmp(who, "supervisor") == 0 || strchr(who, '.') != NULL)
		snprintf(name, sizeof name, "%s", who);
	else
		snprintf(name, sizeof name, "%s.0", who);
	path = xasprintf("%s/logs/%s.log", dir, name);
	rc = tail_file(path, n, follow != 0);
	free(path);
	return rc;
}

/* A systemd user unit that runs `kached supervisor run` for this store. */
static int
cmd_install(const char *dir, int install)
{
	const char *home = getenv("HOME");
	char exe[PROTO_PATH_MAX], *unitdir, *unit, *text;
	ssize_t n;
	int rc;

	if (access("/run/systemd/system", F_OK) != 0) {
		fprintf(stderr,
		    "kache supervisor: systemd is not running on this machine (no "
		    "/run/systemd/system); use `kache supervisor start` instead, or let the "
		    "wrapper start it on demand\n");
		return 1;
	}
	if (home == NULL || (n = readlink("/proc/self/exe", exe, sizeof exe - 1)) <= 0)
		return 1;
	exe[n] = '\0';
	unitdir = xasprintf("%s/.config/systemd/user", home);
	unit = xasprintf("%s/kache.service", unitdir);
	if (!install) {
		/* NOLINTNEXTLINE(cert-env33-c): a fixed command, nothing from outside */
		rc = system("systemctl --user disable --now kache.service");
		unlink(unit);
		/* NOLINTNEXTLINE(cert-env33-c): a fixed command, nothing from outside */
		rc |= system("systemctl --user daemon-reload");
		printf("kache supervisor: removed %s\n", unit);
	} else {
		text = xasprintf("[Unit]\nDescription=kache supervisor for %s\n\n[Service]\n"
		                 "Environment=KACHE_DIR=%s\nExecStart=%s supervisor "
		                 "run\nRestart=on-failure\n\n"
		                 "[Install]\nWantedBy=default.target\n",
		    dir, dir, exe);
		fs_mkdir_p(unitdir, 0755);
		rc = fs_write_atomic(unit, text, strlen(text), 0644);
		free(text);
		if (rc == 0)
			/* NOLINTNEXTLINE(cert-env33-c): a fixed command, nothing from outside */
			rc = system("systemctl --user daemon-reload && "
			            "systemctl --user enable --now kache.service");
		printf("kache supervisor: %s %s\n", rc == 0 ? "installed" : "could not enable",
		    unit);
	}
	free(unitdir);
	free(unit);
	return rc == 0 ? 0 : 1;
}

static const char usage[] =
    "usage: kache supervisor [status [--json]]|start|stop [--timeout DURATION]|restart|run\n"
    "                        |log [WORKER] [-n N] [-f]\n"
    "                        |install|uninstall|scale uploader=N\n";

int
supervisor_cmd(int argc, char **argv)
{
	char *dir;
	int rc;

	dir = configured_store_dir();
	if (argc < 2) { /* `kache daemon` alone: the status */
		rc = cmd_status(dir, 0);
		free(dir);
		return rc;
	}
	if (strcmp(argv[1], "run") == 0) {
		int detached = argc > 2 && strcmp(argv[2], "--detached") == 0;
		log_init("supervisor", detached ? NULL : stderr, LOG_LEVEL_INFO);
		rc = sup_run(detached);
	} else if (strcmp(argv[1], "start") == 0) {
		rc = sup_start(dir, 0);
	} else if (strcmp(argv[1], "stop") == 0) {
		int64_t ms;
		rc = stop_flush_ms(argc, argv, &ms) == 0 ? cmd_stop(dir, ms) : 2;
	} else if (strcmp(argv[1], "restart") == 0) {
		rc = cmd_stop(dir, 0); /* the new one takes the intents up */
		rc = rc ? rc : sup_start(dir, 0);
	} else if (strcmp(argv[1], "status") == 0) {
		rc = cmd_status(dir, argc > 2 && strcmp(argv[2], "--json") == 0);
	} else if (strcmp(argv[1], "scale") == 0 && argc == 3) {
		rc = cmd_scale(dir, argv[2]);
	} else if (strcmp(argv[1], "log") == 0) {
		rc = cmd_log(dir, argc - 1, argv + 1);
	} else if (strcmp(argv[1], "install") == 0 || strcmp(argv[1], "uninstall") == 0) {
		rc = cmd_install(dir, strcmp(argv[1], "install") == 0);
	} else {
		fputs(usage, stderr);
		rc = 2;
	}
	free(dir);
	return rc;
}
