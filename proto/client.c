/* Lazy Pirate client over the dlopen'd libzmq (see zmq_dl.h). */
#include "proto/client.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/hint.h"
#include "proto/paths.h"
#include "proto/zmq_dl.h"

#define NOTIFY_WAIT_MS 20
/* How often a wrapper looks for the socket of a supervisor being started. */
#define START_POLL_US 2000
/* Spawns of a supervisor that keeps dying young: at least 1 s apart, doubling
 * to 5 min while each lived less than SPAWN_YOUNG_MS. */
#define SPAWN_BACKOFF_MIN_MS 1000
#define SPAWN_BACKOFF_MAX_MS (5 * 60 * 1000)
#define SPAWN_YOUNG_MS 60000
/* How many times (1 ms apart) a spawner waits out probes of the spawn lock. */
#define SPAWN_LOCK_TRIES 100

static void *client_ctx;

/* How a long request waits: idle_ms past the last progress, never past the
 * overall deadline; fn gets each progress report. */
struct progress_wait {
	int64_t idle_ms;
	proto_progress_fn fn;
	void *arg;
};

static uint64_t next_id(void);
static void *open_socket(const struct zmq_dl *z, const char *endpoint);
static enum proto_result await_reply(const struct zmq_dl *z, void *s, uint64_t id, struct msg *rep,
    int64_t deadline, const struct progress_wait *pw);
static int64_t wait_until(int64_t deadline, int64_t last, const struct progress_wait *pw);
static enum proto_result exchange(const struct zmq_dl *z, const char *endpoint, struct msg *req,
    struct msg *rep, int64_t ack_deadline, int64_t deadline, const struct progress_wait *pw);
static enum proto_result request(const char *kache_dir, struct msg *req, struct msg *rep,
    int64_t ack_deadline, int64_t deadline_ms, const struct progress_wait *pw);
static void exec_detached(const char *kache_dir, const char *kached_path, int lockfd,
    char *const argv[]);
static int spawn_allowed(const struct proto_paths *p, int force);
static int take_spawn_lock(int fd);

