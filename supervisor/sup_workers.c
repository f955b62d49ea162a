/* Worker slots: spawn (fork + exec of our own binary), READY, heartbeats,
 * reaping, back-off and the give-up state. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/worker.h"
#include "supervisor/sup_internal.h"

/* The longest workers.uploaders_wait taken (an hour). */
#define WAIT_MAX_S 3600

static void spawn(struct supervisor *s, struct slot *w, int64_t now);
static void child_exec(const struct supervisor *s, const struct slot *w, int logfd);
static void on_death(struct supervisor *s, struct slot *w, int wstatus);
static void schedule_restart(struct supervisor *s, struct slot *w, int64_t now);
static void remove_slot(struct supervisor *s, struct slot *w);
static struct slot *by_ident(struct supervisor *s, const char *ident, size_t n);
static void on_ready(struct supervisor *s, const char *ident, size_t n, const struct msg *m);

const char *
wstate_name(enum wstate st)
{
	static const char *names[] = { "starting", "ready", "busy", "backing off", "failed",
		"stopping" };

	return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

/* The slots the configuration wants. The uploaders' wait for their first
 * job: a build that only hits uploads nothing, and each uploader's start
 * (an exec of this binary and its libraries, 15-25 ms of CPU; four of them
 * over S3) would take the cores from cargo at the build's busiest moment,
 * when a fresh runner's supervisor starts with its first compile. They start
 * with the first upload queued (jobs), a scale of the role, or
 * workers.uploaders_wait seconds after the supervisor, whichever is first. */
void
workers_init(struct supervisor *s)
{
	int64_t wait_s = config_get_int(s->cfg, "workers.uploaders_wait");

	s->nslots = 0;
	for (int r = 0; r < ROLE_COUNT; r++)
		workers_resize(s, (enum role)r, s->wanted[r]);
	if (wait_s <= 0)
		return;
	if (wait_s > WAIT_MAX_S)
		wait_s = WAIT_MAX_S;
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].role == ROLE_UPLOADER) {
			s->slots[i].deferred = 1;
			s->slots[i].next_spawn_ms = s->started_ms + wait_s * 1000;
		}
}

void
workers_wake(struct supervisor *s, enum role r)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].role == r && s->slots[i].deferred) {
			s->slots[i].deferred = 0;
			s->slots[i].next_spawn_ms = 0;
		}
}

/* Grows or shrinks role r to n workers. New slots spawn on the next tick,
 * and so do the role's slots still waiting for a first job; surplus ones are
 * asked to finish and are dropped when they exit. */
void
workers_resize(struct supervisor *s, enum role r, int n)
{
	int have = 0;

	s->wanted[r] = n;
	workers_wake(s, r);
	for (int i = 0; i < s->nslots; i++) {
		struct slot *w = &s->slots[i];
		if (w->role != r || w->retire)
			continue;
		if ((int)w->index < n) {
			have++;
			continue;
		}
		w->retire = 1;
		if (w->pid > 0) {
			struct msg m;
			msg_init(&m, MSG_SHUTDOWN, 0);
			if (w->state == W_STARTING || workers_send(s, w, &m) == -1)
				kill(w->pid, SIGTERM);
			w->state = W_STOPPING;
		} else {
			remove_slot(s, w--);
		}
	}
	for (unsigned idx = 0; have < n && s->nslots < SUP_MAX_WORKERS; idx++) {
		int taken = 0;
		for (int i = 0; i < s->nslots; i++)
			if (s->slots[i].role == r && s->slots[i].index == idx &&
			    !s->slots[i].retire)
				taken = 1;
		if (taken)
			continue;
		struct slot *w = &s->slots[s->nslots++];
		memset(w, 0, sizeof *w);
		w->role = r;
		w->index = idx;
		w->state = W_BACKOFF; /* due at once */
		snprintf(w->last_exit, sizeof w->last_exit, "-");
		have++;
	}
}

