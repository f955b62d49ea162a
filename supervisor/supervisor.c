/* The supervisor's life: lock the store, bind, spawn the workers, then one
 * zmq_poll loop whose timeout is the nearest deadline, until stopped. */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "proto/worker.h"
#include "remote/remote.h"
#include "store/store.h"
#include "supervisor/sup_internal.h"

/* How long a starting supervisor waits for the store's lock: wrappers hold it
 * shared for an instant (their probe); another supervisor holds it for good. */
#define LOCK_WAIT_MS 400

#define INTENT_RESCAN_MS 3000

static long winner_pid(const struct supervisor *s);
static int take_lock(struct supervisor *s);
static int setup(struct supervisor *s);
static void configured_counts(struct supervisor *s);
static void apply_config(struct supervisor *s);
static void reload(struct supervisor *s, const char *why);
static void on_worker_message(struct supervisor *s, struct slot *w, const struct msg *m);
static void serve_scale(struct supervisor *s, const struct msg *req, struct msg *rep);
static void maintenance(struct supervisor *s, int64_t now);
static void on_signals(struct supervisor *s);
static void fault_hang(const struct msg *m);
static void on_request(struct supervisor *s, const struct zio_frames *f);
static void serve(struct supervisor *s, const char *ident, size_t identlen, struct msg *req);
static void begin_stop(struct supervisor *s, const char *why);
static void stop_progress(struct supervisor *s, int64_t now);
static void loop_once(struct supervisor *s);
static void teardown(struct supervisor *s);
static int64_t file_mtime(const char *path);

static int64_t
file_mtime(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? clock_ts_ms(&st.st_mtim) : 0;
}

/* The pid of the supervisor that holds the lock: the pid file, once it names
 * a live process (the winner writes it just after taking the lock, so a loser
 * of the race waits a moment for it). 0 when none appeared in time. */
static long
winner_pid(const struct supervisor *s)
{
	struct buf b;
	long pid = 0;

	for (int i = 0; i < 150 && pid == 0; i++) {
		buf_init(&b);
		if (fs_read_file(s->paths.pidfile, &b, 64) == 0 && b.len > 0)
			pid = strtol(b.p, NULL, 10);
		buf_free(&b);
		if (pid <= 0 || kill((pid_t)pid, 0) == -1)
			pid = 0;
		if (pid == 0)
			usleep(20000);
	}
	return pid;
}

/* One supervisor per store: flock on run/supervisor.lock. Retries briefly, as
 * wrappers probe the lock with a shared flock for an instant. 1 when another
 * supervisor runs (said, with its pid: not a failure, so that a service
 * manager does not restart us in a loop), -1 on an error. */
static int
take_lock(struct supervisor *s)
{
	struct buf pid;
	const char *fdenv = getenv("KACHE_SPAWN_LOCK_FD");
	int got;

	s->lockfd = open(s->paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd == -1) {
		log_warn("open %s", s->paths.lock);
		return -1;
	}
	if ((got = fs_flock_wait(s->lockfd, clock_ms() + LOCK_WAIT_MS, 20)) != 0) {
		close(s->lockfd);
		s->lockfd = -1; /* teardown must not remove the winner's pid file */
		if (got == -1) {
			log_warn("flock %s", s->paths.lock);
			return -1;
		}
		fprintf(stderr, "kache supervisor: already running (pid %ld) for %s\n",
		    winner_pid(s), s->kache_dir);
		return 1;
	}
	if (fdenv != NULL) { /* the spawn lock handed down by proto_supervisor_ensure */
		char *end;
		long fd = strtol(fdenv, &end, 10);

		if (end != fdenv && *end == '\0' && fd > STDERR_FILENO && fd < INT_MAX)
			close((int)fd); /* never stdin/out/err on a garbled variable */
		unsetenv("KACHE_SPAWN_LOCK_FD");
	}
	buf_init(&pid);
	buf_addf(&pid, "%ld\n", (long)getpid());
	fs_write_atomic(s->paths.pidfile, pid.p, pid.len, 0644);
	buf_free(&pid);
	return 0;
}

