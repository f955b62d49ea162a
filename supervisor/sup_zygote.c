/* The zygote: workers forked, not exec'd. An exec of kached maps its 51
 * libraries and binds their symbols, 11-12 ms of CPU before the first line of
 * main (`perf stat kached --version`); a fresh runner's supervisor starts four
 * workers at the first compile, when the build wants both cores. So the
 * supervisor execs one `kached __zygote` at its first spawn, and each worker
 * is a fork of that pristine process (a fork of the supervisor itself would
 * carry its threads, sockets and lock into the worker): the zygote forks a
 * child that forks the worker and exits, so that the worker is handed to the
 * supervisor (PR_SET_CHILD_SUBREAPER) and is its child as an exec'd one
 * would be: waitpid, SIGCHLD, kill and PR_SET_PDEATHSIG work as before.
 *
 * Requests and answers are one datagram each on a SOCK_SEQPACKET pair: the
 * role and index (the worker's stderr, its log file, passed with it), then
 * the worker's pid. Any fault of the zygote (no answer within ZYGOTE_WAIT_MS,
 * an answer that is not a pid, death) makes the supervisor kill it and exec
 * the worker as before; a new zygote is started ZYGOTE_RETRY_MS later.
 * workers.zygote = false execs every worker. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "supervisor/sup_internal.h"
#include "supervisor/supervisor.h"

#define ZYGOTE_MAGIC 0x6b7a7967u /* "kzyg" */
#define ZYGOTE_FD 3
#define ZYGOTE_WAIT_MS 2000
#define ZYGOTE_RETRY_MS 5000
/* how long a new worker waits to be handed to the supervisor */
#define ZYGOTE_REPARENT_MS 2000

struct zygote_req {
	uint32_t magic, role, index;
};

struct zygote_rep {
	uint32_t magic;
	int32_t pid; /* the worker's, or -errno */
};

/* The zygote's own: its supervisor, and the area of its arguments (from
 * argv[-1], "kached", on) that each worker writes its own over, as `ps`
 * shows an exec'd one. */
static pid_t sup_pid;
static char *title;
static size_t title_cap;

static int zygote_start(struct supervisor *s, int64_t now);
static void zygote_kill(struct supervisor *s, pid_t pid, const char *why);
static int zygote_serve(void);
static pid_t zygote_fork(const struct zygote_req *q, int logfd);
static void zygote_child(const struct zygote_req *q, int logfd, pid_t mid);

/* The supervisor's side. */

void
zygote_init(struct supervisor *s)
{
	s->zfd = -1;
	s->zpid = -1;
	s->zygote_ok =
	    config_get_bool(s->cfg, "workers.zygote") && prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
}

/* Execs `kached __zygote` with one end of a socket pair as its fd 3. */
static int
zygote_start(struct supervisor *s, int64_t now)
{
	/* room for the title a worker writes over the zygote's arguments */
	static char pad[] = "                                        ";
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("zygote: socketpair");
		s->znext_ms = now + ZYGOTE_RETRY_MS;
		return -1;
	}
	pid = fork();
	if (pid == 0) { /* only async-signal-safe calls until the exec */
		sigset_t none;
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (null != -1)
			dup2(null, 0), dup2(null, 1);
		/* (dup2 onto itself would leave its close-on-exec flag); then
		 * nothing else the supervisor holds reaches the zygote and so
		 * the workers (a descriptor its own start left open) */
		if (sv[1] == ZYGOTE_FD ? fcntl(ZYGOTE_FD, F_SETFD, 0) == 0 :
		                         dup2(sv[1], ZYGOTE_FD) == ZYGOTE_FD) {
			close_range(ZYGOTE_FD + 1, ~0U, 0);
			execl(s->exe, "kached", "__zygote", pad, (char *)NULL);
		}
		_exit(127);
	}
	close(sv[1]);
	if (pid == -1) {
		log_warn("zygote: fork");
		close(sv[0]);
		s->znext_ms = now + ZYGOTE_RETRY_MS;
		return -1;
	}
	s->zfd = sv[0];
	s->zpid = pid;
	log_info("zygote started, pid %ld", (long)pid);
	return 0;
}

static void
zygote_kill(struct supervisor *s, pid_t pid, const char *why)
{
	log_warnx("zygote (pid %ld): %s; workers are exec'd until a new one starts in %d s",
	    (long)pid, why, ZYGOTE_RETRY_MS / 1000);
	if (s->zpid > 0)
		kill(s->zpid, SIGKILL); /* reaped by workers_reap */
	if (s->zfd != -1)
		close(s->zfd);
	s->zfd = -1;
	s->zpid = -1;
	s->znext_ms = clock_ms() + ZYGOTE_RETRY_MS;
}