static void
remove_slot(struct supervisor *s, struct slot *w)
{
	int i = (int)(w - s->slots);

	memmove(&s->slots[i], &s->slots[i + 1], (size_t)(s->nslots - i - 1) * sizeof *w);
	s->nslots--;
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void
child_exec(const struct supervisor *s, const struct slot *w, int logfd)
{
	char idx[16], *argv[5];
	sigset_t none;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	unsigned v = w->index, n = 0;
	char rev[16];

	do
		rev[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (unsigned i = 0; i < n; i++)
		idx[i] = rev[n - 1 - i];
	idx[n] = '\0';
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (null != -1)
		dup2(null, 0), dup2(null, 1);
	if (logfd != -1)
		dup2(logfd, 2);
	close_range(3, ~0U, 0); /* what the supervisor's start left open */
	argv[0] = (char *)"kached";
	argv[1] = (char *)"__worker";
	argv[2] = (char *)role_name(w->role);
	argv[3] = idx;
	argv[4] = NULL;
	execv(s->exe, argv);
	_exit(127);
}

static void
spawn(struct supervisor *s, struct slot *w, int64_t now)
{
	char *logpath = xasprintf("%s/%s.%u.log", s->paths.logdir, role_name(w->role), w->index);
	int logfd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	pid_t pid;

	free(logpath);
	w->deferred = 0;
	if ((pid = zygote_spawn(s, w->role, w->index, logfd, now)) <= 0) {
		pid = fork();
		if (pid == 0)
			child_exec(s, w, logfd);
		s->spawned_exec += pid > 0;
	}
	if (logfd != -1)
		close(logfd);
	if (pid == -1) {
		log_warn("fork");
		w->next_spawn_ms = now + SUP_BACKOFF_MIN_MS;
		return;
	}
	if (w->spawned_ms != 0)
		w->restarts++;
	w->pid = pid;
	w->state = W_STARTING;
	w->spawned_ms = w->last_seen_ms = now;
	w->identlen = 0;
	w->killed_silent = 0;
	log_info("spawned %s.%u, pid %ld", role_name(w->role), w->index, (long)pid);
}

/* Spawns what is due, kills the silent, sends heartbeats. */
void
workers_tick(struct supervisor *s, int64_t now)
{
	int beat = now >= s->next_hb;
	struct msg hb;

	msg_init(&hb, MSG_HEARTBEAT, 0);
	for (int i = 0; i < s->nslots; i++) {
		struct slot *w = &s->slots[i];
		/* A worker runs its job in its one thread and cannot beat meanwhile:
		 * a busy one is given the job limit, not three heartbeats. */
		int64_t limit = w->state == W_STARTING ? 5000 + PROTO_LIVENESS * s->hb_ms :
		    w->state == W_BUSY                 ? SUP_JOB_MAX_MS :
		                                         PROTO_LIVENESS * s->hb_ms;

		if (w->state == W_BACKOFF && now >= w->next_spawn_ms && s->stopping == 0)
			spawn(s, w, now);
		else if (w->pid > 0 && !w->killed_silent && now - w->last_seen_ms > limit &&
		    w->state != W_STOPPING) {
			log_warnx("%s.%u (pid %ld) silent for %lld ms; killing it",
			    role_name(w->role), w->index, (long)w->pid,
			    (long long)(now - w->last_seen_ms));
			kill(w->pid, SIGKILL);
			w->killed_silent = 1;
		} else if (beat && (w->state == W_READY || w->state == W_BUSY)) {
			workers_send(s, w, &hb);
		}
	}
	if (beat)
		s->next_hb = now + s->hb_ms;
}

int64_t
workers_next_deadline(const struct supervisor *s, int64_t now)
{
	int64_t next = s->next_hb;

	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].state == W_BACKOFF && s->slots[i].next_spawn_ms < next)
			next = s->slots[i].next_spawn_ms;
	return next < now ? now : next;
}