/* The worker counts the configuration asks for, into s->configured. */
static void
configured_counts(struct supervisor *s)
{
	int64_t n = config_get_int(s->cfg, "workers.uploaders"),
	        f = config_get_int(s->cfg, "workers.fetchers");

	/* An S3 remote uploads s3.upload_concurrency packs at once: one uploader
	 * (one connection) each, unless workers.uploaders asks for more. */
	if (strcmp(config_get(s->cfg, "remote.type"), "s3") == 0 &&
	    config_get_int(s->cfg, "s3.upload_concurrency") > n)
		n = config_get_int(s->cfg, "s3.upload_concurrency");
	if (n < 0 || n > SUP_MAX_WORKERS / 2)
		n = 1;
	if (f < 0 || f > SUP_MAX_WORKERS / 2)
		f = 2;
	s->configured[ROLE_UPLOADER] = (int)n;
	/* with no remote a fetch misses at once: one fetcher is plenty */
	s->configured[ROLE_FETCHER] = s->remote_none && f > 1 ? 1 : (int)f;
	s->configured[ROLE_INDEXER] = role_fixed_count(ROLE_INDEXER);
	s->configured[ROLE_PREFETCH] = !s->remote_none; /* one, with a remote */
}

/* The configuration (at start and on each reload) and the run-time scale
 * kept in run/scale: a role scaled keeps its scale across reloads. */
static void
apply_config(struct supervisor *s)
{
	char err[256];

	s->idle_timeout_ms = config_get_duration(s->cfg, "supervisor.idle_timeout");
	sup_watchdog_set(config_get_duration(s->cfg, "supervisor.watchdog"));
	if (remote_check(s->cfg, err, sizeof err) < 0)
		log_warnx("%s (workers will fail with a configuration error)", err);
	s->remote_none = !config_has_remote(s->cfg);
	jobs_remote_reset(s);
	s->cfg_mtime = file_mtime(config_file_path(s->cfg));
	configured_counts(s);
	if (s->ctx == NULL) /* at start: what an earlier run scaled */
		scale_load(s);
	for (int r = 0; r < ROLE_COUNT; r++) {
		if (s->ctx == NULL)
			s->wanted[r] = scale_wanted(s, (enum role)r);
		else if (s->wanted[r] != scale_wanted(s, (enum role)r))
			workers_resize(s, (enum role)r, scale_wanted(s, (enum role)r));
	}
}

/* The one reload: re-reads the configuration file (it changed on disk, or
 * SIGHUP) and applies it. */
static void
reload(struct supervisor *s, const char *why)
{

	log_info("%s; re-reading %s", why, config_file_path(s->cfg));
	config_free(&s->cfg);
	s->cfg = config_load_warn(CONFIG_WARN_LOG, NULL);
	apply_config(s);
}

/* KACHE_FAULT="supervisor:hang_on=<MESSAGE>": the loop stops for good when
 * that request comes, as a loop blocked in a call would (test builds only;
 * the watchdog's test). */
static void
fault_hang(const struct msg *m)
{
#ifdef KACHE_FAULT_INJECTION
	const char *f = getenv("KACHE_FAULT");
	static const char knob[] = "supervisor:hang_on=";

	if (f != NULL && strncmp(f, knob, sizeof knob - 1) == 0 &&
	    strcmp(f + sizeof knob - 1, msg_type_name(m->type)) == 0) {
		log_warnx("fault injection: the loop hangs on %s", msg_type_name(m->type));
		for (;;)
			pause();
	}
#else
	(void)m;
#endif
}

/* Signals arrive on a signalfd so the poll loop sees them as a descriptor. */
static int
setup_signals(struct supervisor *s)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return s->sigfd == -1 ? -1 : 0;
}