const char *
proto_result_name(enum proto_result r)
{
	static const char *names[] = { "ok", "miss", "timeout", "unavailable", "error", "refused" };

	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

int64_t
proto_client_epoch(void)
{
	static int64_t epoch = -1;
	struct stat st;

	if (epoch == -1)
		epoch = stat("/proc/self/exe", &st) == 0 ? (int64_t)st.st_mtime : 0;
	return epoch;
}

static uint64_t
next_id(void)
{
	static uint64_t counter;

	return ((uint64_t)getpid() << 32) ^ ((uint64_t)clock_us() << 8) ^ ++counter;
}

/* A DEALER with LINGER 0 (nothing outlives a request) and a size cap. */
static void *
open_socket(const struct zmq_dl *z, const char *endpoint)
{
	int linger = 0;
	int64_t maxsize = MSG_MAX_SIZE;
	void *s;

	if (client_ctx == NULL && (client_ctx = z->ctx_new()) == NULL)
		return NULL;
	if ((s = z->socket(client_ctx, ZDL_DEALER)) == NULL)
		return NULL;
	z->setsockopt(s, ZDL_LINGER, &linger, sizeof linger);
	z->setsockopt(s, ZDL_MAXMSGSIZE, &maxsize, sizeof maxsize);
	if (z->connect(s, endpoint) == -1) {
		log_warnx("connect %s: %s", endpoint, z->strerror(z->errno_()));
		z->close(s);
		return NULL;
	}
	return s;
}

/* The deadline of the next wait: the overall one, or for a long request
 * idle_ms after the last sign of progress when that is sooner. */
static int64_t
wait_until(int64_t deadline, int64_t last, const struct progress_wait *pw)
{
	if (pw == NULL || last + pw->idle_ms >= deadline)
		return deadline;
	return last + pw->idle_ms;
}

/* Waits for the one-frame reply echoing id; other replies are dropped, and so
 * is progress, unless pw asks for it (each report then extends the wait). */
static enum proto_result
await_reply(const struct zmq_dl *z, void *s, uint64_t id, struct msg *rep, int64_t deadline,
    const struct progress_wait *pw)
{
	struct zdl_pollitem it = { s, 0, ZDL_POLLIN, 0 };
	char *frame = xmalloc(MSG_MAX_SIZE);
	enum proto_result r = PROTO_TIMEOUT;
	int64_t last = clock_ms();
	int more, n;
	size_t ml = sizeof more;

	for (;;) {
		if (z->poll(&it, 1, (long)clock_left_ms(wait_until(deadline, last, pw))) <= 0 ||
		    !(it.revents & ZDL_POLLIN))
			break; /* timeout, or EINTR: the deadline is hard either way */
		n = z->recv(s, frame, MSG_MAX_SIZE, ZDL_DONTWAIT);
		if (n < 0)
			continue;
		more = 0;
		z->getsockopt(s, ZDL_RCVMORE, &more, &ml);
		if (more || n > MSG_MAX_SIZE ||
		    msg_decode(frame, (size_t)n, rep) != MSG_DECODE_OK) {
			log_warnx("malformed reply from the supervisor");
			r = PROTO_ERROR;
			break;
		}
		if (rep->id == id && rep->type == MSG_INDEX_PROGRESS && pw != NULL) {
			last = clock_ms();
			pw->fn(rep, pw->arg);
		} else if (rep->id == id && rep->type != MSG_INDEX_PROGRESS) {
			r = PROTO_OK;
			break;
		}
		msg_clear(rep);
	}
	free(frame);
	return r;
}

/* Sends req and waits for its reply. With ack_deadline set (a fetch), the
 * supervisor first acknowledges (MSG_OK) within ack_deadline, which bounds what
 * a hung supervisor costs; the result itself may then take until deadline. */
static enum proto_result
exchange(const struct zmq_dl *z, const char *endpoint, struct msg *req, struct msg *rep,
    int64_t ack_deadline, int64_t deadline, const struct progress_wait *pw)
{
	struct buf b;
	enum proto_result r;
	void *s;

	buf_init(&b);
	req->id = next_id();
	if (msg_encode(req, &b) == -1) {
		buf_free(&b);
		return PROTO_ERROR;
	}
	if ((s = open_socket(z, endpoint)) == NULL) {
		buf_free(&b);
		return PROTO_UNAVAILABLE;
	}
	if (z->send(s, b.p, b.len, ZDL_DONTWAIT) != (int)b.len) {
		r = PROTO_UNAVAILABLE;
	} else if (ack_deadline == 0) {
		r = await_reply(z, s, req->id, rep, deadline, pw);
	} else {
		r = await_reply(z, s, req->id, rep,
		    ack_deadline < deadline ? ack_deadline : deadline, NULL);
		if (r == PROTO_OK && rep->type == MSG_OK) {
			msg_clear(rep);
			r = await_reply(z, s, req->id, rep, deadline, NULL);
		}
	}
	z->close(s);
	buf_free(&b);
	return r;
}

static enum proto_result
request(const char *kache_dir, struct msg *req, struct msg *rep, int64_t ack_deadline,
    int64_t deadline_ms, const struct progress_wait *pw)
{
	struct proto_paths p;
	const struct zmq_dl *z;
	struct stat st;
	char err[512];

	memset(rep, 0, sizeof *rep);
	if (proto_paths_init(&p, kache_dir) == -1)
		return PROTO_UNAVAILABLE;
	/* cheap checks first: no supervisor means no dlopen at all */
	if (!proto_supervisor_running(&p) || stat(proto_endpoint_file(p.ctl), &st) == -1)
		return PROTO_UNAVAILABLE;
	/* a socket in a directory another user controls is not our supervisor's */
	if (proto_paths_prepare(&p, 0, err, sizeof err) == -1) {
		log_debug("%s", err); /* the CLI says it with proto_client_check */
		return PROTO_REFUSED;
	}
	if ((z = zmq_dl_load()) == NULL)
		return PROTO_UNAVAILABLE;
	return exchange(z, p.ctl, req, rep, ack_deadline, deadline_ms, pw);
}

int
proto_client_check(const char *kache_dir, char *err, size_t errlen)
{
	struct proto_paths p;
	struct stat st;

	if (proto_paths_init(&p, kache_dir) == -1) {
		snprintf(err, errlen, "store path too long: %s", kache_dir);
		return -1;
	}
	if (lstat(p.rundir, &st) == -1 && errno == ENOENT)
		return 0;
	return proto_paths_prepare(&p, 0, err, errlen);
}

enum proto_result
proto_client_request(const char *kache_dir, struct msg *req, struct msg *rep, int64_t deadline_ms)
{
	return request(kache_dir, req, rep, 0, deadline_ms, NULL);
}

enum proto_result
proto_client_request_long(const char *kache_dir, struct msg *req, struct msg *rep, int64_t idle_ms,
    int64_t deadline_ms, proto_progress_fn fn, void *arg)
{
	struct progress_wait pw = { idle_ms, fn, arg };

	return request(kache_dir, req, rep, 0, deadline_ms, &pw);
}

enum proto_result
proto_client_fetch(const char *kache_dir, const char *inv_key_hex, int64_t ack_deadline_ms,
    int64_t deadline_ms)
{
	struct msg req, rep;
	enum proto_result r;

	if (strlen(inv_key_hex) > MSG_KEY_MAX)
		return PROTO_ERROR;
	msg_init(&req, MSG_FETCH, 0);
	snprintf(req.key, sizeof req.key, "%s", inv_key_hex);
	req.epoch = proto_client_epoch();
	req.deadline = clock_left_ms(deadline_ms);
	r = request(kache_dir, &req, &rep, ack_deadline_ms, deadline_ms, NULL);
	if (r == PROTO_OK) {
		if (rep.type != MSG_FETCH_REPLY)
			r = PROTO_ERROR;
		else if (rep.status == JOB_MISS)
			r = PROTO_MISS;
		else if (rep.status != JOB_OK)
			r = PROTO_ERROR;
	}
	msg_clear(&req);
	msg_clear(&rep);
	return r;
}

void
proto_client_notify_upload(const char *kache_dir, const char *result_key_hex)
{
	struct msg req, rep;

	if (strlen(result_key_hex) > MSG_KEY_MAX)
		return;
	msg_init(&req, MSG_NOTIFY_UPLOAD, 0);
	snprintf(req.key, sizeof req.key, "%s", result_key_hex);
	req.epoch = proto_client_epoch();
	/* the reply only tells the message left before the socket closed */
	proto_client_request(kache_dir, &req, &rep, clock_ms() + NOTIFY_WAIT_MS);
	msg_clear(&req);
	msg_clear(&rep);
}

/* A hint over the socket: what wrappers before hint files sent; kept for
 * tools and tests that talk to a supervisor directly (tests/proc/proto_poke). */
enum proto_result
proto_client_prefetch_hint(const char *kache_dir, const struct proto_hint *h, int64_t deadline_ms)
{
	struct msg req, rep;
	enum proto_result r = PROTO_ERROR;

	memset(&rep, 0, sizeof rep);
	msg_init(&req, MSG_PREFETCH_HINT, 0);
	req.epoch = proto_client_epoch();
	if (proto_hint_to_msg(h, &req) == 0)
		r = proto_client_request(kache_dir, &req, &rep, deadline_ms);
	if (r == PROTO_OK && rep.type != MSG_OK)
		r = PROTO_ERROR;
	msg_clear(&req);
	msg_clear(&rep);
	return r;
}

/* The grandchild: quiet stdio, signals unblocked, no descriptor the wrapper
 * inherited but lockfd (-1: none) handed on, KACHE_DIR set; execs kached with
 * argv. Never returns. */
static void
exec_detached(const char *kache_dir, const char *kached_path, int lockfd, char *const argv[])
{
	char fdstr[16];
	sigset_t none;
	int null;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		dup2(null, 0), dup2(null, 1), dup2(null, 2);
		if (null > 2)
			close(null);
	}
	/* nothing else the wrapper inherited (cargo's jobserver pipe and the
	 * pipes it reads the compile's output from, a CI runner's descriptors)
	 * is held for the daemon's life: cargo would wait for their end */
	if (lockfd < 0) {
		close_range(3, ~0U, 0);
	} else {
		if (lockfd > 3)
			close_range(3, (unsigned)lockfd - 1, 0);
		close_range((unsigned)lockfd + 1, ~0U, 0);
		fcntl(lockfd, F_SETFD, 0);
		snprintf(fdstr, sizeof fdstr, "%d", lockfd);
		setenv("KACHE_SPAWN_LOCK_FD", fdstr, 1);
	}
	setenv("KACHE_DIR", kache_dir, 1);
	execv(kached_path, argv);
	_exit(127);
}