pid_t
zygote_spawn(struct supervisor *s, enum role r, unsigned index, int logfd, int64_t now)
{
	struct zygote_req q = { ZYGOTE_MAGIC, (uint32_t)r, index };
	struct zygote_rep a;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &q, sizeof q };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pollfd pfd;
	ssize_t n;

	if (!s->zygote_ok || s->stopping || (s->zfd == -1 && now < s->znext_ms))
		return -1;
	if (s->zfd == -1 && zygote_start(s, now) == -1)
		return -1;
	if (logfd != -1) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof cbuf);
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &logfd, sizeof(int));
	}
	if (sendmsg(s->zfd, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof q) {
		zygote_kill(s, s->zpid, "request not sent");
		return -1;
	}
	pfd = (struct pollfd){ s->zfd, POLLIN, 0 };
	n = poll(&pfd, 1, ZYGOTE_WAIT_MS) == 1 ? recv(s->zfd, &a, sizeof a, 0) : -1;
	if (n != (ssize_t)sizeof a || a.magic != ZYGOTE_MAGIC || a.pid <= 1) {
		zygote_kill(s, s->zpid,
		    n != (ssize_t)sizeof a ? "no answer" :
		        a.pid <= 1         ? "no worker forked" :
		                             "a garbled answer");
		return -1;
	}
	s->spawned_forked++;
	return (pid_t)a.pid;
}

int
zygote_reaped(struct supervisor *s, pid_t pid)
{
	if (pid != s->zpid)
		return 0;
	s->zpid = -1; /* gone (a reaped pid is never signalled): only the socket is closed */
	zygote_kill(s, pid, "exited");
	return 1;
}

void
zygote_stop(struct supervisor *s)
{
	if (s->zfd != -1)
		close(s->zfd); /* the zygote ends at the end of its socket */
	s->zfd = -1;
}

/* The zygote's side: `kached __zygote`, exec'd by the supervisor. */

int
supervisor_zygote_cmd(int argc, char **argv)
{
	struct stat st;

	if (fstat(ZYGOTE_FD, &st) == -1 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "kached __zygote: internal, started by the supervisor only\n");
		return 2;
	}
	title = argv[-1];
	title_cap = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - title);
	fcntl(ZYGOTE_FD, F_SETFD, FD_CLOEXEC);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((sup_pid = getppid()) == 1)
		return 1;
	return zygote_serve();
}

/* Forks a worker for each request until the supervisor's end is closed. */
static int
zygote_serve(void)
{
	for (;;) {
		struct zygote_req q;
		struct zygote_rep a = { ZYGOTE_MAGIC, 0 };
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &q, sizeof q };
		struct msghdr mh = { .msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cbuf,
			.msg_controllen = sizeof cbuf };
		struct cmsghdr *c;
		int logfd = -1;
		ssize_t n = recvmsg(ZYGOTE_FD, &mh, MSG_CMSG_CLOEXEC);

		if (n == 0)
			return 0;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return 1;
		for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    c->cmsg_len == CMSG_LEN(sizeof(int)) && logfd == -1)
				memcpy(&logfd, CMSG_DATA(c), sizeof(int));
		if (n != (ssize_t)sizeof q || q.magic != ZYGOTE_MAGIC || q.role >= ROLE_COUNT ||
		    q.index >= SUP_MAX_WORKERS || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
			a.pid = -EINVAL;
		else
			a.pid = zygote_fork(&q, logfd);
		if (logfd != -1)
			close(logfd);
		if (send(ZYGOTE_FD, &a, sizeof a, MSG_NOSIGNAL) != (ssize_t)sizeof a)
			return 1;
	}
}

/* A child that forks the worker, says its pid through a pipe and exits: the
 * worker, an orphan, goes to the supervisor. Returns the pid or -errno. */
static pid_t
zygote_fork(const struct zygote_req *q, int logfd)
{
	int p[2];
	pid_t mid, pid = -EAGAIN;

	if (pipe2(p, O_CLOEXEC) == -1)
		return -errno;
	mid = fork();
	if (mid == 0) {
		pid_t w, me = getpid(); /* the worker's getppid() may be the supervisor's already */

		close(p[0]);
		close(ZYGOTE_FD);
		w = fork();
		if (w == 0) {
			close(p[1]);
			zygote_child(q, logfd, me);
		}
		if (write(p[1], &w, sizeof w) != (ssize_t)sizeof w)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	if (mid > 0) {
		if (read(p[0], &pid, sizeof pid) != (ssize_t)sizeof pid || pid <= 0)
			pid = -EAGAIN;
		while (waitpid(mid, NULL, 0) == -1 && errno == EINTR)
			;
	} else {
		pid = -errno;
	}
	close(p[0]);
	return pid;
}

/* The worker: once handed to the supervisor (its parent is no longer mid),
 * it takes an exec'd worker's descriptors and arguments and runs its role. */
static void
zygote_child(const struct zygote_req *q, int logfd, pid_t mid)
{
	char idx[16], *argv[4];
	int null = open("/dev/null", O_RDWR), waited = 0;

	if (null != -1)
		dup2(null, 0), dup2(null, 1), close(null);
	if (logfd != -1)
		dup2(logfd, 2), close(logfd);
	while (getppid() == mid && waited < ZYGOTE_REPARENT_MS * 10)
		usleep(100), waited++;
	if (getppid() != sup_pid)
		_exit(1); /* handed to another (no subreaper): not the supervisor's */
	snprintf(idx, sizeof idx, "%u", q->index);
	argv[0] = (char *)"__worker";
	argv[1] = (char *)role_name((enum role)q->role);
	argv[2] = idx;
	argv[3] = NULL;
	if (title_cap > 0) {
		int k =
		    snprintf(title, title_cap, "kached%c__worker%c%s%c%s", 0, 0, argv[1], 0, idx);

		if (k >= 0 && (size_t)k + 1 < title_cap)
			memset(title + k + 1, 0, title_cap - (size_t)k - 1);
	}
	exit(supervisor_worker_cmd(3, argv));
}