static int
setup(struct supervisor *s)
{
	char err[512], *intents;
	ssize_t n;
	int rc;

	if (proto_paths_prepare(&s->paths, 1, err, sizeof err) == -1) {
		fprintf(stderr, "kache supervisor: %s\n", err);
		log_warnx("%s", err);
		return KACHE_EXIT_CONFIG;
	}
	fs_mkdir_p(s->paths.logdir, 0700);
	intents = store_intent_path(s->kache_dir, NULL);
	fs_mkdir_p(intents, 0700);
	free(intents);
	if ((rc = take_lock(s)) != 0)
		return rc == 1 ? SUP_ALREADY : 1;
	if ((n = readlink("/proc/self/exe", s->exe, sizeof s->exe - 1)) <= 0)
		return 1;
	s->exe[n] = '\0';
	s->exe_mtime = file_mtime(s->exe);
	setenv("KACHE_DIR", s->kache_dir, 1); /* the workers serve the same store */
	if (setup_signals(s) == -1)
		return 1;
	s->ctx = zmq_ctx_new();
	s->ctl = zio_bind(s->ctx, ZMQ_ROUTER, s->paths.ctl);
	s->wrk = zio_bind(s->ctx, ZMQ_ROUTER, s->paths.wrk);
	s->pub = zio_bind(s->ctx, ZMQ_PUB, s->paths.pub);
	if (s->ctl == NULL || s->wrk == NULL || s->pub == NULL)
		return 1;
	s->hb_ms = proto_heartbeat_ms();
	s->started_ms = s->last_activity = clock_ms();
	s->next_hb = s->next_maint = s->started_ms;
	jobs_new(s);
	route_new(s);
	prefetch_new(s);
	zygote_init(s);
	workers_init(s);
	/* spawned before the loop answers anything: a wrapper that waited for our
	 * socket (proto_supervisor_wait) sends its FETCH at once, and the first
	 * turn must find the fetchers coming, not answer it with a miss */
	workers_tick(s, s->started_ms);
	jobs_scan_intents(s);
	prefetch_take_hints(s); /* left while no supervisor ran */
	/* A notice sent while no supervisor listened is lost; the intent file is
	 * not. Rescan now and then (from the loop) so every intent is taken up. */
	s->next_rescan = s->started_ms + INTENT_RESCAN_MS;
	log_info("supervising %s (pid %ld, protocol %d)", s->kache_dir, (long)getpid(),
	    PROTO_VERSION);
	return 0;
}

static void
begin_stop(struct supervisor *s, const char *why)
{
	if (s->stopping)
		return;
	log_info("stopping: %s", why);
	s->stopping = 1;
	s->drain_deadline = clock_ms() + SUP_DRAIN_MS;
}

/* Draining: queued uploads may finish until the drain deadline; then the
 * workers are told to exit, and killed after a grace period. */
static void
stop_progress(struct supervisor *s, int64_t now)
{
	long queued, inflight, fetches;

	jobs_counts(s, &queued, &inflight, &fetches);
	if (s->stopping == 1 &&
	    ((queued == 0 && inflight == 0) || now >= s->drain_deadline ||
	        !workers_any_up(s, ROLE_UPLOADER))) {
		if (queued + inflight > 0)
			log_warnx("stopping with %ld uploads queued; their intents stay on disk",
			    queued + inflight);
		workers_shutdown_all(s);
		s->stopping = 2;
		s->kill_deadline = now + SUP_GRACE_MS;
	}
	if (s->stopping == 2 && (workers_alive(s) == 0 || now >= s->kill_deadline)) {
		workers_kill_all(s);
		s->done = 1;
	}
}

/* Config file changes, a newer binary on disk, idle shutdown, log rotation,
 * cargo links of commands gone. */