void
workers_reap(struct supervisor *s)
{
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		if (zygote_reaped(s, pid))
			continue;
		for (int i = 0; i < s->nslots; i++) {
			if (s->slots[i].pid == pid) {
				on_death(s, &s->slots[i], wstatus);
				break;
			}
		}
	}
}

/* Back-off: at least SUP_BACKOFF_MIN_MS, doubling while deaths are fast, and
 * after SUP_DEATH_LIMIT deaths in a window the slot gives up (failed). */
static void
schedule_restart(struct supervisor *s, struct slot *w, int64_t now)
{
	if (now - w->window_start_ms > SUP_DEATH_WINDOW_MS) {
		w->window_start_ms = now;
		w->window_deaths = 0;
	}
	if (++w->window_deaths >= s->death_limit) {
		w->state = W_FAILED;
		log_warnx("%s.%u died %d times within %d s; giving up", role_name(w->role),
		    w->index, w->window_deaths, SUP_DEATH_WINDOW_MS / 1000);
		return;
	}
	if (w->ready_ms > 0 && now - w->ready_ms >= SUP_STABLE_MS)
		w->backoff_ms = SUP_BACKOFF_MIN_MS;
	else if (w->backoff_ms < SUP_BACKOFF_MIN_MS)
		w->backoff_ms = SUP_BACKOFF_MIN_MS;
	else if ((w->backoff_ms *= 2) > SUP_BACKOFF_MAX_MS)
		w->backoff_ms = SUP_BACKOFF_MAX_MS;
	w->state = W_BACKOFF;
	w->next_spawn_ms = now + w->backoff_ms;
}

static void
on_death(struct supervisor *s, struct slot *w, int wstatus)
{
	int64_t now = clock_ms();

	if (w->killed_silent)
		snprintf(w->last_exit, sizeof w->last_exit, "killed: silent for %d heartbeats",
		    PROTO_LIVENESS);
	else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == KACHE_EXIT_CONFIG)
		snprintf(w->last_exit, sizeof w->last_exit, "exit %d (configuration error)",
		    KACHE_EXIT_CONFIG);
	else if (WIFEXITED(wstatus))
		snprintf(w->last_exit, sizeof w->last_exit, "exit %d", WEXITSTATUS(wstatus));
	else
		snprintf(w->last_exit, sizeof w->last_exit, "killed by signal %d (%s)",
		    WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
	log_info("%s.%u (pid %ld): %s", role_name(w->role), w->index, (long)w->pid, w->last_exit);
	if (w->job != NULL && s->nlost < SUP_MAX_WORKERS) /* the loop takes it up */
		s->lost[s->nlost++] = w->job;
	w->job = NULL;
	w->pid = 0;
	w->identlen = 0;
	if (w->retire) {
		remove_slot(s, w);
		return;
	}
	if (s->stopping) {
		w->state = W_STOPPING;
		return;
	}
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == KACHE_EXIT_CONFIG) {
		w->state = W_FAILED;
		return;
	}
	schedule_restart(s, w, now);
	w->ready_ms = 0;
}

static struct slot *
by_ident(struct supervisor *s, const char *ident, size_t n)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].pid > 0 && s->slots[i].identlen == n &&
		    memcmp(s->slots[i].ident, ident, n) == 0)
			return &s->slots[i];
	return NULL;
}