void
proto_gc_spawn(const char *kache_dir, const char *kached_path)
{
	static char *const argv[] = { "kached", "__gc", NULL };
	pid_t pid;

	if ((pid = fork()) == -1) {
		log_warn("fork");
		return;
	}
	if (pid == 0) {
		/* a process group of its own, in cargo's session: ^C does not
		 * reach it, and its nice value counts against the build's own
		 * processes (the kernel's autogroups are per session) */
		setpgid(0, 0);
		if (fork() == 0)
			exec_detached(kache_dir, kached_path, -1, argv);
		_exit(0);
	}
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

/* The spawn back-off lives in the timestamps of run/spawn.backoff (mtime: the
 * last spawn, atime: the earliest next one, always after it), set by one
 * futimens: recording it writes no data, so it holds on a full disk, where a
 * supervisor is most likely to die young. A file whose times are alike (just
 * made: the kernel stamps its creation with a clock that may be past a reading
 * taken before the open) records no spawn. Called under the spawn lock with no
 * supervisor running. 1 (recorded) when a spawn may go ahead now, 0 while
 * backing off. */
static int
spawn_allowed(const struct proto_paths *p, int force)
{
	int64_t now, last, next, delay = SPAWN_BACKOFF_MIN_MS;
	struct timespec ts[2];
	struct stat st;
	int fd;

	fd = open(p->backoff, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd == -1)
		return 1; /* nowhere to keep it: spawn, as without a back-off */
	now = clock_wall_ms();
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		last = clock_ts_ms(&st.st_mtim);
		next = clock_ts_ms(&st.st_atim);
		if (!force && next > last && now < next && next - now <= SPAWN_BACKOFF_MAX_MS) {
			close(fd);
			log_debug("supervisor spawn backing off for %lld ms",
			    (long long)(next - now));
			return 0;
		}
		if (now - last < SPAWN_YOUNG_MS && next > last &&
		    next - last < SPAWN_BACKOFF_MAX_MS)
			delay = (next - last) * 2;
		else if (now - last < SPAWN_YOUNG_MS && next > last)
			delay = SPAWN_BACKOFF_MAX_MS;
	}
	ts[0].tv_sec = (now + delay) / 1000;
	ts[0].tv_nsec = (now + delay) % 1000 * 1000000;
	ts[1].tv_sec = now / 1000;
	ts[1].tv_nsec = now % 1000 * 1000000;
	if (futimens(fd, ts) == -1)
		log_warn("futimens %s", p->backoff);
	close(fd);
	return 1;
}