static void
maintenance(struct supervisor *s, int64_t now)
{
	s->next_maint = now + SUP_MAINT_MS;
	prefetch_take_hints(s); /* in case inotify missed one */
	prefetch_sweep(s, now);
	sup_bad_summary(s, now);
	if (file_mtime(config_file_path(s->cfg)) != s->cfg_mtime)
		reload(s, "configuration changed");
	if (!s->stopping && file_mtime(s->exe) > s->exe_mtime) {
		s->reexec = 1;
		begin_stop(s, "the kached binary on disk is newer; restarting");
	}
	if (!s->stopping && s->idle_timeout_ms > 0 && now - s->last_activity > s->idle_timeout_ms &&
	    jobs_idle(s) && prefetch_idle(s))
		begin_stop(s, "idle timeout");
	if (s->detached) {
		char *p = xasprintf("%s/supervisor.log", s->paths.logdir);
		proto_logfile_rotate(p, PROTO_LOG_MAX);
		free(p);
	}
}

static void
on_signals(struct supervisor *s)
{
	struct signalfd_siginfo si;

	while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGCHLD) {
			workers_reap(s);
		} else if (si.ssi_signo == SIGHUP) {
			reload(s, "SIGHUP");
		} else {
			begin_stop(s, strsignal((int)si.ssi_signo));
		}
	}
}

/* A request from a wrapper or the CLI: [identity, one msgpack frame]. Anything
 * else gets an error reply (when it has an identity) and a log line. */
static void
on_request(struct supervisor *s, const struct zio_frames *f)
{
	enum msg_decode_result r;
	struct msg req;

	if (f->n < 1)
		return;
	if (f->n != 2 || f->truncated) {
		sup_bad_message(s, "control socket: dropped a message of %d frames%s", f->n,
		    f->truncated ? " (too large)" : "");
		sup_error_reply(s, f->data[0], f->len[0], 0, MSG_ERR_MALFORMED,
		    "expected one frame");
		return;
	}
	if ((r = msg_decode(f->data[1], f->len[1], &req)) != MSG_DECODE_OK) {
		sup_bad_message(s, "control socket: %s (%zu bytes)", msg_decode_strerror(r),
		    f->len[1]);
		sup_error_reply(s, f->data[0], f->len[0], req.id,
		    r == MSG_DECODE_VERSION     ? MSG_ERR_VERSION :
		        r == MSG_DECODE_UNKNOWN ? MSG_ERR_UNKNOWN :
		                                  MSG_ERR_MALFORMED,
		    msg_decode_strerror(r));
		msg_clear(&req);
		return;
	}
	fault_hang(&req);
	s->last_activity = clock_ms();
	if ((req.type == MSG_PING || req.type == MSG_FETCH || req.type == MSG_NOTIFY_UPLOAD ||
	        req.type == MSG_PREFETCH_HINT) &&
	    req.epoch * 1000 > s->exe_mtime && file_mtime(s->exe) > s->exe_mtime && !s->stopping) {
		s->reexec = 1;
		begin_stop(s, "a newer build is calling; restarting");
	}
	serve(s, f->data[0], f->len[0], &req);
	msg_clear(&req);
}

static void
serve_scale(struct supervisor *s, const struct msg *req, struct msg *rep)
{
	int r = role_from_name(req->role);

	if (r < 0 || req->count < 0 || req->count > SUP_MAX_WORKERS / 2) {
		rep->status = MSG_ERR_MALFORMED;
		msg_set_text(rep, "usage: scale uploader=N (0..32) or fetcher=N");
		return;
	}
	if (role_fixed_count((enum role)r) >= 0 && req->count != role_fixed_count((enum role)r)) {
		rep->status = MSG_ERR_STATE;
		msg_set_text(rep,
		    "the indexer cannot be scaled: exactly one runs, as the index "
		    "takes one writer");
		return;
	}
	workers_resize(s, (enum role)r, (int)req->count);
	scale_save(s, (enum role)r, (int)req->count);
	log_info("scaled %s to %lld%s", req->role, (long long)req->count,
	    s->scaled[r] < 0 ? " (its configured count: run/scale no longer holds it)" :
	                       " (kept in run/scale across restarts)");
	rep->type = MSG_OK;
	msg_set_text(rep, "scaled");
}

