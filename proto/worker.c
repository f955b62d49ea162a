#include "proto/worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/paths.h"
#include "proto/zio.h"

struct worker {
	const struct proto_worker_ops *ops;
	void *arg;
	void *sock;
	int64_t hb_ms;
	int64_t next_hb;
	int64_t peer_seen;
	int64_t next_tick;
	uint64_t req_id; /* the request in hand (0: none), for progress */
	int64_t next_progress;
	char phase[MSG_PHASE_MAX + 1];
	long nmsgs;
	long crash_after; /* fault injection; -1: off */
	long stall_after;
	char logpath[PROTO_PATH_MAX];
};

static void fault_parse(struct worker *w, const char *role, unsigned index);
static void fault_check(struct worker *w);
static int handle(struct worker *w, const struct msg *m);
static int turn(struct worker *w);
static void run_tick(struct worker *w, int64_t now);

/* The worker loop running in this process (one per process), for
 * proto_worker_send and proto_worker_beat from inside its callbacks. */
static struct worker *current;

int
proto_worker_send(const struct msg *m)
{
	if (current == NULL || zio_send(current->sock, NULL, 0, m) == -1)
		return -1;
	current->next_hb = clock_ms() + current->hb_ms;
	return 0;
}

void
proto_worker_beat(void)
{
	struct msg hb;

	if (current == NULL || clock_ms() < current->next_hb)
		return;
	msg_init(&hb, MSG_HEARTBEAT, 0);
	proto_worker_send(&hb);
}

/* Progress goes up as INDEX_PROGRESS on the request in hand: at once when
 * the phase changes, else at most every PROTO_PROGRESS_MS. It is sent
 * through proto_worker_send, so it is also the heartbeat of a long request;
 * outside a request (gc from the tick) this is proto_worker_beat. */
void
proto_worker_progress(const char *phase, int64_t done, int64_t total)
{
	struct msg m;
	int64_t now = clock_ms();

	if (current == NULL || current->req_id == 0) {
		proto_worker_beat();
		return;
	}
	if (now < current->next_progress && strncmp(phase, current->phase, MSG_PHASE_MAX) == 0)
		return;
	msg_init(&m, MSG_INDEX_PROGRESS, current->req_id);
	m.count = done;
	m.total = total;
	snprintf(m.phase, sizeof m.phase, "%s", phase);
	snprintf(current->phase, sizeof current->phase, "%s", phase);
	current->next_progress = now + PROTO_PROGRESS_MS;
	if (proto_worker_send(&m) == -1)
		proto_worker_beat();
}

static void
run_tick(struct worker *w, int64_t now)
{
	if (w->ops->tick == NULL || w->ops->tick_ms <= 0 || now < w->next_tick)
		return;
	w->next_tick = now + w->ops->tick_ms;
	w->ops->tick(w->arg, now);
}

int64_t
proto_heartbeat_ms(void)
{
	const char *s = getenv("KACHE_HEARTBEAT_MS");
	long v = s ? strtol(s, NULL, 10) : 0;

	return v >= 10 && v <= 60000 ? v : 1000;
}

void
proto_logfile_open(const char *path)
{
	proto_logfile_rotate(path, PROTO_LOG_MAX);
	if (log_open_file(path) == -1)
		log_warn("open log %s", path);
}

void
proto_logfile_rotate(const char *path, int64_t max)
{
	struct stat st;
	char old[PROTO_PATH_MAX + 4];

	if (stat(path, &st) == -1 || st.st_size <= max)
		return;
	snprintf(old, sizeof old, "%s.1", path);
	if (rename(path, old) == -1)
		log_warn("rotate %s", path);
	else
		log_open_file(path);
}

/* KACHE_FAULT="role[.index]:crash_after=N" or ":stall_after=N": compiled in
 * test builds only. The count is of messages received from the supervisor. */
static void
fault_parse(struct worker *w, const char *role, unsigned index)
{
	w->crash_after = w->stall_after = -1;
#ifdef KACHE_FAULT_INJECTION
	const char *f = getenv("KACHE_FAULT");
	char who[64], whoi[80];
	const char *colon;

	if (f == NULL || (colon = strchr(f, ':')) == NULL)
		return;
	snprintf(who, sizeof who, "%s", role);
	snprintf(whoi, sizeof whoi, "%s.%u", role, index);
	if (!((size_t)(colon - f) == strlen(who) && strncmp(f, who, strlen(who)) == 0) &&
	    !((size_t)(colon - f) == strlen(whoi) && strncmp(f, whoi, strlen(whoi)) == 0))
		return;
	/* NOLINTBEGIN(cert-err34-c): fault-injection knobs set by the tests */
	if (sscanf(colon + 1, "crash_after=%ld", &w->crash_after) != 1)
		sscanf(colon + 1, "stall_after=%ld", &w->stall_after);
	/* NOLINTEND(cert-err34-c) */
	log_info("fault injection: crash_after=%ld stall_after=%ld", w->crash_after,
	    w->stall_after);
#else
	(void)role;
	(void)index;
#endif
}

static void
fault_check(struct worker *w)
{
	if (w->crash_after >= 0 && w->nmsgs >= w->crash_after) {
		log_warnx("fault injection: crashing after %ld messages", w->nmsgs);
		abort();
	}
	if (w->stall_after >= 0 && w->nmsgs >= w->stall_after) {
		log_warnx("fault injection: stalling after %ld messages", w->nmsgs);
		for (;;)
			pause();
	}
}