/* The spawn lock, exclusive. A spawner holds it so while it starts a
 * supervisor; a waiter's probe (proto_supervisor_starting) holds it shared for
 * an instant, and is waited out (SPAWN_LOCK_TRIES): taken for a spawner, the
 * probe made this spawner leave and the waiter, its probe over, found no lock
 * held, neither started one, and both compiled. 0, or -1 when another process
 * is starting a supervisor. */
static int
take_spawn_lock(int fd)
{
	for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) == -1; i++) {
		/* a shared lock of our own is granted only beside shared holders */
		if (errno != EWOULDBLOCK || i == SPAWN_LOCK_TRIES ||
		    flock(fd, LOCK_SH | LOCK_NB) == -1)
			return -1;
		flock(fd, LOCK_UN);
		usleep(1000);
	}
	return 0;
}

/* The socket appears once the supervisor has its store lock and has bound;
 * until then the spawn lock (held from the spawn until the store lock is
 * taken) or the store lock says one is on its way. Either released with no
 * socket: it died, nothing to wait for. */
int
proto_supervisor_wait(const char *kache_dir, int64_t deadline_ms)
{
	struct proto_paths p;
	struct stat st;

	if (proto_paths_init(&p, kache_dir) == -1)
		return 0;
	for (;;) {
		/* the spawn lock first: a new supervisor takes its own lock before
		 * it lets go of the spawn lock, so asked in this order the two
		 * cannot both say no while it starts (asked the other way round,
		 * the handover could fall between them) */
		int starting = proto_supervisor_starting(&p),
		    running = proto_supervisor_running(&p);

		if (running && stat(proto_endpoint_file(p.ctl), &st) == 0)
			return 1;
		if (!running && !starting)
			return 0;
		if (clock_ms() + START_POLL_US / 1000 >= deadline_ms)
			return 0;
		usleep(START_POLL_US);
	}
}

int
proto_supervisor_ensure(const char *kache_dir, const char *kached_path)
{
	return proto_supervisor_start(kache_dir, kached_path, 0);
}

int
proto_supervisor_start(const char *kache_dir, const char *kached_path, int force)
{
	static char *const argv[] = { "kached", "supervisor", "run", "--detached", NULL };
	struct proto_paths p;
	char err[512];
	pid_t pid;
	int fd;

	if (proto_paths_init(&p, kache_dir) == -1)
		return -1;
	if (proto_supervisor_running(&p))
		return 0;
	if (proto_paths_prepare(&p, 1, err, sizeof err) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	if ((fd = open(p.spawnlock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		log_warn("open %s", p.spawnlock);
		return -1;
	}
	if (take_spawn_lock(fd) == -1 || proto_supervisor_running(&p) ||
	    !spawn_allowed(&p, force)) {
		close(fd); /* another process is starting it, it just came up, or back-off */
		return 0;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork");
		close(fd);
		return -1;
	}
	if (pid == 0) {
		setsid();
		if (fork() == 0)
			exec_detached(kache_dir, kached_path, fd, argv);
		_exit(0);
	}
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
	close(fd);
	return 0;
}