static void
serve(struct supervisor *s, const char *ident, size_t identlen, struct msg *req)
{
	struct msg rep;
	char *json;

	msg_init(&rep, MSG_ERROR, req->id);
	switch (req->type) {
	case MSG_PING:
		rep.type = MSG_OK;
		msg_set_text(&rep, "pong");
		break;
	case MSG_FETCH:
		jobs_fetch(s, ident, identlen, req); /* replies when done */
		msg_clear(&rep);
		return;
	case MSG_INDEX_STATS:
	case MSG_INDEX_LIST:
	case MSG_INDEX_GC:
	case MSG_INDEX_VERIFY:
	case MSG_INDEX_PURGE:
	case MSG_INDEX_ZERO:
		route_request(s, ident, identlen, req); /* the indexer answers */
		msg_clear(&rep);
		return;
	case MSG_NOTIFY_UPLOAD:
		jobs_notify(s, req->key);
		rep.type = MSG_OK;
		break;
	case MSG_PREFETCH_HINT:
		prefetch_hint(s, req); /* never answered but by this OK */
		rep.type = MSG_OK;
		break;
	case MSG_STATUS:
		rep.type = MSG_STATUS_REPLY;
		json = status_json(s);
		msg_set_text(&rep, json);
		free(json);
		break;
	case MSG_STOP:
		begin_stop(s, "stop requested");
		rep.type = MSG_OK;
		msg_set_text(&rep, "stopping");
		break;
	case MSG_SCALE: serve_scale(s, req, &rep); break;
	case MSG_FLUSH: jobs_flush(s, req, &rep); break;
	default:
		rep.status = MSG_ERR_UNKNOWN;
		msg_set_text(&rep, "not a request");
		break;
	}
	sup_reply(s, ident, identlen, &rep);
	msg_clear(&rep);
}

static int64_t
next_deadline(struct supervisor *s, int64_t now)
{
	int64_t next = workers_next_deadline(s, now);

	if (s->next_maint < next)
		next = s->next_maint;
	if (s->next_rescan < next)
		next = s->next_rescan;
	if (route_next_deadline(s, now) < next)
		next = route_next_deadline(s, now);
	if (next < now)
		next = now;
	return next > now + 1000 ? now + 1000 : next;
}

static void
loop_once(struct supervisor *s)
{
	zmq_pollitem_t items[] = {
		{ s->ctl, 0, ZMQ_POLLIN, 0 },
		{ s->wrk, 0, ZMQ_POLLIN, 0 },
		{ NULL, s->sigfd, ZMQ_POLLIN, 0 },
		{ NULL, prefetch_hint_fd(s), ZMQ_POLLIN, 0 },
	};
	struct zio_frames f;
	struct slot *w;
	struct msg m;
	int64_t now = clock_ms();

	if (zmq_poll(items, items[3].fd >= 0 ? 4 : 3, (long)(next_deadline(s, now) - now)) == -1 &&
	    zmq_errno() != EINTR)
		log_warnx("zmq_poll: %s", zmq_strerror(zmq_errno()));
	on_signals(s);
	if (items[3].revents & ZMQ_POLLIN)
		prefetch_take_hints(s);
	jobs_take_lost(s);
	for (int i = 0; i < 256 && zio_recv(s->wrk, &f) == 0; i++) {
		if (workers_on_message(s, &f, &w, &m) == 1) {
			on_worker_message(s, w, &m);
			msg_clear(&m);
		}
		zio_frames_free(&f);
	}
	for (int i = 0; i < 256 && zio_recv(s->ctl, &f) == 0; i++) {
		on_request(s, &f);
		zio_frames_free(&f);
	}
	now = clock_ms();
	workers_tick(s, now);
	jobs_dispatch(s, now);
	route_tick(s, now);
	prefetch_tick(s);
	if (now >= s->next_rescan) {
		s->next_rescan = now + INTENT_RESCAN_MS;
		if (!s->remote_none && !s->stopping)
			jobs_scan_intents(s);
	}
	if (now >= s->next_maint)
		maintenance(s, now);
	if (s->stopping)
		stop_progress(s, now);
	sup_watchdog_beat();
}