/* READY binds a routing identity to the slot whose child has that pid. */
static void
on_ready(struct supervisor *s, const char *ident, size_t n, const struct msg *m)
{
	for (int i = 0; i < s->nslots; i++) {
		struct slot *w = &s->slots[i];
		if (w->pid != m->pid || w->pid <= 0)
			continue;
		if (strcmp(m->role, role_name(w->role)) != 0 || m->index != w->index) {
			sup_bad_message(s,
			    "worker socket: pid %ld says it is %s.%u; expected %s.%u", (long)m->pid,
			    m->role, m->index, role_name(w->role), w->index);
			return;
		}
		if (n > sizeof w->ident)
			return;
		memcpy(w->ident, ident, n);
		w->identlen = n;
		if (w->state == W_STARTING)
			w->state = W_READY;
		w->ready_ms = w->last_seen_ms = clock_ms();
		log_info("%s.%u ready, pid %ld", m->role, m->index, (long)m->pid);
		return;
	}
	sup_bad_message(s, "worker socket: READY from unknown pid %ld (%s.%u); ignored",
	    (long)m->pid, m->role, m->index);
}

int
workers_on_message(struct supervisor *s, const struct zio_frames *f, struct slot **from,
    struct msg *m)
{
	enum msg_decode_result r;

	if (f->n != 2 || f->truncated) {
		sup_bad_message(s, "worker socket: dropped a message of %d frames", f->n);
		return 0;
	}
	if ((r = msg_decode(f->data[1], f->len[1], m)) != MSG_DECODE_OK) {
		sup_bad_message(s, "worker socket: dropped a %s", msg_decode_strerror(r));
		msg_clear(m);
		return 0;
	}
	if (m->type == MSG_READY) {
		on_ready(s, f->data[0], f->len[0], m);
	} else if ((*from = by_ident(s, f->data[0], f->len[0])) == NULL) {
		log_debug("%s from an unknown worker; ignored", msg_type_name(m->type));
	} else {
		(*from)->last_seen_ms = clock_ms();
		if (m->type != MSG_HEARTBEAT)
			return 1;
	}
	msg_clear(m);
	return 0;
}

int
workers_send(struct supervisor *s, struct slot *w, const struct msg *m)
{
	if (w->identlen == 0)
		return -1;
	return zio_send(s->wrk, w->ident, w->identlen, m);
}

struct slot *
workers_idle(struct supervisor *s, enum role r)
{
	struct slot *best = NULL;

	for (int i = 0; i < s->nslots; i++) {
		struct slot *w = &s->slots[i];
		if (w->role == r && w->state == W_READY && !w->retire &&
		    (best == NULL || w->jobs_done < best->jobs_done))
			best = w;
	}
	return best;
}

int
workers_any_up(const struct supervisor *s, enum role r)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].role == r &&
		    (s->slots[i].state == W_READY || s->slots[i].state == W_BUSY))
			return 1;
	return 0;
}

/* Up, or started and about to say READY. */
int
workers_any_coming(const struct supervisor *s, enum role r)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].role == r && s->slots[i].pid > 0 &&
		    (s->slots[i].state == W_STARTING || s->slots[i].state == W_READY ||
		        s->slots[i].state == W_BUSY))
			return 1;
	return 0;
}

int
workers_can_run(const struct supervisor *s, enum role r)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].role == r && s->slots[i].state != W_FAILED && !s->slots[i].retire)
			return 1;
	return 0;
}

void
workers_shutdown_all(struct supervisor *s)
{
	struct msg m;

	msg_init(&m, MSG_SHUTDOWN, 0);
	for (int i = 0; i < s->nslots; i++) {
		struct slot *w = &s->slots[i];
		if (w->pid > 0 && workers_send(s, w, &m) == -1)
			kill(w->pid, SIGTERM);
		if (w->pid > 0)
			w->state = W_STOPPING;
	}
}

void
workers_kill_all(struct supervisor *s)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].pid > 0)
			kill(s->slots[i].pid, SIGKILL);
	for (int i = 0; i < s->nslots; i++) {
		int st;
		if (s->slots[i].pid > 0 && waitpid(s->slots[i].pid, &st, 0) > 0)
			s->slots[i].pid = 0;
	}
}

int
workers_alive(const struct supervisor *s)
{
	int n = 0;

	for (int i = 0; i < s->nslots; i++)
		n += s->slots[i].pid > 0;
	return n;
}