/* One message from the supervisor. 1 to stop the loop. */
static int
handle(struct worker *w, const struct msg *m)
{
	struct msg done;

	switch (m->type) {
	case MSG_HEARTBEAT: return 0;
	case MSG_SHUTDOWN: log_info("shutdown requested"); return 1;
	case MSG_JOB_UPLOAD:
	case MSG_JOB_FETCH:
	case MSG_JOB_PREFETCH:
		if (w->ops->job == NULL)
			break;
		msg_init(&done, MSG_JOB_DONE, m->id);
		done.status = JOB_FAILED;
		w->ops->job(w->arg, m, &done);
		if (proto_worker_send(&done) == -1)
			log_warnx("cannot report job %llu", (unsigned long long)m->id);
		msg_clear(&done);
		return 0;
	default:
		if (w->ops->request == NULL)
			break;
		msg_init(&done, MSG_ERROR, m->id);
		w->req_id = m->id;
		w->phase[0] = '\0';
		w->ops->request(w->arg, m, &done);
		w->req_id = 0;
		if (proto_worker_send(&done) == -1)
			log_warnx("cannot answer %s %llu", msg_type_name(m->type),
			    (unsigned long long)m->id);
		msg_clear(&done);
		return 0;
	}
	log_warnx("unexpected %s from the supervisor", msg_type_name(m->type));
	return 0;
}

/* Reads what arrives within wait_ms. 1 to stop. */
static int
receive(struct worker *w, int64_t wait_ms)
{
	zmq_pollitem_t it = { w->sock, 0, ZMQ_POLLIN, 0 };
	struct zio_frames f;
	struct msg m;
	int stop = 0;

	if (zmq_poll(&it, 1, (long)(wait_ms > 0 ? wait_ms : 0)) <= 0)
		return 0;
	while (!stop && zio_recv(w->sock, &f) == 0) {
		w->peer_seen = clock_ms();
		if (f.n == 1 && !f.truncated &&
		    msg_decode(f.data[0], f.len[0], &m) == MSG_DECODE_OK) {
			w->nmsgs++;
			fault_check(w);
			stop = handle(w, &m);
			msg_clear(&m);
		} else {
			log_warnx("dropped a malformed message (%d frames)", f.n);
		}
		zio_frames_free(&f);
	}
	return stop;
}

static int
silent(const struct worker *w)
{
	return clock_ms() - w->peer_seen > PROTO_LIVENESS * w->hb_ms;
}

/* One poll turn: heartbeat when due, read what arrived. 1 to stop, -1 lost.
 * Silence is judged after reading, and after one more heartbeat's wait: a
 * worker that did not run for a while (stopped, starved of CPU) must not take
 * the time it was away for the supervisor's, and the heartbeats sent meanwhile
 * are still in the kernel until zmq's I/O thread runs again. */
static int
turn(struct worker *w)
{
	struct msg hb;
	int64_t now = clock_ms(), wait;
	int stop;

	if (now >= w->next_hb) {
		msg_init(&hb, MSG_HEARTBEAT, 0);
		zio_send(w->sock, NULL, 0, &hb);
		w->next_hb = now + w->hb_ms;
	}
	run_tick(w, now);
	now = clock_ms();
	wait = w->next_hb - now;
	if (w->ops->tick != NULL && w->ops->tick_ms > 0 && w->next_tick - now < wait)
		wait = w->next_tick - now;
	stop = receive(w, wait);
	if (stop || !silent(w))
		return stop;
	stop = receive(w, w->hb_ms);
	return stop ? stop : silent(w) ? -1 : 0;
}

int
proto_worker_run(const char *kache_dir, const char *role, unsigned index,
    const struct proto_worker_ops *ops, void *arg)
{
	struct worker w = { .ops = ops, .arg = arg };
	struct proto_paths p;
	struct msg ready;
	void *ctx;
	int linger = 0, rc;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		return 1; /* the supervisor died before we got here */
	if (proto_paths_init(&p, kache_dir) == -1)
		return 1;
	snprintf(w.logpath, sizeof w.logpath, "%.3900s/%.40s.%u.log", p.logdir, role, index);
	proto_logfile_open(w.logpath);
	fault_parse(&w, role, index);
	w.hb_ms = proto_heartbeat_ms();
	ctx = zmq_ctx_new();
	w.sock = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(w.sock, ZMQ_LINGER, &linger, sizeof linger);
	if (zmq_connect(w.sock, p.wrk) == -1)
		fatalx("connect %s: %s", p.wrk, zmq_strerror(zmq_errno()));
	fault_check(&w);
	msg_init(&ready, MSG_READY, 0);
	snprintf(ready.role, sizeof ready.role, "%s", role);
	ready.index = index;
	ready.pid = getpid();
	zio_send(w.sock, NULL, 0, &ready);
	log_info("started, pid %ld", (long)getpid());
	w.peer_seen = clock_ms();
	w.next_hb = w.peer_seen + w.hb_ms;
	w.next_tick = w.peer_seen;
	current = &w;
	while ((rc = turn(&w)) == 0)
		proto_logfile_rotate(w.logpath, PROTO_LOG_MAX);
	current = NULL;
	if (rc < 0)
		log_warnx("the supervisor is silent; exiting");
	zmq_close(w.sock);
	zmq_ctx_term(ctx);
	return rc < 0 ? 1 : 0;
}