/* What a worker sent up, handed back by workers_on_message: a finished job,
 * an event to publish (the indexer's hits and misses), or the indexer's
 * progress on or answer to a routed request. */
static void
on_worker_message(struct supervisor *s, struct slot *w, const struct msg *m)
{
	if (m->type == MSG_JOB_DONE && w->role == ROLE_PREFETCH)
		prefetch_done(s, w, m);
	else if (m->type == MSG_JOB_DONE && w->role != ROLE_INDEXER)
		jobs_done(s, w, m);
	else if (m->type == MSG_EVENT && w->role == ROLE_INDEXER) {
		if (m->status == EVENT_PREFETCH_HIT)
			prefetch_note_hit(s);
		sup_publish(s, (int)m->status, m->key);
	} else if ((m->type == MSG_INDEX_REPLY || m->type == MSG_ERROR) && w->role == ROLE_INDEXER)
		route_reply(s, w, m);
	else if (m->type == MSG_INDEX_PROGRESS && w->role == ROLE_INDEXER)
		route_progress(s, w, m);
	else
		sup_bad_message(s, "worker socket: unexpected %s from %s.%u",
		    msg_type_name(m->type), role_name(w->role), w->index);
}

static void
teardown(struct supervisor *s)
{
	zygote_stop(s);
	if (s->ctl)
		unlink(proto_endpoint_file(s->paths.ctl)), zmq_close(s->ctl);
	if (s->wrk)
		unlink(proto_endpoint_file(s->paths.wrk)), zmq_close(s->wrk);
	if (s->pub)
		unlink(proto_endpoint_file(s->paths.pub)), zmq_close(s->pub);
	if (s->ctx)
		zmq_ctx_term(s->ctx);
	if (s->lockfd > 0) {
		unlink(s->paths.pidfile);
		close(s->lockfd); /* releases the lock */
	}
	if (s->sigfd > 0)
		close(s->sigfd);
	jobs_free(s);
	route_free(s);
	prefetch_free(s);
	config_free(&s->cfg);
}

int
sup_run(int detached)
{
	struct supervisor *s = xcalloc(1, sizeof *s);
	char exe[PROTO_PATH_MAX];
	int rc;

	s->zfd = s->zpid = -1;
	s->cfg = config_load_warn(CONFIG_WARN_LOG, NULL);
	snprintf(s->kache_dir, sizeof s->kache_dir, "%s", config_get(s->cfg, "cache.dir"));
	s->detached = detached;
	s->death_limit = SUP_DEATH_LIMIT;
#ifdef KACHE_FAULT_INJECTION
	if (getenv("KACHE_RESTART_LIMIT") != NULL) { /* a fault-injection knob of the tests */
		long n = strtol(getenv("KACHE_RESTART_LIMIT"), NULL, 10);

		s->death_limit = n > 0 && n < INT_MAX ? (int)n : 1;
	}
#endif
	if (proto_paths_init(&s->paths, s->kache_dir) == -1) {
		free(s);
		return KACHE_EXIT_CONFIG;
	}
	if (detached) {
		fs_mkdir_p(s->paths.logdir, 0700);
		char *p = xasprintf("%s/supervisor.log", s->paths.logdir);
		int fd;
		proto_logfile_open(p);
		/* stderr too, so that crash and sanitizer reports are kept */
		if ((fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) != -1)
			dup2(fd, 2), close(fd);
		free(p);
	}
	apply_config(s);
	if ((rc = setup(s)) == 0) {
		sup_watchdog_start();
		while (!s->done)
			loop_once(s);
		log_info("stopped");
	}
	snprintf(exe, sizeof exe, "%s", s->exe);
	rc = rc == 0 && s->reexec ? -2 : rc == SUP_ALREADY ? 0 : rc;
	teardown(s);
	free(s);
	if (rc == -2) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl(exe, "kached", "supervisor", "run", detached ? "--detached" : NULL,
		    (char *)NULL);
		log_warn("re-exec %s", exe);
		rc = 1;
	}
	return rc;
}
